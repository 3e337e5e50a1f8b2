# -*- test-case-name: tests.test_service_notifier -*-
"""
Tests for the notifier as the C{twistd sipevents} service wires it
(L{sipevents.app.service}, L{sipevents.app.tap}): the store, the event packages,
the publication manager and the notifier behind one user agent, their
start and stop order, the options that configure them, and whole
SUBSCRIBE / PUBLISH / NOTIFY exchanges with our own messages, in memory
and over loopback UDP and TCP.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import defer, protocol, reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from sipevents.app.service import STARTING_RETRY_AFTER, SIPEventsService
from sipevents.app.tap import DEFAULT_STORE, Options, makeService
from sipevents.interfaces import INotifier, IRequestHandler
from sipevents.notifier.notifier import Notifier
from sipevents.notifier.publication import PublicationManager
from sipevents.packages.messagesummary import MessageSummaryPackage
from sipevents.packages.presence import PresencePackage
from sipevents.records import ACTIVE, PublicationRecord, SubscriptionRecord
from sipevents.sip.message import Request, Response
from sipevents.sip.parser import StreamParser, parseMessage
from sipevents.store.memory import MemoryStore
from sipevents.store.sqlite import SQLiteStore
from sipevents.testing import (
    MemoryDatagramTransport,
    MemoryUDPReactor,
    responseTo,
    sipRequest,
)
from tests.test_client import NotifierMixin

UDP = "udp:5060:interface=127.0.0.1"
PIDF = "application/pidf+xml"
NOW = 1_800_000_000.0


def pidf(entity: str, basic: str = "open", note: str = "here") -> bytes:
    """
    A small PIDF document (RFC 3863).
    """
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="{entity}">'
        f'<tuple id="t1"><status><basic>{basic}</basic></status>'
        f"<note>{note}</note></tuple></presence>\n"
    ).encode()


def request(
    method: str,
    user: str = "alice",
    *,
    port: int = 5070,
    transport: str = "UDP",
    callId: str = "c1@127.0.0.1",
    fromTag: str = "w1",
    toTag: str | None = None,
    cseq: int = 1,
    event: str | None = "presence",
    expires: int | None = 600,
    uri: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
    contentType: str | None = None,
) -> bytes:
    """
    A request from a watcher or publisher at 127.0.0.1:C{port}, as bytes
    (L{sipRequest}); its branch follows from the method, CSeq and Call-ID,
    so that sending it twice is a retransmission.
    """
    fields: list[tuple[str, str]] = []
    if event is not None:
        fields.append(("Event", event))
    if expires is not None:
        fields.append(("Expires", str(expires)))
    fields.extend(headers)
    tcp = ";transport=tcp" if transport == "TCP" else ""
    return sipRequest(
        method,
        uri or f"sip:{user}@127.0.0.1:5060",
        branch=f"z9hG4bK{method}{cseq}x{callId.split('@')[0]}",
        sentBy=f"127.0.0.1:{port}",
        transport=transport,
        rport=True,
        fromURI="sip:watcher@127.0.0.1",
        fromTag=fromTag,
        toURI=f"sip:{user}@127.0.0.1",
        toTag=toTag,
        callId=callId,
        cseq=cseq,
        contact=f"<sip:watcher@127.0.0.1:{port}{tcp}>",
        headers=fields,
        body=body,
        contentType=contentType,
    ).toBytes()


def okFor(notify: Request) -> bytes:
    """
    The 200 a watcher answers a NOTIFY with (RFC 3261 section 8.2.6.2).
    """
    return responseTo(notify, 200).toBytes()


def record(
    key: str,
    expiresAt: float,
    resource: str = "sip:alice@127.0.0.1",
    localCSeq: int = 100,
    port: int = 5070,
) -> SubscriptionRecord:
    """
    A stored presence subscription, as a notifier would have left it
    before a restart.
    """
    return SubscriptionRecord(
        key=key,
        resource=resource,
        eventType="presence",
        eventId=None,
        eventParams=(),
        state=ACTIVE,
        expiresAt=expiresAt,
        watcher="sip:watcher@127.0.0.1",
        accept=(PIDF,),
        callId=f"{key}@127.0.0.1",
        localTag=key,
        remoteTag=f"r{key}",
        localUri=resource,
        remoteUri="sip:watcher@127.0.0.1",
        remoteTarget=f"sip:watcher@127.0.0.1:{port}",
        routeSet=(),
        localCSeq=localCSeq,
        remoteCSeq=1,
        flowTransport="UDP",
        flowHost="127.0.0.1",
        flowPort=port,
    )


class SlowStore(MemoryStore):
    """
    A L{MemoryStore} whose L{load} waits for the test, and which notes
    when it is loaded and closed.
    """

    def __init__(self) -> None:
        super().__init__()
        self.loading: Deferred[None] = Deferred()
        self.events: list[str] = []
        self.listenersWhenClosed: int | None = None
        self.service: SIPEventsService | None = None

    def load(self) -> Deferred[None]:
        self.events.append("load")
        return self.loading

    def close(self) -> Deferred[None]:
        self.events.append("close")
        if self.service is not None:
            self.listenersWhenClosed = len(self.service.transportLayer.listeners)
        return succeed(None)


class _InMemory(SynchronousTestCase):
    """
    The service on L{MemoryUDPReactor} (also its clock), started at
    C{NOW}; datagrams are handed to its UDP port and what it writes is
    parsed back.
    """

    def makeService(self, **kwargs: Any) -> SIPEventsService:
        self.reactor = MemoryUDPReactor()
        self.reactor.advance(NOW)
        kwargs.setdefault("packages", [PresencePackage(), MessageSummaryPackage()])
        service = SIPEventsService([UDP], reactor=self.reactor, **kwargs)
        self.service = service
        return service

    def start(self) -> None:
        self.service.startService()
        self.addCleanup(self.stop)
        [self.port] = self.reactor.udpPorts
        self.read = 0

    def stop(self) -> None:
        if self.service.running:
            self.successResultOf(self.service.stopService())

    def deliver(self, data: bytes, port: int = 5070) -> None:
        udp: MemoryDatagramTransport = self.port
        udp.protocol.datagramReceived(data, ("127.0.0.1", port))

    def sent(self) -> list[Request | Response]:
        """
        The messages the service has written since the last call.
        """
        written = self.port.written[self.read :]
        self.read = len(self.port.written)
        return [parseMessage(data) for data, _ in written]

    def exchange(self, data: bytes, port: int = 5070) -> list[Request | Response]:
        """
        Deliver C{data}, answer every NOTIFY that comes out with 200, and
        return what came out.
        """
        self.deliver(data, port)
        out = self.sent()
        for message in out:
            if isinstance(message, Request) and message.method == "NOTIFY":
                self.deliver(okFor(message), port)
        return out

    def publish(self, note: str) -> list[Request | Response]:
        """
        Exchange a PUBLISH of alice's presence with C{note}, from port 5090,
        and return what came out.
        """
        return self.exchange(
            request(
                "PUBLISH",
                callId="p1",
                fromTag="p1",
                port=5090,
                body=pidf("sip:alice@127.0.0.1", note=note),
                contentType=PIDF,
            ),
            port=5090,
        )

    def responses(self, messages: list[Request | Response]) -> list[Response]:
        return [m for m in messages if isinstance(m, Response)]

    def notifies(self, messages: list[Request | Response]) -> list[Request]:
        return [m for m in messages if isinstance(m, Request) and m.method == "NOTIFY"]


class WiringTests(_InMemory):
    """
    What L{SIPEventsService} builds and exposes.
    """

    def test_notifierProvidesINotifier(self) -> None:
        """
        C{service.notifier} is the application's L{INotifier}, and the
        notifier and publication manager share one store and registry.
        """
        service = self.makeService()
        self.assertIsInstance(service.notifier, Notifier)
        self.assertTrue(verifyObject(INotifier, service.notifier))
        self.assertTrue(verifyObject(IRequestHandler, service.notifier))
        self.assertIsInstance(service.publications, PublicationManager)
        self.assertIsInstance(service.store, MemoryStore)
        self.assertIs(service.notifier.store, service.store)
        self.assertIs(service.publications.store, service.store)
        self.assertIs(service.notifier.registry, service.registry)
        self.assertIs(service.publications.registry, service.registry)
        self.assertEqual(
            service.publications.onStateChanged, service.notifier.stateChanged
        )

    def test_defaultPackagesAreInstalledPlugins(self) -> None:
        """
        Without C{packages}, every installed event package is served: the
        built-in presence and message-summary among them.
        """
        service = SIPEventsService([UDP], reactor=MemoryUDPReactor())
        self.assertIn("presence", service.registry.eventTypes())
        self.assertIn("message-summary", service.registry.eventTypes())

    def test_rfc6665_4_4_4_allowEventsBeforeReady(self) -> None:
        """
        OPTIONS lists SUBSCRIBE and PUBLISH in Allow and the packages in
        Allow-Events from the moment the service listens (RFC 3261 section
        11.2, RFC 6665 section 4.4.4).
        """
        store = SlowStore()
        self.makeService(store=store)
        self.start()
        self.deliver(request("OPTIONS", event=None, expires=None))
        [response] = self.responses(self.sent())
        self.assertEqual(response.code, 200)
        self.assertIn("SUBSCRIBE", response.headers.get("Allow") or "")
        self.assertIn("PUBLISH", response.headers.get("Allow") or "")
        self.assertEqual(
            response.headers.get("Allow-Events"), "presence, message-summary"
        )

    def test_expiresAndCompatReachNotifierAndPublications(self) -> None:
        """
        C{minExpires} and C{maxExpires} apply to subscriptions and
        publications alike; C{rfc3265Compat} reaches the notifier.
        """
        service = self.makeService(minExpires=5, maxExpires=500, rfc3265Compat=True)
        self.assertEqual(service.notifier.minExpires, 5)
        self.assertEqual(service.notifier.maxExpires, 500)
        self.assertTrue(service.notifier.rfc3265Compat)
        self.assertEqual(service.publications.minExpires, 5)
        self.assertEqual(service.publications.maxExpires, 500)


class StartStopTests(_InMemory):
    """
    The start and stop order (see L{sipevents.app.service}).
    """

    def test_rfc3261_21_5_4_unavailableWhileLoading(self) -> None:
        """
        While the store loads, SUBSCRIBE and PUBLISH get 503 with
        Retry-After (RFC 3261 section 21.5.4), and nothing is stored; once
        it is loaded, they are served.
        """
        store = SlowStore()
        service = self.makeService(store=store)
        self.start()
        self.assertFalse(service.ready)
        self.deliver(request("SUBSCRIBE"))
        self.deliver(
            request(
                "PUBLISH",
                callId="p1",
                body=pidf("sip:alice@127.0.0.1"),
                contentType=PIDF,
            )
        )
        answers = self.responses(self.sent())
        self.assertEqual([r.code for r in answers], [503, 503])
        for answer in answers:
            self.assertEqual(
                answer.headers.get("Retry-After"), str(STARTING_RETRY_AFTER)
            )
        self.assertEqual(store.allSubscriptions(), [])
        self.assertEqual(store.allPublications(), [])
        store.loading.callback(None)
        self.assertTrue(service.ready)
        assert service.whenReady is not None
        self.assertEqual(self.successResultOf(service.whenReady), 0)
        out = self.exchange(request("SUBSCRIBE", callId="c2"))
        self.assertEqual([r.code for r in self.responses(out)], [200])
        self.assertEqual(len(self.notifies(out)), 1)

    def test_listenersOpenBeforeTheStoreLoads(self) -> None:
        """
        The listeners open in C{startService} itself, so that a port in use
        stops twistd at once; the store is loaded (once, by the notifier)
        after that.
        """
        store = SlowStore()
        self.makeService(store=store)
        self.start()
        self.assertEqual(len(self.service.transportLayer.listeners), 1)
        self.assertEqual(store.events, ["load"])
        store.loading.callback(None)
        self.assertEqual(store.events, ["load"])

    def test_restoresAndLogs(self) -> None:
        """
        On start-up the stored subscriptions and publications are taken
        up; one that expired while the server was down is dropped without
        a NOTIFY (issue 3 item 7); the log says what listens and how many
        were restored. A PUBLISH then NOTIFYs the restored subscription in
        its dialog with a CSeq at its stored high-water mark or above (RFC
        6665 section 4.2.2, RFC 3261 section 12.2.1.1).
        """
        store = MemoryStore()
        store.putSubscription(record("live", NOW + 300, localCSeq=100))
        store.putSubscription(record("gone", NOW - 1, resource="sip:bob@127.0.0.1"))
        store.putPublication(
            PublicationRecord(
                etag="e1",
                resource="sip:carol@127.0.0.1",
                eventType="presence",
                contentType=PIDF,
                body=pidf("sip:carol@127.0.0.1"),
                expiresAt=NOW + 300,
            )
        )
        self.makeService(store=store, storeDescription="memory")
        with capturedLogs() as events:
            self.start()
        formats = [e["log_format"] for e in events]
        listening = [i for i, f in enumerate(formats) if f.startswith("Listening on")]
        [serving] = [e for e in events if e["log_format"].startswith("Serving")]
        self.assertTrue(listening)
        self.assertGreater(events.index(serving), max(listening))
        self.assertEqual(serving["subscriptions"], 1)
        self.assertEqual(serving["publications"], 1)
        self.assertEqual(serving["store"], "memory")
        self.assertEqual(serving["packages"], "presence, message-summary")
        self.assertEqual([r.key for r in store.allSubscriptions()], ["live"])
        self.assertEqual(self.sent(), [])

        out = self.publish("back")
        self.assertEqual([r.code for r in self.responses(out)], [200])
        [notify] = self.notifies(out)
        self.assertEqual(notify.callId, "live@127.0.0.1")
        assert notify.fromAddr is not None and notify.toAddr is not None
        assert notify.cseq is not None
        self.assertEqual(notify.fromAddr.tag, "live")
        self.assertEqual(notify.toAddr.tag, "rlive")
        self.assertGreaterEqual(notify.cseq.number, 100)
        self.assertIn(b"back", notify.body)

    def test_storeLoadFailure(self) -> None:
        """
        When the store cannot be loaded, the failure is logged and given to
        C{onStartFailure} (twistd stops the reactor), C{whenReady} fails,
        and SUBSCRIBE keeps getting 503.
        """
        store = SlowStore()
        failures: list[Failure] = []
        self.makeService(store=store, onStartFailure=failures.append)
        self.start()
        store.loading.errback(RuntimeError("disk on fire"))
        self.assertEqual(len(failures), 1)
        assert self.service.whenReady is not None
        self.failureResultOf(self.service.whenReady, RuntimeError)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.deliver(request("SUBSCRIBE"))
        [answer] = self.responses(self.sent())
        self.assertEqual(answer.code, 503)

    def test_stopClosesStoreAfterListeners(self) -> None:
        """
        Stopping closes the listeners, then the store (which writes what is
        pending); every timer is gone, the notifier's and the transactions'
        (a NOTIFY answered over UDP leaves Timer K, RFC 3261 section
        17.1.2.2); SUBSCRIBE is no longer served.
        """
        store = SlowStore()
        service = self.makeService(store=store)
        store.service = service
        self.start()
        store.loading.callback(None)
        self.exchange(request("SUBSCRIBE"))
        self.assertTrue(self.reactor.getDelayedCalls())
        self.successResultOf(service.stopService())
        self.assertEqual(store.events, ["load", "close"])
        self.assertEqual(store.listenersWhenClosed, 0)
        self.assertFalse(service.ready)
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        # The subscription stays stored for the next start.
        self.assertEqual(len(store.allSubscriptions()), 1)


class NotifierThroughServiceTests(_InMemory):
    """
    Whole exchanges through the service's user agent.
    """

    def setUp(self) -> None:
        self.makeService(
            packages=[PresencePackage(minNotifyInterval=0.0), MessageSummaryPackage()]
        )
        self.start()

    def subscribe(self, callId: str = "c1", port: int = 5070) -> Response:
        out = self.exchange(request("SUBSCRIBE", callId=callId), port)
        [ok] = self.responses(out)
        self.assertEqual(ok.code, 200)
        [notify] = self.notifies(out)
        self.assertEqual(notify.headers.get("Subscription-State"), "active;expires=600")
        return ok

    def test_rfc6665_4_2_subscribePublishNotify(self) -> None:
        """
        A SUBSCRIBE gets 200 and a NOTIFY; a PUBLISH gets 200 with SIP-ETag
        (RFC 3903 section 6) and the watcher a NOTIFY carrying the
        published document (RFC 6665 section 4.2.2).
        """
        self.subscribe()
        out = self.publish("lunch")
        [ok] = self.responses(out)
        self.assertEqual(ok.code, 200)
        self.assertTrue(ok.headers.get("SIP-ETag"))
        [notify] = self.notifies(out)
        self.assertIn(b"lunch", notify.body)
        self.assertEqual(notify.headers.get("Content-Type"), PIDF)

    def test_rfc6665_4_2_1_1_badEventListsServedPackages(self) -> None:
        """
        A SUBSCRIBE for a package not served gets 489 with Allow-Events
        listing the served ones (RFC 6665 sections 4.2.1.1 and 8.3.1).
        """
        self.deliver(request("SUBSCRIBE", event="dialog"))
        [answer] = self.responses(self.sent())
        self.assertEqual(answer.code, 489)
        self.assertEqual(
            answer.headers.get("Allow-Events"), "presence, message-summary"
        )

    def test_applicationStateAndTerminate(self) -> None:
        """
        The application drives NOTIFYs through C{service.notifier}:
        C{setState} NOTIFYs the watchers of the resource with the new
        state, and C{terminate} ends their subscriptions with a final
        NOTIFY carrying the reason (RFC 6665 section 4.1.3).
        """
        self.subscribe()
        self.successResultOf(
            self.service.notifier.setState(
                "presence",
                "sip:alice@127.0.0.1",
                PIDF,
                pidf("sip:alice@127.0.0.1", note="app"),
            )
        )
        [notify] = self.notifies(self.sent())
        self.assertIn(b"app", notify.body)
        self.deliver(okFor(notify))
        count = self.service.notifier.terminate(
            resource="sip:alice@127.0.0.1", reason="deactivated", retryAfter=30
        )
        self.assertEqual(count, 1)
        [final] = self.notifies(self.sent())
        self.assertEqual(
            final.headers.get("Subscription-State"),
            "terminated;reason=deactivated;retry-after=30",
        )
        self.assertEqual(self.service.notifier.subscriptions(), [])


class OptionsTests(SynchronousTestCase):
    """
    The notifier's options of C{twistd sipevents} (L{sipevents.app.tap}).
    """

    def parse(self, *argv: str) -> Options:
        options = Options()
        options.parseOptions(list(argv))
        return options

    def test_defaults(self) -> None:
        """
        By default the store is C{sqlite:sipevents.sqlite} in the working
        directory, every installed package is served, the packages' own
        expiry limits apply and RFC 3265 compatibility is off.
        """
        options = self.parse()
        self.assertEqual(options["store"], DEFAULT_STORE)
        self.assertEqual(DEFAULT_STORE, "sqlite:sipevents.sqlite")
        names = [package.name for package in options["packages"]]
        self.assertIn("presence", names)
        self.assertIn("message-summary", names)
        self.assertIsNone(options["min-expires"])
        self.assertIsNone(options["max-expires"])
        self.assertFalse(options["rfc3265-compat"])

    def test_store(self) -> None:
        """
        C{--store} takes C{memory}, C{sqlite} and C{sqlite:PATH}.
        """
        self.assertEqual(self.parse("--store", "memory")["store"], "memory")
        path = os.path.join(self.mktemp() + "-dir")
        os.makedirs(path)
        store = os.path.join(path, "x.sqlite")
        self.assertEqual(
            self.parse("--store", f"sqlite:{store}")["store"], f"sqlite:{store}"
        )
        self.assertEqual(self.parse("--store", "sqlite")["store"], "sqlite")

    def test_badStore(self) -> None:
        """
        An unknown store, an empty path, or a path in a missing folder is a
        usage error that says what is wrong.
        """
        for bad in ("redis", "sqlite:", "memory:x"):
            error = self.assertRaises(UsageError, self.parse, "--store", bad)
            self.assertIn("--store", str(error))
        missing = os.path.join(self.mktemp(), "nowhere", "x.sqlite")
        error = self.assertRaises(
            UsageError, self.parse, "--store", f"sqlite:{missing}"
        )
        self.assertIn("does not exist", str(error))

    def test_package(self) -> None:
        """
        C{--package} is repeatable and keeps the order given; the
        packages are the installed plugins of those names.
        """
        options = self.parse("--package", "presence", "--package", "message-summary")
        self.assertEqual(
            [p.name for p in options["packages"]], ["presence", "message-summary"]
        )
        options = self.parse("--package", "presence")
        self.assertEqual([p.name for p in options["packages"]], ["presence"])

    def test_unknownPackage(self) -> None:
        """
        An unknown package is a usage error naming it and the installed
        ones.
        """
        error = self.assertRaises(UsageError, self.parse, "--package", "weather")
        self.assertIn("weather", str(error))
        self.assertIn("presence", str(error))

    def test_expires(self) -> None:
        """
        C{--min-expires} and C{--max-expires} take whole seconds above 0,
        the minimum not above the maximum.
        """
        options = self.parse("--min-expires", "30", "--max-expires", "7200")
        self.assertEqual((options["min-expires"], options["max-expires"]), (30, 7200))
        for bad in ("0", "-5", "1.5", "soon"):
            self.assertRaises(UsageError, self.parse, "--min-expires", bad)
            self.assertRaises(UsageError, self.parse, "--max-expires", bad)
        error = self.assertRaises(
            UsageError, self.parse, "--min-expires", "600", "--max-expires", "60"
        )
        self.assertIn("--min-expires", str(error))

    def test_helpExplainsNotifierOptions(self) -> None:
        """
        C{--help} explains every notifier option in a sentence or more,
        with its default.
        """
        usage = " ".join(str(Options()).split())
        for name in ("--store=", "--package=", "--min-expires=", "--max-expires="):
            self.assertIn(name, usage)
        self.assertIn("--rfc3265-compat", usage)
        self.assertIn("sqlite:sipevents.sqlite", usage)
        self.assertIn("every installed package", usage)
        for flag in Options.optFlags:
            self.assertGreater(len(flag[2].split()), 8)

    def test_makeService(self) -> None:
        """
        L{makeService} gives the service the store, packages, expiry
        limits and compatibility mode the options name.
        """
        folder = self.mktemp()
        os.makedirs(folder)
        path = os.path.join(folder, "store.sqlite")
        options = self.parse(
            "--listen",
            "udp:0:interface=127.0.0.1",
            "--store",
            f"sqlite:{path}",
            "--package",
            "presence",
            "--min-expires",
            "10",
            "--max-expires",
            "100",
            "--rfc3265-compat",
        )
        service = makeService(options, reactor=MemoryUDPReactor())
        self.assertIsInstance(service.store, SQLiteStore)
        assert isinstance(service.store, SQLiteStore)
        self.assertEqual(service.store.path, path)
        self.assertEqual(service.storeDescription, f"sqlite:{path}")
        self.assertEqual(service.registry.eventTypes(), ["presence"])
        self.assertEqual(service.notifier.minExpires, 10)
        self.assertEqual(service.notifier.maxExpires, 100)
        self.assertTrue(service.notifier.rfc3265Compat)
        self.assertIsNotNone(service.onStartFailure)

    def test_startFailureStopsTheReactor(self) -> None:
        """
        When the store cannot be loaded, the service L{makeService} makes
        stops the reactor (at once if it runs, else as soon as it does), so
        that C{twistd} does not run without its subscriptions.
        """
        reactor = MemoryUDPReactor()
        service = makeService(self.parse("--store", "memory"), reactor=reactor)
        assert service.onStartFailure is not None
        service.onStartFailure(Failure(RuntimeError("disk on fire")))
        self.assertFalse(reactor.hasStopped)
        self.assertEqual(len(reactor.whenRunningHooks), 1)
        reactor.running = True
        service.onStartFailure(Failure(RuntimeError("disk on fire")))
        self.assertTrue(reactor.hasStopped)

    def test_makeServiceMemory(self) -> None:
        """
        C{--store memory} makes a L{MemoryStore}.
        """
        service = makeService(
            self.parse("--store", "memory"), reactor=MemoryUDPReactor()
        )
        self.assertIsInstance(service.store, MemoryStore)


class _Collector(protocol.DatagramProtocol):
    """
    A watcher on a UDP socket: keeps every message received, answers each
    NOTIFY 200.
    """

    def __init__(self) -> None:
        self.messages: list[Request | Response] = []

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        message = parseMessage(data)
        self.messages.append(message)
        if isinstance(message, Request) and message.method == "NOTIFY":
            self.transport.write(okFor(message), addr)  # type: ignore[union-attr]


class _StreamCollector(protocol.Protocol):
    """
    A watcher on a TCP connection: frames what arrives, answers each
    NOTIFY 200 on the connection.
    """

    def __init__(self) -> None:
        self.parser = StreamParser()
        self.messages: list[Any] = []

    def dataReceived(self, data: bytes) -> None:
        for message in self.parser.feed(data):
            self.messages.append(message)
            if isinstance(message, Request) and message.method == "NOTIFY":
                self.transport.write(okFor(message))  # type: ignore[union-attr]


class LoopbackTests(NotifierMixin, TestCase):
    """
    The service on the real reactor, over loopback UDP and TCP, with our
    own watcher and publisher.
    """

    timeout = 30

    def setUp(self) -> Deferred[None]:
        return self.startNotifier(self)  # type: ignore[no-any-return]

    @defer.inlineCallbacks
    def waitFor(self, messages: list[Any], count: int) -> Any:
        """
        Wait (at most 5 s) until C{messages} holds C{count} messages.
        """
        clock: IReactorTime = reactor  # type: ignore[assignment]
        for _ in range(100):
            if len(messages) >= count:
                return
            yield deferLater(clock, 0.05, lambda: None)
        self.fail(f"got {len(messages)} messages, wanted {count}: {messages!r}")

    @defer.inlineCallbacks
    def test_rfc6665_4_2_overUDP(self) -> Any:
        """
        Over UDP: SUBSCRIBE -> 200 and NOTIFY (to the Contact); PUBLISH ->
        200 and a NOTIFY with the published document; unSUBSCRIBE -> 200
        and NOTIFY C{terminated;reason=timeout} (RFC 6665 sections 4.2.1
        and 4.2.2, RFC 3903 section 6).
        """
        watcher = _Collector()
        port = reactor.listenUDP(0, watcher, interface="127.0.0.1")  # type: ignore[attr-defined]
        self.addCleanup(port.stopListening)
        local = port.getHost().port
        server = ("127.0.0.1", self.udpPort)
        port.write(request("SUBSCRIBE", port=local), server)
        yield self.waitFor(watcher.messages, 2)
        [ok] = [m for m in watcher.messages if isinstance(m, Response)]
        self.assertEqual(ok.code, 200)
        assert ok.toAddr is not None
        toTag = ok.toAddr.tag
        port.write(
            request(
                "PUBLISH",
                port=local,
                callId="p1",
                fromTag="p1",
                body=pidf("sip:alice@127.0.0.1", note="udp"),
                contentType=PIDF,
            ),
            server,
        )
        yield self.waitFor(watcher.messages, 4)
        notifies = [
            m
            for m in watcher.messages
            if isinstance(m, Request) and m.method == "NOTIFY"
        ]
        self.assertIn(b"udp", notifies[-1].body)
        port.write(
            request("SUBSCRIBE", port=local, toTag=toTag, cseq=2, expires=0), server
        )
        yield self.waitFor(watcher.messages, 6)
        final = [
            m
            for m in watcher.messages
            if isinstance(m, Request) and m.method == "NOTIFY"
        ][-1]
        self.assertEqual(
            final.headers.get("Subscription-State"), "terminated;reason=timeout"
        )
        self.assertEqual(self.service.notifier.subscriptions(), [])

    @defer.inlineCallbacks
    def test_rfc6665_4_2_overTCP(self) -> Any:
        """
        Over TCP the 200 and the NOTIFYs come back on the connection the
        SUBSCRIBE came on (RFC 3261 section 18.2.2; the notifier reuses the
        flow), and an application C{setState} is NOTIFYed there too.
        """
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.tcpPort, timeout=5)
        watcher = yield endpoint.connect(protocol.Factory.forProtocol(_StreamCollector))
        self.addCleanup(watcher.transport.loseConnection)
        local = watcher.transport.getHost().port
        watcher.transport.write(request("SUBSCRIBE", port=local, transport="TCP"))
        yield self.waitFor(watcher.messages, 2)
        self.assertEqual(
            sorted(type(m).__name__ for m in watcher.messages), ["Request", "Response"]
        )
        yield self.service.notifier.setState(
            "presence",
            "sip:alice@127.0.0.1",
            PIDF,
            pidf("sip:alice@127.0.0.1", note="tcp"),
        )
        yield self.waitFor(watcher.messages, 3)
        self.assertIn(b"tcp", watcher.messages[-1].body)
