# -*- test-case-name: tests.test_parser -*-
"""
Sans-I/O SIP message parsing: one datagram at a time with L{parseMessage},
or an incremental byte stream with L{StreamParser}.

Neither touches a socket or a clock. Bad input is never an exception other
than L{ParseError} (or its subclass L{MessageTooLarge}), which carries the
status to answer with and, whenever the start line and header section could
be told apart, a best-effort C{partial} message so that the answer can be
addressed (RFC 3261 section 8.2.6.2 copies Via, From, To, Call-ID and CSeq).

What is checked when a message is parsed, and what is left for later:

  - The start line, strictly (RFC 3261 sections 7.1, 7.2 and 25): a single
    SP between the elements of a Request-Line, a token method, a Request-URI
    that L{sipevents.sip.uri.parseURI} accepts and that carries no headers
    (RFC 3261 section 19.1.1), C{SIP/2.0} (anything else that looks like a
    SIP-Version is answered with 505), a three-digit status code from 100 to
    699 and any reason phrase, possibly empty or UTF-8.
  - The header section (RFC 3261 section 7.3.1): folded lines are unfolded,
    every field is C{token *(SP / HTAB) ":" value} with surrounding white
    space removed, names keep their spelling (compact forms included) and
    values are decoded as UTF-8 with C{surrogateescape}, so that unknown
    header fields survive verbatim. CR and LF may only appear as the CRLF
    that ends a line.
  - The header fields every message needs (RFC 3261 section 8.1.1): Via,
    From, To, Call-ID and CSeq must be present and well-formed; From, To,
    Call-ID, CSeq, Max-Forwards and Content-Length may appear once only;
    the CSeq method must be the request method (RFC 4475 section 3.1.2.17);
    Max-Forwards and Content-Length must be in range. Common forms of these
    values are checked by quick patterns, each accepting a strict subset of
    what the typed parsers of L{sipevents.sip.headers} accept; anything else
    goes through the typed parser itself, whose result is kept in the
    message's typed-view cache. Either way, a message that parsed never has
    a C{vias}, C{fromAddr}, C{toAddr}, C{callId}, C{cseq}, C{maxForwards}
    or C{contentLength} view that raises.
  - Every other header field is validated lazily, by the typed views of
    L{sipevents.sip.message.Message}, when it is used.

A partial message is what could be read: the start line (for a request
whose Request-URI did not parse, C{AbsoluteURI("invalid", "")} stands in
for it; a response whose status code is unusable gives no partial) and
every header field line that had a name and a colon, verbatim. Its typed
views are unchecked and may raise, as may the repeated fields of a message
refused for repeating them.

Speed: a message of the common kind is read by a fast path
(L{_parseFast}): its head is decoded once and split with C{str} methods,
not character by character; header names and whole header lines that recur
from message to message (all but Via, From, To, Call-ID and CSeq) are
remembered in bounded caches; and Via, From, To, Call-ID and CSeq are
checked by a single match of one pattern, a strict subset of what the typed
parsers accept. Anything unusual or wrong goes to the general path, which
reads what it can and says what is wrong. Both paths build the same message
from the same octets, and the fast path never refuses what the general path
accepts (tests.test_properties checks both on random and mutated messages).

Choices made where RFC 4475 leaves one (each is tested in
C{tests.test_rfc4475}):

  - Extra octets after Content-Length in a datagram are discarded
    (RFC 3261 section 18.3, RFC 4475 section 3.1.1.8, C{dblreq}); a
    datagram without Content-Length has a body running to its end
    (C{inv2543}); a shorter body than Content-Length says is a 400
    (C{clerr}).
  - Start lines are not repaired: extra SP (C{lwsstart}, C{trws}), LWS
    inside the Request-URI (C{lwsruri}) and a Request-URI in angle brackets
    (C{ltgtruri}) are 400. A Request-URI with escaped headers (C{escruri})
    is 400 too, because RFC 3261 section 19.1.1 does not allow headers in a
    Request-URI. A response without the SP after its status code
    (RFC 4475 section 3.1.1.13) is accepted with an empty reason phrase.
  - A CSeq number or Max-Forwards value out of range makes the message
    unparseable (C{scalar02} and C{scalarlg}: 400, and a response is
    dropped by the transport); Expires, Retry-After and Warning are only
    checked when used.
  - A CSeq method that differs from an unknown request method is answered
    with 501 rather than 400 (RFC 4475 section 3.1.2.18, C{mismatch02});
    "unknown" means not in L{KNOWN_METHODS}.
  - Several Content-Length fields with different values are a 400, and on a
    stream they lose the framing (C{mcl01}); repeated identical values are
    accepted and only the first field is kept.
  - Header fields nobody checks eagerly are kept even when malformed, such
    as a Date in a non-GMT zone (C{baddate}, accepted) or a Contact URI
    with headers outside angle brackets (C{regbadct}: the message parses,
    and C{message.contacts} raises, for the UAS to answer 400).
  - A branch that is only the magic cookie is accepted (C{badbranch}); the
    transaction layer decides what to make of it.
  - The empty line after the header section is required, even at the end
    of a datagram (RFC 3261 section 7); lines must end with CRLF, and a
    bare CR or LF is a 400.
  - A datagram holding only CRLFs is a L{ParseError} ("Empty message") with
    no partial: there is nothing to answer.
"""

from __future__ import annotations

import re
from typing import Final

from sipevents.config import DEFAULT_LIMITS, Limits
from sipevents.errors import MessageTooLarge, ParseError
from sipevents.sip import headers as h
from sipevents.sip.headers import _Q_HOST, _Q_HOSTNAME, _Q_IPV4
from sipevents.sip.message import Headers, Request, Response, headerKey
from sipevents.sip.uri import SIPURI, URI, AbsoluteURI, parseURI

__all__ = [
    "KNOWN_METHODS",
    "KeepAlive",
    "StreamItem",
    "StreamParser",
    "parseMessage",
]

#: Methods defined by standards-track RFCs (RFC 3261, 3262, 3311, 3428,
#: 3515, 3903, 6086, 6665). A request whose method is not one of them and
#: whose CSeq method differs is answered with 501 (RFC 4475 section
#: 3.1.2.18).
KNOWN_METHODS: Final = frozenset(
    {
        "ACK",
        "BYE",
        "CANCEL",
        "INFO",
        "INVITE",
        "MESSAGE",
        "NOTIFY",
        "OPTIONS",
        "PRACK",
        "PUBLISH",
        "REFER",
        "REGISTER",
        "SUBSCRIBE",
        "UPDATE",
    }
)


class KeepAlive:
    """
    A double-CRLF keep-alive ping seen between messages on a stream
    (RFC 5626 section 3.5.1); the transport answers it with a single CRLF
    "pong". All instances are equal.
    """

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeepAlive)

    def __hash__(self) -> int:
        return hash(KeepAlive)

    def __repr__(self) -> str:
        return "KeepAlive()"


# token (RFC 3261 section 25.1), used for methods and header names.
_TOKEN = rf"[{h.TOKEN_CHARS}]++"
_METHOD = re.compile(_TOKEN.encode("ascii"))
_METHOD_TEXT = re.compile(_TOKEN)
_HEADER_NAME = re.compile(_TOKEN)
# SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT, case-insensitive (section 25.1).
_SIP_VERSION = re.compile(rb"SIP/[0-9]+\.[0-9]+", re.IGNORECASE)
# A line break and the white space after it, which join a continuation line
# to the one before (RFC 3261 section 7.3.1). White space before the break
# stays: all LWS means one SP anyway, and matching it too would make the
# search quadratic on long runs of spaces.
_FOLD = re.compile(r"\r\n[ \t]+")

# Quick checks of the common forms of the header fields validated on
# arrival. Each accepts a strict subset of what the typed parsers of
# sipevents.sip.headers accept (tests.test_properties checks this): no optional
# white space, escapes, IPv6, tel URIs or unusual parameters. A value that
# does not match goes to the typed parser, which accepts it or says what is
# wrong. Possessive quantifiers keep the matching linear.
#
# They are written for the speed of the re module: "(?:x|)" rather than
# "(?:x)?" (a branch is cheaper than a repeat), counted repeats of groups
# unrolled, and the most common form first in each alternation; together
# about a fifth faster than the obvious spelling.


def _optional(pattern: str) -> str:
    """
    C{pattern}, or nothing: C{(?:pattern)?} spelled as a branch.
    """
    return f"(?:{pattern}|)"


# The hosts of the header quick paths (_Q_HOST: address first), so that
# both fast paths accept the same hosts. Senders mostly put addresses in Via
# and names in URIs: try that first.
_URI_HOST = rf"(?:{_Q_HOSTNAME}|{_Q_IPV4})"
# Ports 1 to 65535: Linux hands out ephemeral ports up to 60999, so a
# peer's port at or above 60000 is common and must not cost the slow path.
# Five digits are tried first: inside a possessive repetition (Via
# parameters) a shorter match is never given back, and "rport=50000" would
# stop at "5000".
_PORT = (
    r"(?:[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]"
    r"|[1-9][0-9]{0,3})"
)
_HOSTPORT = _Q_HOST + _optional(f":{_PORT}")
_URI_HOSTPORT = _URI_HOST + _optional(f":{_PORT}")
_URI_PARAM = r"[A-Za-z0-9\-_.!~*'()\[\]/:&+$]++"
_SIP_URI = (
    "sips?:"
    + _optional(r"[A-Za-z0-9\-_.!~*'()&=+$,;?/]++@")
    + _URI_HOSTPORT
    + rf"(?:;{_URI_PARAM}{_optional(f'={_URI_PARAM}')})*+"
)
# Outside angle brackets an addr-spec has no URI parameters: what follows
# ";" belongs to the header (RFC 3261 section 20).
_ADDR_SPEC = "sips?:" + _optional(r"[A-Za-z0-9\-_.!~*'()&=+$]++@") + _URI_HOSTPORT
# A tag needs a value (RFC 3261 section 25.1, tag-param); LF counts as an
# end, for _FAST_REQUIRED. The usual ";tag=" goes first.
_GENERIC_PARAMS = (
    rf"(?:;tag={_TOKEN}"
    rf"|;(?!(?i:tag)(?:[;\n]|\Z)){_TOKEN}{_optional(f'={_TOKEN}')})*+"
)
_DISPLAY_NAME = rf"\"[^\"\\\x00-\x1f\x7f]*+\" ?|{_TOKEN}(?: {_TOKEN})*+ ?"
_FAST_NAME_ADDR = re.compile(
    rf"(?:<{_SIP_URI}>|(?:{_DISPLAY_NAME})<{_SIP_URI}>|{_ADDR_SPEC})" + _GENERIC_PARAMS
)
# Via parameters with a defined syntax (RFC 3261 section 25.1, RFC 3581)
# have their own patterns, and no spelling of their names passes as a
# generic parameter. (LF counts as an end, for _FAST_REQUIRED.)
_VIA_PARAMS = (
    rf"(?:;(?:branch={_TOKEN}|rport{_optional(f'={_PORT}')}|received={_Q_IPV4}"
    rf"|(?!(?i:branch|rport|received|ttl|maddr)(?:[=;,\n]|\Z)){_TOKEN}"
    rf"{_optional(f'={_TOKEN}')}))*+"
)
_VIA_PARM = rf"SIP/2\.0/{_TOKEN} {_HOSTPORT}{_VIA_PARAMS}"
_FAST_VIA = re.compile(rf"{_VIA_PARM}(?:, ?{_VIA_PARM})*+")
# CSeq numbers below 2**31 (RFC 3261 section 8.1.1.5): any of up to nine
# digits, and ten-digit ones up to 2139999999.
_FAST_CSEQ = re.compile(
    rf"(?:[0-9]{{1,9}}|1[0-9]{{9}}|20[0-9]{{8}}|21[0-3][0-9]{{7}}) ({_TOKEN})"
)
# word ["@" word] (RFC 3261 section 25.1): the value is the Call-ID itself.
_WORD = rf"[{h.WORD_CHARS}]++"
_FAST_CALL_ID = re.compile(_WORD + _optional(f"@{_WORD}"))
# All of them at once, for the usual message with one Via line: its Via,
# From, To, Call-ID and CSeq values joined by LFs, which no value holds and
# no part of the pattern matches. Group 1 is the CSeq method.
_FAST_REQUIRED = re.compile(
    "\n".join(
        f"(?:{p.pattern})"
        for p in (
            _FAST_VIA,
            _FAST_NAME_ADDR,
            _FAST_NAME_ADDR,
            _FAST_CALL_ID,
            _FAST_CSEQ,
        )
    )
)

#: What a partial request gets as its Request-URI when the real one could
#: not be read; the partial is only used to address an error response.
_INVALID_URI: Final = AbsoluteURI("invalid", "")

#: The longest reason phrase put in a ParseError: values can be long, and
#: the reason ends up in the status line of a response.
_MAX_REASON: Final = 120

# Lookup keys of the header fields checked on arrival.
_VIA = "via"
_FROM = "from"
_TO = "to"
_CALL_ID = "call-id"
_CSEQ = "cseq"
_MAX_FORWARDS = "max-forwards"
_CONTENT_LENGTH = "content-length"
_SPELLING: Final = {
    _VIA: "Via",
    _FROM: "From",
    _TO: "To",
    _CALL_ID: "Call-ID",
    _CSEQ: "CSeq",
    _MAX_FORWARDS: "Max-Forwards",
    _CONTENT_LENGTH: "Content-Length",
}

# Where the parser keeps each header field checked on arrival: 0 for the
# others. Below _STABLE, the fields that change with every transaction or
# dialog.
_SLOTS: Final = {
    _VIA: 1,
    _FROM: 2,
    _TO: 3,
    _CALL_ID: 4,
    _CSEQ: 5,
    _MAX_FORWARDS: 6,
    _CONTENT_LENGTH: 7,
}
_STABLE: Final = 6

#: A header field as kept in L{Headers}: (lookup key, name, value).
_Field = tuple[str, str, str]

# Header name as written, with any white space before the colon -> (lookup
# key, name without that white space, slot). Only tokens get in, so a hit
# is also a syntax check.
_nameCache: dict[str, tuple[str, str, int]] = {}
_NAME_CACHE_SIZE: Final = 4096

# Whole header lines -> (field, slot). Many lines repeat from message to
# message (Max-Forwards: 70, Content-Length: 0, User-Agent, Allow,
# Supported, Accept, Event ...); a hit skips splitting the line again, and
# field tuples are immutable, so messages can share them. The fields that
# change with every transaction or dialog stay out. Bounded: cleared when
# full, long lines skipped.
_lineCache: dict[str, tuple[_Field, int]] = {}
_LINE_CACHE_SIZE: Final = 2048
_LINE_CACHE_KEY_LIMIT: Final = 200

# Methods as they come off the wire, already checked and decoded.
_methodCache: dict[bytes, str] = {m.encode("ascii"): m for m in KNOWN_METHODS}

#: What L{_parseHead} returns: the message (C{None} when the status line was
#: too broken to build one), the first error, the Content-Length (C{None}
#: when absent or unusable) and whether the Content-Length is usable for
#: framing a stream.
_Head = tuple[Request | Response | None, ParseError | None, int | None, bool]


def _clip(reason: str) -> str:
    """
    Keep an error reason short enough for a status line.
    """
    if len(reason) <= _MAX_REASON:
        return reason
    return reason[: _MAX_REASON - 3] + "..."


def _checkName(raw: str) -> tuple[str, str, int] | None:
    """
    Validate a header name as written before the colon (HCOLON allows
    C{*(SP / HTAB)} before it; RFC 3261 section 25.1) and remember it.

    @return: the L{_nameCache} entry, or C{None} when the name is not a
        token.
    """
    name = raw.rstrip(" \t")
    if _HEADER_NAME.fullmatch(name) is None:
        return None
    key = headerKey(name)
    entry = (key, name, _SLOTS.get(key, 0))
    if len(_nameCache) < _NAME_CACHE_SIZE:
        _nameCache[raw] = entry
    return entry


def _isSmallNumber(value: str) -> bool:
    """
    Whether C{value} is 1 to 9 ASCII digits, which L{int} can take as is.
    """
    return len(value) < 10 and value.isascii() and value.isdigit()


def _makeHeaders(fields: list[_Field]) -> Headers:
    """
    Wrap already-keyed fields in a L{Headers} without keying them again.
    """
    headers = _newHeaders(Headers)
    headers._fields = fields
    headers._cache = None
    return headers


_newHeaders = Headers.__new__


def _versionError(version: bytes) -> ParseError | None:
    """
    Check a SIP-Version: C{SIP/2.0} in any case is fine, another SIP-Version
    is a 505 (RFC 3261 section 8.2.2.1 and 21.5.6, RFC 4475 section
    3.1.2.16), anything else a 400.
    """
    if version == b"SIP/2.0" or version.upper() == b"SIP/2.0":
        return None
    if _SIP_VERSION.fullmatch(version):
        return ParseError("Version Not Supported", 505)
    return ParseError("Bad SIP-Version")


def _parseRequestLine(
    line: bytes, headers: Headers, readURI: bool = True
) -> tuple[Request, ParseError | None]:
    """
    Read C{Method SP Request-URI SP SIP-Version} (RFC 3261 section 7.1):
    single SPs, no LWS inside any element (RFC 4475 sections 3.1.2.8 to
    3.1.2.10), a Request-URI without enclosing angle brackets (3.1.2.7) or
    headers (RFC 3261 section 19.1.1, RFC 4475 section 3.1.2.11).

    @param readURI: whether to parse the Request-URI, rather than leave
        L{_INVALID_URI} in its place.
    @return: the request (with a best-effort method and Request-URI when the
        line is bad) and the first error.
    """
    parts = line.split(b" ")
    error: ParseError | None = None
    if len(parts) == 3:
        rawMethod, rawURI, version = parts
    else:
        error = ParseError("Bad Request-Line")
        # Best effort for the partial request: the words that are there.
        words = line.split()
        rawMethod = words[0] if words else b""
        rawURI = words[1] if len(words) > 1 else b""
        version = words[-1] if len(words) > 2 else b""
    method = _methodCache.get(rawMethod)
    if method is None:
        method = rawMethod.decode("utf-8", "surrogateescape")
        if _METHOD.fullmatch(rawMethod) is None:
            if error is None:
                error = ParseError("Bad Request-Line: the method is not a token")
        elif len(_methodCache) < _NAME_CACHE_SIZE:
            _methodCache[rawMethod] = method
    versionError = None if version == b"SIP/2.0" else _versionError(version)
    if error is None:
        error = versionError
    uri: URI = _INVALID_URI
    try:
        if readURI:
            uri = parseURI(rawURI.decode("utf-8", "surrogateescape"))
    except ParseError as e:
        if error is None:
            error = ParseError(_clip(f"Bad Request-URI: {e.reason}"))
    else:
        if error is None and type(uri) is SIPURI and uri.headers:
            error = ParseError("Bad Request-URI: headers are not allowed")
    request = Request(
        method,
        uri,
        headers,
        b"",
        "SIP/2.0"
        if versionError is None
        else version.decode("utf-8", "surrogateescape"),
    )
    return request, error


def _parseStatusLine(
    line: bytes, headers: Headers
) -> tuple[Response | None, ParseError | None]:
    """
    Read C{SIP-Version SP Status-Code SP Reason-Phrase} (RFC 3261 section
    7.2). The reason phrase may be empty and may be UTF-8 (RFC 4475 section
    3.1.1.12); the SP before an empty reason phrase may be missing (RFC 4475
    section 3.1.1.13).

    @return: the response, or C{None} when the status code is unusable, and
        the first error.
    """
    parts = line.split(b" ", 2)
    code = parts[1] if len(parts) > 1 else b""
    if not (len(code) == 3 and code.isdigit() and b"100" <= code <= b"699"):
        # RFC 4475 section 3.1.2.19: an element should drop it.
        return None, ParseError("Bad Status-Line")
    versionError = _versionError(parts[0])
    response = Response(
        int(code),
        parts[2].decode("utf-8", "surrogateescape") if len(parts) > 2 else "",
        headers,
        b"",
        "SIP/2.0"
        if versionError is None
        else parts[0].decode("utf-8", "surrogateescape"),
    )
    return response, versionError


def _parseContentLength(values: list[str]) -> tuple[int | None, ParseError | None]:
    """
    The Content-Length of a message from the values of all its
    Content-Length fields (RFC 3261 section 20.14; RFC 4475 sections
    3.1.2.3 and 3.3.9).
    """
    lengths: set[int] = set()
    for value in values:
        if _isSmallNumber(value):
            lengths.add(int(value))
            continue
        try:
            lengths.add(h.parseContentLength(value))
        except ParseError as e:
            return None, ParseError(_clip(e.reason), e.status)
    if len(lengths) > 1:
        return None, ParseError("Several different Content-Length values")
    return lengths.pop(), None


def _validate(
    message: Request | Response, vias: list[str], single: dict[str, str]
) -> ParseError | None:
    """
    Check the header fields every message needs (RFC 3261 section 8.1.1;
    RFC 4475 sections 3.1.2.4, 3.1.2.17, 3.1.2.18 and 3.3.1).

    What a typed parser had to read is kept in the message's typed-view
    cache, so that it is not parsed again.

    @param vias: the values of the Via fields.
    @param single: the value of each other field checked on arrival (the
        caller has refused repeated ones).
    @return: the first error found, or C{None}.
    """
    fromValue = single.get(_FROM)
    toValue = single.get(_TO)
    callIdValue = single.get(_CALL_ID)
    cseqValue = single.get(_CSEQ)
    if not (vias and fromValue and toValue and callIdValue and cseqValue):
        missing = [
            name
            for name, present in (
                ("Via", vias),
                ("From", fromValue),
                ("To", toValue),
                ("Call-ID", callIdValue),
                ("CSeq", cseqValue),
            )
            if not present
        ]
        plural = "s" if len(missing) > 1 else ""
        return ParseError(f"Missing {', '.join(missing)} header{plural}")
    cache: dict[str, object] = {}
    key = _VIA
    try:
        for value in vias:
            if _FAST_VIA.fullmatch(value) is None:
                parsed: list[h.Via] = []
                for text in vias:
                    parsed.extend(h.parseVia(text))
                cache[_VIA] = parsed
                break
        key = _FROM
        if _FAST_NAME_ADDR.fullmatch(fromValue) is None:
            cache[_FROM] = h.parseNameAddr(fromValue, "From")
        key = _TO
        if _FAST_NAME_ADDR.fullmatch(toValue) is None:
            cache[_TO] = h.parseNameAddr(toValue, "To")
        key = _CALL_ID
        cache[_CALL_ID] = (
            callIdValue
            if _FAST_CALL_ID.fullmatch(callIdValue)
            else h.parseCallId(callIdValue)
        )
        key = _CSEQ
        match = _FAST_CSEQ.fullmatch(cseqValue)
        if match is not None:
            cseqMethod = match[1]
        else:
            cseq = h.parseCSeq(cseqValue)
            cache[_CSEQ] = cseq
            cseqMethod = cseq.method
        key = _MAX_FORWARDS
        maxForwards = single.get(_MAX_FORWARDS)
        if maxForwards is None:
            cache[_MAX_FORWARDS] = None
        elif len(maxForwards) < 3 and maxForwards.isdigit() and maxForwards.isascii():
            cache[_MAX_FORWARDS] = int(maxForwards)
        else:
            cache[_MAX_FORWARDS] = h.parseMaxForwards(maxForwards)
    except ParseError as e:
        reason = e.reason
        name = _SPELLING[key]
        if name not in reason:
            reason = f"Bad {name} header: {reason}"
        return ParseError(_clip(reason), e.status)
    if type(message) is Request and cseqMethod != message.method:
        # RFC 4475 section 3.1.2.18 prefers 501 for an unknown method.
        if message.method in KNOWN_METHODS:
            return ParseError("CSeq method does not match the Request-Line")
        return ParseError("Not Implemented", 501)
    message.headers._cache = cache
    return None


def _parseHead(
    data: bytes, start: int, end: int, limits: Limits, unfold: bool = False
) -> _Head:
    """
    Read a start line and a header section (RFC 3261 sections 7 and 7.3.1).

    @param data: holds, from C{start} up to C{end}, the start line and the
        header section without the CRLF CRLF that ends it.
    @param unfold: whether to unfold continuation lines first; the first
        pass assumes there are none, and starts over when it meets one.
    """
    nl = data.find(b"\r\n", start, end)
    if nl < 0:
        startLine, block = data[start:end], b""
    else:
        startLine, block = data[start:nl], data[nl + 2 : end]
    error: ParseError | None = None
    fields: list[_Field] = []
    vias: list[str] = []
    lengths: list[str] = []
    single: dict[str, str] = {}
    repeated: str | None = None
    if block:
        text = block.decode("utf-8", "surrogateescape")
        if unfold:
            text = _FOLD.sub(" ", text)
        lines = text.split("\r\n")
        breaks = len(lines) - 1
        if text.count("\n") != breaks or text.count("\r") != breaks:
            error = ParseError("Bad header section: bare CR or LF")
            lines = [line for line in lines if "\r" not in line and "\n" not in line]
        if len(lines) > limits.maxHeaders:
            error = MessageTooLarge("Too many header fields")
        elif len(text) > limits.maxLineLength and (
            max(map(len, lines)) > limits.maxLineLength
        ):
            error = MessageTooLarge("Header field too long")
        append = fields.append
        cached = _nameCache.get
        cachedLine = _lineCache.get
        for line in lines:
            hit = cachedLine(line)
            if hit is not None:
                field = hit[0]
                append(field)
                if not hit[1]:
                    continue
                key = field[0]
                value = field[2]
            else:
                raw, colon, value = line.partition(":")
                entry = cached(raw)
                if entry is None or not colon:
                    if not unfold and line[:1] in (" ", "\t") and fields:
                        # A continuation line (RFC 3261 section 7.3.1).
                        return _parseHead(data, start, end, limits, True)
                    entry = _checkName(raw) if colon else None
                    if entry is None:
                        if error is None:
                            error = ParseError("Bad header field line")
                        continue
                key, name, slot = entry
                value = value.strip(" \t")
                field = (key, name, value)
                append(field)
                if not 0 < slot < _STABLE and len(line) <= _LINE_CACHE_KEY_LIMIT:
                    if len(_lineCache) >= _LINE_CACHE_SIZE:
                        _lineCache.clear()
                    _lineCache[line] = (field, slot)
                if not slot:
                    continue
            if key == _VIA:
                vias.append(value)
            elif key == _CONTENT_LENGTH:
                lengths.append(value)
            elif key not in single:
                single[key] = value
            elif repeated is None:
                repeated = key
    contentLength: int | None = None
    lengthError: ParseError | None = None
    if len(lengths) == 1 and _isSmallNumber(lengths[0]):
        contentLength = int(lengths[0])
    elif lengths:
        contentLength, lengthError = _parseContentLength(lengths)
        if len(lengths) > 1 and lengthError is None:
            # Repeated identical values: keep the first field only, as
            # Message.toBytes would.
            # (Lines from _lineCache may be the very same tuple, so go by
            # position.)
            first = [f[0] for f in fields].index(_CONTENT_LENGTH)
            fields = fields[: first + 1] + [
                f for f in fields[first + 1 :] if f[0] != _CONTENT_LENGTH
            ]
    headers = _makeHeaders(fields)
    message: Request | Response | None
    tooLong = len(startLine) > limits.maxLineLength
    if startLine[:4].upper() == b"SIP/":
        message, lineError = _parseStatusLine(startLine, headers)
    else:
        message, lineError = _parseRequestLine(startLine, headers, not tooLong)
    if tooLong:
        lineError = MessageTooLarge("Start line too long")
    if lineError is not None:
        error = lineError
    elif error is None:
        if lengthError is not None:
            error = lengthError
        elif repeated is not None:
            # RFC 4475 section 3.3.8.
            error = ParseError(f"Several {_SPELLING[repeated]} headers")
        else:
            assert message is not None
            error = _validate(message, vias, single)
            if error is None and lengths:
                message.headers._cache[_CONTENT_LENGTH] = contentLength  # type: ignore[index]
    if error is not None:
        error.partial = message
    return message, error, contentLength, lengthError is None


_newRequest = Request.__new__
_newResponse = Response.__new__
_lineCacheGet = _lineCache.get
_nameCacheGet = _nameCache.get
_matchRequired = _FAST_REQUIRED.fullmatch
#: Max-Forwards values as usually written (RFC 3261 section 20.22: 0 to
#: 255, no leading zeros), and their numbers.
_HOPS: Final = {str(hops): hops for hops in range(256)}
# Content-Length values seen lately, already checked, and their numbers.
# Bounded: cleared when full.
_lengths: dict[str, int] = {}
_LENGTHS_SIZE: Final = 1024
#: The lookup key of each slot.
_SLOT_KEYS: Final = ("", *sorted(_SLOTS, key=_SLOTS.__getitem__))


def _parseFast(
    head: bytes, rest: bytes | None, limits: Limits
) -> Request | Response | None:
    """
    Read a well-formed message of the common kind, or give up.

    This does what L{_parseHead} does, for messages that need none of its
    repairs or error reports: no CRLFs before the start line, no folded
    lines, no bare CR or LF, no repeated single-value field, no limit
    approached. The head is decoded once, start line and header section
    together, and the fields checked on arrival are matched all at once
    (L{_FAST_REQUIRED}). Whatever it does not handle, or finds wrong, makes
    it return C{None}, and the caller starts over with the general path,
    which accepts and builds the very same message or says what is wrong:
    this path never decides that a message is bad.

    A bare CR or LF can only hide in a field that no check here has read:
    the eager checks' patterns refuse both, and every other line is looked
    at once, before it enters L{_lineCache}.

    @param head: the start line and header section, without the CRLF CRLF
        that ends them.
    @param rest: for a datagram, what follows that CRLF CRLF: the body, and
        maybe octets to discard after it (RFC 3261 section 18.3). C{None}
        for a stream, whose caller reads the body.
    @return: the message, or C{None} to start over with the general path.
        With C{rest}, the message has its body; without, it has none yet
        and its Content-Length, if any, is in the typed-view cache.
    """
    text = head.decode("utf-8", "surrogateescape")
    lines = text.split("\r\n")
    if len(lines) > limits.maxHeaders or len(text) > limits.maxLineLength:
        return None
    startLine = lines[0]
    del lines[0]
    fields: list[_Field] = []
    append = fields.append
    # The value of each field checked on arrival, by slot; the top Via.
    found: list[str | None] = [None, None, None, None, None, None, None, None]
    manyVias = False
    for line in lines:
        hit = _lineCacheGet(line)
        if hit is not None:
            field, slot = hit
            append(field)
            if slot:
                # Max-Forwards or Content-Length.
                if found[slot] is not None:
                    return None
                found[slot] = field[2]
            continue
        raw, colon, value = line.partition(":")
        entry = _nameCacheGet(raw)
        if entry is None or not colon:
            if not colon:
                return None
            entry = _checkName(raw)
            if entry is None:
                return None
        key, name, slot = entry
        value = value.strip(" \t")
        field = (key, name, value)
        append(field)
        if slot:
            if found[slot] is None:
                found[slot] = value
            elif slot == 1:
                manyVias = True
            else:
                return None
            if slot < _STABLE:
                continue
        if "\r" in line or "\n" in line:
            return None
        if len(line) <= _LINE_CACHE_KEY_LIMIT:
            if len(_lineCache) >= _LINE_CACHE_SIZE:
                _lineCache.clear()
            _lineCache[line] = (field, slot)
    headers = _newHeaders(Headers)
    headers._fields = fields
    message: Request | Response
    method: str | None = None
    # No method is "SIP/2.0", which is not a token.
    parts = startLine.split(" ")
    if parts[0] == "SIP/2.0":
        if len(parts) < 3:
            return None
        code = parts[1]
        reason = parts[2] if len(parts) == 3 else " ".join(parts[2:])
        if (
            len(code) != 3
            or not code.isdigit()
            or not code.isascii()
            or not "100" <= code <= "699"
            or "\r" in reason
            or "\n" in reason
        ):
            return None
        message = _newResponse(Response)
        message.code = int(code)
        message.reason = reason
    else:
        if len(parts) != 3 or parts[2] != "SIP/2.0":
            return None
        # The method is checked below: it must be the CSeq method, which
        # the quick patterns only take when it is a token.
        method, rawURI, _ = parts
        try:
            uri = parseURI(rawURI)
        except ParseError:
            return None
        if type(uri) is SIPURI and uri.headers:
            return None
        message = _newRequest(Request)
        message.method = method
        message.uri = uri
    message.headers = headers
    message.version = "SIP/2.0"
    _, via, fromValue, toValue, callId, cseq, maxForwards, length = found
    match = None
    if via and fromValue and toValue and callId and cseq and not manyVias:
        match = _matchRequired(f"{via}\n{fromValue}\n{toValue}\n{callId}\n{cseq}")
    hops = None if maxForwards is None else _HOPS.get(maxForwards)
    if (
        match is not None
        and (method is None or match[1] == method)
        and (hops is not None or maxForwards is None)
    ):
        cache: dict[str, object] = {_CALL_ID: callId, _MAX_FORWARDS: hops}
        headers._cache = cache
    else:
        # Something unusual: several Via lines, a form the quick patterns
        # do not cover, or an error. The typed parsers read LWS across line
        # breaks, so refuse any bare CR or LF before letting them at the
        # values; then check as the general path does.
        breaks = len(lines)
        if text.count("\n") != breaks or text.count("\r") != breaks:
            return None
        if method is not None and _METHOD_TEXT.fullmatch(method) is None:
            return None
        single = {
            key: value
            for key, value in zip(_SLOT_KEYS, found, strict=True)
            if value is not None and key != _VIA
        }
        vias = [value for key, _, value in fields if key == _VIA]
        if _validate(message, vias, single) is not None:
            return None
        cache = headers._cache  # type: ignore[assignment]
    if length is not None:
        contentLength = _lengths.get(length)
        if contentLength is None:
            if not (len(length) < 10 and length.isdigit() and length.isascii()):
                return None
            contentLength = int(length)
            if len(_lengths) >= _LENGTHS_SIZE:
                _lengths.clear()
            _lengths[length] = contentLength
        cache[_CONTENT_LENGTH] = contentLength
        if rest is not None:
            if len(rest) != contentLength:
                if len(rest) < contentLength:
                    return None
                rest = rest[:contentLength]
            message.body = rest
    elif rest is not None:
        message.body = rest
    return message


def parseMessage(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Request | Response:
    """
    Parse one complete message, such as a UDP datagram.

    CRLFs before the start line are ignored (RFC 3261 section 7.5). The
    body is the number of octets Content-Length says, and octets past it
    are discarded; without Content-Length it runs to the end of C{data}
    (RFC 3261 section 18.3).

    @param data: the octets of the message.
    @param limits: the size limits to enforce.
    @return: the request or response.
    @raise ParseError: when C{data} is not a well-formed message; C{status}
        says what to answer with and C{partial} holds what could be read
        (see the module docstring). L{MessageTooLarge} (513) when a limit
        is exceeded.
    """
    head, crlfs, rest = data.partition(b"\r\n\r\n")
    if head and crlfs and len(data) <= limits.maxMessageSize:
        message = _parseFast(head, rest, limits)
        if message is not None:
            return message
    return _parseGeneral(data, limits)


def _parseGeneral(data: bytes, limits: Limits) -> Request | Response:
    """
    L{parseMessage} for any input: repairs what can be repaired, and says
    what is wrong with the rest.
    """
    start = 0
    while data.startswith(b"\r\n", start):
        start += 2
    end = data.find(b"\r\n\r\n", start)
    if end < 0:
        if start == len(data):
            raise ParseError("Empty message")
        head = data[start:]
        if head.endswith(b"\r\n"):
            head = head[:-2]
        # RFC 3261 section 7: the empty line must be there even without a
        # body. Say what else is wrong first, if anything.
        message, error, _, _ = _parseHead(head, 0, len(head), limits)
        if error is None:
            error = ParseError("Missing empty line after the header section")
        error.partial = message
        raise error
    message, error, length, _ = _parseHead(data, start, end, limits)
    if len(data) - start > limits.maxMessageSize:
        error = MessageTooLarge(partial=message)
    bodyStart = end + 4
    if length is None:
        body = data[bodyStart:]
    else:
        body = data[bodyStart : bodyStart + length]
        if len(body) < length and error is None:
            # RFC 3261 section 18.3, RFC 4475 section 3.1.2.2.
            error = ParseError(
                "Content-Length is larger than the message body", partial=message
            )
    if message is not None:
        message.body = body
    if error is not None:
        raise error
    assert message is not None
    return message


#: What L{StreamParser.feed} returns items of.
StreamItem = Request | Response | KeepAlive | ParseError


class StreamParser:
    """
    Incremental parser for a byte stream such as a TCP or TLS connection
    (RFC 3261 section 18.3): messages are framed by their Content-Length,
    which is therefore required.

    Between messages, a CRLF is skipped (RFC 3261 section 7.5) and a
    CRLF CRLF is a keep-alive ping, reported as L{KeepAlive} (RFC 5626
    section 3.5.1).

    A message that is well framed but otherwise bad is reported as a
    L{ParseError} with C{fatal=False}, and parsing goes on after it. When
    the framing is lost (Content-Length missing or unusable, or a limit
    exceeded) the error has C{fatal=True}: the transport answers if it can
    and closes the connection, and this parser ignores anything fed later.

    @ivar limits: the size limits to enforce.
    """

    __slots__ = ("limits", "_buffer", "_scan", "_head", "_bodyStart", "_dead")

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self._buffer = bytearray()
        # Where to look for the end of the header section next, so that a
        # message fed byte by byte is not searched from its start each time.
        self._scan = 0
        # A header section that was read and waits for its body to arrive.
        self._head: _Head | None = None
        self._bodyStart = 0
        self._dead = False

    def feed(self, data: bytes) -> list[StreamItem]:
        """
        Add octets received from the stream.

        @return: the messages, keep-alives and errors completed by them, in
            order.
        """
        if self._dead:
            return []
        buf = self._buffer
        buf += data
        out: list[StreamItem] = []
        pos = 0
        limits = self.limits
        while True:
            head = self._head
            if head is None:
                size = len(buf)
                while pos < size and buf[pos] == 13:
                    if buf.startswith(b"\r\n\r\n", pos):
                        out.append(KeepAlive())
                        pos += 4
                    elif size - pos < 4 and b"\r\n\r\n".startswith(buf[pos:]):
                        break
                    elif buf.startswith(b"\r\n", pos):
                        pos += 2
                    else:
                        break
                if pos == size or (
                    size - pos < 4 and b"\r\n\r\n".startswith(buf[pos:])
                ):
                    # Nothing yet, or what may be the start of a ping.
                    break
                end = buf.find(b"\r\n\r\n", max(pos, self._scan))
                if end < 0:
                    if size - pos > limits.maxMessageSize:
                        self._fail(out, MessageTooLarge())
                        return out
                    self._scan = max(pos, size - 3)
                    break
                octets = bytes(buf[pos:end])
                message = _parseFast(octets, None, limits)
                length = (
                    None
                    if message is None
                    else message.headers._cache.get(_CONTENT_LENGTH)  # type: ignore[union-attr]
                )
                if length is not None:
                    error, framed = None, True
                else:
                    # Unusual, wrong, or without the Content-Length that a
                    # stream needs: the general path says what to do.
                    message, error, length, framed = _parseHead(
                        octets, 0, len(octets), limits
                    )
                if length is None or not framed:
                    # RFC 3261 section 18.3: without a usable Content-Length
                    # the end of the message cannot be found.
                    if error is None or framed:
                        error = ParseError(
                            "Missing Content-Length header", partial=message
                        )
                    self._fail(out, error)
                    return out
                if end + 4 - pos + length > limits.maxMessageSize:
                    self._fail(out, MessageTooLarge(partial=message))
                    return out
                head = self._head = (message, error, length, framed)
                self._bodyStart = end + 4
            message, error, length, _ = head
            assert length is not None
            bodyStart = self._bodyStart
            if len(buf) - bodyStart < length:
                break
            pos = bodyStart + length
            self._head = None
            self._scan = pos
            if message is not None:
                message.body = bytes(buf[bodyStart:pos])
            if error is not None:
                out.append(error)
            else:
                assert message is not None
                out.append(message)
        if pos:
            del buf[:pos]
            self._scan = max(0, self._scan - pos)
            self._bodyStart -= pos
        return out

    def _fail(self, out: list[StreamItem], error: ParseError) -> None:
        """
        Report a fatal error and stop parsing: the framing is lost.
        """
        error.fatal = True
        out.append(error)
        self._dead = True
        self._buffer = bytearray()
        self._head = None
