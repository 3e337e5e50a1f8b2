# -*- test-case-name: tests.test_dialog -*-
"""
The state of a dialog (RFC 3261 section 12), as a value shared by both
roles: the notifier builds one from the SUBSCRIBE it answers (section
12.1.1) and keeps it in every L{sipevents.records.SubscriptionRecord},
which is a L{Dialog} with the subscription's own fields; the subscriber
builds one from the 2xx or NOTIFY it receives (section 12.1.2). The
functions of L{sipevents.sip.dialog} build and route the requests sent in
it.

A value module: it imports nothing but the standard library, so records
and both roles can hold it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NO_CSEQ", "Dialog"]

#: The remote sequence number of a dialog whose peer has sent no request
#: in it yet (RFC 3261 section 12.1.2 leaves it empty): below every CSeq
#: number, 0 included, so any request is in order.
NO_CSEQ = -1


@dataclass(frozen=True, slots=True)
class Dialog:
    """
    One dialog, from our side of it (RFC 3261 section 12): its identifier,
    the addresses of our requests in it, the remote sequence number, and the
    flow the peer reached us on.

    The local sequence number is kept by each role its own way: the notifier
    persists a high-water mark (C{SubscriptionRecord.localCSeq}), the
    subscriber counts its requests.

    @ivar callId: the Call-ID.
    @ivar localTag: our tag: the To tag of our 2xx for a dialog we answered,
        the From tag of our request for one we created.
    @ivar remoteTag: the peer's tag (C{""} when an RFC 2543 peer sent none).
    @ivar localUri: our address without its tag, as header text (the bare
        URI when that is all it is, see
        L{sipevents.sip.dialog.addressField}); the From of our requests.
    @ivar remoteUri: the peer's address without its tag, likewise; the To of
        our requests.
    @ivar remoteTarget: the URI of the peer's Contact, as text: the
        Request-URI of our requests (section 12.2.1.1).
    @ivar routeSet: the route set, as Route header values with all their
        parameters, in the order our requests carry them.
    @ivar remoteCSeq: the CSeq number of the peer's last request in the
        dialog; L{NO_CSEQ} before it sent one (section 12.1.2 leaves it
        empty).
    @ivar flowTransport: the transport of the flow (C{"UDP"}, C{"TCP"},
        C{"TLS"}): the one the peer's request came on, or our first
        request went on.
    @ivar flowHost: the peer's address on that flow.
    @ivar flowPort: the peer's port on that flow.
    """

    callId: str
    localTag: str
    remoteTag: str
    localUri: str
    remoteUri: str
    remoteTarget: str
    routeSet: tuple[str, ...]
    remoteCSeq: int
    flowTransport: str
    flowHost: str
    flowPort: int
