# -*- test-case-name: tests.test_subscriber -*-
"""
The subscription handle (RFC 6665 section 4.1.2): one dialog usage at the
subscriber, driven by the declared table of L{sipevents.subscriber.states}.

Every input, whether a NOTIFY, an answer to one of our SUBSCRIBEs, a timer
or a call of the application, goes through one engine
(L{Subscription._fire}): it looks the step up in
L{sipevents.subscriber.states.TRANSITIONS} (a missing pair raises
L{sipevents.errors.InvalidTransition}, leaving the state unchanged), moves
to the next state, cancels the timers that state does not hold
(L{sipevents.subscriber.states.TIMERS}), then runs the step's action.
Nothing else writes C{state}, and a timer can only be armed in a state that
holds it, so a terminated subscription cannot have one. Each SUBSCRIBE goes
out through a L{sipevents.subscriber.exchange.UACExchange}, which answers
401, 407, 423 and 3xx by itself.

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
    L{sipevents.subscriber.subscriber.Subscriber.subscribe} re-subscribes,
    with a new Call-ID and From tag (section 4.1.2.2), on the same handle
    (C{Termination.willRetry}), waiting in C{retry_wait}. C{deactivated}
    and C{timeout}: at once (section 4.4.2). C{probation}, C{giveup}, no
    reason and unknown reasons: after C{retry-after} when given, otherwise
    after a back-off. C{rejected}, C{noresource}, C{invariant}: never. A
    refresh answered 481 is re-subscribed like C{deactivated} (RFC 3265
    section 3.1.4.2); Timer N firing after a refresh, or a local expiry,
    like no reason. A re-subscription whose SUBSCRIBE fails with 408, 480,
    500, 503, 504, 600 or no answer is tried again after C{Retry-After} or
    the back-off; any other failure, and every failure of the first
    attempt, ends the handle.
  - B{Back-off} (L{sipevents.subscriber.states.backoff}): the formula of
    RFC 5626 section 4.5, base 30 seconds, doubling per consecutive failed
    retry, capped at 1800 seconds, with a uniform jitter between 50% and
    100% of that from the subscriber's C{random}. Immediate retries are
    tight-loop guarded: after 3 retries in a row that did not reach
    C{active}, a retry that would come sooner than a second is backed off
    instead.
  - B{fetch} (section 4.4.3) fires with the first NOTIFY. When that NOTIFY
    is not C{terminated} (a notifier that ignored C{Expires: 0}), the
    subscription is unsubscribed at once, so no state is left behind at
    either end; forks of a fetch are unsubscribed the same way.
  - B{Unsubscribe} (section 4.1.2.3) ends on the final NOTIFY, or after
    Timer N, or at once when the SUBSCRIBE is answered with an error (481:
    it was gone already) or a 204 (no NOTIFY will come, section 4.1.2.2),
    or when nothing was established yet (a late NOTIFY then gets 481,
    which ends it at the notifier, section 4.2.2).
  - B{Timer N} is 64*T1 of the L{sipevents.config.TimerConfig} (section
    4.1.2.4), started for every SUBSCRIBE sent and cancelled by a NOTIFY in
    the usage or a final error response.
  - B{Dialog}: built from the 2xx as RFC 3261 section 12.1.2 says (route
    set from Record-Route reversed), then from the first NOTIFY, whose
    route set (Record-Route in order) replaces it (RFC 6665 section
    4.4.1). A NOTIFY without Contact keeps the remote target known (the
    2xx's Contact, else the Request-URI). Over TCP or TLS with an empty
    route set, in-dialog SUBSCRIBEs go where the first one went (our own
    connection), see L{sipevents.sip.dialog.nextHop}.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from sipevents.errors import InvalidTransition, ParseError
from sipevents.events import (
    Notification,
    SubscriptionFailed,
    SubscriptionTerminated,
    SubscriptionTimedOut,
    Termination,
)
from sipevents.interfaces import ISubscription, ISubscriptionObserver
from sipevents.sip.addresses import Target
from sipevents.sip.dialog import (
    MAX_FORWARDS,
    buildRequest,
    checkRemoteCSeq,
    nextHop,
    remoteTargetOf,
)
from sipevents.sip.dialogstate import NO_CSEQ, Dialog
from sipevents.sip.headers import Event, SubscriptionState
from sipevents.sip.message import Request, Response
from sipevents.sip.routing import targetFromURI
from sipevents.sip.uri import SIPURI, formatURI, parseURI
from sipevents.subscriber.exchange import UACExchange
from sipevents.subscriber.states import (
    DEFAULT_EXPIRES,
    TIMERS,
    SubscriberAction,
    SubscriberInput,
    SubscriberState,
    SubscriberTimer,
    grantedExpires,
    refreshDelay,
    refreshOutcome,
    resubscribeDelay,
    retryDelay,
    transition,
)

if TYPE_CHECKING:
    from sipevents.events import Credentials
    from sipevents.subscriber.subscriber import Subscriber

__all__ = ["Subscription", "SubscriptionOptions"]

_S = SubscriberState
_I = SubscriberInput

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


def _contentTypeOf(request: Request) -> str | None:
    if not request.body:
        return None
    try:
        contentType = request.contentType
    except ParseError:
        return None
    return None if contentType is None else contentType.mimeType


def _retryAfterOf(response: Response | None) -> float | None:
    """
    The C{Retry-After} seconds of an error response, or C{None}.
    """
    if response is None:
        return None
    try:
        retryAfter = response.retryAfter
    except ParseError:
        return None
    if retryAfter is None:
        return None
    return float(retryAfter.seconds)


@dataclass(frozen=True, slots=True)
class SubscriptionOptions:
    """
    What L{sipevents.subscriber.subscriber.Subscriber.subscribe} was asked,
    kept for refreshes and re-subscriptions.
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


class _Sending:
    """
    One SUBSCRIBE of ours in flight: its L{UACExchange} and what its
    answer means to the handle.

    @ivar generation: the attempt it belongs to; answers to an earlier one
        are late.
    @ivar expires: the Expires asked for (a 423 raises it).
    @ivar grantsAtSend: grants so far when it was last sent.
    @ivar deferred: the application's L{Deferred} of C{refresh()}, if any.
    """

    __slots__ = (
        "kind",
        "exchange",
        "generation",
        "expires",
        "grantsAtSend",
        "deferred",
    )

    def __init__(self, kind: _Kind, generation: int, expires: int | None) -> None:
        self.kind = kind
        self.generation = generation
        self.expires = expires
        self.grantsAtSend = 0
        self.exchange: UACExchange | None = None
        self.deferred: Deferred[None] | None = None


@dataclass(frozen=True, slots=True)
class _Attempt:
    """
    One attempt at a subscription: the identity of its SUBSCRIBE outside a
    dialog (RFC 3261 section 8.1.1, a new Call-ID and From tag for each
    re-subscription, RFC 6665 section 4.1.2.2), shared by the forks it
    makes, and where that SUBSCRIBE went, which in-dialog requests follow
    over TCP or TLS (L{sipevents.sip.dialog.nextHop}).

    @ivar target: where the first SUBSCRIBE went (a redirection changes it).
    @ivar secure: whether the Request-URI is SIPS.
    @ivar contact: our Contact URI.
    @ivar fromUri: our From URI.
    @ivar callId: the Call-ID.
    @ivar localTag: our From tag.
    """

    target: Target
    secure: bool
    contact: str
    fromUri: str
    callId: str
    localTag: str


@dataclass(frozen=True, slots=True)
class _Refresh:
    """
    A refresh the application asked for.
    """

    expires: int | None
    deferred: Deferred[None]


@dataclass(frozen=True, slots=True)
class _Ending:
    """
    How a usage ended: the L{Termination} to report, and the seconds
    before re-subscribing (for L{SubscriberInput.ENDED_RETRY}).
    """

    termination: Termination
    delay: float = 0.0


#: Which slot holds each timer.
_SLOTS: dict[SubscriberTimer, str] = {
    SubscriberTimer.TIMER_N: "_timerN",
    SubscriberTimer.REFRESH: "_refreshCall",
    SubscriberTimer.EXPIRY: "_expiryCall",
    SubscriberTimer.RETRY: "_retryCall",
}

#: For each state, the timer slots it does not hold, cleared on entering it.
_CLEARED: dict[SubscriberState, tuple[str, ...]] = {
    state: tuple(
        _SLOTS[timer] for timer, owners in TIMERS.items() if state not in owners
    )
    for state in SubscriberState
}


@implementer(ISubscription)
class Subscription:
    """
    One subscription at the subscriber: one dialog usage (RFC 6665 section
    4.1.2), and the user's handle on it. The main handle returned by
    L{sipevents.subscriber.subscriber.Subscriber.subscribe} lives on through
    re-subscriptions (each a new dialog); forks (C{forkOf} set) are made by
    forked NOTIFYs.

    @ivar subscriber: the L{sipevents.subscriber.subscriber.Subscriber}.
    @ivar target: the URI subscribed to, as text.
    @ivar event: the event type (C{"presence"}, C{"presence.winfo"}).
    @ivar id: the Event C{id}, or C{None}.
    @ivar state: the L{SubscriberState}, changed only by the table.
    @ivar notification: the latest L{Notification}, or C{None}.
    @ivar expiresAt: the clock's time the subscription ends unless
        refreshed, or C{None} before anything said.
    @ivar dialog: the L{sipevents.sip.dialogstate.Dialog} of the current
        usage: C{None} until its first NOTIFY or 2xx, and once it has
        ended.
    @ivar forkOf: the main handle of a fork, else C{None}.
    @ivar forks: the live forks of a main handle.
    @ivar observer: the L{ISubscriptionObserver}.
    """

    log = Logger()

    #: The method each action runs, given the input's payload.
    _actions: ClassVar[dict[SubscriberAction, Callable[[Subscription, Any], None]]]

    def __init__(
        self,
        subscriber: Subscriber,
        target: str,
        event: str,
        id: str | None,
        observer: ISubscriptionObserver,
        options: SubscriptionOptions,
        forkOf: Subscription | None = None,
        fetch: bool = False,
    ) -> None:
        self.subscriber = subscriber
        self.target = target
        self.event = event
        self.id = id
        self.observer = observer
        self.state = SubscriberState.INIT
        self.notification: Notification | None = None
        self.expiresAt: float | None = None
        self.dialog: Dialog | None = None
        self.forkOf = forkOf
        self.forks: list[Subscription] = []
        self._options = options
        self._fetch = fetch
        # Only the main handle of a lasting subscription re-subscribes.
        self._retryAllowed = forkOf is None and not fetch and options.expires != 0
        self._expires = options.expires
        self._requestURI = target
        self._attempt: _Attempt | None = None
        self._cseq = 0
        self._generation = 0
        # Re-subscriptions in a row that have not reached active: the
        # back-off's exponent, and whether a failed SUBSCRIBE is retried.
        self._retries = 0
        self._sending: list[_Sending] = []
        self._unsubscribeSending: _Sending | None = None
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
        self._endWaiters: list[Deferred[Termination]] = []

    def __repr__(self) -> str:
        fork = " (fork)" if self.forkOf is not None else ""
        return (
            f"<Subscription {Event(self.event, id=self.id)} to {self.target}"
            f" {self.state.value}{fork}>"
        )

    # The engine

    def _fire(self, input: SubscriberInput, payload: object = None) -> None:
        """
        Apply C{input}: look the step up, change state, cancel the timers
        the new state does not hold, run the action.

        @raise InvalidTransition: when the table has no entry for the
            current state and C{input}; nothing has changed then.
        """
        step = transition(self.state, input)
        target = step.state
        if target is not self.state:
            self.state = target
            for slot in _CLEARED[target]:
                call: IDelayedCall | None = getattr(self, slot)
                if call is not None:
                    if call.active():
                        call.cancel()
                    setattr(self, slot, None)
        self._actions[step.action](self, payload)

    def _arm(
        self, timer: SubscriberTimer, delay: float, callback: Callable[[], None]
    ) -> None:
        """
        (Re)start C{timer}, which the current state must hold.

        @raise InvalidTransition: when it does not: a bug.
        """
        if self.state not in TIMERS[timer]:
            raise InvalidTransition(
                repr(self), self.state, timer, "sipevents.subscriber.states.TIMERS"
            )
        slot = _SLOTS[timer]
        self._cancel(timer)

        def fired() -> None:
            setattr(self, slot, None)
            try:
                callback()
            except Exception:
                self.log.failure(
                    "Unexpected error in {timer} of {sub!r}",
                    timer=timer.value,
                    sub=self,
                )

        setattr(self, slot, self.subscriber.clock.callLater(max(delay, 0.0), fired))

    def _cancel(self, timer: SubscriberTimer) -> None:
        slot = _SLOTS[timer]
        call: IDelayedCall | None = getattr(self, slot)
        if call is not None and call.active():
            call.cancel()
        setattr(self, slot, None)

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
        notification = self.notification
        if notification is not None and (
            self.state is _S.ACTIVE
            or (
                # Active until the final NOTIFY says otherwise.
                self.state is _S.UNSUBSCRIBING
                and notification.subscriptionState.state == "active"
            )
        ):
            return succeed(notification)
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
        self._endWaiters.append(d)
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
        d: Deferred[None] = Deferred()
        self._fire(_I.REFRESH, _Refresh(expires, d))
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
        d: Deferred[Termination] = Deferred()
        if self._ended is None:
            self._endWaiters.append(d)
        for fork in list(self.forks):
            fork.unsubscribe()
        if self.dialog is None:
            self._fire(_I.GIVE_UP, _Ending(Termination()))
        else:
            self._fire(_I.UNSUBSCRIBE)
        if self._ended is not None and not d.called:
            d.callback(self._ended)
        return d

    # Starting attempts

    def _start(self) -> None:
        """
        Send the first SUBSCRIBE.

        @raise ValueError: when the target or proxy cannot be routed to, or
            we know no address of ours for the Contact.
        """
        self._fire(_I.SUBSCRIBE, self._prepare())

    def _prepare(self) -> _Attempt:
        """
        Where the next SUBSCRIBE outside a dialog goes, and our Contact.

        @raise ValueError: as L{_start}.
        """
        uri = parseURI(self._requestURI)
        proxy = self._options.proxy
        target = targetFromURI(parseURI(proxy) if proxy else uri)
        secure = isinstance(uri, SIPURI) and uri.scheme == "sips"
        contact, host = self.subscriber._contactFor(target, secure)
        fromUri = (
            self._options.fromUri
            or self.subscriber.localUri
            or (f"sip:sipevents@{host}")
        )
        return _Attempt(
            target,
            secure,
            contact,
            fromUri,
            callId=secrets.token_hex(12),
            localTag=secrets.token_hex(8),
        )

    def _sendSubscribe(self, attempt: _Attempt) -> None:
        """
        Send a SUBSCRIBE outside any dialog (RFC 6665 section 4.1.2.1) with
        a new Call-ID and From tag.
        """
        self._generation += 1
        self._attempt = attempt
        self._cseq = 0
        self.dialog = None
        self._lastFailure = None
        self.subscriber._attemptStarted(self)
        sending = _Sending(_Kind.INITIAL, self._generation, self._expires)
        self._send(sending, self._initialRequest(), attempt.target)

    def _resubscribe(self, attempt: _Attempt) -> None:
        """
        Re-subscribe: a new initial SUBSCRIBE, new Call-ID and From tag
        (RFC 6665 section 4.1.2.2 and 4.4.2).
        """
        self._sendSubscribe(attempt)

    def _onRetryTimer(self) -> None:
        self._requestURI = self.target
        self._expires = self._options.expires
        try:
            attempt = self._prepare()
        except Exception as e:
            self.log.failure("Could not re-subscribe {sub!r}", sub=self)
            failure = SubscriptionFailed(0, str(e), self.target)
            self._fire(_I.GIVE_UP, _Ending(Termination(failure=failure)))
            return
        self._fire(_I.RETRY_TIMER, attempt)

    def _adoptFork(self, main: Subscription) -> None:
        """
        Take over the attempt of C{main}, whose SUBSCRIBE forked (RFC 6665
        section 4.1.4).
        """
        self._expires = main._expires
        self._requestURI = main._requestURI
        self._attempt = main._attempt
        self._cseq = main._cseq
        self._generation = 1

    def _initialRequest(self) -> Request:
        """
        The next SUBSCRIBE outside a dialog (RFC 3261 section 8.1.1), with
        the proxy as a preloaded loose route (section 8.1.2).
        """
        options = self._options
        attempt = self._attempt
        assert attempt is not None
        self._cseq += 1
        fields: list[tuple[str, str]] = [
            ("Max-Forwards", MAX_FORWARDS),
            ("To", f"<{_addressOfRecord(self.target)}>"),
            ("From", f"<{attempt.fromUri}>;tag={attempt.localTag}"),
            ("Call-ID", attempt.callId),
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
        attempt = self._attempt
        assert attempt is not None
        fields = [("Event", str(Event(self.event, id=self.id)))]
        if expires is not None:
            fields.append(("Expires", str(expires)))
        fields.append(("Contact", f"<{attempt.contact}>"))
        if options.accept:
            fields.append(("Accept", ", ".join(options.accept)))
        if options.body and options.contentType:
            fields.append(("Content-Type", options.contentType))
        fields.extend(options.headers)
        return fields

    def _inDialogRequest(self, expires: int | None) -> tuple[Request, Target]:
        """
        A refreshing or unsubscribing SUBSCRIBE in the dialog (RFC 3261
        section 12.2.1.1, RFC 6665 section 4.1.2.2), and where it goes.

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
        return request, target

    # Sending

    def _send(self, sending: _Sending, request: Request, target: Target) -> None:
        """
        Send C{request} through a L{UACExchange} that answers its
        challenges, 423 (not for an unsubscription) and 3xx (only outside a
        dialog).
        """
        kind = sending.kind

        def lengthen(minExpires: int) -> Request:
            # RFC 6665 section 4.1.2.1: from now on, what the notifier asks.
            self._expires = sending.expires = minExpires
            if kind is _Kind.INITIAL:
                return self._initialRequest()
            return self._inDialogRequest(minExpires)[0]

        def redirect(uri: str) -> tuple[Request, Target]:
            target = targetFromURI(parseURI(self._options.proxy or uri))
            self._requestURI = uri
            assert self._attempt is not None
            self._attempt = replace(self._attempt, target=target)
            return self._initialRequest(), target

        def sent(request: Request) -> None:
            self._sent(sending, request)

        exchange = UACExchange(
            self.subscriber.userAgent.sendRequest,
            request,
            target,
            credentials=self._options.credentials,
            lengthen=None if kind is _Kind.UNSUBSCRIBE else lengthen,
            redirect=redirect if kind is _Kind.INITIAL else None,
            onSend=sent,
        )
        sending.exchange = exchange
        self._sending.append(sending)
        if kind is _Kind.UNSUBSCRIBE:
            self._unsubscribeSending = sending
        d = exchange.start()
        d.addCallbacks(
            self._answered,
            self._notAnswered,
            callbackArgs=(sending,),
            errbackArgs=(sending,),
        )
        d.addErrback(self._crashed, "processing the answer to a SUBSCRIBE")

    def _sent(self, sending: _Sending, request: Request) -> None:
        """
        A request of C{sending} goes out: track its CSeq and (re)start
        Timer N (RFC 6665 section 4.1.2.4).
        """
        clock = self.subscriber.clock
        cseq = request.cseq
        if cseq is not None:
            self._cseq = max(self._cseq, cseq.number)
        sentAt = clock.seconds()
        sending.grantsAtSend = self._grants
        if sending.kind is _Kind.INITIAL:
            self._forkDeadline = sentAt + self.subscriber.timerN
        self._arm(SubscriberTimer.TIMER_N, self.subscriber.timerN, self._onTimerN)
        self.log.debug(
            "Sending {kind} SUBSCRIBE for {sub!r}",
            kind=sending.kind.value,
            sub=self,
        )

    def _crashed(self, failure: Failure, what: str) -> None:
        self.log.failure(
            "Unexpected error {what} for {sub!r}", failure, what=what, sub=self
        )

    def _settle(self, sending: _Sending, error: SubscriptionFailed | None) -> None:
        """
        C{sending} is over: fire its L{Deferred}.
        """
        self._sending.remove(sending)
        d = sending.deferred
        if d is not None:
            if error is None:
                d.callback(None)
            else:
                d.errback(error)

    def _answered(self, response: Response, sending: _Sending) -> None:
        """
        The final response to a SUBSCRIBE of C{sending}, after its
        exchange did what it could.
        """
        code = response.code
        error = (
            None
            if 200 <= code < 300
            else SubscriptionFailed.fromResponse(response, self.target)
        )
        self._settle(sending, error)
        if sending.generation != self._generation:
            self.log.debug(
                "Ignored {code} to a SUBSCRIBE of an earlier attempt of {sub!r}",
                code=code,
                sub=self,
            )
            self._fire(_I.LATE_ANSWER)
        elif error is not None:
            self._failed(sending, error)
        elif sending.kind is _Kind.UNSUBSCRIBE:
            self._fire(_I.UNSUBSCRIBE_ACCEPTED, response)
        else:
            self._fire(_I.ACCEPTED, (response, sending))

    def _notAnswered(self, failure: Failure, sending: _Sending) -> None:
        """
        The SUBSCRIBE transaction timed out (Timer F) or the transport
        failed: no answer (RFC 3261 section 8.1.3.1).
        """
        error = SubscriptionTimedOut(failure.getErrorMessage(), self.target)
        self._settle(sending, error)
        if sending.generation != self._generation:
            self._fire(_I.LATE_ANSWER)
        else:
            self._failed(sending, error)

    def _failed(self, sending: _Sending, error: SubscriptionFailed) -> None:
        """
        A SUBSCRIBE of this usage failed: decide what that means.
        """
        self._cancel(SubscriberTimer.TIMER_N)
        self.log.info(
            "SUBSCRIBE for {sub!r} failed: {error}", sub=self, error=str(error)
        )
        timedOut = isinstance(error, SubscriptionTimedOut)
        kind = sending.kind
        if kind is _Kind.UNSUBSCRIBE:
            # 481: it was gone already, which is what we wanted.
            failure = None if error.code == 481 else error
            self._fire(_I.ENDED, _Ending(Termination(failure=failure)))
        elif kind is _Kind.INITIAL:
            delay = None
            if self._mayRetry():
                delay = resubscribeDelay(
                    None if timedOut else error.code,
                    _retryAfterOf(error.response),
                    self._retries,
                    self.subscriber.random,
                )
            self._end(None, None, None, error, delay)
        else:
            ends, reason = refreshOutcome(None if timedOut else error.code)
            if ends:
                self._end(None, None, None, error, self._retryFor(reason, None))
            else:
                self._fire(_I.REFRESH_FAILED, error)

    def _mayRetry(self) -> bool:
        """
        Whether this handle re-subscribes when its usage ends: only the
        main handle of a lasting subscription, and not once it is being
        unsubscribed.
        """
        return self._retryAllowed and self.state is not _S.UNSUBSCRIBING

    def _retryFor(self, reason: str | None, retryAfter: int | None) -> float | None:
        """
        When this handle re-subscribes after ending for C{reason}, or
        C{None}.
        """
        if not self._mayRetry():
            return None
        return retryDelay(reason, retryAfter, self._retries, self.subscriber.random)

    def _end(
        self,
        reason: str | None,
        retryAfter: int | None,
        notification: Notification | None,
        failure: SubscriptionFailed | None,
        delay: float | None,
    ) -> None:
        """
        The usage ended: re-subscribe after C{delay} seconds, or for good
        when it is C{None}.
        """
        willRetry = delay is not None
        termination = Termination(reason, retryAfter, notification, failure, willRetry)
        if delay is None:
            self._fire(_I.ENDED, _Ending(termination))
        else:
            self._fire(_I.ENDED_RETRY, _Ending(termination, delay))

    # Actions

    def _accepted(self, payload: tuple[Response, _Sending]) -> None:
        """
        A 2xx (200, or 202 from RFC 3265 notifiers, RFC 3265 section
        3.1.4.1) to the initial SUBSCRIBE or a refresh of this usage.
        """
        response, sending = payload
        if response.code == 204:
            # RFC 6665 section 4.1.2.2 (RFC 5839): no NOTIFY will come.
            self._cancel(SubscriberTimer.TIMER_N)
        if sending.kind is _Kind.INITIAL:
            toAddr = response.toAddr
            tag = toAddr.tag if toAddr is not None else None
            if self.dialog is None and tag:
                self._dialogFromResponse(response, tag)
            elif self.dialog is not None and tag != self.dialog.remoteTag:
                # The 2xx came from another branch than the NOTIFY that
                # made our dialog; that branch's NOTIFY will fork.
                return
        self._grant(grantedExpires(response, sending.expires), sending.grantsAtSend)

    def _unsubscribeAnswered(self, response: Response) -> None:
        if response.code == 204:
            # RFC 6665 section 4.1.2.2 (RFC 5839): no final NOTIFY will come.
            self._fire(_I.ENDED, _Ending(Termination()))

    def _holdUntilExpiry(self, error: SubscriptionFailed) -> None:
        """
        A refresh failed, but the subscription is valid until it expires
        (RFC 6665 section 4.1.2.2): try again half way there.
        """
        self._lastFailure = error
        now = self.subscriber.clock.seconds()
        if self.expiresAt is not None and self.expiresAt <= now:
            # The expiry waited for this answer.
            self._onExpiry()
        elif self.expiresAt is not None:
            wait = (self.expiresAt - now) / 2
            if wait >= 1:
                self._arm(SubscriberTimer.REFRESH, wait, self._onRefreshTimer)

    def _dialogFromResponse(self, response: Response, tag: str) -> None:
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
        self.dialog = self._newDialog(tag, remoteTarget, routes, NO_CSEQ)
        self.subscriber._dialogStarted(self)

    def _newDialog(
        self,
        remoteTag: str,
        remoteTarget: str,
        routeSet: tuple[str, ...],
        remoteCSeq: int,
    ) -> Dialog:
        """
        This usage's dialog with the notifier that answered or NOTIFYed
        from C{remoteTag}, its flow that of the attempt's first SUBSCRIBE.
        """
        attempt = self._attempt
        assert attempt is not None
        first = attempt.target
        return Dialog(
            callId=attempt.callId,
            localTag=attempt.localTag,
            remoteTag=remoteTag,
            localUri=attempt.fromUri,
            remoteUri=self.target,
            remoteTarget=remoteTarget,
            routeSet=routeSet,
            remoteCSeq=remoteCSeq,
            flowTransport=first.transport.upper(),
            flowHost=first.host,
            flowPort=first.port,
        )

    def _grant(self, duration: int, grantsAtSend: int | None = None) -> None:
        """
        The subscription lasts C{duration} seconds from now: schedule the
        refresh (L{refreshDelay}) and the local expiry, where the state
        holds them (not while unsubscribing) and not for a fetch.

        @param grantsAtSend: for the 2xx to a SUBSCRIBE, how many grants
            there had been when it was sent: an C{expires=} of a NOTIFY
            that arrived since then is not lengthened by the 2xx.
        """
        now = self.subscriber.clock.seconds()
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
        if self._fetch or self.state not in TIMERS[SubscriberTimer.EXPIRY]:
            return
        if remaining > 0:
            self._arm(
                SubscriberTimer.REFRESH, refreshDelay(remaining), self._onRefreshTimer
            )
            self._arm(SubscriberTimer.EXPIRY, remaining, self._onExpiry)
        else:
            # Shortened to zero: the final NOTIFY should follow; if it
            # does not, end after Timer N.
            self._cancel(SubscriberTimer.REFRESH)
            self._arm(SubscriberTimer.EXPIRY, self.subscriber.timerN, self._onExpiry)

    def _sendRefresh(self, refresh: _Refresh | None) -> None:
        """
        Send a refreshing SUBSCRIBE (RFC 6665 section 4.1.2.2): the
        application's (C{refresh}) or the refresh timer's (C{None}).
        """
        if self.dialog is None:
            self._refuseRefresh(refresh)
            return
        if refresh is not None and refresh.expires is not None:
            self._expires = refresh.expires
        self._cancel(SubscriberTimer.REFRESH)
        sending = _Sending(_Kind.REFRESH, self._generation, self._expires)
        if refresh is not None:
            sending.deferred = refresh.deferred
        else:
            d: Deferred[None] = Deferred()
            d.addErrback(self._refreshFailed)
            sending.deferred = d
        try:
            request, target = self._inDialogRequest(self._expires)
        except ValueError as e:
            sending.deferred.errback(
                SubscriptionFailed(0, f"Cannot refresh ({e})", self.target)
            )
            return
        self._send(sending, request, target)

    def _refuseRefresh(self, refresh: _Refresh | None) -> None:
        if refresh is not None:
            refresh.deferred.errback(
                SubscriptionFailed(0, "Subscription not established", self.target)
            )

    def _refreshFailed(self, failure: Failure) -> None:
        self.log.info(
            "Refresh of {sub!r} failed: {error}",
            sub=self,
            error=failure.getErrorMessage(),
        )

    def _sendUnsubscribe(self, _: object) -> None:
        """
        Send C{Expires: 0} in the dialog (RFC 6665 section 4.1.2.3).
        """
        try:
            request, target = self._inDialogRequest(0)
        except ValueError as e:
            self.log.warn("Cannot unsubscribe {sub!r}: {error}", sub=self, error=str(e))
            self._fire(_I.GIVE_UP, _Ending(Termination()))
            return
        self._send(_Sending(_Kind.UNSUBSCRIBE, self._generation, 0), request, target)

    # Timers

    def _onRefreshTimer(self) -> None:
        self._fire(_I.REFRESH_TIMER)

    def _onExpiry(self) -> None:
        """
        The subscription expired without a successful refresh (RFC 6665
        section 4.1.2.2).
        """
        if self._sending:
            # A SUBSCRIBE is on its way; its Timer N decides.
            return
        error = self._lastFailure or SubscriptionTimedOut(
            "expired without a successful refresh", self.target
        )
        self._end(None, None, None, error, self._retryFor(None, None))

    def _onTimerN(self) -> None:
        """
        No NOTIFY within 64*T1 of the last SUBSCRIBE (RFC 6665 section
        4.1.2.2 and 4.1.2.4).
        """
        seconds = self.subscriber.timerN
        error = SubscriptionTimedOut(
            f"no NOTIFY within Timer N ({seconds:g} seconds)", self.target
        )
        if self.state is _S.UNSUBSCRIBING:
            # Answered but no final NOTIFY: ended all the same; not even
            # answered: say so.
            answered = self._unsubscribeSending not in self._sending
            failure = None if answered else error
            self._fire(_I.ENDED, _Ending(Termination(failure=failure)))
        elif self.state is _S.NOTIFY_WAIT and self._retries == 0:
            # The first attempt: it never worked, so it is not retried.
            self._end(None, None, None, error, None)
        else:
            self._end(None, None, None, error, self._retryFor(None, None))

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
        if self.dialog is not None:
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
        fork._fire(_I.FORKED, self)
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
        now = self.subscriber.clock.seconds()
        cseq = request.cseq
        remoteCSeq = cseq.number if cseq is not None else NO_CSEQ
        dialog = self.dialog
        # The dialog's remote CSeq is set by NOTIFYs only.
        first = dialog is None or dialog.remoteCSeq == NO_CSEQ
        if first:
            if contact is None:
                contact = (
                    dialog.remoteTarget if dialog is not None else self._requestURI
                )
            self.dialog = self._newDialog(
                remoteTag,
                contact,
                # RFC 6665 section 4.4.1: from the NOTIFY, in order.
                tuple(str(r) for r in request.recordRoutes),
                remoteCSeq,
            )
            if dialog is None:
                self.subscriber._dialogStarted(self)
        else:
            assert dialog is not None
            # Target refresh (RFC 6665 section 3.2, RFC 3261 section 12.2.2).
            self.dialog = replace(
                dialog,
                remoteCSeq=remoteCSeq,
                remoteTarget=contact or dialog.remoteTarget,
            )
        self._cancel(SubscriberTimer.TIMER_N)
        notification = Notification(
            substate, event, _contentTypeOf(request), request.body, request, now
        )
        self.notification = notification
        state = substate.state
        self.log.debug("NOTIFY {state} for {sub!r}", state=str(substate), sub=self)
        if state == "active":
            self._fire(_I.NOTIFY_ACTIVE, (notification, first))
        elif state == "pending":
            self._fire(_I.NOTIFY_PENDING, (notification, first))
        elif state == "terminated":
            self._callObserver("notificationReceived", self, notification)
            # Ended before the waiters (fetch) run, so that they see the
            # subscription gone rather than still waiting for a NOTIFY.
            waiters, self._notifyWaiters = self._notifyWaiters, []
            reason = substate.reason
            retryAfter = substate.retryAfter
            self._end(
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
            self._fire(_I.NOTIFY_UNKNOWN, notification)

    def _notified(self, payload: tuple[Notification, bool]) -> None:
        """
        An C{active} or C{pending} NOTIFY (RFC 6665 section 4.1.3): its
        C{expires} applies, the observer hears of it, the waiters fire.
        """
        notification, first = payload
        substate = notification.subscriptionState
        if substate.expires is not None:
            self._grant(substate.expires)
        elif self.expiresAt is None:
            self._grant(DEFAULT_EXPIRES if self._expires is None else self._expires)
        if first:
            self._callObserver("subscriptionStarted", self)
        self._callObserver("notificationReceived", self, notification)
        if substate.state == "active":
            self._retries = 0
            waiters, self._activeWaiters = self._activeWaiters, []
            for d in waiters:
                d.callback(notification)
        self._fireNotified(notification)
        if self._fetch and self.state in (_S.PENDING, _S.ACTIVE):
            # A notifier that ignored Expires: 0 (module docstring).
            self.unsubscribe()

    def _report(self, notification: Notification) -> None:
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
        Forget the current dialog usage: look-up keys, dialog, and answers
        still to come (they are of an earlier attempt from now on, and no
        challenge of theirs is answered).
        """
        self._generation += 1
        self._unsubscribeSending = None
        for sending in self._sending:
            if sending.exchange is not None:
                sending.exchange.abandon()
        self.subscriber._usageEnded(self)
        self.dialog = None

    def _reportEnd(self, termination: Termination) -> None:
        self.log.info(
            "{sub!r} ended ({reason}{failure}){retry}",
            sub=self,
            reason=termination.reason or "no reason",
            failure=f": {termination.failure}"
            if termination.failure is not None
            else "",
            retry="; re-subscribing" if termination.willRetry else "",
        )
        self._callObserver("subscriptionEnded", self, termination)

    def _endReported(self, ending: _Ending) -> None:
        """
        The usage ended for good (RFC 6665 section 4.1.2): tell the
        observer, then every waiter.
        """
        self._endUsage()
        self._ended = ending.termination
        self._reportEnd(ending.termination)
        self._finish()

    def _endQuietly(self, ending: _Ending) -> None:
        """
        End for good while waiting to re-subscribe: the observer heard of
        the end of the usage already.
        """
        self._ended = ending.termination
        self._finish()

    def _endAndWait(self, ending: _Ending) -> None:
        """
        The usage ended and this handle re-subscribes after the delay.
        """
        self._endUsage()
        self._reportEnd(ending.termination)
        if self.state is not _S.RETRY_WAIT:
            # The observer unsubscribed.
            return
        self._retries += 1
        if ending.delay <= 0:
            self._onRetryTimer()
        else:
            self._arm(SubscriberTimer.RETRY, ending.delay, self._onRetryTimer)

    def _failureOf(self, termination: Termination) -> SubscriptionFailed:
        if termination.failure is not None:
            return termination.failure
        return SubscriptionTerminated(self.target, termination)

    def _finish(self) -> None:
        """
        The subscription has ended for good: fire every waiter.
        """
        termination = self._ended
        assert termination is not None
        self.subscriber._finished(self)
        if self.forkOf is not None and self in self.forkOf.forks:
            self.forkOf.forks.remove(self)
        failure = self._failureOf(termination)
        for waiters in (self._activeWaiters, self._notifyWaiters):
            pending = list(waiters)
            waiters.clear()
            for d in pending:
                d.errback(failure)
        ended, self._endWaiters = self._endWaiters, []
        for d2 in ended:
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

    def _nothing(self, _: object) -> None:
        pass


_A = SubscriberAction
Subscription._actions = {
    _A.NONE: Subscription._nothing,
    _A.SEND_SUBSCRIBE: Subscription._sendSubscribe,
    _A.ADOPT_FORK: Subscription._adoptFork,
    _A.RESUBSCRIBE: Subscription._resubscribe,
    _A.GRANT: Subscription._accepted,
    _A.UNSUBSCRIBE_ANSWERED: Subscription._unsubscribeAnswered,
    _A.HOLD_UNTIL_EXPIRY: Subscription._holdUntilExpiry,
    _A.NOTIFIED: Subscription._notified,
    _A.REPORT: Subscription._report,
    _A.SEND_REFRESH: Subscription._sendRefresh,
    _A.REFUSE_REFRESH: Subscription._refuseRefresh,
    _A.SEND_UNSUBSCRIBE: Subscription._sendUnsubscribe,
    _A.END: Subscription._endReported,
    _A.END_QUIETLY: Subscription._endQuietly,
    _A.END_AND_WAIT: Subscription._endAndWait,
}
del _A
