# -*- test-case-name: tests.test_client -*-
"""
Tests for L{sipevents.subscriber.client}: L{startSubscriber} and L{SubscriberClient},
end to end against our own notifier (L{SIPEventsService}) over real UDP,
TCP and TLS sockets on 127.0.0.1, with digest authentication (RFC 3261
section 22) played by a challenging wrapper around the notifier.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Generator
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort
from twisted.python.filepath import FilePath
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from sipevents.app.service import SIPEventsService
from sipevents.config import TimerConfig
from sipevents.events import Credentials, Notification, Termination
from sipevents.interfaces import IRequestContext, IRequestHandler
from sipevents.packages import discoverPackages
from sipevents.packages.presence import PresencePackage
from sipevents.sip.digest import parseAuthParams, verifyAuthorization
from sipevents.sip.message import Request, Response, makeResponse
from sipevents.store.memory import MemoryStore
from sipevents.subscriber.client import (
    DEFAULT_LISTEN,
    SubscriberClient,
    startSubscriber,
)
from sipevents.subscriber.handle import Subscription
from sipevents.subscriber.subscriber import Subscriber, SubscriptionObserver
from sipevents.testing import writeCertificates

LOOPBACK = "127.0.0.1"
#: How long any one wait in these tests may take, in seconds.
WAIT = 15
PIDF = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@127.0.0.1">'
    b'<tuple id="t1"><status><basic>open</basic></status></tuple></presence>\n'
)


def portOf(port: IListeningPort) -> int:
    return port.getHost().port  # type: ignore[attr-defined,no-any-return]


class Recorder(SubscriptionObserver):
    """
    An observer that records what it is told and lets a test wait for a
    notification it expects.
    """

    def __init__(self) -> None:
        self.notifications: list[tuple[Subscription, Notification]] = []
        self.started: list[Subscription] = []
        self.ended: list[tuple[Subscription, Termination]] = []
        self._waiting: list[
            tuple[Callable[[Notification], bool], Deferred[Notification]]
        ] = []

    def notificationReceived(
        self, subscription: Subscription, notification: Notification
    ) -> None:
        self.notifications.append((subscription, notification))
        for entry in list(self._waiting):
            predicate, d = entry
            if predicate(notification):
                self._waiting.remove(entry)
                d.callback(notification)

    def subscriptionStarted(self, subscription: Subscription) -> None:
        self.started.append(subscription)

    def subscriptionEnded(
        self, subscription: Subscription, termination: Termination
    ) -> None:
        self.ended.append((subscription, termination))

    def waitFor(self, predicate: Callable[[Notification], bool]) -> Deferred[Any]:
        """
        Fire with the first notification, received or to come, that
        C{predicate} accepts; fail after L{WAIT} seconds.
        """
        for _, notification in self.notifications:
            if predicate(notification):
                return succeed(notification)
        d: Deferred[Notification] = Deferred()
        self._waiting.append((predicate, d))
        return d.addTimeout(WAIT, reactor)


@implementer(IRequestHandler)
class Challenging:
    """
    Wraps a SUBSCRIBE handler with digest authentication (RFC 3261 section
    22.2 and 22.3): an initial SUBSCRIBE without valid credentials for one
    of our nonces is answered C{code} (401 or 407) with one challenge per
    algorithm; one with them goes to the wrapped handler. In-dialog
    requests are let through, as a server that authenticated the dialog
    may.
    """

    def __init__(
        self,
        inner: IRequestHandler,
        password: str,
        realm: str = "sipevents.test",
        algorithms: tuple[str, ...] = ("MD5", "SHA-256"),
        code: int = 401,
    ) -> None:
        self.inner = inner
        self.accept = inner.accept
        self.password = password
        self.realm = realm
        self.algorithms = algorithms
        self.code = code
        self.nonces: set[str] = set()
        self.challenged: list[Request] = []
        self.authorized: list[dict[str, str]] = []

    def handleRequest(
        self, request: Request, context: IRequestContext
    ) -> Response | Deferred[Response | None] | None:
        if context.inDialog:
            return self.inner.handleRequest(request, context)
        header = "Authorization" if self.code == 401 else "Proxy-Authorization"
        for value in request.headers.getAll(header):
            _, params = parseAuthParams(value)
            nonce = params.get("nonce", "")
            if nonce in self.nonces and verifyAuthorization(
                value, request.method, self.password, self.realm, nonce, request.body
            ):
                self.authorized.append(params)
                return self.inner.handleRequest(request, context)
        self.challenged.append(request)
        nonce = secrets.token_hex(8)
        self.nonces.add(nonce)
        challengeHeader = (
            "WWW-Authenticate" if self.code == 401 else "Proxy-Authenticate"
        )
        return makeResponse(
            request,
            self.code,
            toTag=context.toTag,
            headers=[
                (
                    challengeHeader,
                    f'Digest realm="{self.realm}", nonce="{nonce}", qop="auth",'
                    f" algorithm={algorithm}",
                )
                for algorithm in self.algorithms
            ],
        )


class NotifierMixin:
    """
    Runs our notifier on 127.0.0.1 (UDP, TCP, and TLS with a throw-away
    certificate) with a memory store, for a test case.
    """

    service: SIPEventsService
    udpPort: int
    tcpPort: int
    tlsPort: int
    caPEM: bytes

    @inlineCallbacks
    def startNotifier(
        self, testCase: TestCase, tls: bool = False
    ) -> Generator[Deferred[Any], Any, None]:
        descriptions = [f"udp:0:interface={LOOPBACK}", f"tcp:0:interface={LOOPBACK}"]
        if tls:
            work = FilePath(testCase.mktemp())
            work.makedirs()
            self.caPEM, pem = writeCertificates(work.path)
            descriptions.append(
                f"tls:0:interface={LOOPBACK}:privateKey={pem}:certKey={pem}"
            )
        # Presence NOTIFYs without their 5 second spacing (RFC 3856
        # section 6.10), so that a state change is seen at once.
        packages = [PresencePackage(minNotifyInterval=0.0)] + [
            package for package in discoverPackages() if package.name != "presence"
        ]
        self.service = SIPEventsService(
            descriptions, reactor=reactor, store=MemoryStore(), packages=packages
        )
        self.service.startService()
        testCase.addCleanup(self.service.stopService)
        assert self.service.whenListening is not None
        assert self.service.whenReady is not None
        ports = yield self.service.whenListening
        yield self.service.whenReady
        numbers = [portOf(port) for port in ports]
        self.udpPort, self.tcpPort = numbers[:2]
        if tls:
            self.tlsPort = numbers[2]

    def challenge(self, password: str, **kwargs: Any) -> Challenging:
        """
        Put a L{Challenging} wrapper in front of the notifier's SUBSCRIBE
        handler.
        """
        userAgent = self.service.userAgent
        inner = userAgent.handlerFor("SUBSCRIBE")
        assert inner is not None
        wrapper = Challenging(inner, password, **kwargs)
        userAgent.registerMethod("SUBSCRIBE", wrapper)
        return wrapper


class StartSubscriberTests(TestCase):
    """
    L{startSubscriber} wires a L{UserAgent}, a L{TransportLayer} and a
    L{Subscriber} together and listens.
    """

    timeout = 60

    @inlineCallbacks
    def test_rfc6665_4_1_defaultListensOnLoopback(
        self,
    ) -> Generator[Deferred[Any], Any, None]:
        """
        By default it listens on one free UDP port on 127.0.0.1, and its
        subscriber takes NOTIFY on the user agent; C{stop} closes the port.
        """
        self.assertEqual(DEFAULT_LISTEN, ("udp:0:interface=127.0.0.1",))
        client = yield startSubscriber(reactor)
        self.addCleanup(client.stop)
        self.assertIsInstance(client, SubscriberClient)
        self.assertIsInstance(client.subscriber, Subscriber)
        self.assertIs(client.userAgent.transportLayer, client.transportLayer)
        self.assertIs(client.userAgent.handlerFor("NOTIFY"), client.subscriber)
        self.assertIs(client.reactor, reactor)
        self.assertEqual(len(client.ports), 1)
        host = client.ports[0].getHost()
        self.assertEqual((host.type, host.host), ("UDP", LOOPBACK))  # type: ignore[attr-defined]
        self.assertIn("udp 127.0.0.1:", repr(client).lower())
        yield client.stop()
        self.assertEqual(client.ports, [])
        self.assertEqual(client.transportLayer.listeners, [])
        self.assertIn("nothing", repr(client))

    @inlineCallbacks
    def test_stopTwice(self) -> Generator[Deferred[Any], Any, None]:
        """
        C{stop} may be called again, during or after the first.
        """
        client = yield startSubscriber(reactor)
        first = client.stop()
        second = client.stop()
        yield first
        yield second
        yield client.stop()

    @inlineCallbacks
    def test_severalListeners(self) -> Generator[Deferred[Any], Any, None]:
        """
        Every description is listened on, in order, with the timers and
        local URI given.
        """
        timers = TimerConfig(T1=0.1)
        client = yield startSubscriber(
            reactor,
            [f"udp:0:interface={LOOPBACK}", f"tcp:0:interface={LOOPBACK}"],
            timers=timers,
            localUri="sip:watcher@127.0.0.1",
        )
        self.addCleanup(client.stop)
        self.assertEqual(
            [transport for transport, _ in client.transportLayer.listeners],
            ["UDP", "TCP"],
        )
        self.assertEqual(len(client.ports), 2)
        self.assertEqual(client.userAgent.timers, timers)

    def test_badDescription(self) -> Deferred[Any]:
        """
        A description that does not parse fails with C{ValueError} before
        anything listens.
        """
        return self.assertFailure(startSubscriber(reactor, ["bogus:1"]), ValueError)

    @inlineCallbacks
    def test_portInUse(self) -> Generator[Deferred[Any], Any, None]:
        """
        A port already taken fails with L{CannotListenError}, and the
        listeners that did open are closed again.
        """
        taken = yield startSubscriber(reactor, [f"tcp:0:interface={LOOPBACK}"])
        self.addCleanup(taken.stop)
        busy = portOf(taken.ports[0])
        listening = startSubscriber(
            reactor, [f"udp:0:interface={LOOPBACK}", f"tcp:{busy}:interface={LOOPBACK}"]
        )
        yield self.assertFailure(listening, CannotListenError)


class EndToEndTests(NotifierMixin, TestCase):
    """
    Our subscriber against our notifier on loopback (RFC 6665 section 4.1
    and 4.2), over UDP, TCP and TLS.
    """

    timeout = 60

    def setUp(self) -> Deferred[None]:
        return self.startNotifier(self, tls=True)  # type: ignore[no-any-return]

    @inlineCallbacks
    def startClient(
        self, listen: tuple[str, ...] = DEFAULT_LISTEN, **kwargs: Any
    ) -> Generator[Deferred[Any], Any, SubscriberClient]:
        client: SubscriberClient = yield startSubscriber(reactor, listen, **kwargs)
        self.addCleanup(client.stop)
        return client

    @inlineCallbacks
    def watchPresence(
        self, client: SubscriberClient, target: str, **kwargs: Any
    ) -> Generator[Deferred[Any], Any, None]:
        """
        Subscribe to presence at C{target}, see the first NOTIFY, a state
        change, and the final NOTIFY after unsubscribing (RFC 6665 section
        4.1.2.1, 4.1.3 and 4.1.2.3).
        """
        recorder = Recorder()
        subscription = client.subscriber.subscribe(
            target, "presence", recorder, expires=300, **kwargs
        )
        first = yield subscription.whenActive().addTimeout(WAIT, reactor)
        self.assertEqual(first.state, "active")
        self.assertEqual(first.event.eventType, "presence")
        self.assertEqual(subscription.state.name, "ACTIVE")
        self.assertEqual(recorder.started, [subscription])
        yield self.service.notifier.setState(
            "presence", "sip:alice@127.0.0.1", "application/pidf+xml", PIDF
        )
        changed = yield recorder.waitFor(lambda n: b"<basic>open</basic>" in n.body)
        self.assertEqual(changed.contentType, "application/pidf+xml")
        self.assertEqual(changed.state, "active")
        self.assertEqual(len(self.service.notifier.subscriptions()), 1)
        termination = yield subscription.unsubscribe().addTimeout(WAIT, reactor)
        self.assertIsNone(termination.failure)
        self.assertFalse(termination.willRetry)
        assert termination.notification is not None
        self.assertEqual(termination.notification.state, "terminated")
        self.assertEqual(self.service.notifier.subscriptions(), [])
        self.assertEqual(client.subscriber.subscriptions, [])

    @inlineCallbacks
    def test_rfc6665_4_1_udp(self) -> Generator[Deferred[Any], Any, None]:
        """
        Subscribe, notice a change, unsubscribe, over UDP.
        """
        client = yield self.startClient()
        yield self.watchPresence(client, f"sip:alice@127.0.0.1:{self.udpPort}")

    @inlineCallbacks
    def test_rfc6665_4_1_tcp(self) -> Generator[Deferred[Any], Any, None]:
        """
        The same over TCP, with no TCP listener of ours: the connection we
        open carries the NOTIFYs back (the notifier's flow reuse).
        """
        client = yield self.startClient()
        yield self.watchPresence(
            client, f"sip:alice@127.0.0.1:{self.tcpPort};transport=tcp"
        )

    @inlineCallbacks
    def test_rfc6665_4_1_tls(self) -> Generator[Deferred[Any], Any, None]:
        """
        The same over TLS, trusting the test's certificate authority.
        """
        from twisted.internet.ssl import Certificate, trustRootFromCertificates

        trustRoot = trustRootFromCertificates([Certificate.loadPEM(self.caPEM)])
        client = yield self.startClient(trustRoot=trustRoot)
        yield self.watchPresence(
            client, f"sip:alice@127.0.0.1:{self.tlsPort};transport=tls"
        )

    @inlineCallbacks
    def test_rfc6665_4_1_2_1_outboundProxy(
        self,
    ) -> Generator[Deferred[Any], Any, None]:
        """
        With a proxy, the SUBSCRIBE goes to the proxy (here the notifier
        itself, over TCP) with a preloaded Route.
        """
        client = yield self.startClient()
        yield self.watchPresence(
            client,
            "sip:alice@127.0.0.1",
            proxy=f"sip:127.0.0.1:{self.tcpPort};transport=tcp",
        )

    @inlineCallbacks
    def test_rfc6665_4_4_3_fetch(self) -> Generator[Deferred[Any], Any, None]:
        """
        C{fetch} polls (Expires: 0) and fires with the state from the
        NOTIFY; nothing stays subscribed.
        """
        yield self.service.notifier.setState(
            "presence", "sip:alice@127.0.0.1", "application/pidf+xml", PIDF
        )
        client = yield self.startClient()
        notification = yield client.subscriber.fetch(
            f"sip:alice@127.0.0.1:{self.udpPort}", "presence"
        ).addTimeout(WAIT, reactor)
        # The presence package composes the PIDF it sends anew.
        self.assertIn(b"<basic>open</basic>", notification.body)
        self.assertEqual(self.service.notifier.subscriptions(), [])

    @inlineCallbacks
    def test_rfc3261_22_2_digest(self) -> Generator[Deferred[Any], Any, None]:
        """
        A 401 with MD5 and SHA-256 challenges is answered with the SHA-256
        one (RFC 7616 section 3.7) and the subscription goes ahead.
        """
        wrapper = self.challenge("secret")
        client = yield self.startClient()
        yield self.watchPresence(
            client,
            f"sip:alice@127.0.0.1:{self.udpPort}",
            credentials=Credentials("alice", "secret"),
        )
        self.assertEqual(len(wrapper.challenged), 1)
        self.assertEqual(len(wrapper.authorized), 1)
        self.assertEqual(wrapper.authorized[0]["algorithm"], "SHA-256")
        self.assertEqual(wrapper.authorized[0]["username"], "alice")

    @inlineCallbacks
    def test_rfc3261_22_3_proxyDigest(self) -> Generator[Deferred[Any], Any, None]:
        """
        A 407 is answered with Proxy-Authorization.
        """
        wrapper = self.challenge("secret", code=407, algorithms=("MD5",))
        client = yield self.startClient()
        yield self.watchPresence(
            client,
            f"sip:alice@127.0.0.1:{self.udpPort}",
            credentials=Credentials("alice", "secret", realm="sipevents.test"),
        )
        self.assertEqual(len(wrapper.authorized), 1)
        self.assertEqual(wrapper.authorized[0]["algorithm"], "MD5")

    @inlineCallbacks
    def test_rfc3261_22_2_wrongPassword(self) -> Generator[Deferred[Any], Any, None]:
        """
        With the wrong password the second 401 ends the attempt: the
        subscription terminates with a failure carrying 401.
        """
        self.challenge("secret")
        client = yield self.startClient()
        subscription = client.subscriber.subscribe(
            f"sip:alice@127.0.0.1:{self.udpPort}",
            "presence",
            credentials=Credentials("alice", "wrong"),
        )
        termination = yield subscription.whenTerminated().addTimeout(WAIT, reactor)
        assert termination.failure is not None
        self.assertEqual(termination.failure.code, 401)

    @inlineCallbacks
    def test_rfc6665_4_1_2_stopUnsubscribes(
        self,
    ) -> Generator[Deferred[Any], Any, None]:
        """
        C{SubscriberClient.stop} unsubscribes every live subscription
        before closing: the notifier keeps none.
        """
        client = yield self.startClient()
        subscription = client.subscriber.subscribe(
            f"sip:alice@127.0.0.1:{self.udpPort}", "presence"
        )
        yield subscription.whenActive().addTimeout(WAIT, reactor)
        self.assertEqual(len(self.service.notifier.subscriptions()), 1)
        yield client.stop().addTimeout(WAIT, reactor)
        self.assertEqual(self.service.notifier.subscriptions(), [])
        self.assertEqual(client.transportLayer.listeners, [])
