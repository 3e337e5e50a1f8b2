# -*- test-case-name: tests.test_transport,tests.test_testing -*-
"""
Test doubles for the SIP layer: a connection, a receiver, a UDP reactor and
a transport layer that record instead of sending, stream connections to a
string transport, throw-away certificates, and the generic request and
response builders. Import them from L{sipevents.testing}.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
from collections.abc import Iterable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import InvalidAddressError
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocol,
    IProtocolFactory,
    IReactorUDP,
    IUDPTransport,
)
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from zope.interface import implementer

from sipevents.errors import ParseError
from sipevents.interfaces import (
    IMessageReceiver,
    IRetransmission,
    ISIPConnection,
    ITransportLayer,
)
from sipevents.sip.addresses import RELIABLE, Source, Target
from sipevents.sip.message import Message, Request, Response, makeResponse
from sipevents.sip.routing import formatHostPort
from sipevents.sip.uri import URI, parseURI

__all__ = [
    "RecordingTransportLayer",
    "FakeSIPConnection",
    "MemoryDatagramTransport",
    "MemoryReceiver",
    "MemoryUDPReactor",
    "buildRequest",
    "buildResponse",
    "connectStream",
    "makeCertificates",
    "newBranch",
    "newTag",
    "writeCertificates",
]


def newBranch() -> str:
    """
    A fresh RFC 3261 branch (C{z9hG4bK} and random hex; section 8.1.1.7).
    """
    return "z9hG4bK" + secrets.token_hex(8)


def newTag() -> str:
    """
    A fresh random From/To tag (RFC 3261 section 19.3).
    """
    return secrets.token_hex(6)


def _address(transport: str, host: str, port: int) -> IPv4Address | IPv6Address:
    """
    A Twisted address of the right family for C{host}.
    """
    if ":" in host:
        return IPv6Address(transport, host, port)  # type: ignore[arg-type]
    return IPv4Address(transport, host, port)  # type: ignore[arg-type]


@implementer(ISIPConnection)
class FakeSIPConnection:
    """
    An L{ISIPConnection} that records every message sent through it.

    @ivar sent: C{(message, host, port)} for each L{sendMessage} call.
    """

    def __init__(
        self,
        transportName: str = "UDP",
        localHost: str = "127.0.0.1",
        localPort: int = 5060,
        reliable: bool | None = None,
    ) -> None:
        """
        @param reliable: whether the transport is reliable; by default
            C{True} for TCP and TLS.
        """
        self.transportName = transportName
        self.reliable = transportName in RELIABLE if reliable is None else reliable
        self.connected = True
        self.localHost = localHost
        self.localPort = localPort
        self.sent: list[tuple[Message, str, int]] = []

    def sendMessage(self, message: Message, host: str, port: int) -> None:
        self.sent.append((message, host, port))

    def close(self) -> None:
        """
        Mark the connection closed, as a stream connection is once lost.
        """
        self.connected = False

    @property
    def messages(self) -> list[Message]:
        """
        The messages sent, in order.
        """
        return [message for message, _, _ in self.sent]


@implementer(IMessageReceiver)
class MemoryReceiver:
    """
    An L{IMessageReceiver} that records what the transport layer delivers.

    @ivar received: C{(message, source)} for each message.
    @ivar errors: C{(error, source)} for each parse error.
    """

    def __init__(self) -> None:
        self.received: list[tuple[Message, Source]] = []
        self.errors: list[tuple[ParseError, Source]] = []

    def messageReceived(self, message: Message, source: Source) -> None:
        self.received.append((message, source))

    def parseErrorReceived(self, error: ParseError, source: Source) -> None:
        self.errors.append((error, source))

    @property
    def messages(self) -> list[Message]:
        """
        The messages received, in order.
        """
        return [message for message, _ in self.received]

    @property
    def requests(self) -> list[Request]:
        """
        The requests received, in order.
        """
        return [m for m, _ in self.received if isinstance(m, Request)]

    @property
    def responses(self) -> list[Response]:
        """
        The responses received, in order.
        """
        return [m for m, _ in self.received if isinstance(m, Response)]


def buildRequest(
    method: str,
    uri: str | URI = "sip:bob@127.0.0.1",
    *,
    transport: str = "UDP",
    viaHost: str = "127.0.0.1",
    viaPort: int | None = 5060,
    branch: str | None = None,
    rport: bool = False,
    via: bool = True,
    fromURI: str = "sip:alice@127.0.0.1",
    fromTag: str | None = None,
    toURI: str | None = None,
    toTag: str | None = None,
    callId: str | None = None,
    cseq: int = 1,
    maxForwards: int = 70,
    contact: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    contentType: str | None = None,
) -> Request:
    """
    A well-formed request with Via, Max-Forwards, From, To, Call-ID and
    CSeq (RFC 3261 section 8.1.1), addressed on loopback by default.

    @param uri: the Request-URI, as text or parsed.
    @param transport: the Via transport.
    @param viaHost: the Via sent-by host (IPv6 without brackets).
    @param viaPort: the Via sent-by port, or C{None} to leave it out.
    @param branch: the Via branch; a fresh one by default.
    @param rport: add a valueless C{rport} parameter (RFC 3581 section 3).
    @param via: C{False} to build the request without a Via, as a UAC core
        does before L{sipevents.sip.transport.TransportLayer.prepareRequest}.
    @param fromTag: the From tag; a fresh one by default.
    @param toURI: the To URI; the Request-URI by default.
    @param toTag: a To tag (for an in-dialog request), or C{None}.
    @param callId: the Call-ID; a fresh one by default.
    @param contact: a Contact value, or C{None} for none.
    @param headers: more fields, appended in order.
    @param body: the body; Content-Length is computed on serialization.
    @param contentType: the Content-Type value, if any.
    """
    parsed = parseURI(uri) if isinstance(uri, str) else uri
    uriText = uri if isinstance(uri, str) else str(uri)
    fields: list[tuple[str, str]] = []
    if via:
        viaValue = (
            f"SIP/2.0/{transport} {formatHostPort(viaHost, viaPort)}"
            f";branch={branch or newBranch()}"
        )
        if rport:
            viaValue += ";rport"
        fields.append(("Via", viaValue))
    fields.append(("Max-Forwards", str(maxForwards)))
    fields.append(("From", f"<{fromURI}>;tag={fromTag or newTag()}"))
    to = f"<{toURI or uriText}>"
    if toTag is not None:
        to += f";tag={toTag}"
    fields.append(("To", to))
    fields.append(("Call-ID", callId or f"{secrets.token_hex(8)}@127.0.0.1"))
    fields.append(("CSeq", f"{cseq} {method}"))
    if contact is not None:
        fields.append(("Contact", contact))
    if contentType is not None:
        fields.append(("Content-Type", contentType))
    fields.extend(headers)
    return Request(method, parsed, fields, body)


def buildResponse(
    request: Request,
    code: int,
    reason: str | None = None,
    *,
    toTag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> Response:
    """
    A response to C{request} (RFC 3261 section 8.2.6.2), with a fresh To
    tag unless C{code} is 100 or C{toTag} is given.
    """
    if toTag is None and code != 100:
        toTag = newTag()
    return makeResponse(request, code, reason, toTag, headers, body)


@implementer(IUDPTransport, IListeningPort)
class MemoryDatagramTransport:
    """
    A UDP port in memory: records datagrams written, and stops like a real
    port (calling C{doStop} on its protocol).

    @ivar written: C{(datagram, (host, port))} for each write.
    @ivar host: the bound address.
    @ivar port: the bound port.
    @ivar protocol: the datagram protocol.
    @ivar listening: C{False} once stopped.
    """

    def __init__(
        self,
        protocol: DatagramProtocol,
        host: str,
        port: int,
        maxPacketSize: int = 8192,
    ) -> None:
        self.protocol = protocol
        self.host = host
        self.port = port
        self.maxPacketSize = maxPacketSize
        self.written: list[tuple[bytes, tuple[str, int]]] = []
        self.listening = True

    def write(self, packet: bytes, addr: Any = None) -> None:
        """
        Record a datagram. Like a real port, refuse a host name or an
        address of the other family (L{twisted.internet.udp.Port.write}).
        """
        host, port = addr[0], addr[1]
        ipv6 = ":" in self.host
        if ipv6 and not isIPv6Address(host):
            raise InvalidAddressError(  # type: ignore[no-untyped-call]
                host, "IPv6 port written to a non-IPv6 address"
            )
        if not ipv6 and not isIPAddress(host):
            raise InvalidAddressError(  # type: ignore[no-untyped-call]
                host, "IPv4 port written to a non-IPv4 address"
            )
        self.written.append((packet, (host, port)))

    def connect(self, host: str, port: int) -> None:
        raise NotImplementedError("connected UDP is not simulated")

    def getHost(self) -> IPv4Address | IPv6Address:
        return _address("UDP", self.host, self.port)

    def stopListening(self) -> Deferred[None]:
        if self.listening:
            self.listening = False
            self.protocol.doStop()  # type: ignore[no-untyped-call]
        return succeed(None)

    def startListening(self) -> None:
        pass

    def loseConnection(self) -> None:
        self.stopListening()

    def setBroadcastAllowed(self, enabled: bool) -> None:
        pass

    def getBroadcastAllowed(self) -> bool:
        return False

    @property
    def datagrams(self) -> list[bytes]:
        """
        The datagrams written, in order.
        """
        return [packet for packet, _ in self.written]


@implementer(IReactorUDP)
class MemoryUDPReactor(MemoryReactorClock):
    """
    L{MemoryReactorClock} that can also C{listenUDP}: each port is a
    L{MemoryDatagramTransport}, connected to its protocol at once.

    @ivar udpPorts: every port made, in order.
    """

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.udpPorts: list[MemoryDatagramTransport] = []
        self._nextPort = 40000

    def listenUDP(
        self,
        port: int,
        protocol: DatagramProtocol,
        interface: str = "",
        maxPacketSize: int = 8192,
    ) -> MemoryDatagramTransport:
        if port == 0:
            port = self._nextPort
            self._nextPort += 1
        host = interface or "0.0.0.0"
        transport = MemoryDatagramTransport(protocol, host, port, maxPacketSize)
        self.udpPorts.append(transport)
        protocol.makeConnection(transport)
        return transport


def connectStream(
    factory: IProtocolFactory,
    peer: tuple[str, int] = ("127.0.0.1", 40000),
    local: tuple[str, int] = ("127.0.0.1", 5060),
    transport: str = "TCP",
) -> tuple[IProtocol, StringTransport]:
    """
    Build a protocol from C{factory} as if C{peer} connected to C{local},
    and connect it to a L{StringTransport} that records what it writes.

    @return: the protocol and its transport.
    @raise ValueError: when the factory refuses the connection.
    """
    peerAddress = _address("TCP", *peer)
    protocol = factory.buildProtocol(peerAddress)
    if protocol is None:
        raise ValueError("The factory refused the connection")
    stringTransport = StringTransport(  # type: ignore[no-untyped-call]
        hostAddress=_address("TCP", *local), peerAddress=peerAddress
    )
    protocol.makeConnection(stringTransport)
    return protocol, stringTransport


@implementer(ITransportLayer)
class RecordingTransportLayer:
    """
    An L{ITransportLayer} recording instead of sending: give it to a C{UserAgent} on a
    L{twisted.internet.task.Clock} and a whole exchange (SUBSCRIBE, 200,
    NOTIFY ...) runs in a unit test without sockets.

    @ivar responses: every C{(response, source)} the user agent sent.
    @ivar requests: every C{(request, target)} the user agent sent.
    @ivar sendResults: L{Deferred}s handed out, in order, as the results of
        L{sendRequest} (to simulate slow or failing sends); an empty list
        means every send succeeds at once.
    @ivar advertisedHost: see L{ITransportLayer.advertisedHost}; C{None}.
    """

    advertisedHost: str | None = None

    def __init__(self, host: str = "127.0.0.1", port: int = 5060) -> None:
        self.host = host
        self.port = port
        self.responses: list[tuple[Response, Source]] = []
        self.requests: list[tuple[Request, Target]] = []
        self.sendResults: list[Deferred[None]] = []

    def sendResponse(self, response: Response, source: Source) -> None:
        """Record C{response}."""
        self.responses.append((response, source))

    def sendFinalResponse(
        self, response: Response, source: Source
    ) -> IRetransmission | None:
        """
        Record C{response} through L{sendResponse}; no wire form to keep,
        so the transaction keeps the messages.
        """
        self.sendResponse(response, source)
        return None

    def prepareRequest(self, request: Request, target: Target, branch: str) -> None:
        """Add the top Via a real transport layer would (RFC 3261 18.1.1)."""
        request.headers.addFirst(
            "Via",
            f"SIP/2.0/{target.transport} {self.host}:{self.port};branch={branch};rport",
        )

    def sendRequest(self, request: Request, target: Target) -> Deferred[None]:
        """Record C{request}; succeed, or hand out the next of L{sendResults}."""
        self.requests.append((request, target))
        if self.sendResults:
            return self.sendResults.pop(0)
        return succeed(None)

    def sentBy(self, transport: str, targetHost: str) -> tuple[str, int]:
        """Where we say we listen."""
        return (self.host, self.port)


def makeCertificates() -> tuple[bytes, bytes]:
    """
    A throw-away certificate authority and a server certificate signed by
    it, valid for a day for C{localhost}, 127.0.0.1 and ::1 (and for both
    server and client authentication), with P-256 keys.

    Trust the first with
    L{twisted.internet.ssl.trustRootFromCertificates}; serve with the
    second (L{twisted.internet.ssl.PrivateCertificate.loadPEM}, or a
    C{tls:} description's C{privateKey} and C{certKey}, L{writeCertificates}).

    @return: the CA certificate as PEM, and the server certificate and its
        private key as PEM, in one.
    """
    now = datetime.datetime.now(datetime.timezone.utc)
    caKey = ec.generate_private_key(ec.SECP256R1())
    caName = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sipevents test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(caName)
        .issuer_name(caName)
        .public_key(caKey.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(caKey, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(caName)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(caKey, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    keyPEM = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return ca.public_bytes(pem), cert.public_bytes(pem) + keyPEM


def writeCertificates(directory: str) -> tuple[bytes, str]:
    """
    Make certificates (L{makeCertificates}) and write the server's, with
    its key, to C{server.pem} in C{directory}, for a C{tls:} listening
    description (C{privateKey=PATH:certKey=PATH}).

    @param directory: an existing folder, which the caller removes.
    @return: the CA certificate as PEM (to trust), and the path written.
    """
    caPEM, serverPEM = makeCertificates()
    path = os.path.join(directory, "server.pem")
    with open(path, "wb") as f:
        f.write(serverPEM)
    return caPEM, path
