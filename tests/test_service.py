# -*- test-case-name: tests.test_service -*-
"""
Tests for L{sipevents.app.service}: the service on an in-memory reactor, and on
the real one with loopback ports.
"""

from __future__ import annotations

import gc
import socket
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase, TestCase

from sipevents.app.service import GC_THRESHOLDS, SIPEventsService, tuneGarbageCollector
from sipevents.config import TimerConfig
from sipevents.sip.message import Response
from sipevents.sip.parser import parseMessage
from sipevents.testing import MemoryDatagramTransport, MemoryUDPReactor

OPTIONS = (
    b"OPTIONS sip:service@127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-service-1;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:test@127.0.0.1>;tag=svc1\r\n"
    b"To: <sip:service@127.0.0.1>\r\n"
    b"Call-ID: service-1@127.0.0.1\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Content-Length: 0\r\n\r\n"
)

UDP = "udp:5060:interface=127.0.0.1"
TCP = "tcp:5060:interface=127.0.0.1"


class BusyUDPReactor(MemoryUDPReactor):
    """
    A L{MemoryUDPReactor} whose UDP port 5060 is taken.
    """

    def listenUDP(
        self,
        port: int,
        protocol: DatagramProtocol,
        interface: str = "",
        maxPacketSize: int = 8192,
    ) -> MemoryDatagramTransport:
        if port == 5060:
            raise CannotListenError(interface, port, OSError("Address in use"))
        return super().listenUDP(port, protocol, interface, maxPacketSize)


class ServiceTests(SynchronousTestCase):
    """
    L{SIPEventsService} on L{MemoryUDPReactor}.
    """

    def setUp(self) -> None:
        self.reactor = MemoryUDPReactor()
        self.service = SIPEventsService([UDP, TCP], reactor=self.reactor)

    def test_wiring(self) -> None:
        """
        The transport layer delivers to the user agent, which sends through
        the transport layer, and both take time from the reactor.
        """
        self.assertIs(self.service.transportLayer.receiver, self.service.userAgent)
        self.assertIs(
            self.service.userAgent.transportLayer, self.service.transportLayer
        )
        self.assertIs(self.service.userAgent.clock, self.reactor)

    def test_clock(self) -> None:
        """
        Timers may run on a separate clock, and the timer values reach the
        transaction layer.
        """
        clock = Clock()
        timers = TimerConfig(T1=0.1)
        service = SIPEventsService(
            [UDP], reactor=self.reactor, clock=clock, timers=timers
        )
        self.assertIs(service.userAgent.clock, clock)
        self.assertIs(service.userAgent.transactions.clock, clock)
        self.assertEqual(service.userAgent.transactions.timers, timers)

    def test_tuneGCWhenRunning(self) -> None:
        """
        With C{tuneGC}, the service tunes the garbage collector once the
        reactor runs; by default it leaves it alone.
        """
        self.service.startService()
        self.assertEqual(self.reactor.whenRunningHooks, [])
        self.service.stopService()
        service = SIPEventsService([UDP], reactor=self.reactor, tuneGC=True)
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual(
            self.reactor.whenRunningHooks, [(tuneGarbageCollector, (), {})]
        )

    def test_tuneGarbageCollector(self) -> None:
        """
        L{tuneGarbageCollector} freezes the objects that exist and sets the
        thresholds.
        """
        thresholds = gc.get_threshold()
        self.addCleanup(gc.set_threshold, *thresholds)
        self.addCleanup(gc.unfreeze)
        tuneGarbageCollector((5000, 11, 12))
        self.assertEqual(gc.get_threshold(), (5000, 11, 12))
        self.assertGreater(gc.get_freeze_count(), 0)
        self.assertEqual(GC_THRESHOLDS[0], 10_000)

    def test_badDescription(self) -> None:
        """
        A description that cannot be parsed is refused when the service is
        made, not when it starts.
        """
        self.assertRaises(
            ValueError, SIPEventsService, ["sctp:5060"], reactor=self.reactor
        )

    def test_startServiceListens(self) -> None:
        """
        Starting the service listens on every description and logs each
        one, with the address bound.
        """
        with capturedLogs() as events:
            self.service.startService()
        [udpPort] = self.reactor.udpPorts
        self.assertEqual((udpPort.host, udpPort.port), ("127.0.0.1", 5060))
        [(port, _, _, interface)] = self.reactor.tcpServers
        self.assertEqual((port, interface), (5060, "127.0.0.1"))
        listening = [e for e in events if e["log_format"].startswith("Listening on")]
        self.assertEqual([e["description"] for e in listening], [UDP, TCP])
        self.assertEqual(listening[0]["address"], "UDP 127.0.0.1:5060")
        assert self.service.whenListening is not None
        ports = self.successResultOf(self.service.whenListening)
        self.assertEqual(len(ports), 2)
        self.assertEqual(self.service.ports, ports)

    def test_childrenStartFirst(self) -> None:
        """
        Child services (stores, notifier) are running before the listeners
        open.
        """
        child = Service()  # type: ignore[no-untyped-call]
        runningWhenListening: list[bool] = []
        original = self.service.transportLayer.listen

        def listen(description: str) -> Deferred[IListeningPort]:
            runningWhenListening.append(bool(child.running))
            return original(description)

        self.service.transportLayer.listen = listen  # type: ignore[method-assign]
        child.setServiceParent(self.service)  # type: ignore[no-untyped-call]
        self.service.startService()
        self.assertEqual(runningWhenListening, [True, True])

    def test_rfc3261_11_optionsAnswered(self) -> None:
        """
        A datagram arriving on the listening socket reaches the user agent,
        and its answer goes back from that socket (RFC 3261 section 18.2.2,
        RFC 3581 section 4).
        """
        self.service.startService()
        [udpPort] = self.reactor.udpPorts
        udpPort.protocol.datagramReceived(OPTIONS, ("127.0.0.1", 5070))
        [(data, address)] = udpPort.written
        self.assertEqual(address, ("127.0.0.1", 5070))
        response = parseMessage(data)
        assert isinstance(response, Response)
        self.assertEqual(response.code, 200)

    def test_stopService(self) -> None:
        """
        Stopping the service closes the listeners and cancels every
        transaction timer.
        """
        self.service.startService()
        [udpPort] = self.reactor.udpPorts
        udpPort.protocol.datagramReceived(OPTIONS, ("127.0.0.1", 5070))
        self.assertTrue(self.reactor.getDelayedCalls())
        self.successResultOf(self.service.stopService())
        self.assertFalse(self.service.running)
        self.assertFalse(udpPort.listening)
        self.assertEqual(self.service.transportLayer.listeners, [])
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_listenFailureRaises(self) -> None:
        """
        When a port cannot be bound, starting fails with that error (so
        C{twistd} stops instead of running deaf), the error is logged, the
        listeners already open are closed and the children stopped.
        """
        reactor = BusyUDPReactor()
        service = SIPEventsService(
            ["udp:5061:interface=127.0.0.1", UDP], reactor=reactor
        )
        child = Service()  # type: ignore[no-untyped-call]
        child.setServiceParent(service)  # type: ignore[no-untyped-call]
        self.assertRaises(CannotListenError, service.startService)
        self.assertEqual(len(self.flushLoggedErrors(CannotListenError)), 1)
        self.assertFalse(service.running)
        self.assertFalse(child.running)
        self.assertFalse(reactor.udpPorts[0].listening)
        self.assertEqual(service.transportLayer.listeners, [])


class LoopbackServiceTests(TestCase):
    """
    L{SIPEventsService} on the real reactor, with loopback ports.
    """

    @inlineCallbacks
    def test_listensOnLoopback(self) -> Any:
        """
        With port 0, the service binds free UDP and TCP ports on 127.0.0.1;
        stopping it frees them.
        """
        service = SIPEventsService(
            ["udp:0:interface=127.0.0.1", "tcp:0:interface=127.0.0.1"]
        )
        service.startService()
        assert service.whenListening is not None
        ports = yield service.whenListening
        addresses = [port.getHost() for port in ports]
        self.assertEqual([a.host for a in addresses], ["127.0.0.1", "127.0.0.1"])
        self.assertTrue(all(a.port > 0 for a in addresses))
        yield service.stopService()
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(probe.close)
        probe.bind(("127.0.0.1", addresses[1].port))

    def test_portInUse(self) -> None:
        """
        A TCP port already taken makes C{startService} raise
        L{CannotListenError}.
        """
        taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        service = SIPEventsService([f"tcp:{port}:interface=127.0.0.1"])
        self.assertRaises(CannotListenError, service.startService)
        self.flushLoggedErrors(CannotListenError)
