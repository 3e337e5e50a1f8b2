# -*- test-case-name: tests.test_transport -*-
"""
The SIP transport layer (RFC 3261 section 18) as thin Twisted adapters.

L{SIPDatagramProtocol} (UDP: one datagram is one message) and
L{SIPStreamProtocol} (TCP and TLS: messages framed by Content-Length, RFC 3261
section 18.3) turn bytes into L{sipevents.sip.message.Request} and
L{sipevents.sip.message.Response} values with the sans-I/O parser in
L{sipevents.sip.parser}, and hand them to a L{TransportLayer}. The layer stamps
C{received}/C{rport} on requests (RFC 3261 section 18.2.1, RFC 3581
section 4), answers unparseable requests with 400/505/513 when it can address
a response, routes responses (RFC 3261 section 18.2.2), and sends requests on
a UDP socket or a new or reused TCP/TLS connection (RFC 3261 section 18.1.1).
The UAS/UAC core above it sees only L{IMessageReceiver} calls and
L{ISIPConnection} providers.

No exception raised while handling received bytes reaches the reactor: bad
input becomes a logged L{ParseError}, and anything unexpected is logged with
its traceback and the message dropped.
"""

from __future__ import annotations

import dataclasses
import secrets
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, fail, gatherResults, maybeDeferred, succeed
from twisted.internet.error import NotConnectingError
from twisted.internet.interfaces import (
    IAddress,
    IConnector,
    IDelayedCall,
    IHandshakeListener,
    IHostResolution,
    IListeningPort,
    IReactorPluggableNameResolver,
    IReactorTCP,
    IReactorTime,
    IReactorUDP,
    IResolutionReceiver,
    IStreamServerEndpoint,
)
from twisted.internet.protocol import (
    ClientFactory,
    DatagramProtocol,
    Factory,
    Protocol,
    connectionDone,
)
from twisted.internet.ssl import PrivateCertificate, optionsForClientTLS
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from zope.interface import implementer

if TYPE_CHECKING:
    from twisted.internet._sslverify import IOpenSSLTrustRoot

from sipevents.config import DEFAULT_LIMITS, Limits
from sipevents.errors import MessageTooLarge, ParseError
from sipevents.interfaces import (
    IMessageReceiver,
    IRetransmission,
    ISIPConnection,
    ITransportLayer,
)
from sipevents.sip.addresses import TCP, TLS, UDP, Source, Target, defaultPort
from sipevents.sip.endpoints import (
    describeAddress,
    describeListener,
    listenUDP,
    parseListenDescription,
    streamServerEndpoint,
)
from sipevents.sip.message import Message, Request, Response, makeResponse, reasonPhrase
from sipevents.sip.parser import KeepAlive, StreamParser, parseMessage
from sipevents.sip.routing import (
    addressFamily,
    formatHostPort,
    isIPAddress,
    normalizeHost,
    replaceTopVia,
    responseAddress,
    stampReceived,
)

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_UDP_RECEIVE_BUFFER",
    "SIPDatagramProtocol",
    "SIPStreamFactory",
    "SIPStreamProtocol",
    "TransportError",
    "TransportLayer",
]

#: Open stream connections accepted from peers before new ones are closed.
DEFAULT_MAX_CONNECTIONS = 1024

#: Seconds a stream connection may stay silent before it is closed. RFC 3261
#: section 18 asks for at least 64*T1 (32 s), and RFC 5626 section 4.4.1
#: clients ping every 95 to 120 s, so this outlives both.
DEFAULT_IDLE_TIMEOUT = 300.0

#: Seconds to wait for a TCP connection to open: 64*T1, by which time the
#: transaction that wanted it has timed out anyway (RFC 3261 section 17.1.2.2).
DEFAULT_CONNECT_TIMEOUT = 32.0

#: Requests larger than this go over TCP instead of UDP when the path MTU is
#: unknown (RFC 3261 section 18.1.1).
DEFAULT_UDP_REQUEST_LIMIT = 1300

#: Bytes of kernel receive buffer asked for on each UDP socket. Python
#: stops now and then (a full garbage collection, a burst of work), and
#: while it does the kernel queues the datagrams that arrive; Linux's
#: default of about 208 KB holds only a fraction of a second of requests at
#: a few thousand per second, and each datagram dropped then comes back
#: T1 later as a retransmission (RFC 3261 section 17.1.2.2), adding load
#: just when there is too much. The kernel caps the value at
#: C{net.core.rmem_max}.
DEFAULT_UDP_RECEIVE_BUFFER = 4 * 1024 * 1024

#: Longest reason phrase we put in an error response.
_MAX_REASON = 128

#: How many peer addresses a UDP socket keeps a L{Source} for.
_MAX_SOURCES = 4096

_WILDCARDS = frozenset({"", "0.0.0.0", "::"})

_ConnectionKey = tuple[str, str, int]


class TransportError(Exception):
    """
    A message could not be sent: no socket for the destination's address
    family, a host name that does not resolve, or a connection that could
    not be opened or closed before it was ready (RFC 3261 sections 17.1.4
    and 18.4: the transport user is told of the failure).
    """


def _addressHostPort(address: IAddress) -> tuple[str, int]:
    """
    The host and port of a Twisted IPv4Address or IPv6Address (C{("", 0)}
    for anything else, such as a UNIX socket address).
    """
    host = getattr(address, "host", "")
    port = getattr(address, "port", 0)
    return (host if isinstance(host, str) else "", port if isinstance(port, int) else 0)


def _safeReason(reason: str, status: int) -> str:
    """
    A reason phrase fit for a status line: control characters (CR, LF ...)
    replaced by spaces, runs of spaces collapsed, clipped to a sane length;
    the default phrase for C{status} when nothing is left.
    """
    cleaned = "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in reason)
    cleaned = " ".join(cleaned.split())[:_MAX_REASON]
    return cleaned or reasonPhrase(status)


def _addressable(request: Request) -> bool:
    """
    Whether a response to C{request} can be built and routed: its Via
    parses (it says where the response goes, RFC 3261 section 18.2.2), and
    it has the From, To, Call-ID and CSeq fields that a response copies
    (RFC 3261 section 8.2.6.2). Those are copied as written, so a malformed
    one still gets its 400 (RFC 4475 section 3.1.2.2 and others).
    """
    try:
        if not request.vias:
            return False
    except ParseError:
        return False
    headers = request.headers
    return all(name in headers for name in ("from", "to", "call-id", "cseq"))


@implementer(ISIPConnection)
class SIPDatagramProtocol(DatagramProtocol):
    """
    A UDP socket carrying SIP: each datagram is one message (RFC 3261
    section 18.3). Datagrams holding only CRLFs are keep-alives and are
    ignored (RFC 5626 section 3.5.1).

    @ivar layer: the L{TransportLayer} parsed messages go to.
    @ivar connected: C{True} while the socket listens.
    @ivar localHost: the address the socket is bound to.
    @ivar localPort: the port the socket is bound to.
    @ivar family: C{socket.AF_INET} or C{socket.AF_INET6}.
    """

    log = Logger()
    noisy = False
    transportName = UDP
    reliable = False

    def __init__(self, layer: TransportLayer) -> None:
        self.layer = layer
        self.connected = False
        self.localHost = ""
        self.localPort = 0
        self.family = socket.AF_INET
        self._sources: dict[tuple[str, int], Source] = {}

    def sourceFor(self, host: str, port: int) -> Source:
        """
        The L{Source} of datagrams from C{host} and C{port}, shared by all
        of them: it is immutable, and most datagrams come from a few peers.
        At most L{_MAX_SOURCES} are kept.
        """
        key = (host, port)
        source = self._sources.get(key)
        if source is None:
            if len(self._sources) >= _MAX_SOURCES:
                self._sources.clear()
            source = self._sources[key] = Source(self, normalizeHost(host), port)
        return source

    def startProtocol(self) -> None:
        assert self.transport is not None
        self.localHost, self.localPort = _addressHostPort(self.transport.getHost())
        self.family = addressFamily(self.localHost)
        self.connected = True

    def stopProtocol(self) -> None:
        self.connected = False

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        """
        Hand one datagram to the layer; never raises.
        """
        try:
            self.layer.datagramReceived(self, datagram, addr[0], addr[1])
        except Exception:
            self.log.failure(
                "Unexpected error handling a datagram from {peer!r}", peer=addr
            )

    def canReach(self, host: str) -> bool:
        """
        Whether this socket can send to the IP address C{host}: one of its
        own family, or an IPv4 address from a dual-stack IPv6 socket bound
        to C{::}.
        """
        if addressFamily(host) == self.family:
            return True
        return self.family == socket.AF_INET6 and self.localHost == "::"

    def sendBytes(self, data: bytes, host: str, port: int) -> None:
        """
        Send one datagram.

        @param host: an IP address; an IPv4 address sent from an IPv6 socket
            is written in its IPv4-mapped form.
        @raise Exception: whatever the socket raises (message too long,
            address family mismatch ...), for the caller to report.
        """
        transport = self.transport
        if transport is None:
            raise TransportError("UDP socket is closed")
        if self.family == socket.AF_INET6 and addressFamily(host) == socket.AF_INET:
            host = "::ffff:" + host
        # Straight to the socket when there is one (a reactor's UDP port)
        # and the host is an address: Twisted's Port.write checks the
        # address text with two or three Python-level parsers per datagram
        # before the same sendto. Any error goes through Port.write after
        # all, which retries (EINTR), raises (message too long, wrong
        # family) or reports exactly as it always did.
        sock: socket.socket | None = getattr(transport, "socket", None)
        if sock is not None and isIPAddress(host):
            try:
                sock.sendto(data, (host, port))
                return
            except OSError:
                pass
        transport.write(data, (host, port))

    def sendMessage(self, message: Message, host: str, port: int) -> None:
        """
        Serialize C{message} and send it to C{host} and C{port}; failures
        are logged, never raised (L{ISIPConnection}).
        """
        self.sendData(message.toBytes(), host, port, message)

    def sendData(self, data: bytes, host: str, port: int, message: object) -> None:
        """
        Send the serialized C{message}; failures are logged, never raised.
        """
        try:
            self.sendBytes(data, host, port)
        except Exception as e:
            self.log.warn(
                "Could not send {message!r} to {destination}: {error}",
                message=message,
                destination=describeAddress(UDP, host, port),
                error=e,
            )


@implementer(IRetransmission)
class _DatagramRetransmission:
    """
    A response as sent in one datagram, to send again (an
    L{IRetransmission}): a completed UDP server
    transaction keeps this for Timer J instead of the messages (RFC 3261
    section 17.2.2).

    @ivar protocol: the socket it was sent from.
    @ivar data: the octets.
    @ivar host: the IP address it was sent to.
    @ivar port: the port it was sent to.
    """

    __slots__ = ("protocol", "data", "host", "port")

    def __init__(
        self, protocol: SIPDatagramProtocol, data: bytes, host: str, port: int
    ) -> None:
        self.protocol = protocol
        self.data = data
        self.host = host
        self.port = port

    def __repr__(self) -> str:
        startLine = self.data.split(b"\r\n", 1)[0]
        destination = describeAddress(UDP, self.host, self.port)
        return f"<Retransmission of {startLine!r} to {destination}>"

    def __call__(self) -> None:
        """
        Send the octets again, from the same socket if it still listens,
        else from another that can reach the address; failures are logged,
        as L{TransportLayer.sendResponse} does.
        """
        protocol = self.protocol
        if not protocol.connected:
            other = protocol.layer._datagramFor(self.host)
            if other is None:
                protocol.log.warn(
                    "Could not send {message!r} to {destination}: {error}",
                    message=self,
                    destination=describeAddress(UDP, self.host, self.port),
                    error=f"No UDP socket can reach {self.host}",
                )
                return
            protocol = other
        protocol.sendData(self.data, self.host, self.port, self)

    @property
    def response(self) -> Response:
        """
        The response parsed again from the octets.
        """
        message = parseMessage(self.data, DEFAULT_LIMITS)
        assert isinstance(message, Response)
        return message


@implementer(ISIPConnection, IHandshakeListener)
class SIPStreamProtocol(Protocol):
    """
    One TCP or TLS connection carrying SIP, in either direction.

    Incoming bytes go through a L{StreamParser}, byte by byte if need be.
    A double-CRLF ping is answered with a CRLF pong (RFC 5626 section
    3.5.1). When framing is lost (no Content-Length, a message over the
    size limit) the error is answered if a response can be addressed and
    the connection closed. A connection silent for the layer's idle timeout
    is closed (RFC 3261 section 18 leaves the duration to the
    implementation).

    @ivar layer: the L{TransportLayer} this connection belongs to.
    @ivar transportName: C{"TCP"} or C{"TLS"}.
    @ivar connected: C{True} from connection until it is lost.
    @ivar localHost: our address on this connection.
    @ivar localPort: our port on this connection.
    @ivar peerHost: the peer's address (IPv6 without brackets).
    @ivar peerPort: the peer's port.
    @ivar outbound: for a connection we opened, the pending connection
        record whose queued messages go out once it is ready; C{None} for a
        connection a peer opened to us.
    @ivar source: the L{Source} that messages from this connection carry.
    """

    log = Logger()
    reliable = True

    def __init__(
        self,
        layer: TransportLayer,
        transportName: str,
        outbound: _PendingConnection | None = None,
    ) -> None:
        self.layer = layer
        self.transportName = transportName
        self.outbound = outbound
        self.connected = False
        self.closing = False
        self.localHost = ""
        self.localPort = 0
        self.peerHost = ""
        self.peerPort = 0
        self.source: Source | None = None
        self._parser = StreamParser(layer.limits)
        self._idleCall: IDelayedCall | None = None
        self._lostWaiters: list[Deferred[None]] | None = []

    def __repr__(self) -> str:
        peer = describeAddress(self.transportName, self.peerHost, self.peerPort)
        return f"<SIPStreamProtocol {peer}>"

    @property
    def key(self) -> _ConnectionKey:
        """
        The index of this connection: transport, peer address and port
        (RFC 3261 section 18).
        """
        return (self.transportName, self.peerHost, self.peerPort)

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.connected = True
        self.localHost, self.localPort = _addressHostPort(self.transport.getHost())
        host, self.peerPort = _addressHostPort(self.transport.getPeer())
        self.peerHost = normalizeHost(host) if host else host
        self.source = Source(self, self.peerHost, self.peerPort)
        if not self.layer.streamConnectionMade(self):
            return
        timeout = self.layer.idleTimeout
        if timeout:
            self._idleCall = self.layer.clock.callLater(timeout, self._idleTimedOut)
        if self.outbound is not None and self.transportName != TLS:
            self.layer.outboundReady(self)

    def handshakeCompleted(self) -> None:
        """
        The TLS handshake finished: an outbound TLS connection is ready for
        its queued messages (L{IHandshakeListener}).
        """
        if self.outbound is not None and self.connected and not self.closing:
            self.layer.outboundReady(self)

    def dataReceived(self, data: bytes) -> None:
        """
        Feed received octets to the stream parser and hand what comes out to
        the layer; never raises.
        """
        if self.closing:
            return
        self._touch()
        try:
            items = self._parser.feed(data)
            for item in items:
                if self.closing:
                    break
                self._itemReceived(item)
        except Exception:
            self.log.failure(
                "Unexpected error handling data on {connection!r}; closing it",
                connection=self,
            )
            self.abort()

    def _itemReceived(self, item: Request | Response | KeepAlive | ParseError) -> None:
        """
        Dispatch one thing the stream parser produced.
        """
        source = self.source
        assert source is not None
        if isinstance(item, KeepAlive):
            # RFC 5626 section 3.5.1: a CRLF CRLF ping gets a CRLF pong.
            self.writeBytes(b"\r\n")
        elif isinstance(item, ParseError):
            self.layer.parseErrorReceived(item, source)
            if item.fatal:
                self.log.info(
                    "Closing {connection!r}: message framing lost ({error})",
                    connection=self,
                    error=item,
                )
                self.closing = True
                if self.transport is not None:
                    self.transport.loseConnection()
        else:
            self.layer.messageReceived(item, source)

    def writeBytes(self, data: bytes) -> None:
        """
        Write octets to the peer, counting as activity for the idle timeout.
        """
        if self.transport is None or not self.connected:
            raise TransportError(f"{self!r} is closed")
        self.transport.write(data)
        self._touch()

    def sendMessage(self, message: Message, host: str, port: int) -> None:
        """
        Serialize C{message} and write it to the peer; C{host} and C{port}
        are ignored. A closed connection logs and drops it
        (L{ISIPConnection}).
        """
        try:
            self.writeBytes(message.toBytes())
        except Exception as e:
            self.log.warn(
                "Could not send {message!r} on {connection!r}: {error}",
                message=message,
                connection=self,
                error=e,
            )

    def abort(self) -> None:
        """
        Close the connection at once, dropping anything not yet written.
        """
        self.closing = True
        transport = self.transport
        if transport is None:
            return
        # Twisted's ITCPTransport offers abortConnection; a plain
        # ITransport (a test's StringTransport, say) may not.
        abortConnection: Callable[[], None] | None = getattr(
            transport, "abortConnection", None
        )
        if abortConnection is not None:
            abortConnection()
        else:
            transport.loseConnection()

    def close(self) -> Deferred[None]:
        """
        Close the connection after pending writes.

        @return: a L{Deferred} that fires when the connection is lost.
        """
        waiter = self.whenClosed()
        if self.transport is not None and self.connected:
            self.closing = True
            self.transport.loseConnection()
        return waiter

    def whenClosed(self) -> Deferred[None]:
        """
        A L{Deferred} that fires when the connection is lost (at once if it
        already is).
        """
        if self._lostWaiters is None:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._lostWaiters.append(d)
        return d

    def _touch(self) -> None:
        """
        Restart the idle timeout: there was traffic.
        """
        call = self._idleCall
        timeout = self.layer.idleTimeout
        if call is not None and timeout and call.active():
            call.reset(timeout)

    def _idleTimedOut(self) -> None:
        self._idleCall = None
        self.log.info(
            "Closing {connection!r}: idle for {timeout} s",
            connection=self,
            timeout=self.layer.idleTimeout,
        )
        self.closing = True
        if self.transport is not None:
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.connected = False
        self.closing = True
        call = self._idleCall
        self._idleCall = None
        if call is not None and call.active():
            call.cancel()
        try:
            self.layer.streamConnectionLost(self, reason)
        finally:
            waiters, self._lostWaiters = self._lostWaiters, None
            for waiter in waiters or ():
                waiter.callback(None)


class SIPStreamFactory(Factory):
    """
    Builds a L{SIPStreamProtocol} for each connection a peer opens to a
    stream listener. Connections beyond the layer's C{maxConnections} are
    closed as soon as they open (the protocol asks the layer).

    @ivar layer: the L{TransportLayer}.
    @ivar transportName: C{"TCP"} or C{"TLS"}.
    """

    noisy = False

    def __init__(self, layer: TransportLayer, transportName: str) -> None:
        self.layer = layer
        self.transportName = transportName

    def buildProtocol(self, addr: IAddress | None) -> SIPStreamProtocol:
        return SIPStreamProtocol(self.layer, self.transportName)


class _StreamClientFactory(ClientFactory):
    """
    Builds the protocol for one connection we open, and reports a failure to
    connect to the layer.
    """

    noisy = False

    def __init__(self, layer: TransportLayer, pending: _PendingConnection) -> None:
        self.layer = layer
        self.pending = pending

    def buildProtocol(self, addr: IAddress | None) -> SIPStreamProtocol:
        return SIPStreamProtocol(self.layer, self.pending.transport, self.pending)

    def clientConnectionFailed(self, connector: IConnector, reason: Failure) -> None:
        self.layer.outboundFailed(self.pending, reason)


@dataclasses.dataclass(slots=True, eq=False)
class _PendingConnection:
    """
    A connection we are opening, and the messages waiting for it.

    @ivar key: transport, peer address and port.
    @ivar serverName: the host name (or address) to verify a TLS
        certificate against.
    @ivar queue: octets to write once connected, each with the L{Deferred}
        returned to whoever asked for it.
    @ivar connector: the connector, to stop it when the layer stops.
    @ivar done: set once the connection is ready or has failed.
    """

    key: _ConnectionKey
    serverName: str
    queue: list[tuple[bytes, Deferred[None]]] = dataclasses.field(default_factory=list)
    connector: IConnector | None = None
    done: bool = False

    @property
    def transport(self) -> str:
        return self.key[0]


@dataclasses.dataclass(frozen=True, slots=True)
class _Listener:
    """
    A port we listen on, for Via sent-by values and for stopping.
    """

    transport: str
    port: IListeningPort
    host: str
    number: int

    @property
    def family(self) -> socket.AddressFamily:
        return addressFamily(self.host)


@implementer(IResolutionReceiver)
class _FirstAddress:
    """
    Collects the addresses a host name resolves to, and fires a
    L{Deferred} with the first one (IPv4 preferred).
    """

    def __init__(self, hostName: str) -> None:
        self.hostName = hostName
        self.addresses: list[str] = []
        self.deferred: Deferred[str] = Deferred()

    def resolutionBegan(self, resolutionInProgress: IHostResolution) -> None:
        pass

    def addressResolved(self, address: IAddress) -> None:
        host, _ = _addressHostPort(address)
        if host:
            self.addresses.append(host)

    def resolutionComplete(self) -> None:
        if not self.addresses:
            self.deferred.errback(
                TransportError(f"Host name {self.hostName!r} does not resolve")
            )
            return
        ipv4 = [a for a in self.addresses if addressFamily(a) == socket.AF_INET]
        self.deferred.callback(normalizeHost((ipv4 or self.addresses)[0]))


@implementer(ITransportLayer)
class TransportLayer:
    """
    The SIP transport layer (RFC 3261 section 18): listening sockets, stream
    connections, and the routing of messages between them and the core.

    Received requests have C{received}/C{rport} stamped on their top Via
    and go to C{receiver.messageReceived} with their L{Source}; responses
    whose top Via sent-by we did not insert are discarded (RFC 3261 section
    18.1.2). Bytes that do not parse are answered (400, 505, 513 ...) when a
    response can be addressed, logged, and reported to
    C{receiver.parseErrorReceived}.

    @ivar receiver: the L{IMessageReceiver} messages go to; may be set after
        construction (the UAS core usually needs the layer to exist first).
        While C{None}, messages are logged and dropped.
    @ivar clock: the reactor's L{IReactorTime}, for idle timeouts.
    @ivar limits: size limits for received messages.
    @ivar maxConnections: how many stream connections peers may have open
        to us at once; further ones are closed when they open.
    @ivar idleTimeout: seconds of silence after which a stream connection
        is closed, or C{None} for never.
    @ivar connectTimeout: seconds to wait for an outgoing TCP connection.
    @ivar udpRequestLimit: requests larger than this many octets go over
        TCP rather than UDP (RFC 3261 section 18.1.1), or C{None} to never
        switch.
    @ivar udpReceiveBuffer: the kernel receive buffer to ask for on each
        UDP socket, in bytes (see L{DEFAULT_UDP_RECEIVE_BUFFER}), or
        C{None} to leave the system default.
    @ivar advertisedHost: the host to write in Via sent-by, or C{None} to
        use the address of the listening socket (or, for a wildcard bind,
        the local address that routes to the destination).
    """

    log = Logger()

    def __init__(
        self,
        reactor: IReactorTime,
        receiver: IMessageReceiver | None = None,
        limits: Limits = DEFAULT_LIMITS,
        maxConnections: int = DEFAULT_MAX_CONNECTIONS,
        idleTimeout: float | None = DEFAULT_IDLE_TIMEOUT,
        *,
        connectTimeout: float = DEFAULT_CONNECT_TIMEOUT,
        udpRequestLimit: int | None = DEFAULT_UDP_REQUEST_LIMIT,
        udpReceiveBuffer: int | None = DEFAULT_UDP_RECEIVE_BUFFER,
        advertisedHost: str | None = None,
        trustRoot: IOpenSSLTrustRoot | None = None,
        clientCertificate: PrivateCertificate | None = None,
    ) -> None:
        """
        @param reactor: provides L{IReactorTime}, L{IReactorUDP} and
            L{IReactorTCP} (and L{IReactorPluggableNameResolver} to send to
            host names).
        @param trustRoot: the certificate authorities that TLS servers we
            connect to must chain to; the platform's when C{None}.
        @param clientCertificate: our certificate for mutual TLS, if any.
        """
        self._reactor = reactor
        self.clock = reactor
        self.receiver = receiver
        self.limits = limits
        self.maxConnections = maxConnections
        self.idleTimeout = idleTimeout
        self.connectTimeout = connectTimeout
        self.udpRequestLimit = udpRequestLimit
        self.udpReceiveBuffer = udpReceiveBuffer
        self.advertisedHost = advertisedHost
        self._trustRoot = trustRoot
        self._clientCertificate = clientCertificate
        self._datagrams: list[SIPDatagramProtocol] = []
        self._listeners: list[_Listener] = []
        self._connections: dict[_ConnectionKey, SIPStreamProtocol] = {}
        self._streams: set[SIPStreamProtocol] = set()
        self._inbound = 0
        self._pending: dict[_ConnectionKey, _PendingConnection] = {}
        self._sentBys: set[tuple[str, int]] = set()

    # Listening

    def listen(self, description: str) -> Deferred[IListeningPort]:
        """
        Listen as C{description} says: C{udp:PORT[:interface=HOST]}, or a
        stream endpoint string (C{tcp:...}, C{ssl:...} or its alias
        C{tls:...}); see L{sipevents.sip.endpoints}.

        @return: a L{Deferred} firing with the listening port, or failing
            with C{ValueError} for a bad description or
            L{twisted.internet.error.CannotListenError}.
        """
        try:
            spec = parseListenDescription(description)
            if spec.transport != UDP:
                endpoint = streamServerEndpoint(self._reactor, spec)
                return self.listenOn(endpoint, spec.transport)
            protocol = SIPDatagramProtocol(self)
            port = listenUDP(IReactorUDP(self._reactor), spec, protocol)
        except Exception:
            return fail()
        self._growReceiveBuffer(port)
        self._datagrams.append(protocol)
        self._addListener(UDP, port)
        return succeed(port)

    def listenOn(
        self, endpoint: IStreamServerEndpoint, transportName: str
    ) -> Deferred[IListeningPort]:
        """
        Listen for stream connections on C{endpoint}; for example a TLS
        endpoint made from in-memory certificates.

        @param transportName: C{"TCP"} or C{"TLS"}, as Vias will say.
        @return: a L{Deferred} firing with the listening port.
        """
        factory = SIPStreamFactory(self, transportName)
        d = endpoint.listen(factory)

        def listening(port: IListeningPort) -> IListeningPort:
            self._addListener(transportName, port)
            return port

        return d.addCallback(listening)

    def _growReceiveBuffer(self, port: object) -> None:
        """
        Ask the kernel for a receive buffer of L{udpReceiveBuffer} bytes on
        a UDP port's socket (where it has one: in-memory ports do not).
        """
        size = self.udpReceiveBuffer
        sock = getattr(port, "socket", None)
        if not size or not isinstance(sock, socket.socket):
            return
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
            granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        except OSError as e:
            self.log.info("Cannot set the UDP receive buffer: {error}", error=e)
            return
        self.log.info(
            "UDP receive buffer: {granted} bytes (asked for {size})",
            granted=granted,
            size=size,
        )

    def _addListener(self, transport: str, port: IListeningPort) -> None:
        host, number = _addressHostPort(port.getHost())
        self._listeners.append(_Listener(transport, port, normalizeHost(host), number))
        self.log.info(
            "SIP listening on {listener}", listener=describeListener(transport, port)
        )

    @property
    def listeners(self) -> list[tuple[str, IListeningPort]]:
        """
        The ports we listen on, each with its transport name.
        """
        return [(listener.transport, listener.port) for listener in self._listeners]

    @property
    def connections(self) -> list[SIPStreamProtocol]:
        """
        The open stream connections, in both directions.
        """
        return [c for c in self._streams if c.connected]

    def stopListening(self) -> Deferred[None]:
        """
        Stop every listening port, stop connecting, and close every stream
        connection.

        @return: a L{Deferred} that fires when all ports are closed and all
            connections lost.
        """
        waiting: list[Deferred[Any]] = []
        listeners, self._listeners = self._listeners, []
        self._datagrams = []
        for listener in listeners:
            waiting.append(maybeDeferred(listener.port.stopListening))
        for pending in list(self._pending.values()):
            connector = pending.connector
            if connector is not None:
                try:
                    connector.stopConnecting()
                except NotConnectingError:
                    pass
        for connection in list(self._streams):
            waiting.append(connection.close())
        return gatherResults(waiting, consumeErrors=True).addCallback(lambda _: None)

    # Receiving (called by the protocols)

    def datagramReceived(
        self, connection: SIPDatagramProtocol, data: bytes, host: str, port: int
    ) -> None:
        """
        One datagram arrived on C{connection} from C{host} and C{port}.
        """
        if not data or (data[0] in (10, 13) and not data.strip(b"\r\n")):
            # A keep-alive (RFC 5626 section 3.5.1), or an empty datagram.
            return
        source = connection.sourceFor(host, port)
        try:
            message = parseMessage(data, self.limits)
        except ParseError as e:
            self.parseErrorReceived(e, source)
            return
        if len(data) > self.limits.maxMessageSize:
            self.parseErrorReceived(MessageTooLarge(partial=message), source)
            return
        self.messageReceived(message, source)

    def messageReceived(self, message: Request | Response, source: Source) -> None:
        """
        A well-formed message arrived from C{source}: stamp a request's top
        Via (RFC 3261 section 18.2.1, RFC 3581 section 4), check a
        response's (RFC 3261 section 18.1.2), and deliver it.
        """
        if isinstance(message, Request):
            try:
                stampReceived(message, source.host, source.port)
            except ParseError as e:
                e.partial = e.partial or message
                self.parseErrorReceived(e, source)
                return
        elif not self._isOurSentBy(message):
            self.log.info(
                "Discarding {message!r} from {peer}: top Via sent-by {sentBy!r}"
                " is not ours (RFC 3261 section 18.1.2)",
                message=message,
                peer=describeAddress(source.transport, source.host, source.port),
                sentBy=_sentByText(message),
            )
            return
        receiver = self.receiver
        if receiver is None:
            self.log.warn("No receiver; dropping {message!r}", message=message)
            return
        try:
            receiver.messageReceived(message, source)
        except Exception:
            self.log.failure(
                "Receiver failed on {message!r} from {peer}; message dropped",
                message=message,
                peer=describeAddress(source.transport, source.host, source.port),
            )

    def parseErrorReceived(self, error: ParseError, source: Source) -> None:
        """
        Bytes from C{source} did not parse. Answer with the error's status
        and reason when its partial message is a request (not an ACK) with
        the fields a response needs, else drop it; log either way, then
        tell the receiver.
        """
        partial = error.partial
        answered = False
        if isinstance(partial, Request) and partial.method != "ACK":
            response = self._errorResponse(error, partial, source)
            if response is not None:
                self.sendResponse(response, source)
                answered = True
        self.log.warn(
            "Bad message from {peer}: {status} {reason} ({action})",
            peer=describeAddress(source.transport, source.host, source.port),
            status=error.status,
            reason=error.reason,
            action="answered" if answered else "dropped",
            fatal=error.fatal,
        )
        receiver = self.receiver
        if receiver is None:
            return
        try:
            receiver.parseErrorReceived(error, source)
        except Exception:
            self.log.failure("Receiver failed on a parse error report")

    def _errorResponse(
        self, error: ParseError, partial: Request, source: Source
    ) -> Response | None:
        """
        The response to a request that did not parse, or C{None} when it
        cannot be addressed.
        """
        if not _addressable(partial):
            return None
        try:
            stampReceived(partial, source.host, source.port)
        except ParseError:
            return None
        reason = _safeReason(error.reason, error.status)
        try:
            return makeResponse(
                partial,
                error.status,
                reason,
                toTag=secrets.token_hex(8),
                headers=error.headers,
            )
        except ParseError:
            # A To field too broken to say whether it has a tag is copied
            # as it is.
            return makeResponse(partial, error.status, reason, headers=error.headers)

    def streamConnectionMade(self, connection: SIPStreamProtocol) -> bool:
        """
        A stream connection opened. One a peer opened beyond
        C{maxConnections} is aborted at once.

        @return: whether the connection was kept.
        """
        if connection.outbound is None:
            if self._inbound >= self.maxConnections:
                self.log.warn(
                    "Refusing connection from {peer}: {limit} connections open",
                    peer=describeAddress(
                        connection.transportName,
                        connection.peerHost,
                        connection.peerPort,
                    ),
                    limit=self.maxConnections,
                )
                connection.abort()
                return False
            self._inbound += 1
            self._connections[connection.key] = connection
        self._streams.add(connection)
        return True

    def outboundReady(self, connection: SIPStreamProtocol) -> None:
        """
        A connection we opened is ready (TCP connected, or TLS handshake
        done): index it for reuse and write what waited for it.
        """
        pending = connection.outbound
        assert pending is not None
        if pending.done:
            return
        pending.done = True
        if self._pending.get(pending.key) is pending:
            del self._pending[pending.key]
        self._connections[pending.key] = connection
        queue, pending.queue = pending.queue, []
        for data, d in queue:
            try:
                connection.writeBytes(data)
            except Exception:
                d.errback()
            else:
                d.callback(None)

    def outboundFailed(self, pending: _PendingConnection, reason: Failure) -> None:
        """
        A connection we opened failed before it was ready: fail what waited
        for it (RFC 3261 section 18.4).
        """
        if pending.done:
            return
        pending.done = True
        if self._pending.get(pending.key) is pending:
            del self._pending[pending.key]
        transport, host, port = pending.key
        self.log.warn(
            "Could not connect to {peer}: {error}",
            peer=describeAddress(transport, host, port),
            error=reason.getErrorMessage(),
        )
        queue, pending.queue = pending.queue, []
        for _, d in queue:
            d.errback(
                TransportError(
                    f"Cannot connect to {describeAddress(transport, host, port)}:"
                    f" {reason.getErrorMessage()}"
                )
            )

    def streamConnectionLost(
        self, connection: SIPStreamProtocol, reason: Failure
    ) -> None:
        """
        A stream connection closed: forget it, and fail what waited for it
        if it never became ready.
        """
        if connection in self._streams:
            self._streams.discard(connection)
            if connection.outbound is None:
                self._inbound -= 1
        for key in (connection.key, connection.outbound and connection.outbound.key):
            if key and self._connections.get(key) is connection:
                del self._connections[key]
        if connection.outbound is not None:
            self.outboundFailed(connection.outbound, reason)

    # Sending

    def sendResponse(self, response: Response, source: Source) -> None:
        """
        Send C{response} to a request that came from C{source}
        (RFC 3261 section 18.2.2): on the same stream connection while it is
        open; otherwise over a new (or reused) connection to the C{received}
        address and sent-by port; for UDP, from the socket the request came
        on (RFC 3581 section 4) to the address L{responseAddress} gives.

        Failures are logged, never raised.
        """
        try:
            self._sendResponse(response, source)
        except Exception:
            self.log.failure("Could not send {response!r}", response=response)

    def sendFinalResponse(
        self, response: Response, source: Source
    ) -> IRetransmission | None:
        """
        Send C{response} as L{sendResponse} does, and when it went out at
        once in one datagram to an IP address (as every response to a UDP
        request with a numeric sent-by or C{received} does), return an
        L{IRetransmission} that sends the same octets there again: what a
        completed non-INVITE server transaction keeps for retransmissions
        (RFC 3261 section 17.2.2) in place of the messages. Otherwise return C{None}.

        Failures are logged, never raised.
        """
        try:
            return self._sendResponse(response, source)
        except Exception:
            self.log.failure("Could not send {response!r}", response=response)
            return None

    def _sendResponse(
        self, response: Response, source: Source
    ) -> _DatagramRetransmission | None:
        connection = source.connection
        if connection.reliable and connection.connected:
            connection.sendMessage(response, source.host, source.port)
            return None
        via = response.topVia
        if via is None:
            self.log.warn("Not sending {response!r}: no Via", response=response)
            return None
        host, port = responseAddress(via, source)
        if not connection.reliable and isIPAddress(host):
            # The common case needs no resolution, so no Deferred either.
            try:
                return self._sendDatagramResponse(
                    response, normalizeHost(host), port, connection
                )
            except Exception as e:
                self.log.warn(
                    "Could not send {response!r} to {destination}: {error}",
                    response=response,
                    destination=formatHostPort(host, port),
                    error=str(e),
                )
                return None
        if connection.reliable:
            data = response.toBytes()
            d = self._resolve(host).addCallback(
                lambda ip: self._sendStream(
                    connection.transportName, ip, port, data, host
                )
            )
        else:
            d = self._resolve(host).addCallback(
                lambda ip: self._sendDatagramResponse(response, ip, port, connection)
            )

        def failed(failure: Failure) -> None:
            self.log.warn(
                "Could not send {response!r} to {destination}: {error}",
                response=response,
                destination=formatHostPort(host, port),
                error=failure.getErrorMessage(),
            )

        d.addErrback(failed)
        return None

    def _sendDatagramResponse(
        self, response: Response, host: str, port: int, preferred: ISIPConnection
    ) -> _DatagramRetransmission | None:
        """
        Send a response over UDP, from the socket the request came on when
        it can reach C{host} (RFC 3581 section 4: symmetric response).

        @return: the response as sent, to send again, when it went through
            one of our UDP sockets.
        """
        datagram: SIPDatagramProtocol | None
        if isinstance(preferred, SIPDatagramProtocol):
            datagram = preferred
            if not (preferred.connected and preferred.canReach(host)):
                datagram = self._datagramFor(host)
        elif preferred.connected and addressFamily(preferred.localHost) == (
            addressFamily(host)
        ):
            preferred.sendMessage(response, host, port)
            return None
        else:
            datagram = self._datagramFor(host)
        if datagram is None:
            raise TransportError(f"No UDP socket can reach {host}")
        data = response.toBytes()
        datagram.sendData(data, host, port, response)
        return _DatagramRetransmission(datagram, data, host, port)

    def _datagramFor(self, host: str) -> SIPDatagramProtocol | None:
        """
        A listening UDP socket that can send to C{host}, preferring one of
        the same address family over a dual-stack one.
        """
        family = addressFamily(host)
        fallback = None
        for datagram in self._datagrams:
            if not datagram.connected:
                continue
            if datagram.family == family:
                return datagram
            if fallback is None and datagram.canReach(host):
                fallback = datagram
        return fallback

    def sentBy(self, transport: str, targetHost: str) -> tuple[str, int]:
        """
        The host and port to write in the sent-by of a request going over
        C{transport} to C{targetHost} (RFC 3261 section 18.1.1): where we
        listen for that transport and address family, preferring the
        C{advertisedHost} when set.
        """
        transport = transport.upper()
        family = addressFamily(targetHost) if isIPAddress(targetHost) else None

        def matches(listener: _Listener, sameTransport: bool) -> bool:
            if sameTransport and listener.transport != transport:
                return False
            return family is None or listener.family == family

        chosen = None
        for sameTransport in (True, False):
            for listener in self._listeners:
                if matches(listener, sameTransport):
                    chosen = listener
                    break
            if chosen is not None:
                break
        if chosen is None:
            port = defaultPort(transport)
            host = ""
        else:
            port = chosen.number
            host = chosen.host
        if self.advertisedHost:
            host = self.advertisedHost
        elif host in _WILDCARDS:
            host = _localAddressFor(targetHost)
        return host, port

    def prepareRequest(self, request: Request, target: Target, branch: str) -> None:
        """
        Add our top Via to C{request}:
        C{SIP/2.0/<transport> <host>:<port>;branch=<branch>;rport}
        (RFC 3261 section 8.1.1.7 and 18.1.1, RFC 3581 section 3).

        @param branch: the transaction's branch, starting with C{z9hG4bK}.
        """
        host, port = self.sentBy(target.transport, target.host)
        self._sentBys.add((normalizeHost(host), port))
        request.headers.addFirst(
            "Via",
            f"SIP/2.0/{target.transport.upper()} {formatHostPort(host, port)}"
            f";branch={branch};rport",
        )

    def _isOurSentBy(self, response: Response) -> bool:
        """
        Whether the top Via of C{response} names a sent-by that
        L{prepareRequest} wrote (RFC 3261 section 18.1.2).
        """
        try:
            via = response.topVia
        except ParseError:
            return False
        if via is None:
            return False
        port = via.port or defaultPort(via.transport)
        return (normalizeHost(via.host), port) in self._sentBys

    def sendRequest(self, request: Request, target: Target) -> Deferred[None]:
        """
        Send C{request} (already carrying our top Via, see
        L{prepareRequest}) to C{target}: over the UDP socket of the
        target's address family, or over an open TCP/TLS connection to it
        (one we opened or one the peer opened to us), or over a new one
        (RFC 3261 section 18.1.1). A UDP request over
        C{udpRequestLimit} octets goes over TCP, with its Via changed, and
        falls back to UDP if the connection cannot be opened.

        @return: a L{Deferred} that fires with C{None} once the message is
            written, or fails with L{TransportError} (no socket, name does
            not resolve, connection failed) or the socket's error.
        """
        try:
            transport = target.transport.upper()
            data = request.toBytes()
            limit = self.udpRequestLimit
            host = target.host
            if (
                transport == UDP
                and (limit is None or len(data) <= limit)
                and isIPAddress(host)
            ):
                # The common case (a NOTIFY to an address over UDP) needs
                # no resolution: send at once, without a Deferred chain.
                self._sendDatagramRequest(normalizeHost(host), data, target.port)
                return succeed(None)
            if transport == UDP and limit is not None and len(data) > limit:
                return self._resolve(target.host).addCallback(
                    self._sendLargeRequest, request, target
                )
            d = self._resolve(target.host)
            if transport == UDP:
                return d.addCallback(self._sendDatagramRequest, data, target.port)
            return d.addCallback(
                lambda ip: self._sendStream(
                    transport, ip, target.port, data, target.host
                )
            )
        except Exception:
            return fail()

    def _sendDatagramRequest(self, ip: str, data: bytes, port: int) -> None:
        datagram = self._datagramFor(ip)
        if datagram is None:
            raise TransportError(f"No UDP socket can reach {ip}")
        datagram.sendBytes(data, ip, port)

    def _sendLargeRequest(
        self, ip: str, request: Request, target: Target
    ) -> Deferred[None]:
        """
        RFC 3261 section 18.1.1: a request over the size limit goes over
        TCP, with the top Via changed to say so; if the connection is
        refused, it goes over UDP after all.
        """
        _setViaTransport(request, TCP)
        d = self._sendStream(TCP, ip, target.port, request.toBytes(), target.host)

        def fallBack(failure: Failure) -> None:
            error = failure.value
            if isinstance(error, BaseException) and not isinstance(
                error, TransportError
            ):
                raise error
            self.log.info(
                "TCP to {destination} failed; sending {request!r} over UDP",
                destination=formatHostPort(ip, target.port),
                request=request,
            )
            _setViaTransport(request, UDP)
            self._sendDatagramRequest(ip, request.toBytes(), target.port)

        return d.addErrback(fallBack)

    def _sendStream(
        self, transport: str, ip: str, port: int, data: bytes, serverName: str
    ) -> Deferred[None]:
        """
        Write C{data} on an open connection to C{(transport, ip, port)}, or
        queue it on one being opened, or open one.

        @param serverName: the name a TLS server certificate must match.
        """
        key = (transport, ip, port)
        connection = self._connections.get(key)
        if connection is not None and connection.connected and not connection.closing:
            connection.writeBytes(data)
            return succeed(None)
        pending = self._pending.get(key)
        if pending is None:
            pending = self._connect(key, serverName)
        d: Deferred[None] = Deferred()
        pending.queue.append((data, d))
        return d

    def _connect(self, key: _ConnectionKey, serverName: str) -> _PendingConnection:
        """
        Start opening a TCP or TLS connection.
        """
        transport, ip, port = key
        pending = _PendingConnection(key, serverName)
        self._pending[key] = pending
        factory: ClientFactory[Any] = _StreamClientFactory(self, pending)
        if transport == TLS:
            options = optionsForClientTLS(
                serverName,
                trustRoot=self._trustRoot,
                clientCertificate=self._clientCertificate,
            )
            factory = TLSMemoryBIOFactory(options, True, factory)
        elif transport != TCP:
            raise TransportError(f"Unsupported transport {transport}")
        self.log.debug(
            "Connecting to {peer}", peer=describeAddress(transport, ip, port)
        )
        pending.connector = IReactorTCP(self._reactor).connectTCP(
            ip, port, factory, timeout=self.connectTimeout
        )
        return pending

    def _resolve(self, host: str) -> Deferred[str]:
        """
        The IP address to send to for C{host}: itself when it is one, else
        the first address it resolves to (IPv4 preferred; RFC 3263 section
        4.2 without SRV).
        """
        if isIPAddress(host):
            return succeed(normalizeHost(host))
        resolver = IReactorPluggableNameResolver(self._reactor, None)
        if resolver is None:
            return fail(TransportError(f"Cannot resolve host name {host!r}"))
        receiver = _FirstAddress(host)
        resolver.nameResolver.resolveHostName(receiver, host)
        return receiver.deferred


def _setViaTransport(request: Request, transport: str) -> None:
    """
    Change the transport of the top Via (RFC 3261 section 18.1.1).
    """
    via = request.topVia
    if via is not None and via.transport.upper() != transport:
        replaceTopVia(request, dataclasses.replace(via, transport=transport))


def _sentByText(message: Message) -> str:
    """
    The top Via sent-by of C{message} for a log line.
    """
    try:
        via = message.topVia
    except ParseError:
        return "(bad Via)"
    return via.sentBy if via is not None else "(no Via)"


def _localAddressFor(host: str) -> str:
    """
    Our address on the route to C{host}, for a Via when we listen on a
    wildcard address: found by connecting a UDP socket, which sends
    nothing. Falls back to the machine's host name.
    """
    if isIPAddress(host):
        ip = normalizeHost(host)
        family = addressFamily(ip)
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect((ip, 9))
                local: str = probe.getsockname()[0]
                return local
        except OSError:
            pass
    return socket.gethostname()
