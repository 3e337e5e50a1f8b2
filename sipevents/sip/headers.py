# -*- test-case-name: tests.test_headers -*-
"""
Typed views of SIP header field values (RFC 3261 section 20 and 25.1,
RFC 6665 section 8.2).

Each C{parseX} function takes the value of one header field line (after the
colon; folded lines already unfolded) and returns a frozen value whose
C{str()} is its wire form, so that C{parseX(str(x)) == x}. Bad syntax raises
L{sipevents.errors.ParseError} with a reason such as C{"Bad Via header: ..."}.

Whitespace follows RFC 3261 section 25.1: C{SWS} (optional) is allowed around
C{":"}, C{";"}, C{"="}, C{","} and C{"/"}, and C{LWS} (at least one space or
tab, or a folded line) where the grammar needs a separator.

Header parameters (C{generic-param}) keep their names as written and are
looked up case-insensitively (RFC 3261 section 7.3.1). Their values are
stored decoded: a C{quoted-string} value is kept without its quotes and with
its quoted-pairs resolved, as a L{QuotedValue} (a L{str} subclass equal to
the plain string), so that L{formatParams} writes it back quoted. Other values
are quoted on output only when they are not a C{token} or C{host}. A
parameter without a value (C{;lr}) has the value C{None}.

This module never imports L{sipevents.sip.message}.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from sipevents.errors import ParseError
from sipevents.sip.uri import (
    _HOSTNAME,
    URI,
    AbsoluteURI,
    Params,
    _replaceParam,
    _show,
    formatURI,
    parseURI,
)

__all__ = [
    "TOKEN_CHARS",
    "WORD_CHARS",
    "isToken",
    "Params",
    "QuotedValue",
    "splitCommaList",
    "formatParams",
    "Via",
    "parseVia",
    "CSeq",
    "parseCSeq",
    "parseCallId",
    "NameAddr",
    "WILDCARD",
    "parseNameAddr",
    "parseNameAddrList",
    "parseDeltaSeconds",
    "parseContentLength",
    "parseMaxForwards",
    "ContentType",
    "parseContentType",
    "Event",
    "parseEvent",
    "parseTokenList",
    "SubscriptionState",
    "parseSubscriptionState",
    "MediaRange",
    "parseAccept",
    "RetryAfter",
    "parseRetryAfter",
]


class QuotedValue(str):
    """
    A parameter value that was written as a C{quoted-string} (RFC 3261
    section 25.1), held without its quotes and escapes.

    It compares and hashes as the plain string; L{formatParams} writes it
    quoted again, so quoting that matters to an extension (RFC 3840 feature
    parameters such as C{+sip.instance="<urn:...>"} or
    C{+g.3gpp.icsi-ref="..."}) survives a parse and format.
    """

    __slots__ = ()


#: The characters of a C{token} (RFC 3261 section 25.1: alphanum and
#: C{-.!%*_+`'~}), as the inside of a regular expression character class;
#: every grammar here and in the parser that takes a token builds on it.
TOKEN_CHARS = r"A-Za-z0-9\-.!%*_+`'~"

# RFC 3261 section 25.1 building blocks.
_SWS = r"[ \t\r\n]*"
_LWS = r"[ \t\r\n]+"
_TOKEN = rf"[{TOKEN_CHARS}]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
#: gen-value = token / host / quoted-string; host adds ":" and brackets
#: (IPv6 references and, in C{received}, bare IPv6 addresses).
_PLAIN_VALUE = rf"[{TOKEN_CHARS}:\[\]]+"
#: One C{SEMI generic-param}, capturing the name and the value as written.
_PARAM_ITEM = rf"{_SWS};{_SWS}({_TOKEN})(?:{_SWS}={_SWS}({_PLAIN_VALUE}|{_QUOTED}))?"
#: Any number of them, without captures, to validate a whole block at once.
_PARAMS_BLOCK = (
    rf"(?:{_SWS};{_SWS}{_TOKEN}(?:{_SWS}={_SWS}(?:{_PLAIN_VALUE}|{_QUOTED}))?)*"
)

_findParams = re.compile(_PARAM_ITEM, re.S).findall
_PLAIN_VALUE_RE = re.compile(rf"{_PLAIN_VALUE}\Z")
_TOKEN_RE = re.compile(rf"{_TOKEN}\Z")


def isToken(text: str) -> bool:
    """
    Whether C{text} is a C{token} (RFC 3261 section 25.1): a method, an
    Event type, a Subscription-State reason (RFC 6665 section 8.4), an
    entity-tag (RFC 3903 section 12) ...
    """
    return _TOKEN_RE.match(text) is not None


_QUOTED_PAIR_RE = re.compile(r"\\(.)", re.S)
_WS_RE = re.compile(r"[ \t\r\n]+")
#: IPv4address (RFC 3261 section 25.1), with octets up to 255.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|[01]?[0-9]?[0-9])"
_IPV4_RE = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}\Z")
_HOST_RE = re.compile(rf"(?:\[[0-9A-Fa-f:.]+\]|{_HOSTNAME})\Z")

_WHITESPACE = " \t\r\n"

# Quick paths for the common forms of Via, CSeq and name-addr values: no
# white space beyond a single SP where the grammar needs one, no quoted or
# escaped parameter values, ports below 60000, parameters whose syntax
# needs no further check. Each gives exactly what the general path gives
# for the values it accepts (tests.test_properties checks this on random
# values); anything else takes the general path. The patterns are written
# for the speed of the re module: possessive repeats, "(?:x|)" rather than
# "(?:x)?".
_Q_TOKEN = rf"[{TOKEN_CHARS}]++"
_Q_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_Q_IPV4 = rf"{_Q_OCTET}\.{_Q_OCTET}\.{_Q_OCTET}\.{_Q_OCTET}"
_Q_LABEL = r"[A-Za-z0-9]++(?:-++[A-Za-z0-9]++)*+"
_Q_TOPLABEL = r"[A-Za-z][A-Za-z0-9]*+(?:-++[A-Za-z0-9]++)*+"
#: The hosts of the quick paths, here and in L{sipevents.sip.parser}.
_Q_HOSTNAME = rf"(?:{_Q_LABEL}\.)*+{_Q_TOPLABEL}"
_Q_HOST = rf"(?:{_Q_IPV4}|{_Q_HOSTNAME})"
_Q_PORT = r"(?:[1-9][0-9]{0,3}|[1-5][0-9]{4})"
#: Parameters with token names and values, and no tag without a value
#: (RFC 3261 section 25.1, tag-param): the general path splits them the
#: same way.
_Q_PARAMS = rf"(?:;(?!(?i:tag)(?:;|\Z)){_Q_TOKEN}(?:={_Q_TOKEN}|))*+"


def _splitParams(text: str) -> Params:
    """
    The parameters of a block that a quick pattern matched (C{;name} and
    C{;name=token} only), as L{_parseParams} would give them.
    """
    out: list[tuple[str, str | None]] = []
    for part in text[1:].split(";"):
        name, eq, value = part.partition("=")
        out.append((name, value) if eq else (name, None))
    return tuple(out)


def _unquote(inner: str) -> str:
    """
    Resolve the quoted-pairs of the inside of a quoted-string.
    """
    if "\\" in inner:
        return _QUOTED_PAIR_RE.sub(r"\1", inner)
    return inner


def _quote(value: str) -> str:
    """
    A quoted-string holding C{value} (RFC 3261 section 25.1): C{"} and
    C{\\} and control characters other than tab become quoted-pairs; CR
    and LF, which no quoted-pair can carry, become spaces (a folded line is
    a space too), so that a value can never break the header section.
    """
    if _NEEDS_ESCAPE_RE.search(value):
        value = _NEEDS_ESCAPE_RE.sub(_escapeChar, value)
    return f'"{value}"'


_NEEDS_ESCAPE_RE = re.compile(r'["\\\x00-\x08\x0a-\x1f\x7f]')


def _escapeChar(match: re.Match[str]) -> str:
    char = match.group()
    return " " if char in "\r\n" else "\\" + char


def _parseParams(text: str) -> Params:
    """
    The parameters of an already validated parameter block, values decoded
    (see the module docstring).
    """
    out: list[tuple[str, str | None]] = []
    for name, value in _findParams(text):
        if not value:
            out.append((name, None))
        elif value[0] == '"':
            out.append((name, QuotedValue(_unquote(value[1:-1]))))
        else:
            out.append((name, value))
    return tuple(out)


def formatParams(params: Params) -> str:
    """
    The wire form of header parameters: C{";name"} or C{";name=value"} for
    each, with values quoted when they were quoted (L{QuotedValue}) or are
    not a C{token} or C{host} (RFC 3261 section 25.1, C{generic-param}).
    """
    parts = []
    for name, value in params:
        if value is None:
            parts.append(f";{name}")
        elif type(value) is QuotedValue or not _PLAIN_VALUE_RE.match(value):
            parts.append(f";{name}={_quote(value)}")
        else:
            parts.append(f";{name}={value}")
    return "".join(parts)


def _findParam(params: Params, name: str) -> str | None:
    name = name.lower()
    for pname, value in params:
        if pname == name or pname.lower() == name:
            return "" if value is None else value
    return None


def _removeParams(params: Params, names: frozenset[str]) -> Params:
    return tuple(p for p in params if p[0].lower() not in names)


def _parseNumber(text: str, maximum: int, header: str) -> int:
    """
    A non-negative decimal number no larger than C{maximum}, refusing
    overlarge values before converting them (RFC 4475 section 3.1.2.4).
    """
    if not text.isdigit() or not text.isascii():
        raise ParseError(f"Bad {header} header: {_show(text)} is not a number")
    digits = text.lstrip("0")
    if len(digits) > 20:
        raise ParseError(f"Bad {header} header: {_show(text)} is too large")
    number = int(text)
    if number > maximum:
        raise ParseError(f"Bad {header} header: {_show(text)} is too large")
    return number


def _isIP(text: str) -> bool:
    """
    Whether C{text} is an IPv4 address, an IPv6 address or an IPv6
    reference.
    """
    if _IPV4_RE.match(text):
        return True
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" not in text:
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------
# Lists


_SPLIT_RE = re.compile(r'"(?:[^"\\]|\\.)*"?|<[^>]*>?|,|[^",<]+', re.S)


def splitCommaList(value: str) -> list[str]:
    """
    Split a header value on the commas that separate its elements (RFC
    3261 section 7.3.1): commas inside quoted strings and angle brackets do
    not count. Elements are stripped and empty ones dropped.
    """
    if '"' not in value and "<" not in value:
        parts = value.split(",")
    else:
        parts = []
        current: list[str] = []
        for match in _SPLIT_RE.finditer(value):
            piece = match.group()
            if piece == ",":
                parts.append("".join(current))
                current = []
            else:
                current.append(piece)
        parts.append("".join(current))
    out = []
    for part in parts:
        part = part.strip(_WHITESPACE)
        if part:
            out.append(part)
    return out


def parseTokenList(value: str) -> list[str]:
    """
    Parse a comma-separated list of tokens: C{Allow} (methods),
    C{Allow-Events} (event types, RFC 6665 section 8.2.2), C{Require},
    C{Proxy-Require}, C{Supported}, C{Unsupported} (option tags, RFC 3261
    section 20). An empty value gives an empty list (RFC 3261 section 20.5
    and 20.37 allow it).

    @raise ParseError: an element is empty or not a token.
    """
    if not value.strip(_WHITESPACE):
        return []
    out = []
    for part in value.split(","):
        part = part.strip(_WHITESPACE)
        if not _TOKEN_RE.match(part):
            raise ParseError(f"Bad header: {part!r} is not a token in {_show(value)}")
        out.append(part)
    return out


# ---------------------------------------------------------------------------
# Via (RFC 3261 section 20.42, 18.2.1; RFC 3581)


_VIA_RE = re.compile(
    rf"{_SWS}({_TOKEN}){_SWS}/{_SWS}({_TOKEN}){_SWS}/{_SWS}({_TOKEN}){_LWS}"
    rf"(\[[0-9A-Fa-f:.]+\]|{_HOSTNAME})"
    rf"(?:{_SWS}:{_SWS}([0-9]+))?"
    rf"({_PARAMS_BLOCK}){_SWS}(?:,|\Z)",
    re.S,
)


@dataclass(frozen=True, slots=True)
class Via:
    """
    One Via header field value (RFC 3261 section 20.42).

    @ivar protocol: C{"SIP/2.0"}, the protocol name and version as written.
    @ivar transport: the transport, upper case (C{"UDP"}, C{"TCP"},
        C{"TLS"}, C{"SCTP"}, C{"TLS-SCTP"} or any other token).
    @ivar host: the sent-by host: a host name (lower case), or an IP
        address (IPv6 without brackets).
    @ivar port: the sent-by port, or C{None}.
    @ivar params: the via-params in order (see the module docstring for how
        values are stored).
    """

    protocol: str = "SIP/2.0"
    transport: str = "UDP"
    host: str = ""
    port: int | None = None
    params: Params = ()

    def __str__(self) -> str:
        return f"{self.protocol}/{self.transport} {self.sentBy}" + (
            formatParams(self.params) if self.params else ""
        )

    def param(self, name: str) -> str | None:
        """
        The value of the parameter C{name} (case-insensitive), C{""} if it
        has no value, C{None} if absent.
        """
        return _findParam(self.params, name)

    def withParam(self, name: str, value: str | None = None) -> Via:
        """
        A copy with parameter C{name} set to C{value} (C{None} for none),
        replacing an existing one where it stands or appending it; used to
        add C{received} and fill in C{rport} (RFC 3261 section 18.2.1, RFC
        3581 section 4).
        """
        return Via(
            self.protocol,
            self.transport,
            self.host,
            self.port,
            _replaceParam(self.params, name, value),
        )

    def withParams(self, *params: tuple[str, str | None]) -> Via:
        """
        A copy with each C{(name, value)} of C{params} set as L{withParam}
        sets one, in one new Via.
        """
        replaced = self.params
        for name, value in params:
            replaced = _replaceParam(replaced, name, value)
        return Via(self.protocol, self.transport, self.host, self.port, replaced)

    @property
    def sentBy(self) -> str:
        """
        C{host[:port]} as in the header, IPv6 in brackets.
        """
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def branch(self) -> str | None:
        """The branch parameter (RFC 3261 section 8.1.1.7), or C{None}."""
        return _findParam(self.params, "branch")

    @property
    def received(self) -> str | None:
        """The received parameter (RFC 3261 section 18.2.1), or C{None}."""
        return _findParam(self.params, "received")

    @property
    def maddr(self) -> str | None:
        """The maddr parameter, or C{None}."""
        return _findParam(self.params, "maddr")

    @property
    def ttl(self) -> int | None:
        """The ttl parameter as a number, or C{None}."""
        value = _findParam(self.params, "ttl")
        return int(value) if value else None

    @property
    def rportRequested(self) -> bool:
        """
        Whether the C{rport} parameter is present, with or without a value
        (RFC 3581 section 3).
        """
        return _findParam(self.params, "rport") is not None

    @property
    def rport(self) -> int | None:
        """
        The value of the C{rport} parameter, or C{None} when it is absent
        or has no value (RFC 3581 section 4).
        """
        value = _findParam(self.params, "rport")
        return int(value) if value else None


_new = object.__new__
_viaSlots: Any = Via.__dict__
_setViaProtocol = _viaSlots["protocol"].__set__
_setViaTransport = _viaSlots["transport"].__set__
_setViaHost = _viaSlots["host"].__set__
_setViaPort = _viaSlots["port"].__set__
_setViaParams = _viaSlots["params"].__set__


def _newVia(
    protocol: str, transport: str, host: str, port: int | None, params: Params
) -> Via:
    """
    Build a L{Via} from validated parts, setting its slots directly: about
    twice as fast as the frozen dataclass C{__init__}, which goes through
    C{object.__setattr__} for every field.
    """
    via = _new(Via)
    _setViaProtocol(via, protocol)
    _setViaTransport(via, transport)
    _setViaHost(via, host)
    _setViaPort(via, port)
    _setViaParams(via, params)
    return via


def _checkViaParam(name: str, pvalue: str | None, value: str) -> None:
    """
    Check a via-param that has a defined syntax (RFC 3261 section 25.1:
    via-ttl, via-maddr, via-received, via-branch; RFC 3581: response-port).
    """
    if name == "branch":
        bad = not pvalue or type(pvalue) is QuotedValue or not _TOKEN_RE.match(pvalue)
    elif name == "rport":
        bad = pvalue is not None and (
            not pvalue.isdigit() or len(pvalue) > 5 or int(pvalue) > 65535
        )
    elif name == "ttl":
        bad = not pvalue or not pvalue.isdigit() or len(pvalue) > 3 or int(pvalue) > 255
    elif name == "received":
        # RFC 3261 allows IPv4address / IPv6address; RFC 5118 section 4.5
        # shows IPv6 references here too.
        bad = not pvalue or not _isIP(pvalue)
    else:
        bad = not pvalue or not _HOST_RE.match(pvalue)
    if bad:
        raise ParseError(f"Bad Via header: bad {name} parameter in {_show(value)}")


#: The via-params whose syntax RFC 3261 section 25.1 and RFC 3581 define.
_VIA_CHECKED = frozenset({"branch", "rport", "ttl", "received", "maddr"})


def _checkHost(host: str, value: str, header: str) -> str:
    """
    Validate a matched host (hostname, IPv4 address or IPv6 reference) and
    return its stored form: IPv6 without brackets, names lower case.
    """
    if host[0] == "[":
        host = host[1:-1]
        if not _isIP(host):
            raise ParseError(f"Bad {header} header: bad IPv6 address in {_show(value)}")
        return host.lower()
    if host[-1].isdigit() or host[-1] == ".":
        if _IPV4_RE.match(host):
            return host
        # A toplabel starts with a letter: an all-digits last label makes
        # the host an IPv4 address.
        if host.rstrip(".").rpartition(".")[2].isdigit():
            if not _IPV4_RE.match(host):
                raise ParseError(
                    f"Bad {header} header: bad IPv4 address in {_show(value)}"
                )
            return host
    return host if host.islower() else host.lower()


#: One via-parm of the common form; the parameters with a defined syntax
#: (see L{_checkViaParam}) only in forms that pass its checks, and under
#: no other spelling of their names.
_QUICK_VIA = re.compile(
    rf"SIP/2\.0/({_Q_TOKEN}) ({_Q_HOST})(?::({_Q_PORT})|)"
    rf"((?:;(?:branch={_Q_TOKEN}|rport(?:={_Q_PORT}|)|received={_Q_IPV4}"
    rf"|(?!(?i:branch|rport|received|ttl|maddr)(?:[=;]|\Z)){_Q_TOKEN}"
    rf"(?:={_Q_TOKEN}|)))*+)"
)


def parseVia(value: str) -> list[Via]:
    """
    Parse one Via header field line, which may hold several comma-separated
    via-parms (RFC 3261 section 20.42 and 25.1):

        C{via-parm = sent-protocol LWS sent-by *( SEMI via-params )}

    The branch must be a token, ttl 0 to 255, received an IP address (or
    an IPv6 reference, RFC 5118 section 4.5), maddr a host, and rport empty
    or a port (RFC 3581 section 3).

    @return: the values, top-most first.
    @raise ParseError: C{"Bad Via header: ..."}.
    """
    quick = _QUICK_VIA.fullmatch(value)
    if quick is not None:
        transport, host, port, paramText = quick.groups()
        return [
            _newVia(
                "SIP/2.0",
                transport if transport.isupper() else transport.upper(),
                host if host.islower() else host.lower(),
                None if port is None else int(port),
                _splitParams(paramText) if paramText else (),
            )
        ]
    return _parseViaGeneral(value)


def _parseViaGeneral(value: str) -> list[Via]:
    """
    L{parseVia} for any value.
    """
    out = []
    pos = 0
    end = len(value)
    match = _VIA_RE.match
    while True:
        m = match(value, pos)
        if m is None:
            raise ParseError(f"Bad Via header: {_show(value)}")
        name, version, transport, host, portText, paramText = m.groups()
        host = _checkHost(host, value, "Via")
        port = None if portText is None else _parseNumber(portText, 65535, "Via")
        params = _parseParams(paramText) if paramText else ()
        for pname, pvalue in params:
            lname = pname if pname.islower() else pname.lower()
            if lname in _VIA_CHECKED:
                _checkViaParam(lname, pvalue, value)
        out.append(
            _newVia(
                "SIP/2.0"
                if name == "SIP" and version == "2.0"
                else f"{name}/{version}",
                transport if transport.isupper() else transport.upper(),
                host,
                port,
                params,
            )
        )
        pos = m.end()
        if pos >= end:
            if value[pos - 1] == ",":
                raise ParseError(f"Bad Via header: empty element in {_show(value)}")
            return out


# ---------------------------------------------------------------------------
# CSeq, Call-ID and numbers


_CSEQ_RE = re.compile(rf"{_SWS}([0-9]+){_LWS}({_TOKEN}){_SWS}\Z")


@dataclass(frozen=True, slots=True)
class CSeq:
    """
    A CSeq header field value (RFC 3261 section 20.16).

    @ivar number: the sequence number, below 2**31 (RFC 3261 section
        8.1.1.5).
    @ivar method: the method, case-sensitive.
    """

    number: int
    method: str

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


_cseqSlots: Any = CSeq.__dict__
_setCSeqNumber = _cseqSlots["number"].__set__
_setCSeqMethod = _cseqSlots["method"].__set__
#: Numbers below 2**31 (RFC 3261 section 8.1.1.5): any of up to nine
#: digits, and ten-digit ones up to 2139999999.
_QUICK_CSEQ = re.compile(
    rf"([0-9]{{1,9}}|1[0-9]{{9}}|20[0-9]{{8}}|21[0-3][0-9]{{7}}) ({_Q_TOKEN})"
)


def parseCSeq(value: str) -> CSeq:
    """
    Parse a CSeq value: C{1*DIGIT LWS Method} (RFC 3261 section 20.16).
    Leading zeros are allowed (RFC 4475 section 3.1.1.1).

    @raise ParseError: bad syntax, or a number of 2**31 or more (RFC 3261
        section 8.1.1.5).
    """
    quick = _QUICK_CSEQ.fullmatch(value)
    if quick is not None:
        cseq = _new(CSeq)
        _setCSeqNumber(cseq, int(quick[1]))
        _setCSeqMethod(cseq, quick[2])
        return cseq
    return _parseCSeqGeneral(value)


def _parseCSeqGeneral(value: str) -> CSeq:
    """
    L{parseCSeq} for any value.
    """
    m = _CSEQ_RE.match(value)
    if m is None:
        raise ParseError(f"Bad CSeq header: {_show(value)}")
    return CSeq(_parseNumber(m.group(1), 2**31 - 1, "CSeq"), m.group(2))


#: word = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" /
#: "'" / "~" / "(" / ")" / "<" / ">" / ":" / "\" / DQUOTE / "/" / "[" /
#: "]" / "?" / "{" / "}")
#: The characters of a C{word} (RFC 3261 section 25.1): those of a token and
#: a few separators.
WORD_CHARS = TOKEN_CHARS + r"()<>:\\\"/\[\]?{}"
_WORD = rf"[{WORD_CHARS}]+"
_CALLID_RE = re.compile(rf"{_SWS}({_WORD}(?:@{_WORD})?){_SWS}\Z")


def parseCallId(value: str) -> str:
    """
    Parse a Call-ID: C{word ["@" word]} (RFC 3261 section 20.8 and 25.1).
    The result is compared byte for byte (RFC 3261 section 8.1.1.4).

    @raise ParseError: bad syntax.
    """
    m = _CALLID_RE.match(value)
    if m is None:
        raise ParseError(f"Bad Call-ID header: {_show(value)}")
    return m.group(1)


def _parseInteger(value: str, maximum: int, header: str) -> int:
    text = value.strip(_WHITESPACE)
    if not text:
        raise ParseError(f"Bad {header} header: empty")
    return _parseNumber(text, maximum, header)


def parseDeltaSeconds(value: str) -> int:
    """
    Parse a C{delta-seconds} value (Expires, Min-Expires; RFC 3261
    section 20.19, 20.23): 0 to 2**32-1.

    @raise ParseError: not a number, or too large (RFC 4475 section
        3.1.2.4).
    """
    return _parseInteger(value, 2**32 - 1, "Expires")


def parseContentLength(value: str) -> int:
    """
    Parse Content-Length (RFC 3261 section 20.14): a non-negative number of
    octets.

    @raise ParseError: not a number (a negative one included, RFC 4475
        section 3.1.2.3), or overlarge.
    """
    return _parseInteger(value, 2**32 - 1, "Content-Length")


def parseMaxForwards(value: str) -> int:
    """
    Parse Max-Forwards (RFC 3261 section 20.22): 0 to 255.

    @raise ParseError: not a number, or over 255 (RFC 4475 section
        3.1.2.4).
    """
    return _parseInteger(value, 255, "Max-Forwards")


# ---------------------------------------------------------------------------
# name-addr / addr-spec (From, To, Contact, Route, Record-Route)


_NAME_ADDR_RE = re.compile(
    rf'{_SWS}(?:"((?:[^"\\]|\\.)*)"|({_TOKEN}(?:{_LWS}{_TOKEN})*))?'
    rf"{_SWS}<([^<>]*)>({_PARAMS_BLOCK}){_SWS}",
    re.S,
)
_ADDR_SPEC_RE = re.compile(
    rf'{_SWS}([^ \t\r\n;,<>"]+)({_PARAMS_BLOCK}){_SWS}',
    re.S,
)


@dataclass(frozen=True, slots=True)
class NameAddr:
    """
    A C{name-addr} or C{addr-spec} with header parameters: the value of a
    From, To, Contact, Route or Record-Route field (RFC 3261 section 20.10,
    20.20, 20.39).

    @ivar displayName: the display name, unquoted and with quoted-pairs
        resolved (a token display name has its words joined by single
        spaces), C{""} for an empty quoted one, or C{None} if absent.
    @ivar uri: the URI.
    @ivar params: the header parameters (C{tag}, C{expires}, C{q}, ...), not
        those of the URI.
    @ivar bracketed: whether the URI was written in angle brackets. The
        wire form always brackets it when there is a display name or when
        the URI contains C{","}, C{";"} or C{"?"} (RFC 3261 section 20.10).
    """

    displayName: str | None
    uri: URI
    params: Params = ()
    bracketed: bool = True

    def __str__(self) -> str:
        uriText = formatURI(self.uri)
        if self.displayName is not None:
            text = f"{_quote(self.displayName)} <{uriText}>"
        elif self.bracketed or any(c in uriText for c in ",;?"):
            text = f"<{uriText}>"
        else:
            text = uriText
        return text + formatParams(self.params) if self.params else text

    def param(self, name: str) -> str | None:
        """
        The value of the header parameter C{name} (case-insensitive), C{""}
        if it has no value, C{None} if absent.
        """
        return _findParam(self.params, name)

    def withParam(self, name: str, value: str | None = None) -> NameAddr:
        """
        A copy with the header parameter C{name} set to C{value}, replacing
        an existing one where it stands or appending it.
        """
        return NameAddr(
            self.displayName,
            self.uri,
            _replaceParam(self.params, name, value),
            self.bracketed,
        )

    def withoutParam(self, name: str) -> NameAddr:
        """
        A copy without the header parameter C{name}.
        """
        return NameAddr(
            self.displayName,
            self.uri,
            _removeParams(self.params, frozenset({name.lower()})),
            self.bracketed,
        )

    @property
    def tag(self) -> str | None:
        """The C{tag} parameter (RFC 3261 section 19.3), or C{None}."""
        return _findParam(self.params, "tag")


_nameAddrSlots: Any = NameAddr.__dict__
_setDisplayName = _nameAddrSlots["displayName"].__set__
_setURI = _nameAddrSlots["uri"].__set__
_setNameAddrParams = _nameAddrSlots["params"].__set__
_setBracketed = _nameAddrSlots["bracketed"].__set__


def _newNameAddr(
    displayName: str | None, uri: URI, params: Params, bracketed: bool
) -> NameAddr:
    """
    Build a L{NameAddr} from validated parts, setting its slots directly
    (see L{_newVia}).
    """
    nameAddr = _new(NameAddr)
    _setDisplayName(nameAddr, displayName)
    _setURI(nameAddr, uri)
    _setNameAddrParams(nameAddr, params)
    _setBracketed(nameAddr, bracketed)
    return nameAddr


#: The Contact wildcard C{*} (RFC 3261 section 10.2.2 and 20.10).
WILDCARD = NameAddr(None, AbsoluteURI("*", ""), (), False)


#: A name-addr of the common form: an optional quoted display name without
#: quoted-pairs, the URI in angle brackets, token parameters. The URI is
#: whatever L{parseURI} accepts, as in the general path.
_QUICK_NAME_ADDR = re.compile(
    rf'(?:"([^"\\\x00-\x1f\x7f]*+)" ?|)<([^<>]*+)>({_Q_PARAMS})'
)


def _quickNameAddr(value: str) -> NameAddr | None:
    """
    The L{NameAddr} of a name-addr of the common form, or C{None} when
    C{value} needs the general path.
    """
    quick = _QUICK_NAME_ADDR.fullmatch(value)
    if quick is None:
        return None
    displayName, uriText, paramText = quick.groups()
    try:
        uri = parseURI(uriText)
    except ParseError:
        return None
    return _newNameAddr(
        displayName, uri, _splitParams(paramText) if paramText else (), True
    )


def _parseNameAddrAt(value: str, pos: int, header: str) -> tuple[NameAddr, int]:
    """
    Parse one name-addr or addr-spec with its parameters starting at
    C{pos}; return it and the position after it (and after trailing
    whitespace).
    """
    m = _NAME_ADDR_RE.match(value, pos)
    if m is not None:
        quoted, tokens, uriText, paramText = m.groups()
        if quoted is not None:
            displayName: str | None = _unquote(quoted)
        elif tokens is not None:
            displayName = _WS_RE.sub(" ", tokens)
        else:
            displayName = None
        bracketed = True
    else:
        m = _ADDR_SPEC_RE.match(value, pos)
        if m is None:
            raise ParseError(f"Bad {header} header: {_show(value)}")
        uriText, paramText = m.groups()
        if "?" in uriText:
            # RFC 3261 section 20.10: a URI with a comma, question mark or
            # semicolon must be in angle brackets; outside them, ";" starts
            # the header parameters and "," the next value.
            raise ParseError(
                f"Bad {header} header: URI with '?' must be in angle brackets"
            )
        displayName = None
        bracketed = False
    try:
        uri = parseURI(uriText)
    except ParseError as e:
        raise ParseError(f"Bad {header} header: {e.reason}") from None
    params: Params = ()
    if paramText:
        params = _parseParams(paramText)
        for name, pvalue in params:
            # tag-param = "tag" EQUAL token (RFC 3261 section 25.1).
            if (name == "tag" or name.lower() == "tag") and (
                not pvalue or type(pvalue) is QuotedValue or not _TOKEN_RE.match(pvalue)
            ):
                raise ParseError(f"Bad {header} header: bad tag in {_show(value)}")
    return _newNameAddr(displayName, uri, params, bracketed), m.end()


def parseNameAddr(value: str, header: str = "From/To") -> NameAddr:
    """
    Parse a single C{(name-addr / addr-spec) *(SEMI generic-param)} value,
    as in From and To (RFC 3261 section 20.20, 20.39, 25.1). In the
    addr-spec form (no angle brackets), C{;params} belong to the header, not
    to the URI (RFC 3261 section 20).

    @param header: the header name used in error messages.
    @raise ParseError: C{"Bad <header> header: ..."} for bad syntax:
        unterminated quotes, unquoted display names that are not tokens,
        spaces inside the URI, a URI with C{"?"} or C{","} outside angle
        brackets, empty parameters.
    """
    nameAddr = _nameAddrCache.get(value)
    if nameAddr is not None:
        return nameAddr
    nameAddr = _quickNameAddr(value)
    if nameAddr is None:
        nameAddr = _parseNameAddrGeneral(value, header)
    if len(_nameAddrCache) >= _CACHE_SIZE:
        _nameAddrCache.clear()
    if len(value) <= _CACHE_KEY_LIMIT:
        _nameAddrCache[value] = nameAddr
    return nameAddr


def _parseNameAddrGeneral(value: str, header: str) -> NameAddr:
    """
    L{parseNameAddr} for any value.
    """
    nameAddr, pos = _parseNameAddrAt(value, 0, header)
    if pos != len(value):
        raise ParseError(f"Bad {header} header: {_show(value)}")
    return nameAddr


#: Recently parsed single name-addr values (From, To) by their text: they
#: are immutable, and every request and response of a dialog repeats the
#: same ones. Bounded: cleared when full, long values skipped.
_nameAddrCache: dict[str, NameAddr] = {}
_CACHE_SIZE = 4096
_CACHE_KEY_LIMIT = 256


def parseNameAddrList(value: str, header: str = "Contact") -> list[NameAddr]:
    """
    Parse a comma-separated list of name-addr or addr-spec values with
    parameters, as in Contact, Route and Record-Route (RFC 3261 section
    20.10, 20.30, 20.34). A Contact value of C{*} gives L{WILDCARD}.

    @raise ParseError: C{"Bad <header> header: ..."} for bad syntax,
        including empty elements.
    """
    if "," not in value:
        quick = _quickNameAddr(value)
        if quick is not None:
            return [quick]
    return _parseNameAddrListGeneral(value, header)


def _parseNameAddrListGeneral(value: str, header: str) -> list[NameAddr]:
    """
    L{parseNameAddrList} for any value.
    """
    if value.strip(_WHITESPACE) == "*":
        return [WILDCARD]
    out = []
    pos = 0
    end = len(value)
    while True:
        nameAddr, pos = _parseNameAddrAt(value, pos, header)
        out.append(nameAddr)
        if pos >= end:
            return out
        if value[pos] != ",":
            raise ParseError(f"Bad {header} header: {_show(value)}")
        pos += 1


# ---------------------------------------------------------------------------
# Content-Type and Accept (RFC 3261 section 20.1, 20.15; RFC 2045)


_MEDIA_RE = re.compile(
    rf"{_SWS}({_TOKEN}){_SWS}/{_SWS}({_TOKEN})({_PARAMS_BLOCK}){_SWS}", re.S
)


class _MediaType:
    """
    What L{ContentType} and L{MediaRange} share: a type, a subtype and
    parameters.
    """

    __slots__ = ()

    type: str
    subtype: str
    params: Params

    @property
    def mimeType(self) -> str:
        """C{"type/subtype"}, lower case (wildcards in a L{MediaRange})."""
        return f"{self.type}/{self.subtype}"

    def param(self, name: str) -> str | None:
        """
        The value of the parameter C{name} (case-insensitive), or C{None}.
        """
        return _findParam(self.params, name)


@dataclass(frozen=True, slots=True)
class ContentType(_MediaType):
    """
    A Content-Type value (RFC 3261 section 20.15).

    @ivar type: the top-level type, lower case.
    @ivar subtype: the subtype, lower case.
    @ivar params: the media type parameters (C{charset}, C{boundary} ...).
    """

    type: str
    subtype: str
    params: Params = ()

    def __str__(self) -> str:
        return f"{self.type}/{self.subtype}{formatParams(self.params)}"


def parseContentType(value: str) -> ContentType:
    """
    Parse a Content-Type value: C{m-type SLASH m-subtype *(SEMI
    m-parameter)}, where each m-parameter has a value (RFC 3261 section
    25.1).

    @raise ParseError: C{"Bad Content-Type header: ..."}.
    """
    m = _MEDIA_RE.match(value)
    if m is None or m.end() != len(value):
        raise ParseError(f"Bad Content-Type header: {_show(value)}")
    mtype, subtype, paramText = m.groups()
    params = _parseParams(paramText) if paramText else ()
    if any(v is None for _, v in params):
        raise ParseError("Bad Content-Type header: parameter without value")
    return ContentType(mtype.lower(), subtype.lower(), params)


_QVALUE_RE = re.compile(r"(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)\Z")


def _formatQ(q: float) -> str:
    text = f"{q:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


@dataclass(frozen=True, slots=True)
class MediaRange(_MediaType):
    """
    One element of an Accept header (RFC 3261 section 20.1).

    @ivar type: the type, lower case, or C{"*"}.
    @ivar subtype: the subtype, lower case, or C{"*"}.
    @ivar params: the parameters other than C{q}.
    @ivar q: the quality value, 0 to 1 (1 when absent).
    """

    type: str
    subtype: str
    params: Params = ()
    q: float = 1.0

    def __str__(self) -> str:
        text = f"{self.type}/{self.subtype}{formatParams(self.params)}"
        return text if self.q == 1.0 else f"{text};q={_formatQ(self.q)}"

    def matches(self, mimeType: str) -> bool:
        """
        Whether C{mimeType} (C{"type/subtype"}, any case) falls in this range:
        C{*/*} matches everything, C{type/*} every subtype of C{type}.
        """
        mtype, _, subtype = mimeType.lower().partition("/")
        if self.type == "*":
            return True
        if self.type != mtype:
            return False
        return self.subtype == "*" or self.subtype == subtype


def parseAccept(value: str) -> list[MediaRange]:
    """
    Parse an Accept value: C{[ accept-range *(COMMA accept-range) ]} (RFC
    3261 section 20.1). An empty value is allowed and gives an empty list.

    @raise ParseError: C{"Bad Accept header: ..."}, including a bad
        C{qvalue} or a C{*/subtype} range.
    """
    if not value.strip(_WHITESPACE):
        return []
    out = []
    pos = 0
    end = len(value)
    while True:
        m = _MEDIA_RE.match(value, pos)
        if m is None:
            raise ParseError(f"Bad Accept header: {_show(value)}")
        mtype, subtype, paramText = m.groups()
        if mtype == "*" and subtype != "*":
            raise ParseError(f"Bad Accept header: {_show(value)}")
        params = _parseParams(paramText) if paramText else ()
        q = 1.0
        if params:
            qText = _findParam(params, "q")
            if qText is not None:
                if not _QVALUE_RE.match(qText):
                    raise ParseError(f"Bad Accept header: bad q value {qText!r}")
                q = float(qText)
                params = _removeParams(params, frozenset({"q"}))
        out.append(MediaRange(mtype.lower(), subtype.lower(), params, q))
        pos = m.end()
        if pos >= end:
            return out
        if value[pos] != ",":
            raise ParseError(f"Bad Accept header: {_show(value)}")
        pos += 1


# ---------------------------------------------------------------------------
# Event and Subscription-State (RFC 6665 section 8.2)


#: token-nodot (RFC 6665 section 8.4)
#: token-nodot (RFC 6665 section 8.4): a token without ".".
_TOKEN_NODOT = rf"[{TOKEN_CHARS.replace('.', '')}]+"
_EVENT_RE = re.compile(
    rf"{_SWS}({_TOKEN_NODOT}(?:\.{_TOKEN_NODOT})*)({_PARAMS_BLOCK}){_SWS}\Z", re.S
)


@dataclass(frozen=True, slots=True)
class Event:
    """
    An Event header value (RFC 6665 section 8.2.1).

    @ivar package: the event package (C{"presence"}), as written.
    @ivar templates: the event templates (C{("winfo",)}).
    @ivar id: the C{id} parameter, or C{None} (RFC 6665 section 8.2.1).
    @ivar params: the other parameters.
    """

    package: str
    templates: tuple[str, ...] = ()
    id: str | None = None
    params: Params = ()

    def __str__(self) -> str:
        text = self.eventType
        if self.id is not None:
            text += f";id={self.id}"
        return text + formatParams(self.params) if self.params else text

    @property
    def eventType(self) -> str:
        """The event type: package and templates (C{"presence.winfo"})."""
        if not self.templates:
            return self.package
        return ".".join((self.package, *self.templates))

    def param(self, name: str) -> str | None:
        """
        The value of the parameter C{name} (case-insensitive), or C{None};
        C{"id"} gives L{id}.
        """
        if name.lower() == "id":
            return self.id
        return _findParam(self.params, name)


def parseEvent(value: str) -> Event:
    """
    Parse an Event value (RFC 6665 section 8.2.1 and 8.4):

        C{event-type *( SEMI event-param )}, with
        C{event-type = event-package *( "." event-template )} and
        C{event-param = generic-param / ( "id" EQUAL token )}.

    @raise ParseError: C{"Bad Event header: ..."}.
    """
    m = _EVENT_RE.match(value)
    if m is None:
        raise ParseError(f"Bad Event header: {_show(value)}")
    eventType, paramText = m.groups()
    package, *templates = eventType.split(".")
    params = _parseParams(paramText) if paramText else ()
    eventId = None
    if params:
        for name, pvalue in params:
            if name.lower() == "id":
                if (
                    eventId is not None
                    or not pvalue
                    or type(pvalue) is QuotedValue
                    or not _TOKEN_RE.match(pvalue)
                ):
                    raise ParseError(f"Bad Event header: bad id in {_show(value)}")
                eventId = pvalue
        if eventId is not None:
            params = _removeParams(params, frozenset({"id"}))
    return Event(package, tuple(templates), eventId, params)


_STATE_RE = re.compile(rf"{_SWS}({_TOKEN})({_PARAMS_BLOCK}){_SWS}\Z", re.S)
_SUBSTATE_NAMES = frozenset({"reason", "expires", "retry-after"})


@dataclass(frozen=True, slots=True)
class SubscriptionState:
    """
    A Subscription-State value (RFC 6665 section 8.2.3 and 4.1.3).

    @ivar state: C{"active"}, C{"pending"}, C{"terminated"} or an extension,
        lower case.
    @ivar reason: the C{reason} parameter, lower case, or C{None}.
    @ivar expires: the C{expires} parameter, or C{None}.
    @ivar retryAfter: the C{retry-after} parameter, or C{None}.
    @ivar params: the other parameters.
    """

    state: str
    reason: str | None = None
    expires: int | None = None
    retryAfter: int | None = None
    params: Params = ()

    def __str__(self) -> str:
        parts = [self.state]
        if self.reason is not None:
            parts.append(f";reason={self.reason}")
        if self.expires is not None:
            parts.append(f";expires={self.expires}")
        if self.retryAfter is not None:
            parts.append(f";retry-after={self.retryAfter}")
        if self.params:
            parts.append(formatParams(self.params))
        return "".join(parts)

    def param(self, name: str) -> str | None:
        """
        The value of an extension parameter C{name} (case-insensitive), or
        C{None}.
        """
        return _findParam(self.params, name)


def parseSubscriptionState(value: str) -> SubscriptionState:
    """
    Parse a Subscription-State value (RFC 6665 section 8.4):

        C{substate-value *( SEMI subexp-params )}, where C{reason} is a
        token and C{expires} and C{retry-after} are delta-seconds.

    @raise ParseError: C{"Bad Subscription-State header: ..."}.
    """
    m = _STATE_RE.match(value)
    if m is None:
        raise ParseError(f"Bad Subscription-State header: {_show(value)}")
    state, paramText = m.groups()
    params = _parseParams(paramText) if paramText else ()
    reason: str | None = None
    expires: int | None = None
    retryAfter: int | None = None
    rest = []
    for name, pvalue in params:
        lname = name.lower()
        if lname not in _SUBSTATE_NAMES:
            rest.append((name, pvalue))
            continue
        if not pvalue or type(pvalue) is QuotedValue:
            raise ParseError(f"Bad Subscription-State header: bad {name}")
        if lname == "reason":
            if not _TOKEN_RE.match(pvalue):
                raise ParseError(f"Bad Subscription-State header: bad {name}")
            reason = pvalue.lower()
        elif lname == "expires":
            expires = _parseNumber(pvalue, 2**32 - 1, "Subscription-State")
        else:
            retryAfter = _parseNumber(pvalue, 2**32 - 1, "Subscription-State")
    return SubscriptionState(state.lower(), reason, expires, retryAfter, tuple(rest))


# ---------------------------------------------------------------------------
# Retry-After (RFC 3261 section 20.33)


_RETRY_RE = re.compile(rf"{_SWS}([0-9]+){_SWS}")


@dataclass(frozen=True, slots=True)
class RetryAfter:
    """
    A Retry-After value (RFC 3261 section 20.33).

    @ivar seconds: the delay in seconds.
    @ivar comment: the comment's text without its parentheses, as written,
        or C{None}.
    @ivar duration: the C{duration} parameter, or C{None}.
    @ivar params: the other parameters.
    """

    seconds: int
    comment: str | None = None
    duration: int | None = None
    params: Params = ()

    def __str__(self) -> str:
        text = str(self.seconds)
        if self.comment is not None:
            text += f" ({self.comment})"
        if self.duration is not None:
            text += f";duration={self.duration}"
        return text + formatParams(self.params) if self.params else text


def _commentEnd(value: str, pos: int) -> int:
    """
    The position after the comment starting at C{value[pos] == "("}:
    C{comment = LPAREN *(ctext / quoted-pair / comment) RPAREN}, nested
    (RFC 3261 section 25.1).
    """
    depth = 0
    i = pos
    end = len(value)
    while i < end:
        char = value[i]
        if char == "\\":
            i += 2
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ParseError(f"Bad Retry-After header: unterminated comment in {_show(value)}")


_PARAMS_TAIL_RE = re.compile(rf"({_PARAMS_BLOCK}){_SWS}\Z", re.S)


def parseRetryAfter(value: str) -> RetryAfter:
    """
    Parse a Retry-After value: C{delta-seconds [ comment ] *( SEMI
    retry-param )}, with C{retry-param = ("duration" EQUAL delta-seconds) /
    generic-param} (RFC 3261 section 20.33 and 25.1).

    @raise ParseError: C{"Bad Retry-After header: ..."}, including values
        over 2**32-1 (RFC 4475 section 3.1.2.5).
    """
    m = _RETRY_RE.match(value)
    if m is None:
        raise ParseError(f"Bad Retry-After header: {_show(value)}")
    seconds = _parseNumber(m.group(1), 2**32 - 1, "Retry-After")
    pos = m.end()
    comment = None
    if pos < len(value) and value[pos] == "(":
        end = _commentEnd(value, pos)
        comment = value[pos + 1 : end - 1]
        pos = end
    tail = _PARAMS_TAIL_RE.match(value, pos)
    if tail is None:
        raise ParseError(f"Bad Retry-After header: {_show(value)}")
    params = _parseParams(tail.group(1)) if tail.group(1) else ()
    duration = None
    if params:
        durationText = _findParam(params, "duration")
        if durationText is not None:
            if type(durationText) is QuotedValue:
                raise ParseError("Bad Retry-After header: bad duration")
            duration = _parseNumber(durationText, 2**32 - 1, "Retry-After")
            params = _removeParams(params, frozenset({"duration"}))
    return RetryAfter(seconds, comment, duration, params)
