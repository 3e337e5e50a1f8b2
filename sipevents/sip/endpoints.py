# -*- test-case-name: tests.test_endpoints -*-
"""
Listening descriptions: C{udp:PORT[:interface=HOST]}, and Twisted's stream
endpoint strings (C{tcp:}, C{ssl:}, with C{tls:} as an alias of C{ssl:}).

Twisted has no endpoint strings for UDP, so C{udp:} descriptions are parsed
here with the same syntax and escaping rules as
L{twisted.internet.endpoints.serverFromString}: fields are separated by
C{:}, keyword fields are C{name=value}, and a backslash escapes the next
character, so an IPv6 interface is written C{interface=\\:\\:1} (or, for
UDP only, C{interface=[::1]}).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import (
    IListeningPort,
    IReactorUDP,
    IStreamServerEndpoint,
)
from twisted.internet.protocol import DatagramProtocol

from sipevents.sip.addresses import TCP, TLS, UDP
from sipevents.sip.routing import formatHostPort

__all__ = [
    "ListenDescription",
    "describeAddress",
    "describeListener",
    "isLoopback",
    "listenInterface",
    "listenUDP",
    "parseListenDescription",
    "streamServerEndpoint",
]

#: Twisted's default UDP receive buffer (8192) would truncate large
#: messages; RFC 3261 section 18.1.1 says implementations MUST handle
#: datagrams up to 65,535 bytes.
MAX_DATAGRAM_SIZE = 65535

#: Stream endpoint types and the Via transport each carries.
_STREAM_TYPES = {"tcp": TCP, "tcp6": TCP, "ssl": TLS, "tls": TLS}


@dataclass(frozen=True, slots=True)
class ListenDescription:
    """
    A parsed listening description.

    @ivar transport: C{"UDP"}, C{"TCP"} or C{"TLS"}.
    @ivar description: the text to give
        L{twisted.internet.endpoints.serverFromString} for a stream (C{tls:}
        rewritten to C{ssl:}); the original text for UDP.
    @ivar port: the UDP port (0 for any); C{None} for streams.
    @ivar interface: the UDP interface to bind (C{""} for all IPv4
        interfaces); C{""} for streams.
    """

    transport: str
    description: str
    port: int | None = None
    interface: str = ""


def _tokenize(description: str) -> list[tuple[str | None, str]]:
    """
    Split an endpoint description into fields at unescaped colons, each
    field into a keyword and value at its first unescaped C{=}; positional
    fields have keyword C{None}. Backslash escapes the next character, as in
    L{twisted.internet.endpoints.serverFromString}. Colons between
    brackets (C{[::1]}) need no escaping.
    """
    fields: list[tuple[str | None, str]] = []
    current: list[str] = []
    keyword: str | None = None
    escaped = False
    bracketed = False
    for char in description:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif bracketed or char == "[":
            # Colons inside an IPv6 reference need no escaping.
            bracketed = char != "]"
            current.append(char)
        elif char == ":":
            fields.append((keyword, "".join(current)))
            current = []
            keyword = None
        elif char == "=" and keyword is None:
            keyword = "".join(current)
            current = []
        else:
            current.append(char)
    if escaped:
        raise ValueError(f"Trailing backslash in {description!r}")
    fields.append((keyword, "".join(current)))
    return fields


def _parsePort(text: str, description: str) -> int:
    """
    A port number (0 meaning any free port).

    @raise ValueError: when C{text} is not a port.
    """
    if not text.isdigit() or int(text) > 65535:
        raise ValueError(f"Bad port {text!r} in {description!r}")
    return int(text)


def _parseUDP(description: str) -> ListenDescription:
    """
    Parse C{udp:PORT[:interface=HOST]} (also C{udp:port=PORT}).
    """
    fields = _tokenize(description)[1:]
    port: int | None = None
    interface = ""
    for keyword, value in fields:
        if keyword is None:
            if port is not None:
                raise ValueError(f"Unexpected field {value!r} in {description!r}")
            port = _parsePort(value, description)
        elif keyword == "port":
            port = _parsePort(value, description)
        elif keyword == "interface":
            if value.startswith("[") and value.endswith("]"):
                value = value[1:-1]
            interface = value
        else:
            raise ValueError(f"Unknown UDP option {keyword!r} in {description!r}")
    if port is None:
        raise ValueError(f"No port in {description!r}")
    return ListenDescription(UDP, description, port, interface)


def parseListenDescription(description: str) -> ListenDescription:
    """
    Parse a listening description.

    @param description: C{udp:PORT[:interface=HOST]}, or a Twisted stream
        server endpoint string whose type is C{tcp}, C{tcp6}, C{ssl} or
        C{tls} (an alias of C{ssl}).
    @return: what to listen on, and with which transport.
    @raise ValueError: for an unknown type or a malformed UDP description.
        (Stream descriptions are checked by C{serverFromString} when
        listening.)
    """
    kind, sep, rest = description.partition(":")
    kind = kind.strip().lower()
    if not sep:
        raise ValueError(f"No endpoint type in {description!r}")
    if kind == "udp":
        return _parseUDP(description)
    transport = _STREAM_TYPES.get(kind)
    if transport is None:
        raise ValueError(
            f"Unknown endpoint type {kind!r} in {description!r}"
            " (expected udp, tcp, tcp6, ssl or tls)"
        )
    if kind == "tls":
        kind = "ssl"
    return ListenDescription(transport, f"{kind}:{rest}")


def listenInterface(description: ListenDescription) -> str:
    """
    The interface C{description} binds: the value of its C{interface}
    option (brackets of an IPv6 address removed), or C{""} when it has
    none, which means every interface.
    """
    if description.transport == UDP:
        return description.interface
    for keyword, value in _tokenize(description.description)[1:]:
        if keyword == "interface":
            if value.startswith("[") and value.endswith("]"):
                value = value[1:-1]
            return value
    return ""


def isLoopback(interface: str) -> bool:
    """
    Whether binding C{interface} (an address, C{localhost}, or C{""} for
    every interface) is reachable from this machine only: C{127.0.0.0/8}
    and C{::1}. Any other host name counts as reachable from elsewhere.
    """
    if interface.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(interface).is_loopback
    except ValueError:
        return False


def listenUDP(
    reactor: IReactorUDP,
    description: ListenDescription,
    protocol: DatagramProtocol,
) -> IListeningPort:
    """
    Listen for datagrams as C{description} says, with a receive buffer big
    enough for any datagram (RFC 3261 section 18.1.1).

    @raise twisted.internet.error.CannotListenError: when the port cannot be
        bound.
    """
    assert description.transport == UDP and description.port is not None
    return reactor.listenUDP(
        description.port,
        protocol,
        interface=description.interface,
        maxPacketSize=MAX_DATAGRAM_SIZE,
    )


def streamServerEndpoint(
    reactor: object, description: ListenDescription
) -> IStreamServerEndpoint:
    """
    The stream server endpoint for a C{tcp:} or C{ssl:} description, from
    L{twisted.internet.endpoints.serverFromString}.

    @param reactor: the reactor the endpoint listens with.
    @raise ValueError: when C{serverFromString} cannot parse it.
    """
    assert description.transport != UDP
    endpoint: IStreamServerEndpoint = serverFromString(  # type: ignore[no-untyped-call]
        reactor, description.description
    )
    return endpoint


def describeAddress(transport: str, host: str, port: int) -> str:
    """
    A short text naming a local or peer address for logs, e.g.
    C{"UDP 127.0.0.1:5060"} or C{"TLS [::1]:5061"}.
    """
    return f"{transport} {formatHostPort(host or '0.0.0.0', port)}"


def describeListener(transport: str, port: IListeningPort) -> str:
    """
    A short text naming a listening port for logs, e.g.
    C{"UDP 127.0.0.1:5060"} or C{"TLS [::1]:5061"}.
    """
    address = port.getHost()
    host = getattr(address, "host", None)
    number = getattr(address, "port", None)
    if isinstance(host, str) and isinstance(number, int):
        return describeAddress(transport, host, number)
    return f"{transport} {address}"
