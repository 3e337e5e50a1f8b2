# -*- test-case-name: tests.test_bruteforce -*-
"""
Brute force over real loopback UDP (RFC 6665 section 6.3, RFC 3261 section
26.1): a password guesser at 127.0.0.2 is slowed to its source budget while
L{sipevents.subscriber} at 127.0.0.1, as another user, subscribes with the
right password; and once the guessed user name's budget is spent, the
guessed user herself still subscribes from 127.0.0.1.

Everything stays on 127.0.0.0/8; every loop is bounded by a count and a
deadline.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from twisted.cred.checkers import (
    ICredentialsChecker,
    InMemoryUsernamePasswordDatabaseDontUse,
)
from twisted.cred.credentials import IUsernameHashedPassword
from twisted.cred.portal import Portal
from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from sipevents.app.service import SIPEventsService
from sipevents.events import Credentials, Notification
from sipevents.packages.presence import PresencePackage
from sipevents.sip.authentication import DigestAuthenticator, SIPUserRealm
from sipevents.sip.digest import authorizationFor, parseChallenge
from sipevents.sip.message import Response
from sipevents.sip.parser import parseMessage
from sipevents.subscriber.client import startSubscriber
from sipevents.testing import subscribeRequest

REALM = "127.0.0.1"
GUESSER = "127.0.0.2"
TIMEOUT = 10.0

#: The guesser's source budget: 5 failures, then one every half second.
BURST = 5
INTERVAL = 0.5
#: How long the guesser guesses.
ATTACK = 2.5


@implementer(ICredentialsChecker)
class CountingChecker:
    """
    A password checker for alice and bob that counts its consultations.
    """

    credentialInterfaces = (IUsernameHashedPassword,)

    def __init__(self) -> None:
        self.consulted = 0
        self._checker = InMemoryUsernamePasswordDatabaseDontUse(
            alice=b"wonderland", bob=b"builder"
        )

    def requestAvatarId(self, credentials: object) -> Deferred[bytes | tuple[()]]:
        self.consulted += 1
        return self._checker.requestAvatarId(credentials)


class Guesser(DatagramProtocol):
    """
    A dictionary attack on alice: SUBSCRIBE, take the 401's challenge,
    answer it with a wrong password; again.
    """

    def __init__(self, server: tuple[str, int]) -> None:
        self.server = server
        self.waiting: dict[str, Deferred[Response]] = {}
        self.codes: list[int] = []
        self.retryAfter: list[str] = []

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        message = parseMessage(datagram)
        if isinstance(message, Response) and message.code >= 200:
            waiting = self.waiting.pop(message.callId or "", None)
            if waiting is not None:
                waiting.callback(message)

    def send(
        self, callId: str, cseq: int, authorization: str | None
    ) -> Deferred[Response]:
        assert self.transport is not None
        port = self.transport.getHost().port  # type: ignore[attr-defined]
        request = subscribeRequest(
            f"sip:alice@{REALM}",
            fromURI=f"sip:alice@{REALM}",
            callId=callId,
            cseq=cseq,
            contact=f"<sip:alice@{GUESSER}:{port}>",
            sentBy=f"{GUESSER}:{port}",
            headers=[("Authorization", authorization)] if authorization else (),
        )
        d: Deferred[Response] = Deferred()
        self.waiting[callId] = d
        d.addTimeout(TIMEOUT, reactor)
        self.transport.write(request.toBytes(), self.server)
        return d

    @inlineCallbacks
    def guess(self, n: int) -> Generator[Deferred[Any], Any, None]:
        callId = f"guess-{n}@{GUESSER}"
        challenged = yield self.send(callId, 1, None)
        assert challenged.code == 401, challenged.code
        value = challenged.headers.getAll("WWW-Authenticate")[0]
        authorization = authorizationFor(
            parseChallenge(value),
            Credentials("alice", f"guess{n}"),
            "SUBSCRIBE",
            f"sip:alice@{REALM}",
            b"",
            nc=1,
            cnonce=f"c{n}",
        )
        answered = yield self.send(callId, 2, authorization)
        self.codes.append(answered.code)
        if answered.code == 503:
            self.retryAfter.append(answered.headers.get("Retry-After") or "")


class BruteForceOverUDPTests(TestCase):
    """
    L{SIPEventsService} with a L{DigestAuthenticator} on 127.0.0.1, a
    guesser at 127.0.0.2 and a subscriber at 127.0.0.1.
    """

    timeout = 60

    @inlineCallbacks
    def start(self, **budgets: Any) -> Generator[Deferred[Any], Any, None]:
        """
        Start the service with a source budget of L{BURST} failures and one
        more every L{INTERVAL} seconds, and other C{budgets}, and the
        guesser.
        """
        self.checker = CountingChecker()
        budgets.setdefault("sourceBurst", BURST)
        budgets.setdefault("sourceInterval", INTERVAL)
        self.authenticator = DigestAuthenticator(
            reactor, Portal(SIPUserRealm(REALM), [self.checker]), REALM, **budgets
        )
        self.service = SIPEventsService(
            [f"udp:0:interface={REALM}"],
            reactor=reactor,
            packages=[PresencePackage()],
            authenticator=self.authenticator,
        )
        self.service.startService()
        self.addCleanup(self.service.stopService)
        assert self.service.whenListening is not None
        [port] = yield self.service.whenListening
        self.serverPort = port.getHost().port
        self.guesser = Guesser((REALM, self.serverPort))
        guesserPort = reactor.listenUDP(0, self.guesser, interface=GUESSER)
        self.addCleanup(guesserPort.stopListening)

    @inlineCallbacks
    def subscribe(self, user: Credentials) -> Generator[Deferred[Any], Any, Any]:
        """
        Subscribe from 127.0.0.1 as C{user} with the subscriber; return the
        subscription once its first NOTIFY came.
        """
        client = yield startSubscriber(
            reactor,
            [f"udp:0:interface={REALM}"],
            localUri=f"sip:{user.username}@{REALM}",
        )
        self.addCleanup(client.stop)
        subscription = client.subscriber.subscribe(
            f"sip:carol@{REALM}:{self.serverPort}",
            "presence",
            credentials=user,
            fromUri=f"sip:{user.username}@{REALM}",
        )
        first = yield subscription.whenActive().addTimeout(TIMEOUT, reactor)
        self.assertIsInstance(first, Notification)
        return subscription

    @inlineCallbacks
    def attack(self) -> Generator[Deferred[Any], Any, None]:
        """
        Guess every 20 ms for L{ATTACK} seconds, at most 500 times.
        """
        deadline = reactor.seconds() + ATTACK
        for n in range(500):
            if reactor.seconds() >= deadline:
                break
            yield self.guesser.guess(n)
            yield deferLater(reactor, 0.02, lambda: None)

    @inlineCallbacks
    def test_rfc6665_6_3_guesserSlowedWhileOtherUserSubscribes(
        self,
    ) -> Generator[Deferred[Any], Any, None]:
        """
        The guesser's wrong passwords reach the checker 5 times, then about
        once every half second, the rest being answered 503 with
        Retry-After; meanwhile bob subscribes from 127.0.0.1 with his
        password and gets his first NOTIFY.
        """
        yield self.start()
        attack = self.attack()
        yield deferLater(reactor, 0.5, lambda: None)
        subscription = yield self.subscribe(Credentials("bob", "builder"))
        yield attack
        codes = self.guesser.codes
        checked = codes.count(401)
        self.assertEqual(checked + codes.count(503), len(codes))
        # Most guesses never reached the checker.
        self.assertGreater(codes.count(503), checked)
        # bob's one successful check besides the guesses.
        self.assertEqual(self.checker.consulted, checked + 1)
        self.assertGreaterEqual(checked, BURST + 1)
        self.assertLessEqual(checked, BURST + ATTACK / INTERVAL + 1)
        self.assertTrue(all(value == "1" for value in self.guesser.retryAfter))
        yield subscription.unsubscribe().addTimeout(TIMEOUT, reactor)

    @inlineCallbacks
    def test_rfc6665_6_3_guessedUserFromCleanAddress(
        self,
    ) -> Generator[Deferred[Any], Any, None]:
        """
        With alice's user-name budget at 3 failures, the guesser at
        127.0.0.2 gets 3 guesses at her and 503 from then on; alice
        herself, from 127.0.0.1 with her password, subscribes during the
        attack.
        """
        yield self.start(userBurst=3, userInterval=30.0)
        attack = self.attack()
        yield deferLater(reactor, 0.5, lambda: None)
        subscription = yield self.subscribe(Credentials("alice", "wonderland"))
        self.assertFalse(self.authenticator.users.allows(b"alice"))
        yield attack
        codes = self.guesser.codes
        self.assertEqual(codes[:3], [401] * 3)
        self.assertEqual(set(codes[3:]), {503})
        self.assertGreater(len(codes), 10)
        self.assertEqual(self.checker.consulted, 3 + 1)
        yield subscription.unsubscribe().addTimeout(TIMEOUT, reactor)
