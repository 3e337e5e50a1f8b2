"""
Unit tests for L{sipevents.sip.transport}, with in-memory transports and a
L{Clock}: no sockets.
"""

from __future__ import annotations

import random
import socket
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionRefusedError, InvalidAddressError
from twisted.internet.protocol import Protocol
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, capturedLogs
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from sipevents.config import Limits
from sipevents.errors import ParseError
from sipevents.interfaces import (
    IMessageReceiver,
    IRetransmission,
    ISIPConnection,
    ITransportLayer,
)
from sipevents.sip.addresses import Source, Target
from sipevents.sip.message import Request, Response
from sipevents.sip.parser import parseMessage
from sipevents.sip.transport import (
    DEFAULT_UDP_RECEIVE_BUFFER,
    SIPDatagramProtocol,
    SIPStreamFactory,
    SIPStreamProtocol,
    TransportError,
    TransportLayer,
)
from sipevents.testing import (
    FakeSIPConnection,
    MemoryDatagramTransport,
    MemoryReceiver,
    MemoryUDPReactor,
    buildRequest,
    buildResponse,
    connectStream,
)

#: A request whose Via, From, To, Call-ID and CSeq are good but whose
#: Max-Forwards is not a number: a 400 can be addressed.
BAD_MAX_FORWARDS = (
    b"OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKbad;rport\r\n"
    b"Max-Forwards: many\r\n"
    b"From: <sip:alice@127.0.0.1>;tag=1\r\n"
    b"To: <sip:bob@127.0.0.1>\r\n"
    b"Call-ID: bad@127.0.0.1\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)


def _parse(data: bytes) -> Request | Response:
    """
    Parse bytes a test transport recorded.
    """
    return parseMessage(data)


class _Raiser:
    """
    An L{IMessageReceiver} that fails on everything.
    """

    def messageReceived(self, message: Any, source: Any) -> None:
        raise ZeroDivisionError("receiver bug")

    def parseErrorReceived(self, error: Any, source: Any) -> None:
        raise ZeroDivisionError("receiver bug")


class _LayerTestMixin(SynchronousTestCase):
    """
    A layer on a L{MemoryUDPReactor} with a L{MemoryReceiver}.
    """

    def setUp(self) -> None:
        self.reactor = MemoryUDPReactor()
        self.receiver = MemoryReceiver()
        self.layer = TransportLayer(self.reactor, self.receiver, idleTimeout=60.0)

    def listenUDP(
        self, description: str = "udp:5060:interface=127.0.0.1"
    ) -> tuple[SIPDatagramProtocol, MemoryDatagramTransport]:
        """
        Listen on UDP; return the protocol and its in-memory port.
        """
        self.successResultOf(self.layer.listen(description))
        port = self.reactor.udpPorts[-1]
        protocol = port.protocol
        assert isinstance(protocol, SIPDatagramProtocol)
        return protocol, port

    def connect(
        self,
        peer: tuple[str, int] = ("127.0.0.1", 40000),
        local: tuple[str, int] = ("127.0.0.1", 5060),
        transportName: str = "TCP",
    ) -> tuple[SIPStreamProtocol, StringTransport]:
        """
        Have C{peer} open a stream connection to us.
        """
        protocol, transport = connectStream(
            SIPStreamFactory(self.layer, transportName), peer, local
        )
        assert isinstance(protocol, SIPStreamProtocol)
        return protocol, transport

    def written(self, port: MemoryDatagramTransport) -> list[tuple[Any, Any]]:
        """
        The datagrams C{port} sent, parsed, with their destinations.
        """
        return [(_parse(data), addr) for data, addr in port.written]


class DatagramReceiveTests(_LayerTestMixin):
    """
    Tests for receiving over L{SIPDatagramProtocol}.
    """

    def test_interface(self) -> None:
        """
        The datagram protocol provides L{ISIPConnection}; the test receiver
        provides L{IMessageReceiver}; the transport layer provides
        L{ITransportLayer}.
        """
        protocol, _ = self.listenUDP()
        self.assertTrue(verifyObject(ISIPConnection, protocol))
        self.assertTrue(verifyObject(IMessageReceiver, self.receiver))
        self.assertTrue(verifyObject(ITransportLayer, self.layer))
        self.assertEqual(
            (protocol.transportName, protocol.reliable, protocol.connected),
            ("UDP", False, True),
        )
        self.assertEqual((protocol.localHost, protocol.localPort), ("127.0.0.1", 5060))

    def test_rfc3261_18_2_1_requestStamped(self) -> None:
        """
        A request datagram reaches the receiver with received and rport
        stamped (RFC 3261 section 18.2.1, RFC 3581 section 4) and its
        source.
        """
        protocol, _ = self.listenUDP()
        request = buildRequest("OPTIONS", rport=True, viaPort=5070)
        protocol.datagramReceived(request.toBytes(), ("127.0.0.1", 40001))
        [(message, source)] = self.receiver.received
        assert isinstance(message, Request)
        via = message.topVia
        assert via is not None
        self.assertEqual((via.received, via.rport), ("127.0.0.1", 40001))
        self.assertEqual(source, Source(protocol, "127.0.0.1", 40001))
        self.assertEqual(source.transport, "UDP")

    def test_sourcesShared(self) -> None:
        """
        Datagrams from one peer share one L{Source} (it is immutable);
        another peer gets its own, and the memory of them is bounded.
        """
        protocol, _ = self.listenUDP()
        for n in range(2):
            request = buildRequest("OPTIONS", branch=f"z9hG4bKshared{n}")
            protocol.datagramReceived(request.toBytes(), ("127.0.0.1", 40001))
        protocol.datagramReceived(
            buildRequest("OPTIONS", branch="z9hG4bKother").toBytes(),
            ("::ffff:127.0.0.1", 40002),
        )
        [(_, first), (_, second), (_, third)] = self.receiver.received
        self.assertIs(first, second)
        self.assertEqual(third, Source(protocol, "127.0.0.1", 40002))
        for port in range(5000):
            protocol.sourceFor("127.0.0.1", port)
        self.assertLessEqual(len(protocol._sources), 4096)

    def test_rfc5626_keepAliveIgnored(self) -> None:
        """
        Empty and CRLF-only datagrams are keep-alives: ignored, unanswered
        (RFC 5626 section 3.5.1).
        """
        protocol, port = self.listenUDP()
        for data in (b"", b"\r\n", b"\r\n\r\n", b"\n"):
            protocol.datagramReceived(data, ("127.0.0.1", 40001))
        self.assertEqual(self.receiver.received, [])
        self.assertEqual(self.receiver.errors, [])
        self.assertEqual(port.written, [])

    def test_rfc3261_18_3_badRequestAnswered(self) -> None:
        """
        A request that does not parse but can be addressed is answered
        with the error's status and reason phrase, routed by its Via (here
        received and rport, RFC 3581 section 4), with a To tag; the
        receiver hears of the error.
        """
        protocol, port = self.listenUDP()
        with capturedLogs() as events:
            protocol.datagramReceived(BAD_MAX_FORWARDS, ("127.0.0.1", 40002))
        [(response, addr)] = self.written(port)
        assert isinstance(response, Response)
        self.assertEqual(response.code, 400)
        self.assertIn("Max-Forwards", response.reason)
        self.assertEqual(addr, ("127.0.0.1", 40002))
        to = response.toAddr
        assert to is not None
        self.assertIsNotNone(to.tag)
        self.assertEqual(response.callId, "bad@127.0.0.1")
        [(error, source)] = self.receiver.errors
        self.assertEqual(error.status, 400)
        self.assertEqual(source.port, 40002)
        self.assertEqual(self.receiver.received, [])
        self.assertTrue(any(e["log_level"] == LogLevel.warn for e in events))

    def test_rfc3261_8_2_6_versionNotSupported(self) -> None:
        """
        A request with another SIP version gets 505 (RFC 3261 section
        8.1.1 and 21.5.20).
        """
        protocol, port = self.listenUDP()
        data = (
            buildRequest("OPTIONS").toBytes().replace(b"SIP/2.0\r\n", b"SIP/7.0\r\n", 1)
        )
        protocol.datagramReceived(data, ("127.0.0.1", 5060))
        [(response, _)] = self.written(port)
        self.assertEqual(response.code, 505)

    def test_unaddressableDropped(self) -> None:
        """
        Bytes that do not give a Via, From, To, Call-ID and CSeq are
        dropped and logged; the receiver still hears of them.
        """
        protocol, port = self.listenUDP()
        data = BAD_MAX_FORWARDS.replace(b"Call-ID: bad@127.0.0.1\r\n", b"")
        with capturedLogs() as events:
            protocol.datagramReceived(data, ("127.0.0.1", 5060))
            protocol.datagramReceived(b"\x16\x03\x01 hello", ("127.0.0.1", 5060))
        self.assertEqual(port.written, [])
        self.assertEqual(len(self.receiver.errors), 2)
        self.assertTrue(any("dropped" in str(e.get("action")) for e in events))

    def test_rfc4475_malformedFieldsStillAnswered(self) -> None:
        """
        A request whose From, To or CSeq is malformed but present is still
        answered with 400, the fields copied as written (RFC 4475 sections
        3.1.2.7 and 3.1.2.11); a To that does not parse gets no tag.
        """
        protocol, port = self.listenUDP()
        data = (
            BAD_MAX_FORWARDS.replace(b"Max-Forwards: many", b"Max-Forwards: 70")
            .replace(b"<sip:alice@127.0.0.1>", b"sip:alice@127.0.0.1 <")
            .replace(b"To: <sip:bob@127.0.0.1>", b'To: "bob <sip:bob@127.0.0.1>')
        )
        protocol.datagramReceived(data, ("127.0.0.1", 40002))
        # The response copies the broken fields, so it is checked as bytes.
        [(raw, addr)] = port.written
        self.assertTrue(raw.startswith(b"SIP/2.0 400 "))
        self.assertEqual(addr, ("127.0.0.1", 40002))
        self.assertIn(b'\r\nTo: "bob <sip:bob@127.0.0.1>\r\n', raw)
        self.assertIn(b"\r\nFrom: sip:alice@127.0.0.1 <;tag=1\r\n", raw)

    def test_ackNeverAnswered(self) -> None:
        """
        A bad ACK is never answered (RFC 3261 section 17: ACK has no
        response).
        """
        protocol, port = self.listenUDP()
        data = BAD_MAX_FORWARDS.replace(b"OPTIONS", b"ACK")
        protocol.datagramReceived(data, ("127.0.0.1", 5060))
        self.assertEqual(port.written, [])
        self.assertEqual(len(self.receiver.errors), 1)

    def test_badResponseDropped(self) -> None:
        """
        A malformed response is dropped, never answered (RFC 3261 section
        18.3).
        """
        protocol, port = self.listenUDP()
        protocol.datagramReceived(
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\n"
            b"CSeq: x\r\n\r\n",
            ("127.0.0.1", 5060),
        )
        self.assertEqual(port.written, [])
        self.assertEqual(len(self.receiver.errors), 1)

    def test_rfc3261_18_1_1_oversizeAnswered513(self) -> None:
        """
        A datagram over the size limit gets 513 when it can be addressed.
        """
        self.layer.limits = Limits(maxMessageSize=600)
        protocol, port = self.listenUDP()
        request = buildRequest("MESSAGE", body=b"x" * 700, contentType="text/plain")
        protocol.datagramReceived(request.toBytes(), ("127.0.0.1", 5060))
        [(response, _)] = self.written(port)
        self.assertEqual(response.code, 513)
        self.assertEqual(self.receiver.received, [])

    def test_rfc3261_18_1_2_foreignResponseDiscarded(self) -> None:
        """
        A response whose top Via sent-by we never inserted is discarded;
        one with ours is delivered (RFC 3261 section 18.1.2).
        """
        protocol, _ = self.listenUDP()
        request = buildRequest("OPTIONS", via=False)
        self.layer.prepareRequest(request, Target("UDP", "127.0.0.1", 5070), "z9hG4bK1")
        protocol.datagramReceived(
            buildResponse(request, 200).toBytes(), ("127.0.0.1", 5070)
        )
        foreign = buildRequest("OPTIONS", viaHost="127.0.0.1", viaPort=5999)
        protocol.datagramReceived(
            buildResponse(foreign, 200).toBytes(), ("127.0.0.1", 5070)
        )
        [response] = self.receiver.responses
        self.assertEqual(response.callId, request.callId)

    def test_receiverFailureLogged(self) -> None:
        """
        An exception from the receiver is logged, never raised into the
        reactor.
        """
        self.layer.receiver = _Raiser()
        protocol, port = self.listenUDP()
        protocol.datagramReceived(buildRequest("OPTIONS").toBytes(), ("127.0.0.1", 1))
        protocol.datagramReceived(BAD_MAX_FORWARDS, ("127.0.0.1", 1))
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 2)
        self.assertEqual(len(port.written), 1)

    def test_unexpectedErrorLogged(self) -> None:
        """
        An unexpected exception anywhere in the receive path is logged
        with its traceback and the datagram dropped.
        """
        protocol, _ = self.listenUDP()

        def broken(*args: object) -> None:
            raise ZeroDivisionError("bug")

        self.patch(self.layer, "datagramReceived", broken)
        protocol.datagramReceived(b"OPTIONS", ("127.0.0.1", 1))
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_garbageNeverRaises(self) -> None:
        """
        Random bytes and mangled messages never raise, and only produce
        responses to loopback.
        """
        protocol, port = self.listenUDP()
        rng = random.Random(3261)
        good = buildRequest("OPTIONS", rport=True).toBytes()
        for _ in range(300):
            choice = rng.random()
            if choice < 0.3:
                data = bytes(rng.randrange(256) for _ in range(rng.randrange(200)))
            else:
                data = bytearray(good)
                for _ in range(rng.randrange(1, 6)):
                    data[rng.randrange(len(data))] = rng.randrange(256)
                data = bytes(data)
            protocol.datagramReceived(data, ("127.0.0.1", 40000))
        self.assertEqual(self.flushLoggedErrors(), [])
        for _, (host, _) in port.written:
            self.assertEqual(host, "127.0.0.1")
        protocol.datagramReceived(good, ("127.0.0.1", 40000))
        self.assertIsInstance(self.receiver.messages[-1], Request)

    def test_ipv6(self) -> None:
        """
        An IPv6 socket receives from IPv6 peers and answers them.
        """
        protocol, port = self.listenUDP(r"udp:5060:interface=\:\:1")
        self.assertEqual(protocol.localHost, "::1")
        request = buildRequest("OPTIONS", viaHost="::1", rport=True)
        protocol.datagramReceived(request.toBytes(), ("::1", 40003, 0, 0))
        [(message, source)] = self.receiver.received
        via = message.topVia
        assert via is not None
        self.assertEqual((via.received, via.rport), ("::1", 40003))
        response = buildResponse(request, 200)
        response.headers.set("Via", str(via))
        self.layer.sendResponse(response, source)
        self.assertEqual(port.written[0][1], ("::1", 40003))


class StreamReceiveTests(_LayerTestMixin):
    """
    Tests for receiving over L{SIPStreamProtocol}.
    """

    def test_interface(self) -> None:
        """
        The stream protocol provides L{ISIPConnection} and knows its
        addresses.
        """
        protocol, _ = self.connect()
        self.assertTrue(verifyObject(ISIPConnection, protocol))
        self.assertEqual(
            (protocol.transportName, protocol.reliable, protocol.connected),
            ("TCP", True, True),
        )
        self.assertEqual((protocol.localHost, protocol.localPort), ("127.0.0.1", 5060))
        self.assertEqual((protocol.peerHost, protocol.peerPort), ("127.0.0.1", 40000))
        self.assertEqual(self.layer.connections, [protocol])

    def test_rfc3261_18_3_byteByByte(self) -> None:
        """
        Messages fed one octet at a time are framed by Content-Length and
        arrive whole, stamped (RFC 3261 section 18.3, 18.2.1).
        """
        protocol, _ = self.connect()
        first = buildRequest(
            "MESSAGE", transport="TCP", viaHost="127.0.0.5", body=b"hello\r\n\r\nworld"
        )
        second = buildRequest("OPTIONS", transport="TCP", rport=True)
        data = first.toBytes() + b"\r\n" + second.toBytes()
        for i in range(len(data)):
            protocol.dataReceived(data[i : i + 1])
        [one, two] = self.receiver.requests
        self.assertEqual(one.body, b"hello\r\n\r\nworld")
        via = one.topVia
        assert via is not None
        self.assertEqual(via.received, "127.0.0.1")
        via = two.topVia
        assert via is not None
        self.assertEqual(via.rport, 40000)
        self.assertEqual(self.receiver.received[0][1].connection, protocol)

    def test_rfc5626_3_5_1_pingPong(self) -> None:
        """
        A CRLF CRLF ping is answered with a CRLF pong, even between
        messages (RFC 5626 section 3.5.1).
        """
        protocol, transport = self.connect()
        protocol.dataReceived(b"\r\n\r\n")
        self.assertEqual(transport.value(), b"\r\n")
        protocol.dataReceived(b"\r\n")
        protocol.dataReceived(b"\r\n")
        self.assertEqual(transport.value(), b"\r\n\r\n")
        self.assertFalse(transport.disconnecting)

    def test_rfc3261_18_3_missingContentLengthFatal(self) -> None:
        """
        Without Content-Length framing is lost: the request is answered
        with 400 on the connection, which is then closed and ignores
        further data.
        """
        protocol, transport = self.connect()
        request = buildRequest("OPTIONS", transport="TCP")
        data = request.toBytes().replace(b"Content-Length: 0\r\n", b"")
        protocol.dataReceived(data)
        response = _parse(transport.value())
        assert isinstance(response, Response)
        self.assertEqual(response.code, 400)
        self.assertIn("Content-Length", response.reason)
        self.assertTrue(transport.disconnecting)
        transport.clear()
        protocol.dataReceived(buildRequest("OPTIONS").toBytes())
        self.assertEqual(transport.value(), b"")
        self.assertEqual(self.receiver.received, [])

    def test_nonFatalErrorKeepsConnection(self) -> None:
        """
        A well-framed but bad request is answered and the connection stays
        open for the next one.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(BAD_MAX_FORWARDS + buildRequest("OPTIONS").toBytes())
        self.assertFalse(transport.disconnecting)
        self.assertEqual(len(self.receiver.requests), 1)
        self.assertTrue(transport.value().startswith(b"SIP/2.0 400 "))

    def test_rfc3261_18_3_oversize513AndClose(self) -> None:
        """
        A message over the size limit gets 513 and the connection closes.
        """
        self.layer.limits = Limits(maxMessageSize=600)
        protocol, transport = self.connect()
        request = buildRequest("MESSAGE", transport="TCP", body=b"x" * 700)
        protocol.dataReceived(request.toBytes())
        response = _parse(transport.value())
        self.assertEqual(response.code, 513)  # type: ignore[union-attr]
        self.assertTrue(transport.disconnecting)

    def test_oversizeHeaderClosed(self) -> None:
        """
        A header section that never ends is cut off at the size limit and
        the connection closed, without an answer.
        """
        self.layer.limits = Limits(maxMessageSize=600)
        protocol, transport = self.connect()
        protocol.dataReceived(b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\n")
        for _ in range(100):
            protocol.dataReceived(b"X-Filler: " + b"y" * 20 + b"\r\n")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(transport.value(), b"")

    def test_idleTimeout(self) -> None:
        """
        A connection silent for the idle timeout is closed; traffic in
        either direction restarts the timer (RFC 3261 section 18).
        """
        protocol, transport = self.connect()
        self.reactor.advance(59)
        protocol.dataReceived(b"\r\n\r\n")
        self.reactor.advance(59)
        protocol.sendMessage(buildRequest("OPTIONS"), "", 0)
        self.reactor.advance(59)
        self.assertFalse(transport.disconnecting)
        self.reactor.advance(1)
        self.assertTrue(transport.disconnecting)
        protocol.connectionLost(Failure(ConnectionRefusedError()))
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.assertEqual(self.layer.connections, [])

    def test_noIdleTimeout(self) -> None:
        """
        With no idle timeout, nothing is scheduled.
        """
        self.layer.idleTimeout = None
        protocol, transport = self.connect()
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        protocol.dataReceived(b"\r\n\r\n")

    def test_connectionLimit(self) -> None:
        """
        Connections beyond C{maxConnections} are closed as they open; once
        one closes, a new one is accepted.
        """
        self.layer.maxConnections = 2
        first, _ = self.connect(("127.0.0.1", 40001))
        self.connect(("127.0.0.1", 40002))
        with capturedLogs() as events:
            refused, transport = self.connect(("127.0.0.1", 40003))
        self.assertTrue(transport.disconnected)
        self.assertTrue(any("Refusing" in e["log_format"] for e in events))
        refused.connectionLost(Failure(ConnectionRefusedError()))
        self.assertEqual(len(self.layer.connections), 2)
        first.connectionLost(Failure(ConnectionRefusedError()))
        _, transport = self.connect(("127.0.0.1", 40004))
        self.assertFalse(transport.disconnecting)
        self.assertEqual(len(self.layer.connections), 2)

    def test_parserBugAborts(self) -> None:
        """
        An unexpected exception while handling stream data is logged and
        the connection aborted, since framing can no longer be trusted.
        """
        protocol, transport = self.connect()

        class Broken:
            def feed(self, data: bytes) -> list[Any]:
                raise ZeroDivisionError("bug")

        self.patch(protocol, "_parser", Broken())
        protocol.dataReceived(b"x")
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertTrue(transport.disconnected)

    def test_garbageNeverRaises(self) -> None:
        """
        Random bytes on a stream never raise; the connection is closed or
        stays usable.
        """
        rng = random.Random(5626)
        for round in range(40):
            protocol, transport = self.connect(("127.0.0.1", 41000 + round))
            for _ in range(rng.randrange(1, 6)):
                size = rng.randrange(1, 300)
                protocol.dataReceived(bytes(rng.randrange(256) for _ in range(size)))
            protocol.connectionLost(Failure(ConnectionRefusedError()))
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertEqual(self.layer.connections, [])


class ResponseRoutingTests(_LayerTestMixin):
    """
    Tests for L{TransportLayer.sendResponse}: RFC 3261 section 18.2.2 and
    RFC 3581 section 4.
    """

    def _respond(self, via: str, source: Source, code: int = 200) -> Response:
        request = buildRequest("OPTIONS", via=False)
        request.headers.addFirst("Via", via)
        response = buildResponse(request, code)
        self.layer.sendResponse(response, source)
        return response

    def test_rfc3261_18_2_2_udpReceivedRport(self) -> None:
        """
        UDP: to received and rport, from the socket the request came on.
        """
        protocol, port = self.listenUDP()
        self._respond(
            "SIP/2.0/UDP 127.0.0.9:5070;branch=z9hG4bKa;rport=40010;received=127.0.0.1",
            Source(protocol, "127.0.0.1", 40010),
        )
        self.assertEqual(port.written[0][1], ("127.0.0.1", 40010))

    def test_rfc3261_18_2_2_udpReceived(self) -> None:
        """
        UDP: to received and the sent-by port.
        """
        protocol, port = self.listenUDP()
        self._respond(
            "SIP/2.0/UDP a.example:5070;branch=z9hG4bKa;received=127.0.0.1",
            Source(protocol, "127.0.0.1", 40010),
        )
        self.assertEqual(port.written[0][1], ("127.0.0.1", 5070))

    def test_rfc3261_18_2_2_udpMaddr(self) -> None:
        """
        UDP: maddr comes first, with the sent-by port.
        """
        protocol, port = self.listenUDP()
        self._respond(
            "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa;maddr=127.0.0.8",
            Source(protocol, "127.0.0.1", 40010),
        )
        self.assertEqual(port.written[0][1], ("127.0.0.8", 5070))

    def test_rfc3261_18_2_2_udpMaddrHostName(self) -> None:
        """
        A host name in maddr is resolved first (the memory reactor's
        resolver answers 127.0.0.1).
        """
        protocol, port = self.listenUDP()
        self._respond(
            "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa;maddr=localhost",
            Source(protocol, "127.0.0.1", 40010),
        )
        self.assertEqual(port.written[0][1], ("127.0.0.1", 5070))

    def test_rfc3261_18_2_2_udpSentBy(self) -> None:
        """
        UDP: to sent-by, port 5060 when absent.
        """
        protocol, port = self.listenUDP()
        self._respond(
            "SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKa",
            Source(protocol, "127.0.0.1", 40010),
        )
        self.assertEqual(port.written[0][1], ("127.0.0.1", 5060))

    def test_udpOtherFamily(self) -> None:
        """
        A response to an IPv6 address when the request came over IPv4 goes
        out of the IPv6 socket.
        """
        v4, port4 = self.listenUDP()
        _, port6 = self.listenUDP(r"udp:5060:interface=\:\:1")
        self._respond(
            "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa;maddr=[::1]",
            Source(v4, "127.0.0.1", 40010),
        )
        self.assertEqual(port4.written, [])
        self.assertEqual(port6.written[0][1], ("::1", 5070))

    def test_udpDualStack(self) -> None:
        """
        A dual-stack IPv6 socket bound to C{::} answers an IPv4 peer with
        the IPv4-mapped address.
        """
        protocol, port = self.listenUDP(r"udp:5060:interface=\:\:")
        self._respond(
            "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa",
            Source(protocol, "127.0.0.1", 40010),
        )
        self.assertEqual(port.written[0][1], ("::ffff:127.0.0.1", 5070))

    def test_udpNoSocket(self) -> None:
        """
        A response no socket can carry is logged and dropped.
        """
        protocol, port = self.listenUDP()
        with capturedLogs() as events:
            self._respond(
                "SIP/2.0/UDP [::1]:5070;branch=z9hG4bKa",
                Source(protocol, "127.0.0.1", 40010),
            )
        self.assertEqual(port.written, [])
        self.assertTrue(any("Could not send" in e["log_format"] for e in events))

    def test_fakeConnection(self) -> None:
        """
        A response to a request from another L{ISIPConnection} provider
        (a test double) goes through its C{sendMessage}.
        """
        connection = FakeSIPConnection()
        response = self._respond(
            "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa;received=127.0.0.1;rport=9",
            Source(connection, "127.0.0.1", 9),
        )
        self.assertEqual(connection.sent, [(response, "127.0.0.1", 9)])

    def test_rfc3261_18_2_2_streamSameConnection(self) -> None:
        """
        Reliable: on the connection the request came on while it is open,
        whatever the Via says.
        """
        protocol, transport = self.connect()
        self._respond(
            "SIP/2.0/TCP 127.0.0.7:5999;branch=z9hG4bKa",
            Source(protocol, "127.0.0.1", 40000),
        )
        response = _parse(transport.value())
        self.assertEqual(response.code, 200)  # type: ignore[union-attr]
        self.assertEqual(self.reactor.tcpClients, [])

    def test_rfc3261_18_2_2_streamReconnect(self) -> None:
        """
        Reliable, connection closed: a new connection to received and the
        sent-by port carries the response once it opens.
        """
        protocol, _ = self.connect()
        protocol.connectionLost(Failure(ConnectionRefusedError()))
        response = self._respond(
            "SIP/2.0/TCP a.example:5070;branch=z9hG4bKa;received=127.0.0.1",
            Source(protocol, "127.0.0.1", 40000),
        )
        [(host, port, factory, _, _)] = self.reactor.tcpClients
        self.assertEqual((host, port), ("127.0.0.1", 5070))
        newProtocol = factory.buildProtocol(IPv4Address("TCP", host, port))
        transport = StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 50000),
            peerAddress=IPv4Address("TCP", host, port),
        )
        newProtocol.makeConnection(transport)
        self.assertEqual(transport.value(), response.toBytes())

    def test_rfc3261_18_2_2_streamReuseOpen(self) -> None:
        """
        Reliable, connection closed, but another connection to the
        response address is open: it is reused.
        """
        protocol, _ = self.connect()
        protocol.connectionLost(Failure(ConnectionRefusedError()))
        _, other = self.connect(("127.0.0.1", 5070))
        self._respond(
            "SIP/2.0/TCP a.example:5070;branch=z9hG4bKa;received=127.0.0.1",
            Source(protocol, "127.0.0.1", 40000),
        )
        self.assertEqual(self.reactor.tcpClients, [])
        self.assertEqual(_parse(other.value()).code, 200)  # type: ignore[union-attr]

    def test_streamReconnectFailureLogged(self) -> None:
        """
        When the new connection cannot be opened, the failure is logged.
        """
        protocol, _ = self.connect()
        protocol.connectionLost(Failure(ConnectionRefusedError()))
        self._respond(
            "SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bKa",
            Source(protocol, "127.0.0.1", 40000),
        )
        [(_, _, factory, _, _)] = self.reactor.tcpClients
        with capturedLogs() as events:
            factory.clientConnectionFailed(None, Failure(ConnectionRefusedError()))
        self.assertTrue(any("Could not send" in e["log_format"] for e in events))
        self.assertEqual(self.flushLoggedErrors(), [])


class FinalResponseTests(_LayerTestMixin):
    """
    Tests for L{TransportLayer.sendFinalResponse}: a response sent as
    L{TransportLayer.sendResponse} does, kept in wire form for the
    retransmissions of a completed server transaction (RFC 3261 section
    17.2.2).
    """

    def _final(self, via: str, source: Source) -> tuple[Response, Any]:
        request = buildRequest("OPTIONS", via=False)
        request.headers.addFirst("Via", via)
        response = buildResponse(request, 200)
        return response, self.layer.sendFinalResponse(response, source)

    def test_rfc3261_17_2_2_udpRetransmission(self) -> None:
        """
        Over UDP to an address, the response goes out at once and the
        returned retransmission sends the same octets to the same place
        from the same socket; its C{response} parses them again.
        """
        protocol, port = self.listenUDP()
        response, retransmission = self._final(
            "SIP/2.0/UDP 127.0.0.9:5070;branch=z9hG4bKa;rport=40010;received=127.0.0.1",
            Source(protocol, "127.0.0.1", 40010),
        )
        self.assertEqual(port.written, [(response.toBytes(), ("127.0.0.1", 40010))])
        self.assertTrue(verifyObject(IRetransmission, retransmission))
        retransmission()
        self.assertEqual(port.written[1], port.written[0])
        self.assertEqual(retransmission.response.toBytes(), response.toBytes())
        self.assertIn("SIP/2.0 200 OK", repr(retransmission))
        self.assertIn("127.0.0.1:40010", repr(retransmission))

    def test_retransmissionFromAnotherSocket(self) -> None:
        """
        When the socket a response went out of has closed, the
        retransmission goes out of another that can reach the address; with
        none left it is logged and dropped, never raised.
        """
        protocol, port = self.listenUDP()
        _, other = self.listenUDP("udp:5062:interface=127.0.0.1")
        _, retransmission = self._final(
            "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa",
            Source(protocol, "127.0.0.1", 40010),
        )
        port.stopListening()
        retransmission()
        self.assertEqual(len(port.written), 1)
        self.assertEqual(other.written, [(port.written[0][0], ("127.0.0.1", 5070))])
        other.stopListening()
        with capturedLogs() as events:
            retransmission()
        self.assertEqual(len(other.written), 1)
        self.assertTrue(any("Could not send" in e["log_format"] for e in events))

    def test_hostNameNotKept(self) -> None:
        """
        A response routed to a host name is sent once the name resolves,
        and not kept in wire form.
        """
        protocol, port = self.listenUDP()
        _, retransmission = self._final(
            "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa;maddr=localhost",
            Source(protocol, "127.0.0.1", 40010),
        )
        self.assertIsNone(retransmission)
        self.assertEqual(port.written[0][1], ("127.0.0.1", 5070))

    def test_streamNotKept(self) -> None:
        """
        Over a stream there are no retransmissions, and nothing is kept.
        """
        protocol, transport = self.connect()
        _, retransmission = self._final(
            "SIP/2.0/TCP 127.0.0.1:40000;branch=z9hG4bKa",
            Source(protocol, "127.0.0.1", 40000),
        )
        self.assertIsNone(retransmission)
        self.assertEqual(_parse(transport.value()).code, 200)  # type: ignore[union-attr]

    def test_fakeConnectionNotKept(self) -> None:
        """
        A response through another L{ISIPConnection} provider goes through
        its C{sendMessage}, and is not kept.
        """
        connection = FakeSIPConnection()
        response, retransmission = self._final(
            "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa",
            Source(connection, "127.0.0.1", 9),
        )
        self.assertIsNone(retransmission)
        self.assertEqual(connection.sent, [(response, "127.0.0.1", 5070)])

    def test_noSocketLogged(self) -> None:
        """
        A response no socket can carry is logged and dropped.
        """
        protocol, port = self.listenUDP()
        with capturedLogs() as events:
            _, retransmission = self._final(
                "SIP/2.0/UDP [::1]:5070;branch=z9hG4bKa",
                Source(protocol, "127.0.0.1", 40010),
            )
        self.assertIsNone(retransmission)
        self.assertEqual(port.written, [])
        self.assertTrue(any("Could not send" in e["log_format"] for e in events))


class ReceiveBufferTests(SynchronousTestCase):
    """
    The kernel receive buffer of UDP sockets, which holds datagrams while
    the process is busy.
    """

    def _port(self) -> Any:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)

        class Port:
            socket = sock

        return Port()

    def test_grown(self) -> None:
        """
        The layer asks for C{udpReceiveBuffer} bytes and logs what the
        kernel granted (at most C{net.core.rmem_max}).
        """
        port = self._port()
        before = port.socket.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        layer = TransportLayer(MemoryUDPReactor(), MemoryReceiver())
        self.assertEqual(layer.udpReceiveBuffer, DEFAULT_UDP_RECEIVE_BUFFER)
        with capturedLogs() as events:
            layer._growReceiveBuffer(port)
        after = port.socket.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        self.assertGreaterEqual(after, before)
        [event] = [e for e in events if "receive buffer" in e["log_format"]]
        self.assertEqual(event["granted"], after)
        self.assertEqual(event["size"], DEFAULT_UDP_RECEIVE_BUFFER)

    def test_leftAlone(self) -> None:
        """
        With C{udpReceiveBuffer=None} the system default stays; a port
        without a socket (in memory) is left alone.
        """
        port = self._port()
        before = port.socket.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        layer = TransportLayer(
            MemoryUDPReactor(), MemoryReceiver(), udpReceiveBuffer=None
        )
        with capturedLogs() as events:
            layer._growReceiveBuffer(port)
            TransportLayer(MemoryUDPReactor(), MemoryReceiver())._growReceiveBuffer(
                object()
            )
        self.assertEqual(
            port.socket.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF), before
        )
        self.assertEqual(events, [])


class RequestTests(_LayerTestMixin):
    """
    Tests for L{TransportLayer.prepareRequest} and
    L{TransportLayer.sendRequest} (RFC 3261 section 18.1.1).
    """

    def test_rfc3261_18_1_1_prepareRequestVia(self) -> None:
        """
        The top Via names the transport, the listening address and port,
        the branch, and asks for rport (RFC 3581 section 3).
        """
        self.listenUDP()
        self.listenUDP(r"udp:5062:interface=\:\:1")
        request = buildRequest("OPTIONS")
        self.layer.prepareRequest(request, Target("UDP", "127.0.0.1", 5070), "z9hG4bKx")
        self.assertEqual(
            request.headers.getAll("Via")[0],
            "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx;rport",
        )
        self.assertEqual(len(request.vias), 2)
        request = buildRequest("OPTIONS", via=False)
        self.layer.prepareRequest(request, Target("UDP", "::1", 5070), "z9hG4bKy")
        self.assertEqual(
            request.headers.get("Via"), "SIP/2.0/UDP [::1]:5062;branch=z9hG4bKy;rport"
        )

    def test_prepareRequestTransportListener(self) -> None:
        """
        For TCP, the TCP listener's port is used when there is one, else
        any listener's.
        """
        self.listenUDP()
        request = buildRequest("OPTIONS", via=False)
        self.layer.prepareRequest(request, Target("TCP", "127.0.0.1", 5070), "z9hG4bKa")
        self.assertEqual(
            request.headers.get("Via"),
            "SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKa;rport",
        )
        self.successResultOf(self.layer.listen("tcp:5080:interface=127.0.0.1"))
        request = buildRequest("OPTIONS", via=False)
        self.layer.prepareRequest(request, Target("TCP", "127.0.0.1", 5070), "z9hG4bKb")
        self.assertEqual(
            request.headers.get("Via"),
            "SIP/2.0/TCP 127.0.0.1:5080;branch=z9hG4bKb;rport",
        )

    def test_prepareRequestAdvertisedHost(self) -> None:
        """
        An advertised host replaces the listening address; without one, a
        wildcard bind uses the local address that routes to the target.
        """
        self.listenUDP("udp:5060")
        request = buildRequest("OPTIONS", via=False)
        self.layer.prepareRequest(request, Target("UDP", "127.0.0.1", 5070), "z9hG4bKa")
        self.assertEqual(
            request.headers.get("Via"),
            "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKa;rport",
        )
        self.layer.advertisedHost = "sip.example.com"
        request = buildRequest("OPTIONS", via=False)
        self.layer.prepareRequest(request, Target("UDP", "127.0.0.1", 5070), "z9hG4bKb")
        self.assertEqual(
            request.headers.get("Via"),
            "SIP/2.0/UDP sip.example.com:5060;branch=z9hG4bKb;rport",
        )

    def test_prepareRequestNoListener(self) -> None:
        """
        Without any listener, the default port of the transport is used.
        """
        self.layer.advertisedHost = "127.0.0.1"
        request = buildRequest("OPTIONS", via=False)
        self.layer.prepareRequest(request, Target("TLS", "127.0.0.1", 5071), "z9hG4bKa")
        self.assertEqual(
            request.headers.get("Via"),
            "SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKa;rport",
        )

    def test_sendUDP(self) -> None:
        """
        A UDP request goes out of the socket of the target's family.
        """
        _, port4 = self.listenUDP()
        _, port6 = self.listenUDP(r"udp:5062:interface=\:\:1")
        request = buildRequest("OPTIONS")
        self.successResultOf(
            self.layer.sendRequest(request, Target("UDP", "127.0.0.1", 5070))
        )
        self.successResultOf(
            self.layer.sendRequest(request, Target("UDP", "::1", 5070))
        )
        self.assertEqual(port4.written, [(request.toBytes(), ("127.0.0.1", 5070))])
        self.assertEqual(port6.written, [(request.toBytes(), ("::1", 5070))])

    def test_sendUDPHostName(self) -> None:
        """
        A host name is resolved before sending.
        """
        _, port = self.listenUDP()
        request = buildRequest("OPTIONS")
        self.successResultOf(
            self.layer.sendRequest(request, Target("UDP", "localhost", 5070))
        )
        self.assertEqual(port.written[0][1], ("127.0.0.1", 5070))

    def test_rfc3261_18_4_sendUDPNoSocket(self) -> None:
        """
        Without a socket of the target's family the Deferred fails with
        L{TransportError} (RFC 3261 section 18.4).
        """
        self.listenUDP()
        failure = self.failureResultOf(
            self.layer.sendRequest(buildRequest("OPTIONS"), Target("UDP", "::1", 5070)),
            TransportError,
        )
        self.assertIn("::1", str(failure.value))

    def test_sendUDPSocketError(self) -> None:
        """
        A socket error while writing fails the Deferred.
        """
        _, port = self.listenUDP()

        def broken(packet: bytes, addr: object = None) -> None:
            raise OSError("no buffer space")

        self.patch(port, "write", broken)
        self.failureResultOf(
            self.layer.sendRequest(
                buildRequest("OPTIONS"), Target("UDP", "127.0.0.1", 1)
            ),
            OSError,
        )

    def _connectClient(
        self, index: int = -1, transportName: str = "TCP"
    ) -> tuple[SIPStreamProtocol, StringTransport, Any]:
        """
        Complete the connection attempt C{index} of the memory reactor.
        """
        host, port, factory, _, _ = self.reactor.tcpClients[index]
        if isinstance(factory, TLSMemoryBIOFactory):
            factory = factory.wrappedFactory
        protocol = factory.buildProtocol(IPv4Address("TCP", host, port))
        transport = StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 50000),
            peerAddress=IPv4Address("TCP", host, port),
        )
        protocol.makeConnection(transport)
        return protocol, transport, factory

    def test_rfc3261_18_1_1_sendTCPQueuedUntilConnected(self) -> None:
        """
        A TCP request opens a connection; it waits until the connection is
        up, then is written and the Deferred fires. A second request reuses
        the connection.
        """
        request = buildRequest("OPTIONS", transport="TCP")
        target = Target("TCP", "127.0.0.1", 5070)
        d = self.layer.sendRequest(request, target)
        d2 = self.layer.sendRequest(request, target)
        self.assertNoResult(d)
        self.assertEqual(len(self.reactor.tcpClients), 1)
        self.assertEqual(self.reactor.tcpClients[0][3], self.layer.connectTimeout)
        protocol, transport, _ = self._connectClient()
        self.successResultOf(d)
        self.successResultOf(d2)
        self.assertEqual(transport.value(), request.toBytes() * 2)
        self.successResultOf(self.layer.sendRequest(request, target))
        self.assertEqual(len(self.reactor.tcpClients), 1)
        self.assertEqual(transport.value(), request.toBytes() * 3)
        # Responses on it reach the receiver.
        self.assertEqual(protocol.source, Source(protocol, "127.0.0.1", 5070))

    def test_rfc3261_18_4_connectFailure(self) -> None:
        """
        When the connection cannot be opened every waiting Deferred fails
        with L{TransportError}, and the next request tries again.
        """
        target = Target("TCP", "127.0.0.1", 5070)
        d = self.layer.sendRequest(buildRequest("OPTIONS"), target)
        [(_, _, factory, _, _)] = self.reactor.tcpClients
        factory.clientConnectionFailed(None, Failure(ConnectionRefusedError()))
        self.failureResultOf(d, TransportError)
        self.layer.sendRequest(buildRequest("OPTIONS"), target)
        self.assertEqual(len(self.reactor.tcpClients), 2)

    def test_lostBeforeReady(self) -> None:
        """
        A TLS connection lost before its handshake completes fails what
        waited for it.
        """
        d = self.layer.sendRequest(
            buildRequest("OPTIONS"), Target("TLS", "127.0.0.1", 5071)
        )
        protocol, transport, _ = self._connectClient()
        self.assertNoResult(d)
        protocol.connectionLost(Failure(ConnectionRefusedError()))
        self.failureResultOf(d, TransportError)

    def test_sendTLSAfterHandshake(self) -> None:
        """
        A TLS request goes through a TLS client wrapper, and is written
        once the handshake completes.
        """
        request = buildRequest("OPTIONS", transport="TLS")
        d = self.layer.sendRequest(request, Target("TLS", "127.0.0.1", 5071))
        [(host, port, factory, _, _)] = self.reactor.tcpClients
        self.assertIsInstance(factory, TLSMemoryBIOFactory)
        protocol, transport, _ = self._connectClient()
        self.assertNoResult(d)
        self.assertEqual(transport.value(), b"")
        protocol.handshakeCompleted()
        self.successResultOf(d)
        self.assertEqual(transport.value(), request.toBytes())
        self.assertEqual(protocol.transportName, "TLS")

    def test_reusePeerConnection(self) -> None:
        """
        A request to the address of a connection the peer opened to us
        goes on that connection (RFC 3261 section 18.1.1 recommends reuse).
        """
        _, transport = self.connect(("127.0.0.1", 5070))
        request = buildRequest("OPTIONS", transport="TCP")
        self.successResultOf(
            self.layer.sendRequest(request, Target("TCP", "127.0.0.1", 5070))
        )
        self.assertEqual(self.reactor.tcpClients, [])
        self.assertEqual(transport.value(), request.toBytes())

    def test_rfc3261_18_1_1_largeRequestOverTCP(self) -> None:
        """
        A UDP request over 1300 octets goes over TCP, with its top Via
        changed to TCP (RFC 3261 section 18.1.1).
        """
        self.listenUDP()
        request = buildRequest("MESSAGE", body=b"x" * 1400)
        d = self.layer.sendRequest(request, Target("UDP", "127.0.0.1", 5070))
        _, transport, _ = self._connectClient()
        self.successResultOf(d)
        sent = _parse(transport.value())
        via = sent.topVia
        assert via is not None
        self.assertEqual(via.transport, "TCP")

    def test_rfc3261_18_1_1_largeRequestFallsBackToUDP(self) -> None:
        """
        When the TCP connection is refused, the large request goes over
        UDP after all, with its Via back to UDP.
        """
        _, port = self.listenUDP()
        request = buildRequest("MESSAGE", body=b"x" * 1400)
        d = self.layer.sendRequest(request, Target("UDP", "127.0.0.1", 5070))
        [(_, _, factory, _, _)] = self.reactor.tcpClients
        factory.clientConnectionFailed(None, Failure(ConnectionRefusedError()))
        self.successResultOf(d)
        [(data, addr)] = port.written
        self.assertEqual(addr, ("127.0.0.1", 5070))
        via = _parse(data).topVia
        assert via is not None
        self.assertEqual(via.transport, "UDP")

    def test_unresolvable(self) -> None:
        """
        A host name that resolves to nothing fails the Deferred.
        """

        class Nothing:
            def resolveHostName(
                self, receiver: Any, hostName: str, *a: Any, **k: Any
            ) -> None:
                receiver.resolutionBegan(None)
                receiver.resolutionComplete()

        self.reactor.nameResolver = Nothing()  # type: ignore[assignment]
        self.listenUDP()
        self.failureResultOf(
            self.layer.sendRequest(
                buildRequest("OPTIONS"), Target("UDP", "nowhere.invalid", 1)
            ),
            TransportError,
        )


class StopTests(_LayerTestMixin):
    """
    Tests for L{TransportLayer.stopListening}.
    """

    def test_stopListening(self) -> None:
        """
        Stopping closes every port and connection, stops connection
        attempts, and fires once all connections are lost.
        """
        protocol, port = self.listenUDP()
        self.successResultOf(self.layer.listen("tcp:0:interface=127.0.0.1"))
        stream, transport = self.connect()
        self.layer.sendRequest(
            buildRequest("OPTIONS"), Target("TCP", "127.0.0.1", 5099)
        )
        d = self.layer.stopListening()
        self.assertFalse(port.listening)
        self.assertFalse(protocol.connected)
        self.assertTrue(transport.disconnecting)
        self.assertNoResult(d)
        stream.connectionLost(Failure(ConnectionRefusedError()))
        self.successResultOf(d)
        self.assertEqual(self.layer.listeners, [])

    def test_listenErrors(self) -> None:
        """
        A bad description fails the Deferred with C{ValueError}.
        """
        self.failureResultOf(self.layer.listen("carrier-pigeon:1"), ValueError)
        self.failureResultOf(self.layer.listen("udp:notaport"), ValueError)


class TestingDoublesTests(SynchronousTestCase):
    """
    Tests for the public doubles in L{sipevents.testing} that the transport
    tests rely on.
    """

    def test_buildRequest(self) -> None:
        """
        L{buildRequest} gives a request that survives a parse round trip,
        with the mandatory fields of RFC 3261 section 8.1.1.
        """
        request = buildRequest("SUBSCRIBE", "sip:bob@[::1]", viaHost="::1", rport=True)
        parsed = _parse(request.toBytes())
        assert isinstance(parsed, Request)
        self.assertEqual(parsed.method, "SUBSCRIBE")
        for name in ("Via", "Max-Forwards", "From", "To", "Call-ID", "CSeq"):
            self.assertIn(name, parsed.headers)
        via = parsed.topVia
        assert via is not None
        self.assertTrue(via.rportRequested)
        self.assertEqual(via.host, "::1")

    def test_fakeConnection(self) -> None:
        """
        L{FakeSIPConnection} provides L{ISIPConnection} and records sends.
        """
        connection = FakeSIPConnection("TLS")
        self.assertTrue(verifyObject(ISIPConnection, connection))
        self.assertTrue(connection.reliable)
        message = buildRequest("OPTIONS")
        connection.sendMessage(message, "127.0.0.1", 1)
        self.assertEqual(connection.messages, [message])
        connection.close()
        self.assertFalse(connection.connected)

    def test_memoryDatagramTransportRefusesWrongFamily(self) -> None:
        """
        Like a real port, the memory port refuses host names and addresses
        of the other family.
        """
        reactor = MemoryUDPReactor()
        port = reactor.listenUDP(0, Protocol(), "127.0.0.1")  # type: ignore[arg-type]
        self.assertRaises(InvalidAddressError, port.write, b"x", ("::1", 1))
        self.assertRaises(InvalidAddressError, port.write, b"x", ("localhost", 1))

    def test_parseErrorIsValue(self) -> None:
        """
        The receiver records parse errors as values.
        """
        receiver = MemoryReceiver()
        error = ParseError("x")
        source = Source(FakeSIPConnection(), "127.0.0.1", 1)
        receiver.parseErrorReceived(error, source)
        self.assertEqual(receiver.errors, [(error, source)])
