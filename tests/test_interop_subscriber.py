# -*- test-case-name: tests.test_interop_subscriber -*-
"""
End-to-end tests of our subscriber (L{sipevents.subscriber.client.startSubscriber})
against notifiers none of us wrote, and against our own, over real loopback
sockets (issue 4, "Done when").

  - SIPp (Debian's C{sip-tester}) in server mode plays the notifier: the
    scenarios C{tests/sipp/*_uas.xml} answer our SUBSCRIBE and send NOTIFYs
    (a plain subscription over UDP and TCP, forked NOTIFYs, probation with
    retry-after, an RFC 3265 peer's 202, a 489, a NOTIFY before the 200,
    the client's stop unsubscribing), and each checks
    what our subscriber sends (Expires: 0 to unsubscribe, the right dialog's
    tag and remote target ...); SIPp's exit code and statistics say whether
    every call passed, and our API says what the subscriber understood.
  - Kamailio's presence server (C{tests/kamailio/}, started per test on a
    free port with a fresh database, stopped by PID; trial has no
    per-class set-up, and a start takes a few tenths of a second): our
    subscriber subscribes to presence, SIPp PUBLISHes a PIDF document
    (C{tests/sipp/publish_uac.xml}) and the NOTIFY that Kamailio sends
    carries it; a poll (C{fetch}) gets the published document; a too short
    Expires gets 423 and is retried; a short subscription is refreshed in
    its dialog; an unserved package gets 489.
  - Our own notifier (L{sipevents.app.service.SIPEventsService}, memory store,
    in this process) over UDP, TCP and TLS (a certificate made in the
    test): subscribe, active NOTIFY, C{notifier.setState}, a NOTIFY with
    that body, unsubscribe, terminated.

Every peer listens on 127.0.0.1 only; every wait is bounded; SIPp and
Kamailio are stopped by their PID in cleanup. Without C{sipp} or
C{kamailio} the tests that need them are skipped, unless the C{CI}
environment variable is set, in which case they fail: CI must run them.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.ssl import Certificate, trustRootFromCertificates
from twisted.internet.task import deferLater
from twisted.python.filepath import FilePath
from twisted.trial.unittest import TestCase

from sipevents.events import Notification, SubscriptionFailed, Termination
from sipevents.subscriber.client import SubscriberClient, startSubscriber
from sipevents.subscriber.handle import Subscription
from sipevents.subscriber.states import SubscriberState
from sipevents.subscriber.subscriber import SubscriptionObserver
from tests.kamailio import MISSING, findKamailio, logTail, startKamailio, stopKamailio
from tests.test_client import NotifierMixin
from tests.test_service_notifier import pidf
from tests.test_sipp import (
    LOOPBACK,
    SippRun,
    _OptionsProbe,
    assertSIPpSucceeded,
    freePort,
    requirePeer,
    requireSIPp,
    sippMessages,
    startSipp,
)

PIDF = "application/pidf+xml"

#: The longest any single step waits for the peer (a NOTIFY, SIPp's end),
#: in seconds: far above what loopback needs, far below a hang.
WAIT = 15.0

#: SIPp's own bound on a run (its -timeout), and ours on SIPp (a kill).
SIPP_TIMEOUT = 20
SIPP_KILL_AFTER = 30.0


def _clock() -> IReactorTime:
    return reactor  # type: ignore[return-value]


def sleep(seconds: float) -> Deferred[None]:
    """
    A L{Deferred} that fires after C{seconds} on the global reactor.
    """
    return deferLater(_clock(), seconds, lambda: None)


class Recorder(SubscriptionObserver):
    """
    An observer that records what the subscriber reports, in order, and
    lets a test wait until a condition on it holds.

    @ivar events: C{(kind, subscription, detail)} tuples: C{"started"}
        (detail C{None}), C{"notification"} (a L{Notification}),
        C{"ended"} (a L{Termination}).
    """

    def __init__(self, context: Callable[[], str] | None = None) -> None:
        """
        @param context: gives more to show when a wait fails (what SIPp
            saw on the wire).
        """
        self.context = context
        self.events: list[tuple[str, Subscription, Any]] = []
        self._waiters: list[tuple[Callable[[], Any], Deferred[Any]]] = []

    def subscriptionStarted(self, subscription: Subscription) -> None:
        self._record("started", subscription, None)

    def notificationReceived(
        self, subscription: Subscription, notification: Notification
    ) -> None:
        self._record("notification", subscription, notification)

    def subscriptionEnded(
        self, subscription: Subscription, termination: Termination
    ) -> None:
        self._record("ended", subscription, termination)

    def _record(self, kind: str, subscription: Subscription, detail: Any) -> None:
        self.events.append((kind, subscription, detail))
        # The waiting test goes on from the reactor, not from inside the
        # subscriber's call to its observer.
        _clock().callLater(0, self._check)

    def _check(self) -> None:
        for waiter in list(self._waiters):
            predicate, d = waiter
            result = predicate()
            if result:
                self._waiters.remove(waiter)
                d.callback(result)

    def notifications(self) -> list[Notification]:
        """
        Every notification so far, of every subscription.
        """
        return [detail for kind, _, detail in self.events if kind == "notification"]

    def started(self) -> list[Subscription]:
        """
        Every subscription reported started so far (forks included).
        """
        return [sub for kind, sub, _ in self.events if kind == "started"]

    def summary(self) -> str:
        """
        The events so far, one a line, for failure messages.
        """
        lines = []
        for kind, subscription, detail in self.events:
            if isinstance(detail, Notification):
                text = (
                    f"{detail.subscriptionState} {detail.contentType} {detail.body!r}"
                )
            else:
                text = repr(detail)
            lines.append(f"  {kind} {id(subscription):#x}: {text}")
        return "\n".join(lines) or "  (nothing)"

    def waitFor(
        self, what: str, predicate: Callable[[], Any], timeout: float = WAIT
    ) -> Deferred[Any]:
        """
        Fire with C{predicate()} once it is true (now, or after a later
        event); fail with a message naming C{what} and the events so far
        after C{timeout} seconds.
        """
        result = predicate()
        if result:
            return defer.succeed(result)
        d: Deferred[Any] = Deferred()
        waiter = (predicate, d)
        self._waiters.append(waiter)

        def timedOut() -> None:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
                extra = f"\n{self.context()}" if self.context is not None else ""
                d.errback(
                    AssertionError(
                        f"no {what} within {timeout} s; the subscriber reported:\n"
                        f"{self.summary()}{extra}"
                    )
                )

        def done(result: Any) -> Any:
            if call.active():
                call.cancel()
            return result

        call = _clock().callLater(timeout, timedOut)
        return d.addBoth(done)


def bounded(
    d: Deferred[Any],
    what: str,
    timeout: float = WAIT,
    context: Callable[[], str] | None = None,
) -> Deferred[Any]:
    """
    A L{Deferred} with C{d}'s result, or failing with a message naming
    C{what} (and C{context()}, when given) if C{d} has not fired within
    C{timeout} seconds. C{d} itself is never cancelled (it belongs to the
    code under test, which fires it later); its late result is dropped.
    """
    out: Deferred[Any] = Deferred()

    def fire(result: Any) -> None:
        if call.active():
            call.cancel()
            out.callback(result)

    def timedOut() -> None:
        extra = f"\n{context()}" if context is not None else ""
        out.errback(AssertionError(f"no {what} within {timeout} s{extra}"))

    call = _clock().callLater(timeout, timedOut)
    d.addBoth(fire)
    return out


@defer.inlineCallbacks
def sippSucceeded(testCase: TestCase, run: SippRun) -> Any:
    """
    Wait for SIPp's C{run} to end (bounded) and assert that it passed
    every call; a failure shows SIPp's statistics, errors and the
    messages.
    """
    result = yield bounded(
        run.ended, f"end of sipp ({run.name})", context=lambda: sippMessages(run)
    )
    assertSIPpSucceeded(testCase, run, result)


def portTaken(port: int, transport: str) -> bool:
    """
    Whether something listens on loopback C{port} for C{transport}
    (C{"udp"} or C{"tcp"}): our bind fails with C{EADDRINUSE}.
    """
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as probe:
        try:
            probe.bind((LOOPBACK, port))
        except OSError as e:
            return e.errno == errno.EADDRINUSE
    return False


@defer.inlineCallbacks
def waitUntilBound(run: SippRun, transport: str) -> Any:
    """
    Wait (up to L{WAIT} seconds) until SIPp has bound its port, so that our
    first SUBSCRIBE is not lost to a socket not yet open (over UDP it would
    only be retransmitted T1 later).
    """
    for _ in range(int(WAIT / 0.02)):
        if portTaken(run.port, transport):
            return
        if not run.process.running:
            break
        yield sleep(0.02)
    raise AssertionError(
        f"sipp ({run.name}) never listened on {transport}:{run.port}: "
        f"{bytes(run.process.err).decode('utf-8', 'replace')[-2000:]}"
    )


@defer.inlineCallbacks
def waitUntilAnswering(port: int, isRunning: Callable[[], bool]) -> Any:
    """
    Send OPTIONS over UDP to loopback C{port} until a 200 comes back (up to
    L{WAIT} seconds), as L{tests.test_sipp} does for the service.
    """
    probe = _OptionsProbe()
    probePort = reactor.listenUDP(0, probe, interface=LOOPBACK)  # type: ignore[attr-defined]
    try:
        for n in range(1, int(WAIT / 0.1)):
            if not isRunning():
                raise AssertionError("the server exited while starting")
            probe.probe(port, n)
            yield sleep(0.1)
            if probe.answered.called:
                return
        raise AssertionError(f"nothing answered OPTIONS on udp:{port}")
    finally:
        yield probePort.stopListening()


class _SubscriberTestCase(TestCase):
    """
    Starts our subscriber on a free loopback UDP port, stopped in cleanup.
    """

    timeout = 60

    @defer.inlineCallbacks
    def startClient(self, **kwargs: Any) -> Any:
        """
        Start a subscriber (L{startSubscriber} on the global reactor) and
        stop it in cleanup.
        """
        client: SubscriberClient = yield startSubscriber(reactor, **kwargs)
        self.addCleanup(client.stop)
        return client


class SubscriberAgainstSIPpTests(_SubscriberTestCase):
    """
    Our subscriber against SIPp playing the notifier (C{tests/sipp/*_uas.xml}).
    """

    def setUp(self) -> Any:
        self.sipp = requireSIPp(self)
        self.work = FilePath(self.mktemp())
        self.work.makedirs()
        self.runs: list[SippRun] = []
        # Registered before the subscriber's stop, so run after it: a test
        # that fails half-way unsubscribes from a SIPp still there to
        # answer, instead of waiting out Timer F on a dead one.
        self.addCleanup(self.killSipps)
        d = self.startClient()
        d.addCallback(lambda client: setattr(self, "client", client))
        return d

    def killSipps(self) -> None:
        """
        Kill, by PID, every SIPp of this test that still runs.
        """
        for run in self.runs:
            run.process.kill()

    def wire(self) -> str:
        """
        What every SIPp of this test sent and received (the tail of its
        message log), for failure messages.
        """
        return "\n".join(
            f"sipp {run.name} messages:\n{sippMessages(run)}" for run in self.runs
        )

    def bounded(self, d: Deferred[Any], what: str) -> Deferred[Any]:
        """
        L{bounded}, showing what crossed the wire if it times out.
        """
        return bounded(d, what, context=self.wire)

    @defer.inlineCallbacks
    def startNotifier(
        self, scenario: str, calls: int = 1, transport: str = "u1"
    ) -> Any:
        """
        Start SIPp in server mode with C{scenario}, and wait until it
        listens.
        """
        run = startSipp(
            self,
            self.sipp,
            self.work,
            scenario,
            transport=transport,
            calls=calls,
            timeout=SIPP_TIMEOUT,
            killAfter=SIPP_KILL_AFTER,
            traceMessages=True,
            killInCleanup=False,
        )
        self.runs.append(run)
        yield waitUntilBound(run, "udp" if transport.startswith("u") else "tcp")
        return run

    def target(self, run: SippRun, user: str = "alice", params: str = "") -> str:
        return f"sip:{user}@{LOOPBACK}:{run.port}{params}"

    @defer.inlineCallbacks
    def subscribeUnsubscribe(self, transport: str) -> Any:
        """
        The whole life of one subscription against C{notify_uas.xml} over
        C{transport} (SIPp's C{-t}).
        """
        run = yield self.startNotifier("notify_uas.xml", transport=transport)
        recorder = Recorder(self.wire)
        params = "" if transport == "u1" else ";transport=tcp"
        before = _clock().seconds()
        subscription = self.client.subscriber.subscribe(
            self.target(run, params=params),
            "presence",
            observer=recorder,
            accept=[PIDF],
            expires=600,
        )
        notification = yield self.bounded(subscription.whenActive(), "active NOTIFY")
        self.assertEqual(notification.state, "active")
        self.assertEqual(notification.subscriptionState.expires, 600)
        self.assertEqual(notification.event.package, "presence")
        self.assertEqual(notification.contentType, PIDF)
        self.assertIn(b"<note>notified by SIPp</note>", notification.body)
        self.assertIn(f'entity="sip:alice@{LOOPBACK}'.encode(), notification.body)
        self.assertIs(subscription.state, SubscriberState.ACTIVE)
        self.assertIs(subscription.notification, notification)
        self.assertIsNotNone(subscription.dialog)
        # The 200's Expires (and the NOTIFY's expires=) say 600 s.
        assert subscription.expiresAt is not None
        self.assertLess(abs(subscription.expiresAt - (before + 600)), 5)
        self.assertEqual(self.client.subscriber.subscriptions, [subscription])

        termination = yield self.bounded(subscription.unsubscribe(), "final NOTIFY")
        self.assertEqual(termination.reason, "timeout")
        self.assertFalse(termination.willRetry)
        self.assertIsNone(termination.failure)
        assert termination.notification is not None
        self.assertEqual(termination.notification.state, "terminated")
        self.assertIs(subscription.state, SubscriberState.TERMINATED)
        self.assertEqual(self.client.subscriber.subscriptions, [])
        ended = yield self.bounded(subscription.whenTerminated(), "whenTerminated")
        self.assertEqual(ended.reason, "timeout")
        kinds = [kind for kind, _, _ in recorder.events]
        self.assertEqual(kinds.count("started"), 1, recorder.summary())
        self.assertEqual(kinds.count("notification"), 2, recorder.summary())
        self.assertEqual(kinds[-1], "ended", recorder.summary())
        yield sippSucceeded(self, run)

    def test_rfc6665_4_1_2_subscribeNotifyUnsubscribeAgainstSIPp(self) -> Any:
        """
        Against SIPp over UDP: SUBSCRIBE, 200, NOTIFY C{active} with a PIDF
        body (reported as it came), then C{unsubscribe()} sends Expires: 0
        in the dialog (checked by SIPp: our To tag, same Call-ID) and the
        final NOTIFY C{terminated;reason=timeout} ends the subscription
        (RFC 6665 sections 4.1.2.1, 4.1.2.3 and 4.1.3).
        """
        return self.subscribeUnsubscribe("u1")

    def test_rfc6665_4_1_2_subscribeOverTCPAgainstSIPp(self) -> Any:
        """
        The same over TCP: our subscriber connects to SIPp, and SIPp's
        NOTIFYs come back on that connection (RFC 3261 section 18.2.2),
        which our subscriber takes without a TCP listener of its own.
        """
        return self.subscribeUnsubscribe("t1")

    @defer.inlineCallbacks
    def test_rfc6665_4_1_2_3_stopUnsubscribesAgainstSIPp(self) -> Any:
        """
        Stopping the client (L{SubscriberClient.stop}) unsubscribes what is
        live first (RFC 6665 section 4.1.2.3): SIPp gets the unSUBSCRIBE
        and our 200 to its final NOTIFY, and nothing of ours is left
        running once C{stop()} has fired.
        """
        run = yield self.startNotifier("notify_uas.xml")
        subscription = self.client.subscriber.subscribe(
            self.target(run), "presence", accept=[PIDF]
        )
        yield self.bounded(subscription.whenActive(), "active NOTIFY")
        yield self.bounded(self.client.stop(), "the client's stop")
        self.assertIs(subscription.state, SubscriberState.TERMINATED)
        self.assertEqual(self.client.subscriber.subscriptions, [])
        yield sippSucceeded(self, run)

    @defer.inlineCallbacks
    def test_rfc6665_4_1_4_forkedNotifiesAgainstSIPp(self) -> Any:
        """
        Two NOTIFYs from two From tags for one SUBSCRIBE (a forked
        request): both are answered 200, and each becomes its own
        subscription, reported through C{subscriptionStarted}, the second a
        fork of the first (RFC 6665 sections 4.1.4 and 4.4.1). Each
        unsubscribes in its own dialog, to its own remote target, as SIPp
        checks.
        """
        run = yield self.startNotifier("forked_uas.xml")
        recorder = Recorder(self.wire)
        subscription = self.client.subscriber.subscribe(
            self.target(run), "presence", observer=recorder, accept=[PIDF]
        )
        yield recorder.waitFor(
            "NOTIFY from both forks",
            lambda: (
                len({id(s) for k, s, _ in recorder.events if k == "notification"}) == 2
            ),
        )
        started = recorder.started()
        self.assertEqual(len(started), 2, recorder.summary())
        self.assertIs(started[0], subscription)
        fork = started[1]
        self.assertIsNot(fork, subscription)
        self.assertIs(fork.forkOf, subscription)
        self.assertIsNone(subscription.forkOf)
        self.assertCountEqual(
            self.client.subscriber.subscriptions, [subscription, fork]
        )
        for sub, note in ((subscription, b"fork A"), (fork, b"fork B")):
            self.assertIs(sub.state, SubscriberState.ACTIVE)
            assert sub.notification is not None
            self.assertIn(b"<note>" + note + b"</note>", sub.notification.body)
        first, second = subscription.notification, fork.notification
        assert first is not None and second is not None
        self.assertEqual(first.request.callId, second.request.callId)
        assert first.request.fromAddr is not None
        assert second.request.fromAddr is not None
        self.assertNotEqual(first.request.fromAddr.tag, second.request.fromAddr.tag)

        # One after the other: SIPp's scenario takes them in turn.
        for sub in (fork, subscription):
            termination = yield self.bounded(sub.unsubscribe(), "final NOTIFY")
            self.assertEqual(termination.reason, "timeout", recorder.summary())
            self.assertIs(sub.state, SubscriberState.TERMINATED)
        self.assertEqual(self.client.subscriber.subscriptions, [])
        yield sippSucceeded(self, run)

    @defer.inlineCallbacks
    def test_rfc6665_4_1_3_probationRetryAfterAgainstSIPp(self) -> Any:
        """
        C{terminated;reason=probation;retry-after=2} ends the dialog but
        not the handle: the subscriber subscribes again, no sooner than 2 s
        later, with a new Call-ID (a new SIPp call), and the same
        L{Subscription} goes active again (RFC 6665 section 4.1.3).
        """
        run = yield self.startNotifier("probation_uas.xml", calls=2)
        recorder = Recorder(self.wire)
        subscription = self.client.subscriber.subscribe(
            self.target(run), "presence", observer=recorder, accept=[PIDF]
        )
        first = yield self.bounded(subscription.whenActive(), "active NOTIFY")
        self.assertIn(b"before probation", first.body)
        probation = yield recorder.waitFor(
            "probation NOTIFY",
            lambda: [n for n in recorder.notifications() if n.state == "terminated"],
        )
        state = probation[0].subscriptionState
        self.assertEqual((state.reason, state.retryAfter), ("probation", 2))
        again = yield recorder.waitFor(
            "active NOTIFY after the retry",
            lambda: [
                n for n in recorder.notifications() if b"after probation" in n.body
            ],
            timeout=WAIT + 2,
        )
        self.assertEqual(again[0].state, "active")
        waited = again[0].receivedAt - probation[0].receivedAt
        self.assertGreaterEqual(waited, 2.0, recorder.summary())
        self.assertNotEqual(again[0].request.callId, first.request.callId)
        self.assertIs(subscription.notification, again[0])
        self.assertIs(subscription.state, SubscriberState.ACTIVE)
        ended = [d for k, s, d in recorder.events if k == "ended"]
        self.assertEqual(len(ended), 1, recorder.summary())
        self.assertTrue(ended[0].willRetry)
        self.assertEqual((ended[0].reason, ended[0].retryAfter), ("probation", 2))
        self.assertFalse(subscription.whenTerminated().called)

        termination = yield self.bounded(subscription.unsubscribe(), "final NOTIFY")
        self.assertEqual(termination.reason, "timeout")
        self.assertFalse(termination.willRetry)
        yield sippSucceeded(self, run)

    @defer.inlineCallbacks
    def test_rfc3265_3_1_4_1_accepted202AgainstSIPp(self) -> Any:
        """
        A 202 from an RFC 3265 notifier creates the subscription like a 200
        (RFC 6665 section 4.1.2.1); its first NOTIFY says C{pending}, which
        does not fire C{whenActive}; the C{active} one does.
        """
        run = yield self.startNotifier("rfc3265_uas.xml")
        recorder = Recorder(self.wire)
        subscription = self.client.subscriber.subscribe(
            self.target(run), "presence", observer=recorder, accept=[PIDF]
        )
        notification = yield self.bounded(subscription.whenActive(), "active NOTIFY")
        self.assertIn(b"accepted by SIPp", notification.body)
        states = [n.state for n in recorder.notifications()]
        self.assertEqual(states, ["pending", "active"])
        termination = yield self.bounded(subscription.unsubscribe(), "final NOTIFY")
        self.assertEqual(termination.reason, "timeout")
        yield sippSucceeded(self, run)

    @defer.inlineCallbacks
    def test_rfc6665_4_1_2_1_badEvent489AgainstSIPp(self) -> Any:
        """
        489 Bad Event fails the subscription with L{SubscriptionFailed}
        listing the notifier's Allow-Events (RFC 6665 sections 4.1.2.1 and
        8.3.1); nothing is left subscribed.
        """
        run = yield self.startNotifier("bad_event_uas.xml")
        subscription = self.client.subscriber.subscribe(self.target(run), "dialog")
        failure = yield self.bounded(
            self.assertFailure(subscription.whenActive(), SubscriptionFailed),
            "489",
        )
        self.assertEqual(failure.code, 489)
        self.assertEqual(failure.allowEvents, ["presence", "message-summary"])
        self.assertIn("presence, message-summary", str(failure))
        self.assertIn(self.target(run), str(failure))
        self.assertIs(subscription.state, SubscriberState.TERMINATED)
        self.assertEqual(self.client.subscriber.subscriptions, [])
        yield sippSucceeded(self, run)

    @defer.inlineCallbacks
    def test_rfc6665_4_1_2_4_notifyBefore200AgainstSIPp(self) -> Any:
        """
        A NOTIFY that arrives before the 200 to the SUBSCRIBE is matched
        (Call-ID, our From tag as its To tag, Event) and taken (RFC 6665
        section 4.1.2.4); the 200 that follows it changes nothing, and the
        subscription ends as usual.
        """
        run = yield self.startNotifier("notify_first_uas.xml")
        recorder = Recorder(self.wire)
        subscription = self.client.subscriber.subscribe(
            self.target(run), "presence", observer=recorder, accept=[PIDF]
        )
        notification = yield self.bounded(subscription.whenActive(), "active NOTIFY")
        self.assertIn(b"notified before the 200", notification.body)
        self.assertEqual(len(recorder.started()), 1, recorder.summary())
        # Let the late 200 arrive before unsubscribing.
        yield sleep(0.2)
        self.assertEqual(len(recorder.started()), 1, recorder.summary())
        self.assertIs(subscription.state, SubscriberState.ACTIVE)
        termination = yield self.bounded(subscription.unsubscribe(), "final NOTIFY")
        self.assertEqual(termination.reason, "timeout")
        yield sippSucceeded(self, run)


class SubscriberAgainstKamailioTests(_SubscriberTestCase):
    """
    Our subscriber against Kamailio's presence server (C{tests/kamailio/}),
    one Kamailio per test on a free loopback port.

    @cvar minExpires: Kamailio's C{min_expires}: short, so that a refresh
        (due half-way through a short subscription, RFC 6665 section
        4.1.2.2) comes within a test.
    """

    minExpires = 4

    def setUp(self) -> Any:
        found = requirePeer(self, findKamailio(), MISSING)
        self.sipp = requireSIPp(self)
        self.work = FilePath(self.mktemp())
        self.work.makedirs()
        self.port = freePort()
        self.kamailio = startKamailio(
            self.port, self.work.path, minExpires=self.minExpires, found=found
        )
        self.addCleanup(stopKamailio, self.kamailio)
        d = waitUntilAnswering(self.port, lambda: self.kamailio.poll() is None)
        d.addErrback(
            lambda f: self.fail(f"{f.getErrorMessage()}\n{logTail(self.work.path)}")
        )
        d.addCallback(lambda _: self.startClient())
        d.addCallback(lambda client: setattr(self, "client", client))
        return d

    def startPublisher(self, user: str) -> SippRun:
        """
        Start SIPp PUBLISHing a PIDF document for C{user} to Kamailio
        (C{tests/sipp/publish_uac.xml}, one call).
        """
        return startSipp(
            self,
            self.sipp,
            self.work,
            "publish_uac.xml",
            remote=f"{LOOPBACK}:{self.port}",
            timeout=SIPP_TIMEOUT,
            killAfter=SIPP_KILL_AFTER,
            traceMessages=True,
            extra=("-s", user),
        )

    @defer.inlineCallbacks
    def test_rfc3856_6_publishedStateNotifiedByKamailio(self) -> Any:
        """
        We subscribe to a presentity on Kamailio (200, NOTIFY C{active});
        SIPp PUBLISHes a PIDF document for it (RFC 3903 section 4); the
        NOTIFY Kamailio sends us carries that document (RFC 3856 section
        6.8, RFC 6665 section 4.2.2); then we unsubscribe and Kamailio's
        final NOTIFY ends it (RFC 6665 section 4.1.2.3).
        """
        recorder = Recorder()
        target = f"sip:alice@{LOOPBACK}:{self.port}"
        subscription = self.client.subscriber.subscribe(
            target, "presence", observer=recorder, accept=[PIDF], expires=600
        )
        first = yield bounded(subscription.whenActive(), "active NOTIFY")
        self.assertEqual(first.event.package, "presence")
        publisher = self.startPublisher("alice")
        published = yield recorder.waitFor(
            "NOTIFY with the published PIDF",
            lambda: [
                n for n in recorder.notifications() if b"published by SIPp" in n.body
            ],
        )
        notification = published[0]
        self.assertEqual(notification.state, "active")
        self.assertEqual(notification.contentType, PIDF)
        self.assertIn(b"<basic>open</basic>", notification.body)
        # Kamailio may NOTIFY the published state twice within a
        # millisecond; the handle holds the latest NOTIFY, whichever it is.
        self.assertIs(subscription.notification, recorder.notifications()[-1])
        self.assertIn(b"published by SIPp", subscription.notification.body)
        yield sippSucceeded(self, publisher)

        termination = yield bounded(subscription.unsubscribe(), "final NOTIFY")
        self.assertEqual(termination.reason, "timeout")
        self.assertIs(subscription.state, SubscriberState.TERMINATED)

    @defer.inlineCallbacks
    def test_rfc6665_4_4_3_fetchFromKamailio(self) -> Any:
        """
        A poll (C{fetch}: SUBSCRIBE with Expires: 0) after SIPp has
        PUBLISHed fires with Kamailio's one NOTIFY, which carries the
        published document; nothing stays subscribed (RFC 6665 section
        4.4.3).
        """
        publisher = self.startPublisher("erin")
        yield sippSucceeded(self, publisher)
        notification = yield bounded(
            self.client.subscriber.fetch(
                f"sip:erin@{LOOPBACK}:{self.port}", "presence", accept=[PIDF]
            ),
            "NOTIFY answering the poll",
        )
        self.assertEqual(notification.state, "terminated")
        self.assertEqual(notification.contentType, PIDF)
        self.assertIn(b"published by SIPp", notification.body)
        # fetch() fires while the subscriber is still handling that NOTIFY:
        # the poll is gone once it has (reported to the subscriber's
        # author: it could be gone already).
        yield sleep(0)
        self.assertEqual(self.client.subscriber.subscriptions, [])
        # And it stays gone: "timeout" ends a poll, it does not re-subscribe
        # as it would a subscription (RFC 6665 sections 4.1.3 and 4.4.3).
        yield sleep(0.3)
        self.assertEqual(self.client.subscriber.subscriptions, [])

    @defer.inlineCallbacks
    def test_rfc6665_4_1_2_1_intervalTooBriefAgainstKamailio(self) -> Any:
        """
        Asking Kamailio (C{min_expires} 4) for 1 s gets 423 with
        Min-Expires: 4; the subscriber asks again, once, for 4 s, and the
        subscription goes active for 4 s (RFC 6665 section 4.1.2.1).
        """
        target = f"sip:bob@{LOOPBACK}:{self.port}"
        before = _clock().seconds()
        subscription = self.client.subscriber.subscribe(
            target, "presence", accept=[PIDF], expires=1
        )
        notification = yield bounded(subscription.whenActive(), "active NOTIFY")
        self.assertEqual(notification.subscriptionState.expires, self.minExpires)
        assert subscription.expiresAt is not None
        self.assertLess(abs(subscription.expiresAt - (before + self.minExpires)), 1)
        termination = yield bounded(subscription.unsubscribe(), "final NOTIFY")
        self.assertEqual(termination.reason, "timeout")

    @defer.inlineCallbacks
    def test_rfc6665_4_1_2_2_refreshAgainstKamailio(self) -> Any:
        """
        A subscription granted for 6 s is refreshed in its dialog before
        it ends (3 s in: C{min(32, 6 / 2)} s early, RFC 6665 section
        4.1.2.2); Kamailio answers 200 and NOTIFYs again (section
        4.2.1.2), in the same dialog, and the subscription is extended.
        """
        recorder = Recorder()
        target = f"sip:dave@{LOOPBACK}:{self.port}"
        subscription = self.client.subscriber.subscribe(
            target, "presence", observer=recorder, accept=[PIDF], expires=6
        )
        first = yield bounded(subscription.whenActive(), "active NOTIFY")
        firstExpiry = subscription.expiresAt
        assert firstExpiry is not None
        refreshed = yield recorder.waitFor(
            "NOTIFY after the refresh",
            lambda: [
                n
                for n in recorder.notifications()
                if n.receivedAt >= first.receivedAt + 2.5
            ],
            timeout=10,
        )
        notification = refreshed[0]
        self.assertEqual(notification.state, "active")
        self.assertEqual(notification.request.callId, first.request.callId)
        assert notification.request.fromAddr is not None
        assert first.request.fromAddr is not None
        self.assertEqual(notification.request.fromAddr.tag, first.request.fromAddr.tag)
        # Sent half-way through, not at the last moment.
        self.assertLess(notification.receivedAt, firstExpiry)
        assert subscription.expiresAt is not None
        self.assertGreater(subscription.expiresAt, firstExpiry + 2)
        self.assertEqual(len(recorder.started()), 1, recorder.summary())
        self.assertIs(subscription.state, SubscriberState.ACTIVE)
        termination = yield bounded(subscription.unsubscribe(), "final NOTIFY")
        self.assertEqual(termination.reason, "timeout")

    @defer.inlineCallbacks
    def test_rfc6665_4_1_2_1_badEventFromKamailio(self) -> Any:
        """
        Kamailio serves presence and message-summary only: a SUBSCRIBE for
        C{dialog} fails with 489 and the packages it allows.
        """
        target = f"sip:carol@{LOOPBACK}:{self.port}"
        subscription = self.client.subscriber.subscribe(target, "dialog")
        failure = yield bounded(
            self.assertFailure(subscription.whenActive(), SubscriptionFailed),
            "489",
        )
        self.assertEqual(failure.code, 489)
        self.assertIn("presence", failure.allowEvents)
        self.assertIn("presence", str(failure))


class SubscriberAgainstOwnNotifierTests(NotifierMixin, _SubscriberTestCase):
    """
    Our subscriber against our own notifier (L{SIPEventsService}, memory
    store, in this process) over UDP, TCP and TLS.
    """

    @defer.inlineCallbacks
    def setUp(self) -> Any:
        # Presence without its 5 s coalescing (see NotifierMixin), so that
        # the state-change NOTIFY does not wait.
        yield self.startNotifier(self, tls=True)
        self.trustRoot = trustRootFromCertificates([Certificate.loadPEM(self.caPEM)])
        self.client = yield self.startClient(trustRoot=self.trustRoot)

    def port(self, transport: str) -> int:
        """
        The service's listening port for C{transport} (C{"UDP"} ...).
        """
        for name, port in self.service.transportLayer.listeners:
            if name == transport:
                number: int = port.getHost().port
                return number
        raise AssertionError(f"the service does not listen on {transport}")

    @defer.inlineCallbacks
    def roundTrip(self, scheme: str, user: str, transport: str, params: str) -> Any:
        """
        Subscribe to C{user} on the service's C{transport} port, see the
        first NOTIFY, change the state with C{notifier.setState}, see a
        NOTIFY with that document, unsubscribe, see the final NOTIFY.
        """
        target = f"{scheme}:{user}@{LOOPBACK}:{self.port(transport)}{params}"
        recorder = Recorder()
        subscription = self.client.subscriber.subscribe(
            target, "presence", observer=recorder, accept=[PIDF], expires=600
        )
        first = yield bounded(subscription.whenActive(), "active NOTIFY")
        self.assertEqual(first.event.package, "presence")
        # The NOTIFY came over the transport asked for.
        assert first.request.topVia is not None
        self.assertEqual(first.request.topVia.transport, transport)
        records = self.service.notifier.subscriptions()
        self.assertEqual(len(records), 1)
        resource = records[0].resource
        self.assertIn(user, resource)
        note = f"<note>set for {user}</note>".encode()
        document = pidf(resource, note=f"set for {user}")
        yield self.service.notifier.setState("presence", resource, PIDF, document)
        # The presence package composes what it sends from the state set
        # (RFC 3856 section 6.8): the tuple arrives, not the same octets.
        changed = yield recorder.waitFor(
            "NOTIFY with the state set",
            lambda: [n for n in recorder.notifications() if note in n.body],
        )
        self.assertEqual(changed[0].state, "active")
        self.assertEqual(changed[0].contentType, PIDF)
        self.assertIs(subscription.notification, changed[0])
        termination = yield bounded(subscription.unsubscribe(), "final NOTIFY")
        self.assertEqual(termination.reason, "timeout")
        self.assertIs(subscription.state, SubscriberState.TERMINATED)
        self.assertEqual(self.service.notifier.subscriptions(), [])
        return first

    def test_rfc6665_4_1_2_ownNotifierOverUDP(self) -> Any:
        """
        Subscribe, state change, unsubscribe against our notifier over UDP
        (RFC 6665 sections 4.1.2 and 4.2.2).
        """
        return self.roundTrip("sip", "udpwatch", "UDP", "")

    def test_rfc6665_4_1_2_ownNotifierOverTCP(self) -> Any:
        """
        The same over TCP: one connection from us, the NOTIFYs back on it
        (RFC 3261 section 18.2.2).
        """
        return self.roundTrip("sip", "tcpwatch", "TCP", ";transport=tcp")

    def test_rfc3261_26_2_ownNotifierOverTLS(self) -> Any:
        """
        The same over TLS to a SIPS URI (RFC 3261 section 26.2), the
        notifier's certificate made in the test and trusted through
        C{startSubscriber(trustRoot=...)}.
        """
        return self.roundTrip("sips", "tlswatch", "TLS", "")
