# -*- test-case-name: tests.test_integration_uas -*-
"""
The real service on 127.0.0.1 over UDP and TCP: it answers OPTIONS, and
keeps answering after the RFC 4475 torture messages and random bytes.

Everything stays on loopback. Torture messages name hosts such as
192.0.2.x in their Via fields, so every Via is rewritten to our client's
127.0.0.1 address before sending; and the service runs on a reactor wrapper
that refuses to send a datagram or open a connection to anything but
127.0.0.1, and records any attempt, which fails the test.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.interfaces import (
    IConnector,
    IListeningPort,
    IReactorTCP,
    IReactorTime,
    IReactorUDP,
)
from twisted.internet.protocol import ClientFactory, DatagramProtocol, Protocol
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from sipevents.app.service import SIPEventsService
from sipevents.sip.message import Response
from sipevents.sip.parser import StreamParser, parseMessage
from sipevents.testing import newBranch

#: The RFC 4475 messages, one per file (extracted for the parser tests).
TORTURE = Path(__file__).parent / "data" / "rfc4475"

LOOPBACK = "127.0.0.1"

#: How long to wait for an answer we expect.
TIMEOUT = 10.0

_VIA_LINE = re.compile(rb"^(?:via|v)[ \t]*:", re.IGNORECASE)


def rewriteVias(data: bytes, transport: str, port: int) -> bytes:
    """
    Replace every Via field (any spelling, folded lines included) with one
    naming C{127.0.0.1:port}, so that whatever answers a message can only
    go to our client; everything else stays byte for byte.
    """
    out: list[bytes] = []
    inVia = False
    for line in data.split(b"\r\n"):
        if inVia and line[:1] in (b" ", b"\t"):
            continue
        inVia = bool(_VIA_LINE.match(line))
        if inVia:
            line = (
                f"Via: SIP/2.0/{transport} {LOOPBACK}:{port};branch={newBranch()};rport"
            ).encode()
        out.append(line)
    return b"\r\n".join(out)


def options(transport: str, port: int, callId: str) -> bytes:
    """
    A well-formed OPTIONS from C{127.0.0.1:port}.
    """
    return (
        f"OPTIONS sip:service@{LOOPBACK} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {LOOPBACK}:{port};branch={newBranch()};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:test@{LOOPBACK}>;tag=t-{callId.partition('@')[0]}\r\n"
        f"To: <sip:service@{LOOPBACK}>\r\n"
        f"Call-ID: {callId}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def mutate(data: bytes, rng: random.Random) -> bytes:
    """
    C{data} with a few octets changed, inserted or removed.
    """
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        position = rng.randrange(len(buffer))
        action = rng.random()
        if action < 0.5:
            buffer[position] = rng.randrange(256)
        elif action < 0.75:
            buffer.insert(position, rng.randrange(256))
        else:
            del buffer[position]
    return bytes(buffer)


def mutatedOptions(seed: float) -> Callable[[int], bytes]:
    """
    What a TCP client sends: an OPTIONS from its port, mutated.
    """

    def build(port: int) -> bytes:
        return mutate(options("TCP", port, "fuzz-tcp@127.0.0.1"), random.Random(seed))

    return build


@implementer(IReactorTCP, IReactorUDP, IReactorTime)
class LoopbackOnlyReactor:
    """
    The real reactor, except that UDP ports it makes write only to
    127.0.0.1 and TCP connections go only to 127.0.0.1; other attempts are
    recorded in C{refused} and dropped. Without a name resolver, host names
    are never looked up.
    """

    def __init__(self, wrapped: Any) -> None:
        self._reactor = wrapped
        self.refused: list[tuple[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reactor, name)

    def listenUDP(
        self,
        port: int,
        protocol: DatagramProtocol,
        interface: str = "",
        maxPacketSize: int = 8192,
    ) -> IListeningPort:
        listening = self._reactor.listenUDP(port, protocol, interface, maxPacketSize)
        write = listening.write

        def guardedWrite(datagram: bytes, addr: Any = None) -> Any:
            if addr is None or addr[0] != LOOPBACK:
                self.refused.append(("UDP", addr))
                return None
            return write(datagram, addr)

        listening.write = guardedWrite
        return listening  # type: ignore[no-any-return]

    def connectTCP(
        self,
        host: str,
        port: int,
        factory: ClientFactory,
        timeout: float = 30,
        bindAddress: Any = None,
    ) -> IConnector:
        if host != LOOPBACK:
            self.refused.append(("TCP", (host, port)))
            raise ConnectionRefusedError(f"Test refuses to connect to {host}")
        return self._reactor.connectTCP(  # type: ignore[no-any-return]
            host, port, factory, timeout, bindAddress
        )


class UDPClient(DatagramProtocol):
    """
    Sends datagrams to the service and collects the responses.
    """

    def __init__(self) -> None:
        self.responses: list[Response] = []
        self.waiting: dict[str, Deferred[Response]] = {}

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        try:
            message = parseMessage(datagram)
        except Exception:
            return
        if isinstance(message, Response):
            self.responses.append(message)
            waiting = self.waiting.pop(message.callId or "", None)
            if waiting is not None and message.code >= 200:
                waiting.callback(message)

    def expect(self, callId: str) -> Deferred[Response]:
        """
        A L{Deferred} that fires with the first final response for
        C{callId}.
        """
        d: Deferred[Response] = Deferred()
        self.waiting[callId] = d
        return d


class StreamClient(Protocol):
    """
    One TCP connection to the service: writes what C{makeData} builds for
    its local port, collects responses, and notes when it is closed.
    """

    def __init__(self, makeData: Callable[[int], bytes]) -> None:
        self.makeData = makeData
        self.parser = StreamParser()
        self.responses: list[Response] = []
        self.closed: Deferred[None] = Deferred()
        self.finalResponse: Deferred[Response] = Deferred()

    def connectionMade(self) -> None:
        assert self.transport is not None
        localPort = self.transport.getHost().port  # type: ignore[attr-defined]
        self.transport.write(self.makeData(localPort))

    def dataReceived(self, data: bytes) -> None:
        for item in self.parser.feed(data):
            if isinstance(item, Response):
                self.responses.append(item)
                if item.code >= 200 and not self.finalResponse.called:
                    self.finalResponse.callback(item)

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.closed.callback(None)


class StreamClientFactory(ClientFactory):
    def __init__(self, makeData: Callable[[int], bytes]) -> None:
        self.makeData = makeData
        self.protocols: list[StreamClient] = []

    def buildProtocol(self, addr: Any) -> StreamClient:
        protocol = StreamClient(self.makeData)
        self.protocols.append(protocol)
        return protocol


class IntegrationTests(TestCase):
    """
    L{SIPEventsService} on 127.0.0.1, port 0, over real UDP and TCP sockets.
    """

    timeout = 120

    @inlineCallbacks
    def setUp(self) -> Generator[Deferred[Any], Any, None]:
        self.reactor = LoopbackOnlyReactor(reactor)
        self.service = SIPEventsService(
            [f"udp:0:interface={LOOPBACK}", f"tcp:0:interface={LOOPBACK}"],
            reactor=self.reactor,
        )
        self.service.startService()
        assert self.service.whenListening is not None
        ports = yield self.service.whenListening
        self.udpPort, self.tcpPort = (port.getHost().port for port in ports)
        self.client = UDPClient()
        self.clientPort = reactor.listenUDP(0, self.client, interface=LOOPBACK)
        self.clientPortNumber = self.clientPort.getHost().port
        self.addCleanup(self.clientPort.stopListening)
        self.addCleanup(self.service.stopService)
        self.streamFactories: list[StreamClientFactory] = []
        self.addCleanup(self.closeStreams)
        self.callIds = 0

    def tearDown(self) -> None:
        self.assertEqual(self.reactor.refused, [])

    @inlineCallbacks
    def closeStreams(self) -> Generator[Deferred[Any], Any, None]:
        for factory in self.streamFactories:
            for protocol in factory.protocols:
                if protocol.transport is not None:
                    protocol.transport.loseConnection()
                yield protocol.closed

    def newCallId(self) -> str:
        self.callIds += 1
        return f"integration-{self.callIds}@{LOOPBACK}"

    def sendUDP(self, data: bytes) -> None:
        self.clientPort.write(data, (LOOPBACK, self.udpPort))

    def connectTCP(self, makeData: Callable[[int], bytes]) -> StreamClientFactory:
        factory = StreamClientFactory(makeData)
        self.streamFactories.append(factory)
        reactor.connectTCP(LOOPBACK, self.tcpPort, factory, timeout=TIMEOUT)
        return factory

    @inlineCallbacks
    def optionsOverUDP(self) -> Generator[Deferred[Any], Any, Response]:
        """
        Send an OPTIONS over UDP and return its final response.
        """
        callId = self.newCallId()
        d = self.client.expect(callId)
        d.addTimeout(TIMEOUT, reactor)
        self.sendUDP(options("UDP", self.clientPortNumber, callId))
        response: Response = yield d
        return response

    @inlineCallbacks
    def optionsOverTCP(self) -> Generator[Deferred[Any], Any, Response]:
        """
        Send an OPTIONS on a new TCP connection and return its final
        response.
        """
        callId = self.newCallId()
        factory = self.connectTCP(lambda port: options("TCP", port, callId))
        while not factory.protocols:
            yield deferLater(reactor, 0.01, lambda: None)
        d = factory.protocols[0].finalResponse
        d.addTimeout(TIMEOUT, reactor)
        response: Response = yield d
        return response

    @inlineCallbacks
    def assertStillAnswering(self) -> Generator[Deferred[Any], Any, None]:
        """
        OPTIONS over UDP and over TCP both get 200.
        """
        udp = yield self.optionsOverUDP()
        self.assertEqual(udp.code, 200)
        self.assertIn("OPTIONS", udp.allow)
        tcp = yield self.optionsOverTCP()
        self.assertEqual(tcp.code, 200)

    def tortureMessages(self) -> list[tuple[str, bytes]]:
        messages = sorted(
            (path.name, path.read_bytes()) for path in TORTURE.glob("*.dat")
        )
        self.assertGreater(len(messages), 40)
        return messages

    @inlineCallbacks
    def test_rfc3261_11_optionsOverUDPAndTCP(
        self,
    ) -> Generator[Deferred[Any], Any, None]:
        """
        OPTIONS gets 200 with Allow over UDP and TCP (RFC 3261 section 11.2),
        back at the address it came from (RFC 3581 section 4).
        """
        yield self.assertStillAnswering()

    @inlineCallbacks
    def test_rfc4475_tortureOverUDP(self) -> Generator[Deferred[Any], Any, None]:
        """
        Every RFC 4475 torture message, sent as a datagram, is answered or
        dropped without any error logged, and the service still answers
        OPTIONS afterwards.
        """
        for _, data in self.tortureMessages():
            self.sendUDP(rewriteVias(data, "UDP", self.clientPortNumber))
        yield self.assertStillAnswering()
        codes = {response.code for response in self.client.responses}
        self.assertIn(400, codes)
        self.assertNotIn(500, codes)

    @inlineCallbacks
    def test_rfc4475_tortureOverTCP(self) -> Generator[Deferred[Any], Any, None]:
        """
        Every RFC 4475 torture message, sent on a TCP connection of its own,
        is answered, dropped or makes the service close the connection,
        without any error logged; the service still answers OPTIONS.
        """
        factories = [
            self.connectTCP(
                lambda port, data=data: rewriteVias(data, "TCP", port)  # type: ignore[misc]
            )
            for _, data in self.tortureMessages()
        ]
        yield deferLater(reactor, 1.0, lambda: None)
        yield self.assertStillAnswering()
        responses = [
            response
            for factory in factories
            for protocol in factory.protocols
            for response in protocol.responses
        ]
        self.assertTrue(responses)
        self.assertNotIn(500, {response.code for response in responses})

    @inlineCallbacks
    def test_randomBytes(self) -> Generator[Deferred[Any], Any, None]:
        """
        Random datagrams and stream bytes, and OPTIONS requests with a few
        octets changed, never stop the service (no traceback reaches the
        reactor, nothing is logged as an error), which still answers OPTIONS.
        """
        rng = random.Random(4475)
        template = options("UDP", self.clientPortNumber, "fuzz@127.0.0.1")
        for _ in range(300):
            self.sendUDP(
                bytes(rng.randrange(256) for _ in range(rng.randrange(1, 1400)))
            )
            self.sendUDP(mutate(template, rng))
        for _ in range(20):
            garbage = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4000)))
            self.connectTCP(lambda port, garbage=garbage: garbage)  # type: ignore[misc]
            self.connectTCP(mutatedOptions(rng.random()))
        yield deferLater(reactor, 1.0, lambda: None)
        yield self.assertStillAnswering()
