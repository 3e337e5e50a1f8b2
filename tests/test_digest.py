# -*- test-case-name: tests.test_digest -*-
"""
Tests for L{sipevents.sip.digest}: client-side HTTP Digest for SIP (RFC 3261
section 22, RFC 2617, RFC 7616), with the known answers of RFC 2617
section 3.5 and RFC 7616 section 3.9.1.
"""

from __future__ import annotations

import hashlib

from twisted.trial.unittest import SynchronousTestCase

from sipevents.events import Credentials
from sipevents.sip.digest import (
    Challenge,
    authorizationFor,
    authorize,
    parseAuthParams,
    parseChallenge,
    verifyAuthorization,
)
from sipevents.sip.message import Request, Response
from sipevents.testing import responseTo, subscribeRequest

# RFC 2617 section 3.5.
RFC2617_CHALLENGE = (
    'Digest realm="testrealm@host.com", qop="auth,auth-int",'
    ' nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",'
    ' opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)
RFC2617_RESPONSE = "6629fae49393a05397450978507c4ef1"

# RFC 7616 section 3.9.1.
RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC7616_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC7616_CHALLENGES = [
    f'Digest realm="http-auth@example.org", qop="auth, auth-int",'
    f' algorithm=SHA-256, nonce="{RFC7616_NONCE}", opaque="{RFC7616_OPAQUE}"',
    f'Digest realm="http-auth@example.org", qop="auth, auth-int",'
    f' algorithm=MD5, nonce="{RFC7616_NONCE}", opaque="{RFC7616_OPAQUE}"',
]
RFC7616_SHA256_RESPONSE = (
    "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
)
RFC7616_MD5_RESPONSE = "8ca523f5e9506fed4657c9700eebdbec"

MUFASA = Credentials("Mufasa", "Circle Of Life")
MUFASA7616 = Credentials("Mufasa", "Circle of Life")


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def challenge(
    realm: str = "127.0.0.1",
    nonce: str = "abc",
    algorithm: str = "MD5",
    qop: tuple[str, ...] = ("auth",),
    opaque: str | None = None,
    stale: bool = False,
) -> Challenge:
    return Challenge(realm, nonce, algorithm, qop, opaque, stale)


def subscribe() -> Request:
    return subscribeRequest(
        "sip:alice@127.0.0.1:5070",
        fromTag="ft",
        cseq=7,
        contact="<sip:127.0.0.1:5071>",
        body=b"filter",
        contentType="text/plain",
    )


def challenged(code: int, *values: str, request: Request | None = None) -> Response:
    header = "WWW-Authenticate" if code == 401 else "Proxy-Authenticate"
    # Not parsed: the requests authorize() returns have no Via yet.
    return responseTo(
        request or subscribe(),
        code,
        toTag="nt1",
        headers=[(header, v) for v in values],
        parsed=False,
    )


class ParseChallengeTests(SynchronousTestCase):
    """
    L{parseChallenge} reads C{WWW-Authenticate} and C{Proxy-Authenticate}
    values (RFC 2617 section 3.2.1, RFC 7616 section 3.3).
    """

    def test_rfc2617_3_5_example(self) -> None:
        """
        The RFC 2617 example challenge: realm, nonce, qop list, opaque, and
        MD5 when no algorithm is named.
        """
        self.assertEqual(
            parseChallenge(RFC2617_CHALLENGE),
            Challenge(
                realm="testrealm@host.com",
                nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                algorithm="MD5",
                qop=("auth", "auth-int"),
                opaque="5ccc069c403ebaf9f0171e9517f40e41",
                stale=False,
            ),
        )

    def test_rfc7616_3_3_algorithmAndStale(self) -> None:
        """
        The algorithm is given its canonical spelling whatever the case
        written, C{stale=TRUE} is read without regard to case, and unquoted
        values (even a base64 nonce) are accepted.
        """
        parsed = parseChallenge(
            "digest realm=biloxi.com,nonce=ab/c+d==, algorithm=sha-256-SESS,"
            " stale=TRUE, userhash=true"
        )
        self.assertEqual(parsed.realm, "biloxi.com")
        self.assertEqual(parsed.nonce, "ab/c+d==")
        self.assertEqual(parsed.algorithm, "SHA-256-sess")
        self.assertEqual(parsed.qop, ())
        self.assertIsNone(parsed.opaque)
        self.assertTrue(parsed.stale)
        self.assertTrue(parsed.userhash)

    def test_rfc2617_1_2_quotedPairs(self) -> None:
        """
        Quoted-pairs in a quoted-string are resolved, and commas inside
        quotes do not split parameters.
        """
        parsed = parseChallenge(r'Digest realm="a \"b\", c", nonce="n\\1"')
        self.assertEqual(parsed.realm, 'a "b", c')
        self.assertEqual(parsed.nonce, "n\\1")

    def test_rfc7616_3_3_unknownAlgorithmKept(self) -> None:
        """
        An algorithm we do not support is kept as written, and the
        challenge is not L{Challenge.supported}.
        """
        parsed = parseChallenge('Digest realm="r", nonce="n", algorithm=AKAv1-MD5')
        self.assertEqual(parsed.algorithm, "AKAv1-MD5")
        self.assertFalse(parsed.supported)

    def test_rfc3261_22_4_notDigest(self) -> None:
        """
        A Basic challenge is refused (RFC 3261 section 22.4: SIP never uses
        Basic).
        """
        self.assertRaises(ValueError, parseChallenge, 'Basic realm="r"')

    def test_rfc2617_3_2_1_missingRealmOrNonce(self) -> None:
        """
        realm and nonce are required.
        """
        self.assertRaises(ValueError, parseChallenge, 'Digest nonce="n"')
        self.assertRaises(ValueError, parseChallenge, 'Digest realm="r"')
        self.assertRaises(ValueError, parseChallenge, 'Digest realm="r", nonce=""')
        self.assertRaises(ValueError, parseChallenge, "Digest")

    def test_rfc7235_2_1_malformed(self) -> None:
        """
        Malformed values raise L{ValueError}: a missing comma, an unclosed
        quote, a repeated parameter, an empty value, two challenges.
        """
        for value in [
            'Digest realm="r" nonce="n"',
            'Digest realm="r, nonce="n"',
            'Digest realm="r", realm="s", nonce="n"',
            "",
            "   ",
            '"Digest" realm="r"',
            'Digest realm="r", nonce="n", Digest realm="s", nonce="m"',
        ]:
            self.assertRaises(ValueError, parseChallenge, value)

    def test_rfc7230_7_emptyListElements(self) -> None:
        """
        Empty list elements and a trailing comma are allowed.
        """
        parsed = parseChallenge('Digest realm="r",, nonce="n", ')
        self.assertEqual((parsed.realm, parsed.nonce), ("r", "n"))

    def test_rfc2617_3_2_2_parseAuthParams(self) -> None:
        """
        L{parseAuthParams} reads credentials as well, names in lower case.
        """
        self.assertEqual(
            parseAuthParams('Digest Username="bob", NC=00000001'),
            ("Digest", {"username": "bob", "nc": "00000001"}),
        )


class AuthorizationForTests(SynchronousTestCase):
    """
    L{authorizationFor} computes the credentials (RFC 2617 section 3.2.2,
    RFC 7616 section 3.4).
    """

    def test_rfc2617_3_5_knownAnswer(self) -> None:
        """
        The RFC 2617 section 3.5 example gives its published response, with
        every parameter the example shows.
        """
        value = authorizationFor(
            parseChallenge(RFC2617_CHALLENGE),
            MUFASA,
            "GET",
            "/dir/index.html",
            nc=1,
            cnonce="0a4f113b",
        )
        self.assertEqual(
            value,
            'Digest username="Mufasa", realm="testrealm@host.com",'
            ' nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html",'
            f' response="{RFC2617_RESPONSE}", algorithm=MD5, cnonce="0a4f113b",'
            ' qop=auth, nc=00000001, opaque="5ccc069c403ebaf9f0171e9517f40e41"',
        )

    def test_rfc7616_3_9_1_sha256KnownAnswer(self) -> None:
        """
        The RFC 7616 section 3.9.1 SHA-256 example gives its published
        response, algorithm and opaque echoed.
        """
        value = authorizationFor(
            parseChallenge(RFC7616_CHALLENGES[0]),
            MUFASA7616,
            "GET",
            "/dir/index.html",
            cnonce=RFC7616_CNONCE,
        )
        _, params = parseAuthParams(value)
        self.assertEqual(params["response"], RFC7616_SHA256_RESPONSE)
        self.assertEqual(params["algorithm"], "SHA-256")
        self.assertEqual(params["opaque"], RFC7616_OPAQUE)
        self.assertEqual(params["qop"], "auth")
        self.assertEqual(params["nc"], "00000001")
        self.assertEqual(params["cnonce"], RFC7616_CNONCE)
        self.assertIn('uri="/dir/index.html"', value)

    def test_rfc7616_3_9_1_md5KnownAnswer(self) -> None:
        """
        The MD5 half of the RFC 7616 section 3.9.1 example.
        """
        value = authorizationFor(
            parseChallenge(RFC7616_CHALLENGES[1]),
            MUFASA7616,
            "GET",
            "/dir/index.html",
            cnonce=RFC7616_CNONCE,
        )
        self.assertEqual(parseAuthParams(value)[1]["response"], RFC7616_MD5_RESPONSE)

    def test_rfc2069_noQop(self) -> None:
        """
        Without qop the RFC 2069 response H(HA1:nonce:HA2) is sent, with no
        cnonce, qop or nc (RFC 3261 section 22.4 item 8).
        """
        value = authorizationFor(
            challenge(realm="testrealm@host.com", nonce="dcd98b", qop=()),
            Credentials("Mufasa", "CircleOfLife"),
            "GET",
            "/dir/index.html",
        )
        ha1 = md5("Mufasa:testrealm@host.com:CircleOfLife")
        ha2 = md5("GET:/dir/index.html")
        _, params = parseAuthParams(value)
        self.assertEqual(params["response"], md5(f"{ha1}:dcd98b:{ha2}"))
        for name in ("cnonce", "qop", "nc", "opaque"):
            self.assertNotIn(name, params)

    def test_rfc2617_3_2_2_2_md5Sess(self) -> None:
        """
        MD5-sess hashes H(user:realm:password):nonce:cnonce into HA1.
        """
        value = authorizationFor(
            challenge(algorithm="MD5-sess"),
            Credentials("u", "p"),
            "SUBSCRIBE",
            "sip:a@127.0.0.1",
            nc=3,
            cnonce="cn",
        )
        ha1 = md5(f"{md5('u:127.0.0.1:p')}:abc:cn")
        ha2 = md5("SUBSCRIBE:sip:a@127.0.0.1")
        _, params = parseAuthParams(value)
        self.assertEqual(params["response"], md5(f"{ha1}:abc:00000003:cn:auth:{ha2}"))
        self.assertEqual(params["algorithm"], "MD5-sess")
        self.assertEqual(params["nc"], "00000003")

    def test_rfc7616_3_4_2_sha256Sess(self) -> None:
        """
        SHA-256-sess works like MD5-sess with SHA-256.
        """
        value = authorizationFor(
            challenge(algorithm="SHA-256-sess"),
            Credentials("u", "p"),
            "SUBSCRIBE",
            "sip:a@127.0.0.1",
            cnonce="cn",
        )
        ha1 = sha256(f"{sha256('u:127.0.0.1:p')}:abc:cn")
        ha2 = sha256("SUBSCRIBE:sip:a@127.0.0.1")
        self.assertEqual(
            parseAuthParams(value)[1]["response"],
            sha256(f"{ha1}:abc:00000001:cn:auth:{ha2}"),
        )

    def test_rfc3261_22_4_sessNeedsQop(self) -> None:
        """
        A -sess algorithm without qop cannot be answered: its cnonce may
        not be sent without qop (RFC 3261 section 22.4 item 8).
        """
        self.assertRaises(
            ValueError,
            authorizationFor,
            challenge(algorithm="MD5-sess", qop=()),
            Credentials("u", "p"),
            "SUBSCRIBE",
            "sip:a@127.0.0.1",
        )

    def test_rfc3261_22_4_authIntHashesBody(self) -> None:
        """
        With only qop=auth-int offered, HA2 includes H(body), and an empty
        body hashes as the empty string (RFC 3261 section 22.4 item 7).
        """
        for body in (b"", b"<presence/>"):
            value = authorizationFor(
                challenge(qop=("auth-int",)),
                Credentials("u", "p"),
                "SUBSCRIBE",
                "sip:a@127.0.0.1",
                body=body,
                cnonce="cn",
            )
            ha1 = md5("u:127.0.0.1:p")
            ha2 = md5(f"SUBSCRIBE:sip:a@127.0.0.1:{hashlib.md5(body).hexdigest()}")
            _, params = parseAuthParams(value)
            self.assertEqual(params["qop"], "auth-int")
            self.assertEqual(
                params["response"], md5(f"{ha1}:abc:00000001:cn:auth-int:{ha2}")
            )

    def test_rfc2617_3_2_2_authPreferredOverAuthInt(self) -> None:
        """
        qop=auth is chosen when both auth and auth-int are offered, in
        either order.
        """
        value = authorizationFor(
            challenge(qop=("auth-int", "auth")),
            Credentials("u", "p"),
            "SUBSCRIBE",
            "sip:a@127.0.0.1",
        )
        self.assertEqual(parseAuthParams(value)[1]["qop"], "auth")

    def test_rfc2617_3_2_2_unknownQopOnly(self) -> None:
        """
        A challenge offering only qop values we do not know is unsupported.
        """
        self.assertFalse(challenge(qop=("auth-conf",)).supported)
        self.assertRaises(
            ValueError,
            authorizationFor,
            challenge(qop=("auth-conf",)),
            Credentials("u", "p"),
            "SUBSCRIBE",
            "sip:a@127.0.0.1",
        )

    def test_rfc2617_3_2_2_freshCnonce(self) -> None:
        """
        Without a cnonce given, a fresh random one is sent each time.
        """
        first, second = (
            parseAuthParams(
                authorizationFor(challenge(), Credentials("u", "p"), "SUBSCRIBE", "x")
            )[1]["cnonce"]
            for _ in range(2)
        )
        self.assertNotEqual(first, second)
        self.assertGreaterEqual(len(first), 16)

    def test_rfc2617_3_2_2_ncRange(self) -> None:
        """
        nc is eight hex digits; values that do not fit are refused.
        """
        value = authorizationFor(
            challenge(), Credentials("u", "p"), "SUBSCRIBE", "x", nc=0x1AB
        )
        self.assertEqual(parseAuthParams(value)[1]["nc"], "000001ab")
        for nc in (0, 2**32):
            self.assertRaises(
                ValueError,
                authorizationFor,
                challenge(),
                Credentials("u", "p"),
                "SUBSCRIBE",
                "x",
                nc=nc,
            )

    def test_rfc2617_1_2_quoting(self) -> None:
        """
        username, realm, nonce, uri, response, cnonce and opaque are quoted,
        with C{"} and C{\\} escaped; CR and LF from a hostile challenge
        cannot break the header section.
        """
        value = authorizationFor(
            challenge(realm='r"1', nonce="n\\\r\nX: y", opaque='o"'),
            Credentials('us"er', "p"),
            "SUBSCRIBE",
            "sip:a@127.0.0.1;transport=tcp",
            cnonce="cn",
        )
        self.assertNotIn("\r", value)
        self.assertNotIn("\n", value)
        self.assertIn(r'username="us\"er"', value)
        self.assertIn(r'realm="r\"1"', value)
        self.assertIn('uri="sip:a@127.0.0.1;transport=tcp"', value)
        _, params = parseAuthParams(value)
        self.assertEqual(params["username"], 'us"er')
        self.assertEqual(params["realm"], 'r"1')
        self.assertEqual(params["opaque"], 'o"')
        self.assertEqual(params["nonce"], "n\\ X: y")

    def test_rfc7616_3_4_4_userhash(self) -> None:
        """
        With userhash=true the username is H(username:realm) and
        C{userhash=true} is sent; the response still uses the plain name.
        """
        parsed = Challenge("r", "n", "SHA-256", ("auth",), None, False, True)
        value = authorizationFor(parsed, Credentials("u", "p"), "SUBSCRIBE", "x")
        _, params = parseAuthParams(value)
        self.assertEqual(params["username"], sha256("u:r"))
        self.assertEqual(params["userhash"], "true")

    def test_rfc2617_3_2_2_verifyRoundTrip(self) -> None:
        """
        L{verifyAuthorization} accepts what L{authorizationFor} computes,
        for every algorithm and qop, and refuses a wrong password, realm,
        nonce or method.
        """
        for algorithm in ("MD5", "MD5-sess", "SHA-256", "SHA-256-sess"):
            for qop in [("auth",), ("auth-int",), ()]:
                if not qop and algorithm.endswith("-sess"):
                    continue
                parsed = challenge(realm="r", nonce="n", algorithm=algorithm, qop=qop)
                value = authorizationFor(
                    parsed, Credentials("u", "p"), "SUBSCRIBE", "sip:x", body=b"b"
                )
                self.assertTrue(
                    verifyAuthorization(value, "SUBSCRIBE", "p", "r", "n", b"b")
                )
                self.assertFalse(
                    verifyAuthorization(value, "SUBSCRIBE", "q", "r", "n", b"b")
                )
                self.assertFalse(
                    verifyAuthorization(value, "SUBSCRIBE", "p", "s", "n", b"b")
                )
                self.assertFalse(
                    verifyAuthorization(value, "SUBSCRIBE", "p", "r", "m", b"b")
                )
                self.assertFalse(
                    verifyAuthorization(value, "NOTIFY", "p", "r", "n", b"b")
                )
        self.assertFalse(verifyAuthorization("garbage", "SUBSCRIBE", "p", "r", "n"))
        self.assertFalse(
            verifyAuthorization('Basic realm="r"', "SUBSCRIBE", "p", "r", "n")
        )


class AuthorizeTests(SynchronousTestCase):
    """
    L{authorize} builds the request that answers a 401 or 407 (RFC 3261
    section 22.2 and 22.3).
    """

    def test_rfc3261_22_2_401Authorization(self) -> None:
        """
        A 401 is answered with Authorization for the Request-URI and the
        request's method.
        """
        request = subscribe()
        response = challenged(401, 'Digest realm="r", nonce="n", qop="auth"')
        answered = authorize(request, response, Credentials("u", "p"))
        assert answered is not None
        values = answered.headers.getAll("Authorization")
        self.assertEqual(len(values), 1)
        self.assertNotIn("Proxy-Authorization", answered.headers)
        _, params = parseAuthParams(values[0])
        self.assertEqual(params["uri"], "sip:alice@127.0.0.1:5070")
        self.assertTrue(
            verifyAuthorization(values[0], "SUBSCRIBE", "p", "r", "n", b"filter")
        )

    def test_rfc3261_22_3_407ProxyAuthorization(self) -> None:
        """
        A 407 is answered with Proxy-Authorization.
        """
        response = challenged(407, 'Digest realm="proxy", nonce="n", qop="auth"')
        answered = authorize(subscribe(), response, Credentials("u", "p"))
        assert answered is not None
        self.assertNotIn("Authorization", answered.headers)
        value = answered.headers.get("Proxy-Authorization")
        assert value is not None
        self.assertTrue(verifyAuthorization(value, "SUBSCRIBE", "p", "proxy", "n"))

    def test_rfc3261_22_2_copy(self) -> None:
        """
        The copy has CSeq + 1, no Via, and keeps the method, Request-URI,
        Call-ID, From tag, To, every other header and the body; the
        original is not changed.
        """
        request = subscribe()
        before = request.toBytes()
        answered = authorize(
            request,
            challenged(401, 'Digest realm="r", nonce="n"'),
            Credentials("u", "p"),
        )
        assert answered is not None
        self.assertEqual(request.toBytes(), before)
        self.assertEqual(answered.method, "SUBSCRIBE")
        self.assertEqual(answered.uri, request.uri)
        self.assertEqual(answered.callId, "call-1@127.0.0.1")
        assert answered.fromAddr is not None and answered.cseq is not None
        self.assertEqual(answered.fromAddr.tag, "ft")
        self.assertEqual(answered.headers.get("To"), request.headers.get("To"))
        self.assertEqual((answered.cseq.number, answered.cseq.method), (8, "SUBSCRIBE"))
        self.assertEqual(answered.vias, [])
        self.assertEqual(answered.body, b"filter")
        for name in ("Event", "Expires", "Contact", "Content-Type", "Max-Forwards"):
            self.assertEqual(answered.headers.get(name), request.headers.get(name))

    def test_rfc7616_3_7_sha256Preferred(self) -> None:
        """
        Offered SHA-256 and MD5 (in either order, in one field or two), the
        SHA-256 challenge is answered, once.
        """
        for values in (RFC7616_CHALLENGES, RFC7616_CHALLENGES[::-1]):
            for fields in (values, [", ".join(values)]):
                response = challenged(401, *fields)
                answered = authorize(subscribe(), response, MUFASA7616)
                assert answered is not None
                authorizations = answered.headers.getAll("Authorization")
                self.assertEqual(len(authorizations), 1)
                self.assertEqual(
                    parseAuthParams(authorizations[0])[1]["algorithm"], "SHA-256"
                )

    def test_rfc3261_22_4_qopPreferredOverNone(self) -> None:
        """
        Of two MD5 challenges of one realm, the one with qop is answered.
        """
        response = challenged(
            401,
            'Digest realm="r", nonce="old"',
            'Digest realm="r", nonce="new", qop=auth',
        )
        answered = authorize(subscribe(), response, Credentials("u", "p"))
        assert answered is not None
        (value,) = answered.headers.getAll("Authorization")
        self.assertEqual(parseAuthParams(value)[1]["nonce"], "new")

    def test_rfc3261_22_1_realmMismatch(self) -> None:
        """
        Credentials for one realm do not answer another realm's challenge.
        """
        response = challenged(401, 'Digest realm="other", nonce="n"')
        self.assertIsNone(
            authorize(subscribe(), response, Credentials("u", "p", realm="mine"))
        )
        response = challenged(
            401, 'Digest realm="other", nonce="n"', 'Digest realm="mine", nonce="m"'
        )
        answered = authorize(subscribe(), response, Credentials("u", "p", "mine"))
        assert answered is not None
        (value,) = answered.headers.getAll("Authorization")
        self.assertEqual(parseAuthParams(value)[1]["realm"], "mine")

    def test_rfc3261_22_3_oneAnswerPerRealm(self) -> None:
        """
        Challenges from two realms (forked proxies) are each answered when
        the credentials are not bound to a realm.
        """
        response = challenged(
            407, 'Digest realm="p1", nonce="a"', 'Digest realm="p2", nonce="b"'
        )
        answered = authorize(subscribe(), response, Credentials("u", "p"))
        assert answered is not None
        realms = [
            parseAuthParams(v)[1]["realm"]
            for v in answered.headers.getAll("Proxy-Authorization")
        ]
        self.assertEqual(realms, ["p1", "p2"])

    def test_rfc2617_3_2_1_staleReplacesOldCredentials(self) -> None:
        """
        Answering a second challenge (stale nonce) replaces our credentials
        for that realm and keeps a proxy's beside them; CSeq goes up again.
        """
        first = authorize(
            subscribe(),
            challenged(407, 'Digest realm="proxy", nonce="p"'),
            Credentials("u", "p"),
        )
        assert first is not None
        second = authorize(
            first,
            challenged(401, 'Digest realm="r", nonce="n1"', request=first),
            Credentials("u", "p"),
        )
        assert second is not None
        third = authorize(
            second,
            challenged(401, 'Digest realm="r", nonce="n2", stale=true', request=second),
            Credentials("u", "p"),
            nc=1,
        )
        assert third is not None and third.cseq is not None
        self.assertEqual(third.cseq.number, 10)
        (value,) = third.headers.getAll("Authorization")
        self.assertEqual(parseAuthParams(value)[1]["nonce"], "n2")
        self.assertEqual(len(third.headers.getAll("Proxy-Authorization")), 1)

    def test_rfc3261_22_2_nc(self) -> None:
        """
        The nonce count given is the one sent.
        """
        answered = authorize(
            subscribe(),
            challenged(401, 'Digest realm="r", nonce="n", qop="auth"'),
            Credentials("u", "p"),
            nc=2,
        )
        assert answered is not None
        value = answered.headers.get("Authorization")
        assert value is not None
        self.assertEqual(parseAuthParams(value)[1]["nc"], "00000002")

    def test_rfc3261_22_4_noUsableChallenge(self) -> None:
        """
        No answer for: another status; no challenge header; only Basic;
        only malformed challenges; only unsupported algorithms; a 401 whose
        challenge sits in Proxy-Authenticate.
        """
        credentials = Credentials("u", "p")
        self.assertIsNone(
            authorize(
                subscribe(),
                responseTo(
                    subscribe(), 403, headers=[("WWW-Authenticate", 'Digest realm="r"')]
                ),
                credentials,
            )
        )
        self.assertIsNone(authorize(subscribe(), challenged(401), credentials))
        for value in (
            'Basic realm="r"',
            'Digest realm="r"',
            'Digest realm="r" nonce="n"',
            'Digest realm="r", nonce="n", algorithm=SHA-512-256',
            'Digest realm="r", nonce="n", qop="auth-conf"',
            'Digest realm="r", nonce="n", algorithm=MD5-sess',
        ):
            self.assertIsNone(
                authorize(subscribe(), challenged(401, value), credentials), value
            )
        self.assertIsNone(
            authorize(
                subscribe(),
                responseTo(
                    subscribe(),
                    401,
                    headers=[("Proxy-Authenticate", 'Digest realm="r", nonce="n"')],
                ),
                credentials,
            )
        )

    def test_rfc3261_22_4_badBesideGood(self) -> None:
        """
        A malformed or foreign challenge beside a good one does not hide it.
        """
        response = challenged(
            401,
            'Digest realm="r" nonce="x"',
            'Basic realm="r"',
            'Digest realm="r", nonce="n"',
        )
        answered = authorize(subscribe(), response, Credentials("u", "p"))
        assert answered is not None
        value = answered.headers.get("Authorization")
        assert value is not None
        self.assertEqual(parseAuthParams(value)[1]["nonce"], "n")
