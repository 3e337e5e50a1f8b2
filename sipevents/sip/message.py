# -*- test-case-name: tests.test_message -*-
"""
SIP messages as values: L{Request}, L{Response} and their L{Headers}.

Header field names and values are text. SIP header values are UTF-8
(RFC 3261 section 25.1, C{TEXT-UTF8}); they are decoded with
C{surrogateescape}, so bytes that are not UTF-8 survive a parse/serialize round
trip unchanged. Bodies stay L{bytes}, and C{Content-Length} always counts
octets of the body.

Typed views of header values (L{Via}, L{NameAddr}, L{CSeq}, L{Event} ...) are
parsed on first use and cached until the header field changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar, overload

from sipevents.sip import headers as h
from sipevents.sip.uri import URI, formatURI

T = TypeVar("T")

#: Compact header forms (RFC 3261 section 7.3.3 and 20; RFC 6665 section 8.2
#: for C{o} and C{u}; RFC 3515 and RFC 3892 for C{r} and C{b}).
COMPACT_FORMS: dict[str, str] = {
    "i": "call-id",
    "m": "contact",
    "e": "content-encoding",
    "l": "content-length",
    "c": "content-type",
    "f": "from",
    "s": "subject",
    "k": "supported",
    "t": "to",
    "v": "via",
    "o": "event",
    "u": "allow-events",
    "r": "refer-to",
    "b": "referred-by",
    "x": "session-expires",
    "a": "accept-contact",
    "j": "reject-contact",
    "d": "request-disposition",
    "y": "identity",
    "n": "identity-info",
}

#: How we spell header names we add ourselves.
CANONICAL_NAMES: dict[str, str] = {
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "www-authenticate": "WWW-Authenticate",
    "sip-etag": "SIP-ETag",
    "sip-if-match": "SIP-If-Match",
    "mime-version": "MIME-Version",
}

_keyCache: dict[str, str] = {}

#: What L{Headers.parsed} finds for a view not cached yet (C{None} is a
#: cached value: the header is absent).
_MISSING: Any = object()

#: Where L{Headers.parsed} keeps, in the cache of typed views, every
#: field's values by header key (no header key is empty).
_INDEX = ""


def headerKey(name: str) -> str:
    """
    The canonical lookup key of a header name: lower case, with compact forms
    expanded, so that C{"v"}, C{"Via"} and C{"VIA"} are one key.
    """
    key = _keyCache.get(name)
    if key is None:
        lower = name.lower()
        key = COMPACT_FORMS.get(lower, lower)
        if len(_keyCache) < 4096:
            _keyCache[name] = key
    return key


def canonicalName(name: str) -> str:
    """
    The conventional spelling of a header name (C{"call-id"} becomes
    C{"Call-ID"}, C{"v"} becomes C{"Via"}).
    """
    spelled = _canonicalCache.get(name)
    if spelled is None:
        key = headerKey(name)
        spelled = CANONICAL_NAMES.get(key)
        if spelled is None:
            spelled = "-".join(part.capitalize() for part in key.split("-"))
        if len(_canonicalCache) < 4096:
            _canonicalCache[name] = spelled
    return spelled


_canonicalCache: dict[str, str] = {}


class Headers:
    """
    An ordered, case-insensitive multimap of header fields.

    Every field keeps the name as it was written and its value verbatim, so an
    unknown header survives unchanged; lookups go through L{headerKey}, so
    compact forms and case do not matter. A field line that carries several
    comma-separated values stays one entry here; L{getList} splits them.
    """

    __slots__ = ("_fields", "_cache")

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._fields: list[tuple[str, str, str]] = [
            (headerKey(name), name, value) for name, value in fields
        ]
        self._cache: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(k, v) for k, _, v in self._fields] == [
            (k, v) for k, _, v in other._fields
        ]

    def __len__(self) -> int:
        return len(self._fields)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for _, name, value in self._fields:
            yield name, value

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = headerKey(name)
        # A plain loop: any() over a generator costs a frame per field.
        for field in self._fields:
            if field[0] == key:
                return True
        return False

    def items(self) -> list[tuple[str, str]]:
        """
        All fields in order as C{(name as written, value)} pairs.
        """
        return [(name, value) for _, name, value in self._fields]

    def get(self, name: str, default: str | None = None) -> str | None:
        """
        The value of the first field called C{name}, or C{default}.
        """
        key = headerKey(name)
        for k, _, value in self._fields:
            if k == key:
                return value
        return default

    def getAll(self, name: str) -> list[str]:
        """
        The values of every field called C{name}, one per field line.
        """
        key = headerKey(name)
        return [field[2] for field in self._fields if field[0] == key]

    def getList(self, name: str) -> list[str]:
        """
        The comma-separated elements of every field called C{name}, split
        outside quoted strings and angle brackets (RFC 3261 section 7.3.1),
        with surrounding whitespace removed and empty elements dropped.
        """
        out: list[str] = []
        for value in self.getAll(name):
            out.extend(h.splitCommaList(value))
        return out

    def count(self, name: str) -> int:
        """
        How many field lines are called C{name}.
        """
        key = headerKey(name)
        return sum(1 for k, _, _ in self._fields if k == key)

    def add(self, name: str, value: str) -> None:
        """
        Append a field after the existing ones.
        """
        self._fields.append((headerKey(name), name, value))
        self._cache = None

    def addFirst(self, name: str, value: str) -> None:
        """
        Insert a field before every other field of the same name (for
        example a new top-most C{Via}), or at the top of the header section.
        """
        key = headerKey(name)
        for i, (k, _, _) in enumerate(self._fields):
            if k == key:
                self._fields.insert(i, (key, name, value))
                break
        else:
            self._fields.insert(0, (key, name, value))
        self._cache = None

    def set(self, name: str, value: str) -> None:
        """
        Replace every field called C{name} with one field holding C{value},
        kept where the first one stood (or appended).
        """
        key = headerKey(name)
        fields: list[tuple[str, str, str]] = []
        placed = False
        for field in self._fields:
            if field[0] == key:
                if not placed:
                    fields.append((key, field[1], value))
                    placed = True
            else:
                fields.append(field)
        if not placed:
            fields.append((key, name, value))
        self._fields = fields
        self._cache = None

    def remove(self, name: str) -> int:
        """
        Remove every field called C{name}; return how many there were.
        """
        key = headerKey(name)
        before = len(self._fields)
        self._fields = [f for f in self._fields if f[0] != key]
        self._cache = None
        return before - len(self._fields)

    def removeFirst(self, name: str) -> str | None:
        """
        Remove the first field called C{name} and return its value.
        """
        key = headerKey(name)
        for i, (k, _, value) in enumerate(self._fields):
            if k == key:
                del self._fields[i]
                self._cache = None
                return value
        return None

    def copy(self) -> Headers:
        """
        A shallow copy that can be changed without touching this one.
        """
        new = Headers()
        new._fields = list(self._fields)
        return new

    def parsed(self, name: str, parse: Callable[[list[str]], T]) -> T:
        """
        A typed view of the fields called C{name}, computed by C{parse} from
        L{getAll} the first time and cached until any field changes.

        @raise sipevents.errors.ParseError: from C{parse}, when the value is
            malformed.
        """
        cache = self._cache
        if cache is None:
            cache = self._cache = {}
        else:
            # The typed views ask by key already ("via", "cseq" ...): one
            # dict lookup, no key normalization, on the common hit. (get
            # with a sentinel, not try/except: half the lookups miss, and a
            # raised KeyError costs more than the rest of this method.)
            found = cache.get(name, _MISSING)
            if found is not _MISSING:
                return found  # type: ignore[no-any-return]
        key = headerKey(name)
        if key != name:
            found = cache.get(key, _MISSING)
            if found is not _MISSING:
                return found  # type: ignore[no-any-return]
        # Every field's values by key, gathered in one pass the first time a
        # view is parsed, rather than one pass over the fields per view (a
        # SUBSCRIBE has ten views read, most of them from one field each).
        index: dict[str, list[str]] | None = cache.get(_INDEX)
        if index is None:
            index = {}
            for field in self._fields:
                values = index.get(field[0])
                if values is None:
                    index[field[0]] = [field[2]]
                else:
                    values.append(field[2])
            cache[_INDEX] = index
        values = index.get(key)
        value = parse(list(values) if values is not None else [])
        cache[key] = value
        return value


def _single(parse: Callable[[str], T]) -> Callable[[list[str]], T | None]:
    """
    Adapt a one-value parser to a header that appears at most once: absent
    gives C{None}, several lines are an error.
    """

    def parseOne(values: list[str]) -> T | None:
        if not values:
            return None
        if len(values) > 1:
            from sipevents.errors import ParseError

            raise ParseError(f"Several values in single-value header ({values!r})")
        return parse(values[0])

    return parseOne


def _multi(parse: Callable[[str], list[T]]) -> Callable[[list[str]], list[T]]:
    """
    Adapt a parser of one comma-separated field line to all lines.
    """

    def parseAll(values: list[str]) -> list[T]:
        out: list[T] = []
        for value in values:
            out.extend(parse(value))
        return out

    return parseAll


_parseVias = _multi(h.parseVia)
_parseCSeq = _single(h.parseCSeq)
_parseCallId = _single(h.parseCallId)
_parseNameAddrOne = _single(h.parseNameAddr)
_parseNameAddrs = _multi(h.parseNameAddrList)
_parseInt = _single(h.parseDeltaSeconds)
_parseContentType = _single(h.parseContentType)
_parseEvent = _single(h.parseEvent)
_parseTokens = _multi(h.parseTokenList)
_parseSubscriptionState = _single(h.parseSubscriptionState)
_parseAccept = _multi(h.parseAccept)
_parseRetryAfter = _single(h.parseRetryAfter)
_parseContentLength = _single(h.parseContentLength)
_parseMaxForwards = _single(h.parseMaxForwards)


class _View(Generic[T]):
    """
    A typed view of a message: the value of header C{key} parsed by
    C{parse} on first use and cached in the message's L{Headers} until a
    field changes (L{Headers.parsed}).

    The cached value is looked up here before calling L{Headers.parsed}: a
    call of the notifier reads views some sixty times, and a hit is then
    one dict look-up in one frame.
    """

    def __init__(self, key: str, parse: Callable[[list[str]], T], doc: str) -> None:
        self.key = key
        self.parse = parse
        self.__doc__ = doc

    @overload
    def __get__(self, message: None, owner: type[Message]) -> _View[T]: ...

    @overload
    def __get__(self, message: Message, owner: type[Message] | None = None) -> T: ...

    def __get__(
        self, message: Message | None, owner: type[Message] | None = None
    ) -> T | _View[T]:
        if message is None:
            return self
        headers = message.headers
        cache = headers._cache
        if cache is not None:
            found = cache.get(self.key, _MISSING)
            if found is not _MISSING:
                return found  # type: ignore[no-any-return]
        return headers.parsed(self.key, self.parse)


class Message:
    """
    What requests and responses share: headers, a body and typed views.

    The typed view properties raise L{sipevents.errors.ParseError} when the
    header is malformed, and return C{None} (or an empty list) when it is
    absent.

    @ivar headers: the header fields, in order.
    @ivar body: the message body, as octets.
    @ivar version: the SIP version from the start line, normally
        C{"SIP/2.0"}.
    """

    __slots__ = ("headers", "body", "version")

    def __init__(
        self,
        headers: Headers | Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        version: str = "SIP/2.0",
    ) -> None:
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.body = body
        self.version = version

    def startLine(self) -> str:
        """
        The request or status line, without its CRLF.
        """
        raise NotImplementedError()

    def toBytes(self) -> bytes:
        """
        Serialize for the wire (RFC 3261 section 7).

        C{Content-Length} is always written with the body's octet count: an
        existing field is updated where it stands (in whatever form it was
        written), otherwise one is appended.
        """
        body = self.body
        length = str(len(body))
        lines = [self.startLine()]
        append = lines.append
        seen = False
        for key, name, value in self.headers._fields:
            if key == "content-length":
                if seen:
                    continue
                seen = True
                value = length
            append(f"{name}: {value}")
        if not seen:
            append(f"Content-Length: {length}")
        # Joined with the two CRLFs that end the header section.
        append("\r\n")
        return "\r\n".join(lines).encode("utf-8", "surrogateescape") + body

    __bytes__ = toBytes

    # Typed views (RFC 3261 section 20), each a _View: parsed once, cached.

    vias: _View[list[h.Via]] = _View(
        "via", _parseVias, "Every Via value, top-most first (RFC 3261 section 20.42)."
    )

    @property
    def topVia(self) -> h.Via | None:
        """The top-most Via, or C{None}."""
        vias = self.vias
        return vias[0] if vias else None

    cseq: _View[h.CSeq | None] = _View(
        "cseq", _parseCSeq, "The CSeq (RFC 3261 section 20.16)."
    )

    callId: _View[str | None] = _View(
        "call-id", _parseCallId, "The Call-ID (RFC 3261 section 20.8)."
    )

    fromAddr: _View[h.NameAddr | None] = _View(
        "from", _parseNameAddrOne, "The From field (RFC 3261 section 20.20)."
    )

    toAddr: _View[h.NameAddr | None] = _View(
        "to", _parseNameAddrOne, "The To field (RFC 3261 section 20.39)."
    )

    contacts: _View[list[h.NameAddr]] = _View(
        "contact", _parseNameAddrs, "Every Contact value (RFC 3261 section 20.10)."
    )

    recordRoutes: _View[list[h.NameAddr]] = _View(
        "record-route",
        _parseNameAddrs,
        "Every Record-Route value (RFC 3261 section 20.30).",
    )

    routes: _View[list[h.NameAddr]] = _View(
        "route", _parseNameAddrs, "Every Route value (RFC 3261 section 20.34)."
    )

    maxForwards: _View[int | None] = _View(
        "max-forwards", _parseMaxForwards, "Max-Forwards (RFC 3261 section 20.22)."
    )

    expires: _View[int | None] = _View(
        "expires", _parseInt, "Expires, in seconds (RFC 3261 section 20.19)."
    )

    minExpires: _View[int | None] = _View(
        "min-expires", _parseInt, "Min-Expires, in seconds (RFC 3261 section 20.23)."
    )

    contentLength: _View[int | None] = _View(
        "content-length",
        _parseContentLength,
        "Content-Length as written (RFC 3261 section 20.14).",
    )

    contentType: _View[h.ContentType | None] = _View(
        "content-type", _parseContentType, "Content-Type (RFC 3261 section 20.15)."
    )

    event: _View[h.Event | None] = _View(
        "event", _parseEvent, "Event (RFC 6665 section 8.2.1)."
    )

    allowEvents: _View[list[str]] = _View(
        "allow-events",
        _parseTokens,
        "Allow-Events event types (RFC 6665 section 8.2.2).",
    )

    subscriptionState: _View[h.SubscriptionState | None] = _View(
        "subscription-state",
        _parseSubscriptionState,
        "Subscription-State (RFC 6665 section 8.2.3).",
    )

    require: _View[list[str]] = _View(
        "require", _parseTokens, "Require option tags (RFC 3261 section 20.32)."
    )

    proxyRequire: _View[list[str]] = _View(
        "proxy-require",
        _parseTokens,
        "Proxy-Require option tags (RFC 3261 section 20.29).",
    )

    supported: _View[list[str]] = _View(
        "supported", _parseTokens, "Supported option tags (RFC 3261 section 20.37)."
    )

    unsupported: _View[list[str]] = _View(
        "unsupported", _parseTokens, "Unsupported option tags (RFC 3261 section 20.40)."
    )

    allow: _View[list[str]] = _View(
        "allow", _parseTokens, "Allow methods (RFC 3261 section 20.5)."
    )

    accept: _View[list[h.MediaRange]] = _View(
        "accept", _parseAccept, "Accept media ranges (RFC 3261 section 20.1)."
    )

    retryAfter: _View[h.RetryAfter | None] = _View(
        "retry-after", _parseRetryAfter, "Retry-After (RFC 3261 section 20.33)."
    )


class Request(Message):
    """
    A SIP request (RFC 3261 section 7.1).

    @ivar method: the method, case-sensitive (C{"SUBSCRIBE"}).
    @ivar uri: the parsed Request-URI.
    """

    __slots__ = ("method", "uri")

    def __init__(
        self,
        method: str,
        uri: URI,
        headers: Headers | Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        version: str = "SIP/2.0",
    ) -> None:
        super().__init__(headers, body, version)
        self.method = method
        self.uri = uri

    def startLine(self) -> str:
        return f"{self.method} {formatURI(self.uri)} {self.version}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Request):
            return NotImplemented
        return (
            self.method == other.method
            and self.uri == other.uri
            and self.version == other.version
            and self.headers == other.headers
            and self.body == other.body
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Request {self.method} {formatURI(self.uri)}>"


class Response(Message):
    """
    A SIP response (RFC 3261 section 7.2).

    @ivar code: the status code, 100 to 699.
    @ivar reason: the reason phrase (may be empty).
    """

    __slots__ = ("code", "reason")

    def __init__(
        self,
        code: int,
        reason: str = "",
        headers: Headers | Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        version: str = "SIP/2.0",
    ) -> None:
        super().__init__(headers, body, version)
        self.code = code
        self.reason = reason

    def startLine(self) -> str:
        return f"{self.version} {self.code} {self.reason}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Response):
            return NotImplemented
        return (
            self.code == other.code
            and self.reason == other.reason
            and self.version == other.version
            and self.headers == other.headers
            and self.body == other.body
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Response {self.code} {self.reason}>"


#: The default reason phrases (RFC 3261 section 21, RFC 6665, RFC 3903).
REASON_PHRASES: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    204: "No Notification",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    412: "Conditional Request Failed",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",
    491: "Request Pending",
    493: "Undecipherable",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}


def reasonPhrase(code: int) -> str:
    """
    The default reason phrase for C{code}, or a generic one for its class.
    """
    phrase = REASON_PHRASES.get(code)
    if phrase is not None:
        return phrase
    return REASON_PHRASES.get((code // 100) * 100, "Unknown")


#: Header fields copied from a request into every response to it
#: (RFC 3261 section 8.2.6.2).
_COPIED = frozenset({"via", "from", "to", "call-id", "cseq"})


def makeResponse(
    request: Request,
    code: int,
    reason: str | None = None,
    toTag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> Response:
    """
    Build a response to C{request} (RFC 3261 section 8.2.6.2): Via, From,
    To, Call-ID and CSeq are copied in order, and C{toTag} is added to the To
    field when it has no tag yet (a 100 never gets one).

    @param reason: the reason phrase; the default one for C{code} if C{None}.
    @param headers: further fields, appended after the copied ones.
    """
    # Built keyed, as Headers keeps them: the copied fields' keys are known.
    fields: list[tuple[str, str, str]] = []
    for key, _, value in request.headers._fields:
        if key in _COPIED:
            if key == "to" and toTag is not None and code != 100:
                to = request.toAddr
                if to is not None and to.tag is None:
                    value = f"{value};tag={toTag}"
            fields.append((key, canonicalName(key), value))
    for name, value in headers:
        fields.append((headerKey(name), name, value))
    keyed = Headers()
    keyed._fields = fields
    return Response(code, reasonPhrase(code) if reason is None else reason, keyed, body)
