# -*- test-case-name: tests.test_headers -*-
"""
Tests for L{sipevents.sip.headers}: typed header values (RFC 3261 section 20 and
25.1, RFC 6665 section 8.2), valid and invalid, and their round trips.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from sipevents.errors import ParseError
from sipevents.sip.headers import (
    WILDCARD,
    ContentType,
    CSeq,
    Event,
    MediaRange,
    NameAddr,
    QuotedValue,
    RetryAfter,
    SubscriptionState,
    Via,
    formatParams,
    isToken,
    parseAccept,
    parseCallId,
    parseContentLength,
    parseContentType,
    parseCSeq,
    parseDeltaSeconds,
    parseEvent,
    parseMaxForwards,
    parseNameAddr,
    parseNameAddrList,
    parseRetryAfter,
    parseSubscriptionState,
    parseTokenList,
    parseVia,
    splitCommaList,
)
from sipevents.sip.uri import SIPURI, AbsoluteURI, TelURI, parseURI


def assertBad(
    testCase: SynchronousTestCase, parse: Callable[[str], object], value: str
) -> ParseError:
    """
    Assert that C{parse(value)} raises L{ParseError} with status 400, naming
    C{value} when it does not; return the error.
    """
    try:
        result = parse(value)
    except ParseError as error:
        testCase.assertEqual(error.status, 400)
        return error
    testCase.fail(f"{value[:200]!r} was accepted as {result!r:.200}")


class SplitCommaListTests(SynchronousTestCase):
    """
    L{splitCommaList} (RFC 3261 section 7.3.1).
    """

    def test_rfc3261_7_3_1_plain(self) -> None:
        """
        Elements are split on commas and stripped; empty ones are dropped.
        """
        self.assertEqual(splitCommaList(" a, b ,c,, ,"), ["a", "b", "c"])
        self.assertEqual(splitCommaList(""), [])

    def test_rfc3261_7_3_1_quotesAndBrackets(self) -> None:
        """
        Commas in quoted strings (with escaped quotes) and in angle brackets
        do not split.
        """
        self.assertEqual(
            splitCommaList('"Doe, \\"J\\"" <sip:a@b>, <sip:c,d@e>;p="x,y", f'),
            ['"Doe, \\"J\\"" <sip:a@b>', '<sip:c,d@e>;p="x,y"', "f"],
        )

    def test_unterminated(self) -> None:
        """
        An unterminated quote or bracket runs to the end (the typed parser
        then rejects it).
        """
        self.assertEqual(splitCommaList('"a, b'), ['"a, b'])
        self.assertEqual(splitCommaList("<sip:a, b"), ["<sip:a, b"])


class ParamTests(SynchronousTestCase):
    """
    Header parameter storage and L{formatParams} (RFC 3261 section 25.1,
    C{generic-param}).
    """

    def test_rfc3261_25_1_quotedValues(self) -> None:
        """
        A quoted value is stored unquoted and unescaped as a L{QuotedValue}
        equal to the plain string, and written back quoted.
        """
        addr = parseNameAddr('<sip:a@b>;x="a \\"b\\" c";+sip.instance="<urn:uuid:1>"')
        self.assertEqual(
            addr.params, (("x", 'a "b" c'), ("+sip.instance", "<urn:uuid:1>"))
        )
        self.assertIsInstance(addr.params[0][1], QuotedValue)
        self.assertEqual(
            str(addr), '<sip:a@b>;x="a \\"b\\" c";+sip.instance="<urn:uuid:1>"'
        )

    def test_rfc3840_9_quotedTokenKept(self) -> None:
        """
        A token value that was quoted stays quoted, as RFC 3840 section 9
        feature parameters require.
        """
        text = '<sip:a@b>;+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel"'
        self.assertEqual(str(parseNameAddr(text)), text)

    def test_formatParams(self) -> None:
        """
        Valueless parameters have no C{=}; values that are not a token or
        host are quoted with C{\\} and C{"} escaped; others are not.
        """
        self.assertEqual(
            formatParams(
                (
                    ("lr", None),
                    ("a", "tok"),
                    ("received", "2001:db8::1"),
                    ("b", "two words"),
                    ("c", 'q"\\'),
                    ("d", ""),
                )
            ),
            ';lr;a=tok;received=2001:db8::1;b="two words";c="q\\"\\\\";d=""',
        )

    def test_rfc3261_25_1_quotedPairsWritten(self) -> None:
        """
        Quotes, backslashes and control characters are written as
        quoted-pairs; CR and LF, which no quoted-pair carries, become spaces
        so that no value can break the header section.
        """
        self.assertEqual(
            formatParams((("x", 'a"b\\c\x00d\te\r\nf'),)),
            ';x="a\\"b\\\\c\\\x00d\te  f"',
        )
        addr = NameAddr("A\r\nB", parseURI("sip:a@example.com"))
        self.assertEqual(str(addr), '"A  B" <sip:a@example.com>')

    def test_rfc3261_7_3_1_paramNameCase(self) -> None:
        """
        Parameter names keep their spelling and are looked up
        case-insensitively.
        """
        addr = parseNameAddr("<sip:a@b>;TAG=x")
        self.assertEqual(addr.params, (("TAG", "x"),))
        self.assertEqual(addr.tag, "x")
        self.assertEqual(addr.param("Tag"), "x")


class ViaTests(SynchronousTestCase):
    """
    L{parseVia} and L{Via} (RFC 3261 section 20.42).
    """

    def test_rfc3261_20_42_typical(self) -> None:
        """
        Protocol, transport, sent-by and parameters are split; rport without
        a value is requested but has no port (RFC 3581 section 3).
        """
        [via] = parseVia("SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK776asdhds;rport")
        self.assertEqual(
            via,
            Via(
                "SIP/2.0",
                "UDP",
                "127.0.0.1",
                5070,
                (("branch", "z9hG4bK776asdhds"), ("rport", None)),
            ),
        )
        self.assertEqual(via.branch, "z9hG4bK776asdhds")
        self.assertEqual(via.sentBy, "127.0.0.1:5070")
        self.assertTrue(via.rportRequested)
        self.assertIsNone(via.rport)
        self.assertIsNone(via.received)
        self.assertEqual(
            str(via), "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK776asdhds;rport"
        )

    def test_rfc3261_18_2_1_receivedRport(self) -> None:
        """
        received, rport, maddr and ttl are read; rport's value is an int.
        """
        [via] = parseVia(
            "SIP/2.0/UDP host.example.com;received=192.0.2.1;rport=5061;"
            "maddr=239.255.255.1;ttl=15;branch=z9hG4bK1"
        )
        self.assertEqual(via.received, "192.0.2.1")
        self.assertEqual(via.rport, 5061)
        self.assertTrue(via.rportRequested)
        self.assertEqual(via.maddr, "239.255.255.1")
        self.assertEqual(via.ttl, 15)
        self.assertIsNone(via.port)
        self.assertEqual(via.sentBy, "host.example.com")

    def test_rfc5118_4_5_ipv6(self) -> None:
        """
        An IPv6 sent-by is stored without brackets and written with them; a
        received parameter may be an IPv6 address or reference (RFC 5118
        section 4.5).
        """
        [via] = parseVia(
            "SIP/2.0/UDP [2001:DB8::9:1]:6050;branch=z9hG4bKas3-111;"
            "received=2001:db8::9:255"
        )
        self.assertEqual((via.host, via.port), ("2001:db8::9:1", 6050))
        self.assertEqual(via.sentBy, "[2001:db8::9:1]:6050")
        self.assertEqual(via.received, "2001:db8::9:255")
        self.assertEqual(parseVia(str(via)), [via])
        [via] = parseVia("SIP/2.0/UDP 192.0.2.1;received=[2001:db8::9:255]")
        self.assertEqual(via.received, "[2001:db8::9:255]")

    def test_rfc4475_3_1_1_1_lws(self) -> None:
        """
        LWS is allowed around C{/}, C{:}, C{;}, C{=} and C{,}, including
        folded lines (RFC 4475 section 3.1.1.1, C{wsinv}); several
        via-parms may share a line.
        """
        vias = parseVia(
            "SIP  / 2.0  / TCP     spindle.example.com   ;\r\n"
            "  branch  =   z9hG4bK9ikj8  ,\r\n"
            " SIP  /    2.0   / UDP  192.168.255.111   ; branch=\r\n"
            " z9hG4bK30239"
        )
        self.assertEqual(
            vias,
            [
                Via(
                    "SIP/2.0",
                    "TCP",
                    "spindle.example.com",
                    None,
                    (("branch", "z9hG4bK9ikj8"),),
                ),
                Via(
                    "SIP/2.0",
                    "UDP",
                    "192.168.255.111",
                    None,
                    (("branch", "z9hG4bK30239"),),
                ),
            ],
        )
        [via] = parseVia("SIP  /   2.0 /UDP    192.0.2.2 : 5060 ;branch=390skdjuw")
        self.assertEqual((via.port, via.branch), (5060, "390skdjuw"))

    def test_rfc4475_3_1_1_10_transports(self) -> None:
        """
        SCTP, TLS-SCTP and unknown transport tokens parse; transports are
        upper-cased (RFC 4475 section 3.1.1.10).
        """
        for transport in ["SCTP", "TLS-SCTP", "UNKNOWN", "ws", "TlS"]:
            [via] = parseVia(f"SIP/2.0/{transport} t.example.com;branch=z9hG4bK1")
            self.assertEqual(via.transport, transport.upper())

    def test_rfc4475_3_1_1_2_branchCharacters(self) -> None:
        """
        A branch may hold every token character (RFC 4475 section 3.1.1.2).
        """
        [via] = parseVia("SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~")
        self.assertEqual(via.branch, "z9hG4bK-.!%66*_+`'~")

    def test_rfc3261_20_42_hostCase(self) -> None:
        """
        Host names are lower-cased, parameter names keep their spelling.
        """
        [via] = parseVia("SIP/2.0/UDP PC33.Example.COM;Branch=z9hG4bK1")
        self.assertEqual(via.host, "pc33.example.com")
        self.assertEqual(via.params, (("Branch", "z9hG4bK1"),))
        self.assertEqual(via.branch, "z9hG4bK1")

    def test_withParam(self) -> None:
        """
        L{Via.withParam} fills in rport's value where it stands and appends
        received (RFC 3581 section 4); the original is unchanged.
        """
        [via] = parseVia("SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bK1")
        stamped = via.withParam("rport", "5070").withParam("received", "10.0.0.9")
        self.assertEqual(
            str(stamped),
            "SIP/2.0/UDP 10.0.0.1:5060;rport=5070;branch=z9hG4bK1;received=10.0.0.9",
        )
        self.assertEqual(stamped.rport, 5070)
        self.assertIsNone(via.rport)
        self.assertEqual(via.param("RPORT"), "")

    def test_withParams(self) -> None:
        """
        L{Via.withParams} sets several parameters as L{Via.withParam} does
        one after the other.
        """
        [via] = parseVia("SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bK1")
        self.assertEqual(
            via.withParams(("rport", "5070"), ("received", "10.0.0.9")),
            via.withParam("rport", "5070").withParam("received", "10.0.0.9"),
        )
        self.assertEqual(via.withParams(), via)

    def test_defaults(self) -> None:
        """
        L{Via} defaults to SIP/2.0 over UDP.
        """
        via = Via(host="example.com", port=5060)
        self.assertEqual(str(via), "SIP/2.0/UDP example.com:5060")

    def test_rfc3261_25_1_bad(self) -> None:
        """
        Malformed Via values raise L{ParseError} C{"Bad Via header"}: empty
        parameters and elements (RFC 4475 section 3.1.2.1, C{badinv01}), a
        missing sent-by, a bad port, a quoted or missing branch, an
        overlarge ttl, a received that is no IP address.
        """
        for value in [
            "SIP/2.0/UDP 192.0.2.15;;,;,,",
            "SIP/2.0/UDP host;",
            "SIP/2.0/UDP host,",
            "SIP/2.0/UDP host,,SIP/2.0/UDP other",
            "SIP/2.0/UDP",
            "SIP/2.0 host",
            "SIP/2.0/UDPhost",
            "SIP/2.0/UDP host:",
            "SIP/2.0/UDP host:99999",
            "SIP/2.0/UDP 999.1.1.1",
            "SIP/2.0/UDP [2001:db8:::1]",
            "SIP/2.0/UDP host;branch",
            'SIP/2.0/UDP host;branch="z9hG4bK1"',
            "SIP/2.0/UDP host;ttl=256",
            "SIP/2.0/UDP host;ttl",
            "SIP/2.0/UDP host;rport=x",
            "SIP/2.0/UDP host;rport=65536",
            "SIP/2.0/UDP host;received=example.com",
            "SIP/2.0/UDP host;maddr",
            "SIP/2.0/UDP host extra",
            "SIP/2.0/UDP host;x=a b",
            "",
        ]:
            error = assertBad(self, parseVia, value)
            self.assertIn("Bad Via header", error.reason)

    def test_errorReasonIsSafe(self) -> None:
        """
        The reason of a parse error becomes a reason phrase: control
        characters are escaped and long values cut short.
        """
        error = assertBad(self, parseVia, "SIP/2.0/UDP host;x=\r\n\x01" + "y" * 200)
        reason = error.reason
        self.assertNotIn("\r", reason)
        self.assertNotIn("\n", reason)
        self.assertLess(len(reason), 120)


class CSeqTests(SynchronousTestCase):
    """
    L{parseCSeq} (RFC 3261 section 20.16).
    """

    def test_rfc3261_20_16_parse(self) -> None:
        """
        Number and method; leading zeros and LWS are allowed (RFC 4475
        section 3.1.1.1).
        """
        self.assertEqual(parseCSeq("4711 INVITE"), CSeq(4711, "INVITE"))
        self.assertEqual(parseCSeq("0009\r\n  INVITE"), CSeq(9, "INVITE"))
        self.assertEqual(parseCSeq(" 1 SUBSCRIBE "), CSeq(1, "SUBSCRIBE"))
        self.assertEqual(str(CSeq(7, "NOTIFY")), "7 NOTIFY")
        self.assertEqual(parseCSeq(str(CSeq(2**31 - 1, "X"))), CSeq(2**31 - 1, "X"))

    def test_rfc4475_3_1_1_2_tokenMethod(self) -> None:
        """
        Any token is a method (RFC 4475 section 3.1.1.2).
        """
        cseq = parseCSeq("139122385 !interesting-Method0123456789_*+`.%indeed'~")
        self.assertEqual(cseq.method, "!interesting-Method0123456789_*+`.%indeed'~")

    def test_rfc3261_8_1_1_5_bad(self) -> None:
        """
        2**31 and more (RFC 3261 section 8.1.1.5; RFC 4475 section 3.1.2.4),
        a missing method or number, non-digits, no LWS are errors.
        """
        for value in [
            "2147483648 INVITE",
            "36893488147419103232 REGISTER",
            "9" * 5000 + " INVITE",
            "INVITE",
            "1",
            "-1 INVITE",
            "1INVITE",
            "1 INVITE BYE",
            "1 INV@TE",
            "١ INVITE",
        ]:
            error = assertBad(self, parseCSeq, value)
            self.assertIn("Bad CSeq header", error.reason)


class CallIdTests(SynchronousTestCase):
    """
    L{parseCallId} (RFC 3261 section 20.8).
    """

    def test_rfc3261_20_8_parse(self) -> None:
        """
        C{word ["@" word]}, as written, surrounding LWS removed.
        """
        self.assertEqual(
            parseCallId(" f81d4fae-7dec-11d0-a765-00a0c91e6bf6@foo.bar.com "),
            "f81d4fae-7dec-11d0-a765-00a0c91e6bf6@foo.bar.com",
        )
        self.assertEqual(parseCallId("abc"), "abc")

    def test_rfc4475_3_1_1_2_wordCharacters(self) -> None:
        """
        Every word character is allowed, without any grouping semantics
        (RFC 4475 section 3.1.1.2).
        """
        value = "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
        self.assertEqual(parseCallId(value), value)

    def test_rfc3261_20_8_bad(self) -> None:
        """
        Empty, spaces inside, two C{@}, or non-word characters are errors.
        """
        for value in ["", "a b", "a@b@c", "@b", "a@", "a;b", "a,b", "caf\u00e9"]:
            assertBad(self, parseCallId, value)


class NumberTests(SynchronousTestCase):
    """
    L{parseDeltaSeconds}, L{parseContentLength}, L{parseMaxForwards}.
    """

    def test_rfc3261_20_19_deltaSeconds(self) -> None:
        """
        0 to 2**32-1, LWS around, leading zeros allowed.
        """
        self.assertEqual(parseDeltaSeconds(" 3600 "), 3600)
        self.assertEqual(parseDeltaSeconds("0"), 0)
        self.assertEqual(parseDeltaSeconds(str(2**32 - 1)), 2**32 - 1)
        self.assertEqual(parseDeltaSeconds("007"), 7)

    def test_rfc4475_3_1_2_4_overlarge(self) -> None:
        """
        Values over their range are errors (RFC 4475 section 3.1.2.4):
        Expires over 2**32-1, Max-Forwards over 255.
        """
        for parse, value in [
            (parseDeltaSeconds, str(2**32)),
            (parseDeltaSeconds, "1" + "0" * 100),
            (parseDeltaSeconds, "9" * 5000),
            (parseMaxForwards, "256"),
            (parseMaxForwards, "300"),
            (parseContentLength, "9" * 5000),
        ]:
            assertBad(self, parse, value)

    def test_rfc4475_3_1_2_3_negativeContentLength(self) -> None:
        """
        A negative or non-numeric Content-Length is an error (RFC 4475
        section 3.1.2.3).
        """
        for value in ["-999", "five", "", "1 2", "+1", "1.0", "0x10"]:
            error = assertBad(self, parseContentLength, value)
            self.assertIn("Content-Length", error.reason)

    def test_rfc3261_20_22_maxForwards(self) -> None:
        """
        Max-Forwards from 0 to 255, leading zeros allowed (RFC 4475 section
        3.1.1.1).
        """
        self.assertEqual(parseMaxForwards("0068"), 68)
        self.assertEqual(parseMaxForwards("0"), 0)
        self.assertEqual(parseMaxForwards("255"), 255)
        self.assertEqual(parseContentLength(" 150 "), 150)


class NameAddrTests(SynchronousTestCase):
    """
    L{parseNameAddr} and L{NameAddr} (RFC 3261 section 20.10, 20.20, 20.39,
    25.1).
    """

    def assertRoundTrip(self, addr: NameAddr) -> None:
        """
        C{parseNameAddr(str(addr)) == addr}.
        """
        self.assertEqual(parseNameAddr(str(addr)), addr)

    def test_rfc3261_20_20_quotedDisplayName(self) -> None:
        """
        A quoted display name, a bracketed URI and a tag.
        """
        addr = parseNameAddr('"Bob" <sips:bob@biloxi.com> ;tag=a48s')
        self.assertEqual(
            addr,
            NameAddr(
                "Bob", SIPURI("sips", "bob", None, "biloxi.com"), (("tag", "a48s"),)
            ),
        )
        self.assertEqual(addr.tag, "a48s")
        self.assertEqual(str(addr), '"Bob" <sips:bob@biloxi.com>;tag=a48s')
        self.assertRoundTrip(addr)

    def test_rfc3261_20_10_uriParamsVersusHeaderParams(self) -> None:
        """
        Inside angle brackets, C{;params} belong to the URI; after them, to
        the header.
        """
        addr = parseNameAddr("<sip:alice@atlanta.com;transport=tcp>;expires=60")
        assert isinstance(addr.uri, SIPURI)
        self.assertEqual(addr.uri.params, (("transport", "tcp"),))
        self.assertEqual(addr.params, (("expires", "60"),))
        self.assertIsNone(addr.displayName)
        self.assertTrue(addr.bracketed)
        self.assertRoundTrip(addr)

    def test_rfc3261_20_addrSpecParamsBelongToHeader(self) -> None:
        """
        Without angle brackets, C{;params} are header parameters, not URI
        parameters (RFC 3261 section 20; RFC 4475 section 3.3.12,
        C{cparam01}).
        """
        addr = parseNameAddr("sip:+19725552222@gw1.example.net;unknownparam;tag=1")
        self.assertEqual(
            addr.uri, SIPURI("sip", "+19725552222", None, "gw1.example.net")
        )
        self.assertEqual(addr.params, (("unknownparam", None), ("tag", "1")))
        self.assertFalse(addr.bracketed)
        self.assertEqual(
            str(addr), "sip:+19725552222@gw1.example.net;unknownparam;tag=1"
        )
        self.assertRoundTrip(addr)

    def test_rfc4475_3_1_1_1_lws(self) -> None:
        """
        LWS around C{;} and C{=}, and between the display name and C{<}
        (RFC 4475 section 3.1.1.1, C{wsinv}).
        """
        addr = parseNameAddr(
            "\r\n sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n"
        )
        self.assertEqual(addr.tag, "1918181833n")
        self.assertFalse(addr.bracketed)
        addr = parseNameAddr(
            '"J Rosenberg \\\\\\""       <sip:jdrosen@example.com>\r\n'
            "  ;\r\n  tag = 98asjd8"
        )
        self.assertEqual(addr.displayName, 'J Rosenberg \\"')
        self.assertEqual(addr.tag, "98asjd8")
        self.assertRoundTrip(addr)

    def test_rfc4475_3_1_1_2_tokenDisplayName(self) -> None:
        """
        A display name of several tokens of all token characters, and a
        header parameter with a UTF-8 quoted value (RFC 4475 section
        3.1.1.2).
        """
        addr = parseNameAddr(
            "token1~` token2'+_ token3*%!.- <sip:mundane@example.com>"
            ";fromParam''~+*_!.-%=\"\u0440\u0430\u0431\u043e\u0442\u0430\u044e"
            "\u0449\u0438\u0439\";tag=_token~1'+`*%!-."
        )
        self.assertEqual(addr.displayName, "token1~` token2'+_ token3*%!.-")
        self.assertEqual(
            addr.param("fromparam''~+*_!.-%"),
            "\u0440\u0430\u0431\u043e\u0442\u0430\u044e\u0449\u0438\u0439",
        )
        self.assertEqual(addr.tag, "_token~1'+`*%!-.")
        self.assertRoundTrip(addr)

    def test_rfc4475_3_1_1_2_quotedPairs(self) -> None:
        """
        Quoted pairs in a display name, including control characters and
        NUL, are resolved (RFC 4475 section 3.1.1.2).
        """
        addr = parseNameAddr('"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" <sip:a@example.com>')
        self.assertEqual(addr.displayName, "BEL:\x07 NUL:\x00 DEL:\x7f")

    def test_rfc4475_3_1_1_5_percentInDisplayName(self) -> None:
        """
        C{%} is no escape in a display name (RFC 4475 section 3.1.1.5).
        """
        addr = parseNameAddr('"%Z%45" <sip:resource@example.com>')
        self.assertEqual(addr.displayName, "%Z%45")

    def test_rfc4475_3_1_1_6_noLWSBeforeBracket(self) -> None:
        """
        A token display name directly followed by C{<} is accepted (RFC 4475
        section 3.1.1.6, C{lwsdisp}).
        """
        addr = parseNameAddr("caller<sip:caller@example.com>;tag=323")
        self.assertEqual(addr.displayName, "caller")
        self.assertEqual(addr.tag, "323")

    def test_rfc3261_25_1_utf8DisplayName(self) -> None:
        """
        A quoted display name may hold UTF-8 text; an empty quoted display
        name is kept as C{""}.
        """
        addr = parseNameAddr('"J\u00fcrgen \u5f20" <sip:j@example.com>')
        self.assertEqual(addr.displayName, "J\u00fcrgen \u5f20")
        self.assertRoundTrip(addr)
        empty = parseNameAddr('"" <sip:j@example.com>')
        self.assertEqual(empty.displayName, "")
        self.assertEqual(str(empty), '"" <sip:j@example.com>')

    def test_rfc3261_25_1_tokenDisplayNameWords(self) -> None:
        """
        Token display names of several words are joined by single spaces;
        C{A. Bell} is made of tokens (RFC 4475 section 3.1.2.16).
        """
        addr = parseNameAddr("A.  Bell\t<sip:a.g.bell@example.com>;tag=qweoiqpe")
        self.assertEqual(addr.displayName, "A. Bell")
        self.assertEqual(str(addr), '"A. Bell" <sip:a.g.bell@example.com>;tag=qweoiqpe')

    def test_rfc4475_3_3_4_otherSchemes(self) -> None:
        """
        Other URI schemes, bracketed or not (RFC 4475 section 3.3.4,
        C{unksm2}); a tel URI's parameters outside brackets are header
        parameters.
        """
        self.assertEqual(
            parseNameAddr("isbn:2983792873").uri, AbsoluteURI("isbn", "2983792873")
        )
        addr = parseNameAddr("<http://www.example.com>;tag=3234233")
        self.assertEqual(addr.uri, AbsoluteURI("http", "//www.example.com"))
        self.assertEqual(addr.tag, "3234233")
        addr = parseNameAddr("tel:+1234;tag=x")
        self.assertEqual(addr.uri, TelURI("+1234"))
        self.assertEqual(addr.tag, "x")

    def test_rfc3261_20_10_bracketsWhenNeeded(self) -> None:
        """
        C{str()} brackets the URI when there is a display name or the URI
        holds C{;}, C{?} or C{,}, even if C{bracketed} is false.
        """
        uri = parseURI("sip:a@example.com;lr")
        self.assertEqual(str(NameAddr(None, uri, (), False)), "<sip:a@example.com;lr>")
        self.assertEqual(
            str(NameAddr("A", parseURI("sip:a@example.com"), (), False)),
            '"A" <sip:a@example.com>',
        )

    def test_withParam(self) -> None:
        """
        L{NameAddr.withParam} adds a tag (RFC 3261 section 8.2.6.2) or
        replaces one; L{NameAddr.withoutParam} removes it.
        """
        addr = parseNameAddr("<sip:bob@example.com>")
        self.assertIsNone(addr.tag)
        tagged = addr.withParam("tag", "abc")
        self.assertEqual(str(tagged), "<sip:bob@example.com>;tag=abc")
        self.assertEqual(
            str(tagged.withParam("TAG", "x")), "<sip:bob@example.com>;tag=x"
        )
        self.assertEqual(tagged.withoutParam("Tag"), addr)

    def test_rfc3261_25_1_bad(self) -> None:
        """
        Malformed values: an unterminated quote (RFC 4475 section 3.1.2.6),
        spaces inside the brackets (3.1.2.14), unquoted non-token display
        names (3.1.2.15), a URI with C{?} not in brackets (3.1.2.13,
        RFC 3261 section 20.10), empty parameters (3.1.2.1), garbage after
        the value, bad URIs.
        """
        for value in [
            '"Mr. J. User <sip:j.user@example.com>',
            '"Mr J. User <sip:j.user@example.com> <sip:realj@example.net>',
            '"Watson, Thomas" < sip:t.watson@example.org >',
            "<sip:a @example.org>",
            "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
            "J\u00fcrgen <sip:j@example.com>",
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            '"Joe" <sip:joe@example.org>;;;;',
            "<sip:a@example.com>;tag",
            "<sip:a@example.com>;tag=",
            "<sip:a@example.com> x",
            "<sip:a@example.com>,<sip:b@example.com>",
            "<sip:a@example.com",
            "sip:a@example.com>",
            "<>",
            "",
            "<not a uri>",
            "<sip:a@example.com>;x=a b",
            '<sip:a@example.com>;x="unterminated',
        ]:
            error = assertBad(self, parseNameAddr, value)
            self.assertIn("Bad", error.reason)


class NameAddrListTests(SynchronousTestCase):
    """
    L{parseNameAddrList} (RFC 3261 section 20.10, 20.30, 20.34).
    """

    def test_rfc3261_20_10_several(self) -> None:
        """
        Comma-separated values, with commas inside quotes and quoted values
        not splitting.
        """
        addrs = parseNameAddrList(
            '"Mr. Watson, Sr." <sip:watson@worcester.bell-telephone.com>'
            ";q=0.7; expires=3600, "
            '"Mr. Watson" <mailto:watson@bell-telephone.com> ;q=0.1,'
            ' <sip:c@example.com>;methods="INVITE,BYE"'
        )
        self.assertEqual(len(addrs), 3)
        self.assertEqual(addrs[0].displayName, "Mr. Watson, Sr.")
        self.assertEqual(addrs[0].param("q"), "0.7")
        self.assertEqual(addrs[0].param("expires"), "3600")
        self.assertEqual(
            addrs[1].uri, AbsoluteURI("mailto", "watson@bell-telephone.com")
        )
        self.assertEqual(addrs[2].param("methods"), "INVITE,BYE")

    def test_rfc4475_3_1_1_1_contact(self) -> None:
        """
        The contact of C{wsinv} (RFC 4475 section 3.1.1.1).
        """
        [addr] = parseNameAddrList(
            'm:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =\r\n'
            "      newvalue ;\r\n  secondparam ; q = 0.33"[2:]
        )
        self.assertEqual(addr.displayName, 'Quoted string ""')
        self.assertEqual(
            addr.params,
            (("newparam", "newvalue"), ("secondparam", None), ("q", "0.33")),
        )

    def test_rfc3261_20_34_routes(self) -> None:
        """
        Route values with lr (RFC 4475 section 3.1.1.1).
        """
        [route] = parseNameAddrList(
            "\r\n <sip:services.example.com;lr;unknownwith=value;unknown-no-value>"
        )
        assert isinstance(route.uri, SIPURI)
        self.assertTrue(route.uri.hasParam("lr"))
        self.assertEqual(route.uri.param("unknown-no-value"), "")

    def test_rfc3261_10_2_2_wildcard(self) -> None:
        """
        C{*} alone is the wildcard, which formats as C{*}.
        """
        self.assertEqual(parseNameAddrList(" * "), [WILDCARD])
        self.assertEqual(str(WILDCARD), "*")

    def test_rfc4475_3_3_14_escapedHeaderInBrackets(self) -> None:
        """
        A URI with headers is fine inside brackets (RFC 4475 section
        3.3.14).
        """
        [addr] = parseNameAddrList(
            "<sip:user@example.com?Route=%3Csip:sip.example.com%3E>"
        )
        assert isinstance(addr.uri, SIPURI)
        self.assertEqual(addr.uri.headers, (("Route", "%3Csip:sip.example.com%3E"),))

    def test_roundTrip(self) -> None:
        """
        Each element round-trips through C{str()}.
        """
        for addr in parseNameAddrList(
            '<sip:a@example.com>;expires=10, "B" <sip:b@[::1]:5060;transport=tcp>;q=1'
            ', sip:c@example.com;+sip.instance="<urn:uuid:x>"'
        ):
            self.assertEqual(parseNameAddrList(str(addr)), [addr])

    def test_rfc3261_20_10_bad(self) -> None:
        """
        Empty elements, a wildcard among others, a non-token display name
        split by a comma (RFC 4475 section 3.1.2.15), bad values.
        """
        for value in [
            "<sip:a@example.com>,",
            ",<sip:a@example.com>",
            "<sip:a@example.com>,,<sip:b@example.com>",
            "*, <sip:a@example.com>",
            "*;expires=0",
            "Bell, Alexander <sip:a.g.bell@example.com>",
            "<sip:a@example.com> <sip:b@example.com>",
            "",
        ]:
            assertBad(self, parseNameAddrList, value)


class ContentTypeTests(SynchronousTestCase):
    """
    L{parseContentType} (RFC 3261 section 20.15).
    """

    def test_rfc3261_20_15_parse(self) -> None:
        """
        Type and subtype are lower-cased; parameters are kept, quoted ones
        unquoted.
        """
        ctype = parseContentType(
            'Multipart/Mixed ; boundary="unique-boundary-1";charset=UTF-8'
        )
        self.assertEqual(
            ctype,
            ContentType(
                "multipart",
                "mixed",
                (("boundary", "unique-boundary-1"), ("charset", "UTF-8")),
            ),
        )
        self.assertEqual(ctype.mimeType, "multipart/mixed")
        self.assertEqual(ctype.param("Boundary"), "unique-boundary-1")
        self.assertEqual(parseContentType(str(ctype)), ctype)
        self.assertEqual(
            parseContentType("application/pidf+xml").mimeType, "application/pidf+xml"
        )

    def test_rfc3261_25_1_bad(self) -> None:
        """
        A missing subtype, a parameter without a value, non-token types.
        """
        for value in [
            "application",
            "application/",
            "/sdp",
            "application/sdp;charset",
            "application/sdp;",
            "app lication/sdp",
            "application/sdp extra",
            "",
        ]:
            error = assertBad(self, parseContentType, value)
            self.assertIn("Bad Content-Type header", error.reason)


class AcceptTests(SynchronousTestCase):
    """
    L{parseAccept} and L{MediaRange} (RFC 3261 section 20.1).
    """

    def test_rfc3261_20_1_parse(self) -> None:
        """
        Media ranges with q values (1 when absent) and parameters; LWS and
        folded lines between elements (RFC 4475 section 3.1.1.9).
        """
        ranges = parseAccept(
            "application/sdp, application/pkcs7-mime,\r\n"
            "        multipart/mixed;q=0.5, text/*;level=1;q=0, */*;q=0.001"
        )
        self.assertEqual(
            ranges,
            [
                MediaRange("application", "sdp"),
                MediaRange("application", "pkcs7-mime"),
                MediaRange("multipart", "mixed", (), 0.5),
                MediaRange("text", "*", (("level", "1"),), 0.0),
                MediaRange("*", "*", (), 0.001),
            ],
        )
        for mediaRange in ranges:
            self.assertEqual(parseAccept(str(mediaRange)), [mediaRange])

    def test_rfc3261_20_1_empty(self) -> None:
        """
        An empty Accept is allowed and accepts nothing.
        """
        self.assertEqual(parseAccept(""), [])
        self.assertEqual(parseAccept("  "), [])

    def test_matches(self) -> None:
        """
        C{*/*} matches everything, C{type/*} its subtypes, others exactly
        (case-insensitively).
        """
        self.assertTrue(MediaRange("*", "*").matches("application/sdp"))
        self.assertTrue(MediaRange("application", "*").matches("Application/PIDF+xml"))
        self.assertFalse(MediaRange("application", "*").matches("text/plain"))
        self.assertTrue(
            MediaRange("application", "pidf+xml").matches("application/pidf+xml")
        )
        self.assertFalse(
            MediaRange("application", "pidf+xml").matches("application/sdp")
        )

    def test_rfc3261_25_1_bad(self) -> None:
        """
        Bad q values, C{*/subtype}, empty elements, missing subtypes.
        """
        for value in [
            "text/plain;q=2",
            "text/plain;q=1.5",
            "text/plain;q=0.1234",
            "text/plain;q=x",
            "text/plain;q",
            "*/plain",
            "text/plain,",
            "text/plain,,text/html",
            "text",
        ]:
            error = assertBad(self, parseAccept, value)
            self.assertIn("Bad Accept header", error.reason)


class EventTests(SynchronousTestCase):
    """
    L{parseEvent} (RFC 6665 section 8.2.1).
    """

    def test_rfc6665_8_2_1_package(self) -> None:
        """
        A bare package name.
        """
        event = parseEvent("presence")
        self.assertEqual(event, Event("presence"))
        self.assertEqual(event.eventType, "presence")
        self.assertIsNone(event.id)
        self.assertEqual(str(event), "presence")

    def test_rfc6665_7_2_templatesAndId(self) -> None:
        """
        Templates follow dots; the id parameter is separate from the others;
        LWS is allowed around C{;} and C{=}.
        """
        event = parseEvent("presence.winfo ; id = 1234 ;Foo=bar")
        self.assertEqual(event.package, "presence")
        self.assertEqual(event.templates, ("winfo",))
        self.assertEqual(event.eventType, "presence.winfo")
        self.assertEqual(event.id, "1234")
        self.assertEqual(event.param("ID"), "1234")
        self.assertEqual(event.params, (("Foo", "bar"),))
        self.assertEqual(event.param("foo"), "bar")
        self.assertEqual(str(event), "presence.winfo;id=1234;Foo=bar")
        self.assertEqual(parseEvent(str(event)), event)

    def test_rfc6665_8_4_caseKept(self) -> None:
        """
        Event types are kept as written (RFC 6665 section 8.4 tokens).
        """
        self.assertEqual(parseEvent("Message-Summary").package, "Message-Summary")

    def test_rfc6665_8_4_bad(self) -> None:
        """
        Empty package or template names, a valueless, quoted or repeated
        id, a non-token event type.
        """
        for value in [
            "",
            ".winfo",
            "presence.",
            "presence..winfo",
            "presence;id",
            'presence;id="1"',
            "presence;id=1;id=2",
            "pres ence",
            "presence;",
            "presence/x",
        ]:
            error = assertBad(self, parseEvent, value)
            self.assertIn("Bad Event header", error.reason)


class TokenListTests(SynchronousTestCase):
    """
    L{parseTokenList}: Allow, Allow-Events, Require, Supported ... (RFC
    3261 section 20, RFC 6665 section 8.2.2).
    """

    def test_rfc3261_20_parse(self) -> None:
        """
        Tokens separated by commas with LWS.
        """
        self.assertEqual(
            parseTokenList("INVITE, ACK,\r\n OPTIONS ,SUBSCRIBE"),
            ["INVITE", "ACK", "OPTIONS", "SUBSCRIBE"],
        )
        self.assertEqual(
            parseTokenList("presence, presence.winfo, message-summary"),
            ["presence", "presence.winfo", "message-summary"],
        )

    def test_rfc3261_20_37_empty(self) -> None:
        """
        An empty value is an empty list (RFC 3261 section 20.5 and 20.37).
        """
        self.assertEqual(parseTokenList(""), [])
        self.assertEqual(parseTokenList(" "), [])

    def test_rfc3261_25_1_bad(self) -> None:
        """
        Empty elements and non-tokens are errors.
        """
        for value in ["a,,b", "a,", "a b", "a;b", '"a"']:
            assertBad(self, parseTokenList, value)


class SubscriptionStateTests(SynchronousTestCase):
    """
    L{parseSubscriptionState} (RFC 6665 section 8.2.3, 4.1.3).
    """

    def test_rfc6665_4_1_3_active(self) -> None:
        """
        C{active;expires=N}.
        """
        state = parseSubscriptionState("active;expires=3599")
        self.assertEqual(state, SubscriptionState("active", None, 3599))
        self.assertEqual(str(state), "active;expires=3599")

    def test_rfc6665_4_1_3_terminated(self) -> None:
        """
        The state and the reason are lower-cased; retry-after is a number;
        extension parameters are kept.
        """
        state = parseSubscriptionState(
            'Terminated ; Reason = Timeout ; retry-after=30;x-foo="b a r"'
        )
        self.assertEqual(state.state, "terminated")
        self.assertEqual(state.reason, "timeout")
        self.assertEqual(state.retryAfter, 30)
        self.assertIsNone(state.expires)
        self.assertEqual(state.param("X-FOO"), "b a r")
        self.assertEqual(parseSubscriptionState(str(state)), state)

    def test_rfc6665_8_4_extensionState(self) -> None:
        """
        Unknown states and reasons are tokens that parse.
        """
        state = parseSubscriptionState("waiting;reason=whatever")
        self.assertEqual((state.state, state.reason), ("waiting", "whatever"))

    def test_rfc6665_8_4_bad(self) -> None:
        """
        Non-numeric or overlarge expires, empty reason, missing state.
        """
        for value in [
            "",
            "active;expires=soon",
            "active;expires",
            f"active;expires={2**32}",
            "terminated;reason",
            'terminated;reason="timeout"',
            "terminated;retry-after=-1",
            "active pending",
            ";expires=1",
        ]:
            error = assertBad(self, parseSubscriptionState, value)
            self.assertIn("Bad Subscription-State header", error.reason)


class RetryAfterTests(SynchronousTestCase):
    """
    L{parseRetryAfter} (RFC 3261 section 20.33).
    """

    def test_rfc3261_20_33_parse(self) -> None:
        """
        Seconds, an optional comment, duration and other parameters.
        """
        self.assertEqual(parseRetryAfter("120"), RetryAfter(120))
        retry = parseRetryAfter("18000;duration=3600")
        self.assertEqual((retry.seconds, retry.duration), (18000, 3600))
        retry = parseRetryAfter("120 (I'm in a meeting (really))  ;x=y")
        self.assertEqual(retry.comment, "I'm in a meeting (really)")
        self.assertEqual(retry.params, (("x", "y"),))
        self.assertEqual(str(retry), "120 (I'm in a meeting (really));x=y")
        self.assertEqual(parseRetryAfter(str(retry)), retry)

    def test_rfc4475_3_1_2_5_bad(self) -> None:
        """
        Overlarge values (RFC 4475 section 3.1.2.5), unterminated comments,
        bad durations.
        """
        for value in [
            "949302838503028349304023988",
            "10 (unterminated",
            "10;duration=x",
            "10;duration",
            "x",
            "",
            "10 20",
        ]:
            error = assertBad(self, parseRetryAfter, value)
            self.assertIn("Bad Retry-After header", error.reason)


class HostileInputTests(SynchronousTestCase):
    """
    Long hostile values are rejected in linear time.
    """

    def test_noBacktracking(self) -> None:
        """
        No parser backtracks catastrophically on long runs of tokens,
        quotes, semicolons, escapes, brackets or commas (most are
        rejected; a run of quotes is a valid Call-ID).
        """
        n = 20000
        values = [
            "a " * n,
            "a " * n + "<",
            '"' * n,
            "<sip:a@example.com>" + ";" * n,
            "<sip:a@example.com>" + ";a" * n + " x",
            "<sip:a@example.com>" + " ; a = b" * n + " ;",
            '"' + "\\" * n,
            "<" * n,
            "," * n,
            "sip:" + "a" * n + "@",
            "SIP/2.0/UDP " + "a-1" * n + "-",
            "SIP/2.0/UDP h;maddr=" + "a-1" * n + "-",
            "1 " + "(" * n,
        ]
        parsers: list[Callable[[str], object]] = [
            parseNameAddr,
            parseNameAddrList,
            parseVia,
            parseAccept,
            parseEvent,
            parseSubscriptionState,
            parseRetryAfter,
            parseContentType,
            parseTokenList,
            parseCallId,
            parseCSeq,
        ]
        for value in values:
            for parse in parsers:
                start = time.perf_counter()
                try:
                    parse(value)
                except ParseError:
                    pass
                self.assertLess(
                    time.perf_counter() - start, 1.0, f"{parse.__name__} {value[:30]}"
                )
            start = time.perf_counter()
            splitCommaList(value)
            self.assertLess(time.perf_counter() - start, 1.0, value[:30])


_alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_tokens = st.text(alphabet=_alnum + "-.!%*_+`'~", min_size=1, max_size=10)
_labels = st.from_regex(r"[a-z]([a-z0-9-]{0,6}[a-z0-9])?", fullmatch=True)
_hosts = (
    st.lists(_labels, min_size=1, max_size=3).map(".".join)
    | st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
    | st.ip_addresses(v=6).map(str)
)
_extensionNames = _tokens.filter(
    lambda n: n.lower() not in {"branch", "rport", "ttl", "received", "maddr"}
)
#: Any text but CR and LF, which a quoted-string cannot carry.
_texts = st.text(max_size=10).filter(lambda t: "\r" not in t and "\n" not in t)
_paramValues = st.none() | _tokens | _texts.map(QuotedValue) | _texts
_vias = st.builds(
    Via,
    protocol=st.just("SIP/2.0"),
    transport=st.sampled_from(["UDP", "TCP", "TLS", "SCTP", "TLS-SCTP", "WS"]),
    host=_hosts,
    port=st.none() | st.integers(0, 65535),
    params=st.tuples(
        st.tuples(st.just("branch"), _tokens.map(lambda t: "z9hG4bK" + t)),
    ).map(tuple)
    | st.lists(st.tuples(_extensionNames, _paramValues), max_size=3).map(tuple),
)


class HeaderPropertyTests(SynchronousTestCase):
    """
    Property tests: Via values and header parameters round-trip.
    """

    @settings(max_examples=300, deadline=None)
    @given(st.lists(_vias, min_size=1, max_size=3))
    def test_rfc3261_20_42_viaRoundTrip(self, vias: list[Via]) -> None:
        """
        C{parseVia(str(v)) == [v]}, and a line of several vias joined with
        commas gives them all back in order.
        """
        for via in vias:
            self.assertEqual(parseVia(str(via)), [via])
        self.assertEqual(parseVia(", ".join(map(str, vias))), vias)

    @settings(max_examples=200, deadline=None)
    @given(
        st.none() | _texts,
        st.lists(
            st.tuples(_tokens.filter(lambda n: n.lower() != "tag"), _paramValues)
            | st.tuples(st.just("tag"), _tokens),
            max_size=3,
        ).map(tuple),
    )
    def test_rfc3261_25_1_nameAddrRoundTrip(
        self, displayName: str | None, params: tuple[tuple[str, str | None], ...]
    ) -> None:
        """
        Any display name and any parameter values survive C{str()} and
        L{parseNameAddr}.
        """
        addr = NameAddr(displayName, parseURI("sip:alice@example.com"), params)
        self.assertEqual(parseNameAddr(str(addr)), addr)


class TokenTests(SynchronousTestCase):
    """
    L{isToken}: the one C{token} rule (RFC 3261 section 25.1).
    """

    def test_rfc3261_25_1_token(self) -> None:
        """
        Alphanumerics and C{-.!%*_+`'~} make a token; anything else, white
        space, separators, non-ASCII letters and the empty string included,
        does not.
        """
        self.assertTrue(isToken("presence.winfo"))
        self.assertTrue(isToken("a-.!%*_+`'~Z9"))
        for text in ("", "a b", "a;b", "a=b", '"a"', "é", "a\n", "a,b", "(a)"):
            self.assertFalse(isToken(text), text)
