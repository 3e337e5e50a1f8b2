# -*- test-case-name: tests.test_rfc4475 -*-
"""
The SIP torture test messages of RFC 4475 through L{sipevents.sip.parser}.

One test per message, named after its file in C{tests/data/rfc4475/}, which
holds the bit-exact messages extracted from the archive in RFC 4475 appendix
A (plus C{test.dat}, which the archive carries without describing it).
Valid messages must parse to the right values and survive
C{parseMessage(m.toBytes()) == m}; invalid ones must raise L{ParseError}
with the status to answer with. Where RFC 4475 leaves a choice, the test
docstring says which one L{sipevents.sip.parser} makes.

Only the parser runs here: these messages carry RFC 5737 addresses, and
nothing is ever sent to them.
"""

from __future__ import annotations

from twisted.python.filepath import FilePath
from twisted.trial.unittest import SynchronousTestCase

from sipevents.errors import ParseError
from sipevents.sip.headers import CSeq
from sipevents.sip.message import Message, Request, Response
from sipevents.sip.parser import StreamParser, parseMessage
from sipevents.sip.uri import SIPURI, AbsoluteURI

DATA = FilePath(__file__).sibling("data").child("rfc4475")


def load(name: str) -> bytes:
    """
    The octets of the torture message C{name}.
    """
    return DATA.child(name + ".dat").getContent()


class TortureTestCase(SynchronousTestCase):
    """
    Helpers shared by the torture tests.
    """

    def parseValid(self, name: str) -> Request | Response:
        """
        Parse the valid message C{name}, check that it round-trips, and
        return it.
        """
        message = parseMessage(load(name))
        self.assertRoundTrip(message)
        return message

    def assertRoundTrip(self, message: Message) -> None:
        """
        Serializing and parsing again gives an equal message.
        L{Message.toBytes} always writes a Content-Length, so one is
        expected when the original had none (RFC 4475 section 3.4.1).
        """
        again = parseMessage(message.toBytes())
        if "Content-Length" not in message.headers:
            self.assertEqual(
                again.headers.items()[-1], ("Content-Length", str(len(message.body)))
            )
            again.headers.removeFirst("Content-Length")
        self.assertEqual(again, message)

    def assertInvalid(
        self, name: str, status: int = 400, mentions: str | None = None
    ) -> ParseError:
        """
        Parsing the message C{name} fails with C{status}, and the reason
        phrase names what is wrong.
        """
        error = self.assertRaises(ParseError, parseMessage, load(name))
        self.assertEqual(error.status, status)
        if mentions is not None:
            self.assertIn(mentions, error.reason)
        self.assertNotIn("\r", error.reason)
        self.assertNotIn("\n", error.reason)
        return error

    def assertPartialAddressable(self, error: ParseError) -> Request:
        """
        The error carries a partial request from which a response can be
        addressed (RFC 3261 section 8.2.6.2).
        """
        partial = error.partial
        assert isinstance(partial, Request)
        for name in ("Via", "From", "To", "Call-ID", "CSeq"):
            self.assertIsNotNone(partial.headers.get(name), name)
        return partial


class ValidMessageTests(TortureTestCase):
    """
    RFC 4475 section 3.1.1: valid messages that stress a parser.
    """

    def test_wsinv(self) -> None:
        """
        RFC 4475 section 3.1.1.1: line folding all over, escapes in quoted
        strings, an empty Subject, LWS around colons, semicolons and equal
        signs, compact and long forms mixed, unusual case, unknown headers
        kept verbatim, leading zeros in Max-Forwards and CSeq.
        """
        m = self.parseValid("wsinv")
        assert isinstance(m, Request)
        self.assertEqual(m.method, "INVITE")
        self.assertEqual(
            m.uri,
            SIPURI(
                "sip",
                "vivekg",
                None,
                "chair-dnrc.example.com",
                None,
                (("unknownparam", None),),
            ),
        )
        self.assertEqual(
            [(v.transport, v.host, v.branch) for v in m.vias],
            [
                ("UDP", "192.0.2.2", "390skdjuw"),
                ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
                ("UDP", "192.168.255.111", "z9hG4bK30239"),
            ],
        )
        assert m.toAddr is not None and m.fromAddr is not None
        self.assertIsNone(m.toAddr.displayName)
        self.assertEqual(m.toAddr.tag, "1918181833n")
        self.assertEqual(m.fromAddr.displayName, 'J Rosenberg \\"')
        self.assertEqual(m.fromAddr.tag, "98asjd8")
        self.assertEqual(m.maxForwards, 68)
        self.assertEqual(m.cseq, CSeq(9, "INVITE"))
        self.assertEqual(m.callId, "wsinv.ndaksdj@192.0.2.1")
        self.assertEqual(m.headers.get("Subject"), "")
        self.assertEqual(
            m.headers.get("NewFangledHeader"),
            "newfangled value continued newfangled value",
        )
        self.assertEqual(m.headers.get("UnknownHeaderWithUnusualValue"), ";;,,;;,;")
        [contact] = m.contacts
        self.assertEqual(contact.displayName, 'Quoted string ""')
        self.assertEqual(
            contact.params,
            (("newparam", "newvalue"), ("secondparam", None), ("q", "0.33")),
        )
        [route] = m.routes
        assert isinstance(route.uri, SIPURI)
        self.assertEqual(route.uri.host, "services.example.com")
        self.assertTrue(route.uri.hasParam("lr"))
        self.assertEqual(m.contentLength, 150)
        self.assertEqual(len(m.body), 150)
        self.assertTrue(m.body.startswith(b"v=0\r\n"))

    def test_intmeth(self) -> None:
        """
        RFC 4475 section 3.1.1.2: every token character in the method, a
        branch and header names, quoted NUL/BEL/DEL in a display name, a
        multi-token display name, UTF-8 in a parameter value and an unknown
        header, and a Call-ID made of word characters.
        """
        method = "!interesting-Method0123456789_*+`.%indeed'~"
        m = self.parseValid("intmeth")
        assert isinstance(m, Request)
        self.assertEqual(m.method, method)
        assert isinstance(m.uri, SIPURI)
        self.assertEqual(m.uri.user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        self.assertEqual(m.uri.password, "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
        self.assertEqual(m.uri.host, "example.com")
        assert m.topVia is not None
        self.assertEqual(m.topVia.branch, "z9hG4bK-.!%66*_+`'~")
        assert m.toAddr is not None and m.fromAddr is not None
        self.assertEqual(m.toAddr.displayName, "BEL:\x07 NUL:\x00 DEL:\x7f")
        self.assertEqual(m.fromAddr.displayName, "token1~` token2'+_ token3*%!.-")
        self.assertEqual(m.fromAddr.tag, "_token~1'+`*%!-.")
        self.assertEqual(m.fromAddr.param("fromParam''~+*_!.-%"), "работающий")
        self.assertEqual(m.callId, "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{")
        self.assertEqual(m.cseq, CSeq(139122385, method))
        self.assertEqual(m.maxForwards, 255)
        self.assertEqual(
            m.headers.get("extensionHeader-!.%*+_`'~"), "\ufeff\u5927\u505c\u96fb"
        )

    def test_esc01(self) -> None:
        """
        RFC 4475 section 3.1.1.3: % HEX HEX escapes in the Request-URI, the
        From and To user parts and the Contact URI parameters are kept as
        written; C{i} and C{C} compact forms.
        """
        m = self.parseValid("esc01")
        assert isinstance(m.uri, SIPURI)
        self.assertEqual(m.uri.user, "sips%3Auser%40example.com")
        self.assertEqual(m.uri.host, "example.net")
        assert m.toAddr is not None and m.fromAddr is not None
        assert isinstance(m.toAddr.uri, SIPURI)
        assert isinstance(m.fromAddr.uri, SIPURI)
        self.assertEqual(m.toAddr.uri.user, "%75se%72")
        self.assertEqual(m.fromAddr.uri.user, "I%20have%20spaces")
        [contact] = m.contacts
        assert isinstance(contact.uri, SIPURI)
        self.assertEqual(
            contact.uri.params, (("%6C%72", None), ("n%61me", "v%61lue%25%34%31"))
        )
        self.assertEqual(m.callId, "esc01.239409asdfakjkn23onasd0-3234")
        assert m.contentType is not None
        self.assertEqual(m.contentType.mimeType, "application/sdp")
        self.assertEqual(len(m.body), 150)

    def test_escnull(self) -> None:
        """
        RFC 4475 section 3.1.1.4: escaped NULs in user parts; the two
        Contact URIs stay distinct.
        """
        m = self.parseValid("escnull")
        assert m.toAddr is not None and isinstance(m.toAddr.uri, SIPURI)
        self.assertEqual(m.toAddr.uri.user, "null-%00-null")
        users = [c.uri.user for c in m.contacts if isinstance(c.uri, SIPURI)]
        self.assertEqual(users, ["%00", "%00%00"])
        self.assertEqual(m.contentLength, 0)

    def test_esc02(self) -> None:
        """
        RFC 4475 section 3.1.1.5: % is not an escape in a method, a display
        name or a header name: C{RE%47IST%45R} is an unknown method and
        C{C%6Fntact} an unknown header, so there are two Contacts.
        """
        m = self.parseValid("esc02")
        assert isinstance(m, Request)
        self.assertEqual(m.method, "RE%47IST%45R")
        self.assertEqual(m.cseq, CSeq(29344, "RE%47IST%45R"))
        assert m.toAddr is not None and m.fromAddr is not None
        self.assertEqual(m.toAddr.displayName, "%Z%45")
        self.assertEqual(m.fromAddr.displayName, "%Z%45")
        self.assertEqual(len(m.contacts), 2)
        self.assertEqual(m.headers.get("C%6Fntact"), "<sip:alias2@host2.example.com>")
        assert m.topVia is not None
        self.assertEqual(m.topVia.branch, "z9hG4bK209%fzsnel234")

    def test_lwsdisp(self) -> None:
        """
        RFC 4475 section 3.1.1.6: no LWS between a token display name and
        C{<} is accepted.
        """
        m = self.parseValid("lwsdisp")
        assert m.fromAddr is not None
        self.assertEqual(m.fromAddr.displayName, "caller")
        self.assertEqual(m.fromAddr.tag, "323")

    def test_longreq(self) -> None:
        """
        RFC 4475 section 3.1.1.7: long display names, parameters, tags,
        Call-ID and header names, and 34 Via values in every spelling of
        Via, v, V, VIA ... with white space before the colon.
        """
        m = self.parseValid("longreq")
        assert m.toAddr is not None and m.fromAddr is not None
        self.assertEqual(
            m.toAddr.displayName,
            "I have a user name of " + "extreme" * 10 + " proportion",
        )
        assert isinstance(m.toAddr.uri, SIPURI)
        self.assertEqual(m.toAddr.uri.port, 6000)
        self.assertEqual(m.toAddr.uri.param("longparam" + "name" * 25), "shortvalue")
        self.assertEqual(m.fromAddr.tag, "12" + "982" * 50 + "424")
        self.assertEqual(m.callId, "longreq.one" + "really" * 20 + "longcallid")
        vias = m.vias
        self.assertEqual(len(vias), 34)
        self.assertEqual(
            [v.host for v in vias[:33]],
            [f"sip{n}.example.com" for n in range(33, 0, -1)],
        )
        self.assertEqual(vias[33].branch, "very" + "long" * 50 + "branchvalue")
        self.assertEqual(vias[33].received, "192.0.2.5")
        value = m.headers.get("Unknown-" + "Long" * 20 + "-Name")
        assert value is not None
        self.assertTrue(value.startswith("unknown-" + "long" * 20 + "-value; "))
        [contact] = m.contacts
        assert isinstance(contact.uri, SIPURI)
        self.assertEqual(contact.uri.user, "amazinglylongcallername" * 5)
        self.assertEqual(len(m.body), 150)

    def test_dblreq(self) -> None:
        """
        RFC 4475 section 3.1.1.8, RFC 3261 section 18.3: octets of a
        datagram past Content-Length are discarded, even when they look
        like another request.
        """
        m = self.parseValid("dblreq")
        assert isinstance(m, Request)
        self.assertEqual(m.method, "REGISTER")
        self.assertEqual(m.body, b"")
        self.assertNotIn(b"INVITE", m.toBytes())

    def test_semiuri(self) -> None:
        """
        RFC 4475 section 3.1.1.9: a semicolon in the user part of the
        Request-URI belongs to the user.
        """
        m = self.parseValid("semiuri")
        assert isinstance(m, Request) and isinstance(m.uri, SIPURI)
        self.assertEqual(m.uri.user, "user;par=u%40example.net")
        self.assertEqual(m.uri.host, "example.com")
        self.assertEqual(m.uri.params, ())
        self.assertEqual(len(m.accept), 6)

    def test_transports(self) -> None:
        """
        RFC 4475 section 3.1.1.10: known and unknown Via transports.
        """
        m = self.parseValid("transports")
        self.assertEqual(
            [v.transport for v in m.vias], ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
        )

    def test_mpart01(self) -> None:
        """
        RFC 4475 section 3.1.1.11: a binary body part holding NULs is framed
        by Content-Length and kept as octets.
        """
        m = self.parseValid("mpart01")
        self.assertEqual(len(m.body), 553)
        self.assertIn(b"\x00", m.body)
        self.assertTrue(m.body.endswith(b"--7a9cbec02ceef655--\r\n"))
        assert m.contentType is not None
        self.assertEqual(m.contentType.mimeType, "multipart/mixed")
        self.assertEqual(m.contentType.param("boundary"), "7a9cbec02ceef655")

    def test_unreason(self) -> None:
        """
        RFC 4475 section 3.1.1.12: a reason phrase with unreserved and UTF-8
        characters.
        """
        m = self.parseValid("unreason")
        assert isinstance(m, Response)
        self.assertEqual(m.code, 200)
        self.assertEqual(m.reason, "= 2**3 * 5**2 но сто девяносто девять - простое")
        self.assertEqual(len(m.body), 154)

    def test_noreason(self) -> None:
        """
        RFC 4475 section 3.1.1.13: an empty reason phrase.
        """
        m = self.parseValid("noreason")
        assert isinstance(m, Response)
        self.assertEqual((m.code, m.reason), (100, ""))


class InvalidMessageTests(TortureTestCase):
    """
    RFC 4475 section 3.1.2: invalid messages.
    """

    def test_badinv01(self) -> None:
        """
        RFC 4475 section 3.1.2.1: extra semicolons and commas in Via: 400.
        """
        error = self.assertInvalid("badinv01", 400, "Via")
        assert isinstance(error.partial, Request)
        self.assertEqual(error.partial.callId, "badinv01.0ha0isndaksdjasdf3234nas")

    def test_clerr(self) -> None:
        """
        RFC 4475 section 3.1.2.2, RFC 3261 section 18.3: a datagram shorter
        than its Content-Length is a 400; on a stream the parser waits for
        the rest.
        """
        error = self.assertInvalid("clerr", 400, "Content-Length")
        self.assertPartialAddressable(error)
        self.assertEqual(StreamParser().feed(load("clerr")), [])

    def test_ncl(self) -> None:
        """
        RFC 4475 section 3.1.2.3: a negative Content-Length is a 400, and on
        a stream the framing is lost.
        """
        error = self.assertInvalid("ncl", 400, "Content-Length")
        self.assertPartialAddressable(error)
        [streamError] = StreamParser().feed(load("ncl"))
        assert isinstance(streamError, ParseError)
        self.assertTrue(streamError.fatal)

    def test_scalar02(self) -> None:
        """
        RFC 4475 section 3.1.2.4: overlarge CSeq, Max-Forwards, Expires and
        Contact expires: a 400 naming the CSeq. Expires and Contact are only
        checked when used.
        """
        error = self.assertInvalid("scalar02", 400, "CSeq")
        self.assertPartialAddressable(error)

    def test_scalarlg(self) -> None:
        """
        RFC 4475 section 3.1.2.5: a response with an overlarge CSeq does not
        parse (the transport drops it). The overlarge Retry-After and the
        four-digit warning code are left to the typed views, which are never
        reached.
        """
        error = self.assertInvalid("scalarlg", 400, "CSeq")
        self.assertIsInstance(error.partial, Response)

    def test_quotbal(self) -> None:
        """
        RFC 4475 section 3.1.2.6: an unterminated quoted display name is a
        400; no closing quote is inferred.
        """
        error = self.assertInvalid("quotbal", 400, "To")
        self.assertPartialAddressable(error)

    def test_ltgtruri(self) -> None:
        """
        RFC 4475 section 3.1.2.7: a Request-URI in angle brackets is a 400;
        the brackets are not ignored.
        """
        error = self.assertInvalid("ltgtruri", 400, "Request-URI")
        self.assertPartialAddressable(error)

    def test_lwsruri(self) -> None:
        """
        RFC 4475 section 3.1.2.8: LWS inside the Request-URI is a 400.
        """
        error = self.assertInvalid("lwsruri", 400, "Request-Line")
        self.assertPartialAddressable(error)

    def test_lwsstart(self) -> None:
        """
        RFC 4475 section 3.1.2.9: several SPs between the Request-Line
        elements are a 400 (RFC 3261 section 7.1 wants single SPs).
        """
        error = self.assertInvalid("lwsstart", 400, "Request-Line")
        partial = self.assertPartialAddressable(error)
        self.assertEqual(partial.method, "INVITE")
        self.assertEqual(partial.uri, SIPURI("sip", "user", None, "example.com"))

    def test_trws(self) -> None:
        """
        RFC 4475 section 3.1.2.10: SPs after the SIP-Version are a 400.
        """
        error = self.assertInvalid("trws", 400, "Request-Line")
        self.assertPartialAddressable(error)

    def test_escruri(self) -> None:
        """
        RFC 4475 section 3.1.2.11: escaped headers in the Request-URI are a
        400, since RFC 3261 section 19.1.1 does not allow them there.
        """
        error = self.assertInvalid("escruri", 400, "Request-URI")
        self.assertPartialAddressable(error)

    def test_baddate(self) -> None:
        """
        RFC 4475 section 3.1.2.12: a non-GMT Date is accepted and kept as
        written; Date is never interpreted.
        """
        m = self.parseValid("baddate")
        self.assertEqual(m.headers.get("Date"), "Fri, 01 Jan 2010 16:00:00 EST")
        self.assertEqual(len(m.body), 150)

    def test_regbadct(self) -> None:
        """
        RFC 4475 section 3.1.2.13: a Contact URI with escaped headers
        outside angle brackets. The message parses, since Contact is
        validated when used, and the typed view refuses it then, so that
        the REGISTER or SUBSCRIBE handler answers 400.
        """
        m = self.parseValid("regbadct")
        error = self.assertRaises(ParseError, lambda: m.contacts)
        self.assertEqual(error.status, 400)
        self.assertIn("Contact", error.reason)

    def test_badaspec(self) -> None:
        """
        RFC 4475 section 3.1.2.14: spaces inside the addr-spec of To are a
        400.
        """
        error = self.assertInvalid("badaspec", 400, "To")
        self.assertPartialAddressable(error)

    def test_baddn(self) -> None:
        """
        RFC 4475 section 3.1.2.15: unquoted display names with non-token
        characters are a 400. (The archived message also lacks the empty
        line after its header section, which would be a 400 by itself.)
        """
        error = self.assertInvalid("baddn", 400, "From")
        self.assertPartialAddressable(error)

    def test_badvers(self) -> None:
        """
        RFC 4475 section 3.1.2.16: SIP/7.0 is answered with 505.
        """
        error = self.assertInvalid("badvers", 505)
        partial = self.assertPartialAddressable(error)
        self.assertEqual(partial.version, "SIP/7.0")

    def test_mismatch01(self) -> None:
        """
        RFC 4475 section 3.1.2.17: a CSeq method that differs from the
        Request-Line method is a 400.
        """
        error = self.assertInvalid("mismatch01", 400, "CSeq")
        self.assertPartialAddressable(error)

    def test_mismatch02(self) -> None:
        """
        RFC 4475 section 3.1.2.18: an unknown method with a different CSeq
        method is answered with 501, the preferred choice.
        """
        error = self.assertInvalid("mismatch02", 501)
        partial = self.assertPartialAddressable(error)
        self.assertEqual(partial.method, "NEWMETHOD")

    def test_bigcode(self) -> None:
        """
        RFC 4475 section 3.1.2.19: a status code over 699 does not parse;
        no partial response is built, and the transport drops it.
        """
        error = self.assertInvalid("bigcode", 400, "Status-Line")
        self.assertIsNone(error.partial)

    def test_test(self) -> None:
        """
        C{test.dat}, carried by the RFC 4475 archive without a description:
        a Request-Line without SIP-Version and a header line without a
        colon are a 400.
        """
        error = self.assertInvalid("test", 400, "Request-Line")
        self.assertIsInstance(error.partial, Request)


class TransactionLayerTests(TortureTestCase):
    """
    RFC 4475 section 3.2: messages for the transaction layer.
    """

    def test_badbranch(self) -> None:
        """
        RFC 4475 section 3.2.1: a branch of just the magic cookie parses;
        what to do about it is the transaction layer's choice.
        """
        m = self.parseValid("badbranch")
        assert m.topVia is not None
        self.assertEqual(m.topVia.branch, "z9hG4bK")


class ApplicationLayerTests(TortureTestCase):
    """
    RFC 4475 section 3.3: messages for the application layer; most parse,
    and the layers above decide.
    """

    def test_insuf(self) -> None:
        """
        RFC 4475 section 3.3.1: missing Call-ID, From and To are a 400 that
        names them.
        """
        error = self.assertInvalid("insuf", 400)
        self.assertEqual(error.reason, "Missing From, To, Call-ID headers")
        self.assertIsInstance(error.partial, Request)

    def test_unkscm(self) -> None:
        """
        RFC 4475 section 3.3.2: an unknown Request-URI scheme parses (the
        UAS answers 416).
        """
        m = self.parseValid("unkscm")
        assert isinstance(m, Request)
        self.assertEqual(
            m.uri, AbsoluteURI("nobodyknowsthisscheme", "totallyopaquecontent")
        )

    def test_novelsc(self) -> None:
        """
        RFC 4475 section 3.3.3: a known but atypical Request-URI scheme
        parses.
        """
        m = self.parseValid("novelsc")
        assert isinstance(m, Request)
        self.assertEqual(m.uri, AbsoluteURI("soap.beep", "//192.0.2.103:3002"))

    def test_unksm2(self) -> None:
        """
        RFC 4475 section 3.3.4: other URI schemes in To, From and Contact
        parse.
        """
        m = self.parseValid("unksm2")
        assert m.toAddr is not None and m.fromAddr is not None
        self.assertEqual(m.toAddr.uri, AbsoluteURI("isbn", "2983792873"))
        self.assertEqual(m.fromAddr.uri, AbsoluteURI("http", "//www.example.com"))
        self.assertEqual(
            [c.uri for c in m.contacts], [AbsoluteURI("name", "John_Smith")]
        )

    def test_bext01(self) -> None:
        """
        RFC 4475 section 3.3.5: Require and Proxy-Require parse into their
        option tags (the UAS answers 420).
        """
        m = self.parseValid("bext01")
        self.assertEqual(
            m.require, ["nothingSupportsThis", "nothingSupportsThisEither"]
        )
        self.assertEqual(
            m.proxyRequire, ["noProxiesSupportThis", "norDoAnyProxiesSupportThis"]
        )

    def test_invut(self) -> None:
        """
        RFC 4475 section 3.3.6: a body of unknown type parses.
        """
        m = self.parseValid("invut")
        assert m.contentType is not None
        self.assertEqual(m.contentType.mimeType, "application/unknownformat")
        self.assertEqual(m.body, b'<audio>\r\n <pcmu port="443"/>\r\n</audio>\r\n')

    def test_regaut01(self) -> None:
        """
        RFC 4475 section 3.3.7: an Authorization with an unknown scheme is
        kept verbatim.
        """
        m = self.parseValid("regaut01")
        self.assertEqual(
            m.headers.get("Authorization"), "NoOneKnowsThisScheme opaque-data=here"
        )

    def test_multi01(self) -> None:
        """
        RFC 4475 section 3.3.8: several Call-ID, To, From, Max-Forwards and
        CSeq values are a 400.
        """
        error = self.assertInvalid("multi01", 400, "Several")
        self.assertIsInstance(error.partial, Request)

    def test_mcl01(self) -> None:
        """
        RFC 4475 section 3.3.9: Content-Length values that disagree are a
        400 for a datagram (the rest of it is discarded) and lose the
        framing of a stream (the connection is closed).
        """
        error = self.assertInvalid("mcl01", 400, "Content-Length")
        self.assertPartialAddressable(error)
        [streamError] = StreamParser().feed(load("mcl01"))
        assert isinstance(streamError, ParseError)
        self.assertTrue(streamError.fatal)
        self.assertIsInstance(streamError.partial, Request)

    def test_bcast(self) -> None:
        """
        RFC 4475 section 3.3.10: a broadcast sent-by in the second Via
        parses; dropping the response is the transport's choice.
        """
        m = self.parseValid("bcast")
        self.assertEqual(m.vias[1].host, "255.255.255.255")

    def test_zeromf(self) -> None:
        """
        RFC 4475 section 3.3.11: Max-Forwards 0 is legal.
        """
        m = self.parseValid("zeromf")
        self.assertEqual(m.maxForwards, 0)

    def test_cparam01(self) -> None:
        """
        RFC 4475 section 3.3.12: in an addr-spec Contact, C{;unknownparam}
        is a header parameter, not a URI parameter.
        """
        m = self.parseValid("cparam01")
        [contact] = m.contacts
        assert isinstance(contact.uri, SIPURI)
        self.assertEqual(contact.params, (("unknownparam", None),))
        self.assertEqual(contact.uri.params, ())

    def test_cparam02(self) -> None:
        """
        RFC 4475 section 3.3.13: inside angle brackets, C{;unknownparam} is
        a URI parameter.
        """
        m = self.parseValid("cparam02")
        [contact] = m.contacts
        assert isinstance(contact.uri, SIPURI)
        self.assertEqual(contact.params, ())
        self.assertEqual(contact.uri.params, (("unknownparam", None),))

    def test_regescrt(self) -> None:
        """
        RFC 4475 section 3.3.14: an escaped header in a bracketed Contact
        URI is kept.
        """
        m = self.parseValid("regescrt")
        [contact] = m.contacts
        assert isinstance(contact.uri, SIPURI)
        self.assertEqual(contact.uri.headers, (("Route", "%3Csip:sip.example.com%3E"),))

    def test_sdp01(self) -> None:
        """
        RFC 4475 section 3.3.15: an Accept without application/sdp parses
        (the UAS decides between 406 and 400).
        """
        m = self.parseValid("sdp01")
        self.assertEqual([r.mimeType for r in m.accept], ["text/nobodyknowsthis"])


class BackwardCompatibilityTests(TortureTestCase):
    """
    RFC 4475 section 3.4: RFC 2543 syntax.
    """

    def test_inv2543(self) -> None:
        """
        RFC 4475 section 3.4.1: no branch, no From tag, no Max-Forwards and
        no Content-Length: the body is the rest of the datagram (RFC 3261
        section 18.3).
        """
        m = self.parseValid("inv2543")
        assert m.topVia is not None and m.fromAddr is not None
        self.assertIsNone(m.topVia.branch)
        self.assertIsNone(m.fromAddr.tag)
        self.assertIsNone(m.maxForwards)
        self.assertIsNone(m.contentLength)
        data = load("inv2543")
        self.assertEqual(m.body, data[data.index(b"\r\n\r\n") + 4 :])
        self.assertTrue(m.body.endswith(b"m=audio 49217 RTP/AVP 0\r\n"))


class ArchiveTests(SynchronousTestCase):
    """
    The fixtures themselves.
    """

    def test_everyMessageHasATest(self) -> None:
        """
        Every message of the RFC 4475 archive has a test named after it.
        """
        names = {child.basename()[:-4] for child in DATA.globChildren("*.dat")}
        self.assertEqual(len(names), 50)
        tested = {
            name[5:]
            for case in (
                ValidMessageTests,
                InvalidMessageTests,
                TransactionLayerTests,
                ApplicationLayerTests,
                BackwardCompatibilityTests,
            )
            for name in vars(case)
            if name.startswith("test_")
        }
        self.assertEqual(names, tested)

    def test_streamMatchesDatagram(self) -> None:
        """
        Fed to a L{StreamParser} one octet at a time, every message gives
        what L{parseMessage} gives, except where framing differs (RFC 3261
        section 18.3): a stream waits for the rest of a body or of a header
        section, and cannot do without Content-Length.
        """
        waiting = {"clerr", "baddn"}
        unframed = {"inv2543"}
        for child in sorted(DATA.globChildren("*.dat")):
            name = child.basename()[:-4]
            data = child.getContent()
            parser = StreamParser()
            items: list[object] = []
            for i in range(len(data)):
                items.extend(parser.feed(data[i : i + 1]))
            if name in waiting:
                self.assertEqual(items, [], name)
                continue
            got = items[0]
            if name in unframed:
                assert isinstance(got, ParseError)
                self.assertTrue(got.fatal)
                self.assertEqual(got.reason, "Missing Content-Length header")
                continue
            try:
                expected: object = parseMessage(data)
            except ParseError as e:
                assert isinstance(got, ParseError), name
                self.assertEqual(
                    (name, got.status, got.reason), (name, e.status, e.reason)
                )
            else:
                self.assertEqual((name, got), (name, expected))
