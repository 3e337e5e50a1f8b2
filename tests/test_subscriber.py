# -*- test-case-name: tests.test_subscriber -*-
"""
Tests for L{sipevents.subscriber.subscriber}: the subscriber side of RFC 6665
(section 4.1), driven through a real L{UserAgent} on a recording
transport layer and a L{Clock}: responses and NOTIFYs are parsed from
text and fed to the user agent, and the SUBSCRIBEs it sends are checked.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from sipevents.errors import InvalidTransition
from sipevents.events import (
    Notification,
    SubscriptionFailed,
    SubscriptionTerminated,
    SubscriptionTimedOut,
    Termination,
)
from sipevents.interfaces import (
    IRequestHandler,
    ISubscriber,
    ISubscription,
    ISubscriptionObserver,
)
from sipevents.sip import digest
from sipevents.sip.addresses import Source, Target
from sipevents.sip.headers import Event
from sipevents.sip.headers import SubscriptionState as HeaderSubscriptionState
from sipevents.sip.message import Request, Response
from sipevents.sip.uri import formatURI
from sipevents.sip.useragent import UserAgent
from sipevents.subscriber.handle import (
    _SLOTS,
    Subscription,
    SubscriptionOptions,
    _Ending,
    _Kind,
    _Refresh,
    _Sending,
)
from sipevents.subscriber.states import (
    DEFAULT_EXPIRES,
    TIMERS,
    TRANSITIONS,
    SubscriberInput,
    SubscriberState,
    SubscriberTimer,
    backoff,
    refreshDelay,
    retryDelay,
    transition,
)
from sipevents.subscriber.subscriber import Subscriber, SubscriptionObserver
from sipevents.testing import (
    NOTIFIER_CONTACT,
    FakeSIPConnection,
    RecordingTransportLayer,
    connectedPair,
    notifyRequest,
    responseTo,
)

BOB = "sip:bob@127.0.0.1:5060"
NOTIFIER = Target("UDP", "127.0.0.1", 5060)
TIMER_N = 32.0


class RecordingObserver(SubscriptionObserver):
    """
    Records every call, as C{(name, subscription, argument)}.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, Subscription, object]] = []

    def notificationReceived(
        self, subscription: Subscription, notification: Notification
    ) -> None:
        self.calls.append(("notification", subscription, notification))

    def subscriptionStarted(self, subscription: Subscription) -> None:
        self.calls.append(("started", subscription, None))

    def subscriptionEnded(
        self, subscription: Subscription, termination: Termination
    ) -> None:
        self.calls.append(("ended", subscription, termination))

    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]

    def endings(self) -> list[Termination]:
        return [t for name, _, t in self.calls if name == "ended"]  # type: ignore[misc]


class SubscriberMixin:
    """
    A L{Subscriber} on a L{UserAgent} with a L{RecordingTransportLayer}
    (we listen at 127.0.0.1:5070) and a L{Clock}; the notifier is at
    127.0.0.1:5060.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.transportLayer = RecordingTransportLayer("127.0.0.1", 5070)
        self.ua = UserAgent(self.clock, self.transportLayer)
        self.random = random.Random(6665)
        self.subscriber = Subscriber(self.ua, random=self.random)
        self.observer = RecordingObserver()
        self.source = Source(
            FakeSIPConnection("UDP", "127.0.0.1", 5070), "127.0.0.1", 5060
        )
        self.notifyCount = 0

    # What we sent

    def sent(self, method: str = "SUBSCRIBE") -> list[Request]:
        """
        Every distinct request of C{method} sent (retransmissions once).
        """
        seen: list[Request] = []
        for request, _ in self.transportLayer.requests:
            if request.method == method and not any(r is request for r in seen):
                seen.append(request)
        return seen

    def targetOf(self, request: Request) -> Target:
        for sent, target in self.transportLayer.requests:
            if sent is request:
                return target
        raise AssertionError("not sent")

    def last(self) -> Request:
        return self.sent()[-1]

    def subscribe(self, **kwargs: object) -> Subscription:
        kwargs.setdefault("observer", self.observer)
        kwargs.setdefault("expires", 600)
        return self.subscriber.subscribe(BOB, "presence", **kwargs)  # type: ignore[arg-type]

    # What the notifier sends

    def respond(
        self,
        request: Request,
        code: int,
        toTag: str | None = "nt1",
        contact: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        """
        Answer C{request} with C{code}; a 2xx carries the notifier's
        Contact unless told another.
        """
        if contact is None and 200 <= code < 300:
            contact = NOTIFIER_CONTACT
        response = responseTo(
            request, code, toTag=toTag, contact=contact, headers=headers
        )
        self.ua.messageReceived(response, self.source)

    def notifyFor(
        self,
        subscribe: Request,
        state: str | None = "active;expires=600",
        *,
        fromTag: str = "nt1",
        cseq: int | None = None,
        event: str | None = None,
        contact: str | None = NOTIFIER_CONTACT,
        body: bytes = b"",
        contentType: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
        callId: str | None = None,
        toTag: str | None = None,
        branch: str | None = None,
    ) -> Request:
        """
        A NOTIFY from the notifier at L{BOB} to our Contact, for the
        dialog of C{subscribe}; NOTIFYs count up in CSeq and branch unless
        told otherwise.
        """
        self.notifyCount += 1
        return notifyRequest(
            subscribe,
            state,
            uri="sip:127.0.0.1:5070",
            fromURI=BOB,
            fromTag=fromTag,
            toTag=toTag,
            callId=callId,
            cseq=self.notifyCount if cseq is None else cseq,
            event=event,
            contact=contact,
            headers=headers,
            body=body,
            contentType=contentType,
            branch=branch or f"z9hG4bK-n{self.notifyCount}",
        )

    def notify(
        self,
        subscribe: Request,
        state: str | None = "active;expires=600",
        **kwargs: Any,
    ) -> Response:
        """
        Deliver L{notifyFor}C{(subscribe, state, **kwargs)} and return the
        final response the user agent sent to it.
        """
        message = self.notifyFor(subscribe, state, **kwargs)
        before = len(self.transportLayer.responses)
        self.ua.messageReceived(message, self.source)
        finals = [r for r, _ in self.transportLayer.responses[before:] if r.code >= 200]
        assert len(finals) == 1, finals
        return finals[0]

    def establish(self, **kwargs: object) -> tuple[Subscription, Request]:
        """
        Subscribe, answer 200 (Expires 600) and NOTIFY active.
        """
        subscription = self.subscribe(**kwargs)
        request = self.last()
        self.respond(request, 200, headers=[("Expires", "600")])
        self.notify(request)
        return subscription, request


class PureTests(SynchronousTestCase):
    """
    The sans-I/O decisions.
    """

    def test_rfc6665_4_1_2_stateDiagram(self) -> None:
        """
        L{transition} follows the diagram of RFC 6665 section 4.1.2.
        """
        S, In = SubscriberState, SubscriberInput

        def after(state: SubscriberState, input: SubscriberInput) -> SubscriberState:
            return transition(state, input).state

        self.assertIs(after(S.INIT, In.SUBSCRIBE), S.NOTIFY_WAIT)
        self.assertIs(after(S.NOTIFY_WAIT, In.NOTIFY_PENDING), S.PENDING)
        self.assertIs(after(S.NOTIFY_WAIT, In.NOTIFY_ACTIVE), S.ACTIVE)
        self.assertIs(after(S.NOTIFY_WAIT, In.ENDED), S.TERMINATED)
        self.assertIs(after(S.PENDING, In.NOTIFY_ACTIVE), S.ACTIVE)
        self.assertIs(after(S.ACTIVE, In.ENDED), S.TERMINATED)
        self.assertIs(after(S.PENDING, In.ENDED), S.TERMINATED)
        self.assertIs(after(S.ACTIVE, In.ENDED_RETRY), S.RETRY_WAIT)
        self.assertIs(after(S.RETRY_WAIT, In.RETRY_TIMER), S.NOTIFY_WAIT)
        self.assertRaises(InvalidTransition, transition, S.TERMINATED, In.NOTIFY_ACTIVE)
        self.assertRaises(InvalidTransition, transition, S.INIT, In.NOTIFY_ACTIVE)

    def test_rfc6665_4_1_3_retryDelay(self) -> None:
        """
        L{retryDelay}: never after rejected, noresource, invariant; at once
        after deactivated and timeout (retry-after ignored); retry-after
        otherwise; a back-off without it.
        """
        r = random.Random(1)
        for reason in ("rejected", "noresource", "invariant"):
            self.assertIsNone(retryDelay(reason, 10, 0, r))
        self.assertEqual(retryDelay("deactivated", 99, 0, r), 0)
        self.assertEqual(retryDelay("timeout", None, 2, r), 0)
        self.assertEqual(retryDelay("probation", 120, 0, r), 120)
        self.assertEqual(retryDelay("giveup", 5, 7, r), 5)
        self.assertEqual(retryDelay("something-new", 40, 0, r), 40)
        for reason in ("probation", "giveup", None, "something-new"):
            delay = retryDelay(reason, None, 0, r)
            assert delay is not None
            self.assertTrue(15 <= delay <= 30, delay)

    def test_rfc6665_4_1_3_tightLoopGuard(self) -> None:
        """
        After three immediate retries in a row, an immediate retry is backed
        off.
        """
        r = random.Random(1)
        self.assertEqual(retryDelay("deactivated", None, 2, r), 0)
        delay = retryDelay("deactivated", None, 3, r)
        assert delay is not None
        self.assertTrue(15 <= delay <= 30, delay)
        delay = retryDelay("probation", 0, 4, r)
        assert delay is not None
        self.assertTrue(30 <= delay <= 60, delay)

    def test_backoff(self) -> None:
        """
        RFC 5626 section 4.5: 30 * 2**n capped at 1800, jittered 50-100%.
        """
        r = random.Random(2)
        for attempt, ceiling in ((0, 30), (1, 60), (3, 240), (6, 1800), (60, 1800)):
            for _ in range(20):
                delay = backoff(attempt, r)
                self.assertTrue(ceiling / 2 <= delay <= ceiling, (attempt, delay))

    def test_rfc6665_4_1_2_2_refreshDelay(self) -> None:
        """
        Refresh C{min(32, duration / 2)} before the expiry.
        """
        self.assertEqual(refreshDelay(600), 568)
        self.assertEqual(refreshDelay(3600), 3568)
        self.assertEqual(refreshDelay(40), 20)
        self.assertEqual(refreshDelay(64), 32)

    def test_failureMessages(self) -> None:
        """
        The failures say what happened and to which target.
        """
        self.assertEqual(
            str(
                SubscriptionFailed(
                    489, "Bad Event", BOB, allowEvents=["presence", "dialog"]
                )
            ),
            f"489 Bad Event from {BOB} (it allows: presence, dialog)",
        )
        self.assertEqual(
            str(SubscriptionTimedOut("Timer F", BOB)), f"No answer from {BOB}: Timer F"
        )
        self.assertEqual(SubscriptionTimedOut("x", BOB).code, 408)
        terminated = SubscriptionTerminated(BOB, Termination(reason="rejected"))
        self.assertEqual(str(terminated), f"Subscription terminated (rejected): {BOB}")


class InterfaceTests(SubscriberMixin, SynchronousTestCase):
    def test_interfaces(self) -> None:
        """
        The subscriber provides L{ISubscriber} and L{IRequestHandler}, and
        is the NOTIFY handler of its user agent; its handles provide
        L{ISubscription}; the observer base provides
        L{ISubscriptionObserver}.
        """
        self.assertTrue(verifyObject(ISubscriber, self.subscriber))
        self.assertTrue(verifyObject(ISubscription, self.subscribe()))
        self.assertTrue(verifyObject(IRequestHandler, self.subscriber))
        self.assertTrue(verifyObject(ISubscriptionObserver, SubscriptionObserver()))
        self.assertIs(self.ua.handlerFor("NOTIFY"), self.subscriber)


class InitialSubscribeTests(SubscriberMixin, SynchronousTestCase):
    """
    RFC 6665 section 4.1.2.1 and 4.1.2.4.
    """

    def test_rfc3261_19_1_1_toWithoutRoutingParameters(self) -> None:
        """
        The To field names the resource: port, C{transport}, C{maddr} and
        URI headers of the target stay in the Request-URI only (RFC 3261
        section 19.1.1, table 1); user parameters are kept.
        """
        target = "sip:bob@127.0.0.1:5070;user=phone;transport=udp;maddr=127.0.0.1"
        self.subscriber.subscribe(target, "presence")
        [request] = self.sent()
        self.assertEqual(formatURI(request.uri), target)
        toAddr = request.toAddr
        assert toAddr is not None
        self.assertEqual(formatURI(toAddr.uri), "sip:bob@127.0.0.1;user=phone")

    def test_rfc6665_4_1_2_1_initialSubscribe(self) -> None:
        """
        The first SUBSCRIBE is outside a dialog: Request-URI the target, To
        the target without its port (RFC 3261 section 19.1.1, table 1), a
        From tag, a Call-ID, CSeq 1, Event with id, Expires,
        Accept, our Contact, the extra headers and the body.
        """
        subscription = self.subscriber.subscribe(
            BOB,
            "presence",
            id="7",
            accept=["application/pidf+xml", "text/plain"],
            expires=300,
            body=b"filter",
            contentType="text/x-filter",
            headers=[("X-Test", "1"), ("Priority", "urgent")],
        )
        [request] = self.sent()
        self.assertEqual(formatURI(request.uri), BOB)
        self.assertEqual(self.targetOf(request), NOTIFIER)
        toAddr, fromAddr = request.toAddr, request.fromAddr
        assert toAddr is not None and fromAddr is not None
        self.assertEqual(formatURI(toAddr.uri), "sip:bob@127.0.0.1")
        self.assertIsNone(toAddr.tag)
        self.assertTrue(fromAddr.tag)
        self.assertEqual(formatURI(fromAddr.uri), "sip:sipevents@127.0.0.1")
        self.assertTrue(request.callId)
        self.assertEqual(request.headers.get("CSeq"), "1 SUBSCRIBE")
        self.assertEqual(request.headers.get("Event"), "presence;id=7")
        self.assertEqual(request.expires, 300)
        self.assertEqual(
            request.headers.getList("Accept"), ["application/pidf+xml", "text/plain"]
        )
        self.assertEqual(request.headers.get("Contact"), "<sip:127.0.0.1:5070>")
        self.assertNotIn("Allow-Events", request.headers)
        self.assertEqual(request.body, b"filter")
        self.assertEqual(request.headers.get("Content-Type"), "text/x-filter")
        names = [name for name, _ in request.headers]
        at = names.index("Content-Type")
        self.assertEqual(names[at : at + 3], ["Content-Type", "X-Test", "Priority"])
        self.assertEqual(request.headers.get("X-Test"), "1")
        self.assertEqual(subscription.state, SubscriberState.NOTIFY_WAIT)
        self.assertIsNone(subscription.dialog)
        self.assertEqual(subscription.id, "7")
        self.assertEqual(self.subscriber.subscriptions, [subscription])

    def test_rfc6665_4_1_2_1_fromUri(self) -> None:
        """
        The From URI is C{fromUri}, else the subscriber's C{localUri}.
        """
        subscriber = Subscriber(self.ua, localUri="sip:watcher@127.0.0.1")
        subscriber.subscribe(BOB, "presence")
        subscriber.subscribe(BOB, "presence", fromUri="sip:other@127.0.0.1")
        first, second = self.sent()
        self.assertEqual(
            first.headers.get("From", "").split(";")[0], "<sip:watcher@127.0.0.1>"
        )
        self.assertEqual(
            second.headers.get("From", "").split(";")[0], "<sip:other@127.0.0.1>"
        )

    def test_rfc3261_8_1_2_proxyAsPreloadedRoute(self) -> None:
        """
        An outbound proxy is a preloaded loose Route (RFC 3261 section
        8.1.2): the request goes there, the Request-URI stays the target,
        and the Contact names the proxy's transport.
        """
        self.subscribe(proxy="sip:127.0.0.1:5080;transport=tcp")
        request = self.last()
        self.assertEqual(formatURI(request.uri), BOB)
        self.assertEqual(
            request.headers.get("Route"), "<sip:127.0.0.1:5080;transport=tcp;lr>"
        )
        self.assertEqual(self.targetOf(request), Target("TCP", "127.0.0.1", 5080))
        self.assertEqual(
            request.headers.get("Contact"), "<sip:127.0.0.1:5070;transport=tcp>"
        )

    def test_badTarget(self) -> None:
        """
        A target we cannot send to is a L{ValueError} at once.
        """
        self.assertRaises(
            ValueError, self.subscriber.subscribe, "mailto:bob@x", "presence"
        )
        self.assertRaises(
            ValueError,
            self.subscriber.subscribe,
            "sip:bob@127.0.0.1;transport=sctp",
            "presence",
        )
        self.assertEqual(self.subscriber.subscriptions, [])

    def test_rfc6665_4_1_2_1_200SetsExpiresAt(self) -> None:
        """
        The Expires of the 2xx is the duration (RFC 6665 section 3.1.1).
        """
        subscription = self.subscribe(expires=600)
        self.clock.advance(1)
        self.respond(self.last(), 200, headers=[("Expires", "300")])
        self.assertEqual(subscription.expiresAt, 301)
        assert subscription.dialog is not None
        self.assertEqual(subscription.dialog.remoteTag, "nt1")
        self.assertEqual(subscription.dialog.remoteTarget, "sip:bob@127.0.0.1:5060")
        self.assertEqual(subscription.state, SubscriberState.NOTIFY_WAIT)

    def test_rfc6665_3_1_1_200WithoutExpires(self) -> None:
        """
        A 2xx without Expires grants what was asked, else 3600 seconds.
        """
        asked = self.subscribe(expires=120)
        self.respond(self.last(), 200)
        self.assertEqual(asked.expiresAt, 120)
        unasked = self.subscribe(expires=None)
        self.assertNotIn("Expires", self.last().headers)
        self.respond(self.last(), 200)
        self.assertEqual(unasked.expiresAt, DEFAULT_EXPIRES)

    def test_rfc3265_3_1_4_202Accepted(self) -> None:
        """
        A 202 from an RFC 3265 notifier is a success too; a pending NOTIFY
        does not fire C{whenActive}, the active one does.
        """
        subscription = self.subscribe()
        active = subscription.whenActive()
        request = self.last()
        self.respond(request, 202, headers=[("Expires", "600")])
        self.assertEqual(self.notify(request, "pending;expires=600").code, 200)
        self.assertEqual(subscription.state, SubscriberState.PENDING)
        self.assertNoResult(active)
        self.notify(request, "active;expires=599")
        self.assertEqual(subscription.state, SubscriberState.ACTIVE)
        self.assertEqual(self.successResultOf(active).state, "active")

    def test_rfc6665_4_1_3_activeNotify(self) -> None:
        """
        An active NOTIFY is answered 200 and reported: Subscription-State,
        Event, content type without parameters, body, receive time.
        """
        subscription = self.subscribe()
        request = self.last()
        self.respond(request, 200, headers=[("Expires", "600")])
        self.clock.advance(2)
        response = self.notify(
            request,
            "active;expires=590",
            body=b"<presence/>",
            contentType="Application/PIDF+XML; charset=utf-8",
        )
        self.assertEqual(response.code, 200)
        self.assertEqual(self.observer.names(), ["started", "notification"])
        notification = subscription.notification
        assert notification is not None
        self.assertEqual(notification.state, "active")
        self.assertEqual(notification.subscriptionState.expires, 590)
        self.assertEqual(notification.event.eventType, "presence")
        self.assertEqual(notification.contentType, "application/pidf+xml")
        self.assertEqual(notification.body, b"<presence/>")
        self.assertEqual(notification.receivedAt, 2)
        self.assertEqual(notification.request.method, "NOTIFY")
        self.assertEqual(subscription.expiresAt, 592)
        self.assertEqual(self.successResultOf(subscription.whenActive()), notification)
        self.assertIsNone(self.observer.calls[0][1].forkOf)

    def test_rfc6665_4_1_3_answeredBeforeObserver(self) -> None:
        """
        The NOTIFY is answered 200 before the observer is called, and an
        observer that raises is logged without changing the answer.
        """
        responses = self.transportLayer.responses

        class Raising(SubscriptionObserver):
            seen: list[int] = []

            def notificationReceived(
                self, subscription: Subscription, notification: Notification
            ) -> None:
                self.seen.append(responses[-1][0].code)
                raise RuntimeError("observer bug")

        observer = Raising()
        subscription = self.subscribe(observer=observer)
        request = self.last()
        self.respond(request, 200)
        self.assertEqual(self.notify(request).code, 200)
        self.assertEqual(observer.seen, [200])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(subscription.state, SubscriberState.ACTIVE)

    def test_rfc6665_4_1_2_4_notifyBefore200(self) -> None:
        """
        A NOTIFY arriving before the 2xx is matched by Call-ID, To tag and
        Event and processed; the 2xx from the same notifier then joins the
        same subscription.
        """
        subscription = self.subscribe()
        request = self.last()
        self.assertEqual(self.notify(request, "active;expires=500").code, 200)
        self.assertEqual(subscription.state, SubscriberState.ACTIVE)
        assert subscription.dialog is not None
        self.assertEqual(subscription.dialog.remoteTag, "nt1")
        self.respond(request, 200, headers=[("Expires", "600")])
        self.assertEqual(self.subscriber.subscriptions, [subscription])
        # The NOTIFY's expires= came after the SUBSCRIBE was sent: not
        # lengthened by the 2xx.
        self.assertEqual(subscription.expiresAt, 500)
        self.assertEqual(self.notify(request, "active;expires=400").code, 200)

    def test_rfc6665_4_1_2_4_timerN(self) -> None:
        """
        No NOTIFY within Timer N (64*T1) of the SUBSCRIBE ends the attempt
        with L{SubscriptionTimedOut}; a later NOTIFY gets 481.
        """
        subscription = self.subscribe()
        active = subscription.whenActive()
        terminated = subscription.whenTerminated()
        request = self.last()
        self.respond(request, 200)
        self.clock.advance(TIMER_N - 0.5)
        self.assertNoResult(active)
        self.clock.advance(0.5)
        failure = self.failureResultOf(active, SubscriptionTimedOut)
        self.assertIn(BOB, str(failure.value))
        self.assertEqual(failure.value.code, 408)
        termination = self.successResultOf(terminated)
        self.assertIsInstance(termination.failure, SubscriptionTimedOut)
        self.assertFalse(termination.willRetry)
        self.assertEqual(subscription.state, SubscriberState.TERMINATED)
        self.assertEqual(self.subscriber.subscriptions, [])
        self.assertEqual(self.notify(request).code, 481)

    def test_rfc6665_4_1_2_4_timerNFromTimerConfig(self) -> None:
        """
        Timer N is 64*T1 of the user agent's timers.
        """
        from sipevents.config import TimerConfig

        ua = UserAgent(self.clock, self.transportLayer, TimerConfig(T1=0.1))
        subscriber = Subscriber(ua)
        self.assertAlmostEqual(subscriber.timerN, 6.4)
        subscription = subscriber.subscribe(BOB, "presence")
        self.clock.advance(6.5)
        self.assertEqual(subscription.state, SubscriberState.TERMINATED)

    def test_rfc3261_17_1_2_2_noAnswer(self) -> None:
        """
        No answer at all: L{SubscriptionTimedOut} naming the target.
        """
        subscription = self.subscribe()
        active = subscription.whenActive()
        self.clock.pump([0.5] * 70)
        failure = self.failureResultOf(active, SubscriptionTimedOut)
        self.assertTrue(str(failure.value).startswith(f"No answer from {BOB}"))

    def test_transportFailure(self) -> None:
        """
        A send that fails ends the attempt with L{SubscriptionTimedOut}.
        """
        from twisted.internet.defer import fail

        self.transportLayer.sendResults.append(fail(OSError("unreachable")))
        subscription = self.subscribe()
        termination = self.successResultOf(subscription.whenTerminated())
        self.assertIsInstance(termination.failure, SubscriptionTimedOut)
        self.flushLoggedErrors()

    def test_rfc6665_4_1_2_1_errorResponseFails(self) -> None:
        """
        A non-2xx answer ends the subscription with L{SubscriptionFailed}.
        """
        subscription = self.subscribe()
        active = subscription.whenActive()
        self.respond(self.last(), 403)
        failure = self.failureResultOf(active, SubscriptionFailed)
        self.assertEqual(failure.value.code, 403)
        self.assertIsNotNone(failure.value.response)
        self.assertEqual(self.observer.names(), ["ended"])
        self.assertFalse(self.observer.endings()[0].willRetry)
        self.assertEqual(len(self.sent()), 1)

    def test_rfc6665_4_1_2_1_489ListsAllowEvents(self) -> None:
        """
        489 fails with the notifier's Allow-Events.
        """
        subscription = self.subscribe()
        self.respond(
            self.last(), 489, headers=[("Allow-Events", "presence.winfo, dialog")]
        )
        failure = self.failureResultOf(subscription.whenActive(), SubscriptionFailed)
        self.assertEqual(failure.value.allowEvents, ["presence.winfo", "dialog"])
        self.assertEqual(
            str(failure.value),
            f"489 Bad Event from {BOB} (it allows: presence.winfo, dialog)",
        )

    def test_rfc6665_4_1_2_1_423RetryOnce(self) -> None:
        """
        423 is answered once with the Min-Expires asked for, in the same
        Call-ID with the next CSeq; a second 423 fails.
        """
        subscription = self.subscribe(expires=30)
        first = self.last()
        self.respond(first, 423, headers=[("Min-Expires", "1800")])
        second = self.last()
        self.assertIsNot(first, second)
        self.assertEqual(second.expires, 1800)
        self.assertEqual(second.headers.get("CSeq"), "2 SUBSCRIBE")
        self.assertEqual(second.callId, first.callId)
        self.assertEqual(second.fromAddr.tag, first.fromAddr.tag)  # type: ignore[union-attr]
        self.respond(second, 423, headers=[("Min-Expires", "3600")])
        self.assertEqual(len(self.sent()), 2)
        failure = self.failureResultOf(subscription.whenActive(), SubscriptionFailed)
        self.assertEqual(failure.value.code, 423)

    def test_rfc6665_4_1_2_1_423Succeeds(self) -> None:
        """
        After a 423 the subscription goes on with the longer duration.
        """
        subscription = self.subscribe(expires=30)
        self.respond(self.last(), 423, headers=[("Min-Expires", "60")])
        self.respond(self.last(), 200, headers=[("Expires", "60")])
        self.notify(self.last(), "active;expires=60")
        self.assertEqual(subscription.state, SubscriberState.ACTIVE)
        self.clock.advance(30)
        self.assertEqual(self.last().expires, 60)
        self.assertEqual(len(self.sent()), 3)

    def test_rfc3261_8_1_3_4_redirectFollowedOnce(self) -> None:
        """
        A 3xx is followed once, to its first Contact; a second fails.
        """
        subscription = self.subscribe()
        first = self.last()
        self.respond(
            first, 302, contact="<sip:carol@127.0.0.1:5090>, <sip:dave@127.0.0.1:5091>"
        )
        second = self.last()
        self.assertEqual(formatURI(second.uri), "sip:carol@127.0.0.1:5090")
        self.assertEqual(self.targetOf(second), Target("UDP", "127.0.0.1", 5090))
        self.assertEqual(second.headers.get("CSeq"), "2 SUBSCRIBE")
        self.assertEqual(second.callId, first.callId)
        self.respond(second, 302, contact="<sip:erin@127.0.0.1:5092>")
        self.assertEqual(len(self.sent()), 2)
        failure = self.failureResultOf(subscription.whenActive(), SubscriptionFailed)
        self.assertEqual(failure.value.code, 302)

    def test_rfc3261_8_1_3_4_redirectThenSuccess(self) -> None:
        """
        The redirected subscription works; refreshes go to its dialog.
        """
        subscription = self.subscribe()
        self.respond(self.last(), 301, contact="<sip:carol@127.0.0.1:5090>")
        request = self.last()
        self.respond(request, 200, contact="<sip:carol@127.0.0.1:5090>")
        self.notify(request, contact="<sip:carol@127.0.0.1:5090>")
        self.assertEqual(subscription.state, SubscriberState.ACTIVE)
        self.clock.advance(568)
        self.assertEqual(formatURI(self.last().uri), "sip:carol@127.0.0.1:5090")


class DigestTests(SubscriberMixin, SynchronousTestCase):
    """
    401 and 407 answered with L{sipevents.sip.digest} (RFC 3261 section 22.2
    and 22.3).
    """

    credentials = digest.Credentials("alice", "secret")

    def challenge(self, stale: bool = False, nonce: str = "n1") -> str:
        value = f'Digest realm="sipevents", nonce="{nonce}", qop="auth", algorithm=MD5'
        return value + (", stale=true" if stale else "")

    def test_rfc3261_22_2_digest401(self) -> None:
        """
        A 401 is answered once with Authorization, the next CSeq and the
        same Call-ID; the answer verifies.
        """
        subscription = self.subscribe(credentials=self.credentials)
        first = self.last()
        self.respond(first, 401, headers=[("WWW-Authenticate", self.challenge())])
        second = self.last()
        self.assertIsNot(first, second)
        authorization = second.headers.get("Authorization")
        assert authorization is not None
        self.assertTrue(
            digest.verifyAuthorization(
                authorization, "SUBSCRIBE", "secret", "sipevents", "n1"
            )
        )
        self.assertEqual(second.headers.get("CSeq"), "2 SUBSCRIBE")
        self.assertEqual(second.callId, first.callId)
        self.respond(second, 200)
        self.notify(second)
        self.assertEqual(subscription.state, SubscriberState.ACTIVE)

    def test_rfc3261_22_3_digest407(self) -> None:
        """
        A 407 is answered with Proxy-Authorization.
        """
        self.subscribe(credentials=self.credentials)
        first = self.last()
        self.respond(first, 407, headers=[("Proxy-Authenticate", self.challenge())])
        second = self.last()
        self.assertIn("Proxy-Authorization", second.headers)
        self.assertEqual(second.headers.get("CSeq"), "2 SUBSCRIBE")

    def test_rfc3261_22_2_secondChallengeFails(self) -> None:
        """
        A second 401 that is not stale fails: the password is wrong.
        """
        subscription = self.subscribe(credentials=self.credentials)
        self.respond(self.last(), 401, headers=[("WWW-Authenticate", self.challenge())])
        self.respond(self.last(), 401, headers=[("WWW-Authenticate", self.challenge())])
        self.assertEqual(len(self.sent()), 2)
        failure = self.failureResultOf(subscription.whenActive(), SubscriptionFailed)
        self.assertEqual(failure.value.code, 401)

    def test_rfc3261_22_2_staleChallengeAnsweredAgain(self) -> None:
        """
        A second 401 with C{stale=true} is answered again, for its nonce.
        """
        self.subscribe(credentials=self.credentials)
        self.respond(self.last(), 401, headers=[("WWW-Authenticate", self.challenge())])
        self.respond(
            self.last(),
            401,
            headers=[("WWW-Authenticate", self.challenge(stale=True, nonce="n2"))],
        )
        third = self.last()
        self.assertEqual(len(self.sent()), 3)
        self.assertEqual(third.headers.get("CSeq"), "3 SUBSCRIBE")
        authorization = third.headers.get("Authorization")
        assert authorization is not None
        self.assertTrue(
            digest.verifyAuthorization(
                authorization, "SUBSCRIBE", "secret", "sipevents", "n2"
            )
        )

    def test_rfc3261_22_2_noCredentials(self) -> None:
        """
        Without credentials a 401 fails.
        """
        subscription = self.subscribe()
        self.respond(self.last(), 401, headers=[("WWW-Authenticate", self.challenge())])
        failure = self.failureResultOf(subscription.whenActive(), SubscriptionFailed)
        self.assertEqual(failure.value.code, 401)

    def test_rfc3261_22_2_refreshChallenged(self) -> None:
        """
        A refresh in the dialog is answered the same way.
        """
        subscription, _ = self.establish(credentials=self.credentials)
        d = subscription.refresh()
        refresh = self.last()
        self.respond(refresh, 401, headers=[("WWW-Authenticate", self.challenge())])
        again = self.last()
        self.assertIn("Authorization", again.headers)
        self.assertEqual(again.toAddr.tag, "nt1")  # type: ignore[union-attr]
        self.respond(again, 200)
        self.assertIsNone(self.successResultOf(d))


class ForkingTests(SubscriberMixin, SynchronousTestCase):
    """
    RFC 6665 section 4.1.4 and 4.4.1.
    """

    def test_rfc6665_4_1_4_forkedNotifyCreatesSecondSubscription(self) -> None:
        """
        A NOTIFY with another From tag makes a sibling subscription, with
        C{forkOf} set, reported through C{subscriptionStarted}, refreshed
        in its own dialog.
        """
        subscription, request = self.establish()
        self.assertEqual(
            self.notify(request, "active;expires=300", fromTag="nt2").code, 200
        )
        live = self.subscriber.subscriptions
        self.assertEqual(len(live), 2)
        fork = live[1]
        self.assertIs(fork.forkOf, subscription)
        self.assertEqual(subscription.forks, [fork])
        self.assertEqual(fork.state, SubscriberState.ACTIVE)
        assert fork.dialog is not None
        self.assertEqual(fork.dialog.remoteTag, "nt2")
        started = [sub for name, sub, _ in self.observer.calls if name == "started"]
        self.assertEqual(started, [subscription, fork])
        # The fork's own NOTIFYs reach it, not the main handle.
        self.notify(request, "active;expires=300", fromTag="nt2")
        self.assertIs(self.observer.calls[-1][1], fork)
        # Each refreshes in its own dialog.
        self.clock.advance(300 - 32)
        refresh = self.last()
        self.assertEqual(refresh.toAddr.tag, "nt2")  # type: ignore[union-attr]
        self.assertEqual(refresh.expires, 600)
        self.clock.advance(300)
        self.assertEqual(self.last().toAddr.tag, "nt1")  # type: ignore[union-attr]

    def test_rfc6665_4_1_4_notifyFromOtherBranchThan200(self) -> None:
        """
        A NOTIFY whose From tag differs from the 2xx's To tag forks; the
        main handle waits for its own NOTIFY.
        """
        subscription = self.subscribe()
        request = self.last()
        self.respond(request, 200, toTag="nt1")
        self.notify(request, fromTag="nt2")
        self.assertEqual(len(self.subscriber.subscriptions), 2)
        self.assertEqual(subscription.state, SubscriberState.NOTIFY_WAIT)
        self.notify(request, fromTag="nt1")
        self.assertEqual(subscription.state, SubscriberState.ACTIVE)

    def test_rfc6665_4_1_2_4_forkAfterTimerN481(self) -> None:
        """
        After Timer N, a NOTIFY that would fork gets 481.
        """
        _, request = self.establish()
        self.clock.advance(TIMER_N)
        self.assertEqual(self.notify(request, fromTag="nt2").code, 481)
        self.assertEqual(len(self.subscriber.subscriptions), 1)

    def test_rfc6665_4_4_1_terminatedForkCreatesNothing(self) -> None:
        """
        A terminated NOTIFY from another branch is answered 200 but creates
        no subscription.
        """
        _, request = self.establish()
        self.assertEqual(
            self.notify(request, "terminated;reason=noresource", fromTag="nt2").code,
            200,
        )
        self.assertEqual(len(self.subscriber.subscriptions), 1)

    def test_rfc6665_4_1_4_forkDoesNotResubscribe(self) -> None:
        """
        A fork ended with deactivated ends for good; only the main handle
        re-subscribes.
        """
        _, request = self.establish()
        self.notify(request, fromTag="nt2")
        fork = self.subscriber.subscriptions[1]
        sent = len(self.sent())
        self.notify(request, "terminated;reason=deactivated", fromTag="nt2")
        self.assertEqual(len(self.sent()), sent)
        termination = self.successResultOf(fork.whenTerminated())
        self.assertFalse(termination.willRetry)
        self.assertEqual(termination.reason, "deactivated")

    def test_rfc6665_4_1_2_3_unsubscribeMainUnsubscribesForks(self) -> None:
        """
        Unsubscribing the main handle unsubscribes its forks.
        """
        subscription, request = self.establish()
        self.notify(request, fromTag="nt2")
        subscription.unsubscribe()
        unsubscribes = [r for r in self.sent() if r.expires == 0]
        self.assertEqual(
            sorted(r.toAddr.tag for r in unsubscribes),  # type: ignore[union-attr]
            ["nt1", "nt2"],
        )


class NotifyTests(SubscriberMixin, SynchronousTestCase):
    """
    RFC 6665 section 4.1.3: the answers to NOTIFY.
    """

    def test_rfc6665_4_1_3_unknownDialog481(self) -> None:
        """
        A NOTIFY for no subscription of ours is answered 481: an unknown
        Call-ID, an unknown To tag, no To tag.
        """
        _, request = self.establish()
        self.assertEqual(self.notify(request, callId="other@127.0.0.1").code, 481)
        self.assertEqual(self.notify(request, toTag="unknown").code, 481)
        self.assertEqual(self.notify(request, toTag="").code, 481)

    def test_rfc6665_4_1_3_wrongEvent489(self) -> None:
        """
        A NOTIFY in our dialog for another event type or id gets 489; the
        event type is compared byte by byte (RFC 6665 section 8.2.1).
        """
        subscription, request = self.establish()
        self.assertEqual(self.notify(request, event="dialog").code, 489)
        self.assertEqual(self.notify(request, event="Presence").code, 489)
        self.assertEqual(self.notify(request, event="presence;id=1").code, 489)
        self.assertEqual(self.notify(request, event="presence;foo=bar").code, 200)
        self.assertEqual(subscription.state, SubscriberState.ACTIVE)

    def test_rfc6665_4_1_3_wrongEventBefore200(self) -> None:
        """
        A NOTIFY matching the SUBSCRIBE's Call-ID and tag but not its event
        gets 489 too.
        """
        self.subscribe(id="a")
        request = self.last()
        self.assertEqual(self.notify(request, event="presence;id=b").code, 489)
        self.assertEqual(self.notify(request, event="presence;id=a").code, 200)

    def test_rfc6665_4_1_3_missingSubscriptionState400(self) -> None:
        """
        A NOTIFY without (or with a malformed) Subscription-State gets 400.
        """
        subscription, request = self.establish()
        self.assertEqual(self.notify(request, None).code, 400)
        self.assertEqual(self.notify(request, "active;expires=soon").code, 400)
        self.assertEqual(subscription.state, SubscriberState.ACTIVE)

    def test_rfc6665_8_2_1_missingEvent400(self) -> None:
        """
        A NOTIFY without Event is answered 400.
        """
        _, request = self.establish()
        before = len(self.transportLayer.responses)
        message = self.notifyFor(
            request,
            "active",
            event="",
            cseq=50,
            contact=None,
            branch="z9hG4bK-noevent",
        )
        self.ua.messageReceived(message, self.source)
        [(response, _)] = self.transportLayer.responses[before:]
        self.assertEqual(response.code, 400)

    def test_rfc3261_12_2_1_1_reliableFlow(self) -> None:
        """
        Over TCP with no route set, refreshes go where the first SUBSCRIBE
        went, so our connection is reused.
        """
        subscription = self.subscriber.subscribe(
            "sip:bob@127.0.0.1:5060;transport=tcp", "presence", expires=600
        )
        request = self.last()
        self.assertEqual(self.targetOf(request), Target("TCP", "127.0.0.1", 5060))
        self.assertEqual(
            request.headers.get("Contact"), "<sip:127.0.0.1:5070;transport=tcp>"
        )
        self.respond(request, 200)
        self.notify(request, contact="<sip:bob@127.0.0.1:6000;transport=tcp>")
        subscription.refresh()
        refresh = self.last()
        self.assertEqual(formatURI(refresh.uri), "sip:bob@127.0.0.1:6000;transport=tcp")
        self.assertEqual(self.targetOf(refresh), Target("TCP", "127.0.0.1", 5060))

    def test_rfc3261_12_2_2_notifyCSeqOutOfOrder500(self) -> None:
        """
        A NOTIFY with a CSeq lower than the last one gets 500.
        """
        _, request = self.establish()
        self.assertEqual(self.notify(request, cseq=10).code, 200)
        self.assertEqual(self.notify(request, cseq=9).code, 500)
        self.assertEqual(self.notify(request, cseq=11).code, 200)

    def test_rfc6665_4_1_3_targetRefresh(self) -> None:
        """
        The Contact of a NOTIFY is the new remote target.
        """
        subscription, request = self.establish()
        self.notify(request, contact="<sip:bob@127.0.0.1:5099>")
        subscription.refresh()
        self.assertEqual(formatURI(self.last().uri), "sip:bob@127.0.0.1:5099")
        self.assertEqual(self.targetOf(self.last()), Target("UDP", "127.0.0.1", 5099))

    def test_rfc6665_4_4_1_routeSetFromNotify(self) -> None:
        """
        The route set comes from the NOTIFY's Record-Route, in order.
        """
        subscription = self.subscribe()
        request = self.last()
        self.respond(
            request,
            200,
            headers=[
                ("Record-Route", "<sip:127.0.0.1:5097;lr>, <sip:127.0.0.1:5098;lr>")
            ],
        )
        self.notify(
            request,
            headers=[
                ("Record-Route", "<sip:127.0.0.1:5098;lr>, <sip:127.0.0.1:5097;lr>")
            ],
        )
        subscription.refresh()
        refresh = self.last()
        self.assertEqual(
            refresh.headers.getList("Route"),
            ["<sip:127.0.0.1:5098;lr>", "<sip:127.0.0.1:5097;lr>"],
        )
        self.assertEqual(self.targetOf(refresh), Target("UDP", "127.0.0.1", 5098))
        self.assertEqual(formatURI(refresh.uri), "sip:bob@127.0.0.1:5060")

    def test_rfc3261_12_1_2_routeSetFrom200Reversed(self) -> None:
        """
        Before any NOTIFY, the dialog of the 2xx has its Record-Route
        reversed (RFC 3261 section 12.1.2).
        """
        subscription = self.subscribe()
        self.respond(
            self.last(),
            200,
            headers=[
                ("Record-Route", "<sip:127.0.0.1:5097;lr>, <sip:127.0.0.1:5098;lr>")
            ],
        )
        assert subscription.dialog is not None
        self.assertEqual(
            subscription.dialog.routeSet,
            ("<sip:127.0.0.1:5098;lr>", "<sip:127.0.0.1:5097;lr>"),
        )

    def test_rfc6665_4_1_3_unknownStateValue(self) -> None:
        """
        An unknown Subscription-State value is answered 200 and reported.
        """
        subscription, request = self.establish()
        self.assertEqual(self.notify(request, "dormant").code, 200)
        self.assertEqual(subscription.state, SubscriberState.ACTIVE)
        self.assertEqual(self.observer.calls[-1][0], "notification")


class RefreshTests(SubscriberMixin, SynchronousTestCase):
    """
    RFC 6665 section 4.1.2.2.
    """

    def test_rfc6665_4_1_2_2_refreshBeforeExpiry(self) -> None:
        """
        A refresh is sent in the dialog 32 seconds before expiry: Request-URI
        the remote target, To tag, the next CSeq, Event, Expires, Contact.
        """
        subscription, request = self.establish()
        self.clock.advance(567.9)
        self.assertEqual(len(self.sent()), 1)
        self.clock.advance(0.1)
        self.assertEqual(len(self.sent()), 2)
        refresh = self.last()
        self.assertEqual(formatURI(refresh.uri), "sip:bob@127.0.0.1:5060")
        self.assertEqual(refresh.callId, request.callId)
        self.assertEqual(refresh.toAddr.tag, "nt1")  # type: ignore[union-attr]
        self.assertEqual(refresh.fromAddr.tag, request.fromAddr.tag)  # type: ignore[union-attr]
        self.assertEqual(refresh.headers.get("CSeq"), "2 SUBSCRIBE")
        self.assertEqual(refresh.headers.get("Event"), "presence")
        self.assertEqual(refresh.expires, 600)
        self.assertEqual(refresh.headers.get("Contact"), "<sip:127.0.0.1:5070>")
        self.respond(refresh, 200, headers=[("Expires", "600")])
        self.notify(refresh, "active;expires=600")
        self.assertEqual(subscription.expiresAt, 568 + 600)
        self.clock.advance(568)
        self.assertEqual(self.last().headers.get("CSeq"), "3 SUBSCRIBE")

    def test_rfc6665_4_1_2_2_shortSubscriptionRefreshedHalfway(self) -> None:
        """
        A subscription shorter than 64 seconds is refreshed half way.
        """
        subscription = self.subscribe(expires=40)
        request = self.last()
        self.respond(request, 200, headers=[("Expires", "40")])
        self.notify(request, "active;expires=40")
        self.clock.advance(19.9)
        self.assertEqual(len(self.sent()), 1)
        self.clock.advance(0.1)
        self.assertEqual(len(self.sent()), 2)
        self.assertEqual(subscription.state, SubscriberState.ACTIVE)

    def test_rfc6665_4_1_3_expiresParamShortens(self) -> None:
        """
        An C{expires=} in an active NOTIFY is authoritative: it shortens
        the subscription and moves the refresh.
        """
        subscription, request = self.establish()
        self.clock.advance(10)
        self.notify(request, "active;expires=100")
        self.assertEqual(subscription.expiresAt, 110)
        self.clock.advance(67.9)
        self.assertEqual(len(self.sent()), 1)
        self.clock.advance(0.1)
        self.assertEqual(len(self.sent()), 2)

    def test_rfc6665_4_1_2_2_refreshExpiresArgument(self) -> None:
        """
        C{refresh(expires)} asks for that duration from then on.
        """
        subscription, _ = self.establish()
        d = subscription.refresh(1200)
        refresh = self.last()
        self.assertEqual(refresh.expires, 1200)
        self.respond(refresh, 200, headers=[("Expires", "1200")])
        self.assertIsNone(self.successResultOf(d))
        self.assertEqual(subscription.expiresAt, 1200)

    def test_rfc6665_4_1_2_2_refresh481Terminates(self) -> None:
        """
        A refresh answered 481 ends the subscription; the main handle
        re-subscribes with a new Call-ID and From tag (RFC 3265 section
        3.1.4.2).
        """
        subscription, request = self.establish()
        d = subscription.refresh()
        self.respond(self.last(), 481)
        self.failureResultOf(d, SubscriptionFailed)
        [termination] = self.observer.endings()
        assert termination.failure is not None
        self.assertEqual(termination.failure.code, 481)
        self.assertTrue(termination.willRetry)
        retry = self.last()
        self.assertNotEqual(retry.callId, request.callId)
        self.assertNotEqual(retry.fromAddr.tag, request.fromAddr.tag)  # type: ignore[union-attr]
        self.assertIsNone(retry.toAddr.tag)  # type: ignore[union-attr]
        self.assertEqual(retry.headers.get("CSeq"), "1 SUBSCRIBE")
        self.assertEqual(subscription.state, SubscriberState.NOTIFY_WAIT)
        # The old dialog is gone.
        self.assertEqual(self.notify(request).code, 481)

    def test_rfc6665_4_1_2_2_refresh404EndsForGood(self) -> None:
        """
        The other codes of RFC 6665 section 4.1.2.2 end it for good.
        """
        for code in (404, 405, 410, 416, 480, 482, 483, 484, 485, 489, 501, 604):
            subscription, _ = self.establish()
            subscription.refresh().addErrback(lambda _: None)
            self.respond(self.last(), code)
            termination = self.successResultOf(subscription.whenTerminated())
            assert termination.failure is not None
            self.assertEqual(termination.failure.code, code)
            self.assertFalse(termination.willRetry)
            self.assertEqual(subscription.state, SubscriberState.TERMINATED)

    def test_rfc6665_4_1_2_2_refresh500KeepsSubscription(self) -> None:
        """
        A refresh failing otherwise leaves the subscription valid until it
        expires; it is tried again half way to the expiry.
        """
        subscription, _ = self.establish()
        self.clock.advance(568)
        refresh = self.last()
        self.respond(refresh, 500)
        self.assertEqual(subscription.state, SubscriberState.ACTIVE)
        self.assertEqual(self.observer.endings(), [])
        self.clock.advance(16)
        again = self.last()
        self.assertIsNot(again, refresh)
        self.assertEqual(again.headers.get("CSeq"), "3 SUBSCRIBE")
        self.respond(again, 503)
        self.clock.advance(8)
        self.respond(self.last(), 503)
        self.clock.advance(4)
        self.respond(self.last(), 503)
        self.clock.advance(2)
        self.respond(self.last(), 503)
        self.clock.advance(1)
        self.respond(self.last(), 503)
        self.assertEqual(subscription.state, SubscriberState.ACTIVE)
        self.clock.advance(1)
        # Expired: ended locally, re-subscribing after a back-off.
        [termination] = self.observer.endings()
        assert termination.failure is not None
        self.assertEqual(termination.failure.code, 503)
        self.assertTrue(termination.willRetry)

    def test_rfc6665_4_1_2_2_refreshErrorAfterExpiry(self) -> None:
        """
        A refresh whose error answer comes after the expiry ends the
        subscription then.
        """
        subscription = self.subscribe(expires=60)
        request = self.last()
        self.respond(request, 200, headers=[("Expires", "60")])
        self.notify(request, "active;expires=60")
        self.clock.advance(30)
        refresh = self.last()
        self.clock.advance(30)
        self.assertEqual(subscription.state, SubscriberState.ACTIVE)
        self.respond(refresh, 500)
        [termination] = self.observer.endings()
        assert termination.failure is not None
        self.assertEqual(termination.failure.code, 500)
        self.assertTrue(termination.willRetry)

    def test_rfc6665_4_1_2_2_refreshDeferredFails(self) -> None:
        """
        C{refresh()} fails with the error response.
        """
        subscription, _ = self.establish()
        d = subscription.refresh()
        self.respond(self.last(), 500)
        self.assertEqual(self.failureResultOf(d, SubscriptionFailed).value.code, 500)

    def test_rfc6665_4_1_2_2_refreshTimerN(self) -> None:
        """
        A refresh without a NOTIFY within Timer N ends the subscription
        ("re-subscription times out"); the main handle re-subscribes later.
        """
        subscription, _ = self.establish()
        subscription.refresh()
        self.respond(self.last(), 200)
        self.clock.advance(TIMER_N)
        [termination] = self.observer.endings()
        self.assertIsInstance(termination.failure, SubscriptionTimedOut)
        self.assertTrue(termination.willRetry)
        self.assertEqual(subscription.state, SubscriberState.RETRY_WAIT)
        sent = len(self.sent())
        self.clock.advance(30)
        self.assertEqual(len(self.sent()), sent + 1)
        self.assertEqual(subscription.state, SubscriberState.NOTIFY_WAIT)

    def test_rfc6665_4_1_2_2_refresh423RetriesWithMinExpires(self) -> None:
        """
        A refresh answered 423 is sent once more with Min-Expires.
        """
        subscription, _ = self.establish()
        d = subscription.refresh(10)
        self.respond(self.last(), 423, headers=[("Min-Expires", "60")])
        again = self.last()
        self.assertEqual(again.expires, 60)
        self.assertEqual(again.toAddr.tag, "nt1")  # type: ignore[union-attr]
        self.respond(again, 200, headers=[("Expires", "60")])
        self.successResultOf(d)
        self.assertEqual(subscription.expiresAt, 60)

    def test_refreshWithoutDialog(self) -> None:
        """
        C{refresh()} before anything is established fails.
        """
        subscription = self.subscribe()
        self.failureResultOf(subscription.refresh(), SubscriptionFailed)


class TerminationTests(SubscriberMixin, SynchronousTestCase):
    """
    RFC 6665 section 4.1.3: terminated NOTIFYs and their reasons.
    """

    def test_rfc6665_4_1_3_deactivatedResubscribesNewDialog(self) -> None:
        """
        C{deactivated} re-subscribes at once, on a new dialog, with the
        same handle.
        """
        subscription, request = self.establish()
        terminated = subscription.whenTerminated()
        self.notify(request, "terminated;reason=deactivated")
        termination = self.observer.endings()[0]
        self.assertEqual(termination.reason, "deactivated")
        self.assertTrue(termination.willRetry)
        assert termination.notification is not None
        self.assertEqual(termination.notification.state, "terminated")
        retry = self.last()
        self.assertIsNot(retry, request)
        self.assertNotEqual(retry.callId, request.callId)
        self.assertNotEqual(retry.fromAddr.tag, request.fromAddr.tag)  # type: ignore[union-attr]
        self.assertIsNone(retry.toAddr.tag)  # type: ignore[union-attr]
        self.assertEqual(retry.expires, 600)
        self.assertNoResult(terminated)
        self.assertEqual(self.subscriber.subscriptions, [subscription])
        self.respond(retry, 200, toTag="nt9")
        self.notify(retry, fromTag="nt9")
        self.assertEqual(subscription.state, SubscriberState.ACTIVE)
        assert subscription.dialog is not None
        self.assertEqual(subscription.dialog.callId, retry.callId)
        self.assertEqual(self.observer.names().count("started"), 2)

    def test_rfc6665_4_1_3_timeoutResubscribes(self) -> None:
        """
        C{timeout} re-subscribes at once too.
        """
        _, request = self.establish()
        self.notify(request, "terminated;reason=timeout")
        self.assertEqual(len(self.sent()), 2)

    def test_rfc6665_4_1_3_probationRetryAfter(self) -> None:
        """
        C{probation} with C{retry-after} re-subscribes after that long.
        """
        subscription, request = self.establish()
        self.notify(request, "terminated;reason=probation;retry-after=120")
        [termination] = self.observer.endings()
        self.assertEqual(termination.retryAfter, 120)
        self.assertTrue(termination.willRetry)
        self.assertEqual(subscription.state, SubscriberState.RETRY_WAIT)
        self.clock.advance(119.9)
        self.assertEqual(len(self.sent()), 1)
        self.clock.advance(0.1)
        self.assertEqual(len(self.sent()), 2)
        self.assertNotEqual(self.last().callId, request.callId)
        self.assertEqual(subscription.state, SubscriberState.NOTIFY_WAIT)

    def test_rfc6665_4_1_3_giveupWithoutRetryAfterBacksOff(self) -> None:
        """
        C{giveup} without C{retry-after} waits a jittered back-off (15 to
        30 seconds the first time).
        """
        _, request = self.establish()
        self.notify(request, "terminated;reason=giveup")
        self.clock.advance(14.9)
        self.assertEqual(len(self.sent()), 1)
        self.clock.advance(15.1)
        self.assertEqual(len(self.sent()), 2)

    def test_rfc6665_4_1_3_unknownReasonBacksOff(self) -> None:
        """
        An unknown reason is handled like no reason: a back-off without
        retry-after.
        """
        _, request = self.establish()
        self.notify(request, "terminated;reason=moved-to-mars")
        self.clock.advance(14.9)
        self.assertEqual(len(self.sent()), 1)
        self.clock.advance(15.1)
        self.assertEqual(len(self.sent()), 2)

    def test_rfc6665_4_1_3_rejectedStops(self) -> None:
        """
        C{rejected}, C{noresource} and C{invariant} end it for good.
        """
        for reason in ("rejected", "noresource", "invariant"):
            subscription = self.subscribe()
            request = self.last()
            active = subscription.whenActive()
            self.respond(request, 200)
            self.notify(request, f"terminated;reason={reason};retry-after=10")
            termination = self.successResultOf(subscription.whenTerminated())
            self.assertEqual(termination.reason, reason)
            self.assertFalse(termination.willRetry)
            failure = self.failureResultOf(active, SubscriptionTerminated)
            self.assertEqual(failure.value.termination, termination)
            self.clock.advance(3600)
            self.assertIs(self.last(), request)
            self.assertNotIn(subscription, self.subscriber.subscriptions)

    def test_rfc6665_4_1_3_immediateRetryLoopGuard(self) -> None:
        """
        A notifier deactivating every new subscription at once gets three
        immediate re-subscriptions, then backed-off ones.
        """
        _, request = self.establish()
        for _ in range(3):
            self.notify(request, "terminated;reason=deactivated")
            request = self.last()
            self.respond(request, 200)
        sent = len(self.sent())
        self.notify(request, "terminated;reason=deactivated")
        self.assertEqual(len(self.sent()), sent)
        self.clock.advance(30)
        self.assertEqual(len(self.sent()), sent + 1)

    def test_rfc6665_4_1_3_activeResetsLoopGuard(self) -> None:
        """
        Reaching active resets the count of immediate retries.
        """
        _, request = self.establish()
        for _ in range(5):
            self.notify(request, "terminated;reason=deactivated")
            request = self.last()
            self.respond(request, 200)
            self.notify(request, "active;expires=600")
        self.assertEqual(len(self.sent()), 6)

    def test_resubscriptionFailureRetried(self) -> None:
        """
        A re-subscription answered 503 is tried again after Retry-After;
        one answered 403 ends the handle.
        """
        subscription, request = self.establish()
        self.notify(request, "terminated;reason=deactivated")
        self.respond(self.last(), 503, headers=[("Retry-After", "50")])
        self.clock.advance(49)
        self.assertEqual(len(self.sent()), 2)
        self.clock.advance(1)
        self.assertEqual(len(self.sent()), 3)
        self.respond(self.last(), 403)
        termination = self.successResultOf(subscription.whenTerminated())
        assert termination.failure is not None
        self.assertEqual(termination.failure.code, 403)

    def test_resubscriptionTimeoutRetried(self) -> None:
        """
        A re-subscription with no NOTIFY is tried again after a back-off.
        """
        subscription, request = self.establish()
        self.notify(request, "terminated;reason=deactivated")
        self.respond(self.last(), 200)
        self.clock.advance(TIMER_N)
        self.assertTrue(self.observer.endings()[-1].willRetry)
        self.assertNoResult(subscription.whenTerminated())
        self.clock.advance(60)
        self.assertEqual(len(self.sent()), 3)

    def test_observerUnsubscribesOnEnd(self) -> None:
        """
        An observer unsubscribing from C{subscriptionEnded} stops the
        re-subscription.
        """

        class Stopper(SubscriptionObserver):
            def subscriptionEnded(
                self, subscription: Subscription, termination: Termination
            ) -> None:
                subscription.unsubscribe()

        subscription, request = self.establish(observer=Stopper())
        self.notify(request, "terminated;reason=probation;retry-after=5")
        self.successResultOf(subscription.whenTerminated())
        self.clock.advance(10)
        self.assertEqual(len(self.sent()), 1)


class UnsubscribeTests(SubscriberMixin, SynchronousTestCase):
    """
    RFC 6665 section 4.1.2.3.
    """

    def test_rfc6665_4_1_2_3_unsubscribe(self) -> None:
        """
        C{Expires: 0} in the dialog; the final NOTIFY ends it, without any
        re-subscription.
        """
        subscription, request = self.establish()
        d = subscription.unsubscribe()
        unsubscribe = self.last()
        self.assertEqual(unsubscribe.expires, 0)
        self.assertEqual(unsubscribe.toAddr.tag, "nt1")  # type: ignore[union-attr]
        self.assertEqual(unsubscribe.headers.get("CSeq"), "2 SUBSCRIBE")
        self.respond(unsubscribe, 200, headers=[("Expires", "0")])
        self.assertNoResult(d)
        self.notify(
            request, "terminated;reason=timeout", body=b"last", contentType="text/plain"
        )
        termination = self.successResultOf(d)
        self.assertEqual(termination.reason, "timeout")
        self.assertFalse(termination.willRetry)
        self.assertIsNone(termination.failure)
        assert termination.notification is not None
        self.assertEqual(termination.notification.body, b"last")
        self.assertEqual(subscription.state, SubscriberState.TERMINATED)
        self.assertEqual(
            self.successResultOf(subscription.whenTerminated()), termination
        )
        self.assertEqual(self.subscriber.subscriptions, [])
        self.clock.advance(3600)
        self.assertIs(self.last(), unsubscribe)
        self.assertEqual(self.observer.names()[-2:], ["notification", "ended"])

    def test_rfc6665_4_1_2_3_unsubscribeTimerN(self) -> None:
        """
        Without a final NOTIFY, the unsubscription ends after Timer N.
        """
        subscription, _ = self.establish()
        d = subscription.unsubscribe()
        self.respond(self.last(), 200)
        self.clock.advance(TIMER_N)
        termination = self.successResultOf(d)
        self.assertIsNone(termination.failure)
        self.assertIsNone(termination.notification)

    def test_rfc6665_4_1_2_3_unsubscribeNoAnswer(self) -> None:
        """
        An unsubscription nobody answers ends after Timer N with a failure.
        """
        subscription, _ = self.establish()
        d = subscription.unsubscribe()
        self.clock.pump([0.5] * 70)
        self.assertIsInstance(self.successResultOf(d).failure, SubscriptionTimedOut)

    def test_rfc6665_4_1_2_3_unsubscribe481(self) -> None:
        """
        An unsubscription answered 481 has nothing left to end.
        """
        subscription, _ = self.establish()
        d = subscription.unsubscribe()
        self.respond(self.last(), 481)
        self.assertIsNone(self.successResultOf(d).failure)

    def test_rfc6665_4_1_2_3_unsubscribe204(self) -> None:
        """
        An unsubscription answered 204 ends at once: no final NOTIFY will
        come (RFC 6665 section 4.1.2.2, RFC 5839).
        """
        subscription, _ = self.establish()
        d = subscription.unsubscribe()
        self.respond(self.last(), 204)
        termination = self.successResultOf(d)
        self.assertIsNone(termination.failure)
        self.assertIs(subscription.state, SubscriberState.TERMINATED)
        self.assertEqual(self.observer.names()[-1], "ended")

    def test_rfc6665_4_1_2_3_unsubscribingState(self) -> None:
        """
        While the final NOTIFY is awaited the handle is C{unsubscribing},
        holding Timer N only, and still active for C{whenActive}; unsubscribing
        again sends nothing more.
        """
        subscription, _ = self.establish()
        first = subscription.unsubscribe()
        self.assertIs(subscription.state, SubscriberState.UNSUBSCRIBING)
        self.assertIsNone(subscription._refreshCall)
        self.assertIsNone(subscription._expiryCall)
        self.assertIsNotNone(subscription._timerN)
        self.assertEqual(
            self.successResultOf(subscription.whenActive()),
            subscription.notification,
        )
        sent = len(self.sent())
        second = subscription.unsubscribe()
        self.assertEqual(len(self.sent()), sent)
        self.clock.advance(TIMER_N)
        self.assertEqual(self.successResultOf(first), self.successResultOf(second))

    def test_rfc6665_4_1_2_3_unsubscribeBeforeEstablished(self) -> None:
        """
        Unsubscribing before any 2xx or NOTIFY ends at once; a late NOTIFY
        gets 481.
        """
        subscription = self.subscribe()
        request = self.last()
        termination = self.successResultOf(subscription.unsubscribe())
        self.assertFalse(termination.willRetry)
        self.assertEqual(len(self.sent()), 1)
        self.failureResultOf(subscription.whenActive(), SubscriptionFailed)
        self.respond(request, 200)
        self.assertEqual(self.notify(request).code, 481)

    def test_rfc6665_4_1_2_3_unsubscribeWhileWaitingToRetry(self) -> None:
        """
        Unsubscribing while waiting to re-subscribe stops the retry.
        """
        subscription, request = self.establish()
        self.notify(request, "terminated;reason=probation;retry-after=60")
        self.successResultOf(subscription.unsubscribe())
        self.clock.advance(120)
        self.assertEqual(len(self.sent()), 1)

    def test_stop(self) -> None:
        """
        L{Subscriber.stop} unsubscribes everything and fires when all have
        ended.
        """
        first, request = self.establish()
        second = self.subscribe()
        d = self.subscriber.stop()
        self.assertEqual(second.state, SubscriberState.TERMINATED)
        self.assertNoResult(d)
        self.notify(request, "terminated;reason=timeout")
        self.successResultOf(d)
        self.assertEqual(self.subscriber.subscriptions, [])
        self.assertEqual(first.state, SubscriberState.TERMINATED)


class FetchTests(SubscriberMixin, SynchronousTestCase):
    """
    RFC 6665 section 4.4.3.
    """

    def test_rfc6665_4_4_3_fetch(self) -> None:
        """
        C{fetch} sends C{Expires: 0} and fires with the first NOTIFY; the
        terminated;timeout does not re-subscribe.
        """
        d = self.subscriber.fetch(BOB, "presence", accept=["application/pidf+xml"])
        request = self.last()
        self.assertEqual(request.expires, 0)
        self.respond(request, 200, headers=[("Expires", "0")])
        self.assertNoResult(d)
        self.notify(
            request,
            "terminated;reason=timeout",
            body=b"<presence/>",
            contentType="application/pidf+xml",
        )
        seen: list[object] = []
        d.addCallback(lambda n: seen.append(self.subscriber.subscriptions) or n)
        notification = self.successResultOf(d)
        self.assertEqual(notification.body, b"<presence/>")
        self.assertEqual(notification.state, "terminated")
        # The poll has ended by the time the fetch's callbacks run.
        self.assertEqual(seen, [[]])
        self.clock.advance(3600)
        self.assertEqual(len(self.sent()), 1)
        self.assertEqual(self.subscriber.subscriptions, [])

    def test_rfc6665_4_4_3_fetchActiveUnsubscribes(self) -> None:
        """
        A fetch answered with an active NOTIFY fires with it and
        unsubscribes.
        """
        d = self.subscriber.fetch(BOB, "presence")
        request = self.last()
        self.respond(request, 200, headers=[("Expires", "600")])
        self.notify(request, "active;expires=600", body=b"x", contentType="text/plain")
        self.assertEqual(self.successResultOf(d).state, "active")
        unsubscribe = self.last()
        self.assertEqual(unsubscribe.expires, 0)
        self.assertEqual(unsubscribe.toAddr.tag, "nt1")  # type: ignore[union-attr]
        self.notify(request, "terminated;reason=timeout")
        self.assertEqual(self.subscriber.subscriptions, [])

    def test_rfc6665_4_4_3_fetchFails(self) -> None:
        """
        A fetch answered with an error fails with L{SubscriptionFailed}.
        """
        d = self.subscriber.fetch(BOB, "presence")
        self.respond(self.last(), 404)
        self.assertEqual(self.failureResultOf(d, SubscriptionFailed).value.code, 404)

    def test_rfc6665_4_4_3_fetchTimerN(self) -> None:
        """
        A fetch without a NOTIFY fails after Timer N.
        """
        d = self.subscriber.fetch(BOB, "presence")
        self.respond(self.last(), 200, headers=[("Expires", "0")])
        self.clock.advance(TIMER_N)
        self.failureResultOf(d, SubscriptionTimedOut)


class NotifierIntegrationTests(SynchronousTestCase):
    """
    Our subscriber against our own notifier, in memory.
    """

    def test_rfc6665_4_1_againstOurNotifier(self) -> None:
        """
        Subscribe, get the active NOTIFY with the state, see a state change,
        unsubscribe and get the final NOTIFY.
        """
        from tests.test_notifier import PKG, TextPackage

        pair = connectedPair(packages=[TextPackage()])
        self.addCleanup(pair.stop)
        notifier = pair.notifier
        self.successResultOf(
            notifier.setState(PKG, "sip:bob@127.0.0.1", "text/plain", b"available")
        )

        observer = RecordingObserver()
        subscription = pair.subscriber.subscribe(
            BOB, PKG, observer, accept=["text/plain"], expires=600
        )
        active = subscription.whenActive()
        pair.pump()
        notification = self.successResultOf(active)
        self.assertEqual(notification.body, b"available")
        self.assertEqual(notification.contentType, "text/plain")
        self.assertEqual(subscription.state, SubscriberState.ACTIVE)
        self.assertEqual(len(notifier.subscriptions()), 1)

        self.successResultOf(
            notifier.setState(PKG, "sip:bob@127.0.0.1", "text/plain", b"busy")
        )
        pair.pump()
        assert subscription.notification is not None
        self.assertEqual(subscription.notification.body, b"busy")

        pair.advance(568)
        self.assertEqual(subscription.state, SubscriberState.ACTIVE)
        assert subscription.expiresAt is not None
        self.assertGreater(subscription.expiresAt, 600)

        d = subscription.unsubscribe()
        pair.pump()
        termination = self.successResultOf(d)
        self.assertEqual(termination.reason, "timeout")
        self.assertIsNone(termination.failure)
        self.assertEqual(subscription.state, SubscriberState.TERMINATED)
        self.assertEqual(notifier.subscriptions(), [])
        self.assertEqual(
            [name for name, _, _ in observer.calls],
            [
                "started",
                "notification",
                "notification",
                "notification",
                "notification",
                "ended",
            ],
        )


class StateTableTests(SubscriberMixin, SynchronousTestCase):
    """
    The declared table of L{sipevents.subscriber.states}, walked whole on
    real handles: every (state, input) pair either makes its declared step,
    leaving only timers the new state holds, or raises L{InvalidTransition}
    and changes nothing (RFC 6665 section 4.1.2).
    """

    def inState(self, state: SubscriberState, answered: bool = True) -> Subscription:
        """
        A handle brought to C{state} by the protocol (or, for C{init}, made
        and not started); in C{notify_wait}, its SUBSCRIBE C{answered} 200
        or not.
        """
        S = SubscriberState
        if state is S.INIT:
            options = SubscriptionOptions((), 600, b"", None, (), None, None, None)
            return Subscription(
                self.subscriber, BOB, "presence", None, self.observer, options
            )
        if state is S.NOTIFY_WAIT:
            subscription = self.subscribe()
            if answered:
                self.respond(self.last(), 200, headers=[("Expires", "600")])
            return subscription
        if state is S.PENDING:
            subscription = self.subscribe()
            request = self.last()
            self.respond(request, 200, headers=[("Expires", "600")])
            self.notify(request, "pending;expires=600")
            return subscription
        subscription, request = self.establish()
        if state is S.UNSUBSCRIBING:
            subscription.unsubscribe()
        elif state is S.RETRY_WAIT:
            self.notify(request, "terminated;reason=probation;retry-after=60")
        elif state is S.TERMINATED:
            self.notify(request, "terminated;reason=rejected")
        self.assertIs(subscription.state, state)
        return subscription

    def payload(self, subscription: Subscription, input: SubscriberInput) -> object:
        """
        What C{input} carries when it reaches C{subscription}.
        """
        In = SubscriberInput
        if not self.sent():
            # For a handle in init: a SUBSCRIBE of another to answer.
            self.subscribe()
        request = self.last()
        if input in (In.SUBSCRIBE, In.RETRY_TIMER):
            return subscription._prepare()
        if input is In.FORKED:
            return self.subscribe()
        if input is In.ACCEPTED:
            response = responseTo(
                request, 200, toTag="nt1", headers=[("Expires", "600")]
            )
            return (response, _Sending(_Kind.REFRESH, subscription._generation, 600))
        if input is In.UNSUBSCRIBE_ACCEPTED:
            return responseTo(request, 200, toTag="nt1")
        if input is In.REFRESH_FAILED:
            return SubscriptionFailed(500, "Server Internal Error", BOB)
        if input in (In.NOTIFY_ACTIVE, In.NOTIFY_PENDING, In.NOTIFY_UNKNOWN):
            value = {
                In.NOTIFY_ACTIVE: "active",
                In.NOTIFY_PENDING: "pending",
                In.NOTIFY_UNKNOWN: "unheard-of",
            }[input]
            notification = Notification(
                HeaderSubscriptionState(value, expires=600),
                Event("presence"),
                None,
                b"",
                request,
                self.clock.seconds(),
            )
            return notification if input is In.NOTIFY_UNKNOWN else (notification, False)
        if input is In.REFRESH:
            d: Deferred[None] = Deferred()
            d.addErrback(lambda _: None)
            return _Refresh(None, d)
        if input in (In.GIVE_UP, In.ENDED):
            return _Ending(Termination())
        if input is In.ENDED_RETRY:
            return _Ending(Termination(willRetry=True), 10.0)
        return None

    def assertHoldsOnlyItsTimers(self, subscription: Subscription) -> None:
        for timer, owners in TIMERS.items():
            call = getattr(subscription, _SLOTS[timer])
            if subscription.state not in owners:
                self.assertIsNone(call, (subscription.state, timer))

    def test_rfc6665_4_1_2_wholeTable(self) -> None:
        """
        Every pair of the state x input table is either declared, and then
        ends in its declared state holding only that state's timers, or
        refused with L{InvalidTransition}, the state and timers unchanged.
        """
        declared = refused = 0
        for state in SubscriberState:
            for input in SubscriberInput:
                self.setUp()
                subscription = self.inState(state)
                payload = self.payload(subscription, input)
                timers = {slot: getattr(subscription, slot) for slot in _SLOTS.values()}
                step = TRANSITIONS.get((state, input))
                if step is None:
                    with self.assertRaises(InvalidTransition) as raised:
                        subscription._fire(input, payload)
                    self.assertIs(raised.exception.state, state)
                    self.assertIs(raised.exception.input, input)
                    self.assertIs(subscription.state, state)
                    self.assertEqual(
                        {s: getattr(subscription, s) for s in _SLOTS.values()},
                        timers,
                    )
                    refused += 1
                else:
                    subscription._fire(input, payload)
                    self.assertIs(subscription.state, step.state, (state, input))
                    self.assertHoldsOnlyItsTimers(subscription)
                    declared += 1
        self.assertEqual(declared, len(TRANSITIONS))
        self.assertEqual(
            declared + refused, len(SubscriberState) * len(SubscriberInput)
        )

    def test_rfc6665_4_1_2_statesCarryTheirTimers(self) -> None:
        """
        Waiting for the first NOTIFY holds Timer N; active and pending hold
        the refresh and the expiry; waiting to retry holds the retry delay
        only; unsubscribing holds Timer N only; terminated holds none.
        """
        S = SubscriberState
        expected = {
            S.NOTIFY_WAIT: {"_timerN"},
            S.PENDING: {"_refreshCall", "_expiryCall"},
            S.ACTIVE: {"_refreshCall", "_expiryCall"},
            S.UNSUBSCRIBING: {"_timerN"},
            S.RETRY_WAIT: {"_retryCall"},
            S.TERMINATED: set(),
        }
        for state, slots in expected.items():
            self.setUp()
            subscription = self.inState(state, answered=False)
            armed = {
                slot
                for slot in _SLOTS.values()
                if getattr(subscription, slot) is not None
            }
            self.assertEqual(armed, slots, state)
            for slot in armed:
                self.assertTrue(getattr(subscription, slot).active())

    def test_timerOwnership(self) -> None:
        """
        No timer belongs to C{init} or C{terminated}, and arming a timer in
        a state that does not hold it is refused as a bug.
        """
        for owners in TIMERS.values():
            self.assertNotIn(SubscriberState.INIT, owners)
            self.assertNotIn(SubscriberState.TERMINATED, owners)
        subscription, request = self.establish()
        self.notify(request, "terminated;reason=rejected")
        self.assertRaises(
            InvalidTransition,
            subscription._arm,
            SubscriberTimer.REFRESH,
            1.0,
            lambda: None,
        )
        self.assertIsNone(subscription._refreshCall)

    def test_lateInputsDeclared(self) -> None:
        """
        A late answer to a SUBSCRIBE is declared in every state past
        C{init}, and the application's C{refresh()} and C{unsubscribe()}
        in every state a handle it holds can be in: none of them can make
        the engine raise.
        """
        S, In = SubscriberState, SubscriberInput
        for state in SubscriberState:
            if state is not S.INIT:
                self.assertIn((state, In.LATE_ANSWER), TRANSITIONS)
                self.assertIn((state, In.REFRESH), TRANSITIONS)
        for state in (S.NOTIFY_WAIT, S.RETRY_WAIT, S.TERMINATED):
            self.assertIn((state, In.GIVE_UP), TRANSITIONS)
        for state in (S.NOTIFY_WAIT, S.PENDING, S.ACTIVE, S.UNSUBSCRIBING):
            self.assertIn((state, In.UNSUBSCRIBE), TRANSITIONS)

    def test_unsubscribingNeverRetries(self) -> None:
        """
        An unsubscribing handle cannot be given a re-subscription: the table
        refuses it.
        """
        self.assertRaises(
            InvalidTransition,
            transition,
            SubscriberState.UNSUBSCRIBING,
            SubscriberInput.ENDED_RETRY,
        )

    def test_lateAnswerAfterEnd(self) -> None:
        """
        A 2xx to a SUBSCRIBE arriving after the subscription ended changes
        nothing.
        """
        subscription = self.subscribe()
        request = self.last()
        self.successResultOf(subscription.unsubscribe())
        self.respond(request, 200)
        self.assertIs(subscription.state, SubscriberState.TERMINATED)
        self.assertIsNone(subscription.dialog)
        for slot in _SLOTS.values():
            self.assertIsNone(getattr(subscription, slot))
