"""
The notifier role of RFC 6665 (section 4.2) and the event state compositor
of RFC 3903: answering SUBSCRIBE and PUBLISH, the subscription state table,
authorization, and sending NOTIFYs.
"""
