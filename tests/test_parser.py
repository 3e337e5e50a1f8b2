# -*- test-case-name: tests.test_parser -*-
"""
Tests for L{sipevents.sip.parser}: datagram parsing, stream framing, limits and
the partial messages attached to errors.
"""

from __future__ import annotations

import random

from twisted.trial.unittest import SynchronousTestCase

from sipevents.config import Limits
from sipevents.errors import MessageTooLarge, ParseError
from sipevents.sip import parser
from sipevents.sip.headers import CSeq, Via
from sipevents.sip.message import Request, Response
from sipevents.sip.parser import (
    KNOWN_METHODS,
    KeepAlive,
    StreamItem,
    StreamParser,
    parseMessage,
)
from sipevents.sip.uri import SIPURI, TelURI

VIA = "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1a2b3c;rport"


def request(
    method: str = "SUBSCRIBE",
    uri: str = "sip:alice@example.com",
    headers: dict[str, str | None] | None = None,
    body: bytes = b"",
    contentLength: str | None = "auto",
    cseqMethod: str | None = None,
) -> bytes:
    """
    The wire form of a request with the usual header fields.

    @param headers: header values to use instead of the usual ones (in
        place), C{None} to leave one out; other names are added at the end.
    @param contentLength: the Content-Length value to write, C{"auto"} for
        the body length, or C{None} for no Content-Length field.
    """
    fields: dict[str, str | None] = {
        "Via": VIA,
        "Max-Forwards": "70",
        "To": "<sip:alice@example.com>",
        "From": '"Bob" <sip:bob@example.com>;tag=a73kszlfl',
        "Call-ID": "7a9f3c2e1b8d4a6f@127.0.0.1",
        "CSeq": f"1 {cseqMethod or method}",
        "Contact": "<sip:bob@127.0.0.1:5070>",
        "Event": "presence",
    }
    fields.update(headers or {})
    if contentLength is not None:
        fields["Content-Length"] = (
            str(len(body)) if contentLength == "auto" else contentLength
        )
    lines = [f"{method} {uri} SIP/2.0"]
    lines += [f"{name}: {value}" for name, value in fields.items() if value is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


def replace(data: bytes, old: bytes, new: bytes) -> bytes:
    """
    C{data} with C{old} replaced once by C{new}; C{old} must be there.
    """
    assert old in data, old
    return data.replace(old, new, 1)


RESPONSE = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1a2b3c;received=127.0.0.2\r\n"
    b"To: <sip:alice@example.com>;tag=8392jd83\r\n"
    b"From: <sip:bob@example.com>;tag=a73kszlfl\r\n"
    b"Call-ID: 7a9f3c2e1b8d4a6f@127.0.0.1\r\n"
    b"CSeq: 1 SUBSCRIBE\r\n"
    b"Expires: 3600\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)


class ParseMessageTests(SynchronousTestCase):
    """
    L{parseMessage} on well-formed messages.
    """

    def test_request(self) -> None:
        """
        A request gives its method, Request-URI, headers in order and body
        (RFC 3261 section 7.1), and the header fields checked on arrival are
        available as typed views.
        """
        m = parseMessage(request())
        assert isinstance(m, Request)
        self.assertEqual(m.method, "SUBSCRIBE")
        self.assertEqual(m.uri, SIPURI("sip", "alice", None, "example.com"))
        self.assertEqual(m.version, "SIP/2.0")
        self.assertEqual(
            [name for name, _ in m.headers],
            [
                "Via",
                "Max-Forwards",
                "To",
                "From",
                "Call-ID",
                "CSeq",
                "Contact",
                "Event",
                "Content-Length",
            ],
        )
        self.assertEqual(m.headers.get("Event"), "presence")
        self.assertEqual(
            m.vias, [Via("SIP/2.0", "UDP", "127.0.0.1", 5070, m.vias[0].params)]
        )
        self.assertEqual(m.vias[0].branch, "z9hG4bK-1a2b3c")
        self.assertTrue(m.vias[0].rportRequested)
        self.assertEqual(m.cseq, CSeq(1, "SUBSCRIBE"))
        self.assertEqual(m.callId, "7a9f3c2e1b8d4a6f@127.0.0.1")
        assert m.fromAddr is not None and m.toAddr is not None
        self.assertEqual(m.fromAddr.displayName, "Bob")
        self.assertEqual(m.fromAddr.tag, "a73kszlfl")
        self.assertIsNone(m.toAddr.tag)
        self.assertEqual(m.maxForwards, 70)
        self.assertEqual(m.contentLength, 0)
        self.assertEqual(m.body, b"")

    def test_response(self) -> None:
        """
        A response gives its status code, reason phrase and headers (RFC
        3261 section 7.2).
        """
        m = parseMessage(RESPONSE)
        assert isinstance(m, Response)
        self.assertEqual((m.code, m.reason, m.version), (200, "OK", "SIP/2.0"))
        self.assertEqual(m.vias[0].received, "127.0.0.2")
        self.assertEqual(m.expires, 3600)

    def test_rfc3261_7_2_reasonPhraseWithSpaces(self) -> None:
        """
        The reason phrase is everything after the status code and its SP,
        spaces included.
        """
        data = replace(RESPONSE, b"200 OK", b"486 Busy  Here ")
        m = parseMessage(data)
        assert isinstance(m, Response)
        self.assertEqual((m.code, m.reason), (486, "Busy  Here "))

    def test_rfc3261_7_1_versionCaseInsensitive(self) -> None:
        """
        The SIP-Version is case-insensitive (RFC 3261 section 7.1) and is
        kept upper case.
        """
        m = parseMessage(replace(request(), b"SIP/2.0\r\n", b"sip/2.0\r\n"))
        self.assertEqual(m.version, "SIP/2.0")
        m = parseMessage(replace(RESPONSE, b"SIP/2.0 200", b"Sip/2.0 200"))
        self.assertEqual(m.version, "SIP/2.0")

    def test_rfc3261_7_5_leadingCRLF(self) -> None:
        """
        CRLFs before the start line are ignored (RFC 3261 section 7.5).
        """
        self.assertEqual(
            parseMessage(b"\r\n\r\n\r\n" + request()), parseMessage(request())
        )

    def test_rfc3261_18_3_bodyByContentLength(self) -> None:
        """
        The body is as many octets as Content-Length says; the rest of the
        datagram is discarded (RFC 3261 section 18.3).
        """
        data = request(body=b"0123456789", contentLength="4")
        self.assertEqual(parseMessage(data).body, b"0123")

    def test_rfc3261_18_3_bodyWithoutContentLength(self) -> None:
        """
        Without Content-Length, the body runs to the end of the datagram
        (RFC 3261 section 18.3).
        """
        data = request(body=b"0123456789", contentLength=None)
        m = parseMessage(data)
        self.assertEqual(m.body, b"0123456789")
        self.assertIsNone(m.contentLength)

    def test_rfc3261_20_14_contentLengthCountsOctets(self) -> None:
        """
        Content-Length counts octets, not characters, and the body stays
        octets (RFC 3261 section 20.14): a UTF-8 body is not decoded.
        """
        body = "Grüße, ☃".encode()
        m = parseMessage(request(method="NOTIFY", body=body))
        self.assertEqual(m.body, body)
        self.assertEqual(m.contentLength, len(body))

    def test_rfc3261_18_3_bodyWithBlankLine(self) -> None:
        """
        A body may contain CRLF CRLF; only the first one ends the headers.
        """
        body = b"a\r\n\r\nb\r\n\r\n"
        self.assertEqual(parseMessage(request(body=body)).body, body)

    def test_rfc3261_7_3_1_folding(self) -> None:
        """
        Continuation lines, starting with SP or HTAB, are unfolded: the line
        break and the white space after it become one SP (RFC 3261 section
        7.3.1).
        """
        data = replace(
            request(),
            b"Event: presence\r\n",
            b"Event: presence\r\nSubject: I know you're there,\r\n"
            b"         pick up the phone  \r\n\tand talk to me!\r\n",
        )
        m = parseMessage(data)
        self.assertEqual(
            m.headers.get("Subject"),
            "I know you're there, pick up the phone   and talk to me!",
        )

    def test_rfc3261_7_3_1_foldedRequiredHeader(self) -> None:
        """
        Folded Via and CSeq values are unfolded before they are checked.
        """
        data = replace(request(), b"CSeq: 1 SUBSCRIBE", b"CSeq: 1\r\n SUBSCRIBE")
        data = replace(data, b"5070;branch", b"5070\r\n\t;branch")
        m = parseMessage(data)
        self.assertEqual(m.cseq, CSeq(1, "SUBSCRIBE"))
        self.assertEqual(m.vias[0].branch, "z9hG4bK-1a2b3c")

    def test_rfc3261_7_3_1_whitespaceAroundColon(self) -> None:
        """
        White space may come before and after the colon (RFC 3261 section
        7.3.1, HCOLON in section 25.1); names keep their spelling and
        values lose the white space around them.
        """
        data = replace(request(), b"Event: presence", b"Event \t :  \tpresence \t")
        m = parseMessage(data)
        self.assertIn(("Event", "presence"), m.headers.items())
        self.assertEqual(m.headers.get("event"), "presence")

    def test_rfc3261_7_3_3_compactForms(self) -> None:
        """
        Compact header names are accepted for the fields checked on arrival
        (RFC 3261 section 7.3.3) and kept as written.
        """
        data = (
            b"NOTIFY sip:bob@127.0.0.1:5070 SIP/2.0\r\n"
            b"v: " + VIA.encode() + b"\r\n"
            b"t: <sip:bob@example.com>;tag=a73kszlfl\r\n"
            b"f: <sip:alice@example.com>;tag=x\r\n"
            b"i: abc@127.0.0.1\r\n"
            b"CSeq: 2 NOTIFY\r\n"
            b"o: presence\r\n"
            b"c: text/plain\r\n"
            b"l: 5\r\n\r\nhello"
        )
        m = parseMessage(data)
        self.assertEqual(m.callId, "abc@127.0.0.1")
        assert m.event is not None and m.contentType is not None
        self.assertEqual(m.event.package, "presence")
        self.assertEqual(m.contentType.mimeType, "text/plain")
        self.assertEqual(m.body, b"hello")
        self.assertEqual(m.headers.items()[0][0], "v")

    def test_rfc3261_25_1_nonUTF8Header(self) -> None:
        """
        Header octets that are not UTF-8 survive a parse and serialize round
        trip unchanged (they are decoded with surrogateescape).
        """
        data = replace(
            request(), b"Event: presence", b"Event: presence\r\nX-Raw: \xff\xfe ok"
        )
        m = parseMessage(data)
        self.assertEqual(m.headers.get("X-Raw"), "\udcff\udcfe ok")
        self.assertEqual(m.toBytes(), data)

    def test_rfc3261_25_1_utf8DisplayName(self) -> None:
        """
        Display names and reason phrases may be UTF-8 (RFC 3261 section 25.1,
        TEXT-UTF8).
        """
        data = replace(request(), b'"Bob"', '"Bøb 日本"'.encode())
        m = parseMessage(data)
        assert m.fromAddr is not None
        self.assertEqual(m.fromAddr.displayName, "Bøb 日本")

    def test_typedViewsFallBack(self) -> None:
        """
        Values outside the common forms (IPv6, tel URIs, escapes, white
        space, parameters with their own syntax) are checked by the typed
        parsers instead, and their results are kept.
        """
        data = request(
            uri="tel:+1-201-555-0123",
            headers={
                "Via": "SIP/2.0/TCP [::1]:5060 ; branch = z9hG4bK77 ;received=::1",
                "From": '"A \\"quoted\\" name" <tel:+1-201-555-0123>;tag=1',
                "To": "sip:%61lice@example.com",
                "CSeq": "0001   SUBSCRIBE",
                "Max-Forwards": "070",
            },
        )
        m = parseMessage(data)
        assert isinstance(m, Request) and m.fromAddr is not None
        self.assertIsInstance(m.uri, TelURI)
        self.assertEqual(m.vias[0].host, "::1")
        self.assertEqual(m.vias[0].received, "::1")
        self.assertEqual(m.fromAddr.displayName, 'A "quoted" name')
        self.assertEqual(m.cseq, CSeq(1, "SUBSCRIBE"))
        self.assertEqual(m.maxForwards, 70)

    def test_repeatedEqualContentLength(self) -> None:
        """
        Repeated Content-Length fields with the same value are accepted, and
        only the first is kept.
        """
        for extra in (b"l: 3", b"Content-Length: 3"):
            data = replace(request(body=b"abc"), b"Event:", extra + b"\r\nEvent:")
            for _ in range(2):
                m = parseMessage(data)
                self.assertEqual(m.headers.getAll("Content-Length"), ["3"])
                self.assertEqual(m.contentLength, 3)
                self.assertEqual(m.body, b"abc")

    def test_messagesAreIndependent(self) -> None:
        """
        Messages parsed from the same octets share nothing that changes:
        editing the headers of one leaves the other alone.
        """
        first = parseMessage(request())
        second = parseMessage(request())
        first.headers.set("Max-Forwards", "69")
        first.headers.add("Subject", "x")
        self.assertEqual(second.maxForwards, 70)
        self.assertNotIn("Subject", second.headers)
        self.assertEqual(parseMessage(request()), second)

    def test_knownMethods(self) -> None:
        """
        L{KNOWN_METHODS} holds the methods of RFC 3261 and the standard
        extensions, SUBSCRIBE, NOTIFY and PUBLISH among them.
        """
        self.assertTrue({"INVITE", "SUBSCRIBE", "NOTIFY", "PUBLISH"} <= KNOWN_METHODS)
        self.assertNotIn("NEWMETHOD", KNOWN_METHODS)


class ParseErrorTests(SynchronousTestCase):
    """
    L{parseMessage} on malformed messages: only L{ParseError}, with the
    status to answer and a partial message whenever the header section could
    be read.
    """

    def assertError(
        self, data: bytes, status: int = 400, mentions: str = ""
    ) -> ParseError:
        error = self.assertRaises(ParseError, parseMessage, data)
        self.assertEqual(error.status, status)
        self.assertIn(mentions, error.reason)
        return error

    def assertAddressable(self, error: ParseError) -> Request:
        """
        The partial request holds what a response needs (RFC 3261 section
        8.2.6.2).
        """
        partial = error.partial
        assert isinstance(partial, Request)
        self.assertEqual(partial.callId, "7a9f3c2e1b8d4a6f@127.0.0.1")
        self.assertEqual(partial.vias[0].branch, "z9hG4bK-1a2b3c")
        return partial

    def test_empty(self) -> None:
        """
        Nothing, or only CRLFs, is not a message.
        """
        for data in (b"", b"\r\n", b"\r\n\r\n"):
            error = self.assertError(data)
            self.assertIsNone(error.partial)

    def test_rfc3261_7_missingEmptyLine(self) -> None:
        """
        The empty line after the headers must be there (RFC 3261 section 7);
        the partial still allows a 400.
        """
        data = request()[:-2]
        self.assertAddressable(self.assertError(data, 400, "empty line"))

    def test_rfc3261_7_bareLF(self) -> None:
        """
        Lines end with CRLF; a bare LF or CR inside the header section is a
        400 (RFC 3261 section 7), and the other lines make the partial.
        """
        data = replace(request(), b"Event: presence\r\n", b"Event: presence\nX: y\r\n")
        self.assertAddressable(self.assertError(data, 400, "bare CR or LF"))
        data = replace(request(), b"Event: presence\r\n", b"Event: pre\rsence\r\n")
        partial = self.assertAddressable(self.assertError(data, 400, "bare CR or LF"))
        self.assertNotIn("Event", partial.headers)

    def test_rfc3261_25_1_tagWithoutValue(self) -> None:
        """
        A tag parameter needs a token value (RFC 3261 section 25.1,
        tag-param): a From or To with a bare C{;tag} is a 400, rather than
        a message whose C{fromAddr} view would raise.
        """
        for name, value in (
            ("From", "<sip:bob@example.com>;tag"),
            ("To", "<sip:alice@example.com>;TAG;x=y"),
        ):
            data = request(headers={name: value})
            self.assertAddressable(self.assertError(data, 400, f"Bad {name} header"))

    def test_rfc3261_7_lfOnlyMessage(self) -> None:
        """
        A message whose lines end with LF alone is not a SIP message.
        """
        self.assertError(request().replace(b"\r\n", b"\n"), 400)

    def test_rfc3261_7_3_1_lineWithoutColon(self) -> None:
        """
        A header line without a colon is a 400; the other fields make the
        partial.
        """
        data = replace(request(), b"Event: presence", b"Event presence")
        self.assertAddressable(self.assertError(data, 400, "header field line"))

    def test_rfc3261_25_1_headerNameNotToken(self) -> None:
        """
        A header name must be a token (RFC 3261 section 25.1).
        """
        for bad in (b"Ev ent: x", b"Ev@nt: x", b": x", b"\xc3\xa9: x"):
            data = replace(request(), b"Event: presence", bad)
            self.assertAddressable(self.assertError(data, 400, "header field line"))

    def test_rfc3261_7_3_1_continuationOfStartLine(self) -> None:
        """
        The first header line cannot be a continuation line.
        """
        data = replace(request(), b"SIP/2.0\r\nVia", b"SIP/2.0\r\n Via")
        self.assertError(data, 400)

    def test_rfc3261_7_1_requestLine(self) -> None:
        """
        A Request-Line is C{Method SP Request-URI SP SIP-Version} with single
        SPs and a token method (RFC 3261 section 7.1).
        """
        for line in (
            b"SUBSCRIBE  sip:alice@example.com SIP/2.0",
            b"SUBSCRIBE sip:alice@example.com SIP/2.0 ",
            b"SUBSCRIBE sip:alice@example.com",
            b"SUBSCRIBE\tsip:alice@example.com\tSIP/2.0",
            b"SUB(SCRIBE) sip:alice@example.com SIP/2.0",
            b"SUBSCRIBE sip:alice@example.com HTTP/1.1",
            b"SUBSCRIBE sip:alice@example.com SIP/2",
        ):
            data = replace(request(), b"SUBSCRIBE sip:alice@example.com SIP/2.0", line)
            self.assertAddressable(self.assertError(data, 400))

    def test_rfc3261_8_2_2_1_versionNotSupported(self) -> None:
        """
        Another SIP-Version is a 505 (RFC 3261 section 21.5.6), for requests
        and responses.
        """
        data = replace(request(), b"SIP/2.0\r\n", b"SIP/3.0\r\n")
        partial = self.assertAddressable(self.assertError(data, 505))
        self.assertEqual(partial.version, "SIP/3.0")
        self.assertError(replace(RESPONSE, b"SIP/2.0 200", b"SIP/2.1 200"), 505)

    def test_rfc3261_19_1_1_badRequestURI(self) -> None:
        """
        A Request-URI must parse (RFC 3261 section 19.1.1); the partial
        request gets a placeholder URI.
        """
        for uri in ("sip:", "<sip:alice@example.com>", "alice"):
            data = request(uri=uri)
            self.assertAddressable(self.assertError(data, 400, "Request-URI"))

    def test_rfc3261_7_2_statusLine(self) -> None:
        """
        A status code is three digits from 100 to 699 (RFC 3261 sections 7.2
        and 21); a bad one leaves no partial.
        """
        for line in (
            b"SIP/2.0 99 Hm",
            b"SIP/2.0 700 No",
            b"SIP/2.0 2000 OK",
            b"SIP/2.0 2x0 OK",
            b"SIP/2.0",
        ):
            error = self.assertError(replace(RESPONSE, b"SIP/2.0 200 OK", line), 400)
            self.assertIsNone(error.partial)

    def test_rfc4475_3_1_1_13_noSpaceBeforeEmptyReason(self) -> None:
        """
        A status line without the SP before an empty reason phrase is
        accepted (RFC 4475 section 3.1.1.13 allows being liberal).
        """
        m = parseMessage(replace(RESPONSE, b"SIP/2.0 200 OK", b"SIP/2.0 200"))
        assert isinstance(m, Response)
        self.assertEqual((m.code, m.reason), (200, ""))

    def test_rfc3261_8_1_1_missingHeaders(self) -> None:
        """
        Via, From, To, Call-ID and CSeq are required (RFC 3261 section
        8.1.1); the reason names the missing ones.
        """
        for name in ("Via", "From", "To", "Call-ID", "CSeq"):
            data = request(headers={name: None})
            error = self.assertError(data, 400)
            self.assertEqual(error.reason, f"Missing {name} header")
            self.assertIsInstance(error.partial, Request)
        error = self.assertError(request(headers={"Via": None, "CSeq": None}), 400)
        self.assertEqual(error.reason, "Missing Via, CSeq headers")
        error = self.assertError(replace(RESPONSE, b"CSeq: 1 SUBSCRIBE\r\n", b""))
        self.assertEqual(error.reason, "Missing CSeq header")

    def test_rfc3261_20_repeatedSingleHeaders(self) -> None:
        """
        From, To, Call-ID, CSeq and Max-Forwards may appear once only (RFC
        4475 section 3.3.8).
        """
        for name, value in (
            ("From", "<sip:x@example.com>;tag=2"),
            ("To", "<sip:x@example.com>"),
            ("Call-ID", "other@127.0.0.1"),
            ("CSeq", "2 SUBSCRIBE"),
            ("Max-Forwards", "70"),
        ):
            data = replace(request(), b"Event:", f"{name}: {value}\r\nEvent:".encode())
            error = self.assertError(data, 400, f"Several {name}")
            assert isinstance(error.partial, Request)
            self.assertEqual(error.partial.headers.count(name), 2)

    def test_rfc3261_8_2_6_2_partialCarriesBadHeader(self) -> None:
        """
        When a required header is malformed, the partial request still has
        it as written, and the reason names it.
        """
        for name, value in (
            ("Via", "SIP/2.0/UDP"),
            ("From", "<sip:bob@example.com"),
            ("To", '"unterminated <sip:alice@example.com>'),
            ("Call-ID", "a b"),
            ("CSeq", "one SUBSCRIBE"),
            ("Max-Forwards", "256"),
        ):
            data = request(headers={name: value})
            error = self.assertError(data, 400, name)
            partial = error.partial
            assert isinstance(partial, Request)
            self.assertEqual(partial.headers.get(name), value)

    def test_rfc3261_20_42_viaParameterSyntax(self) -> None:
        """
        Via parameters with their own syntax are checked: branch a token,
        rport a port, received an address, ttl up to 255 (RFC 3261 section
        20.42 and 25.1, RFC 3581).
        """
        for params in (
            ";rport=abc",
            ";RPORT=70000",
            ";received=example.com",
            ";Received=300.1.1.1",
            ";ttl=256",
            ';branch="quoted"',
            ";branch",
            ";maddr=-bad-",
        ):
            data = request(headers={"Via": "SIP/2.0/UDP 127.0.0.1" + params})
            self.assertError(data, 400, "Via")

    def test_rfc3261_19_1_1_badHosts(self) -> None:
        """
        Hosts in Via, From and To must be host names or addresses.
        """
        for host in ("256.1.1.1", "1.2.3", "-a.example.com", "a..b", "[::g]"):
            data = request(headers={"Via": f"SIP/2.0/UDP {host};branch=z9hG4bK1"})
            self.assertError(data, 400, "Via")
            data = request(headers={"To": f"<sip:alice@{host}>"})
            self.assertError(data, 400, "To")

    def test_rfc4475_3_1_2_17_cseqMethodMismatch(self) -> None:
        """
        The CSeq method must be the request method: 400 for a known method
        (RFC 4475 section 3.1.2.17), 501 for an unknown one (section
        3.1.2.18). Methods are case-sensitive.
        """
        self.assertAddressable(
            self.assertError(request(cseqMethod="NOTIFY"), 400, "CSeq")
        )
        self.assertAddressable(
            self.assertError(request(cseqMethod="subscribe"), 400, "CSeq")
        )
        error = self.assertError(request(method="FOO", cseqMethod="BAR"), 501)
        self.assertAddressable(error)
        parseMessage(request(method="FOO"))

    def test_rfc3261_18_3_shortBody(self) -> None:
        """
        A datagram shorter than its Content-Length is an error (RFC 3261
        section 18.3); the partial has the body that arrived.
        """
        error = self.assertError(
            request(body=b"abc", contentLength="10"), 400, "Content-Length"
        )
        partial = self.assertAddressable(error)
        self.assertEqual(partial.body, b"abc")

    def test_rfc3261_20_14_badContentLength(self) -> None:
        """
        Content-Length must be a non-negative decimal number, and several
        fields must agree (RFC 4475 sections 3.1.2.3 and 3.3.9).
        """
        for value in ("-1", "five", "1.0", "０", "99999999999999999999999"):
            self.assertAddressable(
                self.assertError(request(contentLength=value), 400, "Content-Length")
            )
        data = replace(request(), b"Event:", b"Content-Length: 1\r\nEvent:")
        self.assertAddressable(self.assertError(data, 400, "Content-Length"))

    def test_reasonIsShortAndSafe(self) -> None:
        """
        The reason phrase of an error stays short and on one line, even for
        a huge or odd value, because it ends up in a status line.
        """
        data = request(headers={"CSeq": "x" * 5000 + "\x00"})
        error = self.assertError(data, 400, "CSeq")
        self.assertLessEqual(len(error.reason), 120)
        self.assertNotIn("\r", error.reason)
        self.assertNotIn("\n", error.reason)


class LimitTests(SynchronousTestCase):
    """
    L{sipevents.config.Limits} enforced by L{parseMessage}: 513 with a
    partial (RFC 3261 section 21.5.12).
    """

    def test_maxMessageSize(self) -> None:
        """
        A message larger than C{maxMessageSize} is refused with 513.
        """
        data = request(body=b"x" * 1000)
        limits = Limits(maxMessageSize=len(data) - 1)
        error = self.assertRaises(MessageTooLarge, parseMessage, data, limits)
        self.assertEqual(error.status, 513)
        assert isinstance(error.partial, Request)
        self.assertEqual(error.partial.callId, "7a9f3c2e1b8d4a6f@127.0.0.1")
        parseMessage(data, Limits(maxMessageSize=len(data)))

    def test_maxHeaders(self) -> None:
        """
        More header fields than C{maxHeaders} are refused with 513.
        """
        data = request(headers={f"X-N{i}": str(i) for i in range(20)})
        count = 9 + 20
        parseMessage(data, Limits(maxHeaders=count))
        error = self.assertRaises(
            MessageTooLarge, parseMessage, data, Limits(maxHeaders=count - 1)
        )
        self.assertEqual(error.status, 513)
        self.assertIsInstance(error.partial, Request)

    def test_maxLineLength(self) -> None:
        """
        A header field longer than C{maxLineLength} after unfolding, or a
        longer start line, is refused with 513.
        """
        data = request(headers={"Subject": "a" * 100})
        parseMessage(data, Limits(maxLineLength=109))
        error = self.assertRaises(
            MessageTooLarge, parseMessage, data, Limits(maxLineLength=108)
        )
        self.assertIsInstance(error.partial, Request)
        folded = replace(data, b"a" * 100, b"a" * 50 + b"\r\n " + b"a" * 49)
        self.assertRaises(
            MessageTooLarge, parseMessage, folded, Limits(maxLineLength=108)
        )
        data = request(uri="sip:" + "a" * 200 + "@example.com")
        self.assertRaises(
            MessageTooLarge, parseMessage, data, Limits(maxLineLength=200)
        )


class FastPathTests(SynchronousTestCase):
    """
    Messages of the common kind are read by the fast path of the parser
    alone (L{parser._parseFast}); the general path is only for the rest.
    tests.test_properties checks that both read the same.
    """

    def setUp(self) -> None:
        def general(*args: object) -> object:
            raise AssertionError("the general path was taken")

        self.patch(parser, "_parseGeneral", general)
        self.patch(parser, "_parseHead", general)

    def test_requests(self) -> None:
        """
        Requests with and without a body, with compact header names, an
        IPv4 or host name sent-by, a ten-digit CSeq and an unknown method
        take the fast path, and are what they should be.
        """
        body = b'<?xml version="1.0"?><presence/>'
        for data in (
            request(),
            request(
                "NOTIFY",
                "sip:bob@127.0.0.1:5070;transport=udp",
                {"Content-Type": "application/pidf+xml"},
                body,
            ),
            request("PUBLISH", headers={"CSeq": "2139999999 PUBLISH"}),
            request(
                headers={
                    "Via": "SIP/2.0/TCP pc33.example.com:5060;branch=z9hG4bK-2",
                    "From": "<sip:bob@example.com>;tag=1",
                }
            ).replace(b"\r\nTo:", b"\r\nt:"),
            request("FOO", headers={"CSeq": "7 FOO"}),
        ):
            message = parseMessage(data)
            self.assertEqual(message.toBytes(), data)
        assert isinstance(message, Request)
        self.assertEqual(message.method, "FOO")

    def test_responses(self) -> None:
        """
        Responses take the fast path too, reason phrases with spaces
        included.
        """
        for data in (
            RESPONSE,
            RESPONSE.replace(b"200 OK", b"481 Call/Transaction Does Not Exist"),
        ):
            message = parseMessage(data)
            assert isinstance(message, Response)
            self.assertEqual(message.toBytes(), data)
        self.assertEqual(message.reason, "Call/Transaction Does Not Exist")

    def test_rfc3261_25_1_highPorts(self) -> None:
        """
        Five-digit ports, 60000 to 65535 included (Linux hands out
        ephemeral ports up to 60999), in Via sent-by, rport and URIs pass
        the quick checks, with no fallback to the typed parsers'
        validation.
        """

        def validate(*args: object) -> object:
            raise AssertionError("the quick checks did not match")

        self.patch(parser, "_validate", validate)
        for port in (10000, 50000, 60000, 60999, 64999, 65535):
            data = request(
                "NOTIFY",
                f"sip:bob@127.0.0.1:{port}",
                {
                    "Via": f"SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-1"
                    f";rport={port};received=127.0.0.1",
                    "From": f"<sip:alice@127.0.0.1:{port}>;tag=1",
                },
            )
            self.assertEqual(parseMessage(data).toBytes(), data)

    def test_stream(self) -> None:
        """
        A stream of common messages is read by the fast path.
        """
        wire = request() + RESPONSE + request("NOTIFY", body=b"abc")
        items = StreamParser().feed(wire)
        self.assertEqual(
            b"".join(m.toBytes() for m in items if isinstance(m, (Request, Response))),
            wire,
        )
        self.assertEqual(len(items), 3)


class StreamParserTests(SynchronousTestCase):
    """
    L{StreamParser}: framing by Content-Length on streams (RFC 3261 section
    18.3).
    """

    messages = [
        request(),
        request(method="NOTIFY", body=b"<presence/>\r\n\r\n" * 20),
        RESPONSE,
        request(method="PUBLISH", body="ünïcödé".encode()),
    ]

    def feedAll(self, parser: StreamParser, chunks: list[bytes]) -> list[StreamItem]:
        out: list[StreamItem] = []
        for chunk in chunks:
            out.extend(parser.feed(chunk))
        return out

    def test_oneMessage(self) -> None:
        """
        A complete message in one chunk comes out at once.
        """
        [m] = StreamParser().feed(self.messages[1])
        self.assertEqual(m, parseMessage(self.messages[1]))

    def test_severalMessagesInOneChunk(self) -> None:
        """
        Several messages in one chunk come out in order.
        """
        items = StreamParser().feed(b"".join(self.messages))
        self.assertEqual(items, [parseMessage(m) for m in self.messages])

    def test_oneOctetAtATime(self) -> None:
        """
        Fed one octet at a time, the parser gives the same messages, each as
        soon as its last octet arrives.
        """
        data = b"".join(self.messages)
        parser = StreamParser()
        ends = []
        items: list[StreamItem] = []
        for i in range(len(data)):
            got = parser.feed(data[i : i + 1])
            if got:
                ends.append(i + 1)
                items.extend(got)
        self.assertEqual(items, [parseMessage(m) for m in self.messages])
        lengths = [len(m) for m in self.messages]
        self.assertEqual(ends, [sum(lengths[: n + 1]) for n in range(len(lengths))])

    def test_randomChunks(self) -> None:
        """
        Cut anywhere, in chunks of any size, the stream gives the same
        messages.
        """
        data = b"\r\n".join(self.messages) * 3
        expected = [parseMessage(m) for m in self.messages] * 3
        rng = random.Random(4475)
        for _ in range(50):
            chunks = []
            pos = 0
            while pos < len(data):
                size = rng.choice([1, 2, 3, 7, 64, 500, 4096])
                chunks.append(data[pos : pos + size])
                pos += size
            self.assertEqual(self.feedAll(StreamParser(), chunks), expected)

    def test_incompleteMessageWaits(self) -> None:
        """
        A truncated header section or body gives nothing until the rest
        arrives.
        """
        data = self.messages[1]
        cut = data.index(b"\r\n\r\n")
        parser = StreamParser()
        self.assertEqual(parser.feed(data[:cut]), [])
        self.assertEqual(parser.feed(data[cut : cut + 10]), [])
        self.assertEqual(parser.feed(data[cut + 10 : -1]), [])
        self.assertEqual(parser.feed(data[-1:]), [parseMessage(data)])

    def test_rfc5626_3_5_1_keepAlivePing(self) -> None:
        """
        A CRLF CRLF between messages is a keep-alive ping (RFC 5626 section
        3.5.1), also when it arrives in pieces.
        """
        parser = StreamParser()
        self.assertEqual(parser.feed(b"\r\n\r\n"), [KeepAlive()])
        self.assertEqual(parser.feed(b"\r\n"), [])
        self.assertEqual(parser.feed(b"\r"), [])
        self.assertEqual(parser.feed(b"\n"), [KeepAlive()])
        self.assertEqual(parser.feed(b"\r\n\r\n\r\n\r\n"), [KeepAlive(), KeepAlive()])
        items = parser.feed(self.messages[0] + b"\r\n\r\n" + self.messages[2])
        self.assertEqual(
            items,
            [
                parseMessage(self.messages[0]),
                KeepAlive(),
                parseMessage(self.messages[2]),
            ],
        )

    def test_rfc3261_7_5_crlfBeforeMessage(self) -> None:
        """
        A lone CRLF before a message is skipped (RFC 3261 section 7.5).
        """
        parser = StreamParser()
        self.assertEqual(parser.feed(b"\r\n"), [])
        self.assertEqual(
            parser.feed(self.messages[0]), [parseMessage(self.messages[0])]
        )
        self.assertEqual(
            parser.feed(b"\r\n" + self.messages[0]), [parseMessage(self.messages[0])]
        )

    def test_keepAlive(self) -> None:
        """
        L{KeepAlive} instances are all equal.
        """
        self.assertEqual(KeepAlive(), KeepAlive())
        self.assertEqual(hash(KeepAlive()), hash(KeepAlive()))
        self.assertNotEqual(KeepAlive(), b"\r\n\r\n")
        self.assertEqual(repr(KeepAlive()), "KeepAlive()")

    def test_rfc3261_18_3_missingContentLength(self) -> None:
        """
        Content-Length is required on a stream (RFC 3261 section 18.3):
        without it the framing is lost, the error is fatal and has a
        partial, and what comes next is ignored.
        """
        parser = StreamParser()
        [error] = parser.feed(request(contentLength=None) + self.messages[0])
        assert isinstance(error, ParseError)
        self.assertTrue(error.fatal)
        self.assertEqual(error.status, 400)
        self.assertEqual(error.reason, "Missing Content-Length header")
        self.assertIsInstance(error.partial, Request)
        self.assertEqual(parser.feed(self.messages[0]), [])

    def test_rfc4475_3_1_2_3_badContentLength(self) -> None:
        """
        A malformed or ambiguous Content-Length loses the framing (RFC 4475
        sections 3.1.2.3 and 3.3.9).
        """
        for data in (
            request(contentLength="-1"),
            replace(request(body=b"ab"), b"Event:", b"l: 3\r\nEvent:"),
        ):
            [error] = StreamParser().feed(data)
            assert isinstance(error, ParseError)
            self.assertTrue(error.fatal)
            self.assertIn("Content-Length", error.reason)

    def test_badMessageKeepsFraming(self) -> None:
        """
        A well framed but malformed message is a non-fatal error, and the
        messages after it still parse.
        """
        bad = request(cseqMethod="NOTIFY", body=b"xyz")
        items = StreamParser().feed(bad + self.messages[0])
        error, good = items
        assert isinstance(error, ParseError)
        self.assertFalse(error.fatal)
        assert isinstance(error.partial, Request)
        self.assertEqual(error.partial.body, b"xyz")
        self.assertEqual(good, parseMessage(self.messages[0]))

    def test_badStartLineKeepsFraming(self) -> None:
        """
        A bad start line with a good Content-Length is skipped as a whole.
        """
        bad = replace(request(body=b"\r\n\r\n"), b" SIP/2.0", b" SIP/2.0 ")
        items = StreamParser().feed(bad + self.messages[2])
        self.assertEqual(len(items), 2)
        assert isinstance(items[0], ParseError)
        self.assertFalse(items[0].fatal)
        self.assertEqual(items[1], parseMessage(self.messages[2]))

    def test_maxMessageSizeHeaders(self) -> None:
        """
        A header section that does not end within C{maxMessageSize} is a
        fatal 513.
        """
        parser = StreamParser(Limits(maxMessageSize=1000))
        data = request()[:-4]
        self.assertEqual(parser.feed(data), [])
        items = parser.feed(b"X-Pad: " + b"p" * 1000)
        [error] = items
        assert isinstance(error, MessageTooLarge)
        self.assertTrue(error.fatal)
        self.assertEqual(error.status, 513)
        self.assertEqual(parser.feed(b"\r\n\r\n"), [])

    def test_maxMessageSizeBody(self) -> None:
        """
        A Content-Length that would take the message over
        C{maxMessageSize} is a fatal 513 at once, with a partial.
        """
        parser = StreamParser(Limits(maxMessageSize=1000))
        [error] = parser.feed(request(contentLength="100000"))
        assert isinstance(error, MessageTooLarge)
        self.assertTrue(error.fatal)
        self.assertIsInstance(error.partial, Request)

    def test_largeBodyInPieces(self) -> None:
        """
        A body bigger than any chunk is assembled across many feeds.
        """
        body = bytes(range(256)) * 200
        data = request(method="MESSAGE", body=body)
        parser = StreamParser()
        chunks = [data[i : i + 1000] for i in range(0, len(data), 1000)]
        [m] = self.feedAll(parser, chunks)
        assert isinstance(m, Request)
        self.assertEqual(m.body, body)
