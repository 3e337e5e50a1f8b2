# -*- test-case-name: tests.test_store -*-
"""
What the notifier persists: plain values shared by the notifier, the
publication handler and every L{sipevents.interfaces.IStore}.

Times are absolute readings of the notifier's clock (C{IReactorTime.seconds},
which is the epoch time on a real reactor), so a record written before a
restart still says when it expires after it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sipevents.sip.dialogstate import Dialog
from sipevents.sip.uri import SIPURI, URI, TelURI, formatURI

#: Subscription states (RFC 6665 section 4.2.2 and 8.2.3).
PENDING = "pending"
ACTIVE = "active"
TERMINATED = "terminated"


def canonicalResource(uri: URI) -> str:
    """
    The key of the resource a request is about: C{sip:user@host} from a
    SIP or SIPS Request-URI (scheme C{sip}, host lower-cased, no port, no
    parameters), so that a SUBSCRIBE to C{sips:bob@Example.com:5061} and a
    PUBLISH to C{sip:bob@example.com} are about one resource; a tel URI is
    C{tel:NUMBER}; any other URI as written.
    """
    if isinstance(uri, SIPURI):
        if uri.user is None:
            return f"sip:{uri.host}"
        return f"sip:{uri.user}@{uri.host}"
    if isinstance(uri, TelURI):
        return f"tel:{uri.number}"
    return formatURI(uri)


@dataclass(frozen=True, slots=True)
class SubscriptionRecord(Dialog):
    """
    One subscription as the store keeps it: the dialog it lives in (RFC
    3261 section 12, RFC 6665 section 4.4.1), whose fields are those of
    L{Dialog} (seen from the notifier: the local tag is the To tag of our
    200, the local URI the To of the SUBSCRIBE, the remote target its
    Contact, the flow the one it came on), and the subscription.

    @ivar key: opaque and unique: the dialog identifier plus the event type
        and C{id} (RFC 6665 section 4.5.2).
    @ivar resource: see L{canonicalResource}.
    @ivar eventType: the Event package with its templates,
        C{"presence.winfo"}.
    @ivar eventId: the Event C{id} parameter, or C{None}.
    @ivar eventParams: the other Event parameters as written.
    @ivar state: L{PENDING} or L{ACTIVE} (terminated ones are removed).
    @ivar expiresAt: when the subscription expires, in clock seconds.
    @ivar watcher: the subscriber's From URI, as text.
    @ivar accept: the body types the subscriber accepts, in its order
        (empty: the package default).
    @ivar localCSeq: a high-water mark for the CSeq of our NOTIFYs: every
        CSeq used so far is below it, so after a restart the dialog goes on
        from here and can never go back.
    """

    key: str
    resource: str
    eventType: str
    eventId: str | None
    eventParams: tuple[tuple[str, str | None], ...]
    state: str
    expiresAt: float
    watcher: str
    accept: tuple[str, ...]
    localCSeq: int

    def evolve(self, **changes: object) -> SubscriptionRecord:
        """A copy with C{changes} applied."""
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class PublicationRecord:
    """
    One event publication (RFC 3903 section 2): state a publisher gave us
    for a resource, identified by its entity-tag.

    @ivar etag: the entity-tag we assigned (RFC 3903 section 4.1).
    @ivar resource: see L{canonicalResource}.
    @ivar eventType: the Event package of the PUBLISH.
    @ivar contentType: the MIME type of C{body}.
    @ivar body: the published state, as octets.
    @ivar expiresAt: when it expires, in clock seconds; C{None} for state
        set by the application, which does not expire.
    """

    etag: str
    resource: str
    eventType: str
    contentType: str
    body: bytes
    expiresAt: float | None

    def evolve(self, **changes: object) -> PublicationRecord:
        """A copy with C{changes} applied."""
        return replace(self, **changes)  # type: ignore[arg-type]
