# -*- test-case-name: tests.test_authentication -*-
"""
Tests for L{sipevents.sip.authentication}: server-side Digest for SIP (RFC
3261 section 22, RFC 7616, RFC 8760) through C{twisted.cred}, checked
against our client (L{sipevents.sip.digest}) and the known answers of RFC
2617 section 3.5 and RFC 7616 section 3.9.1.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence

from twisted.cred.checkers import (
    ICredentialsChecker,
    InMemoryUsernamePasswordDatabaseDontUse,
)
from twisted.cred.credentials import IUsernameDigestHash, IUsernameHashedPassword
from twisted.cred.portal import IRealm, Portal
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import Logger, formatEvent
from twisted.python.filepath import FilePath
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from sipevents.errors import SIPError, Unauthorized
from sipevents.events import Credentials, SIPUser
from sipevents.interfaces import IRequestAuthenticator, ISIPIdentity
from sipevents.sip import authentication
from sipevents.sip.authentication import (
    DigestAuthenticator,
    HTDigestChecker,
    SIPDigestCredentials,
    SIPUserRealm,
    portalFromFile,
    sourceOf,
)
from sipevents.sip.digest import (
    Challenge,
    authorizationFor,
    authorize,
    parseAuthParams,
    parseChallenge,
)
from sipevents.sip.message import Request
from sipevents.sip.routing import stampReceived
from sipevents.sip.uri import parseURI
from sipevents.testing import publishRequest, responseTo, subscribeRequest

REALM = "127.0.0.1"
ALICE = Credentials("alice", "wonderland")
BOB = Credentials("bob", "builder")
NONCE_RE = re.compile(r"[0-9a-f]{64}")

# RFC 2617 section 3.5.
RFC2617_PARAMS = {
    "username": "Mufasa",
    "realm": "testrealm@host.com",
    "nonce": "dcd98b7102dd2f0e8b11d0f600bfb0c093",
    "uri": "/dir/index.html",
    "qop": "auth",
    "nc": "00000001",
    "cnonce": "0a4f113b",
    "response": "6629fae49393a05397450978507c4ef1",
    "opaque": "5ccc069c403ebaf9f0171e9517f40e41",
}

# RFC 7616 section 3.9.1.
RFC7616_PARAMS = {
    "username": "Mufasa",
    "realm": "http-auth@example.org",
    "uri": "/dir/index.html",
    "qop": "auth",
    "nc": "00000001",
    "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    "cnonce": "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    "opaque": "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS",
}
RFC7616_MD5 = "8ca523f5e9506fed4657c9700eebdbec"
RFC7616_SHA256 = "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def memoryPortal(realm: str = REALM) -> Portal:
    """
    A portal with a plain C{twisted.cred} password checker for alice and
    bob: the seam a deployer's own checker plugs into.
    """
    checker = InMemoryUsernamePasswordDatabaseDontUse(
        alice=ALICE.password.encode(), bob=BOB.password.encode()
    )
    return Portal(SIPUserRealm(realm), [checker])


def withAuthorization(request: Request, *values: str) -> Request:
    """
    C{request} as a client sends it again with credentials.
    """
    fields = [(name, value) for name, value in request.headers]
    fields += [("Authorization", value) for value in values]
    return Request(request.method, request.uri, fields, request.body)


class AuthenticatorTestCase(SynchronousTestCase):
    """
    A L{DigestAuthenticator} of realm C{127.0.0.1} on a L{Clock}, and the
    helpers to play its clients.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_000_000)
        self.authenticator = self.makeAuthenticator()

    def makeAuthenticator(self, **kwargs: object) -> DigestAuthenticator:
        kwargs.setdefault("portal", memoryPortal())
        kwargs.setdefault("realm", REALM)
        return DigestAuthenticator(self.clock, **kwargs)  # type: ignore[arg-type]

    def refused(
        self, request: Request, authenticator: DigestAuthenticator | None = None
    ) -> Unauthorized:
        d = (authenticator or self.authenticator).authenticate(request)
        error = self.failureResultOf(d, Unauthorized).value
        assert isinstance(error, Unauthorized)
        return error

    def accepted(
        self, request: Request, authenticator: DigestAuthenticator | None = None
    ) -> ISIPIdentity:
        d: Deferred[ISIPIdentity] = (authenticator or self.authenticator).authenticate(
            request
        )
        return self.successResultOf(d)

    def challenge(
        self,
        algorithm: str = "SHA-256",
        authenticator: DigestAuthenticator | None = None,
    ) -> Challenge:
        """
        The challenge for C{algorithm} of a fresh 401.
        """
        error = self.refused(subscribeRequest(), authenticator)
        for value in error.challenges:
            parsed = parseChallenge(value)
            if parsed.algorithm == algorithm:
                return parsed
        raise AssertionError(f"no {algorithm} challenge in {error.challenges}")

    def answered(
        self,
        challenge: Challenge,
        credentials: Credentials = ALICE,
        request: Request | None = None,
        nc: int = 1,
        cnonce: str = "c0ffee",
    ) -> Request:
        """
        C{request} (a SUBSCRIBE by default) with the Authorization our
        client computes for C{challenge}.
        """
        request = request or subscribeRequest()
        value = authorizationFor(
            challenge,
            credentials,
            request.method,
            str(request.uri),
            request.body,
            nc=nc,
            cnonce=cnonce,
        )
        return withAuthorization(request, value)


class ChallengeTests(AuthenticatorTestCase):
    """
    The 401 challenge (RFC 3261 section 22.2 and 22.4, RFC 7616 section
    3.3, RFC 8760 section 2.4).
    """

    def test_rfc3261_22_2_noCredentialsChallenged(self) -> None:
        """
        A request without Authorization fails with L{Unauthorized}: status
        401 and one C{WWW-Authenticate} header per offered algorithm.
        """
        error = self.refused(subscribeRequest())
        self.assertEqual(error.status, 401)
        self.assertEqual(error.reason, "Unauthorized")
        self.assertEqual([name for name, _ in error.headers], ["WWW-Authenticate"] * 2)
        self.assertEqual([value for _, value in error.headers], error.challenges)

    def test_rfc8760_2_4_sha256First(self) -> None:
        """
        One challenge per algorithm, SHA-256 first, then MD5 for the
        phones that only have it (RFC 8760 section 2.4, RFC 7616 section
        3.7), each with realm, a nonce, C{qop="auth"} (RFC 3261 section
        22.4 item 8) and no C{stale}.
        """
        error = self.refused(subscribeRequest())
        parsed = [parseChallenge(value) for value in error.challenges]
        self.assertEqual([c.algorithm for c in parsed], ["SHA-256", "MD5"])
        for each in parsed:
            self.assertEqual(each.realm, REALM)
            self.assertEqual(each.qop, ("auth",))
            self.assertFalse(each.stale)
            self.assertRegex(each.nonce, NONCE_RE)
            self.assertIn('qop="auth"', error.challenges[0])

    def test_rfc8760_2_4_configuredAlgorithms(self) -> None:
        """
        The algorithms offered are the configured ones in their order;
        unknown ones are refused at construction.
        """
        md5Only = self.makeAuthenticator(algorithms=("md5",))
        error = self.refused(subscribeRequest(), md5Only)
        self.assertEqual(
            [parseChallenge(v).algorithm for v in error.challenges], ["MD5"]
        )
        self.assertRaises(ValueError, self.makeAuthenticator, algorithms=("SHA-1",))
        self.assertRaises(ValueError, self.makeAuthenticator, algorithms=())

    def test_rfc7616_3_3_freshNonceEachChallenge(self) -> None:
        """
        Every 401 has a new nonce, even within one clock tick.
        """
        nonces = {self.challenge().nonce for _ in range(20)}
        self.assertEqual(len(nonces), 20)

    def test_rfc7616_3_3_noStatePerChallenge(self) -> None:
        """
        Challenging keeps nothing: the nonce is verified from its HMAC, so
        another authenticator with the same secret (a restarted server)
        accepts an answer to a challenge this one made, and the nonce-count
        table stays empty until a nonce is used.
        """
        first = self.makeAuthenticator(secret=b"s" * 32)
        for _ in range(100):
            self.refused(subscribeRequest(), first)
        self.assertEqual(first.usedNonces(), 0)
        challenge = self.challenge(authenticator=first)
        second = self.makeAuthenticator(secret=b"s" * 32)
        user = self.accepted(self.answered(challenge), second)
        self.assertEqual(user.username, "alice")
        self.assertEqual(second.usedNonces(), 1)

    def test_rfc3261_21_4_2_unauthorizedError(self) -> None:
        """
        L{Unauthorized} carries each challenge as a C{WWW-Authenticate}
        header field, in order.
        """
        error = Unauthorized(["Digest a=1", "Digest b=2"], "Who are you")
        self.assertIsInstance(error, SIPError)
        self.assertEqual(str(error), "401 Who are you")
        self.assertEqual(
            error.headers,
            [("WWW-Authenticate", "Digest a=1"), ("WWW-Authenticate", "Digest b=2")],
        )

    def test_verifyObject(self) -> None:
        """
        The authenticator, the realm and the avatar provide their
        interfaces.
        """
        self.assertTrue(verifyObject(IRequestAuthenticator, self.authenticator))
        self.assertTrue(verifyObject(IRealm, SIPUserRealm(REALM)))
        self.assertTrue(verifyObject(ISIPIdentity, SIPUser("alice", REALM)))


class SuccessTests(AuthenticatorTestCase):
    """
    Correct credentials, computed by our client, authenticate (RFC 7616
    section 3.4, RFC 8760 section 2).
    """

    def test_rfc8760_2_sha256(self) -> None:
        """
        The client's answer to the SHA-256 challenge authenticates alice,
        as a L{SIPUser} of the realm.
        """
        user = self.accepted(self.answered(self.challenge("SHA-256")))
        self.assertEqual(user, SIPUser("alice", REALM))
        self.assertEqual(user.addressOfRecord, "sip:alice@127.0.0.1")

    def test_rfc7616_3_4_md5(self) -> None:
        """
        The client's answer to the MD5 challenge authenticates too.
        """
        user = self.accepted(self.answered(self.challenge("MD5"), BOB))
        self.assertEqual(user, SIPUser("bob", REALM))

    def test_rfc3261_22_2_clientRoundTrip(self) -> None:
        """
        L{sipevents.sip.digest.authorize}, given the 401, builds a request
        the authenticator accepts: it picks SHA-256 (RFC 7616 section 3.7).
        """
        request = subscribeRequest()
        error = self.refused(request)
        response = responseTo(request, 401, headers=error.headers)
        again = authorize(request, response, ALICE)
        assert again is not None
        _, params = parseAuthParams(again.headers.getAll("Authorization")[0])
        self.assertEqual(params["algorithm"], "SHA-256")
        self.assertEqual(self.accepted(again), SIPUser("alice", REALM))

    def test_rfc3903_14_1_publish(self) -> None:
        """
        A PUBLISH with a body authenticates the same way (its body is not
        part of C{qop=auth}).
        """
        request = publishRequest(body=b"<presence/>", contentType="text/plain")
        user = self.accepted(self.answered(self.challenge(), request=request))
        self.assertEqual(user.username, "alice")

    def test_rfc7616_3_4_2_sessAndAuthInt(self) -> None:
        """
        Credentials using a C{-sess} variant or C{qop=auth-int} (which the
        challenge did not offer, but the client may compute) are checked
        with the same digest.
        """
        base = self.challenge("SHA-256")
        cases = [("SHA-256-sess", "auth"), ("SHA-256", "auth-int")]
        for nc, (algorithm, qop) in enumerate(cases, 1):
            challenge = Challenge(REALM, base.nonce, algorithm, (qop,), None, False)
            request = publishRequest(body=b"x", contentType="text/plain")
            self.accepted(self.answered(challenge, request=request, nc=nc))
            wrong = Challenge(REALM, base.nonce, algorithm, (qop,), None, False)
            self.refused(self.answered(wrong, Credentials("alice", "x"), nc=9))

    def test_rfc3261_22_4_uriNeedNotMatch(self) -> None:
        """
        The C{uri} of the credentials may differ from the Request-URI (RFC
        3261 section 22.4 item 6: a proxy may have retargeted it); the
        digest covers it as written.
        """
        challenge = self.challenge()
        value = authorizationFor(
            challenge, ALICE, "SUBSCRIBE", "sip:bob@example.com", cnonce="c"
        )
        self.accepted(withAuthorization(subscribeRequest(), value))

    def test_rfc3261_22_3_otherRealmBesideOurs(self) -> None:
        """
        Credentials for another realm beside ours are skipped, ours used.
        """
        challenge = self.challenge()
        other = Challenge("elsewhere", challenge.nonce, "MD5", ("auth",), None, False)
        request = withAuthorization(
            subscribeRequest(),
            authorizationFor(other, ALICE, "SUBSCRIBE", "sip:bob@127.0.0.1"),
            authorizationFor(challenge, ALICE, "SUBSCRIBE", "sip:bob@127.0.0.1"),
        )
        self.assertEqual(self.accepted(request).username, "alice")


class KnownAnswerTests(SynchronousTestCase):
    """
    L{SIPDigestCredentials} against the examples of RFC 2617 section 3.5
    and RFC 7616 section 3.9.1.
    """

    def test_rfc2617_3_5(self) -> None:
        """
        The RFC 2617 example, with the password and with its MD5 HA1.
        """
        credentials = SIPDigestCredentials(dict(RFC2617_PARAMS), "GET")
        self.assertTrue(credentials.checkPassword(b"Circle Of Life"))
        self.assertTrue(
            credentials.checkHash(md5("Mufasa:testrealm@host.com:Circle Of Life"))
        )
        self.assertFalse(credentials.checkPassword("Circle of Life"))
        self.assertEqual(credentials.username, b"Mufasa")
        self.assertEqual(credentials.algorithm, "MD5")

    def test_rfc7616_3_9_1(self) -> None:
        """
        The RFC 7616 example in MD5 and in SHA-256.
        """
        for algorithm, response, H in [
            ("MD5", RFC7616_MD5, md5),
            ("SHA-256", RFC7616_SHA256, sha256),
        ]:
            params = dict(RFC7616_PARAMS, algorithm=algorithm, response=response)
            credentials = SIPDigestCredentials(params, "GET")
            self.assertEqual(credentials.algorithm, algorithm)
            self.assertTrue(credentials.checkPassword("Circle of Life"))
            self.assertTrue(
                credentials.checkHash(H("Mufasa:http-auth@example.org:Circle of Life"))
            )
            self.assertFalse(credentials.checkPassword("Circle Of Life"))
            self.assertFalse(
                SIPDigestCredentials(params, "POST").checkPassword("Circle of Life")
            )

    def test_verifyObject(self) -> None:
        """
        The credentials provide both C{twisted.cred} interfaces a checker
        may ask for.
        """
        credentials = SIPDigestCredentials(dict(RFC2617_PARAMS), "GET")
        self.assertTrue(verifyObject(IUsernameDigestHash, credentials))
        self.assertTrue(verifyObject(IUsernameHashedPassword, credentials))


class RefusedTests(AuthenticatorTestCase):
    """
    Wrong credentials get a fresh challenge, never C{stale} (RFC 7616
    section 3.3).
    """

    def assertFreshChallenge(self, error: Unauthorized, old: str) -> None:
        parsed = [parseChallenge(v) for v in error.challenges]
        self.assertEqual([c.algorithm for c in parsed], ["SHA-256", "MD5"])
        self.assertEqual([c.stale for c in parsed], [False, False])
        self.assertNotEqual(parsed[0].nonce, old)

    def test_rfc7616_3_3_wrongPassword(self) -> None:
        """
        A wrong password is refused.
        """
        challenge = self.challenge()
        error = self.refused(self.answered(challenge, Credentials("alice", "guess")))
        self.assertFreshChallenge(error, challenge.nonce)

    def test_rfc7616_3_3_unknownUser(self) -> None:
        """
        An unknown user is refused the same way.
        """
        challenge = self.challenge()
        error = self.refused(self.answered(challenge, Credentials("eve", "x")))
        self.assertFreshChallenge(error, challenge.nonce)

    def test_rfc3261_22_1_otherRealm(self) -> None:
        """
        Credentials for another realm only, however correct for it, get
        our challenge: the realm defines the protection domain.
        """
        challenge = self.challenge()
        other = Challenge("elsewhere", challenge.nonce, "MD5", ("auth",), None, False)
        error = self.refused(self.answered(other))
        self.assertFreshChallenge(error, challenge.nonce)

    def test_rfc3261_22_4_basicIgnored(self) -> None:
        """
        SIP never accepts Basic (RFC 3261 section 22.4): it is challenged.
        """
        error = self.refused(
            withAuthorization(subscribeRequest(), "Basic YWxpY2U6d29uZGVybGFuZA==")
        )
        self.assertEqual(len(error.challenges), 2)

    def test_rfc7616_5_forgedNonce(self) -> None:
        """
        A nonce whose HMAC does not verify (forged, or from another secret
        or realm) is refused with a fresh challenge, not stale, even with
        a response correct for it.
        """
        challenge = self.challenge()
        last = "0" if challenge.nonce[-1] != "0" else "1"
        for nonce in [
            challenge.nonce[:-1] + last,
            self.challenge(authenticator=self.makeAuthenticator()).nonce,
            "0" * 64,
            "abc",
            "zz" * 32,
        ]:
            forged = Challenge(REALM, nonce, "SHA-256", ("auth",), None, False)
            error = self.refused(self.answered(forged))
            self.assertFreshChallenge(error, challenge.nonce)

    def test_rfc8760_2_4_algorithmNotOffered(self) -> None:
        """
        An answer in an algorithm we do not offer is challenged again.
        """
        sha256Only = self.makeAuthenticator(algorithms=("SHA-256",))
        nonce = self.challenge(authenticator=sha256Only).nonce
        md5 = Challenge(REALM, nonce, "MD5", ("auth",), None, False)
        self.refused(self.answered(md5), sha256Only)

    def test_checkerError(self) -> None:
        """
        A checker that fails with something other than a refused login
        fails the authentication with that error, not a 401.
        """

        class Broken(InMemoryUsernamePasswordDatabaseDontUse):
            def requestAvatarId(self, credentials: object) -> Deferred[bytes]:
                raise RuntimeError("database down")

        portal = Portal(SIPUserRealm(REALM), [Broken()])
        authenticator = self.makeAuthenticator(portal=portal)
        request = self.answered(self.challenge(authenticator=authenticator))
        self.failureResultOf(authenticator.authenticate(request), RuntimeError)


class MalformedTests(AuthenticatorTestCase):
    """
    Malformed credentials are answered 400 with what is wrong (RFC 2617
    section 3.2.2.5).
    """

    def assertBadRequest(self, value: str, reason: str) -> None:
        d = self.authenticator.authenticate(
            withAuthorization(subscribeRequest(), value)
        )
        error = self.failureResultOf(d, SIPError).value
        assert isinstance(error, SIPError)
        self.assertNotIsInstance(error, Unauthorized)
        self.assertEqual(error.status, 400)
        self.assertIn(reason, error.reason)
        self.assertTrue(error.reason.startswith("Malformed Authorization"))
        self.assertLessEqual(len(error.reason), 120)

    def test_rfc7235_2_1_unparseable(self) -> None:
        """
        A value that is not a list of auth-params.
        """
        self.assertBadRequest('Digest username="alice, realm', "auth-params")

    def test_reasonKeptShort(self) -> None:
        """
        A reason phrase quoting a peer's long value is cut short.
        """
        self.assertBadRequest(
            f'Digest username="alice", realm="{REALM}", nonce="n",'
            f' uri="sip:bob@127.0.0.1", response="00", algorithm={"X" * 500}',
            "algorithm",
        )

    def test_rfc2617_3_2_2_missingParameter(self) -> None:
        """
        Credentials without a response.
        """
        nonce = self.challenge().nonce
        self.assertBadRequest(
            f'Digest username="alice", realm="{REALM}", nonce="{nonce}",'
            ' uri="sip:bob@127.0.0.1"',
            "without response",
        )

    def test_rfc2617_3_2_2_badNonceCount(self) -> None:
        """
        An nc that is not 8 hex digits.
        """
        nonce = self.challenge().nonce
        self.assertBadRequest(
            f'Digest username="alice", realm="{REALM}", nonce="{nonce}",'
            ' uri="sip:bob@127.0.0.1", response="00", qop=auth, nc=1,'
            ' cnonce="x"',
            "nc",
        )

    def test_rfc2617_3_2_2_unknownQop(self) -> None:
        """
        A qop that is neither auth nor auth-int.
        """
        self.assertBadRequest(
            f'Digest username="alice", realm="{REALM}", nonce="n",'
            ' uri="sip:bob@127.0.0.1", response="00", qop=auth-conf,'
            ' nc=00000001, cnonce="x"',
            "qop",
        )

    def test_rfc7616_3_4_unknownAlgorithm(self) -> None:
        """
        An algorithm we do not know.
        """
        self.assertBadRequest(
            f'Digest username="alice", realm="{REALM}", nonce="n",'
            ' uri="sip:bob@127.0.0.1", response="00", algorithm=SHA-1',
            "algorithm",
        )

    def test_rfc3261_22_4_sessWithoutQop(self) -> None:
        """
        A C{-sess} algorithm without qop (RFC 3261 section 22.4 item 8).
        """
        self.assertBadRequest(
            f'Digest username="alice", realm="{REALM}", nonce="n",'
            ' uri="sip:bob@127.0.0.1", response="00", algorithm=MD5-sess',
            "without qop",
        )


class ReplayTests(AuthenticatorTestCase):
    """
    Nonce counts (RFC 7616 section 3.4 and 5.x, RFC 6665 section 6.4).
    """

    def test_rfc7616_3_4_usedNonceCountRefused(self) -> None:
        """
        The same Authorization twice: the second is a replay, refused with
        a fresh challenge (not stale); an equal or lower nc too.
        """
        challenge = self.challenge()
        request = self.answered(challenge, nc=1)
        self.accepted(request)
        error = self.refused(request)
        self.assertFalse(parseChallenge(error.challenges[0]).stale)
        self.accepted(self.answered(challenge, nc=5, cnonce="other"))
        self.refused(self.answered(challenge, nc=5, cnonce="third"))
        self.refused(self.answered(challenge, nc=3, cnonce="third"))

    def test_rfc7616_3_4_higherNonceCountAccepted(self) -> None:
        """
        A client reusing the nonce with nc one higher each time (a refresh,
        a PUBLISH) is accepted each time.
        """
        challenge = self.challenge("MD5")
        for nc in range(1, 6):
            self.accepted(self.answered(challenge, nc=nc))
        self.assertEqual(self.authenticator.usedNonces(), 1)

    def test_rfc7616_3_4_refusedAttemptRecordsNothing(self) -> None:
        """
        A wrong password with a high nc does not raise the count, so
        the rightful user's next request still gets through.
        """
        challenge = self.challenge()
        self.refused(self.answered(challenge, Credentials("alice", "no"), nc=99))
        self.accepted(self.answered(challenge, nc=1))

    def test_rfc7616_3_4_countsPerUser(self) -> None:
        """
        Another user answering with the same nonce does not use up its
        counts.
        """
        challenge = self.challenge()
        self.accepted(self.answered(challenge, BOB, nc=50))
        self.accepted(self.answered(challenge, ALICE, nc=1))

    def test_rfc2069_noQopSingleUse(self) -> None:
        """
        Without qop (the RFC 2069 form RFC 3261 section 22.4 keeps) there
        is no count: the nonce is good for one request only.
        """
        nonce = self.challenge("MD5").nonce
        old = Challenge(REALM, nonce, "MD5", (), None, False)
        request = self.answered(old)
        self.assertNotIn("nc=", request.headers.getAll("Authorization")[0])
        self.accepted(request)
        self.refused(request)
        withQop = Challenge(REALM, nonce, "MD5", ("auth",), None, False)
        self.refused(self.answered(withQop, nc=1))


class StaleTests(AuthenticatorTestCase):
    """
    Expired nonces (RFC 7616 section 3.3, C{stale}).
    """

    def test_rfc7616_3_3_withinLifetime(self) -> None:
        """
        A nonce is good for C{nonceLifetime} seconds.
        """
        challenge = self.challenge()
        self.clock.advance(299)
        self.accepted(self.answered(challenge))

    def test_rfc7616_3_3_staleWhenOtherwiseCorrect(self) -> None:
        """
        An expired nonce with a correct response gets challenges with
        C{stale=true}, and the client's new answer is accepted.
        """
        challenge = self.challenge()
        self.clock.advance(301)
        error = self.refused(self.answered(challenge))
        parsed = [parseChallenge(v) for v in error.challenges]
        self.assertEqual([c.stale for c in parsed], [True, True])
        self.assertIn("stale=true", error.challenges[0])
        self.accepted(self.answered(parsed[0]))

    def test_rfc7616_3_3_notStaleWhenWrong(self) -> None:
        """
        An expired nonce with a wrong password, or an unknown user, is not
        stale: new credentials are needed.
        """
        challenge = self.challenge()
        self.clock.advance(301)
        for credentials in [Credentials("alice", "no"), Credentials("eve", "x")]:
            error = self.refused(self.answered(challenge, credentials))
            self.assertFalse(parseChallenge(error.challenges[0]).stale)

    def test_rfc7616_3_3_lifetimeConfigurable(self) -> None:
        """
        C{nonceLifetime} sets the lifetime.
        """
        short = self.makeAuthenticator(nonceLifetime=10)
        challenge = self.challenge(authenticator=short)
        self.clock.advance(11)
        error = self.refused(self.answered(challenge), short)
        self.assertTrue(parseChallenge(error.challenges[0]).stale)


class NonceTableTests(AuthenticatorTestCase):
    """
    The table of nonce counts stays bounded without letting a replay in.
    """

    def test_rfc7616_5_expiredEntriesDropped(self) -> None:
        """
        Counts of expired nonces are dropped when a new nonce is used.
        """
        for _ in range(3):
            self.accepted(self.answered(self.challenge()))
        self.assertEqual(self.authenticator.usedNonces(), 3)
        self.clock.advance(301)
        self.accepted(self.answered(self.challenge()))
        self.assertEqual(self.authenticator.usedNonces(), 1)

    def test_rfc7616_5_bounded(self) -> None:
        """
        At most C{maxNonces} counts are kept; a nonce whose count was
        forgotten is stale from then on, so its replay is never accepted,
        and the client gets a new nonce without asking its user.
        """
        small = self.makeAuthenticator(maxNonces=3)
        challenges = []
        for _ in range(5):
            challenge = self.challenge(authenticator=small)
            self.clock.advance(1)
            self.accepted(self.answered(challenge), small)
            challenges.append(challenge)
            self.assertLessEqual(small.usedNonces(), 3)
        self.assertEqual(small.usedNonces(), 3)
        forgotten = self.answered(challenges[0], nc=1)
        error = self.refused(forgotten, small)
        self.assertTrue(parseChallenge(error.challenges[0]).stale)
        self.refused(self.answered(challenges[0], nc=2), small)
        self.accepted(self.answered(challenges[4], nc=2), small)
        self.refused(self.answered(challenges[4], nc=2), small)


class HTDigestCheckerTests(AuthenticatorTestCase):
    """
    L{HTDigestChecker}: Apache C{htdigest} files, lines C{user:realm:HA1}.
    """

    def usersFile(self, *lines: str) -> FilePath[str]:
        path = FilePath(self.mktemp())
        path.setContent("".join(line + "\n" for line in lines).encode())
        return path

    def md5Line(self, credentials: Credentials, realm: str = REALM) -> str:
        """
        A line as C{htdigest FILE REALM USER} writes it.
        """
        user, password = credentials.username, credentials.password
        return f"{user}:{realm}:{md5(f'{user}:{realm}:{password}')}"

    def sha256Line(self, credentials: Credentials, realm: str = REALM) -> str:
        user, password = credentials.username, credentials.password
        return f"{user}:{realm}:{sha256(f'{user}:{realm}:{password}')}"

    def fileAuthenticator(
        self, path: FilePath[str], algorithms: tuple[str, ...] = ("SHA-256", "MD5")
    ) -> DigestAuthenticator:
        portal, realm = portalFromFile(path.path, None)
        return self.makeAuthenticator(portal=portal, realm=realm, algorithms=algorithms)

    def test_htdigestMD5Line(self) -> None:
        """
        A 32-hex-digit HA1 is C{MD5(user:realm:password)}: MD5
        credentials match it.
        """
        path = self.usersFile(self.md5Line(ALICE))
        authenticator = self.fileAuthenticator(path)
        challenge = self.challenge("MD5", authenticator)
        user = self.accepted(self.answered(challenge), authenticator)
        self.assertEqual(user, SIPUser("alice", REALM))
        wrong = self.answered(challenge, Credentials("alice", "x"), nc=2)
        self.refused(wrong, authenticator)

    def test_rfc8760_sha256Line(self) -> None:
        """
        A 64-hex-digit HA1 is the SHA-256 of the same text: SHA-256
        credentials match it.
        """
        path = self.usersFile(self.sha256Line(ALICE), self.md5Line(ALICE))
        authenticator = self.fileAuthenticator(path)
        for algorithm in ("SHA-256", "MD5"):
            challenge = self.challenge(algorithm, authenticator)
            self.accepted(self.answered(challenge), authenticator)

    def test_rfc8760_md5OnlyUserNeedsMD5(self) -> None:
        """
        A user with only an MD5 line cannot authenticate with SHA-256, which
        our client (like most) picks when offered: such a deployment offers
        what L{HTDigestChecker.algorithms} says the file has, so MD5 stays
        in the challenge.
        """
        path = self.usersFile(self.md5Line(ALICE))
        both = self.fileAuthenticator(path)
        self.refused(self.answered(self.challenge("SHA-256", both)), both)
        checker = HTDigestChecker(path.path)
        self.assertEqual(checker.algorithms(REALM), ["MD5"])
        md5Only = self.fileAuthenticator(path, tuple(checker.algorithms(REALM)))
        request = subscribeRequest()
        response = responseTo(
            request, 401, headers=self.refused(request, md5Only).headers
        )
        again = authorize(request, response, ALICE)
        assert again is not None
        self.assertEqual(self.accepted(again, md5Only).username, "alice")
        withSha = self.usersFile(self.md5Line(ALICE), self.sha256Line(BOB))
        self.assertEqual(
            HTDigestChecker(withSha.path).algorithms(REALM), ["SHA-256", "MD5"]
        )

    def test_rereadWhenChanged(self) -> None:
        """
        The file is read again when it changes: a user added while the
        server runs can authenticate, a removed one no longer can.
        """
        path = self.usersFile(self.md5Line(ALICE))
        authenticator = self.fileAuthenticator(path)
        self.refused(self.answered(self.challenge("MD5", authenticator), BOB))
        path.setContent((self.md5Line(BOB) + "\n").encode())
        # A same-size rewrite within the file system's time granularity
        # is still noticed once the modification time differs.
        os.utime(path.path, ns=(0, 1_000_000_000))
        challenge = self.challenge("MD5", authenticator)
        self.accepted(self.answered(challenge, BOB), authenticator)
        self.refused(self.answered(challenge, ALICE), authenticator)

    def test_otherRealmLinesIgnored(self) -> None:
        """
        A user's line for another realm does not authenticate in ours.
        """
        path = self.usersFile(self.md5Line(ALICE, "elsewhere"), self.md5Line(BOB))
        portal, realm = portalFromFile(path.path, REALM)
        self.assertEqual(realm, REALM)
        authenticator = self.makeAuthenticator(portal=portal)
        challenge = self.challenge("MD5", authenticator)
        self.refused(self.answered(challenge), authenticator)
        self.accepted(self.answered(challenge, BOB), authenticator)

    def test_realms(self) -> None:
        """
        L{HTDigestChecker.realms} lists the file's realms;
        L{portalFromFile} takes the only one, and wants one named when
        there are several or none.
        """
        one = self.usersFile(self.md5Line(ALICE), self.md5Line(BOB))
        self.assertEqual(HTDigestChecker(one.path).realms(), [REALM])
        self.assertEqual(portalFromFile(one.path, None)[1], REALM)
        two = self.usersFile(self.md5Line(ALICE), self.md5Line(BOB, "example.com"))
        self.assertEqual(HTDigestChecker(two.path).realms(), [REALM, "example.com"])
        error = self.assertRaises(ValueError, portalFromFile, two.path, None)
        self.assertIn("2 realms", str(error))
        self.assertEqual(portalFromFile(two.path, "example.com")[1], "example.com")
        self.assertRaises(ValueError, portalFromFile, self.usersFile().path, None)
        self.assertRaises(OSError, portalFromFile, self.mktemp(), None)

    def test_badLinesSkipped(self) -> None:
        """
        Comments, blank lines and lines that are not C{user:realm:HA1}
        are skipped; the others still count.
        """
        path = self.usersFile(
            "# users",
            "",
            "carol:127.0.0.1:not-hex",
            "dave:127.0.0.1:abcd",
            "nocolons",
            self.md5Line(ALICE),
        )
        checker = HTDigestChecker(path.path)
        self.assertEqual(checker.realms(), [REALM])
        authenticator = self.fileAuthenticator(path)
        self.accepted(
            self.answered(self.challenge("MD5", authenticator)), authenticator
        )

    def test_verifyObject(self) -> None:
        """
        The checker provides C{ICredentialsChecker} for digest hashes.
        """
        checker = HTDigestChecker(self.usersFile(self.md5Line(ALICE)).path)
        self.assertTrue(verifyObject(ICredentialsChecker, checker))
        self.assertEqual(checker.credentialInterfaces, (IUsernameDigestHash,))


class PlainCheckerTests(AuthenticatorTestCase):
    """
    Deployers plug their own C{twisted.cred} checker into the portal.
    """

    def test_passwordChecker(self) -> None:
        """
        A checker that knows passwords
        (C{InMemoryUsernamePasswordDatabaseDontUse}, like a database's)
        verifies through L{SIPDigestCredentials.checkPassword}.
        """
        checker = InMemoryUsernamePasswordDatabaseDontUse()
        checker.addUser(b"carol", b"s3cret")
        portal = Portal(SIPUserRealm("example.com"), [checker])
        authenticator = self.makeAuthenticator(portal=portal, realm="example.com")
        challenge = self.challenge(authenticator=authenticator)
        user = self.accepted(
            self.answered(challenge, Credentials("carol", "s3cret")), authenticator
        )
        self.assertEqual(user, SIPUser("carol", "example.com"))
        self.refused(
            self.answered(challenge, Credentials("carol", "x"), nc=2), authenticator
        )

    def test_realmProvidesOnlyIdentity(self) -> None:
        """
        L{SIPUserRealm} hands out L{ISIPIdentity} only, and no anonymous
        user.
        """
        realm = SIPUserRealm(REALM)
        iface, avatar, logout = realm.requestAvatar(b"alice", None, ISIPIdentity)
        self.assertIs(iface, ISIPIdentity)
        self.assertEqual(avatar, SIPUser("alice", REALM))
        logout()
        self.assertRaises(
            NotImplementedError, realm.requestAvatar, b"alice", None, IRealm
        )
        self.assertRaises(
            NotImplementedError, realm.requestAvatar, (), None, ISIPIdentity
        )


class SIPUserTests(SynchronousTestCase):
    """
    L{SIPUser}, the authenticated identity.
    """

    def test_addressOfRecord(self) -> None:
        """
        C{sip:username@realm}.
        """
        self.assertEqual(
            SIPUser("alice", "example.com").addressOfRecord, "sip:alice@example.com"
        )

    def test_rfc3261_19_1_4_owns(self) -> None:
        """
        A user owns the SIP and SIPS URIs with its username as user part
        (exactly) and its realm as host (case-insensitive), whatever the
        port and parameters.
        """
        alice = SIPUser("alice", "example.com")
        for text in [
            "sip:alice@example.com",
            "sip:alice@EXAMPLE.com:5070;transport=tcp",
            "sips:alice@example.com",
        ]:
            self.assertTrue(alice.owns(parseURI(text)), text)
        for text in [
            "sip:Alice@example.com",
            "sip:bob@example.com",
            "sip:alice@example.org",
            "sip:example.com",
            "tel:+15551234567",
        ]:
            self.assertFalse(alice.owns(parseURI(text)), text)


class LoggingTests(AuthenticatorTestCase):
    """
    Refusals are logged through C{twisted.logger}, without secrets.
    """

    def test_noPasswordMaterialLogged(self) -> None:
        """
        A refused login is logged with the method and username, never the
        password, the response digest or the nonce.
        """
        events: list[dict[str, object]] = []
        self.patch(authentication, "_log", Logger(observer=events.append))
        challenge = self.challenge()
        request = self.answered(challenge, Credentials("alice", "hunter2"))
        self.refused(request)
        _, params = parseAuthParams(request.headers.getAll("Authorization")[0])
        text = " ".join(formatEvent(event) for event in events)
        self.assertIn("alice", text)
        self.assertIn("SUBSCRIBE", text)
        for secret in ["hunter2", params["response"], challenge.nonce]:
            self.assertNotIn(secret, text)
            self.assertNotIn(secret, repr(events))


@implementer(ICredentialsChecker)
class CountingChecker:
    """
    The in-memory checker of L{memoryPortal}, counting its consultations.
    """

    credentialInterfaces = (IUsernameHashedPassword,)

    def __init__(self) -> None:
        self.consulted = 0
        self._checker = InMemoryUsernamePasswordDatabaseDontUse(
            alice=ALICE.password.encode(), bob=BOB.password.encode()
        )

    def requestAvatarId(self, credentials: object) -> Deferred[bytes | tuple[()]]:
        self.consulted += 1
        return self._checker.requestAvatarId(credentials)


WRONG = Credentials("alice", "guess")


class BruteForceTests(AuthenticatorTestCase):
    """
    Failed authentications are rate-limited per source address and per user
    name (RFC 6665 section 6.3, RFC 3261 section 26.1), with the defaults
    the module docstring gives.
    """

    def setUp(self) -> None:
        super().setUp()
        self.checker = CountingChecker()
        self.authenticator = self.makeAuthenticator(
            portal=Portal(SIPUserRealm(REALM), [self.checker])
        )

    def attempt(self, source: str, credentials: Credentials) -> Deferred[ISIPIdentity]:
        """
        A client at C{source} fetches a challenge and answers it with
        C{credentials}.
        """
        challenge = self.challenge()
        host = f"[{source}]" if ":" in source else source
        request = self.answered(
            challenge, credentials, subscribeRequest(sentBy=f"{host}:5060")
        )
        return self.authenticator.authenticate(request)

    def throttled(self, source: str, credentials: Credentials) -> int:
        """
        Assert that the attempt is answered 503 without the checker; return
        its Retry-After.
        """
        before = self.checker.consulted
        error = self.failureResultOf(self.attempt(source, credentials), SIPError).value
        assert isinstance(error, SIPError)
        self.assertEqual(self.checker.consulted, before)
        self.assertEqual(error.status, 503)
        self.assertEqual([name for name, _ in error.headers], ["Retry-After"])
        return int(error.headers[0][1])

    def guessFor(
        self,
        seconds: float,
        every: float,
        sources: list[str],
        users: Sequence[str] = ("alice",),
    ) -> int:
        """
        Guess a password of C{users} (in turn) from each of C{sources} in
        turn, one guess every C{every} seconds for C{seconds}; return how
        many guesses the checker saw.
        """
        before = self.checker.consulted
        for step in range(round(seconds / every)):
            user = users[step % len(users)]
            d = self.attempt(sources[step % len(sources)], Credentials(user, "guess"))
            error = self.failureResultOf(d, SIPError).value
            assert isinstance(error, SIPError)
            self.assertIn(error.status, (401, 503))
            self.clock.advance(every)
        return self.checker.consulted - before

    def test_rfc6665_6_3_guesserSlowedToSourceRate(self) -> None:
        """
        A guesser at one address, trying ever other user names, has its
        first 10 wrong answers checked, then one every 6 seconds (at 6, 12,
        ... 594) in ten minutes of 10 guesses a second; the rest are
        answered 503 without the checker.
        """
        users = [f"user{n}" for n in range(6000)]
        self.assertEqual(self.guessFor(600, 0.1, ["192.0.2.66"], users), 10 + 99)

    def test_rfc6665_6_3_oneUserGuessedFromOneAddress(self) -> None:
        """
        A guesser at one address after one user's password meets both
        budgets: 10 guesses, then one every 6 seconds until the user name's
        20 are spent (about a minute in), then one every 30 seconds: about
        20 + 540 / 30 in ten minutes.
        """
        seen = self.guessFor(600, 0.1, ["192.0.2.66"])
        self.assertGreaterEqual(seen, 20 + 540 // 30 - 1)
        self.assertLessEqual(seen, 20 + 540 // 30 + 2)

    def test_rfc21_5_4_retryAfter(self) -> None:
        """
        The 503 says when the source may try again: one failure is forgiven
        every 6 seconds.
        """
        self.guessFor(1, 0.1, ["192.0.2.66"])
        self.assertEqual(self.throttled("192.0.2.66", WRONG), 6)
        self.clock.advance(4)
        self.assertEqual(self.throttled("192.0.2.66", WRONG), 2)
        self.clock.advance(2)
        self.failureResultOf(self.attempt("192.0.2.66", WRONG), Unauthorized)
        self.assertEqual(self.throttled("192.0.2.66", WRONG), 6)

    def test_rfc6665_6_3_throttledEvenWithTheRightPassword(self) -> None:
        """
        While its budget is spent, a source's right answer is not checked
        either: otherwise the guesser would learn when it guessed right.
        """
        self.guessFor(1, 0.1, ["192.0.2.66"])
        self.throttled("192.0.2.66", ALICE)

    def test_rfc6665_6_3_otherUserAuthenticatesDuringAttack(self) -> None:
        """
        During the attack, bob at another address authenticates every time.
        """
        for _ in range(60):
            self.guessFor(10, 0.1, ["192.0.2.66"])
            self.assertEqual(
                self.successResultOf(self.attempt("192.0.2.10", BOB)),
                SIPUser("bob", REALM),
            )

    def test_rfc6665_6_3_guessedUserFromCleanAddress(self) -> None:
        """
        Guessers at 30 addresses spend alice's user-name budget (20); alice,
        from her own address with the right password, still gets in, and
        so does she from a guesser's address once its failure is a minute
        old; within that minute it is refused there.
        """
        guessers = [f"198.51.100.{n}" for n in range(1, 31)]
        self.assertEqual(self.guessFor(3, 0.1, guessers), 30)
        self.assertFalse(self.authenticator.users.allows(b"alice"))
        self.assertEqual(
            self.successResultOf(self.attempt("192.0.2.10", ALICE)),
            SIPUser("alice", REALM),
        )
        self.throttled("198.51.100.1", ALICE)
        self.clock.advance(60)
        self.successResultOf(self.attempt("198.51.100.1", ALICE))

    def test_rfc6665_6_3_spreadGuessersSlowedPerAddress(self) -> None:
        """
        Once the user name's budget is spent, each of many addresses gets
        one guess at it a minute instead of ten: 30 addresses guessing in
        turn for ten minutes spend the user name's 20 in their first round,
        then each is checked once a minute.
        """
        guessers = [f"198.51.100.{n}" for n in range(1, 31)]
        seen = self.guessFor(600, 0.1, guessers)
        # The first round of 30 guesses, then one per address a minute.
        self.assertLessEqual(seen, 30 + 30 * 10)
        self.assertGreaterEqual(seen, 30 * 10)
        # Without the user name's budget, 10 + 10 a minute per address.
        self.assertLess(seen, 30 * (10 + 100) / 3)

    def test_rfc6665_6_3_unknownUserCounted(self) -> None:
        """
        Guessing user names fails like guessing passwords: both spend the
        source's budget, so the count reveals nothing about who exists.
        """
        for n in range(5):
            self.failureResultOf(
                self.attempt("192.0.2.66", Credentials(f"nobody{n}", "x")),
                Unauthorized,
            )
        for _ in range(5):
            self.failureResultOf(self.attempt("192.0.2.66", WRONG), Unauthorized)
        self.throttled("192.0.2.66", Credentials("nobody9", "x"))

    def test_rfc3261_22_2_challengesNotCounted(self) -> None:
        """
        A request without credentials, which merely gets its challenge, is
        not a failure, however many there are; nor is a forged nonce.
        """
        for _ in range(100):
            self.refused(subscribeRequest(sentBy="192.0.2.66:5060"))
            forged = self.answered(
                Challenge(REALM, "00" * 32, "SHA-256", ("auth",), None, False),
                WRONG,
                subscribeRequest(sentBy="192.0.2.66:5060"),
            )
            self.refused(forged)
        self.assertEqual(self.checker.consulted, 0)
        self.assertEqual(len(self.authenticator.sources), 0)
        self.successResultOf(self.attempt("192.0.2.66", ALICE))

    def test_rfc6665_6_3_successRefundsNothing(self) -> None:
        """
        Authenticating as oneself does not clear one's address's failures,
        or an attacker with an account would interleave logins and guesses.
        """
        for _ in range(9):
            self.failureResultOf(self.attempt("192.0.2.66", WRONG), Unauthorized)
            self.successResultOf(self.attempt("192.0.2.66", BOB))
        self.failureResultOf(self.attempt("192.0.2.66", WRONG), Unauthorized)
        self.throttled("192.0.2.66", BOB)

    def test_rfc6665_6_3_budgetsRecover(self) -> None:
        """
        A minute after its last failure a source has its whole budget back,
        and its entry goes at the next failure anywhere.
        """
        self.guessFor(1, 0.1, ["192.0.2.66"])
        self.clock.advance(60)
        self.assertTrue(self.authenticator.sources.isClean("192.0.2.66"))
        self.assertEqual(self.guessFor(1, 0.1, ["192.0.2.66"]), 10)
        self.clock.advance(60)
        self.failureResultOf(self.attempt("192.0.2.67", WRONG), Unauthorized)
        self.assertEqual(len(self.authenticator.sources), 1)
        self.assertEqual(len(self.authenticator.users), 1)

    def test_tablesBounded(self) -> None:
        """
        Failures from ever new addresses for ever new user names keep at
        most C{maxTracked} entries in each table.
        """
        self.authenticator = self.makeAuthenticator(
            portal=Portal(SIPUserRealm(REALM), [self.checker]), maxTracked=50
        )
        for n in range(500):
            self.failureResultOf(
                self.attempt(f"10.0.{n // 256}.{n % 256}", Credentials(f"u{n}", "x")),
                Unauthorized,
            )
        self.assertEqual(len(self.authenticator.sources), 50)
        self.assertEqual(len(self.authenticator.users), 50)
        self.assertEqual(self.checker.consulted, 500)

    def test_budgetsConfigurable(self) -> None:
        """
        The budgets are constructor arguments.
        """
        self.authenticator = self.makeAuthenticator(
            portal=Portal(SIPUserRealm(REALM), [self.checker]),
            sourceBurst=2,
            sourceInterval=1.0,
        )
        # 2, then at 1, 2, ... 9 seconds.
        self.assertEqual(self.guessFor(10, 0.1, ["192.0.2.66"]), 2 + 9)

    def test_invalidBudget(self) -> None:
        """
        A budget that is not positive is refused.
        """
        self.assertRaises(ValueError, self.makeAuthenticator, sourceBurst=0)
        self.assertRaises(ValueError, self.makeAuthenticator, userInterval=0)
        self.assertRaises(ValueError, self.makeAuthenticator, maxTracked=0)

    def test_rfc3261_18_2_1_sourceIsReceived(self) -> None:
        """
        The source is the top Via's C{received}, which the transport adds
        whenever the sent-by is not the packet's source, else the sent-by.
        """
        request = subscribeRequest(sentBy="phone.example.com:5060")
        stampReceived(request, "192.0.2.5", 5060)
        self.assertEqual(sourceOf(request), "192.0.2.5")
        request = subscribeRequest(sentBy="192.0.2.6:5060")
        stampReceived(request, "192.0.2.6", 5060)
        self.assertEqual(sourceOf(request), "192.0.2.6")

    def test_rfc3261_18_2_1_sourceCanonical(self) -> None:
        """
        Spelling one's address otherwise earns no fresh budget: the source
        is the canonical address, an IPv4-mapped one as IPv4, and an IPv6
        one as its /64 network.
        """
        sources = []
        for sentBy, host in [
            ("[2001:db8::1]:5060", "2001:db8::1"),
            ("[2001:DB8:0::1]:5060", "2001:db8:0::1"),
            ("[2001:db8::ffff:1]:5060", "2001:db8::ffff:1"),
        ]:
            request = subscribeRequest(sentBy=sentBy)
            stampReceived(request, host, 5060)
            sources.append(sourceOf(request))
        self.assertEqual(set(sources), {"2001:db8::/64"})
        request = subscribeRequest(sentBy="[2001:db8:0:1::1]:5060")
        self.assertEqual(sourceOf(request), "2001:db8:0:1::/64")
        request = subscribeRequest(sentBy="phone.example.com:5060")
        stampReceived(request, "::ffff:192.0.2.5", 5060)
        self.assertEqual(sourceOf(request), "192.0.2.5")
        for source in ("2001:db8::1", "2001:db8::2"):
            for _ in range(5):
                self.failureResultOf(self.attempt(source, WRONG), Unauthorized)
        self.throttled("2001:db8::3", WRONG)
