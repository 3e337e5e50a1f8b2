"""
The SIP layer: URIs, headers, messages, the parser, transactions, transports,
the user agent core, dialogs and digest (RFC 3261). It knows nothing of event
notification; the roles in L{sipevents.notifier} and L{sipevents.subscriber}
are built on it.
"""
