"""
The subscriber role of RFC 6665 (section 4.1): subscription handles, their
state table, and a client wired to sockets.
"""
