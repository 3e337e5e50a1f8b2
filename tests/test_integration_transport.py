"""
Integration tests for L{sipevents.sip.transport} over real loopback sockets:
UDP, TCP and TLS on 127.0.0.1 and ::1 (skipped without an IPv6 loopback).

Every socket binds port 0 on loopback and is closed in cleanup. Messages
copied from RFC 4475 carry documentation addresses in their Vias: they are
rewritten to 127.0.0.1 before sending, and the receiving layer is guarded so
that nothing it sends or resolves can leave loopback.
"""

from __future__ import annotations

import ipaddress
import random
import re
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, fail, inlineCallbacks, succeed
from twisted.internet.endpoints import (
    SSL4ServerEndpoint,
    TCP4ClientEndpoint,
    connectProtocol,
)
from twisted.internet.protocol import DatagramProtocol, Protocol, connectionDone
from twisted.internet.ssl import (
    Certificate,
    PrivateCertificate,
    trustRootFromCertificates,
)
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from sipevents.interfaces import IMessageReceiver
from sipevents.sip.addresses import Source, Target
from sipevents.sip.message import Message, Request, Response
from sipevents.sip.routing import formatHostPort, normalizeHost
from sipevents.sip.transport import TransportError, TransportLayer
from sipevents.testing import (
    MemoryReceiver,
    buildRequest,
    buildResponse,
    makeCertificates,
    newBranch,
    writeCertificates,
)

DATA = Path(__file__).parent / "data" / "rfc4475"

#: How long any single wait may take before the test fails.
WAIT = 10.0


def _hasIPv6Loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


HAS_IPV6 = _hasIPv6Loopback()
NO_IPV6 = None if HAS_IPV6 else "No IPv6 loopback on this machine"


def _isLoopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(normalizeHost(host)).is_loopback
    except ValueError:
        return False


@implementer(IMessageReceiver)
class WaitingReceiver(MemoryReceiver):
    """
    A L{MemoryReceiver} whose test can wait for a message.
    """

    def __init__(self) -> None:
        super().__init__()
        self._waiters: list[tuple[Callable[[Message], bool], Deferred[Any]]] = []

    def messageReceived(self, message: Message, source: Source) -> None:
        super().messageReceived(message, source)
        for waiter in list(self._waiters):
            predicate, d = waiter
            if predicate(message):
                self._waiters.remove(waiter)
                d.callback((message, source))

    def waitFor(
        self, predicate: Callable[[Message], bool]
    ) -> Deferred[tuple[Message, Source]]:
        """
        Fire with the first message (already received or to come) that
        C{predicate} accepts; fail after L{WAIT} seconds.
        """
        for message, source in self.received:
            if predicate(message):
                return succeed((message, source))
        d: Deferred[tuple[Message, Source]] = Deferred()
        self._waiters.append((predicate, d))
        return d.addTimeout(WAIT, reactor)

    def waitForCallId(self, callId: str | None) -> Deferred[tuple[Message, Source]]:
        return self.waitFor(lambda m: m.callId == callId)


class _Collector(DatagramProtocol):
    """
    A raw UDP socket that records what it receives.
    """

    noisy = False

    def __init__(self) -> None:
        self.datagrams: list[tuple[bytes, Any]] = []

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self.datagrams.append((datagram, addr))


class _RawStream(Protocol):
    """
    A raw TCP client that records what it receives and when it closes.
    """

    def __init__(self) -> None:
        self.data = b""
        self.lost: Deferred[None] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.lost.callback(None)


_VIA_LINE = re.compile(rb"^(?:via|v)[ \t]*:.*$", re.IGNORECASE | re.MULTILINE)
_IPV4 = re.compile(rb"\b\d{1,3}(?:\.\d{1,3}){3}\b")
_MADDR = re.compile(rb"maddr[ \t]*=[ \t]*[^;,\s]+", re.IGNORECASE)


def _loopbackVias(data: bytes) -> bytes:
    """
    Rewrite every IPv4 address and maddr on Via lines to 127.0.0.1 (RFC
    4475 messages use documentation addresses, DESIGN "Safety of tests").
    """

    def fix(match: re.Match[bytes]) -> bytes:
        line = _IPV4.sub(b"127.0.0.1", match.group(0))
        return _MADDR.sub(b"maddr=127.0.0.1", line)

    return _VIA_LINE.sub(fix, data)


class _LayersMixin(TestCase):
    """
    Layers on the real reactor, stopped in cleanup.
    """

    def makeLayer(self, **kwargs: Any) -> tuple[TransportLayer, WaitingReceiver]:
        receiver = WaitingReceiver()
        layer = TransportLayer(reactor, receiver, **kwargs)
        self.addCleanup(layer.stopListening)
        return layer, receiver

    def guard(
        self, layer: TransportLayer, redirect: tuple[str, int] | None = None
    ) -> tuple[list[str], list[tuple[str, int]]]:
        """
        Keep C{layer} on loopback: it may not resolve host names nor open
        connections (those attempts are refused), and a UDP response goes
        to C{redirect} instead of where its Via says, or is refused.

        @return: the refused destinations that were not loopback, and every
            UDP destination that was asked for.
        """
        offLoopback: list[str] = []
        asked: list[tuple[str, int]] = []
        sendDatagram = layer._sendDatagramResponse

        def guardedDatagram(response: Any, host: str, port: int, *a: Any) -> Any:
            asked.append((host, port))
            if not _isLoopback(host):
                offLoopback.append(host)
            if redirect is None:
                raise TransportError("guarded")
            return sendDatagram(response, redirect[0], redirect[1], *a)

        def guardedConnect(key: tuple[str, str, int], *a: Any) -> Any:
            if not _isLoopback(key[1]):
                offLoopback.append(key[1])
            raise TransportError("guarded")

        def guardedResolve(host: str) -> Any:
            if not _isLoopback(host):
                offLoopback.append(host)
                return fail(TransportError("guarded"))
            return succeed(normalizeHost(host))

        self.patch(layer, "_sendDatagramResponse", guardedDatagram)
        self.patch(layer, "_connect", guardedConnect)
        self.patch(layer, "_resolve", guardedResolve)
        return offLoopback, asked

    @inlineCallbacks
    def roundTrip(
        self,
        server: TransportLayer,
        serverReceiver: WaitingReceiver,
        client: TransportLayer,
        clientReceiver: WaitingReceiver,
        target: Target,
    ) -> Any:
        """
        Send an OPTIONS from C{client} to C{server} and a 200 back.

        @return: a L{Deferred} firing with the request and response as
            received, with their sources.
        """
        request = buildRequest(
            "OPTIONS",
            f"sip:server@{formatHostPort(target.host, target.port)}",
            via=False,
        )
        client.prepareRequest(request, target, newBranch())
        yield client.sendRequest(request, target)
        received, source = yield serverReceiver.waitForCallId(request.callId)
        assert isinstance(received, Request)
        server.sendResponse(buildResponse(received, 200), source)
        response, responseSource = yield clientReceiver.waitForCallId(request.callId)
        assert isinstance(response, Response)
        return received, source, response, responseSource


def _sleep(seconds: float) -> Deferred[None]:
    """
    A L{Deferred} that fires after C{seconds}, for bounded polling.
    """
    d: Deferred[None] = Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d


def _port(port: Any) -> int:
    number: int = port.getHost().port
    return number


class UDPTests(_LayersMixin):
    """
    UDP over loopback.
    """

    @inlineCallbacks
    def _udpRoundTrip(self, host: str) -> Any:
        interface = host.replace(":", "\\:")
        server, serverReceiver = self.makeLayer()
        client, clientReceiver = self.makeLayer()
        port = yield server.listen(f"udp:0:interface={interface}")
        clientPort = yield client.listen(f"udp:0:interface={interface}")
        target = Target("UDP", host, _port(port))
        received, source, response, _ = yield self.roundTrip(
            server, serverReceiver, client, clientReceiver, target
        )
        via = received.topVia
        self.assertEqual(source.host, host)
        self.assertEqual(source.port, _port(clientPort))
        self.assertEqual((via.received, via.rport), (host, _port(clientPort)))
        self.assertEqual(response.code, 200)

    def test_rfc3261_18_udpIPv4(self) -> None:
        """
        A request and its response cross real UDP sockets on 127.0.0.1;
        the request arrives stamped (RFC 3261 section 18.2.1, RFC 3581).
        """
        return self._udpRoundTrip("127.0.0.1")

    def test_rfc3261_18_udpIPv6(self) -> None:
        """
        The same on ::1.
        """
        return self._udpRoundTrip("::1")

    test_rfc3261_18_udpIPv6.skip = NO_IPV6  # type: ignore[attr-defined]

    @inlineCallbacks
    def test_hostName(self) -> None:
        """
        A target given as C{localhost} is resolved and reached.
        """
        server, serverReceiver = self.makeLayer()
        port = yield server.listen("udp:0:interface=127.0.0.1")
        client, _ = self.makeLayer()
        yield client.listen("udp:0:interface=127.0.0.1")
        request = buildRequest("OPTIONS", via=False)
        target = Target("UDP", "localhost", _port(port))
        client.prepareRequest(request, target, newBranch())
        yield client.sendRequest(request, target)
        yield serverReceiver.waitForCallId(request.callId)

    @inlineCallbacks
    def test_rfc3261_18_1_1_largeDatagram(self) -> None:
        """
        A 60,000-octet request arrives whole over UDP (RFC 3261 section
        18.1.1: datagrams up to 65,535 octets MUST be handled).
        """
        server, serverReceiver = self.makeLayer()
        port = yield server.listen("udp:0:interface=127.0.0.1")
        client, _ = self.makeLayer(udpRequestLimit=None)
        yield client.listen("udp:0:interface=127.0.0.1")
        request = buildRequest("MESSAGE", body=b"x" * 60000, via=False)
        target = Target("UDP", "127.0.0.1", _port(port))
        client.prepareRequest(request, target, newBranch())
        yield client.sendRequest(request, target)
        received, _ = yield serverReceiver.waitForCallId(request.callId)
        self.assertEqual(received.body, request.body)

    @inlineCallbacks
    def test_rfc3261_18_1_1_largeRequestOverTCP(self) -> None:
        """
        A request over 1300 octets addressed to UDP goes over TCP to the
        same port when the peer listens there (RFC 3261 section 18.1.1).
        """
        server, serverReceiver = self.makeLayer()
        port = yield server.listen("tcp:0:interface=127.0.0.1")
        client, _ = self.makeLayer()
        request = buildRequest("MESSAGE", body=b"x" * 2000, via=False)
        target = Target("UDP", "127.0.0.1", _port(port))
        client.prepareRequest(request, target, newBranch())
        yield client.sendRequest(request, target)
        received, source = yield serverReceiver.waitForCallId(request.callId)
        self.assertEqual(source.transport, "TCP")
        self.assertEqual(received.topVia.transport, "TCP")


class StreamTests(_LayersMixin):
    """
    TCP and TLS over loopback.
    """

    @inlineCallbacks
    def _tcpRoundTrip(self, host: str) -> Any:
        interface = host.replace(":", "\\:")
        server, serverReceiver = self.makeLayer()
        client, clientReceiver = self.makeLayer()
        port = yield server.listen(f"tcp:0:interface={interface}")
        target = Target("TCP", host, _port(port))
        received, source, response, responseSource = yield self.roundTrip(
            server, serverReceiver, client, clientReceiver, target
        )
        self.assertEqual(source.transport, "TCP")
        self.assertTrue(source.connection.connected)
        self.assertEqual(response.code, 200)
        self.assertEqual(len(client.connections), 1)
        # The server reaches the client over the connection the client
        # opened (RFC 3261 section 18.1.1: reuse).
        back = buildRequest(
            "OPTIONS", f"sip:client@{formatHostPort(host, None)}", via=False
        )
        backTarget = Target("TCP", source.host, source.port)
        server.prepareRequest(back, backTarget, newBranch())
        yield server.sendRequest(back, backTarget)
        _, backSource = yield clientReceiver.waitForCallId(back.callId)
        self.assertIs(backSource.connection, responseSource.connection)
        self.assertEqual(len(server.connections), 1)

    def test_rfc3261_18_tcpIPv4(self) -> None:
        """
        A request and response cross one TCP connection on 127.0.0.1, and
        the connection carries a request the other way too.
        """
        return self._tcpRoundTrip("127.0.0.1")

    def test_rfc3261_18_tcpIPv6(self) -> None:
        """
        The same on ::1.
        """
        return self._tcpRoundTrip("::1")

    test_rfc3261_18_tcpIPv6.skip = NO_IPV6  # type: ignore[attr-defined]

    def _tlsLayers(self, trusted: bool = True) -> tuple[Any, ...]:
        caPEM, serverPEM = makeCertificates()
        serverCert = PrivateCertificate.loadPEM(serverPEM)
        if trusted:
            trust = trustRootFromCertificates([Certificate.loadPEM(caPEM)])
        else:
            otherCA, _ = makeCertificates()
            trust = trustRootFromCertificates([Certificate.loadPEM(otherCA)])
        server, serverReceiver = self.makeLayer()
        client, clientReceiver = self.makeLayer(trustRoot=trust)
        return serverCert, server, serverReceiver, client, clientReceiver

    @inlineCallbacks
    def _tlsRoundTrip(self, host: str) -> Any:
        serverCert, server, serverReceiver, client, clientReceiver = self._tlsLayers()
        endpoint = SSL4ServerEndpoint(reactor, 0, serverCert.options(), interface=host)
        port = yield server.listenOn(endpoint, "TLS")
        target = Target("TLS", host, _port(port))
        received, source, response, _ = yield self.roundTrip(
            server, serverReceiver, client, clientReceiver, target
        )
        self.assertEqual(source.transport, "TLS")
        self.assertEqual(received.topVia.transport, "TLS")
        self.assertEqual(response.code, 200)

    def test_rfc3261_26_tlsIPv4(self) -> None:
        """
        TLS with a certificate made in the test and a client that trusts
        only its CA: a request and response cross on 127.0.0.1.
        """
        return self._tlsRoundTrip("127.0.0.1")

    def test_rfc3261_26_tlsIPv6(self) -> None:
        """
        The same on ::1.
        """
        return self._tlsRoundTrip("::1")

    test_rfc3261_26_tlsIPv6.skip = NO_IPV6  # type: ignore[attr-defined]

    @inlineCallbacks
    def test_tlsUntrusted(self) -> None:
        """
        A server certificate from an unknown CA fails the send with
        L{TransportError} (RFC 3261 section 18.4) and nothing arrives.
        """
        serverCert, server, serverReceiver, client, _ = self._tlsLayers(trusted=False)
        endpoint = SSL4ServerEndpoint(
            reactor, 0, serverCert.options(), interface="127.0.0.1"
        )
        port = yield server.listenOn(endpoint, "TLS")
        request = buildRequest("OPTIONS", via=False)
        target = Target("TLS", "127.0.0.1", _port(port))
        client.prepareRequest(request, target, newBranch())
        yield self.assertFailure(client.sendRequest(request, target), TransportError)
        self.assertEqual(serverReceiver.received, [])

    @inlineCallbacks
    def test_tlsDescription(self) -> None:
        """
        C{tls:} descriptions listen with certificate files (written to a
        temporary directory, removed in cleanup).
        """
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        caPEM, path = writeCertificates(directory.name)
        server, serverReceiver = self.makeLayer()
        client, clientReceiver = self.makeLayer(
            trustRoot=trustRootFromCertificates([Certificate.loadPEM(caPEM)])
        )
        port = yield server.listen(
            f"tls:0:interface=127.0.0.1:privateKey={path}:certKey={path}"
        )
        self.assertEqual(server.listeners[0][0], "TLS")
        target = Target("TLS", "127.0.0.1", _port(port))
        _, _, response, _ = yield self.roundTrip(
            server, serverReceiver, client, clientReceiver, target
        )
        self.assertEqual(response.code, 200)

    @inlineCallbacks
    def test_rfc3261_18_4_connectionRefused(self) -> None:
        """
        Sending to a TCP port nobody listens on fails with
        L{TransportError}.
        """
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            free = probe.getsockname()[1]
        client, _ = self.makeLayer()
        request = buildRequest("OPTIONS", via=False)
        target = Target("TCP", "127.0.0.1", free)
        client.prepareRequest(request, target, newBranch())
        yield self.assertFailure(client.sendRequest(request, target), TransportError)

    @inlineCallbacks
    def test_connectionLimit(self) -> None:
        """
        With C{maxConnections=1} a second client connection is closed by
        the server.
        """
        server, _ = self.makeLayer(maxConnections=1)
        port = yield server.listen("tcp:0:interface=127.0.0.1")
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", _port(port))
        first = yield connectProtocol(endpoint, _RawStream())
        second = yield connectProtocol(endpoint, _RawStream())
        yield second.lost.addTimeout(WAIT, reactor)
        self.assertFalse(first.lost.called)
        first.transport.loseConnection()
        yield first.lost

    @inlineCallbacks
    def test_rfc5626_pingPong(self) -> None:
        """
        A CRLF CRLF ping over a real connection gets a CRLF pong.
        """
        server, _ = self.makeLayer()
        port = yield server.listen("tcp:0:interface=127.0.0.1")
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", _port(port))
        raw = yield connectProtocol(endpoint, _RawStream())
        raw.transport.write(b"\r\n\r\n")
        for _ in range(100):
            if raw.data:
                break
            yield _sleep(0.05)
        self.assertEqual(raw.data, b"\r\n")
        raw.transport.loseConnection()
        yield raw.lost


class TortureTests(_LayersMixin):
    """
    RFC 4475 messages and random bytes through the real UDP and TCP
    protocols; the layer survives and still takes a good message.
    """

    def _torture(self) -> list[bytes]:
        """
        Every RFC 4475 message (Vias rewritten to loopback), then random
        bytes and mangled messages.
        """
        files = sorted(DATA.glob("*.dat"))
        if not files:
            raise self.skipTest("tests/data/rfc4475 is empty")
        messages = [_loopbackVias(path.read_bytes()) for path in files]
        rng = random.Random(4475)
        good = buildRequest("OPTIONS", rport=True).toBytes()
        for _ in range(50):
            messages.append(
                bytes(rng.randrange(256) for _ in range(rng.randrange(400)))
            )
            mangled = bytearray(good)
            for _ in range(rng.randrange(1, 8)):
                mangled[rng.randrange(len(mangled))] = rng.randrange(256)
            messages.append(bytes(mangled))
        return messages

    @inlineCallbacks
    def test_rfc4475_udp(self) -> None:
        """
        Every RFC 4475 message and random datagrams over real UDP: nothing
        raises, nothing is sent off loopback, and a good request still
        arrives afterwards.
        """
        messages = self._torture()
        server, receiver = self.makeLayer()
        port = yield server.listen("udp:0:interface=127.0.0.1")
        collector = _Collector()
        raw = reactor.listenUDP(0, collector, interface="127.0.0.1")
        self.addCleanup(raw.stopListening)
        offLoopback, asked = self.guard(server, ("127.0.0.1", _port(raw)))
        for message in messages:
            raw.write(message, ("127.0.0.1", _port(port)))
        good = buildRequest("OPTIONS", viaPort=_port(raw), rport=True)
        raw.write(good.toBytes(), ("127.0.0.1", _port(port)))
        received, _ = yield receiver.waitForCallId(good.callId)
        self.assertIsInstance(received, Request)
        self.assertGreater(len(receiver.received) + len(receiver.errors), 10)
        self.assertEqual(offLoopback, [])
        # Every answer was an error response (the good request is not
        # answered here: the receiver is a recorder).
        for _ in range(100):
            if len(collector.datagrams) >= len(asked):
                break
            yield _sleep(0.05)
        self.assertGreater(len(collector.datagrams), 0)
        for datagram, _ in collector.datagrams:
            # Checked as bytes: an answer copies the broken fields it got.
            self.assertRegex(datagram, rb"^SIP/2\.0 [456]\d\d ")
        self.assertEqual(self.flushLoggedErrors(), [])

    @inlineCallbacks
    def test_rfc4475_tcp(self) -> None:
        """
        Every RFC 4475 message and random bytes over real TCP connections
        (one each, as a fatal framing error closes it): nothing raises,
        nothing is sent off loopback, and a good request still arrives.
        """
        messages = self._torture()
        server, receiver = self.makeLayer()
        offLoopback, _ = self.guard(server)
        port = yield server.listen("tcp:0:interface=127.0.0.1")
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", _port(port))
        for message in messages:
            raw = yield connectProtocol(endpoint, _RawStream())
            raw.transport.write(message)
            raw.transport.loseConnection()
            yield raw.lost.addTimeout(WAIT, reactor)
        raw = yield connectProtocol(endpoint, _RawStream())
        good = buildRequest("OPTIONS", transport="TCP")
        raw.transport.write(good.toBytes())
        received, _ = yield receiver.waitForCallId(good.callId)
        self.assertIsInstance(received, Request)
        raw.transport.loseConnection()
        yield raw.lost
        self.assertEqual(offLoopback, [])
        self.assertEqual(self.flushLoggedErrors(), [])

    @inlineCallbacks
    def test_ipv6Torture(self) -> None:
        """
        Random bytes over UDP on ::1 do not stop a good request.
        """
        server, receiver = self.makeLayer()
        port = yield server.listen(r"udp:0:interface=\:\:1")
        raw = reactor.listenUDP(0, _Collector(), interface="::1")
        self.addCleanup(raw.stopListening)
        rng = random.Random(6)
        for _ in range(50):
            raw.write(
                bytes(rng.randrange(256) for _ in range(rng.randrange(300))),
                ("::1", _port(port)),
            )
        good = buildRequest("OPTIONS", viaHost="::1", viaPort=_port(raw))
        raw.write(good.toBytes(), ("::1", _port(port)))
        yield receiver.waitForCallId(good.callId)

    test_ipv6Torture.skip = NO_IPV6  # type: ignore[attr-defined]
