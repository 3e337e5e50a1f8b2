# -*- test-case-name: tests.test_properties -*-
"""
Property tests (Hypothesis) for L{sipevents.sip.parser}.

  - Generated requests and responses (any method, SIP, SIPS and tel URIs,
    compact header names, UTF-8 display names, reason phrases and header
    values, binary bodies) survive C{parseMessage(m.toBytes()) == m}, and a
    stream of them cut anywhere gives the same messages.
  - Arbitrary octets, SIP-looking fragments and mutated valid messages never
    raise anything but L{ParseError}; and whatever parses has typed views of
    Via, From, To, Call-ID, CSeq, Max-Forwards and Content-Length that do
    not raise.
  - The parser's quick checks of common header forms accept nothing that
    the typed parsers of L{sipevents.sip.headers} refuse.
  - The parser's fast path builds exactly what its general path builds
    (start line, header fields, typed-view cache, body), from datagrams
    and from streams, and refuses nothing that the general path accepts;
    the quick paths of the typed parsers give what their general paths
    give.
"""

from __future__ import annotations

import string

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from sipevents.errors import ParseError
from sipevents.sip import headers as h
from sipevents.sip import parser
from sipevents.sip.message import Message, Request, Response
from sipevents.sip.parser import KNOWN_METHODS, KeepAlive, StreamParser, parseMessage
from sipevents.sip.uri import SIPURI, URI, TelURI, formatURI

bounded = settings(max_examples=200, deadline=None)

TOKEN_CHARS = string.ascii_letters + string.digits + "-.!%*_+`'~"
tokens = st.text(TOKEN_CHARS, min_size=1, max_size=12)
lowerTokens = st.text(
    string.ascii_lowercase + string.digits + "-", min_size=1, max_size=8
)
methods = st.sampled_from(sorted(KNOWN_METHODS)) | tokens

_label = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,6}[a-z0-9])?", fullmatch=True)
_topLabel = st.from_regex(r"[a-z](?:[a-z0-9-]{0,6}[a-z0-9])?", fullmatch=True)
hostnames = st.builds(
    lambda labels, top: ".".join([*labels, top]),
    st.lists(_label, max_size=3),
    _topLabel,
)
ipv4s = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ipv6s = st.ip_addresses(v=6).map(str)
hosts = hostnames | ipv4s | ipv6s
ports = st.none() | st.integers(1, 65535)
_escape = st.integers(0, 255).map(lambda n: f"%{n:02X}")
users = st.none() | st.lists(
    st.sampled_from(string.ascii_letters + string.digits + "-_.!~*'()&=+$,;?/")
    | _escape,
    min_size=1,
    max_size=10,
).map("".join)
_paramChars = string.ascii_letters + string.digits + "-_.!~*'()[]/:&+$"
uriParams = st.lists(
    st.tuples(
        st.text(_paramChars, min_size=1, max_size=8),
        st.none() | st.text(_paramChars, min_size=1, max_size=8),
    ),
    max_size=3,
).map(tuple)
sipURIs = st.builds(
    SIPURI,
    scheme=st.sampled_from(["sip", "sips"]),
    user=users,
    password=st.none(),
    host=hosts,
    port=ports,
    params=uriParams,
)
telURIs = st.builds(
    TelURI,
    number=st.from_regex(r"\+[1-9][0-9]{0,3}(?:-[0-9]{1,4}){0,3}", fullmatch=True),
)
uris: st.SearchStrategy[URI] = sipURIs | telURIs

# Text that may appear in a header value or reason phrase: anything but CR
# and LF, without surrogates (which only come from non-UTF-8 octets) and
# without white space at either end.
_textChars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n")
texts = st.text(_textChars, max_size=30).map(lambda t: t.strip(" \t"))
displayNames = st.none() | st.text(
    st.characters(blacklist_categories=("Cs", "Cc")), max_size=20
)
headerParams = st.lists(
    st.tuples(tokens, st.none() | tokens), max_size=3, unique_by=lambda p: p[0].lower()
).map(tuple)


@st.composite
def nameAddrs(draw: st.DrawFn, tag: bool = True) -> str:
    """
    The wire form of a From or To value.
    """
    params = draw(headerParams)
    params = tuple(p for p in params if p[0].lower() != "tag")
    if tag and draw(st.booleans()):
        params = (("tag", draw(tokens)), *params)
    value = h.NameAddr(draw(displayNames), draw(uris), params, True)
    return str(value)


@st.composite
def vias(draw: st.DrawFn) -> str:
    """
    The wire form of one Via field, with one to three values.
    """
    values = []
    for _ in range(draw(st.integers(1, 3))):
        params: list[tuple[str, str | None]] = [("branch", "z9hG4bK" + draw(tokens))]
        if draw(st.booleans()):
            params.append(("rport", draw(st.none() | st.integers(1, 65535).map(str))))
        if draw(st.booleans()):
            params.append(("received", draw(ipv4s | ipv6s)))
        values.append(
            h.Via(
                "SIP/2.0",
                draw(st.sampled_from(["UDP", "TCP", "TLS", "SCTP", "WS"])),
                draw(hosts),
                draw(ports),
                tuple(params),
            )
        )
    return ", ".join(str(v) for v in values)


# Spellings of header names, compact forms included (RFC 3261 section 7.3.3).
SPELLINGS = {
    "via": ["Via", "v", "VIA"],
    "from": ["From", "f"],
    "to": ["To", "t"],
    "call-id": ["Call-ID", "i", "call-id"],
    "cseq": ["CSeq", "cseq"],
    "max-forwards": ["Max-Forwards"],
    "content-length": ["Content-Length", "l"],
}


@st.composite
def messages(draw: st.DrawFn) -> Request | Response:
    """
    A well-formed request or response, with an up-to-date Content-Length.
    """
    body = draw(st.binary(max_size=200))
    method = draw(methods)
    name = lambda key: draw(st.sampled_from(SPELLINGS[key]))  # noqa: E731
    fields = [(name("via"), draw(vias())) for _ in range(draw(st.integers(1, 2)))]
    fields += [
        (name("from"), draw(nameAddrs())),
        (name("to"), draw(nameAddrs())),
        (name("call-id"), draw(tokens) + draw(st.sampled_from(["", "@127.0.0.1"]))),
        (name("cseq"), f"{draw(st.integers(0, 2**31 - 1))} {method}"),
    ]
    if draw(st.booleans()):
        fields.append((name("max-forwards"), str(draw(st.integers(0, 255)))))
    for _ in range(draw(st.integers(0, 4))):
        fields.append(("X-" + draw(tokens), draw(texts)))
    if draw(st.booleans()):
        fields.append(("s", draw(texts)))
    fields = draw(st.permutations(fields))
    fields.insert(
        draw(st.integers(0, len(fields))), (name("content-length"), str(len(body)))
    )
    if draw(st.booleans()):
        return Request(method, draw(uris), fields, body)
    return Response(draw(st.integers(100, 699)), draw(texts), fields, body)


def assertTypedViewsWork(message: Message) -> None:
    """
    The typed views of the header fields checked on arrival do not raise
    for a message that parsed.
    """
    views = (
        message.vias,
        message.fromAddr,
        message.toAddr,
        message.callId,
        message.cseq,
        message.maxForwards,
        message.contentLength,
    )
    assert views[0] and views[1] and views[2] and views[3] and views[4]


class RoundTripTests(SynchronousTestCase):
    """
    Parsing what L{Message.toBytes} writes gives the message back.
    """

    @bounded
    @given(messages())
    def test_roundTrip(self, message: Request | Response) -> None:
        """
        C{parseMessage(m.toBytes()) == m} (RFC 3261 section 7).
        """
        parsed = parseMessage(message.toBytes())
        self.assertEqual(parsed, message)
        assertFastPathAgrees(message.toBytes())
        assertTypedViewsWork(parsed)
        if isinstance(message, Request):
            self.assertEqual(formatURI(parsed.uri), formatURI(message.uri))  # type: ignore[union-attr]

    @bounded
    @given(messages())
    def test_rfc3261_18_3_streamAgrees(self, message: Request | Response) -> None:
        """
        A message read from a stream (RFC 3261 section 18.3) is what the
        datagram parser's general path reads from the same octets: the same
        start line, header fields, typed-view cache and body.
        """
        wire = message.toBytes()
        [streamed] = StreamParser().feed(wire)
        assert isinstance(streamed, (Request, Response))
        general = parser._parseGeneral(wire, parser.DEFAULT_LIMITS)
        _assertSameHead(streamed, general, wire)
        self.assertEqual(streamed.body, general.body)

    @bounded
    @given(
        st.lists(st.tuples(messages(), st.integers(0, 4)), min_size=1, max_size=4),
        st.data(),
    )
    def test_streamChunks(
        self, items: list[tuple[Request | Response, int]], data: st.DataObject
    ) -> None:
        """
        A stream of messages separated by CRLFs, cut anywhere, gives the
        messages and one L{KeepAlive} per CRLF CRLF (RFC 3261 sections 7.5
        and 18.3, RFC 5626 section 3.5.1).
        """
        wire = b""
        expected: list[object] = []
        for message, crlfs in items:
            wire += b"\r\n" * crlfs
            expected += [KeepAlive()] * (crlfs // 2)
            wire += message.toBytes()
            expected.append(message)
        cuts = sorted(
            data.draw(st.lists(st.integers(0, len(wire)), max_size=20), label="cuts")
        )
        stream = StreamParser()
        got: list[object] = []
        start = 0
        for cut in [*cuts, len(wire)]:
            got += stream.feed(wire[start:cut])
            start = cut
        self.assertEqual(got, expected)


# Octets that make up SIP messages, to build near misses from.
FRAGMENTS = [
    b"INVITE",
    b"SUBSCRIBE",
    b"SIP/2.0",
    b"SIP/2.0 ",
    b"sip:",
    b"sips:",
    b"tel:+1",
    b" ",
    b"\t",
    b"\r\n",
    b"\r\n\r\n",
    b"\r",
    b"\n",
    b":",
    b";",
    b",",
    b"=",
    b'"',
    b"\\",
    b"<",
    b">",
    b"@",
    b"[::1]",
    b"127.0.0.1",
    b"example.com",
    b"Via: SIP/2.0/UDP ",
    b";branch=z9hG4bK",
    b";received=",
    b";rport",
    b"From: ",
    b"To: ",
    b"Call-ID: ",
    b"CSeq: 1 ",
    b"Max-Forwards: ",
    b"Content-Length: ",
    b"l: ",
    b"0",
    b"5",
    b"99999999999",
    b"-1",
    b"200",
    b"\xff",
    b"\xc3\xa9",
    b"\x00",
]


def _assertSameHead(a: Message, b: Message, data: bytes) -> None:
    """
    C{a} and C{b} have the same start line, header fields as written and
    typed-view cache.
    """
    assert type(a) is type(b), data
    if isinstance(a, Request):
        assert isinstance(b, Request)
        assert (a.method, a.uri) == (b.method, b.uri), data
    else:
        assert isinstance(a, Response) and isinstance(b, Response)
        assert (a.code, a.reason) == (b.code, b.reason), data
    assert a.version == b.version, data
    assert a.headers._fields == b.headers._fields, data
    assert a.headers._cache == b.headers._cache, data


def assertFastPathAgrees(data: bytes) -> None:
    """
    L{parseMessage}, which tries its fast path first, builds exactly what
    its general path builds, or fails alike; and whenever the fast path
    reads the head of C{data}, the general path reads the same (which the
    stream parser relies on).
    """
    limits = parser.DEFAULT_LIMITS
    head, crlfs, rest = data.partition(b"\r\n\r\n")
    fast = parser._parseFast(head, None, limits) if head and crlfs else None
    try:
        general: Message | None = parser._parseGeneral(data, limits)
    except ParseError as e:
        general = None
        assert isinstance(e.partial, (Request, Response, type(None)))
        if fast is not None:
            # Only the body can be wrong: shorter than Content-Length.
            assert e.partial is not None, data
            _assertSameHead(fast, e.partial, data)
            assert fast.headers._cache is not None
            length = fast.headers._cache.get("content-length")
            assert length is not None and length > len(rest), data
    try:
        combined = parseMessage(data)
    except ParseError:
        assert general is None, data
        return
    assert general is not None, data
    assert combined == general, data
    _assertSameHead(combined, general, data)
    if fast is not None:
        _assertSameHead(fast, general, data)


def assertOnlyParseErrors(data: bytes) -> None:
    """
    Parsing C{data} as a datagram and as a stream raises nothing but
    L{ParseError}, and what parses has working typed views.
    """
    assertFastPathAgrees(data)
    try:
        message = parseMessage(data)
    except ParseError as e:
        assert e.partial is None or isinstance(e.partial, (Request, Response))
        assert "\r" not in e.reason and "\n" not in e.reason
    else:
        assertTypedViewsWork(message)
    stream = StreamParser()
    for i in range(0, len(data), 7):
        for item in stream.feed(data[i : i + 7]):
            if isinstance(item, (Request, Response)):
                assertTypedViewsWork(item)


class RobustnessTests(SynchronousTestCase):
    """
    Bad input is a L{ParseError}, never another exception.
    """

    @bounded
    @given(st.binary(max_size=2000))
    def test_arbitraryOctets(self, data: bytes) -> None:
        """
        Arbitrary octets raise nothing but L{ParseError}.
        """
        assertOnlyParseErrors(data)

    @bounded
    @given(st.lists(st.sampled_from(FRAGMENTS), max_size=60).map(b"".join))
    def test_sipFragments(self, data: bytes) -> None:
        """
        Octets made of pieces of SIP messages raise nothing but
        L{ParseError}.
        """
        assertOnlyParseErrors(data)

    @bounded
    @given(messages(), st.data())
    def test_mutatedMessages(self, message: Message, data: st.DataObject) -> None:
        """
        Valid messages with octets deleted, inserted or replaced raise
        nothing but L{ParseError}; and when the result still parses, its
        typed views work.
        """
        wire = bytearray(message.toBytes())
        for _ in range(data.draw(st.integers(1, 5), label="mutations")):
            pos = data.draw(st.integers(0, len(wire)), label="pos")
            action = data.draw(st.sampled_from(["delete", "insert", "replace"]))
            if action == "delete":
                del wire[pos : pos + data.draw(st.integers(1, 8))]
            elif action == "insert":
                wire[pos:pos] = data.draw(
                    st.sampled_from(FRAGMENTS) | st.binary(min_size=1, max_size=4)
                )
            elif pos < len(wire):
                wire[pos] = data.draw(st.integers(0, 255))
        assertOnlyParseErrors(bytes(wire))


def _relax(pattern: str) -> str:
    """
    C{pattern} without possessive quantifiers, which Hypothesis cannot
    generate from: it matches a superset, and what is drawn from it is
    filtered through the original.
    """
    return pattern.replace("++", "+").replace("*+", "*")


def _fromPattern(pattern: str) -> st.SearchStrategy[str]:
    return st.from_regex(_relax(pattern), fullmatch=True)


# Pieces near the edges of the quick checks.
edgyHosts = (
    hostnames
    | ipv4s
    | hostnames.map(str.upper)
    | st.sampled_from(
        ["1.2.3", "256.0.0.1", "01.2.3.4", "a-.b", "-a", "a..b", "a.b.", "x--1.y", "1a"]
    )
)
edgyPorts = st.integers(0, 99999).map(str) | st.sampled_from(["00", "065535"])
edgyUsers = st.text(
    string.ascii_letters + string.digits + "-_.!~*'()&=+$,;?/%:@",
    min_size=1,
    max_size=8,
)


@st.composite
def edgySIPURIs(draw: st.DrawFn, uriParameters: bool = True) -> str:
    """
    SIP URI text near the edges of the quick checks.
    """
    text = draw(st.sampled_from(["sip:", "sips:", "SIP:"]))
    if draw(st.booleans()):
        text += draw(edgyUsers) + "@"
    text += draw(edgyHosts)
    if draw(st.booleans()):
        text += ":" + draw(edgyPorts)
    if uriParameters:
        for name, value in draw(uriParams):
            text += f";{name}" if value is None else f";{name}={value}"
    return text


@st.composite
def quickVias(draw: st.DrawFn) -> str:
    """
    Via values near the edges of the quick Via check.
    """
    parms = []
    for _ in range(draw(st.integers(1, 3))):
        text = f"SIP/2.0/{draw(tokens)} {draw(edgyHosts)}"
        if draw(st.booleans()):
            text += ":" + draw(edgyPorts)
        for _ in range(draw(st.integers(0, 4))):
            name = draw(
                st.sampled_from(["branch", "rport", "received", "ttl", "maddr"])
                | tokens
            )
            name = draw(st.sampled_from([name, name.upper(), name.capitalize()]))
            value = draw(st.none() | tokens | edgyPorts | edgyHosts | ipv6s)
            text += f";{name}" if value is None else f";{name}={value}"
        parms.append(text)
    return draw(st.sampled_from([",", ", "])).join(parms)


@st.composite
def quickNameAddrs(draw: st.DrawFn) -> str:
    """
    From and To values near the edges of the quick check.
    """
    if draw(st.booleans()):
        text = draw(edgySIPURIs(uriParameters=False))
    else:
        text = "<" + draw(edgySIPURIs()) + ">"
        display = draw(
            st.none()
            | st.text(
                st.characters(blacklist_categories=("Cs",), blacklist_characters='"'),
                max_size=10,
            ).map(lambda t: f'"{t}"')
            | st.lists(tokens, min_size=1, max_size=3).map(" ".join)
        )
        if display is not None:
            text = display + draw(st.sampled_from(["", " "])) + text
    for name, value in draw(headerParams):
        text += f";{name}" if value is None else f";{name}={value}"
    return text


class QuickCheckTests(SynchronousTestCase):
    """
    The parser's quick checks of common forms accept only values that the
    typed parsers accept, so that a message that parsed never has a typed
    view that raises.
    """

    @bounded
    @given(quickVias())
    def test_via(self, value: str) -> None:
        """
        What the quick Via check accepts, L{h.parseVia} parses.
        """
        if parser._FAST_VIA.fullmatch(value):
            self.assertTrue(h.parseVia(value))

    @bounded
    @given(quickNameAddrs())
    def test_nameAddr(self, value: str) -> None:
        """
        What the quick From/To check accepts, L{h.parseNameAddr} parses.
        """
        if parser._FAST_NAME_ADDR.fullmatch(value):
            h.parseNameAddr(value)

    @bounded
    @given(_fromPattern(parser._FAST_CSEQ.pattern))
    def test_cseq(self, value: str) -> None:
        """
        What the quick CSeq check accepts, L{h.parseCSeq} parses, to the
        same method.
        """
        match = parser._FAST_CSEQ.fullmatch(value)
        assume(match)
        assert match is not None
        self.assertEqual(h.parseCSeq(value).method, match[1])

    @bounded
    @given(_fromPattern(parser._FAST_CALL_ID.pattern))
    def test_callId(self, value: str) -> None:
        """
        What the quick Call-ID check accepts, L{h.parseCallId} returns
        unchanged.
        """
        assume(parser._FAST_CALL_ID.fullmatch(value))
        self.assertEqual(h.parseCallId(value), value)


@st.composite
def contacts(draw: st.DrawFn) -> str:
    """
    Contact values: one or two name-addrs with header parameters.
    """
    values = [draw(nameAddrs(tag=False) | quickNameAddrs()) for _ in range(2)]
    return ", ".join(values[: draw(st.integers(1, 2))])


class QuickPathTests(SynchronousTestCase):
    """
    The quick paths of the typed parsers of L{sipevents.sip.headers}, for the
    common forms of values, give exactly what their general paths give.
    """

    @bounded
    @given(vias() | quickVias())
    @example("SIP/2.0/UDP 127.0.0.1;branch")
    @example("SIP/2.0/udp Example.COM:5060;RPORT;rport=65535;ttl=1")
    @example("SIP/2.0/UDP 127.0.0.1;received=1.2.3.256;maddr=x")
    def test_rfc3261_20_42_via(self, value: str) -> None:
        """
        A Via value the quick path takes parses to the same L{h.Via} as
        through the general path (RFC 3261 section 20.42 and 25.1).
        """
        if h._QUICK_VIA.fullmatch(value):
            self.assertEqual(h.parseVia(value), h._parseViaGeneral(value))

    @bounded
    @given(nameAddrs() | quickNameAddrs())
    @example("<sip:alice@example.com>;tag")
    @example('"Bob" <sip:bob@example.com>;TAG=1;tag')
    @example('"B\\"ob" <tel:+1234>;tag=1')
    @example("<sip:alice@example.com?x=y>;tag=1")
    def test_rfc3261_20_20_nameAddr(self, value: str) -> None:
        """
        A From or To value the quick path takes parses to the same
        L{h.NameAddr} as through the general path (RFC 3261 sections 20.20,
        20.39 and 25.1), including the check that a tag has a value.
        """
        quick = h._quickNameAddr(value)
        if quick is not None:
            self.assertEqual(quick, h._parseNameAddrGeneral(value, "From"))

    @bounded
    @given(contacts())
    def test_rfc3261_20_10_contact(self, value: str) -> None:
        """
        A Contact value parses to the same list with or without the quick
        path (RFC 3261 section 20.10).
        """
        try:
            general = h._parseNameAddrListGeneral(value, "Contact")
        except ParseError:
            self.assertRaises(ParseError, h.parseNameAddrList, value)
        else:
            self.assertEqual(h.parseNameAddrList(value), general)

    @bounded
    @given(
        _fromPattern(h._QUICK_CSEQ.pattern)
        | st.builds(
            "{} {}".format,
            st.integers(0, 2**31 + 5).map(str) | st.just("0000000001"),
            methods,
        )
    )
    def test_rfc3261_20_16_cseq(self, value: str) -> None:
        """
        A CSeq value the quick path takes parses to the same L{h.CSeq} as
        through the general path (RFC 3261 section 20.16), whose range
        check it never skips.
        """
        if h._QUICK_CSEQ.fullmatch(value):
            self.assertEqual(h.parseCSeq(value), h._parseCSeqGeneral(value))
