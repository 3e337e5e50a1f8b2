# -*- test-case-name: tests.test_testing -*-
"""
Tests for the kit in L{sipevents.testing}: the message factories and the
notifier and subscriber connected in memory (L{connectedPair}).
"""

from __future__ import annotations

import hashlib
import signal
import socket
import subprocess
import sys

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from sipevents.events import SubscriptionTimedOut
from sipevents.interfaces import INotifier, ISubscriber
from sipevents.packages.presence import PIDF_TYPE
from sipevents.sip.message import Message, Request, Response
from sipevents.sip.uri import formatURI
from sipevents.testing import (
    NOTIFIER_CONTACT,
    RESOURCE,
    WATCHER,
    ConnectedPair,
    Transmission,
    connectedPair,
    freePort,
    htdigestLine,
    notifyRequest,
    optionsRequest,
    publishRequest,
    reparse,
    responseTo,
    sipRequest,
    stopProcess,
    subscribeRequest,
)

#: Timer N with the default T1 (RFC 6665 section 4.1.2.4).
TIMER_N = 32.0


def isNotify(message: Message) -> bool:
    return isinstance(message, Request) and message.method == "NOTIFY"


def startLines(pair: ConnectedPair) -> list[tuple[str, str]]:
    """
    Who sent what, as C{(sender, start line)}, for every message delivered.
    """
    return [
        (t.sender, t.data.split(b"\r\n", 1)[0].decode())
        for t in pair.wire.transmissions
    ]


class FactoryTests(SynchronousTestCase):
    """
    The message factories write a message and parse it back.
    """

    def test_rfc6665_4_1_2_subscribe(self) -> None:
        """
        L{subscribeRequest} writes an initial SUBSCRIBE from the watcher
        with Event, Expires, Contact and Accept; the defaults name one
        dialog, and each call is a new transaction.
        """
        request = subscribeRequest(event="presence", id="7", accept="text/plain")
        self.assertEqual(request.method, "SUBSCRIBE")
        self.assertEqual(formatURI(request.uri), RESOURCE)
        self.assertEqual(request.headers.get("Event"), "presence;id=7")
        self.assertEqual(request.expires, 600)
        self.assertEqual(request.headers.get("Accept"), "text/plain")
        self.assertEqual(request.headers.get("Contact"), "<sip:alice@127.0.0.1:5070>")
        self.assertEqual(request.headers.get("Content-Length"), "0")
        fromAddr, toAddr = request.fromAddr, request.toAddr
        assert fromAddr is not None and toAddr is not None
        self.assertEqual((formatURI(fromAddr.uri), fromAddr.tag), (WATCHER, "ft1"))
        self.assertIsNone(toAddr.tag)
        again = subscribeRequest()
        self.assertEqual(again.callId, request.callId)
        first, second = request.topVia, again.topVia
        assert first is not None and second is not None
        self.assertTrue(first.branch and first.branch.startswith("z9hG4bK"))
        self.assertNotEqual(first.branch, second.branch)
        self.assertEqual(first.sentBy, "127.0.0.1:5070")

    def test_refreshAndUnsubscribe(self) -> None:
        """
        With a To tag and a CSeq, L{subscribeRequest} writes a refresh in
        the dialog; with C{expires=0}, an unsubscription; C{None} leaves a
        header out.
        """
        request = subscribeRequest(toTag="nt1", cseq=2, expires=0, event=None)
        toAddr, cseq = request.toAddr, request.cseq
        assert toAddr is not None and cseq is not None
        self.assertEqual(toAddr.tag, "nt1")
        self.assertEqual((cseq.number, cseq.method), (2, "SUBSCRIBE"))
        self.assertEqual(request.expires, 0)
        self.assertIsNone(request.headers.get("Event"))

    def test_rfc6665_4_2_2_notify(self) -> None:
        """
        L{notifyRequest} writes a NOTIFY in the dialog of a SUBSCRIBE: From
        and To swapped, the same Call-ID and Event, to the watcher's
        Contact, with Subscription-State and the body; another Event, or
        none, when told.
        """
        subscribe = subscribeRequest(event="presence", id="a")
        notify = notifyRequest(
            subscribe, "active;expires=60", body=b"<x/>", contentType=PIDF_TYPE
        )
        self.assertEqual(notify.method, "NOTIFY")
        self.assertEqual(formatURI(notify.uri), "sip:alice@127.0.0.1:5070")
        self.assertEqual(notify.callId, subscribe.callId)
        self.assertEqual(notify.headers.get("Event"), "presence;id=a")
        self.assertEqual(notify.headers.get("Subscription-State"), "active;expires=60")
        self.assertEqual(notify.headers.get("Contact"), NOTIFIER_CONTACT)
        self.assertEqual(notify.body, b"<x/>")
        self.assertEqual(notify.headers.get("Content-Length"), "4")
        fromAddr, toAddr = notify.fromAddr, notify.toAddr
        assert fromAddr is not None and toAddr is not None
        self.assertEqual((formatURI(fromAddr.uri), fromAddr.tag), (RESOURCE, "nt1"))
        self.assertEqual((formatURI(toAddr.uri), toAddr.tag), (WATCHER, "ft1"))
        via = notify.topVia
        assert via is not None
        self.assertEqual(via.sentBy, "127.0.0.1:5060")
        untagged = notifyRequest(subscribe, toTag="").toAddr
        assert untagged is not None
        self.assertIsNone(untagged.tag)
        self.assertEqual(
            notifyRequest(subscribe, event="dialog").headers.get("Event"), "dialog"
        )
        self.assertNotIn("Event", notifyRequest(subscribe, event="").headers)

    def test_rfc3903_4_publish(self) -> None:
        """
        L{publishRequest} writes a PUBLISH with Event, SIP-If-Match and
        Expires; each is outside any dialog, with a fresh Call-ID.
        """
        request = publishRequest(
            body=b"<p/>", contentType=PIDF_TYPE, etag="e1", expires=60
        )
        self.assertEqual(request.method, "PUBLISH")
        self.assertEqual(request.headers.get("Event"), "presence")
        self.assertEqual(request.headers.get("SIP-If-Match"), "e1")
        self.assertEqual(request.expires, 60)
        self.assertEqual(request.headers.get("Content-Type"), PIDF_TYPE)
        self.assertEqual(request.body, b"<p/>")
        self.assertNotEqual(publishRequest().callId, request.callId)

    def test_sipRequest(self) -> None:
        """
        L{sipRequest} writes any method, with a CSeq method of its own, no
        branch, rport and other Via parameters (unparsed, since the parser
        refuses a CSeq method that is not the request's); L{optionsRequest}
        writes OPTIONS.
        """
        request = sipRequest(
            "INFO",
            branch="",
            rport=True,
            viaParams=["x=1"],
            cseqMethod="FOO",
            parsed=False,
        )
        self.assertEqual(
            request.headers.get("Via"), "SIP/2.0/UDP 127.0.0.1:5070;rport;x=1"
        )
        cseq = request.cseq
        assert cseq is not None
        self.assertEqual(cseq.method, "FOO")
        self.assertEqual(optionsRequest().method, "OPTIONS")

    def test_rfc3261_8_2_6_2_responseTo(self) -> None:
        """
        L{responseTo} copies Via, From, To, Call-ID and CSeq, adds the To
        tag, then Contact and the other fields, and parses the result.
        """
        request = subscribeRequest()
        response = responseTo(
            request,
            200,
            toTag="nt1",
            contact=NOTIFIER_CONTACT,
            headers=[("Expires", "60")],
        )
        self.assertIsInstance(response, Response)
        self.assertEqual((response.code, response.reason), (200, "OK"))
        toAddr = response.toAddr
        assert toAddr is not None
        self.assertEqual(toAddr.tag, "nt1")
        self.assertEqual(response.headers.get("Via"), request.headers.get("Via"))
        self.assertEqual(response.headers.get("Contact"), NOTIFIER_CONTACT)
        self.assertEqual(response.expires, 60)
        self.assertEqual(responseTo(request, 423, "Short").reason, "Short")

    def test_reparse(self) -> None:
        """
        L{reparse} returns a new message, parsed from the bytes of the old.
        """
        request = subscribeRequest()
        again = reparse(request)
        self.assertIsNot(again, request)
        self.assertEqual(again.toBytes(), request.toBytes())


class ConnectedPairTests(SynchronousTestCase):
    """
    L{connectedPair}: our notifier and our subscriber in memory.
    """

    def setUp(self) -> None:
        self.pair = connectedPair()
        self.addCleanup(self.pair.stop)

    def test_rfc6665_4_1_subscribeOkNotify(self) -> None:
        """
        A subscription goes SUBSCRIBE, 200, NOTIFY, 200 over the wire and
        is active with the notifier's state, without the clock moving.
        """
        pair = self.pair
        subscription = pair.subscriber.subscribe(pair.target("bob"), "presence")
        active = subscription.whenActive()
        self.assertNoResult(active)
        self.assertEqual(pair.pump(), 4)
        notification = self.successResultOf(active)
        self.assertEqual(
            startLines(pair),
            [
                ("subscriber", "SUBSCRIBE sip:bob@127.0.0.1:5060 SIP/2.0"),
                ("notifier", "SIP/2.0 200 OK"),
                ("notifier", "NOTIFY sip:127.0.0.1:5070 SIP/2.0"),
                ("subscriber", "SIP/2.0 200 OK"),
            ],
        )
        self.assertEqual(notification.contentType, PIDF_TYPE)
        self.assertIn(b'entity="sip:bob@127.0.0.1"', notification.body)
        [record] = pair.notifier.subscriptions()
        self.assertEqual(record.resource, pair.resource("bob"))
        self.assertEqual(pair.clock.seconds(), 0)
        self.assertEqual(pair.pump(), 0)

    def test_setState(self) -> None:
        """
        The application's L{Notifier.setState} reaches the subscriber as a
        NOTIFY with the body rendered by the package.
        """
        pair = self.pair
        subscription = pair.subscriber.subscribe(pair.target("bob"), "presence")
        pair.pump()
        body = (
            b'<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf"'
            b' entity="sip:bob@127.0.0.1"><tuple id="t"><status><basic>open'
            b"</basic></status></tuple></presence>"
        )
        self.successResultOf(
            pair.notifier.setState("presence", pair.resource("bob"), PIDF_TYPE, body)
        )
        # Presence NOTIFYs are at least five seconds apart (RFC 3856
        # section 6.10), and only the clock makes them so.
        self.assertEqual(pair.pump(), 0)
        pair.advance(5)
        self.assertEqual(len(pair.messages("NOTIFY")), 2)
        notification = subscription.notification
        assert notification is not None
        self.assertIn(b"<basic>open</basic>", notification.body)

    def test_bytesOnTheWire(self) -> None:
        """
        Each message goes through its bytes: what the receiver gets is
        parsed from what the sender serialized, never the sender's object.
        """
        pair = self.pair
        subscription = pair.subscriber.subscribe(pair.target("bob"), "presence")
        pair.pump()
        [(sentSubscribe, _)] = pair.subscriberAgent.transportLayer.requests  # type: ignore[union-attr]
        [(sentNotify, _)] = pair.notifierAgent.transportLayer.requests  # type: ignore[union-attr]
        subscribe, ok, notify, _ = (t.data for t in pair.wire.transmissions)
        self.assertEqual(subscribe, sentSubscribe.toBytes())
        self.assertTrue(
            subscribe.startswith(b"SUBSCRIBE sip:bob@127.0.0.1:5060 SIP/2.0\r\n")
        )
        self.assertIn(b"\r\nEvent: presence\r\n", subscribe)
        self.assertEqual(notify, sentNotify.toBytes())
        notification = subscription.notification
        assert notification is not None
        self.assertIsNot(notification.request, sentNotify)
        self.assertEqual(notification.request.toBytes(), notify)
        [received] = pair.messages("NOTIFY")
        self.assertEqual(received.toBytes(), notify)
        self.assertIn(b"\r\nSubscription-State: active;expires=", ok + notify)

    def test_rfc6665_4_1_2_4_timerNOnlyWithTheClock(self) -> None:
        """
        When every NOTIFY is lost, the subscription waits as long as the
        clock stands still, and fails once Timer N has passed on it.
        """
        pair = self.pair
        pair.wire.drop(isNotify)
        subscription = pair.subscriber.subscribe(pair.target("bob"), "presence")
        active = subscription.whenActive()
        pair.pump()
        for _ in range(3):
            self.assertEqual(pair.pump(), 0)
        self.assertNoResult(active)
        pair.advance(TIMER_N - 0.5)
        self.assertNoResult(active)
        pair.advance(0.5)
        self.failureResultOf(active, SubscriptionTimedOut)
        self.assertTrue(pair.wire.dropped)
        self.assertTrue(all(isNotify(t.message) for t in pair.wire.dropped))
        self.assertEqual(pair.messages("NOTIFY"), [])

    def test_rfc6665_4_1_2_2_refreshOnTheClock(self) -> None:
        """
        The subscriber refreshes on the clock: no refresh while it stands
        still, one SUBSCRIBE in the dialog as it moves, sent before the
        subscription would expire; the subscription stays active.
        """
        pair = self.pair
        subscription = pair.subscriber.subscribe(
            pair.target("bob"), "presence", expires=600
        )
        pair.pump()
        pair.pump()
        self.assertEqual(len(pair.messages("SUBSCRIBE")), 1)
        pair.advance(900)
        self.assertEqual(pair.clock.seconds(), 900)
        initial, refresh = pair.messages("SUBSCRIBE")
        [_, sent] = [
            t for t in pair.wire.transmissions if t.data.startswith(b"SUBSCRIBE")
        ]
        self.assertTrue(0 < sent.sentAt < 600, sent.sentAt)
        assert isinstance(refresh, Request) and isinstance(initial, Request)
        self.assertEqual(refresh.callId, initial.callId)
        toAddr = refresh.toAddr
        assert toAddr is not None
        self.assertIsNotNone(toAddr.tag)
        self.assertEqual(subscription.state.name, "ACTIVE")
        assert subscription.expiresAt is not None
        self.assertGreater(subscription.expiresAt, 900)
        self.assertEqual(len(pair.notifier.subscriptions()), 1)

    def test_unsubscribe(self) -> None:
        """
        Unsubscribing goes through the wire and ends the subscription at
        both ends with the final NOTIFY.
        """
        pair = self.pair
        subscription = pair.subscriber.subscribe(pair.target("bob"), "presence")
        pair.pump()
        ended = subscription.unsubscribe()
        pair.pump()
        termination = self.successResultOf(ended)
        self.assertEqual(termination.reason, "timeout")
        self.assertEqual(pair.notifier.subscriptions(), [])

    def test_sharedClock(self) -> None:
        """
        A clock given is the clock of both ends.
        """
        clock = Clock()
        pair = connectedPair(clock)
        self.addCleanup(pair.stop)
        self.assertIs(pair.clock, clock)
        self.assertIs(pair.notifierAgent.clock, clock)
        self.assertIs(pair.subscriberAgent.clock, clock)

    def test_packages(self) -> None:
        """
        The notifier serves the packages given: another event type gets 489.
        """
        pair = connectedPair(packages=[])
        self.addCleanup(pair.stop)
        subscription = pair.subscriber.subscribe(pair.target("bob"), "presence")
        active = subscription.whenActive()
        pair.pump()
        failure = self.failureResultOf(active)
        self.assertEqual(failure.value.code, 489)

    def test_interfaces(self) -> None:
        """
        The pair's ends are the real notifier and subscriber.
        """
        self.assertTrue(verifyObject(INotifier, self.pair.notifier))
        self.assertTrue(verifyObject(ISubscriber, self.pair.subscriber))

    def test_rfc3903_4_publish(self) -> None:
        """
        L{ConnectedPair.publish} sends a PUBLISH over the wire to the
        publication manager; its state reaches the watcher on the clock.
        """
        pair = self.pair
        subscription = pair.subscriber.subscribe(pair.target("carol"), "presence")
        pair.pump()
        body = (
            b'<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf"'
            b' entity="sip:carol@127.0.0.1"><tuple id="p"><status><basic>closed'
            b"</basic></status></tuple></presence>"
        )
        published = pair.publish(body, PIDF_TYPE, user="carol", expires=60)
        self.assertNoResult(published)
        pair.pump()
        response = self.successResultOf(published)
        self.assertEqual((response.code, response.expires), (200, 60))
        [publish] = pair.messages("PUBLISH")
        assert isinstance(publish, Request)
        self.assertEqual(formatURI(publish.uri), pair.target("carol"))
        self.assertEqual(publish.headers.get("Event"), "presence")
        pair.advance(5)
        notification = subscription.notification
        assert notification is not None
        self.assertIn(b"<basic>closed</basic>", notification.body)

    def test_unparsable(self) -> None:
        """
        Bytes the receiver cannot parse go to its C{parseErrorReceived},
        and are kept apart.
        """
        pair = self.pair
        errors: list[object] = []
        self.patch(
            pair.notifierAgent,
            "parseErrorReceived",
            lambda error, source: errors.append(error),
        )
        layer = pair.subscriberAgent.transportLayer
        bad = Transmission("subscriber", "notifier", b"NOT SIP\r\n\r\n", 0.0)
        pair.wire.queue.append((layer, bad))  # type: ignore[arg-type]
        self.assertEqual(pair.pump(), 0)
        self.assertEqual(len(errors), 1)
        self.assertEqual(pair.wire.unparsable, [bad])
        self.assertEqual(pair.wire.transmissions, [])


class ProcessHelperTests(SynchronousTestCase):
    """
    L{freePort} and L{stopProcess}, for end-to-end tests on loopback.
    """

    def test_freePortBindsForUDPAndTCP(self) -> None:
        """
        The port can be bound on loopback for both UDP and TCP.
        """
        port = freePort()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", port))
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                tcp.bind(("127.0.0.1", port))

    def test_htdigestLine(self) -> None:
        """
        L{htdigestLine} is C{user:realm:MD5(user:realm:password)}, the
        line Apache's C{htdigest} writes.
        """
        self.assertEqual(
            htdigestLine("alice", "127.0.0.1", "pw"),
            "alice:127.0.0.1:" + hashlib.md5(b"alice:127.0.0.1:pw").hexdigest() + "\n",
        )

    def test_stopProcessTerminates(self) -> None:
        """
        A process that honours SIGTERM ends with it.
        """
        process = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(30)"]
        )
        stopProcess(process, grace=10.0)
        self.assertEqual(process.returncode, -signal.SIGTERM)

    def test_stopProcessKillsAfterGrace(self) -> None:
        """
        A process that ignores SIGTERM is killed once C{grace} has passed;
        a process already ended is left alone.
        """
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import signal, sys, time\n"
                "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                "print('ready', flush=True)\n"
                "time.sleep(30)\n",
            ],
            stdout=subprocess.PIPE,
        )
        assert process.stdout is not None
        self.assertEqual(process.stdout.readline(), b"ready\n")
        stopProcess(process, grace=0.5)
        self.assertEqual(process.returncode, -signal.SIGKILL)
        process.stdout.close()
        stopProcess(process)
        self.assertEqual(process.returncode, -signal.SIGKILL)
