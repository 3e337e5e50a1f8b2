# -*- test-case-name: tests.test_uri -*-
"""
URIs as values: SIP and SIPS URIs (RFC 3261 section 19.1), tel URIs
(RFC 3966) and any other absolute URI (RFC 3261 section 25.1, C{absoluteURI}).

Parsing follows the grammar of RFC 3261 section 25.1 and RFC 3966 section 3.
Components are kept as written (escapes such as C{%41} stay escaped in
L{SIPURI.user} and in parameter values), except that the scheme and host name
are lower-cased; L{uriEquals} implements the comparison rules of RFC 3261
section 19.1.4, which unescape before comparing.

URIs are immutable, so L{parseURI} keeps a bounded cache of the texts it has
parsed: the Request-URIs a server receives and the URIs of a dialog's From,
To and Contact come back again and again. L{formatURI} likewise remembers
the text of the URI objects it formatted lately.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, TypeAlias

from sipevents.errors import ParseError

__all__ = [
    "SIPURI",
    "TelURI",
    "AbsoluteURI",
    "URI",
    "parseURI",
    "formatURI",
    "uriEquals",
]

Params: TypeAlias = tuple[tuple[str, str | None], ...]

# RFC 3261 section 25.1. The character classes are spelled out once so that
# every regular expression below uses the same sets.
_ALNUM = "A-Za-z0-9"
_MARK = r"\-_.!~*'()"
_UNRESERVED = _ALNUM + _MARK
#: user = 1*( unreserved / escaped / user-unreserved ); "#" is not in the
#: grammar but phones put it in feature codes (C{sip:*21#@host}), and it is
#: harmless inside a URI, so it is accepted.
_USER_CHARS = _UNRESERVED + "%&=+$,;?/#"
#: password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )
_PASSWORD_CHARS = _UNRESERVED + "%&=+$,"
#: paramchar = param-unreserved / unreserved / escaped
_PARAM_CHARS = _UNRESERVED + r"%\[\]/:&+$"
#: hname and hvalue = hnv-unreserved / unreserved / escaped. Values also
#: accept "@", ";" and "=" unescaped, which some stacks send in
#: C{?Replaces=...} and which cannot be ambiguous at the end of a URI.
_HNAME_CHARS = _UNRESERVED + r"%\[\]/?:+$"
_HVALUE_CHARS = _HNAME_CHARS + "@;="

#: hostname = *( domainlabel "." ) toplabel [ "." ]; "_" is accepted in labels
#: as resolvers do. An all-digits last label is checked as IPv4 afterwards.
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_\-]*[A-Za-z0-9_])?"
_HOSTNAME = rf"(?:{_LABEL}\.)*{_LABEL}\.?"
_SIP_REST = (
    r"(?P<host>\[[0-9A-Fa-f:.]+(?:%25[" + _UNRESERVED + r"%]+)?\]|" + _HOSTNAME + ")"
    r"(?::(?P<port>[0-9]{1,5}))?"
    r"(?P<params>(?:;[" + _PARAM_CHARS + r"]+(?:=[" + _PARAM_CHARS + r"]*)?)*)"
    r"(?:\?(?P<headers>[" + _HNAME_CHARS + r"]+=[" + _HVALUE_CHARS + r"]*"
    r"(?:&[" + _HNAME_CHARS + r"]+=[" + _HVALUE_CHARS + r"]*)*))?\Z"
)
#: The part of a SIP-URI after "sip:" when it has user info.
_SIP_USER_RE = re.compile(
    r"(?P<user>[" + _USER_CHARS + r"]+)"
    r"(?::(?P<password>[" + _PASSWORD_CHARS + r"]*))?@" + _SIP_REST
)
#: The same without user info (its first two groups never match), tried
#: alone when there is no "@" so that the user part is not scanned twice.
_SIP_NOUSER_RE = re.compile(r"(?P<user>(?!))?(?P<password>(?!))?" + _SIP_REST)
_BAD_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
#: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*\Z")
#: absoluteURI: hier-part / opaque-part, made of uric (reserved, unreserved,
#: escaped). Brackets are accepted for RFC 3986 IPv6 literals.
_OPAQUE_RE = re.compile(r"[" + _UNRESERVED + r"%;/?:@&=+$,\[\]#]+\Z")

# RFC 3966 section 3.
_TEL_RE = re.compile(
    r"(?P<number>\+[0-9\-.()]+|[0-9A-Fa-f*#\-.()]+)"
    r"(?P<params>(?:;[A-Za-z0-9\-]+(?:=[" + _PARAM_CHARS + r"]+)?)*)\Z"
)
_TEL_SEPARATORS_RE = re.compile(r"[\-.()]")
_DOMAIN_RE = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)*"
    r"[A-Za-z](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.?\Z"
)
_GLOBAL_DIGITS_RE = re.compile(r"\+[0-9\-.()]+\Z")
#: A number needs one digit besides its visual separators (RFC 3966 section
#: 3, C{global-number-digits} and C{local-number-digits}).
_DIGIT_RE = re.compile(r"[0-9]")
_LOCAL_DIGIT_RE = re.compile(r"[0-9A-Fa-f*#]")

#: The characters that RFC 3261 section 19.1.4 says differ from their
#: escaped forms; every other escape compares equal to the character.
_RESERVED = frozenset(";/?:@&=+$,")
_ESCAPE_RE = re.compile(r"%([0-9A-Fa-f]{2})")


def _show(text: str) -> str:
    """
    C{text} for an error message, which may become a reason phrase: quoted
    with control characters escaped, and cut short when long.
    """
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _findParam(params: Params, name: str) -> str | None:
    """
    The value of the parameter called C{name} (compared case-insensitively,
    RFC 3261 section 19.1.4 and 7.3.1), C{""} for a valueless one, C{None}
    when absent.
    """
    name = name.lower()
    for pname, value in params:
        if pname == name or pname.lower() == name:
            return "" if value is None else value
    return None


def _hasParam(params: Params, name: str) -> bool:
    name = name.lower()
    return any(pname.lower() == name for pname, _ in params)


def _replaceParam(params: Params, name: str, value: str | None) -> Params:
    """
    C{params} with C{name} set to C{value}: replaced where it stands, or
    appended.
    """
    lname = name.lower()
    out = []
    found = False
    for pname, pvalue in params:
        if pname.lower() == lname:
            if not found:
                out.append((pname, value))
                found = True
        else:
            out.append((pname, pvalue))
    if not found:
        out.append((name, value))
    return tuple(out)


def _removeParam(params: Params, name: str) -> Params:
    lname = name.lower()
    return tuple(p for p in params if p[0].lower() != lname)


def _formatURIParams(params: Params) -> str:
    return "".join(
        f";{name}" if value is None else f";{name}={value}" for name, value in params
    )


@dataclass(frozen=True, slots=True)
class SIPURI:
    """
    A SIP or SIPS URI (RFC 3261 section 19.1.1).

    @ivar scheme: C{"sip"} or C{"sips"}, lower case.
    @ivar user: the user part as written (escapes kept), or C{None}.
    @ivar password: the password as written, or C{None}.
    @ivar host: a host name (lower case), an IPv4 address, or an IPv6
        address without its brackets.
    @ivar port: the port, or C{None} when the URI has none.
    @ivar params: the URI parameters in order, as written; a valueless
        parameter (C{;lr}) has the value C{None}.
    @ivar headers: the URI headers (C{?name=value&...}) in order, as
        written.
    """

    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: Params = ()
    headers: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return formatURI(self)

    def param(self, name: str) -> str | None:
        """
        The value of the URI parameter C{name} (case-insensitive), C{""} if
        it has no value, C{None} if absent.
        """
        return _findParam(self.params, name)

    def hasParam(self, name: str) -> bool:
        """
        Whether the URI has a parameter C{name} (case-insensitive).
        """
        return _hasParam(self.params, name)

    def withParam(self, name: str, value: str | None = None) -> SIPURI:
        """
        A copy with the parameter C{name} set to C{value} (C{None} for a
        valueless one such as C{lr}), replacing any existing one in place.
        """
        return self._withParams(_replaceParam(self.params, name, value))

    def withoutParam(self, name: str) -> SIPURI:
        """
        A copy without the parameter C{name}.
        """
        return self._withParams(_removeParam(self.params, name))

    def _withParams(self, params: Params) -> SIPURI:
        return SIPURI(
            self.scheme,
            self.user,
            self.password,
            self.host,
            self.port,
            params,
            self.headers,
        )

    @property
    def transport(self) -> str | None:
        """
        The C{transport} parameter upper-cased (C{"TCP"}), or C{None}
        (RFC 3261 section 19.1.1).
        """
        value = _findParam(self.params, "transport")
        return None if value is None else value.upper()

    @property
    def hostport(self) -> str:
        """
        C{host[:port]}, with an IPv6 address in brackets.
        """
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class TelURI:
    """
    A tel URI (RFC 3966 section 3).

    @ivar number: the global (C{+...}) or local number, as written with its
        visual separators.
    @ivar params: the parameters in order, as written (C{phone-context},
        C{ext}, C{isub} and others).
    """

    number: str
    params: Params = ()

    def __str__(self) -> str:
        return formatURI(self)

    @property
    def scheme(self) -> str:
        """C{"tel"}, so that every URI has a C{scheme}."""
        return "tel"

    def param(self, name: str) -> str | None:
        """
        The value of the parameter C{name} (case-insensitive), C{""} if it
        has no value, C{None} if absent.
        """
        return _findParam(self.params, name)

    def hasParam(self, name: str) -> bool:
        """
        Whether the URI has a parameter C{name} (case-insensitive).
        """
        return _hasParam(self.params, name)


@dataclass(frozen=True, slots=True)
class AbsoluteURI:
    """
    Any other absolute URI (RFC 3261 section 25.1, C{absoluteURI}), kept
    opaque.

    @ivar scheme: the scheme, lower case.
    @ivar opaque: everything after C{"scheme:"}, as written.
    """

    scheme: str
    opaque: str

    def __str__(self) -> str:
        return formatURI(self)


#: Any URI that L{parseURI} returns.
URI: TypeAlias = SIPURI | TelURI | AbsoluteURI


def _splitParams(text: str) -> Params:
    """
    Split a validated C{;name[=value]...} string into pairs.
    """
    out = []
    for part in text[1:].split(";"):
        name, eq, value = part.partition("=")
        out.append((name, value) if eq else (name, None))
    return tuple(out)


def _checkIPv4(host: str, text: str) -> None:
    parts = host.split(".")
    if len(parts) != 4 or not all(
        p.isdigit() and len(p) <= 3 and int(p) <= 255 for p in parts
    ):
        raise ParseError(f"Bad URI {_show(text)}: bad IPv4 address")


def _checkHost(host: str, text: str) -> str:
    """
    Validate a matched host and return its stored form (RFC 3261 section
    25.1: C{hostname / IPv4address / IPv6reference}).
    """
    if host[0] == "[":
        address = host[1:-1]
        try:
            ipaddress.IPv6Address(address.replace("%25", "%", 1))
        except ValueError:
            raise ParseError(f"Bad URI {_show(text)}: bad IPv6 address") from None
        return address.lower()
    if host[-1].isdigit() or host[-1] == ".":
        # A toplabel starts with a letter, so an all-digits last label
        # means the host must be an IPv4 address.
        last = host.rstrip(".").rpartition(".")[2]
        if last.isdigit():
            _checkIPv4(host, text)
            return host
    return host if host.islower() else host.lower()


def _newSIPURI(
    scheme: str,
    user: str | None,
    password: str | None,
    host: str,
    port: int | None,
    params: Params,
    headers: tuple[tuple[str, str], ...],
) -> SIPURI:
    obj = _new(SIPURI)
    _setScheme(obj, scheme)
    _setUser(obj, user)
    _setPassword(obj, password)
    _setHost(obj, host)
    _setPort(obj, port)
    _setParams(obj, params)
    _setHeaders(obj, headers)
    return obj


_new = object.__new__
_slots: Any = SIPURI.__dict__
_setScheme = _slots["scheme"].__set__
_setUser = _slots["user"].__set__
_setPassword = _slots["password"].__set__
_setHost = _slots["host"].__set__
_setPort = _slots["port"].__set__
_setParams = _slots["params"].__set__
_setHeaders = _slots["headers"].__set__


def _parseSIP(scheme: str, rest: str, text: str) -> SIPURI:
    match = None
    if "@" in rest:
        match = _SIP_USER_RE.match(rest)
    if match is None:
        match = _SIP_NOUSER_RE.match(rest)
        if match is None:
            raise ParseError(f"Bad URI {_show(text)}")
    if "%" in rest and _BAD_ESCAPE_RE.search(rest):
        raise ParseError(f"Bad URI {_show(text)}: bad escape")
    user, password, host, portText, paramText, headerText = match.groups()
    if host[0] == "[" or host[-1].isdigit() or host[-1] == ".":
        host = _checkHost(host, text)
    elif not host.islower():
        host = host.lower()
    port: int | None = None
    if portText is not None:
        port = int(portText)
        if port > 65535:
            raise ParseError(f"Bad URI {_show(text)}: port out of range")
    params = _splitParams(paramText) if paramText else ()
    headers: tuple[tuple[str, str], ...] = ()
    if headerText:
        pairs = []
        for header in headerText.split("&"):
            name, _, value = header.partition("=")
            pairs.append((name, value))
        headers = tuple(pairs)
    return _newSIPURI(scheme, user, password, host, port, params, headers)


def _parseTel(rest: str, text: str) -> TelURI:
    match = _TEL_RE.match(rest)
    if match is None:
        raise ParseError(f"Bad URI {_show(text)}")
    if "%" in rest and _BAD_ESCAPE_RE.search(rest):
        raise ParseError(f"Bad URI {_show(text)}: bad escape")
    number = match.group("number")
    if not (_DIGIT_RE if number[0] == "+" else _LOCAL_DIGIT_RE).search(number):
        raise ParseError(f"Bad URI {_show(text)}: no digits")
    paramText = match.group("params")
    params = _splitParams(paramText) if paramText else ()
    if number[0] != "+":
        # RFC 3966 section 5.1.5: a local number needs a phone-context,
        # which is a domain name or a global number.
        context = _findParam(params, "phone-context")
        if not context or not (
            (_GLOBAL_DIGITS_RE.match(context) and _DIGIT_RE.search(context))
            or _DOMAIN_RE.match(context)
        ):
            raise ParseError(
                f"Bad URI {_show(text)}: local number without phone-context"
            )
    return TelURI(number, params)


def parseURI(text: str) -> URI:
    """
    Parse a URI: C{SIP-URI / SIPS-URI / absoluteURI} (RFC 3261 section
    25.1), with C{tel} URIs parsed per RFC 3966 section 3.

    @param text: the URI, without surrounding whitespace or angle brackets.
    @return: a L{SIPURI}, L{TelURI} or L{AbsoluteURI}; the same object for
        the same text while it stays in the cache.
    @raise ParseError: C{"Bad URI ..."} when C{text} does not match the
        grammar.
    """
    uri = _cache.get(text)
    if uri is not None:
        return uri
    uri = _parseURI(text)
    if len(_cache) >= _CACHE_SIZE:
        _cache.clear()
    if len(text) <= _CACHE_KEY_LIMIT:
        _cache[text] = uri
    return uri


#: Recently parsed URIs by their text. URIs are immutable values and the
#: same ones come back again and again (a server's own Request-URIs, the
#: To and From of every request in a dialog), so parsing each text once
#: saves most of the work. Bounded: cleared when full, long texts skipped.
_cache: dict[str, URI] = {}
_CACHE_SIZE = 4096
_CACHE_KEY_LIMIT = 256


def _parseURI(text: str) -> URI:
    scheme, colon, rest = text.partition(":")
    if not colon:
        raise ParseError(f"Bad URI {_show(text)}: no scheme")
    lowered = scheme.lower()
    if lowered == "sip" or lowered == "sips":
        return _parseSIP(lowered, rest, text)
    if not _SCHEME_RE.match(scheme):
        raise ParseError(f"Bad URI {_show(text)}: bad scheme")
    if lowered == "tel":
        return _parseTel(rest, text)
    if not _OPAQUE_RE.match(rest):
        raise ParseError(f"Bad URI {_show(text)}")
    return AbsoluteURI(lowered, rest)


def formatURI(uri: URI) -> str:
    """
    The text form of C{uri}; C{parseURI(formatURI(uri)) == uri}.

    The contact wildcard's URI (C{AbsoluteURI("*", "")}, RFC 3261 section
    20.10) formats as C{"*"}.
    """
    # URIs are immutable, and the same objects are formatted again and
    # again (those parseURI returns from its cache: a server's own
    # Request-URI, a dialog's From and To). The entry holds the URI, so that
    # its id cannot be reused for another object while the entry exists.
    hit = _formatted.get(id(uri))
    if hit is not None and hit[0] is uri:
        return hit[1]
    text = _format(uri)
    if len(_formatted) >= _CACHE_SIZE:
        _formatted.clear()
    _formatted[id(uri)] = (uri, text)
    return text


#: Recently formatted URIs: C{id(uri)} -> C{(uri, text)}. Bounded: cleared
#: when full.
_formatted: dict[int, tuple[URI, str]] = {}


def _format(uri: URI) -> str:
    """
    The text form of C{uri} (see L{formatURI}), computed.
    """
    if isinstance(uri, SIPURI):
        host = uri.host
        if ":" in host:
            host = f"[{host}]"
        user = uri.user
        if user is None:
            text = f"{uri.scheme}:{host}"
        elif uri.password is None:
            text = f"{uri.scheme}:{user}@{host}"
        else:
            text = f"{uri.scheme}:{user}:{uri.password}@{host}"
        if uri.port is not None:
            text = f"{text}:{uri.port}"
        if uri.params:
            text += _formatURIParams(uri.params)
        if uri.headers:
            text += "?" + "&".join(f"{name}={value}" for name, value in uri.headers)
        return text
    if isinstance(uri, TelURI):
        return f"tel:{uri.number}{_formatURIParams(uri.params)}"
    if uri.scheme == "*":
        return "*"
    return f"{uri.scheme}:{uri.opaque}"


def _unescape(text: str) -> str:
    """
    Decode the escapes of C{text} that RFC 3261 section 19.1.4 treats as
    equal to their characters (everything but the reserved set).
    """
    if "%" not in text:
        return text

    def decode(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        if char in _RESERVED:
            return match.group(0).upper()
        return char

    return _ESCAPE_RE.sub(decode, text)


def _hostKey(host: str) -> str:
    """
    A comparison key for a host: IP addresses in canonical form, host
    names lower case.
    """
    if ":" in host:
        try:
            return str(ipaddress.IPv6Address(host.replace("%25", "%", 1)))
        except ValueError:
            return host.lower()
    return host.lower()


#: URI parameters that must appear in both URIs to match, if in either
#: (RFC 3261 section 19.1.4).
_STRICT_PARAMS = frozenset({"user", "ttl", "method", "maddr", "transport"})


def _paramDict(params: Params) -> dict[str, str | None]:
    return {
        _unescape(name).lower(): None if value is None else _unescape(value).lower()
        for name, value in params
    }


def _sipEquals(a: SIPURI, b: SIPURI) -> bool:
    if a.scheme != b.scheme:
        return False
    # User info compares case-sensitively, but escapes of unreserved
    # characters equal the characters.
    if a.user != b.user and (
        a.user is None or b.user is None or _unescape(a.user) != _unescape(b.user)
    ):
        return False
    if a.password != b.password and (
        a.password is None
        or b.password is None
        or _unescape(a.password) != _unescape(b.password)
    ):
        return False
    if a.port != b.port or _hostKey(a.host) != _hostKey(b.host):
        return False
    pa = _paramDict(a.params)
    pb = _paramDict(b.params)
    for name in pa.keys() | pb.keys():
        inA = name in pa
        inB = name in pb
        if inA and inB:
            if pa[name] != pb[name]:
                return False
        elif name in _STRICT_PARAMS:
            return False
    ha = {_unescape(n).lower(): _unescape(v).lower() for n, v in a.headers}
    hb = {_unescape(n).lower(): _unescape(v).lower() for n, v in b.headers}
    return ha == hb


def _telKey(uri: TelURI) -> tuple[str, dict[str, str | None]]:
    """
    The comparison key of a tel URI (RFC 3966 section 4): the number
    without visual separators, and the parameters in any order.
    """
    number = _TEL_SEPARATORS_RE.sub("", uri.number).lower()
    return number, _paramDict(uri.params)


def uriEquals(a: URI, b: URI) -> bool:
    """
    Whether two URIs are equivalent per RFC 3261 section 19.1.4 (SIP and
    SIPS URIs) or RFC 3966 section 4 (tel URIs).

    For SIP URIs: the schemes must match; the user info is compared
    case-sensitively after unescaping, every other component
    case-insensitively; an absent port differs from an explicit one;
    C{user}, C{ttl}, C{method}, C{maddr} and C{transport} parameters must
    match if present in either URI, other parameters only if present in
    both; the headers must match exactly in any order. Escapes of reserved
    characters differ from the characters themselves. Other URIs compare by
    scheme (case-insensitive) and their unescaped opaque part.
    """
    if isinstance(a, SIPURI):
        return isinstance(b, SIPURI) and _sipEquals(a, b)
    if isinstance(a, TelURI):
        return isinstance(b, TelURI) and _telKey(a) == _telKey(b)
    return (
        isinstance(b, AbsoluteURI)
        and a.scheme.lower() == b.scheme.lower()
        and _unescape(a.opaque) == _unescape(b.opaque)
    )
