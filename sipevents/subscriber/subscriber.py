# -*- test-case-name: tests.test_subscriber -*-
"""
The subscriber (RFC 6665 section 4.1): sends SUBSCRIBE, receives NOTIFY,
refreshes, re-subscribes and unsubscribes, over a L{UserAgent}.

L{Subscriber} is the L{IRequestHandler} for NOTIFY and the application's
L{ISubscriber}; each L{Subscription} it hands out is one dialog usage
(RFC 6665 section 4.1.2) that an L{ISubscriptionObserver} watches. The
decisions are pure functions (L{nextState} for the state diagram of
section 4.1.2, L{retryDelay}, L{refreshDelay}, L{grantedExpires}); the
classes apply them with the clock and the user agent.

Choices made where the RFCs leave one:

  - B{Expires of a 2xx.} A 2xx without Expires (which RFC 6665 section
    3.1.1 forbids) is taken to grant the duration we asked for, or 3600
    seconds when we asked for none: the default of presence (RFC 3856
    section 6.4) and message-summary (RFC 3842 section 4.1). An
    C{expires=} in a later C{active} or C{pending} NOTIFY is authoritative
    (section 4.1.3) and replaces it, shorter or longer.
  - B{Refresh timing} (section 4.1.2.2): a refresh is sent
    C{min(32, duration / 2)} seconds before the subscription expires:
    32 seconds is Timer F (64*T1 with the default T1), so a refresh that
    needs all its retransmissions still lands in time, and short
    subscriptions are refreshed half way. A refresh answered with an
    error that does not end the subscription is tried again half way to
    the expiry (while a second or more remains); at the expiry the
    subscription is ended locally.
  - B{Forks} (section 4.1.4 and 4.4.1): a NOTIFY whose From tag differs
    from the dialog already established (by the 2xx or an earlier
    NOTIFY) creates a sibling L{Subscription} (C{forkOf} set), reported
    through C{subscriptionStarted}, until Timer N after the SUBSCRIBE was
    sent; later ones get 481 (section 4.1.2.4). A terminated NOTIFY never
    creates one (section 4.4.1). Forks refresh themselves in their own
    dialog, but never re-subscribe: a re-subscription is a new SUBSCRIBE
    from the main handle, which forks again by itself. Unsubscribing the
    main handle unsubscribes its live forks too.
  - B{Re-subscription} (section 4.1.3). Only the main handle of
    L{Subscriber.subscribe} re-subscribes, with a new Call-ID and From tag
    (section 4.1.2.2), on the same handle (C{Termination.willRetry}).
    C{deactivated} and C{timeout}: at once (section 4.4.2). C{probation},
    C{giveup}, no reason and unknown reasons: after C{retry-after} when
    given, otherwise after a back-off. C{rejected}, C{noresource},
    C{invariant}: never. A refresh answered 481 is re-subscribed like
    C{deactivated} (RFC 3265 section 3.1.4.2); Timer N firing after a
    refresh, or a local expiry, like no reason. A re-subscription whose
    SUBSCRIBE fails with 408, 480, 500, 503, 504, 600 or no answer is
    tried again after C{Retry-After} or the back-off; any other failure,
    and every failure of the first attempt, ends the handle.
  - B{Back-off} (L{backoff}): the formula of RFC 5626 section 4.5, base 30
    seconds, doubling per consecutive failed retry, capped at 1800
    seconds, with a uniform jitter between 50% and 100% of that from the
    subscriber's C{random}. Immediate retries are tight-loop guarded:
    after 3 retries in a row that did not reach C{active}, a retry that
    would come sooner than a second is backed off instead.
  - B{fetch} (section 4.4.3) fires with the first NOTIFY. When that NOTIFY
    is not C{terminated} (a notifier that ignored C{Expires: 0}), the
    subscription is unsubscribed at once, so no state is left behind at
    either end; forks of a fetch are unsubscribed the same way.
  - B{Unsubscribe} (section 4.1.2.3) ends on the final NOTIFY, or after
    Timer N, or at once when the SUBSCRIBE is answered with an error (481:
    it was gone already) or when nothing was established yet (a late
    NOTIFY then gets 481, which ends it at the notifier, section 4.2.2).
  - B{NOTIFY checks}, in order (section 4.1.3): no To tag, or no
    subscription for the dialog or the SUBSCRIBE it answers, 481; no
    Event, 400; an Event type or C{id} (compared byte by byte, section
    8.2.1) other than the one subscribed, 489; a missing or malformed
    Subscription-State, 400; a CSeq lower than the last, 500 (RFC 3261
    section 12.2.2); a malformed Contact, 400. Otherwise 200, sent before
    the observer is called, whatever the observer does. An unknown
    Subscription-State value is answered 200 and reported, changing
    nothing.
  - B{Timer N} is 64*T1 of the L{TimerConfig} (section 4.1.2.4), started
    for every SUBSCRIBE sent and cancelled by a NOTIFY in the usage or a
    final error response.
  - B{Dialog}: built from the 2xx as RFC 3261 section 12.1.2 says (route
    set from Record-Route reversed), then from the first NOTIFY, whose
    route set (Record-Route in order) replaces it (RFC 6665 section
    4.4.1). A NOTIFY without Contact keeps the remote target known (the
    2xx's Contact, else the Request-URI). Over TCP or TLS with an empty
    route set, in-dialog SUBSCRIBEs go where the first one went (our own
    connection), see L{sipevents.sip.dialog.nextHop}.
"""

from __future__ import annotations

import random as _random
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, fail, gatherResults, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from sipevents.config import TimerConfig
from sipevents.errors import CallDoesNotExist, InvalidTransition, ParseError, SIPError
from sipevents.events import (
    Notification,
    SubscriptionFailed,
    SubscriptionTerminated,
    SubscriptionTimedOut,
    Termination,
)
from sipevents.interfaces import (
    IRequestContext,
    IRequestHandler,
    ISubscriber,
    ISubscription,
    ISubscriptionObserver,
)
from sipevents.sip import digest
from sipevents.sip.addresses import Target
from sipevents.sip.dialog import (
    MAX_FORWARDS,
    buildRequest,
    checkRemoteCSeq,
    listeningContact,
    nextHop,
    remoteTargetOf,
)
from sipevents.sip.headers import Event, SubscriptionState
from sipevents.sip.message import Request, Response
from sipevents.sip.routing import targetFromURI
from sipevents.sip.uri import SIPURI, formatURI, parseURI

if TYPE_CHECKING:
    from sipevents.events import Credentials
    from sipevents.sip.useragent import UserAgent

__all__ = [
    "DEFAULT_EXPIRES",
    "TERMINATING_REFRESH_CODES",
    "ClientDialog",
    "ClientInput",
    "ClientState",
    "Subscriber",
    "Subscription",
    "SubscriptionObserver",
    "backoff",
    "grantedExpires",
    "nextState",
    "refreshDelay",
    "retryDelay",
]

#: The duration assumed when a 2xx has no Expires and we asked for none
#: (see the module docstring).
DEFAULT_EXPIRES = 3600

#: The most seconds a refresh is sent before the expiry: Timer F with the
#: default T1.
REFRESH_MARGIN = 32.0

#: Responses to a refresh that end the subscription (RFC 6665 section
#: 4.1.2.2).
TERMINATING_REFRESH_CODES = frozenset(
    {404, 405, 410, 416, 480, 481, 482, 483, 484, 485, 489, 501, 604}
)

#: Responses to a re-subscription's SUBSCRIBE after which we try again
#: later: the notifier is busy, restarting or unreachable, not refusing.
RETRIABLE_CODES = frozenset({408, 480, 500, 503, 504, 600})

#: Reasons after which we never re-subscribe (RFC 6665 section 4.1.3).
NO_RETRY_REASONS = frozenset({"rejected", "noresource", "invariant"})

#: Reasons after which we re-subscribe at once (RFC 6665 section 4.1.3).
IMMEDIATE_REASONS = frozenset({"deactivated", "timeout"})

#: The back-off of RFC 5626 section 4.5: base and cap in seconds.
BACKOFF_BASE = 30.0
BACKOFF_CAP = 1800.0

#: Immediate retries in a row, without reaching active, before backing off.
IMMEDIATE_RETRIES = 3

#: Local addresses that are not addresses: a Contact needs a real one.


#: URI parameters that RFC 3261 section 19.1.1 (table 1) leaves out of a
#: To field: they say how to reach the target, not who it is.
_ROUTING_PARAMS = frozenset({"transport", "maddr", "ttl", "lr", "method"})


def _addressOfRecord(target: str) -> str:
    """
    The URI of the To field of an initial SUBSCRIBE to C{target}: the
    target without port, routing parameters or headers (RFC 3261 section
    19.1.1, table 1), so that the notifier sees the resource, not the way
    it was reached; the Request-URI keeps them.
    """
    uri = parseURI(target)
    if not isinstance(uri, SIPURI):
        return target
    params = tuple(p for p in uri.params if p[0].lower() not in _ROUTING_PARAMS)
    return formatURI(replace(uri, port=None, params=params, headers=()))


class ClientState(Enum):
    """
    The states of a subscription at the subscriber (RFC 6665 section
    4.1.2).
    """

    INIT = "init"
    NOTIFY_WAIT = "notify_wait"
    PENDING = "pending"
    ACTIVE = "active"
    TERMINATED = "terminated"


class ClientInput(Enum):
    """
    What moves a subscription from state to state (RFC 6665 section 4.1.2).

    @cvar SEND_SUBSCRIBE: a SUBSCRIBE is sent (initial, refresh or
        unsubscribe).
    @cvar NOTIFY_ACTIVE: a NOTIFY with C{active}.
    @cvar NOTIFY_PENDING: a NOTIFY with C{pending}.
    @cvar NOTIFY_TERMINATED: a NOTIFY with C{terminated}.
    @cvar FAILURE: Timer N fires, the SUBSCRIBE fails, a refresh is
        answered with a code that ends the subscription, or it expires.
    @cvar RETRY: the wait before a re-subscription is over.
    """

    SEND_SUBSCRIBE = "send SUBSCRIBE"
    NOTIFY_ACTIVE = "NOTIFY active"
    NOTIFY_PENDING = "NOTIFY pending"
    NOTIFY_TERMINATED = "NOTIFY terminated"
    FAILURE = "failure"
    RETRY = "retry"


_S = ClientState
_I = ClientInput

#: The state diagram of RFC 6665 section 4.1.2, with the transitions back
#: to the same state it leaves out. Active back to pending is not in the
#: diagram; it is accepted, since a notifier may need to authorize again.
TRANSITIONS: dict[tuple[ClientState, ClientInput], ClientState] = {
    (_S.INIT, _I.SEND_SUBSCRIBE): _S.NOTIFY_WAIT,
    (_S.NOTIFY_WAIT, _I.SEND_SUBSCRIBE): _S.NOTIFY_WAIT,
    (_S.NOTIFY_WAIT, _I.NOTIFY_ACTIVE): _S.ACTIVE,
    (_S.NOTIFY_WAIT, _I.NOTIFY_PENDING): _S.PENDING,
    (_S.NOTIFY_WAIT, _I.NOTIFY_TERMINATED): _S.TERMINATED,
    (_S.NOTIFY_WAIT, _I.FAILURE): _S.TERMINATED,
    (_S.PENDING, _I.SEND_SUBSCRIBE): _S.PENDING,
    (_S.PENDING, _I.NOTIFY_ACTIVE): _S.ACTIVE,
    (_S.PENDING, _I.NOTIFY_PENDING): _S.PENDING,
    (_S.PENDING, _I.NOTIFY_TERMINATED): _S.TERMINATED,
    (_S.PENDING, _I.FAILURE): _S.TERMINATED,
    (_S.ACTIVE, _I.SEND_SUBSCRIBE): _S.ACTIVE,
    (_S.ACTIVE, _I.NOTIFY_ACTIVE): _S.ACTIVE,
    (_S.ACTIVE, _I.NOTIFY_PENDING): _S.PENDING,
    (_S.ACTIVE, _I.NOTIFY_TERMINATED): _S.TERMINATED,
    (_S.ACTIVE, _I.FAILURE): _S.TERMINATED,
    (_S.TERMINATED, _I.RETRY): _S.INIT,
}


def nextState(state: ClientState, event: ClientInput) -> ClientState:
    """
    The state after C{event} in C{state} (RFC 6665 section 4.1.2).

    @raise InvalidTransition: when the diagram has no such arrow.
    """
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise InvalidTransition(
            "subscriber", state, event, "RFC 6665 section 4.1.2"
        ) from None


def backoff(attempt: int, random: _random.Random) -> float:
    """
    Seconds to wait before retry number C{attempt} (from 0) after failures
    in a row: RFC 5626 section 4.5, C{min(1800, 30 * 2**attempt)}, times a
    uniform jitter in [0.5, 1].
    """
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * (1 << min(attempt, 16)))
    return ceiling * random.uniform(0.5, 1.0)


def retryDelay(
    reason: str | None,
    retryAfter: int | None,
    attempt: int,
    random: _random.Random,
) -> float | None:
    """
    When to re-subscribe after a subscription ended with C{reason}
    (RFC 6665 section 4.1.3; see the module docstring).

    @param reason: the Subscription-State reason (lower case), or C{None}.
    @param retryAfter: its C{retry-after}, or C{None}.
    @param attempt: re-subscriptions made in a row without reaching
        C{active}.
    @param random: the source of jitter.
    @return: seconds to wait, or C{None} for never.
    """
    if reason in NO_RETRY_REASONS:
        return None
    if reason in IMMEDIATE_REASONS:
        # retry-after has no semantics for these (section 4.1.3).
        delay = 0.0
    elif retryAfter is not None:
        delay = float(retryAfter)
    else:
        return backoff(attempt, random)
    if delay < 1.0 and attempt >= IMMEDIATE_RETRIES:
        # A notifier terminating every new subscription at once must not
        # make us loop as fast as the network goes.
        return backoff(attempt - IMMEDIATE_RETRIES, random)
    return delay


def refreshDelay(duration: float) -> float:
    """
    Seconds after a duration of C{duration} was granted at which to
    refresh (RFC 6665 section 4.1.2.2): C{min(32, duration / 2)} before
    the expiry.
    """
    return duration - min(REFRESH_MARGIN, duration / 2)


def grantedExpires(response: Response, asked: int | None) -> int:
    """
    The duration a 2xx to SUBSCRIBE grants (RFC 6665 section 3.1.1): its
    Expires; without one (or a malformed one), what was C{asked}, else
    L{DEFAULT_EXPIRES}.
    """
    try:
        expires = response.expires
    except ParseError:
        expires = None
    if expires is not None:
        return expires
    return DEFAULT_EXPIRES if asked is None else asked


@dataclass(frozen=True, slots=True)
class ClientDialog:
    """
    The dialog of a subscription at the subscriber (RFC 3261 section
    12.1.2, RFC 6665 section 4.4.1); a L{sipevents.sip.dialog.DialogLike}, so
    L{sipevents.sip.dialog.buildRequest} and L{sipevents.sip.dialog.nextHop} build
    and route the in-dialog SUBSCRIBEs.

    @ivar callId: the Call-ID of our SUBSCRIBE.
    @ivar localTag: our From tag.
    @ivar remoteTag: the notifier's tag (the 2xx's To tag, the NOTIFY's
        From tag).
    @ivar localUri: our From URI (no tag).
    @ivar remoteUri: the URI we subscribed to, the To of our requests.
    @ivar remoteTarget: the notifier's Contact URI.
    @ivar routeSet: the route set, as Route header values.
    @ivar remoteCSeq: the CSeq of the last NOTIFY, or C{None} before one.
    @ivar secure: whether the dialog is SIPS.
    @ivar flowTransport: the transport of the first SUBSCRIBE.
    @ivar flowHost: where the first SUBSCRIBE went.
    @ivar flowPort: likewise.
    """

    callId: str
    localTag: str
    remoteTag: str
    localUri: str
    remoteUri: str
    remoteTarget: str
    routeSet: tuple[str, ...]
    remoteCSeq: int | None
    secure: bool
    flowTransport: str
    flowHost: str
    flowPort: int


@implementer(ISubscriptionObserver)
class SubscriptionObserver:
    """
    An L{ISubscriptionObserver} that does nothing: subclass it and override
    what you need.
    """

    def notificationReceived(
        self, subscription: ISubscription, notification: Notification
    ) -> None:
        pass

    def subscriptionStarted(self, subscription: ISubscription) -> None:
        pass

    def subscriptionEnded(
        self, subscription: ISubscription, termination: Termination
    ) -> None:
        pass


@dataclass(frozen=True, slots=True)
class _Options:
    """
    What L{Subscriber.subscribe} was asked, kept for refreshes and
    re-subscriptions.
    """

    accept: tuple[str, ...]
    expires: int | None
    body: bytes
    contentType: str | None
    headers: tuple[tuple[str, str], ...]
    proxy: str | None
    credentials: Credentials | None
    fromUri: str | None


class _Kind(Enum):
    INITIAL = "initial"
    REFRESH = "refresh"
    UNSUBSCRIBE = "unsubscribe"


class _Exchange:
    """
    One SUBSCRIBE and the requests that answer its challenges, 423 or 3xx
    (RFC 3261 section 8.1.3 and 22.2, RFC 6665 section 4.1.2.1).
    """

    __slots__ = (
        "kind",
        "request",
        "target",
        "generation",
        "expires",
        "sentAt",
        "grantsAtSend",
        "authTries",
        "retried423",
        "redirected",
        "deferred",
        "started",
        "settled",
    )

    def __init__(
        self,
        kind: _Kind,
        request: Request,
        target: Target,
        generation: int,
        expires: int | None,
    ) -> None:
        self.kind = kind
        self.request = request
        self.target = target
        self.generation = generation
        self.expires = expires
        self.sentAt = 0.0
        self.grantsAtSend = 0
        self.authTries = 0
        self.retried423 = False
        self.redirected = False
        self.deferred: Deferred[None] | None = None
        self.started = False
        self.settled = False


def _contentTypeOf(request: Request) -> str | None:
    if not request.body:
        return None
    try:
        contentType = request.contentType
    except ParseError:
        return None
    return None if contentType is None else contentType.mimeType


@implementer(ISubscription)
class Subscription:
    """
    One subscription at the subscriber: one dialog usage (RFC 6665 section
    4.1.2), and the user's handle on it. The main handle returned by
    L{Subscriber.subscribe} lives on through re-subscriptions (each a new
    dialog); forks (C{forkOf} set) are made by forked NOTIFYs.

    @ivar subscriber: the L{Subscriber}.
    @ivar target: the URI subscribed to, as text.
    @ivar event: the event type (C{"presence"}, C{"presence.winfo"}).
    @ivar id: the Event C{id}, or C{None}.
    @ivar state: the L{ClientState}.
    @ivar notification: the latest L{Notification}, or C{None}.
    @ivar expiresAt: the clock's time the subscription ends unless
        refreshed, or C{None} before anything said.
    @ivar dialog: the L{ClientDialog}, C{None} until the first NOTIFY or
        2xx.
    @ivar forkOf: the main handle of a fork, else C{None}.
    @ivar forks: the live forks of a main handle.
    @ivar observer: the L{ISubscriptionObserver}.
    """

    log = Logger()

    def __init__(
        self,
        subscriber: Subscriber,
        target: str,
        event: str,
        id: str | None,
        observer: ISubscriptionObserver,
        options: _Options,
        forkOf: Subscription | None = None,
        fetch: bool = False,
    ) -> None:
        self.subscriber = subscriber
        self.target = target
        self.event = event
        self.id = id
        self.observer = observer
        self.state = ClientState.INIT
        self.notification: Notification | None = None
        self.expiresAt: float | None = None
        self.dialog: ClientDialog | None = None
        self.forkOf = forkOf
        self.forks: list[Subscription] = []
        self._options = options
        self._fetch = fetch
        # Only the main handle of a lasting subscription re-subscribes.
        self._retryAllowed = forkOf is None and not fetch and options.expires != 0
        self._wanted = True
        self._expires = options.expires
        self._requestURI = target
        self._fromUri = ""
        self._callId = ""
        self._localTag = ""
        self._cseq = 0
        self._contact = ""
        self._firstTarget: Target | None = None
        self._secure = False
        self._generation = 0
        self._notified = False
        self._retrying = False
        self._retries = 0
        self._unsubscribing = False
        self._unsubscribeExchange: _Exchange | None = None
        self._inFlight = 0
        self._forkDeadline = 0.0
        self._grants = 0
        self._lastFailure: SubscriptionFailed | None = None
        self._timerN: IDelayedCall | None = None
        self._refreshCall: IDelayedCall | None = None
        self._expiryCall: IDelayedCall | None = None
        self._retryCall: IDelayedCall | None = None
        self._ended: Termination | None = None
        self._activeWaiters: list[Deferred[Notification]] = []
        self._notifyWaiters: list[Deferred[Notification]] = []
        self._terminatedWaiters: list[Deferred[Termination]] = []
        self._unsubscribeWaiters: list[Deferred[Termination]] = []

    def __repr__(self) -> str:
        fork = " (fork)" if self.forkOf is not None else ""
        return (
            f"<Subscription {Event(self.event, id=self.id)} to {self.target}"
            f" {self.state.value}{fork}>"
        )

    # Public API

    def whenActive(self) -> Deferred[Notification]:
        """
        A L{Deferred} that fires with the first C{active} NOTIFY (at once
        with the latest one when active already), or fails with a
        L{SubscriptionFailed} when the subscription ends for good before
        (C{pending} NOTIFYs do not fire it; a re-subscription keeps it
        waiting).
        """
        if self._ended is not None:
            return fail(self._failureOf(self._ended))
        if self.state is ClientState.ACTIVE and self.notification is not None:
            return succeed(self.notification)
        d: Deferred[Notification] = Deferred()
        self._activeWaiters.append(d)
        return d

    def whenTerminated(self) -> Deferred[Termination]:
        """
        A L{Deferred} that fires with the L{Termination} once the
        subscription has ended for good (no re-subscription to come).
        """
        if self._ended is not None:
            return succeed(self._ended)
        d: Deferred[Termination] = Deferred()
        self._terminatedWaiters.append(d)
        return d

    def refresh(self, expires: int | None = None) -> Deferred[None]:
        """
        Send a refreshing SUBSCRIBE in the dialog now (RFC 6665 section
        4.1.2.2), asking for C{expires} seconds (and from now on), or for
        what was asked before.

        @return: a L{Deferred} that fires with C{None} on a 2xx, or fails
            with L{SubscriptionFailed} (also when there is no dialog to
            refresh in yet, or any more).
        """
        dialog = self.dialog
        if (
            self._ended is not None
            or dialog is None
            or self._unsubscribing
            or self.state is ClientState.TERMINATED
        ):
            return fail(
                SubscriptionFailed(0, "Subscription not established", self.target)
            )
        if expires is not None:
            self._expires = expires
        self._cancel("_refreshCall")
        try:
            exchange = self._inDialogExchange(_Kind.REFRESH, self._expires)
        except ValueError as e:
            return fail(SubscriptionFailed(0, f"Cannot refresh ({e})", self.target))
        d: Deferred[None] = Deferred()
        exchange.deferred = d
        self._transmit(exchange)
        return d

    def unsubscribe(self) -> Deferred[Termination]:
        """
        End the subscription (RFC 6665 section 4.1.2.3): C{Expires: 0} in
        the dialog, and no re-subscription any more; the live forks of a
        main handle are unsubscribed too.

        @return: a L{Deferred} that fires with the L{Termination} on the
            final NOTIFY, after Timer N without one, when the SUBSCRIBE
            fails, or at once when nothing is established. It never fails.
        """
        if self._ended is not None:
            return succeed(self._ended)
        d: Deferred[Termination] = Deferred()
        self._unsubscribeWaiters.append(d)
        self._wanted = False
        for name in ("_retryCall", "_refreshCall", "_expiryCall"):
            self._cancel(name)
        for fork in list(self.forks):
            fork.unsubscribe()
        if self._unsubscribing:
            return d
        if self.dialog is None or self.state in (
            ClientState.INIT,
            ClientState.TERMINATED,
        ):
            reported = self.state is not ClientState.TERMINATED
            self._endUsage()
            termination = Termination()
            if reported:
                self.state = ClientState.TERMINATED
                self._callObserver("subscriptionEnded", self, termination)
            self._finish(termination)
            return d
        try:
            exchange = self._inDialogExchange(_Kind.UNSUBSCRIBE, 0)
        except ValueError as e:
            self.log.warn("Cannot unsubscribe {sub!r}: {error}", sub=self, error=str(e))
            self._endUsage()
            self._finish(Termination())
            return d
        self._unsubscribing = True
        self._unsubscribeExchange = exchange
        self._transmit(exchange)
        return d

    # Starting attempts

    def _start(self) -> None:
        """
        Send a SUBSCRIBE outside any dialog (RFC 6665 section 4.1.2.1) with
        a new Call-ID and From tag.

        @raise ValueError: when the target or proxy cannot be routed to, or
            we know no address of ours for the Contact.
        """
        subscriber = self.subscriber
        self._generation += 1
        self._callId = secrets.token_hex(12)
        self._localTag = secrets.token_hex(8)
        self._cseq = 0
        self.dialog = None
        self._notified = False
        self._lastFailure = None
        uri = parseURI(self._requestURI)
        proxy = self._options.proxy
        target = targetFromURI(parseURI(proxy) if proxy else uri)
        self._secure = isinstance(uri, SIPURI) and uri.scheme == "sips"
        self._firstTarget = target
        self._contact, host = subscriber._contactFor(target, self._secure)
        self._fromUri = (
            self._options.fromUri or subscriber.localUri or (f"sip:sipevents@{host}")
        )
        subscriber._attemptStarted(self)
        exchange = _Exchange(
            _Kind.INITIAL,
            self._initialRequest(),
            target,
            self._generation,
            self._expires,
        )
        self._transmit(exchange)

    def _initialRequest(self) -> Request:
        """
        The next SUBSCRIBE outside a dialog (RFC 3261 section 8.1.1), with
        the proxy as a preloaded loose route (section 8.1.2).
        """
        options = self._options
        self._cseq += 1
        fields: list[tuple[str, str]] = [
            ("Max-Forwards", MAX_FORWARDS),
            ("To", f"<{_addressOfRecord(self.target)}>"),
            ("From", f"<{self._fromUri}>;tag={self._localTag}"),
            ("Call-ID", self._callId),
            ("CSeq", f"{self._cseq} SUBSCRIBE"),
        ]
        if options.proxy:
            proxy = parseURI(options.proxy)
            if isinstance(proxy, SIPURI) and not proxy.hasParam("lr"):
                proxy = proxy.withParam("lr")
            fields.append(("Route", f"<{formatURI(proxy)}>"))
        fields.extend(self._subscribeFields(self._expires))
        return Request("SUBSCRIBE", parseURI(self._requestURI), fields, options.body)

    def _subscribeFields(self, expires: int | None) -> list[tuple[str, str]]:
        """
        The fields every SUBSCRIBE of ours carries after the dialog ones.
        """
        options = self._options
        fields = [("Event", str(Event(self.event, id=self.id)))]
        if expires is not None:
            fields.append(("Expires", str(expires)))
        fields.append(("Contact", f"<{self._contact}>"))
        if options.accept:
            fields.append(("Accept", ", ".join(options.accept)))
        if options.body and options.contentType:
            fields.append(("Content-Type", options.contentType))
        fields.extend(options.headers)
        return fields

    def _inDialogExchange(self, kind: _Kind, expires: int | None) -> _Exchange:
        """
        A refreshing or unsubscribing SUBSCRIBE in the dialog (RFC 3261
        section 12.2.1.1, RFC 6665 section 4.1.2.2).

        @raise ValueError: when the dialog's next hop cannot be routed to.
        """
        dialog = self.dialog
        assert dialog is not None
        target = nextHop(dialog)
        self._cseq += 1
        request = buildRequest(
            dialog,
            "SUBSCRIBE",
            self._cseq,
            self._subscribeFields(expires),
            self._options.body,
        )
        return _Exchange(kind, request, target, self._generation, expires)

    # Sending

    def _transmit(self, exchange: _Exchange) -> None:
        """
        Send the exchange's request, with Timer N (RFC 6665 section
        4.1.2.4), and state it.
        """
        clock = self.subscriber.clock
        request = exchange.request
        cseq = request.cseq
        if cseq is not None:
            self._cseq = max(self._cseq, cseq.number)
        exchange.sentAt = clock.seconds()
        exchange.grantsAtSend = self._grants
        if exchange.kind is _Kind.INITIAL:
            self._forkDeadline = exchange.sentAt + self.subscriber.timerN
        if not exchange.started:
            exchange.started = True
            self._inFlight += 1
            if exchange.kind is _Kind.INITIAL:
                self.state = nextState(self.state, ClientInput.SEND_SUBSCRIBE)
        self._cancel("_timerN")
        self._timerN = clock.callLater(self.subscriber.timerN, self._timerNFired)
        self.log.debug(
            "Sending {kind} SUBSCRIBE for {sub!r} to {host}:{port}",
            kind=exchange.kind.value,
            sub=self,
            host=exchange.target.host,
            port=exchange.target.port,
        )
        d = self.subscriber.userAgent.sendRequest(request, exchange.target)
        d.addCallbacks(
            self._answered,
            self._notAnswered,
            callbackArgs=(exchange,),
            errbackArgs=(exchange,),
        )
        d.addErrback(self._crashed, "processing the answer to a SUBSCRIBE")

    def _crashed(self, failure: Failure, what: str) -> None:
        self.log.failure(
            "Unexpected error {what} for {sub!r}", failure, what=what, sub=self
        )

    def _settle(self, exchange: _Exchange, error: SubscriptionFailed | None) -> None:
        """
        The exchange is over: fire its L{Deferred}.
        """
        if exchange.settled:
            return
        exchange.settled = True
        self._inFlight -= 1
        d = exchange.deferred
        if d is not None:
            if error is None:
                d.callback(None)
            else:
                d.errback(error)

    def _answered(self, response: Response, exchange: _Exchange) -> None:
        """
        A final response to a SUBSCRIBE of C{exchange}.
        """
        code = response.code
        stale = exchange.generation != self._generation or self._ended is not None
        if stale:
            self.log.debug(
                "Ignored {code} to a SUBSCRIBE of an earlier attempt of {sub!r}",
                code=code,
                sub=self,
            )
            failure = (
                None
                if 200 <= code < 300
                else SubscriptionFailed.fromResponse(response, self.target)
            )
            self._settle(exchange, failure)
            return
        if code in (401, 407):
            request = self._authorized(exchange, response)
            if request is not None:
                exchange.request = request
                exchange.authTries += 1
                self._transmit(exchange)
                return
        elif (
            code == 423
            and not exchange.retried423
            and exchange.kind is not _Kind.UNSUBSCRIBE
        ):
            # RFC 6665 section 4.1.2.1 and RFC 3261 section 21.4.17: once,
            # with the Min-Expires the notifier asks for.
            try:
                minExpires = response.minExpires
            except ParseError:
                minExpires = None
            if minExpires is not None:
                self._expires = minExpires
                exchange.expires = minExpires
                exchange.retried423 = True
                exchange.authTries = 0
                self._reissue(exchange)
                return
        elif (
            300 <= code < 400
            and exchange.kind is _Kind.INITIAL
            and not exchange.redirected
        ):
            # RFC 3261 section 8.1.3.4: once, to the first Contact.
            redirect = self._redirectTarget(response)
            try:
                target = targetFromURI(parseURI(self._options.proxy or redirect or ""))
            except ValueError:
                redirect = None
            if redirect is not None:
                self._requestURI = redirect
                self._firstTarget = exchange.target = target
                exchange.redirected = True
                exchange.authTries = 0
                self._reissue(exchange)
                return
        if 200 <= code < 300:
            self._succeeded(response, exchange)
        else:
            self._failed(
                exchange, SubscriptionFailed.fromResponse(response, self.target)
            )

    def _reissue(self, exchange: _Exchange) -> None:
        """
        Send the exchange's request again, rebuilt with the next CSeq.
        """
        if exchange.kind is _Kind.INITIAL:
            exchange.request = self._initialRequest()
        else:
            rebuilt = self._inDialogExchange(exchange.kind, exchange.expires)
            exchange.request = rebuilt.request
        self._transmit(exchange)

    def _redirectTarget(self, response: Response) -> str | None:
        try:
            contacts = response.contacts
        except ParseError:
            return None
        for contact in contacts:
            if isinstance(contact.uri, SIPURI):
                return formatURI(contact.uri)
        return None

    def _authorized(self, exchange: _Exchange, response: Response) -> Request | None:
        """
        The request answering a 401 or 407 (RFC 3261 section 22.2), or
        C{None} when we must not answer: no credentials, no usable
        challenge, or one already answered that is not C{stale}.
        """
        credentials = self._options.credentials
        if credentials is None:
            return None
        if exchange.authTries > 0:
            if exchange.authTries >= 3 or not self._staleChallenge(response):
                return None
        try:
            return digest.authorize(exchange.request, response, credentials, 1)
        except Exception:
            self.log.failure("Could not answer the challenge for {sub!r}", sub=self)
            return None

    @staticmethod
    def _staleChallenge(response: Response) -> bool:
        for name in ("WWW-Authenticate", "Proxy-Authenticate"):
            for value in response.headers.getAll(name):
                try:
                    if digest.parseChallenge(value).stale:
                        return True
                except ValueError:
                    continue
        return False

    def _notAnswered(self, failure: Failure, exchange: _Exchange) -> None:
        """
        The SUBSCRIBE transaction timed out (Timer F) or the transport
        failed: no answer (RFC 3261 section 8.1.3.1).
        """
        error = SubscriptionTimedOut(failure.getErrorMessage(), self.target)
        if exchange.generation != self._generation or self._ended is not None:
            self._settle(exchange, error)
            return
        self._failed(exchange, error)

    def _succeeded(self, response: Response, exchange: _Exchange) -> None:
        """
        A 2xx (200, or 202 from RFC 3265 notifiers, RFC 3265 section
        3.1.4.1) to one of our SUBSCRIBEs.
        """
        self._settle(exchange, None)
        if response.code == 204:
            # RFC 6665 section 4.1.2.2 (RFC 5839): no NOTIFY will come.
            self._cancel("_timerN")
        if exchange.kind is _Kind.UNSUBSCRIBE:
            return
        if exchange.kind is _Kind.INITIAL:
            toAddr = response.toAddr
            tag = toAddr.tag if toAddr is not None else None
            if self.dialog is None and tag:
                self._dialogFromResponse(response, tag, exchange)
            elif self.dialog is not None and tag != self.dialog.remoteTag:
                # The 2xx came from another branch than the NOTIFY that
                # made our dialog; that branch's NOTIFY will fork.
                return
        self._grant(grantedExpires(response, exchange.expires), exchange.grantsAtSend)

    def _dialogFromResponse(
        self, response: Response, tag: str, exchange: _Exchange
    ) -> None:
        """
        The dialog a 2xx creates at the UAC (RFC 3261 section 12.1.2):
        route set from Record-Route reversed, remote target from Contact.
        """
        try:
            routes = tuple(str(r) for r in reversed(response.recordRoutes))
            contacts = response.contacts
        except ParseError:
            routes, contacts = (), []
        remoteTarget = self._requestURI
        if contacts and isinstance(contacts[0].uri, SIPURI):
            remoteTarget = formatURI(contacts[0].uri)
        self.dialog = self._newDialog(
            tag, remoteTarget, routes, None, self._firstTarget or exchange.target
        )
        self.subscriber._dialogStarted(self)

    def _newDialog(
        self,
        remoteTag: str,
        remoteTarget: str,
        routeSet: tuple[str, ...],
        remoteCSeq: int | None,
        first: Target,
    ) -> ClientDialog:
        """
        This usage's dialog with the notifier that answered or NOTIFYed
        from C{remoteTag}, its flow that of the first SUBSCRIBE, sent to
        C{first}.
        """
        return ClientDialog(
            callId=self._callId,
            localTag=self._localTag,
            remoteTag=remoteTag,
            localUri=self._fromUri,
            remoteUri=self.target,
            remoteTarget=remoteTarget,
            routeSet=routeSet,
            remoteCSeq=remoteCSeq,
            secure=self._secure,
            flowTransport=first.transport.upper(),
            flowHost=first.host,
            flowPort=first.port,
        )

    def _failed(self, exchange: _Exchange, error: SubscriptionFailed) -> None:
        """
        A SUBSCRIBE of ours failed: answered with an error, or not at all.
        """
        self._settle(exchange, error)
        self._cancel("_timerN")
        self.log.info(
            "SUBSCRIBE for {sub!r} failed: {error}", sub=self, error=str(error)
        )
        kind = exchange.kind
        if kind is _Kind.UNSUBSCRIBE:
            # 481: it was gone already, which is what we wanted.
            failure = None if error.code == 481 else error
            self._terminate(None, None, None, failure, None)
        elif kind is _Kind.INITIAL:
            delay = None
            if self._retrying and self._retryAllowed and self._wanted:
                if (
                    isinstance(error, SubscriptionTimedOut)
                    or error.code in RETRIABLE_CODES
                ):
                    delay = self._retryAfterHeader(error.response)
                    if delay is None:
                        delay = backoff(self._retries, self.subscriber.random)
            self._terminate(None, None, None, error, delay)
        elif error.code in TERMINATING_REFRESH_CODES:
            reason = "deactivated" if error.code == 481 else "rejected"
            self._terminate(None, None, None, error, self._retryFor(reason, None))
        elif isinstance(error, SubscriptionTimedOut):
            # "Re-subscription times out" (RFC 6665 section 4.1.2).
            self._terminate(None, None, None, error, self._retryFor(None, None))
        else:
            # Still valid until it expires (RFC 6665 section 4.1.2.2); try
            # again half way there.
            self._lastFailure = error
            now = self.subscriber.clock.seconds()
            if self.expiresAt is not None and self.expiresAt <= now:
                # The expiry waited for this answer.
                self._expired()
            elif self.expiresAt is not None and self._wanted:
                wait = (self.expiresAt - now) / 2
                if wait >= 1:
                    self._schedule("_refreshCall", wait, self._refreshDue)

    def _retryAfterHeader(self, response: Response | None) -> float | None:
        if response is None:
            return None
        try:
            retryAfter = response.retryAfter
        except ParseError:
            return None
        if retryAfter is None:
            return None
        return float(retryAfter.seconds)

    def _retryFor(self, reason: str | None, retryAfter: int | None) -> float | None:
        """
        When this handle re-subscribes after ending for C{reason}, or
        C{None}.
        """
        if not (self._retryAllowed and self._wanted) or self._unsubscribing:
            return None
        return retryDelay(reason, retryAfter, self._retries, self.subscriber.random)

    # Timers

    def _cancel(self, name: str) -> None:
        call: IDelayedCall | None = getattr(self, name)
        if call is not None and call.active():
            call.cancel()
        setattr(self, name, None)

    def _schedule(self, name: str, delay: float, function: Callable[[], None]) -> None:
        self._cancel(name)

        def guarded() -> None:
            setattr(self, name, None)
            try:
                function()
            except Exception:
                self.log.failure("Unexpected error in a timer of {sub!r}", sub=self)

        setattr(self, name, self.subscriber.clock.callLater(max(delay, 0.0), guarded))

    def _grant(self, duration: int, grantsAtSend: int | None = None) -> None:
        """
        The subscription lasts C{duration} seconds from now: schedule the
        refresh (L{refreshDelay}) and the local expiry.

        @param grantsAtSend: for the 2xx to a SUBSCRIBE, how many grants
            there had been when it was sent: an C{expires=} of a NOTIFY
            that arrived since then is not lengthened by the 2xx.
        """
        clock = self.subscriber.clock
        now = clock.seconds()
        expiresAt = now + duration
        if (
            grantsAtSend is not None
            and grantsAtSend != self._grants
            and self.expiresAt is not None
        ):
            expiresAt = min(expiresAt, self.expiresAt)
        self.expiresAt = expiresAt
        self._grants += 1
        remaining = expiresAt - now
        if self._fetch or self._unsubscribing or not self._wanted:
            return
        if remaining > 0:
            self._schedule("_refreshCall", refreshDelay(remaining), self._refreshDue)
            self._schedule("_expiryCall", remaining, self._expired)
        else:
            # Shortened to zero: the final NOTIFY should follow; if it
            # does not, end after Timer N.
            self._cancel("_refreshCall")
            self._schedule("_expiryCall", self.subscriber.timerN, self._expired)

    def _refreshDue(self) -> None:
        if self._ended is not None or self._unsubscribing or not self._wanted:
            return
        d = self.refresh()
        d.addErrback(self._refreshFailed)

    def _refreshFailed(self, failure: Failure) -> None:
        self.log.info(
            "Refresh of {sub!r} failed: {error}",
            sub=self,
            error=failure.getErrorMessage(),
        )

    def _expired(self) -> None:
        """
        The subscription expired without a successful refresh (RFC 6665
        section 4.1.2.2).
        """
        if self._ended is not None or self.state is ClientState.TERMINATED:
            return
        if self._inFlight:
            # A SUBSCRIBE is on its way; its Timer N decides.
            return
        error = self._lastFailure or SubscriptionTimedOut(
            "expired without a successful refresh", self.target
        )
        self._terminate(None, None, None, error, self._retryFor(None, None))

    def _timerNFired(self) -> None:
        """
        No NOTIFY within 64*T1 of the last SUBSCRIBE (RFC 6665 section
        4.1.2.2 and 4.1.2.4).
        """
        self._timerN = None
        if self._ended is not None or self.state is ClientState.TERMINATED:
            return
        seconds = self.subscriber.timerN
        error = SubscriptionTimedOut(
            f"no NOTIFY within Timer N ({seconds:g} seconds)", self.target
        )
        if self._unsubscribing:
            # Answered but no final NOTIFY: ended all the same; not even
            # answered: say so.
            exchange = self._unsubscribeExchange
            answered = exchange is not None and exchange.settled
            self._terminate(None, None, None, None if answered else error, None)
        elif self.state is ClientState.NOTIFY_WAIT:
            delay = None
            if self._retrying:
                delay = self._retryFor(None, None)
            self._terminate(None, None, None, error, delay)
        else:
            self._terminate(None, None, None, error, self._retryFor(None, None))

    # NOTIFY

    def _matches(self, event: Event) -> bool:
        """
        Whether C{event} is ours (RFC 6665 section 8.2.1: type and id byte
        by byte).
        """
        return event.eventType == self.event and event.id == self.id

    def _checkNotify(self, request: Request) -> str | None:
        """
        The checks of a NOTIFY in our dialog before it is answered 200.

        @return: the remote target the NOTIFY sets (L{remoteTargetOf}).
        @raise SIPError: 500 for a CSeq lower than the last (RFC 3261
            section 12.2.2), 400 for a bad Contact.
        """
        if self._notified and self.dialog is not None:
            checkRemoteCSeq(self.dialog.remoteCSeq, request)
        return remoteTargetOf(request)

    def _fork(self) -> Subscription:
        """
        A sibling usage for a forked NOTIFY (RFC 6665 section 4.1.4).
        """
        fork = Subscription(
            self.subscriber,
            self.target,
            self.event,
            self.id,
            self.observer,
            self._options,
            forkOf=self,
            fetch=self._fetch,
        )
        fork._expires = self._expires
        fork._requestURI = self._requestURI
        fork._fromUri = self._fromUri
        fork._callId = self._callId
        fork._localTag = self._localTag
        fork._cseq = self._cseq
        fork._contact = self._contact
        fork._firstTarget = self._firstTarget
        fork._secure = self._secure
        fork._generation = 1
        fork.state = ClientState.NOTIFY_WAIT
        self.forks.append(fork)
        return fork

    def _notifyReceived(
        self,
        request: Request,
        substate: SubscriptionState,
        event: Event,
        remoteTag: str,
        contact: str | None,
    ) -> None:
        """
        Process a NOTIFY already answered 200 (RFC 6665 section 4.1.3).

        @param remoteTag: its From tag (C{""} when none).
        @param contact: the remote target it sets (L{remoteTargetOf}).
        """
        clock = self.subscriber.clock
        now = clock.seconds()
        cseq = request.cseq
        remoteCSeq = cseq.number if cseq is not None else None
        first = not self._notified
        dialog = self.dialog
        if dialog is None or first:
            if contact is None:
                contact = (
                    dialog.remoteTarget if dialog is not None else self._requestURI
                )
            firstTarget = self._firstTarget
            assert firstTarget is not None
            self.dialog = self._newDialog(
                remoteTag,
                contact,
                # RFC 6665 section 4.4.1: from the NOTIFY, in order.
                tuple(str(r) for r in request.recordRoutes),
                remoteCSeq,
                firstTarget,
            )
            if dialog is None:
                self.subscriber._dialogStarted(self)
        else:
            # Target refresh (RFC 6665 section 3.2, RFC 3261 section 12.2.2).
            self.dialog = replace(
                dialog,
                remoteCSeq=remoteCSeq,
                remoteTarget=contact or dialog.remoteTarget,
            )
        self._notified = True
        self._cancel("_timerN")
        notification = Notification(
            substate, event, _contentTypeOf(request), request.body, request, now
        )
        self.notification = notification
        state = substate.state
        self.log.debug("NOTIFY {state} for {sub!r}", state=str(substate), sub=self)
        if state in ("active", "pending"):
            self.state = nextState(
                self.state,
                ClientInput.NOTIFY_ACTIVE
                if state == "active"
                else ClientInput.NOTIFY_PENDING,
            )
            if substate.expires is not None:
                self._grant(substate.expires)
            elif self.expiresAt is None:
                self._grant(DEFAULT_EXPIRES if self._expires is None else self._expires)
            if first:
                self._callObserver("subscriptionStarted", self)
            self._callObserver("notificationReceived", self, notification)
            if state == "active":
                self._retries = 0
                self._retrying = False
                waiters, self._activeWaiters = self._activeWaiters, []
                for d in waiters:
                    d.callback(notification)
            self._fireNotified(notification)
            if self._fetch and not self._unsubscribing:
                # A notifier that ignored Expires: 0 (module docstring).
                self.unsubscribe()
        elif state == "terminated":
            self._callObserver("notificationReceived", self, notification)
            # Ended before the waiters (fetch) run, so that they see the
            # subscription gone rather than still waiting for a NOTIFY.
            waiters, self._notifyWaiters = self._notifyWaiters, []
            reason = substate.reason
            retryAfter = substate.retryAfter
            self._terminate(
                reason,
                retryAfter,
                notification,
                None,
                self._retryFor(reason, retryAfter),
            )
            for d in waiters:
                d.callback(notification)
        else:
            self.log.info(
                "Unknown Subscription-State {state} for {sub!r}", state=state, sub=self
            )
            self._callObserver("notificationReceived", self, notification)

    def _fireNotified(self, notification: Notification) -> None:
        waiters, self._notifyWaiters = self._notifyWaiters, []
        for d in waiters:
            d.callback(notification)

    def _whenNotified(self) -> Deferred[Notification]:
        d: Deferred[Notification] = Deferred()
        self._notifyWaiters.append(d)
        return d

    # Ending

    def _endUsage(self) -> None:
        """
        Forget the current dialog usage: timers, look-up keys, and answers
        still to come (they are of an earlier attempt from now on).
        """
        for name in ("_timerN", "_refreshCall", "_expiryCall"):
            self._cancel(name)
        self._generation += 1
        self._unsubscribing = False
        self.subscriber._usageEnded(self)

    def _terminate(
        self,
        reason: str | None,
        retryAfter: int | None,
        notification: Notification | None,
        failure: SubscriptionFailed | None,
        delay: float | None,
    ) -> None:
        """
        The dialog usage ended (RFC 6665 section 4.1.2): tell the observer,
        then re-subscribe after C{delay} seconds, or end for good when
        C{delay} is C{None}.
        """
        self._endUsage()
        event = (
            ClientInput.FAILURE
            if notification is None
            else ClientInput.NOTIFY_TERMINATED
        )
        try:
            self.state = nextState(self.state, event)
        except InvalidTransition:
            self.state = ClientState.TERMINATED
        willRetry = delay is not None and self._wanted
        termination = Termination(reason, retryAfter, notification, failure, willRetry)
        self.log.info(
            "{sub!r} ended ({reason}{failure}){retry}",
            sub=self,
            reason=reason or "no reason",
            failure=f": {failure}" if failure is not None else "",
            retry=f"; re-subscribing in {delay:g} s"
            if willRetry and delay is not None
            else "",
        )
        self._callObserver("subscriptionEnded", self, termination)
        if willRetry and self._wanted and delay is not None:
            self._retries += 1
            if delay <= 0:
                self._retry()
            else:
                self._schedule("_retryCall", delay, self._retry)
        else:
            self._finish(termination)

    def _retry(self) -> None:
        """
        Re-subscribe: a new initial SUBSCRIBE, new Call-ID and From tag
        (RFC 6665 section 4.1.2.2 and 4.4.2).
        """
        self._retryCall = None
        if self._ended is not None or not self._wanted:
            return
        self.state = nextState(self.state, ClientInput.RETRY)
        self._retrying = True
        self._requestURI = self.target
        self._expires = self._options.expires
        try:
            self._start()
        except Exception as e:
            self.log.failure("Could not re-subscribe {sub!r}", sub=self)
            self.state = ClientState.TERMINATED
            self._finish(
                Termination(failure=SubscriptionFailed(0, str(e), self.target))
            )

    def _failureOf(self, termination: Termination) -> SubscriptionFailed:
        if termination.failure is not None:
            return termination.failure
        return SubscriptionTerminated(self.target, termination)

    def _finish(self, termination: Termination) -> None:
        """
        The subscription has ended for good: fire every waiter.
        """
        if self._ended is not None:
            return
        self._ended = termination
        self.state = ClientState.TERMINATED
        for name in ("_retryCall", "_refreshCall", "_expiryCall", "_timerN"):
            self._cancel(name)
        self.subscriber._finished(self)
        if self.forkOf is not None and self in self.forkOf.forks:
            self.forkOf.forks.remove(self)
        failure = self._failureOf(termination)
        for waiters in (self._activeWaiters, self._notifyWaiters):
            pending = list(waiters)
            waiters.clear()
            for d in pending:
                d.errback(failure)
        for ended in (self._terminatedWaiters, self._unsubscribeWaiters):
            pending2 = list(ended)
            ended.clear()
            for d2 in pending2:
                d2.callback(termination)

    def _callObserver(self, method: str, *args: Any) -> None:
        """
        Call the observer; its exceptions are logged, never raised.
        """
        try:
            getattr(self.observer, method)(*args)
        except Exception:
            self.log.failure(
                "Observer {observer!r} failed in {method}",
                observer=self.observer,
                method=method,
            )


@implementer(ISubscriber, IRequestHandler)
class Subscriber:
    """
    The subscriber side of RFC 6665 over a L{UserAgent}: subscriptions out,
    NOTIFYs in (it registers itself as the NOTIFY handler).

    @ivar userAgent: the user agent requests go through.
    @ivar clock: the time source.
    @ivar timers: the timer values; Timer N is 64*T1 (RFC 6665 section
        4.1.2.4).
    @ivar random: the source of back-off jitter.
    @ivar localUri: our From URI, or C{None} for
        C{sip:sipevents@HOST} with the address we send from.
    """

    log = Logger()

    #: NOTIFY bodies are the observer's business (IRequestHandler.accept).
    accept: Sequence[str] | None = None

    def __init__(
        self,
        userAgent: UserAgent,
        clock: IReactorTime | None = None,
        timers: TimerConfig | None = None,
        random: _random.Random | None = None,
        localUri: str | None = None,
    ) -> None:
        self.userAgent = userAgent
        self.clock = userAgent.clock if clock is None else clock
        self.timers = userAgent.timers if timers is None else timers
        self.random = _random.Random() if random is None else random
        self.localUri = localUri
        self._byAttempt: dict[tuple[str, str], Subscription] = {}
        self._byDialog: dict[tuple[str, str, str], Subscription] = {}
        self._live: dict[Subscription, None] = {}
        userAgent.registerMethod("NOTIFY", self)

    @property
    def timerN(self) -> float:
        """Timer N: 64*T1 (RFC 6665 section 4.1.2.4)."""
        return 64 * self.timers.T1

    @property
    def subscriptions(self) -> list[Subscription]:
        """The live subscriptions, forks and ones waiting to retry included."""
        return list(self._live)

    # ISubscriber

    def subscribe(
        self,
        target: str,
        event: str,
        observer: ISubscriptionObserver | None = None,
        id: str | None = None,
        accept: Sequence[str] = (),
        expires: int | None = None,
        body: bytes = b"",
        contentType: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
        proxy: str | None = None,
        credentials: Credentials | None = None,
        fromUri: str | None = None,
    ) -> Subscription:
        """
        Subscribe to C{event} at C{target}: the SUBSCRIBE is sent at once.
        See L{ISubscriber.subscribe}.

        @raise ValueError: for a target or proxy we cannot send to, or when
            we know no address of ours to put in the Contact.
        """
        return self._subscribe(
            target,
            event,
            observer,
            id,
            _Options(
                tuple(accept),
                expires,
                body,
                contentType,
                tuple(headers),
                proxy,
                credentials,
                fromUri,
            ),
            fetch=False,
        )

    def fetch(
        self,
        target: str,
        event: str,
        id: str | None = None,
        accept: Sequence[str] = (),
        body: bytes = b"",
        contentType: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
        proxy: str | None = None,
        credentials: Credentials | None = None,
        fromUri: str | None = None,
    ) -> Deferred[Notification]:
        """
        Poll C{event} at C{target} (RFC 6665 section 4.4.3): a SUBSCRIBE
        with C{Expires: 0}. See L{ISubscriber.fetch}.

        @return: a L{Deferred} firing with the first NOTIFY's
            L{Notification}, or failing with L{SubscriptionFailed}.
        @raise ValueError: as L{subscribe}.
        """
        subscription = self._subscribe(
            target,
            event,
            None,
            id,
            _Options(
                tuple(accept),
                0,
                body,
                contentType,
                tuple(headers),
                proxy,
                credentials,
                fromUri,
            ),
            fetch=True,
        )
        if subscription._ended is not None:
            return fail(subscription._failureOf(subscription._ended))
        if subscription.notification is not None:
            return succeed(subscription.notification)
        return subscription._whenNotified()

    def stop(self) -> Deferred[None]:
        """
        Unsubscribe everything; fires once all have ended (each within
        Timer N).
        """
        pending = [subscription.unsubscribe() for subscription in list(self._live)]
        return gatherResults(pending).addCallback(lambda _: None)

    def _subscribe(
        self,
        target: str,
        event: str,
        observer: ISubscriptionObserver | None,
        id: str | None,
        options: _Options,
        fetch: bool,
    ) -> Subscription:
        for uri in (target, options.proxy):
            if uri is not None:
                targetFromURI(parseURI(uri))
        subscription = Subscription(
            self,
            target,
            event,
            id,
            SubscriptionObserver() if observer is None else observer,
            options,
            fetch=fetch,
        )
        self._live[subscription] = None
        try:
            subscription._start()
        except Exception:
            self._live.pop(subscription, None)
            self._usageEnded(subscription)
            raise
        return subscription

    # Book-keeping for Subscription

    def _contactFor(self, target: Target, secure: bool) -> tuple[str, str]:
        """
        Our Contact URI for a dialog whose first request goes to C{target}
        (L{listeningContact}), and its host.

        @raise ValueError: when the transport layer cannot tell us, or we
            listen on every interface with no advertised address.
        """
        found = listeningContact(
            self.userAgent.transportLayer, target.transport, target.host, secure
        )
        if found is None:
            raise ValueError(
                f"No local address to reach us at over {target.transport}: "
                "listen on a given interface or set an advertised host"
            )
        return found

    def _attemptStarted(self, subscription: Subscription) -> None:
        self._byAttempt[(subscription._callId, subscription._localTag)] = subscription

    def _dialogStarted(self, subscription: Subscription) -> None:
        dialog = subscription.dialog
        assert dialog is not None
        self._byDialog[(dialog.callId, dialog.localTag, dialog.remoteTag)] = (
            subscription
        )

    def _usageEnded(self, subscription: Subscription) -> None:
        key = (subscription._callId, subscription._localTag)
        if self._byAttempt.get(key) is subscription:
            del self._byAttempt[key]
        dialog = subscription.dialog
        if dialog is not None:
            dkey = (dialog.callId, dialog.localTag, dialog.remoteTag)
            if self._byDialog.get(dkey) is subscription:
                del self._byDialog[dkey]

    def _finished(self, subscription: Subscription) -> None:
        self._usageEnded(subscription)
        self._live.pop(subscription, None)

    # IRequestHandler (NOTIFY)

    def handleRequest(
        self, request: Request, context: IRequestContext
    ) -> Response | None:
        """
        Answer a NOTIFY (RFC 6665 section 4.1.3; the order of the checks is
        in the module docstring), then process it.

        @raise SIPError: to answer with its status.
        """
        callId = request.callId or ""
        toAddr = request.toAddr
        fromAddr = request.fromAddr
        localTag = toAddr.tag if toAddr is not None else None
        if not localTag or fromAddr is None:
            raise CallDoesNotExist()
        remoteTag = fromAddr.tag or ""
        subscription = self._byDialog.get((callId, localTag, remoteTag))
        main = None
        if subscription is None:
            main = self._byAttempt.get((callId, localTag))
            if main is None:
                raise CallDoesNotExist()
        owner = subscription or main
        assert owner is not None
        event = request.event
        if event is None:
            raise SIPError("Missing Event Header", 400)
        if not owner._matches(event):
            raise SIPError("Bad Event", 489)
        substate = request.subscriptionState
        if substate is None:
            raise SIPError("Missing Subscription-State Header", 400)
        fork = False
        if subscription is None:
            assert main is not None
            if main.dialog is None:
                # The first NOTIFY, maybe before the 2xx (RFC 6665 section
                # 4.1.2.4).
                subscription = main
            elif self.clock.seconds() >= main._forkDeadline:
                # RFC 6665 section 4.1.2.4: no new usages after Timer N.
                raise CallDoesNotExist()
            elif substate.state == "terminated":
                # RFC 6665 section 4.4.1: no usage is created.
                remoteTargetOf(request)  # 400 for a bad Contact
                context.respond(200)
                self.log.debug("Terminated forked NOTIFY for {sub!r}", sub=main)
                return None
            else:
                fork = True
                subscription = main
        if fork:
            contact = remoteTargetOf(request)
        else:
            contact = subscription._checkNotify(request)
        context.respond(200)
        try:
            if fork:
                # RFC 6665 section 4.1.4: a sibling usage of its own.
                subscription = subscription._fork()
                self._live[subscription] = None
            subscription._notifyReceived(request, substate, event, remoteTag, contact)
        except Exception:
            self.log.failure(
                "Unexpected error processing NOTIFY for {sub!r}", sub=subscription
            )
        return None
