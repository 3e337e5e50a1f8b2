# -*- test-case-name: tests.test_routing -*-
"""
Where requests and responses go: pure functions of Via headers and URIs.

Nothing here touches a socket or a clock. L{sipevents.sip.transport} calls
L{stampReceived} on every request it receives (RFC 3261 section 18.2.1,
RFC 3581 section 4), L{responseAddress} to route a response that cannot go
back on the connection its request came on (RFC 3261 section 18.2.2), and
L{targetFromURI} to pick a transport, host and port for a request
(RFC 3261 section 19.1.2, RFC 3263 sections 4.1 and 4.2 without DNS
NAPTR/SRV lookups).
"""

from __future__ import annotations

import functools
import ipaddress
import socket

from sipevents.sip.addresses import RELIABLE, TCP, TLS, UDP, Source, Target, defaultPort
from sipevents.sip.headers import Via, splitCommaList
from sipevents.sip.message import Request, headerKey
from sipevents.sip.uri import SIPURI, URI

__all__ = [
    "addressFamily",
    "formatHostPort",
    "isIPAddress",
    "normalizeHost",
    "replaceTopVia",
    "responseAddress",
    "sameAddress",
    "stampReceived",
    "targetFromURI",
]

#: The transports a L{Target} may name.
SUPPORTED_TRANSPORTS = frozenset({UDP, TCP, TLS})


def normalizeHost(host: str) -> str:
    """
    A host as used for comparisons and socket calls: IPv6 brackets removed,
    IP addresses in their canonical (compressed) text form, an IPv4-mapped
    IPv6 address (as a dual-stack socket reports an IPv4 peer) as the IPv4
    address, host names lower-cased.

    @param host: a host name, IPv4 address or IPv6 address (bracketed or
        not).
    """
    canonical = _canonicalIP(host)
    if canonical is None:
        return host.lower()
    return canonical


@functools.lru_cache(maxsize=4096)
def _canonicalIP(host: str) -> str | None:
    """
    The canonical text of the IP address C{host} spells, or C{None} for a
    host name. An IPv4-mapped IPv6 address (as a dual-stack socket reports
    an IPv4 peer) becomes the IPv4 address.

    Cached, and kept as text: every received request asks several times
    (for its source and its Via), the same few peers send most messages,
    and C{ipaddress} objects are slow to build and to turn back into text.
    """
    address = _ip(host)
    return None if address is None else str(address)


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """
    The IP address C{host} spells, or C{None} for a host name. An
    IPv4-mapped IPv6 address becomes the IPv4 address.
    """
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def isIPAddress(host: str) -> bool:
    """
    Whether C{host} is an IPv4 or IPv6 address (IPv6 bracketed or not),
    rather than a host name.
    """
    return _canonicalIP(host) is not None


def sameAddress(a: str, b: str) -> bool:
    """
    Whether C{a} and C{b} are the same IP address, however written
    (C{"::1"} and C{"0:0::1"}, C{"127.0.0.1"} and C{"::ffff:127.0.0.1"}).
    A host name is never the same as anything: RFC 3261 section 18.2.1 adds
    C{received} whenever sent-by is a domain name.
    """
    canonicalA = _canonicalIP(a)
    return canonicalA is not None and canonicalA == _canonicalIP(b)


def addressFamily(host: str) -> socket.AddressFamily:
    """
    C{AF_INET6} for an IPv6 address (bracketed or not), C{AF_INET}
    otherwise (IPv4 addresses, and host names, which are resolved later).
    """
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def formatHostPort(host: str, port: int | None) -> str:
    """
    C{host:port} as written in a Via sent-by or a URI, with an IPv6 address
    in brackets (RFC 3261 section 25.1, C{hostport}).

    @param port: the port, or C{None} to leave it out.
    """
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return host if port is None else f"{host}:{port}"


def _findParam(params: tuple[tuple[str, str | None], ...], name: str) -> str | None:
    """
    The value of parameter C{name} (case-insensitive) in C{params}: C{None}
    when absent, C{""} when present without a value.
    """
    for key, value in params:
        if key.lower() == name:
            return "" if value is None else value
    return None


def _portValue(text: str | None) -> int | None:
    """
    A port number from a parameter value, or C{None} when absent, empty or
    not a valid port.
    """
    if not text or not text.isdigit():
        return None
    port = int(text)
    return port if 0 < port < 65536 else None


def stampReceived(request: Request, sourceHost: str, sourcePort: int) -> None:
    """
    Record where C{request} really came from in its top Via, in place.

    RFC 3261 section 18.2.1: when the sent-by host is a domain name or an IP
    address other than the packet's source address, add
    C{received=<source address>}. RFC 3581 section 4: when the top Via has an
    C{rport} parameter without a value, set it to the source port, and add
    C{received} even when it equals sent-by.

    Nothing happens when the request has no Via (the parser rejects those).

    @param sourceHost: the peer's IP address as the socket reported it.
    @param sourcePort: the peer's port.
    @raise sipevents.errors.ParseError: when the top Via is malformed.
    """
    vias = request.vias
    if not vias:
        return
    via = vias[0]
    needReceived = not sameAddress(via.host, sourceHost)
    rport = _findParam(via.params, "rport")
    if rport == "":
        # RFC 3581 section 4, as every SIPp or softphone request over UDP
        # asks: fill in rport and add received, building one new Via.
        via = via.withParams(
            ("rport", str(sourcePort)), ("received", normalizeHost(sourceHost))
        )
        replaceTopVia(request, via, vias)
        return
    if rport is not None:
        needReceived = True
    if needReceived:
        via = via.withParam("received", normalizeHost(sourceHost))
    if via is not vias[0]:
        replaceTopVia(request, via, vias)


_VIA = headerKey("Via")


class _Known:
    """
    A typed-view parser for L{Headers.parsed} that knows the answer.
    """

    __slots__ = ("value",)

    def __init__(self, value: list[Via]) -> None:
        self.value = value

    def __call__(self, values: list[str]) -> list[Via]:
        return self.value


def replaceTopVia(request: Request, via: Via, vias: list[Via] | None = None) -> None:
    """
    Put C{via} in place of the top-most Via value, keeping the field where it
    stands, its name as written (C{v} or C{Via}), and any further Via values
    on the same line.

    @param vias: the request's Via values as parsed before the change, when
        the caller has them: the typed views of the other header fields
        (From, To, CSeq ...) are then kept, and the Via view becomes
        C{via} followed by the rest of C{vias}, so that nothing is parsed
        again. Otherwise every typed view is dropped, to be parsed again
        when asked for.
    """
    headers = request.headers
    fields = headers._fields
    for index, (key, name, value) in enumerate(fields):
        if key == _VIA:
            if "," in value:
                parts = splitCommaList(value)
                parts[0] = str(via)
                fields[index] = (key, name, ", ".join(parts))
            else:
                # One value on the line (the usual case): nothing to split.
                fields[index] = (key, name, str(via))
            # The typed views parsed from the old value are stale now.
            cache = headers._cache
            headers._cache = None
            if vias is None:
                return
            if isinstance(cache, dict) and _VIA in cache:
                # Only the Via view changed (the cache maps header keys to
                # views); the others still describe their fields. The
                # values gathered by key (see Headers.parsed) are stale.
                del cache[_VIA]
                cache.pop("", None)
                headers._cache = cache
            # parseVia(str(via)) == via (a contract of sipevents.sip.headers).
            headers.parsed(_VIA, _Known([via, *vias[1:]]))
            return


def responseAddress(via: Via, source: Source) -> tuple[str, int]:
    """
    Where to send a response that does not go back on the connection its
    request arrived on (RFC 3261 section 18.2.2, RFC 3581 section 4).

    For a reliable sent-protocol (TCP, TLS), the address to open a new
    connection to: the C{received} address, or the sent-by host, with the
    sent-by port or the transport's default port.

    For UDP, in order: C{maddr} with the sent-by port (or 5060); else
    C{received} with the C{rport} value (RFC 3581 section 4) or the sent-by
    port (or 5060); else the sent-by host and port (or 5060).

    The host may be a host name (from sent-by or maddr), which the caller
    resolves. IPv6 addresses come without brackets.

    @param via: the response's top Via (as stamped when the request
        arrived).
    @param source: where the request came from; its address is used when an
        C{rport} value is present without C{received}.
    """
    transport = via.transport.upper()
    sentByPort = via.port
    params = via.params
    received = _findParam(params, "received")
    if received:
        received = normalizeHost(received)
    if transport in RELIABLE:
        host = received or normalizeHost(via.host)
        return host, sentByPort or defaultPort(transport)
    maddr = _findParam(params, "maddr")
    if maddr:
        return normalizeHost(maddr), sentByPort or defaultPort(UDP)
    rport = _portValue(_findParam(params, "rport"))
    if received:
        return received, rport or sentByPort or defaultPort(UDP)
    if rport is not None:
        return normalizeHost(source.host), rport
    return normalizeHost(via.host), sentByPort or defaultPort(UDP)


def targetFromURI(uri: URI) -> Target:
    """
    The transport, host and port to send a request for C{uri} to
    (RFC 3263 sections 4.1 and 4.2, without NAPTR/SRV: the URI's host is
    used as it is, and a host name is resolved to A/AAAA records later).

    The transport is the C{transport} URI parameter, or TLS for a SIPS URI
    (RFC 3261 section 26.2.2), or UDP. The host is the C{maddr} parameter
    when present (RFC 3261 section 19.1.1), else the URI's host. The port is
    the URI's, or the transport's default (5060, or 5061 for TLS; RFC 3261
    section 19.1.2).

    @raise ValueError: for a URI that is not SIP or SIPS, a SIPS URI with a
        transport other than TCP or TLS, or a transport this package does
        not implement.
    """
    if not isinstance(uri, SIPURI):
        raise ValueError(f"Cannot route to a non-SIP URI: {uri}")
    transport = uri.transport
    if uri.scheme == "sips":
        if transport not in (None, TCP, TLS):
            raise ValueError(f"SIPS URI with transport={transport}: {uri}")
        transport = TLS
    elif transport is None:
        transport = UDP
    if transport not in SUPPORTED_TRANSPORTS:
        raise ValueError(f"Unsupported transport {transport}: {uri}")
    host = uri.param("maddr") or uri.host
    return Target(transport, normalizeHost(host), uri.port or defaultPort(transport))
