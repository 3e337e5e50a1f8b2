"""
The subscriber role of RFC 6665 (section 4.1): the declared state table of
a subscription (L{states}), the UAC exchange that answers 401, 407, 423 and
3xx (L{exchange}), the subscription handle (L{handle}), the L{subscriber}
that hands handles out and answers NOTIFY, and a L{client} wired to sockets.
"""
