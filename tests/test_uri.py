# -*- test-case-name: tests.test_uri -*-
"""
Tests for L{sipevents.sip.uri}: SIP, SIPS, tel and other absolute URIs (RFC 3261
section 19.1 and 25.1, RFC 3966), their text form and their comparison.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from sipevents.errors import ParseError
from sipevents.sip.uri import (
    SIPURI,
    URI,
    AbsoluteURI,
    TelURI,
    formatURI,
    parseURI,
    uriEquals,
)


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


class SIPURIParseTests(SynchronousTestCase):
    """
    L{parseURI} on SIP and SIPS URIs (RFC 3261 section 19.1.1 and 25.1).
    """

    def assertRoundTrip(self, uri: URI) -> None:
        """
        C{parseURI(formatURI(uri)) == uri}.
        """
        self.assertEqual(parseURI(formatURI(uri)), uri)

    def test_rfc3261_19_1_1_minimal(self) -> None:
        """
        A host alone is a SIP URI: no user, no port, no parameters.
        """
        uri = parseURI("sip:example.com")
        self.assertEqual(uri, SIPURI("sip", None, None, "example.com"))
        self.assertRoundTrip(uri)

    def test_rfc3261_19_1_1_userHostPort(self) -> None:
        """
        User, host and port are split; the port is an L{int}.
        """
        uri = parseURI("sip:alice@atlanta.com:5070")
        self.assertEqual(uri, SIPURI("sip", "alice", None, "atlanta.com", 5070))
        self.assertRoundTrip(uri)

    def test_rfc3261_19_1_1_password(self) -> None:
        """
        C{user:password@host} keeps the password (RFC 3261 section 19.1.1,
        NOT RECOMMENDED but valid).
        """
        uri = parseURI("sip:alice:secretword@atlanta.com;transport=tcp")
        assert isinstance(uri, SIPURI)
        self.assertEqual(uri.user, "alice")
        self.assertEqual(uri.password, "secretword")
        self.assertEqual(uri.transport, "TCP")
        self.assertRoundTrip(uri)

    def test_rfc3261_19_1_1_emptyPassword(self) -> None:
        """
        C{user:@host} has an empty password, not none.
        """
        uri = parseURI("sip:alice:@atlanta.com")
        assert isinstance(uri, SIPURI)
        self.assertEqual(uri.password, "")
        self.assertRoundTrip(uri)

    def test_rfc3261_19_1_1_schemeAndHostCase(self) -> None:
        """
        The scheme and host name are case-insensitive and stored lower
        case; the user part keeps its case (RFC 3261 section 19.1.4).
        """
        uri = parseURI("SIPS:Alice@AtLanTa.CoM")
        self.assertEqual(uri, SIPURI("sips", "Alice", None, "atlanta.com"))

    def test_rfc3261_19_1_1_ipv4(self) -> None:
        """
        An IPv4 address is a host.
        """
        uri = parseURI("sip:alice@192.0.2.4:5060")
        assert isinstance(uri, SIPURI)
        self.assertEqual((uri.host, uri.port), ("192.0.2.4", 5060))
        self.assertEqual(uri.hostport, "192.0.2.4:5060")

    def test_rfc3261_25_1_ipv6Reference(self) -> None:
        """
        An IPv6 reference is stored without brackets, and written with
        them; a port may follow (RFC 3261 section 25.1, RFC 5118 section
        4.2).
        """
        uri = parseURI("sip:alice@[2001:DB8::1]:5060")
        assert isinstance(uri, SIPURI)
        self.assertEqual((uri.host, uri.port), ("2001:db8::1", 5060))
        self.assertEqual(uri.hostport, "[2001:db8::1]:5060")
        self.assertEqual(formatURI(uri), "sip:alice@[2001:db8::1]:5060")
        self.assertRoundTrip(uri)

    def test_rfc5118_ipv6PortAmbiguous(self) -> None:
        """
        Inside the brackets everything is address: C{[2001:db8::10:5070]}
        has no port (RFC 5118 section 4.3).
        """
        uri = parseURI("sip:[2001:db8::10:5070]")
        assert isinstance(uri, SIPURI)
        self.assertEqual((uri.host, uri.port), ("2001:db8::10:5070", None))

    def test_rfc5118_ipv4MappedIPv6(self) -> None:
        """
        IPv4-mapped IPv6 addresses are valid references.
        """
        uri = parseURI("sip:[::ffff:192.0.2.10]")
        assert isinstance(uri, SIPURI)
        self.assertEqual(uri.host, "::ffff:192.0.2.10")

    def test_rfc3261_19_1_1_params(self) -> None:
        """
        Parameters keep their order and spelling; valueless ones (C{lr})
        have the value C{None}, and L{SIPURI.param} gives C{""} for them
        and C{None} for absent ones, looking names up case-insensitively.
        """
        uri = parseURI("sip:p1.example.com;lr;Transport=UDP;maddr=239.255.255.1")
        assert isinstance(uri, SIPURI)
        self.assertEqual(
            uri.params,
            (("lr", None), ("Transport", "UDP"), ("maddr", "239.255.255.1")),
        )
        self.assertEqual(uri.param("lr"), "")
        self.assertEqual(uri.param("TRANSPORT"), "UDP")
        self.assertIsNone(uri.param("ttl"))
        self.assertTrue(uri.hasParam("LR"))
        self.assertFalse(uri.hasParam("ttl"))
        self.assertRoundTrip(uri)

    def test_rfc3261_19_1_1_headers(self) -> None:
        """
        URI headers after C{?} are name/value pairs in order, kept escaped.
        """
        uri = parseURI("sip:alice@atlanta.com?subject=project%20x&priority=urgent")
        assert isinstance(uri, SIPURI)
        self.assertEqual(
            uri.headers, (("subject", "project%20x"), ("priority", "urgent"))
        )
        self.assertRoundTrip(uri)

    def test_rfc3261_19_1_3_examples(self) -> None:
        """
        The example URIs of RFC 3261 section 19.1.3 all parse and round
        trip.
        """
        for text in [
            "sip:alice@atlanta.com",
            "sip:alice:secretword@atlanta.com;transport=tcp",
            "sips:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:+1-212-555-1212:1234@gateway.com;user=phone",
            "sips:1212@gateway.com",
            "sip:alice@192.0.2.4",
            "sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com",
            "sip:alice;day=tuesday@atlanta.com",
        ]:
            uri = parseURI(text)
            self.assertEqual(formatURI(uri), text)
            self.assertRoundTrip(uri)

    def test_rfc3261_19_1_1_userWithSemicolon(self) -> None:
        """
        The user part may hold C{;} (user-unreserved): C{sip:alice;day=
        tuesday@atlanta.com} has user C{alice;day=tuesday} and no
        parameters.
        """
        uri = parseURI("sip:alice;day=tuesday@atlanta.com")
        assert isinstance(uri, SIPURI)
        self.assertEqual(uri.user, "alice;day=tuesday")
        self.assertEqual(uri.params, ())

    def test_rfc4475_3_1_1_2_unusualCharacters(self) -> None:
        """
        Every character the grammar allows in user and password parses
        (RFC 4475 section 3.1.1.2, C{intmeth}).
        """
        uri = parseURI(
            "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
            ":&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com"
        )
        assert isinstance(uri, SIPURI)
        self.assertEqual(uri.user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        self.assertEqual(uri.password, "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
        self.assertEqual(uri.host, "example.com")
        self.assertRoundTrip(uri)

    def test_rfc4475_3_1_1_3_escapesKept(self) -> None:
        """
        Escapes stay as written in the user part and parameters (RFC 4475
        section 3.1.1.3, C{esc01}); they are decoded only to compare.
        """
        uri = parseURI("sip:sips%3Auser%40example.com@example.net")
        assert isinstance(uri, SIPURI)
        self.assertEqual(uri.user, "sips%3Auser%40example.com")
        self.assertEqual(uri.host, "example.net")
        contact = parseURI(
            "sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31"
        )
        assert isinstance(contact, SIPURI)
        self.assertEqual(contact.user, "cal%6Cer")
        self.assertEqual(
            contact.params, (("%6C%72", None), ("n%61me", "v%61lue%25%34%31"))
        )
        self.assertRoundTrip(contact)

    def test_rfc4475_3_1_1_4_escapedNull(self) -> None:
        """
        C{%00} is a valid escape in a user part (RFC 4475 section 3.1.1.4).
        """
        uri = parseURI("sip:null-%00-null@example.com")
        assert isinstance(uri, SIPURI)
        self.assertEqual(uri.user, "null-%00-null")
        self.assertFalse(uriEquals(uri, parseURI("sip:null-@example.com")))

    def test_rfc4475_3_1_1_9_semicolonInUser(self) -> None:
        """
        C{sip:user;par=u%40example.net@example.com} has the user part
        C{user;par=u%40example.net} (RFC 4475 section 3.1.1.9).
        """
        uri = parseURI("sip:user;par=u%40example.net@example.com")
        assert isinstance(uri, SIPURI)
        self.assertEqual(uri.user, "user;par=u%40example.net")
        self.assertEqual(uri.host, "example.com")
        self.assertEqual(uri.params, ())

    def test_rfc4475_3_1_1_1_valuelessParam(self) -> None:
        """
        An unknown valueless parameter is kept (RFC 4475 section 3.1.1.1).
        """
        uri = parseURI("sip:vivekg@chair-dnrc.example.com;unknownparam")
        assert isinstance(uri, SIPURI)
        self.assertEqual(uri.params, (("unknownparam", None),))

    def test_rfc3261_25_1_telephoneSubscriberUser(self) -> None:
        """
        A telephone-subscriber user part with C{user=phone} parses.
        """
        uri = parseURI("sip:+1-212-555-1212;isub=1234;postd=pp22@gw.com;user=phone")
        assert isinstance(uri, SIPURI)
        self.assertEqual(uri.user, "+1-212-555-1212;isub=1234;postd=pp22")
        self.assertEqual(uri.param("user"), "phone")

    def test_rfc3261_25_1_hostTrailingDot(self) -> None:
        """
        A fully qualified host name may end with a dot.
        """
        uri = parseURI("sip:example.com.")
        assert isinstance(uri, SIPURI)
        self.assertEqual(uri.host, "example.com.")

    def test_rfc3261_25_1_digitStartingLabels(self) -> None:
        """
        Labels may start with a digit (only the top label must start with a
        letter): C{9x.example.com} is a host name.
        """
        uri = parseURI("sip:9x.example.com")
        assert isinstance(uri, SIPURI)
        self.assertEqual(uri.host, "9x.example.com")

    def test_rfc3261_19_1_1_valuelessWithEmptyValue(self) -> None:
        """
        C{;name=} (an empty value) differs from C{;name} and round-trips.
        """
        uri = parseURI("sip:example.com;a=;b")
        assert isinstance(uri, SIPURI)
        self.assertEqual(uri.params, (("a", ""), ("b", None)))
        self.assertRoundTrip(uri)

    def test_rfc3261_19_1_1_bad(self) -> None:
        """
        Texts that are not SIP URIs raise L{ParseError} saying C{Bad URI}:
        no host, IPv6 without brackets (RFC 5118 section 4.10), malformed
        IPv6 (RFC 5118 section 4.8), LWS inside (RFC 4475 section 3.1.2.8),
        angle brackets (RFC 4475 section 3.1.2.7), a port too large, an
        IPv4-looking host out of range, bad escapes, bad host names.
        """
        for text in [
            "sip:",
            "sip:alice@",
            "sip:2001:db8::10",
            "sip:[2001:db8:::192.0.2.1]",
            "sip:[2001:db8::10",
            "sip:user@example.com; lr",
            "sip:user @example.com",
            "<sip:user@example.com>",
            "sip:example.com:99999",
            "sip:example.com:",
            "sip:1.2.3.256",
            "sip:1.2.3",
            "sip:%zz@example.com",
            "sip:%4@example.com",
            "sip:-x.example.com",
            "sip:x-.example.com",
            "sip:x..example.com",
            "sip:alice@example.com?",
            "sip:alice@example.com?noequals",
            "sip:alice@example.com;",
            "sip:a\u00e9@example.com",
            "alice@example.com",
            "",
            "1sip:example.com",
        ]:
            error = assertBad(self, parseURI, text)
            self.assertIn("Bad URI", error.reason)
            self.assertEqual(error.status, 400)

    def test_hostileInputsFast(self) -> None:
        """
        Long hostile texts are rejected in linear time: no regular
        expression backtracks catastrophically on them.
        """
        n = 20000
        for text in [
            "sip:" + "a" * n + " ",
            "sip:" + "a;" * n + "@",
            "sip:" + "a." * n + "-",
            "sip:" + "a-1" * n + "-",
            "sip:a" + ";a" * n + "@",
            "sip:a?" + "a=b&" * n,
            "sip:[" + ":" * n + "]",
            "tel:" + "1-" * n + "x",
            "tel:+" + "1-" * n + "x",
            "tel:1;phone-context=" + "a1." * n + "-",
            "x:" + "a" * n + " ",
        ]:
            start = time.perf_counter()
            assertBad(self, parseURI, text)
            self.assertLess(time.perf_counter() - start, 1.0, text[:30])

    def test_withParam(self) -> None:
        """
        L{SIPURI.withParam} replaces a parameter where it stands
        (case-insensitively) or appends it; L{SIPURI.withoutParam} removes
        it; the original is unchanged.
        """
        uri = parseURI("sip:example.com;Transport=udp;lr")
        assert isinstance(uri, SIPURI)
        self.assertEqual(
            formatURI(uri.withParam("transport", "tcp")),
            "sip:example.com;Transport=tcp;lr",
        )
        self.assertEqual(
            formatURI(uri.withParam("maddr", "10.0.0.1")),
            "sip:example.com;Transport=udp;lr;maddr=10.0.0.1",
        )
        self.assertEqual(
            formatURI(uri.withParam("ob")), "sip:example.com;Transport=udp;lr;ob"
        )
        self.assertEqual(
            formatURI(uri.withoutParam("LR")), "sip:example.com;Transport=udp"
        )
        self.assertEqual(formatURI(uri), "sip:example.com;Transport=udp;lr")

    def test_transportAbsent(self) -> None:
        """
        L{SIPURI.transport} is C{None} without a transport parameter.
        """
        uri = parseURI("sip:example.com")
        assert isinstance(uri, SIPURI)
        self.assertIsNone(uri.transport)
        self.assertEqual(uri.hostport, "example.com")

    def test_str(self) -> None:
        """
        C{str()} of a URI is L{formatURI}.
        """
        for text in ["sip:a@b.example.com;lr", "tel:+1-201-555-0123", "urn:x:y"]:
            self.assertEqual(str(parseURI(text)), text)

    def test_frozen(self) -> None:
        """
        URIs are immutable, hashable values.
        """
        uri = parseURI("sip:alice@example.com")
        self.assertEqual(hash(uri), hash(SIPURI("sip", "alice", None, "example.com")))
        with self.assertRaises(AttributeError):
            uri.host = "x"  # type: ignore[misc]

    def test_repeatedParsesEqual(self) -> None:
        """
        Parsing the same text twice gives equal values (the parse cache
        changes nothing visible).
        """
        self.assertEqual(
            parseURI("sip:bob@example.com;transport=tcp"),
            parseURI("sip:bob@example.com;transport=tcp"),
        )


class TelURITests(SynchronousTestCase):
    """
    L{parseURI} on tel URIs (RFC 3966 section 3).
    """

    def test_rfc3966_3_globalNumber(self) -> None:
        """
        A global number keeps its visual separators.
        """
        uri = parseURI("tel:+1-201-555-0123")
        self.assertEqual(uri, TelURI("+1-201-555-0123"))
        self.assertEqual(uri.scheme, "tel")
        self.assertEqual(formatURI(uri), "tel:+1-201-555-0123")

    def test_rfc3966_3_localNumberWithContext(self) -> None:
        """
        A local number with a phone-context (a domain or a global number)
        parses, with its parameters in order.
        """
        uri = parseURI("tel:7042;phone-context=example.com")
        assert isinstance(uri, TelURI)
        self.assertEqual(uri.number, "7042")
        self.assertEqual(uri.param("Phone-Context"), "example.com")
        uri = parseURI("tel:863-1234;phone-context=+1-914-555")
        assert isinstance(uri, TelURI)
        self.assertEqual(uri.params, (("phone-context", "+1-914-555"),))
        self.assertEqual(parseURI(formatURI(uri)), uri)

    def test_rfc3966_3_extensionAndIsub(self) -> None:
        """
        C{ext} and C{isub} are parameters; valueless ones are allowed.
        """
        uri = parseURI("tel:+1-212-555-0101;ext=1234;isub=88;x-flag")
        assert isinstance(uri, TelURI)
        self.assertEqual(
            uri.params, (("ext", "1234"), ("isub", "88"), ("x-flag", None))
        )
        self.assertTrue(uri.hasParam("X-FLAG"))
        self.assertIsNone(uri.param("foo"))
        self.assertEqual(parseURI(formatURI(uri)), uri)

    def test_rfc3966_5_1_5_bad(self) -> None:
        """
        A local number without phone-context, an empty number, or a number
        with letters is not a tel URI.
        """
        for text in [
            "tel:1234",
            "tel:",
            "tel:+",
            "tel:+1-abc",
            "tel:1234;phone-context=",
            "tel:+1234;=x",
            "tel:+12 34",
        ]:
            assertBad(self, parseURI, text)


class AbsoluteURITests(SynchronousTestCase):
    """
    L{parseURI} on other schemes (RFC 3261 section 25.1, C{absoluteURI}).
    """

    def test_rfc3261_25_1_otherSchemes(self) -> None:
        """
        mailto, urn, http, im and unknown schemes become L{AbsoluteURI}s
        with a lower-case scheme and the rest kept verbatim.
        """
        for text, scheme, opaque in [
            ("mailto:alice@example.com", "mailto", "alice@example.com"),
            ("urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6", "urn", None),
            ("http://www.example.com/a?b=c", "http", "//www.example.com/a?b=c"),
            ("im:alice@example.com", "im", "alice@example.com"),
            ("pres:alice@example.com", "pres", "alice@example.com"),
            ("HTTP://[::1]:8080/x", "http", "//[::1]:8080/x"),
        ]:
            uri = parseURI(text)
            assert isinstance(uri, AbsoluteURI)
            self.assertEqual(uri.scheme, scheme)
            if opaque is not None:
                self.assertEqual(uri.opaque, opaque)
            self.assertEqual(parseURI(formatURI(uri)), uri)

    def test_rfc4475_3_3_2_unknownScheme(self) -> None:
        """
        An unknown scheme parses (RFC 4475 section 3.3.2, C{unkscm}), as do
        schemes with dots and other registered ones (3.3.3, 3.3.4).
        """
        self.assertEqual(
            parseURI("nobodyKnowsThisScheme:totallyopaquecontent"),
            AbsoluteURI("nobodyknowsthisscheme", "totallyopaquecontent"),
        )
        self.assertEqual(
            parseURI("soap.beep://192.0.2.103:3002"),
            AbsoluteURI("soap.beep", "//192.0.2.103:3002"),
        )
        self.assertEqual(parseURI("isbn:2983792873"), AbsoluteURI("isbn", "2983792873"))
        self.assertEqual(parseURI("name:John_Smith"), AbsoluteURI("name", "John_Smith"))

    def test_rfc3261_25_1_bad(self) -> None:
        """
        An empty opaque part, spaces, angle brackets and quotes are not
        allowed; neither is a scheme that does not start with a letter.
        """
        for text in ["mailto:", "urn:a b", "x:<y>", 'x:"y"', "9x:y", "-x:y", "x_y:z"]:
            assertBad(self, parseURI, text)

    def test_wildcard(self) -> None:
        """
        The Contact wildcard's URI C{AbsoluteURI("*", "")} formats as C{*}
        (RFC 3261 section 10.2.2).
        """
        self.assertEqual(formatURI(AbsoluteURI("*", "")), "*")


class URIEqualsTests(SynchronousTestCase):
    """
    L{uriEquals} implements RFC 3261 section 19.1.4 (and RFC 3966 section 4
    for tel URIs).
    """

    def assertEquivalent(self, a: str, b: str) -> None:
        """
        C{a} and C{b} are equivalent, both ways round.
        """
        ua, ub = parseURI(a), parseURI(b)
        self.assertTrue(uriEquals(ua, ub), f"{a} != {b}")
        self.assertTrue(uriEquals(ub, ua), f"{b} != {a}")

    def assertDifferent(self, a: str, b: str) -> None:
        """
        C{a} and C{b} are not equivalent, both ways round.
        """
        ua, ub = parseURI(a), parseURI(b)
        self.assertFalse(uriEquals(ua, ub), f"{a} == {b}")
        self.assertFalse(uriEquals(ub, ua), f"{b} == {a}")

    def test_rfc3261_19_1_4_equivalent(self) -> None:
        """
        The equivalent pairs listed in RFC 3261 section 19.1.4.
        """
        self.assertEquivalent(
            "sip:%61lice@atlanta.com;transport=TCP",
            "sip:alice@AtLanTa.CoM;Transport=tcp",
        )
        self.assertEquivalent(
            "sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"
        )
        self.assertEquivalent(
            "sip:carol@chicago.com", "sip:carol@chicago.com;security=on"
        )
        self.assertEquivalent(
            "sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"
        )
        self.assertEquivalent(
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
        )
        self.assertEquivalent(
            "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
        )

    def test_rfc3261_19_1_4_notEquivalent(self) -> None:
        """
        The non-equivalent pairs listed in RFC 3261 section 19.1.4.
        """
        self.assertDifferent(
            "SIP:ALICE@AtLanTa.CoM;Transport=udp",
            "sip:alice@AtLanTa.CoM;Transport=UDP",
        )
        self.assertDifferent("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060")
        self.assertDifferent("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp")
        self.assertDifferent(
            "sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"
        )
        self.assertDifferent(
            "sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"
        )
        self.assertDifferent("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4")
        self.assertDifferent(
            "sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"
        )

    def test_rfc3261_19_1_4_schemes(self) -> None:
        """
        A SIP and a SIPS URI never match; neither do a SIP and a tel URI.
        """
        self.assertDifferent("sip:alice@example.com", "sips:alice@example.com")
        self.assertDifferent("sip:+1234@example.com", "tel:+1234")
        self.assertDifferent("tel:+1234", "mailto:a@example.com")

    def test_rfc3261_19_1_4_reservedEscapes(self) -> None:
        """
        An escaped reserved character differs from the character itself,
        while escapes of unreserved ones compare equal, in any hex case.
        """
        self.assertDifferent("sip:a%3Bb@example.com", "sip:a;b@example.com")
        self.assertEquivalent("sip:a%3bb@example.com", "sip:a%3Bb@example.com")
        self.assertEquivalent("sip:%41@example.com", "sip:A@example.com")
        self.assertDifferent("sip:%41@example.com", "sip:a@example.com")

    def test_rfc3261_19_1_4_userAndPassword(self) -> None:
        """
        A URI with user info never matches one without; passwords are
        compared case-sensitively.
        """
        self.assertDifferent("sip:alice@example.com", "sip:example.com")
        self.assertDifferent("sip:a:x@example.com", "sip:a:X@example.com")
        self.assertDifferent("sip:a:x@example.com", "sip:a@example.com")
        self.assertEquivalent("sip:a:x@example.com", "sip:a:%78@example.com")

    def test_rfc3261_19_1_4_strictParams(self) -> None:
        """
        user, ttl, method and maddr in one URI only make the URIs differ.
        """
        for param in ["user=phone", "ttl=1", "method=INVITE", "maddr=10.0.0.1"]:
            self.assertDifferent("sip:a@example.com", f"sip:a@example.com;{param}")

    def test_rfc5118_ipv6Forms(self) -> None:
        """
        IPv6 addresses compare as addresses, whatever their spelling.
        """
        self.assertEquivalent("sip:[2001:db8::1]", "sip:[2001:DB8:0:0::1]")
        self.assertDifferent("sip:[2001:db8::1]", "sip:[2001:db8::2]")

    def test_rfc3966_4_tel(self) -> None:
        """
        tel URIs compare without visual separators, parameters in any order.
        """
        self.assertEquivalent("tel:+1-201-555-0123", "tel:+1(201)5550123")
        self.assertEquivalent(
            "tel:7042;phone-context=example.com;ext=1",
            "tel:7042;ext=1;phone-context=EXAMPLE.com",
        )
        self.assertDifferent("tel:+12015550123", "tel:+12015550124")

    def test_absolute(self) -> None:
        """
        Other URIs compare by scheme (any case) and opaque part.
        """
        self.assertEquivalent("MAILTO:a@example.com", "mailto:a@example.com")
        self.assertDifferent("mailto:a@example.com", "mailto:b@example.com")
        self.assertDifferent("mailto:a@example.com", "sip:a@example.com")


# Hypothesis strategies for URIs built from the grammar's character sets.
_alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_users = st.text(alphabet=_alnum + "-_.!~*'()&=+$,;?/", min_size=1, max_size=12)
_passwords = st.text(alphabet=_alnum + "-_.!~*'()&=+$,", max_size=8)
_labels = st.from_regex(r"[a-z]([a-z0-9-]{0,6}[a-z0-9])?", fullmatch=True)
_hostnames = st.lists(_labels, min_size=1, max_size=3).map(".".join)
_ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
_ipv6 = st.ip_addresses(v=6).map(str)
_paramNames = st.text(alphabet=_alnum + "-_.!~*'()", min_size=1, max_size=8)
_paramValues = st.none() | st.text(alphabet=_alnum + "-_.[]/:&+$", max_size=8)
_headerNames = st.text(alphabet=_alnum + "-_.", min_size=1, max_size=8)
_headerValues = st.text(alphabet=_alnum + "-_.%20:/", max_size=8).map(
    lambda v: v.replace("%", "%25")
)

_sipURIs = st.builds(
    SIPURI,
    scheme=st.sampled_from(["sip", "sips"]),
    user=st.none() | _users,
    password=st.none(),
    host=_hostnames | _ipv4 | _ipv6,
    port=st.none() | st.integers(0, 65535),
    params=st.lists(st.tuples(_paramNames, _paramValues), max_size=3).map(tuple),
    headers=st.lists(st.tuples(_headerNames, _headerValues), max_size=2).map(tuple),
)


class URIPropertyTests(SynchronousTestCase):
    """
    Property tests: every URI built from the grammar round-trips.
    """

    @settings(max_examples=300, deadline=None)
    @given(_sipURIs)
    def test_rfc3261_25_1_sipRoundTrip(self, uri: SIPURI) -> None:
        """
        C{parseURI(formatURI(u)) == u} for generated SIP URIs, and a URI is
        equivalent to itself (RFC 3261 section 19.1.4).
        """
        self.assertEqual(parseURI(formatURI(uri)), uri)
        self.assertTrue(uriEquals(uri, parseURI(formatURI(uri))))

    @settings(max_examples=100, deadline=None)
    @given(_users, _passwords, _hostnames)
    def test_rfc3261_25_1_userinfoRoundTrip(
        self, user: str, password: str, host: str
    ) -> None:
        """
        User and password survive a round trip whatever legal characters
        they contain.
        """
        uri = SIPURI("sip", user, password, host)
        self.assertEqual(parseURI(formatURI(uri)), uri)

    @settings(max_examples=100, deadline=None)
    @given(
        st.from_regex(r"\+[0-9][0-9\-.()]{0,10}", fullmatch=True),
        st.lists(
            st.tuples(
                st.from_regex(r"[a-z][a-z0-9-]{0,5}", fullmatch=True),
                st.none() | st.from_regex(r"[a-z0-9]{1,5}", fullmatch=True),
            ),
            max_size=3,
        ).map(tuple),
    )
    def test_rfc3966_3_telRoundTrip(
        self, number: str, params: tuple[tuple[str, str | None], ...]
    ) -> None:
        """
        Generated global tel URIs round-trip.
        """
        uri = TelURI(number, params)
        self.assertEqual(parseURI(formatURI(uri)), uri)
