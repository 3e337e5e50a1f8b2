"""
Tests for L{sipevents.subscriber.exchange}: one UAC request and the
requests its answers call for (RFC 3261 sections 8.1.3.4, 21.4.17 and
22.2 to 22.4), on their own, with a recording C{send} instead of a user
agent.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from sipevents.errors import TransactionTimeout
from sipevents.events import Credentials
from sipevents.sip import digest
from sipevents.sip.addresses import Target
from sipevents.sip.message import Request, Response
from sipevents.subscriber.exchange import MAX_CHALLENGES, UACExchange
from sipevents.testing import responseTo, subscribeRequest

TARGET = Target("UDP", "127.0.0.1", 5060)
CREDENTIALS = Credentials("alice", "secret")


def challenge(stale: bool = False, nonce: str = "n1") -> str:
    value = f'Digest realm="sipevents", nonce="{nonce}", qop="auth", algorithm=MD5'
    return value + (", stale=true" if stale else "")


class Sender:
    """
    A C{send} that records each request and hands back a L{Deferred} the
    test fires.
    """

    def __init__(self) -> None:
        self.sent: list[tuple[Request, Target, Deferred[Response]]] = []

    def __call__(self, request: Request, target: Target) -> Deferred[Response]:
        if "Via" not in request.headers:
            # What the transport layer does for every request it sends.
            branch = f"z9hG4bK-{len(self.sent)}"
            request.headers.add("Via", f"SIP/2.0/UDP 127.0.0.1:5070;branch={branch}")
        d: Deferred[Response] = Deferred()
        self.sent.append((request, target, d))
        return d

    def answer(self, code: int, headers: list[tuple[str, str]] | None = None) -> None:
        """
        Answer the last request with C{code}, as parsed from the wire.
        """
        request, _, d = self.sent[-1]
        d.callback(responseTo(request, code, toTag="nt1", headers=headers or []))

    @property
    def requests(self) -> list[Request]:
        return [request for request, _, _ in self.sent]


class ExchangeTests(SynchronousTestCase):
    """
    L{UACExchange}.
    """

    def setUp(self) -> None:
        self.sender = Sender()
        self.announced: list[Request] = []
        self.cseq = 1

    def request(self, expires: int = 600, uri: str = "sip:bob@127.0.0.1") -> Request:
        request = subscribeRequest(
            uri,
            fromTag="a1",
            callId="call-1",
            cseq=self.cseq,
            expires=expires,
            contact=None,
        )
        # The owner's next request: a new transaction, the next CSeq.
        self.cseq += 1
        return request

    def exchange(self, **kwargs: object) -> tuple[UACExchange, Deferred[Response]]:
        exchange = UACExchange(
            self.sender,
            self.request(),
            TARGET,
            onSend=self.announced.append,
            **kwargs,  # type: ignore[arg-type]
        )
        return exchange, exchange.start()

    def test_rfc3261_8_1_3_success(self) -> None:
        """
        A 2xx is the exchange's answer; the request was announced before it
        was sent.
        """
        exchange, d = self.exchange()
        self.assertEqual(self.announced, self.sender.requests)
        self.sender.answer(200)
        self.assertEqual(self.successResultOf(d).code, 200)
        self.assertEqual(len(self.sender.sent), 1)

    def test_rfc3261_22_2_401Then200(self) -> None:
        """
        A 401 is answered with Authorization for its challenge, in a new
        request with the next CSeq and the same Call-ID; the 200 to it is
        the answer.
        """
        exchange, d = self.exchange(credentials=CREDENTIALS)
        self.sender.answer(401, [("WWW-Authenticate", challenge())])
        self.assertNoResult(d)
        first, second = self.sender.requests
        authorization = second.headers.get("Authorization")
        assert authorization is not None
        self.assertTrue(
            digest.verifyAuthorization(
                authorization, "SUBSCRIBE", "secret", "sipevents", "n1"
            )
        )
        self.assertEqual(second.cseq.number, first.cseq.number + 1)  # type: ignore[union-attr]
        self.assertEqual(second.callId, first.callId)
        self.assertEqual(self.announced, [first, second])
        self.assertIs(exchange.request, second)
        self.sender.answer(200)
        self.assertEqual(self.successResultOf(d).code, 200)

    def test_rfc3261_22_3_407(self) -> None:
        """
        A 407 is answered with Proxy-Authorization.
        """
        exchange, d = self.exchange(credentials=CREDENTIALS)
        self.sender.answer(407, [("Proxy-Authenticate", challenge())])
        second = self.sender.requests[-1]
        self.assertIn("Proxy-Authorization", second.headers)
        self.assertNotIn("Authorization", second.headers)
        self.sender.answer(202)
        self.assertEqual(self.successResultOf(d).code, 202)

    def test_rfc3261_22_2_noCredentials(self) -> None:
        """
        Without credentials a challenge is the answer.
        """
        exchange, d = self.exchange()
        self.sender.answer(401, [("WWW-Authenticate", challenge())])
        self.assertEqual(self.successResultOf(d).code, 401)
        self.assertEqual(len(self.sender.sent), 1)

    def test_rfc3261_22_4_secondChallengeOnlyWhenStale(self) -> None:
        """
        A second challenge to an answered request is answered only when it
        says C{stale=true}, and never more than L{MAX_CHALLENGES} times in a
        row.
        """
        exchange, d = self.exchange(credentials=CREDENTIALS)
        self.sender.answer(401, [("WWW-Authenticate", challenge())])
        self.sender.answer(401, [("WWW-Authenticate", challenge(nonce="n2"))])
        self.assertEqual(self.successResultOf(d).code, 401)
        self.assertEqual(len(self.sender.sent), 2)

        self.sender = Sender()
        exchange, d = self.exchange(credentials=CREDENTIALS)
        self.sender.answer(401, [("WWW-Authenticate", challenge())])
        for n in range(MAX_CHALLENGES):
            self.assertNoResult(d)
            self.sender.answer(
                401, [("WWW-Authenticate", challenge(stale=True, nonce=f"s{n}"))]
            )
        self.assertEqual(len(self.sender.sent), MAX_CHALLENGES + 1)
        self.assertEqual(self.successResultOf(d).code, 401)

    def test_rfc3261_21_4_17_423ThenRetryWithMinExpires(self) -> None:
        """
        A 423 is answered once with a request rebuilt by the owner for the
        Min-Expires; a second 423 is the answer.
        """
        asked: list[int] = []

        def lengthen(minExpires: int) -> Request:
            asked.append(minExpires)
            return self.request(expires=minExpires)

        exchange, d = self.exchange(lengthen=lengthen)
        self.sender.answer(423, [("Min-Expires", "1800")])
        self.assertEqual(asked, [1800])
        self.assertEqual(self.sender.requests[-1].expires, 1800)
        self.assertTrue(exchange.lengthened)
        self.sender.answer(423, [("Min-Expires", "3600")])
        self.assertEqual(self.successResultOf(d).code, 423)
        self.assertEqual(asked, [1800])

    def test_rfc3261_21_4_17_423WithoutMinExpires(self) -> None:
        """
        A 423 without Min-Expires, or to an owner that cannot lengthen, is
        the answer.
        """
        exchange, d = self.exchange(lengthen=lambda _: self.request())
        self.sender.answer(423)
        self.assertEqual(self.successResultOf(d).code, 423)
        exchange, d = self.exchange()
        self.sender.answer(423, [("Min-Expires", "1800")])
        self.assertEqual(self.successResultOf(d).code, 423)

    def test_rfc3261_22_2_challengeAfter423AnsweredAfresh(self) -> None:
        """
        The request rebuilt after a 423 is new: its own challenge is
        answered although one was answered before.
        """
        exchange, d = self.exchange(
            credentials=CREDENTIALS, lengthen=lambda m: self.request(expires=m)
        )
        self.sender.answer(401, [("WWW-Authenticate", challenge())])
        self.sender.answer(423, [("Min-Expires", "1800")])
        self.sender.answer(401, [("WWW-Authenticate", challenge(nonce="n2"))])
        self.assertIn("Authorization", self.sender.requests[-1].headers)
        self.sender.answer(200)
        self.assertEqual(self.successResultOf(d).code, 200)
        self.assertEqual(len(self.sender.sent), 4)

    def test_rfc3261_8_1_3_4_redirectFollowedOnce(self) -> None:
        """
        A 3xx is followed once, to its first SIP Contact, where the owner
        says; a second 3xx is the answer.
        """
        other = Target("UDP", "127.0.0.1", 5062)
        redirected: list[str] = []

        def redirect(uri: str) -> tuple[Request, Target]:
            redirected.append(uri)
            return self.request(uri=uri), other

        exchange, d = self.exchange(redirect=redirect)
        self.sender.answer(
            302,
            [("Contact", "<mailto:bob@example.com>, <sip:bob@127.0.0.1:5062>")],
        )
        self.assertEqual(redirected, ["sip:bob@127.0.0.1:5062"])
        request, target, _ = self.sender.sent[-1]
        self.assertEqual(str(request.uri), "sip:bob@127.0.0.1:5062")
        self.assertEqual(target, other)
        self.assertIs(exchange.target, other)
        self.sender.answer(302, [("Contact", "<sip:carol@127.0.0.1:5064>")])
        self.assertEqual(self.successResultOf(d).code, 302)
        self.assertEqual(len(redirected), 1)

    def test_rfc3261_8_1_3_4_redirectNotRoutable(self) -> None:
        """
        A 3xx whose Contact the owner cannot route to, or without a SIP
        Contact, is the answer.
        """

        def redirect(uri: str) -> tuple[Request, Target]:
            raise ValueError("unroutable")

        exchange, d = self.exchange(redirect=redirect)
        self.sender.answer(302, [("Contact", "<sip:bob@127.0.0.1:5062>")])
        self.assertEqual(self.successResultOf(d).code, 302)
        exchange, d = self.exchange(redirect=redirect)
        self.sender.answer(302, [("Contact", "<mailto:bob@example.com>")])
        self.assertEqual(self.successResultOf(d).code, 302)

    def test_abandoned(self) -> None:
        """
        An abandoned exchange sends nothing more: its next final response
        is the answer, challenge or not.
        """
        exchange, d = self.exchange(credentials=CREDENTIALS)
        exchange.abandon()
        self.sender.answer(401, [("WWW-Authenticate", challenge())])
        self.assertEqual(self.successResultOf(d).code, 401)
        self.assertEqual(len(self.sender.sent), 1)

    def test_rfc3261_8_1_3_1_noAnswer(self) -> None:
        """
        A transaction that fails fails the exchange with its error.
        """
        exchange, d = self.exchange()
        self.sender.sent[-1][2].errback(Failure(TransactionTimeout("Timer F")))
        self.failureResultOf(d, TransactionTimeout)

    def test_ownerRebuildFails(self) -> None:
        """
        When the owner's rebuild raises something unexpected, the response
        is the answer and the error is logged.
        """

        def lengthen(minExpires: int) -> Request:
            raise RuntimeError("broken")

        exchange, d = self.exchange(lengthen=lengthen)
        self.sender.answer(423, [("Min-Expires", "1800")])
        self.assertEqual(self.successResultOf(d).code, 423)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
