# -*- test-case-name: tests.test_errors -*-
"""
Exceptions that carry the SIP status to answer with.

Every error the core raises because of what a peer sent is a L{SIPError}: the
transport or UAS core turns it into a response with that status and reason
phrase (or drops the message and logs it when no response can be addressed).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sipevents.sip.message import Message


class SIPError(Exception):
    """
    A failure that maps onto a SIP final response.

    @ivar status: the status code to answer with, e.g. C{400}.
    @ivar reason: the reason phrase, which should say what was wrong.
    @ivar headers: extra header fields for the response, e.g.
        C{[("Min-Expires", "60")]} for a 423 or C{[("Unsupported", "foo")]}
        for a 420.
    """

    status: int = 500
    defaultReason: str = "Server Internal Error"

    def __init__(
        self,
        reason: str | None = None,
        status: int | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self.status = self.status if status is None else status
        self.reason = self.defaultReason if reason is None else reason
        self.headers = list(headers or ())
        super().__init__(self.status, self.reason)

    def __str__(self) -> str:
        return f"{self.status} {self.reason}"


class ParseError(SIPError):
    """
    The bytes are not a well-formed SIP message (RFC 3261 section 25), or a
    typed header view could not parse its value.

    This is the only exception that L{sipevents.sip.parser} raises for bad input.

    @ivar partial: as much of the message as could be read, when the start
        line and header section could be split (so that a 400 can be addressed
        from its Via, From, To, Call-ID and CSeq); otherwise C{None}.
    @ivar fatal: for stream transports, C{True} when message framing is lost
        and the connection must be closed.
    """

    status = 400
    defaultReason = "Bad Request"

    def __init__(
        self,
        reason: str | None = None,
        status: int | None = None,
        headers: list[tuple[str, str]] | None = None,
        partial: Message | None = None,
        fatal: bool = False,
    ) -> None:
        super().__init__(reason, status, headers)
        self.partial = partial
        self.fatal = fatal


class MessageTooLarge(ParseError):
    """
    The message is over the configured size, header count or line length
    (RFC 3261 section 18.1.1 and 20.14; answered with 513).
    """

    status = 513
    defaultReason = "Message Too Large"


class Unauthorized(SIPError):
    """
    401: the request must carry credentials, or carried ones that were
    refused (RFC 3261 section 21.4.2 and 22.2). The response carries a
    C{WWW-Authenticate} header per challenge (RFC 3261 section 22.2: at
    least one; RFC 8760 section 2.4: one per algorithm, the preferred first).

    @ivar challenges: the C{WWW-Authenticate} values, in order.
    """

    status = 401
    defaultReason = "Unauthorized"

    def __init__(self, challenges: Sequence[str], reason: str | None = None) -> None:
        super().__init__(
            reason, headers=[("WWW-Authenticate", value) for value in challenges]
        )
        self.challenges = list(challenges)


class Forbidden(SIPError):
    """403: the request is understood but refused (RFC 3261 section 21.4.4)."""

    status = 403
    defaultReason = "Forbidden"


class NotFound(SIPError):
    """404: the resource does not exist (RFC 3261 section 21.4.5)."""

    status = 404
    defaultReason = "Not Found"


class NotAcceptable(SIPError):
    """
    406: no body type the client accepts can be produced (RFC 3261 section
    21.4.7).
    """

    status = 406
    defaultReason = "Not Acceptable"


class ConditionalRequestFailed(SIPError):
    """412: unknown SIP-If-Match entity-tag (RFC 3903 section 11.2.1)."""

    status = 412
    defaultReason = "Conditional Request Failed"


class RequestEntityTooLarge(SIPError):
    """413: the body is over the configured limit (RFC 3261 section 21.4.11)."""

    status = 413
    defaultReason = "Request Entity Too Large"


class UnsupportedMediaType(SIPError):
    """
    415: the body type is not one we take (RFC 3261 section 21.4.13); give
    the C{Accept} header in C{headers}.
    """

    status = 415
    defaultReason = "Unsupported Media Type"


class IntervalTooBrief(SIPError):
    """
    423: the requested duration is below our minimum (RFC 3261 section
    21.4.17, RFC 6665 section 4.2.1.1, RFC 3903 section 6); carries the
    C{Min-Expires} header.
    """

    status = 423
    defaultReason = "Interval Too Brief"

    def __init__(self, minExpires: int, reason: str | None = None) -> None:
        super().__init__(reason, headers=[("Min-Expires", str(minExpires))])
        self.minExpires = minExpires


class CallDoesNotExist(SIPError):
    """
    481: the request is for a dialog or subscription we do not have
    (RFC 3261 section 12.2.2, RFC 6665 section 4.1.3 and 4.2.1).
    """

    status = 481
    defaultReason = "Subscription Does Not Exist"


class BadEvent(SIPError):
    """
    489: the Event package (or template) is not served (RFC 6665 section
    4.2.1.1 and 8.3.1); carries C{Allow-Events} listing the ones that are
    (section 4.4.4).
    """

    status = 489
    defaultReason = "Bad Event"

    def __init__(self, allowEvents: list[str], reason: str | None = None) -> None:
        headers = [("Allow-Events", ", ".join(allowEvents))] if allowEvents else []
        super().__init__(reason, headers=headers)
        self.allowEvents = list(allowEvents)


class TransactionTimeout(SIPError):
    """
    No final response arrived before Timer F fired (RFC 3261 section
    17.1.2.2), or no ACK before Timer H (section 17.2.1).

    A UAC treats it as a 408 response (RFC 3261 section 8.1.3.1).
    """

    status = 408
    defaultReason = "Request Timeout"


class TransportFailure(SIPError):
    """
    The transport layer could not send a message of the transaction (RFC 3261
    sections 17.1.4 and 17.2.4).

    A UAC treats it as a 503 response (RFC 3261 section 8.1.3.1).

    @ivar cause: what the transport reported, when it said anything.
    """

    status = 503
    defaultReason = "Service Unavailable"

    def __init__(
        self, reason: str | None = None, cause: BaseException | None = None
    ) -> None:
        super().__init__(reason)
        self.cause = cause


class InvalidTransition(RuntimeError):
    """
    A state machine was given an input its current state has no transition
    for. Nothing was done and the state is unchanged: this is a bug in the
    caller (or a peer's message the caller should have refused first), and
    is raised, never mapped to some other state.

    Every declared table of sipevents raises it: transactions (RFC 3261
    section 17), the notifier's subscriptions (RFC 6665 section 4.2) and the
    subscriber's (RFC 6665 section 4.1.2).

    @ivar machine: what refused it, as text (a C{repr} or a name).
    @ivar state: the state the machine was in.
    @ivar input: the refused input.
    """

    def __init__(self, machine: str, state: Enum, input: Enum, section: str) -> None:
        self.machine = machine
        self.state = state
        self.input = input
        super().__init__(
            f"{machine}: {input.value} is not allowed in state {state.value} "
            f"({section})"
        )
