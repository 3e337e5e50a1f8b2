# -*- test-case-name: tests.test_subscriber -*-
"""
The subscriber (RFC 6665 section 4.1): sends SUBSCRIBE, receives NOTIFY,
refreshes, re-subscribes and unsubscribes, over a L{UserAgent}.

L{Subscriber} is the L{IRequestHandler} for NOTIFY and the application's
L{ISubscriber}; each L{sipevents.subscriber.handle.Subscription} it hands
out is one dialog usage (RFC 6665 section 4.1.2) that an
L{ISubscriptionObserver} watches (L{SubscriptionObserver} is a base that
does nothing). The package holds, besides:

  - L{sipevents.subscriber.states}: the declared state table of a
    subscription, the timers each state holds, and the pure decisions
    (refresh C{min(32 s, duration / 2)} before the expiry, re-subscription
    delays with the RFC 5626 back-off, the duration a 2xx grants);
  - L{sipevents.subscriber.handle}: the L{Subscription} handle that runs
    the table, and the choices it makes where the RFCs leave one (only the
    main handle re-subscribes, forks never; a fetch unsubscribes a notifier
    that ignored C{Expires: 0} ...);
  - L{sipevents.subscriber.exchange}: the UAC exchange that answers 401,
    407, 423 and 3xx for each SUBSCRIBE;
  - L{sipevents.subscriber.client}: the Twisted wiring for applications.

The NOTIFY checks, in order (RFC 6665 section 4.1.3): no To tag, or no
subscription for the dialog or the SUBSCRIBE it answers (a usage that has
ended included), 481; no Event, 400; an Event type or C{id} (compared byte
by byte, section 8.2.1) other than the one subscribed, 489; a missing or
malformed Subscription-State, 400; a CSeq lower than the last, 500 (RFC
3261 section 12.2.2); a malformed Contact, 400. Otherwise 200, sent before
the observer is called, whatever the observer does. An unknown
Subscription-State value is answered 200 and reported, changing nothing.
A NOTIFY whose From tag differs from the dialog established makes a fork
until Timer N after the SUBSCRIBE (section 4.1.4), unless it is
C{terminated} (section 4.4.1).
"""

from __future__ import annotations

import random as _random
from collections.abc import Sequence
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred, fail, gatherResults, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from sipevents.config import TimerConfig
from sipevents.errors import CallDoesNotExist, SIPError
from sipevents.events import Notification, Termination
from sipevents.interfaces import (
    IRequestContext,
    IRequestHandler,
    ISubscriber,
    ISubscription,
    ISubscriptionObserver,
)
from sipevents.sip.addresses import Target
from sipevents.sip.dialog import listeningContact, remoteTargetOf
from sipevents.sip.message import Request, Response
from sipevents.sip.routing import targetFromURI
from sipevents.sip.uri import parseURI
from sipevents.subscriber.handle import Subscription, SubscriptionOptions

if TYPE_CHECKING:
    from sipevents.events import Credentials
    from sipevents.sip.useragent import UserAgent

__all__ = ["Subscriber", "SubscriptionObserver"]


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
            SubscriptionOptions(
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
            SubscriptionOptions(
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
        options: SubscriptionOptions,
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
        attempt = subscription._attempt
        assert attempt is not None
        self._byAttempt[(attempt.callId, attempt.localTag)] = subscription

    def _dialogStarted(self, subscription: Subscription) -> None:
        dialog = subscription.dialog
        assert dialog is not None
        self._byDialog[(dialog.callId, dialog.localTag, dialog.remoteTag)] = (
            subscription
        )

    def _usageEnded(self, subscription: Subscription) -> None:
        attempt = subscription._attempt
        if attempt is not None:
            key = (attempt.callId, attempt.localTag)
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
