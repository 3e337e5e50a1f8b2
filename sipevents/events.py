# -*- test-case-name: tests.test_subscriber -*-
"""
Plain value types that cross the seams of sipevents: what a subscriber
reports to its observers (RFC 6665 section 4.1.3), how a subscription
fails, the credentials a client answers challenges with and the user a
server authenticated (RFC 3261 section 22). They hold data and format it;
they do nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sipevents.errors import ParseError
from sipevents.sip.headers import Event, SubscriptionState
from sipevents.sip.message import Request, Response
from sipevents.sip.uri import SIPURI, URI

__all__ = [
    "Credentials",
    "Notification",
    "SIPUser",
    "SubscriptionFailed",
    "SubscriptionTerminated",
    "SubscriptionTimedOut",
    "Termination",
]


@dataclass(frozen=True, slots=True)
class Notification:
    """
    One NOTIFY, as reported to observers (RFC 6665 section 4.1.3).

    @ivar subscriptionState: the parsed Subscription-State.
    @ivar event: the parsed Event.
    @ivar contentType: the MIME type of the body, lower case without
        parameters, or C{None} without a body.
    @ivar body: the body octets.
    @ivar request: the NOTIFY itself.
    @ivar receivedAt: the clock's time when it arrived.
    """

    subscriptionState: SubscriptionState
    event: Event
    contentType: str | None
    body: bytes
    request: Request
    receivedAt: float

    @property
    def state(self) -> str:
        """C{"active"}, C{"pending"}, C{"terminated"} or an extension."""
        return self.subscriptionState.state


@dataclass(frozen=True, slots=True)
class Termination:
    """
    How a subscription ended (RFC 6665 section 4.1.3).

    @ivar reason: the Subscription-State reason, or C{None}.
    @ivar retryAfter: its C{retry-after}, or C{None}.
    @ivar notification: the final NOTIFY, when one ended it.
    @ivar failure: the error that ended it (a refresh answered 481, Timer
        N ...), or C{None}.
    @ivar willRetry: whether a re-subscription is scheduled on the same
        handle.
    """

    reason: str | None = None
    retryAfter: int | None = None
    notification: Notification | None = None
    failure: SubscriptionFailed | None = None
    willRetry: bool = False


class SubscriptionFailed(Exception):
    """
    A SUBSCRIBE that did not create (or keep) a subscription: a non-2xx
    final answer (RFC 6665 section 4.1.2.1), or a subscription that ended
    before it became what was waited for.

    @ivar code: the status code of the answer; C{0} when there was none.
    @ivar reason: its reason phrase, or what happened.
    @ivar target: the URI subscribed to, as text.
    @ivar response: the response, when there was one.
    @ivar allowEvents: the event types of a 489's Allow-Events (RFC 6665
        section 8.3.1).
    """

    def __init__(
        self,
        code: int,
        reason: str,
        target: str,
        response: Response | None = None,
        allowEvents: Sequence[str] = (),
    ) -> None:
        super().__init__(code, reason, target)
        self.code = code
        self.reason = reason
        self.target = target
        self.response = response
        self.allowEvents = list(allowEvents)

    @classmethod
    def fromResponse(cls, response: Response, target: str) -> SubscriptionFailed:
        """
        The failure a non-2xx final C{response} to a SUBSCRIBE to C{target}
        means; a 489 lists its Allow-Events.
        """
        allowEvents: list[str] = []
        if response.code == 489:
            try:
                allowEvents = response.allowEvents
            except ParseError:
                allowEvents = response.headers.getList("Allow-Events")
        return cls(response.code, response.reason, target, response, allowEvents)

    def __str__(self) -> str:
        if self.code:
            text = f"{self.code} {self.reason} from {self.target}"
        else:
            text = f"{self.reason}: {self.target}"
        if self.allowEvents:
            text += f" (it allows: {', '.join(self.allowEvents)})"
        return text


class SubscriptionTimedOut(SubscriptionFailed):
    """
    No NOTIFY before Timer N (RFC 6665 section 4.1.2.4), or no answer to
    the SUBSCRIBE (Timer F, RFC 3261 section 17.1.2.2) or a transport
    failure; code 408.
    """

    def __init__(self, reason: str, target: str) -> None:
        super().__init__(408, reason, target)

    def __str__(self) -> str:
        return f"No answer from {self.target}: {self.reason}"


class SubscriptionTerminated(SubscriptionFailed):
    """
    A subscription ended by a C{terminated} NOTIFY (RFC 6665 section 4.1.3)
    before it became active; code 0.

    @ivar termination: how it ended.
    """

    def __init__(self, target: str, termination: Termination) -> None:
        reason = "Subscription terminated"
        if termination.reason:
            reason += f" ({termination.reason})"
        super().__init__(0, reason, target)
        self.termination = termination


@dataclass(frozen=True, slots=True)
class Credentials:
    """
    A username and password to answer digest challenges with.

    @ivar realm: the one realm these credentials belong to (RFC 3261 section
        22.1: a realm names a protection domain), or C{None} to answer a
        challenge from any realm. Set it when the request crosses proxies
        that are not all to be trusted with the password's digest.
    """

    username: str
    password: str
    realm: str | None = None


@dataclass(frozen=True, slots=True)
class SIPUser:
    """
    A user the server authenticated (RFC 3261 section 22): the avatar
    L{sipevents.sip.authentication.SIPUserRealm} hands out for
    L{sipevents.interfaces.ISIPIdentity}, which it provides.

    The realm is the users' domain: C{alice} of realm C{example.com} is
    C{sip:alice@example.com}, as Kamailio's C{auth_check} with its From
    check sees it. On loopback the realm is C{127.0.0.1}.

    @ivar username: the Digest username, exactly as authenticated.
    @ivar realm: the realm it authenticated in.
    """

    username: str
    realm: str

    @property
    def addressOfRecord(self) -> str:
        """
        The user's address of record, C{sip:username@realm}.
        """
        return f"sip:{self.username}@{self.realm}"

    def owns(self, uri: URI) -> bool:
        """
        Whether C{uri} is this user's: a SIP or SIPS URI whose user part is
        the username (compared exactly) and whose host is the realm
        (case-insensitive, as host names are, RFC 3261 section 19.1.4).
        Port and parameters are ignored.
        """
        return (
            isinstance(uri, SIPURI)
            and uri.user == self.username
            and uri.host.lower() == self.realm.lower()
        )
