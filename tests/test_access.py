# -*- test-case-name: tests.test_access -*-
"""
Tests for authenticated access: the user agent authenticating SUBSCRIBE and
PUBLISH before their handlers (L{UserAgent.requireAuthentication}, RFC 3261
section 22), the notifier's From check (RFC 3856 section 6.6.1, RFC 6665
section 6.1), publishing only one's own state (RFC 3903 section 14.1) and
the default authorization with authentication on (RFC 3842 section 6,
RFC 3857 section 4.6), with an in-memory L{IRequestAuthenticator}.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from sipevents.app.service import SIPEventsService
from sipevents.config import TimerConfig
from sipevents.errors import SIPError, Unauthorized
from sipevents.events import SIPUser
from sipevents.interfaces import (
    IPublishAuthorizer,
    IRequestAuthenticator,
    IRequestContext,
    ISIPIdentity,
)
from sipevents.notifier.authorization import (
    ACCEPT,
    REJECT,
    AcceptAll,
    AuthenticatedWatchers,
    identityOwns,
    isOwnerOnly,
)
from sipevents.packages.messagesummary import MessageSummaryPackage
from sipevents.packages.presence import PresencePackage
from sipevents.sip.addresses import Source
from sipevents.sip.message import Request, Response
from sipevents.sip.parser import parseMessage
from sipevents.sip.uri import parseURI
from sipevents.sip.useragent import FunctionHandler, UserAgent
from sipevents.testing import (
    FakeSIPConnection,
    MemoryDatagramTransport,
    MemoryUDPReactor,
    RecordingTransportLayer,
    optionsRequest,
    publishRequest,
    responseTo,
    sipRequest,
    subscribeRequest,
)

REALM = "127.0.0.1"
UDP = "udp:5060:interface=127.0.0.1"
PIDF = "application/pidf+xml"
NOW = 1_800_000_000.0

#: The challenges the fake authenticator sends, SHA-256 first (RFC 8760).
CHALLENGES = [
    f'Digest realm="{REALM}", nonce="n1", algorithm=SHA-256, qop="auth"',
    f'Digest realm="{REALM}", nonce="n1", algorithm=MD5, qop="auth"',
]


@implementer(IRequestAuthenticator)
class FakeAuthenticator:
    """
    Authenticates a request whose Authorization is C{Fake USER} as
    C{SIPUser(USER, REALM)}; a request without one fails with
    L{Unauthorized} carrying L{CHALLENGES}, one with C{Fake} alone with a
    400. With C{later} set, answers are L{Deferred}s the test fires.

    @ivar asked: the methods of the requests authenticated, in order.
    @ivar waiting: the L{Deferred}s handed out with C{later}.
    @ivar cancelled: those of them that were cancelled.
    """

    def __init__(self, later: bool = False) -> None:
        self.later = later
        self.asked: list[str] = []
        self.waiting: list[Deferred[ISIPIdentity]] = []
        self.cancelled: list[Deferred[ISIPIdentity]] = []

    def authenticate(self, request: Request) -> Deferred[ISIPIdentity]:
        self.asked.append(request.method)
        if self.later:
            d: Deferred[ISIPIdentity] = Deferred(self.cancelled.append)
            self.waiting.append(d)
            return d
        value = request.headers.get("Authorization")
        if value is None:
            return fail(Unauthorized(CHALLENGES))
        user = value.removeprefix("Fake").strip()
        if not user:
            return fail(SIPError("Malformed Authorization", 400))
        return succeed(SIPUser(user, REALM))


def auth(user: str) -> list[tuple[str, str]]:
    """
    The Authorization header the fake authenticator takes for C{user}.
    """
    return [("Authorization", f"Fake {user}")]


def notify() -> Request:
    """
    A NOTIFY inside a dialog, as a notifier sends it.
    """
    return sipRequest(
        "NOTIFY",
        toTag="x1",
        headers=[("Event", "presence"), ("Subscription-State", "active")],
    )


def pidf(entity: str, note: str = "here") -> bytes:
    """
    A small PIDF document (RFC 3863).
    """
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="{entity}">'
        '<tuple id="t1"><status><basic>open</basic></status>'
        f"<note>{note}</note></tuple></presence>\n"
    ).encode()


class UserAgentAuthenticationTests(SynchronousTestCase):
    """
    L{UserAgent.requireAuthentication}: SUBSCRIBE and PUBLISH are
    authenticated before their handlers (RFC 3261 section 22.1), other
    methods never.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.transportLayer = RecordingTransportLayer()
        self.ua = UserAgent(self.clock, self.transportLayer, TimerConfig())
        self.source = Source(FakeSIPConnection("UDP"), "127.0.0.1", 5070)
        self.contexts: list[IRequestContext] = []

        def handle(request: Request, context: IRequestContext) -> None:
            self.contexts.append(context)
            context.respond(200)

        for method in ("SUBSCRIBE", "PUBLISH", "NOTIFY"):
            self.ua.registerMethod(method, FunctionHandler(handle))
        self.authenticator = FakeAuthenticator()
        self.ua.requireAuthentication(self.authenticator)

    def answer(self, request: Request) -> Response:
        before = len(self.transportLayer.responses)
        self.ua.messageReceived(request, self.source)
        sent = [response for response, _ in self.transportLayer.responses[before:]]
        self.assertEqual(len(sent), 1, sent)
        return sent[0]

    def test_rfc3261_22_1_challenge(self) -> None:
        """
        A SUBSCRIBE without credentials is answered 401 with every
        C{WWW-Authenticate} challenge of the authenticator's error, in
        order, with our To tag; the handler never sees it.
        """
        response = self.answer(subscribeRequest())
        self.assertEqual(response.code, 401)
        self.assertEqual(response.reason, "Unauthorized")
        self.assertEqual(response.headers.getAll("WWW-Authenticate"), CHALLENGES)
        self.assertIsNotNone(response.toAddr and response.toAddr.tag)
        self.assertEqual(self.contexts, [])
        self.assertEqual(self.authenticator.asked, ["SUBSCRIBE"])

    def test_rfc3903_14_1_publishChallenged(self) -> None:
        """
        A PUBLISH without credentials is answered 401 too.
        """
        response = self.answer(publishRequest(body=pidf(REALM), contentType=PIDF))
        self.assertEqual(response.code, 401)
        self.assertEqual(self.contexts, [])

    def test_identity(self) -> None:
        """
        An authenticated request reaches its handler with the identity in
        the context, which provides L{IRequestContext} with it.
        """
        response = self.answer(subscribeRequest(headers=auth("alice")))
        self.assertEqual(response.code, 200)
        [context] = self.contexts
        self.assertTrue(verifyObject(IRequestContext, context))
        self.assertEqual(context.identity, SIPUser("alice", REALM))

    def test_unauthenticatedMethodsHaveNoIdentity(self) -> None:
        """
        Without L{UserAgent.requireAuthentication}, or for a method it does
        not cover, a context's identity is C{None}.
        """
        self.answer(notify())
        [context] = self.contexts
        self.assertIsNone(context.identity)

    def test_rfc3261_22_optionsAndNotifyNeverChallenged(self) -> None:
        """
        OPTIONS and NOTIFY are answered without asking the authenticator,
        and cannot be made to be.
        """
        self.assertEqual(self.answer(optionsRequest()).code, 200)
        self.assertEqual(self.answer(notify()).code, 200)
        self.assertEqual(self.authenticator.asked, [])
        for method in ("OPTIONS", "NOTIFY", "ACK", "CANCEL"):
            error = self.assertRaises(
                ValueError,
                self.ua.requireAuthentication,
                self.authenticator,
                ("SUBSCRIBE", method),
            )
            self.assertIn(method, str(error))

    def test_methods(self) -> None:
        """
        C{methods} chooses what is authenticated.
        """
        self.ua.requireAuthentication(self.authenticator, methods=("PUBLISH",))
        self.assertEqual(self.answer(subscribeRequest()).code, 200)
        self.assertEqual(self.authenticator.asked, [])

    def test_rfc3261_8_2_checksFirst(self) -> None:
        """
        The RFC 3261 section 8.2 checks come before authentication: a
        request we would refuse anyway is refused (420, 416, 405) without a
        challenge.
        """
        response = self.answer(subscribeRequest(headers=[("Require", "foo")]))
        self.assertEqual(response.code, 420)
        response = self.answer(sipRequest("SUBSCRIBE", "mailto:bob@example.com"))
        self.assertEqual(response.code, 416)
        response = self.answer(sipRequest("MESSAGE"))
        self.assertEqual(response.code, 405)
        self.assertEqual(self.authenticator.asked, [])

    def test_malformedAuthorization(self) -> None:
        """
        Any other L{SIPError} of the authenticator is answered with its
        status and reason.
        """
        response = self.answer(subscribeRequest(headers=[("Authorization", "Fake")]))
        self.assertEqual(
            (response.code, response.reason), (400, "Malformed Authorization")
        )
        self.assertEqual(self.contexts, [])

    def test_authenticatorCrash(self) -> None:
        """
        An unexpected failure of the authenticator is logged and answered
        500.
        """
        self.authenticator.later = True
        self.ua.messageReceived(subscribeRequest(), self.source)
        self.authenticator.waiting[0].errback(ZeroDivisionError())
        self.assertEqual(self.transportLayer.responses[-1][0].code, 500)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertEqual(self.contexts, [])

    def test_later(self) -> None:
        """
        An authentication that finishes later dispatches then.
        """
        self.authenticator.later = True
        self.ua.messageReceived(subscribeRequest(), self.source)
        self.assertEqual(self.transportLayer.responses, [])
        self.authenticator.waiting[0].callback(SIPUser("alice", REALM))
        self.assertEqual(self.transportLayer.responses[-1][0].code, 200)
        self.assertEqual(self.contexts[0].identity, SIPUser("alice", REALM))

    def test_rfc3261_17_1_2_2_slowAuthentication(self) -> None:
        """
        An authentication that has not finished after Timer F is answered
        408 and cancelled, like a slow handler.
        """
        self.authenticator.later = True
        self.ua.messageReceived(subscribeRequest(), self.source)
        self.clock.advance(TimerConfig().timerF)
        self.assertEqual(self.transportLayer.responses[-1][0].code, 408)
        self.assertEqual(self.authenticator.cancelled, self.authenticator.waiting)
        self.assertEqual(self.contexts, [])


class IdentityTests(SynchronousTestCase):
    """
    L{identityOwns} and the default authorization with authentication on.
    """

    def test_identityOwns(self) -> None:
        """
        A SIP or SIPS URI whose user part is the username exactly and whose
        host is the realm without regard to case belongs to the identity;
        nothing else does.
        """
        alice = SIPUser("alice", "Example.com")
        for text in (
            "sip:alice@example.com",
            "sips:alice@EXAMPLE.com:5061;transport=tls",
        ):
            self.assertTrue(identityOwns(alice, text), text)
            self.assertTrue(identityOwns(alice, parseURI(text)), text)
        for text in (
            "sip:Alice@example.com",
            "sip:alice@example.org",
            "sip:example.com",
            "tel:+15551234",
            "not a uri",
        ):
            self.assertFalse(identityOwns(alice, text), text)

    def test_rfc3842_6_ownerOnly(self) -> None:
        """
        message-summary and every winfo template are for the owner only.
        """
        self.assertTrue(isOwnerOnly("message-summary"))
        self.assertTrue(isOwnerOnly("presence.winfo"))
        self.assertFalse(isOwnerOnly("presence"))

    def test_authenticatedWatchers(self) -> None:
        """
        L{AuthenticatedWatchers} accepts anyone for presence and only the
        owner for message-summary.
        """
        authorizer = AuthenticatedWatchers()
        request = subscribeRequest()
        bob = "sip:bob@127.0.0.1"
        self.assertEqual(
            authorizer.authorize("sip:alice@127.0.0.1", bob, "presence", request),
            ACCEPT,
        )
        self.assertEqual(
            authorizer.authorize(
                "sip:alice@127.0.0.1", bob, "message-summary", request
            ),
            REJECT,
        )
        self.assertEqual(
            authorizer.authorize("sip:bob@127.0.0.1", bob, "message-summary", request),
            ACCEPT,
        )
        self.assertEqual(
            authorizer.authorize("sip:bob@127.0.0.1", bob, "presence.winfo", request),
            ACCEPT,
        )
        self.assertEqual(
            authorizer.authorize("sip:eve@127.0.0.1", bob, "presence.winfo", request),
            REJECT,
        )


@implementer(IPublishAuthorizer)
class RecordingPublishAuthorizer:
    """
    Refuses PUBLISH for resources in C{refused}, and records what it was
    asked.
    """

    def __init__(self, refused: set[str]) -> None:
        self.refused = refused
        self.asked: list[tuple[object, str, str]] = []

    def authorizePublish(
        self,
        identity: ISIPIdentity | None,
        resource: str,
        eventType: str,
        request: Request,
    ) -> bool:
        self.asked.append((identity, resource, eventType))
        return resource not in self.refused


class ServiceAccessTests(SynchronousTestCase):
    """
    L{SIPEventsService} with an authenticator, over in-memory UDP: what an
    authenticated user may subscribe to and publish.
    """

    def setUp(self) -> None:
        self.authenticator = FakeAuthenticator()
        self.publishAuthorizer = RecordingPublishAuthorizer({"sip:pbx@127.0.0.1"})
        self.start()

    def start(self, **kwargs: Any) -> None:
        self.reactor = MemoryUDPReactor()
        self.reactor.advance(NOW)
        kwargs.setdefault("authenticator", self.authenticator)
        kwargs.setdefault("publishAuthorizer", self.publishAuthorizer)
        self.service = SIPEventsService(
            [UDP],
            reactor=self.reactor,
            packages=[PresencePackage(), MessageSummaryPackage()],
            **kwargs,
        )
        self.service.startService()
        self.addCleanup(self.stop)
        [self.port] = self.reactor.udpPorts
        self.read = 0

    def stop(self) -> None:
        if self.service.running:
            self.successResultOf(self.service.stopService())

    def exchange(self, request: Request) -> list[Request | Response]:
        """
        Deliver C{request}, answer each NOTIFY that comes out 200, and
        return what came out.
        """
        udp: MemoryDatagramTransport = self.port
        udp.protocol.datagramReceived(request.toBytes(), ("127.0.0.1", 5070))
        written = self.port.written[self.read :]
        self.read = len(self.port.written)
        out = [parseMessage(data) for data, _ in written]
        for message in out:
            if isinstance(message, Request) and message.method == "NOTIFY":
                udp.protocol.datagramReceived(
                    responseTo(message, 200).toBytes(), ("127.0.0.1", 5070)
                )
        return out

    def response(self, request: Request) -> Response:
        [response] = [m for m in self.exchange(request) if isinstance(m, Response)]
        return response

    def subscribe(self, user: str, **kwargs: Any) -> Response:
        kwargs.setdefault("fromURI", f"sip:{user}@{REALM}")
        return self.response(subscribeRequest(headers=auth(user), **kwargs))

    def test_defaultAuthorizer(self) -> None:
        """
        With an authenticator and no authorizer the service authorizes with
        L{AuthenticatedWatchers}; without an authenticator, L{AcceptAll}.
        """
        self.assertIsInstance(self.service.notifier.authorizer, AuthenticatedWatchers)
        self.assertIs(self.service.userAgent.authenticator, self.authenticator)
        self.start(authenticator=None)
        self.assertIsInstance(self.service.notifier.authorizer, AcceptAll)
        self.assertIsNone(self.service.userAgent.authenticator)

    def test_rfc3856_6_6_1_subscribeAuthenticated(self) -> None:
        """
        A SUBSCRIBE without credentials gets the challenge; with them, any
        authenticated user may watch another's presence.
        """
        response = self.response(subscribeRequest())
        self.assertEqual(response.code, 401)
        self.assertEqual(response.headers.getAll("WWW-Authenticate"), CHALLENGES)
        out = self.exchange(
            subscribeRequest(headers=auth("alice"), callId="c2@127.0.0.1")
        )
        codes = [m.code for m in out if isinstance(m, Response)]
        notifies = [m for m in out if isinstance(m, Request) and m.method == "NOTIFY"]
        self.assertEqual(codes, [200])
        self.assertEqual(len(notifies), 1)

    def test_rfc6665_6_1_forgedFrom(self) -> None:
        """
        An authenticated SUBSCRIBE whose From is not the user's address of
        record is answered 403 and creates nothing.
        """
        response = self.subscribe("alice", fromURI="sip:carol@127.0.0.1")
        self.assertEqual(
            (response.code, response.reason),
            (403, "From is not the authenticated user"),
        )
        response = self.subscribe(
            "alice", fromURI="sip:alice@example.com", callId="c2@127.0.0.1"
        )
        self.assertEqual(response.code, 403)
        self.assertEqual(self.service.store.allSubscriptions(), [])

    def test_rfc6665_6_1_refreshAndUnsubscribeAuthenticated(self) -> None:
        """
        A refresh and an unsubscription are authenticated too, and only
        the subscriber may make them.
        """
        first = self.subscribe("alice")
        self.assertEqual(first.code, 200)
        toTag = first.toAddr.tag if first.toAddr is not None else None
        response = self.response(subscribeRequest(toTag=toTag, cseq=2))
        self.assertEqual(response.code, 401)
        response = self.subscribe("alice", toTag=toTag, cseq=3)
        self.assertEqual(response.code, 200)
        # Carol, authenticated, in alice's dialog.
        response = self.subscribe("carol", toTag=toTag, cseq=4)
        self.assertEqual(response.code, 403)
        response = self.response(subscribeRequest(toTag=toTag, cseq=5, expires=0))
        self.assertEqual(response.code, 401)
        self.assertEqual(len(self.service.store.allSubscriptions()), 1)
        response = self.subscribe("alice", toTag=toTag, cseq=6, expires=0)
        self.assertEqual(response.code, 200)
        self.assertEqual(self.service.store.allSubscriptions(), [])

    def test_rfc3842_6_messageSummaryOwnerOnly(self) -> None:
        """
        Only a mailbox's owner may watch its message-summary; anyone
        authenticated may watch presence.
        """
        response = self.subscribe("alice", event="message-summary")
        self.assertEqual(response.code, 403)
        response = self.subscribe("bob", event="message-summary", callId="c2@127.0.0.1")
        self.assertEqual(response.code, 200)
        response = self.subscribe("carol", callId="c3@127.0.0.1")
        self.assertEqual(response.code, 200)

    def test_rfc3903_14_1_publishOwnState(self) -> None:
        """
        A PUBLISH is authenticated, and an authenticated user publishes
        only their own address of record's state (403 for anyone else's).
        """
        own = publishRequest(
            f"sip:alice@{REALM}",
            body=pidf(f"sip:alice@{REALM}"),
            contentType=PIDF,
            headers=auth("alice"),
        )
        self.assertEqual(self.response(own).code, 200)
        unauthenticated = publishRequest(
            f"sip:alice@{REALM}", body=pidf(f"sip:alice@{REALM}"), contentType=PIDF
        )
        self.assertEqual(self.response(unauthenticated).code, 401)
        others = publishRequest(
            f"sip:bob@{REALM}",
            body=pidf(f"sip:bob@{REALM}"),
            contentType=PIDF,
            headers=auth("alice"),
        )
        response = self.response(others)
        self.assertEqual(
            (response.code, response.reason),
            (403, "Not the authenticated user's address of record"),
        )
        self.assertEqual(
            [r.resource for r in self.service.store.allPublications()],
            [f"sip:alice@{REALM}"],
        )

    def test_rfc3903_14_1_othersEntityTag(self) -> None:
        """
        An entity-tag of someone else's publication is of no use: a
        refresh, modification or removal of it by another authenticated
        user is answered 403, and the publication stays.
        """
        resource = f"sip:alice@{REALM}"
        response = self.response(
            publishRequest(
                resource, body=pidf(resource), contentType=PIDF, headers=auth("alice")
            )
        )
        etag = response.headers.get("SIP-ETag")
        assert etag is not None
        for request in [
            publishRequest(resource, etag=etag, headers=auth("carol")),
            publishRequest(
                resource,
                etag=etag,
                body=pidf(resource, "gone"),
                contentType=PIDF,
                headers=auth("carol"),
            ),
            publishRequest(resource, etag=etag, expires=0, headers=auth("carol")),
        ]:
            self.assertEqual(self.response(request).code, 403)
        [record] = self.service.store.allPublications()
        self.assertEqual(record.etag, etag)
        removal = publishRequest(resource, etag=etag, expires=0, headers=auth("alice"))
        self.assertEqual(self.response(removal).code, 200)
        self.assertEqual(self.service.store.allPublications(), [])

    def test_rfc3903_14_1_publishAuthorizer(self) -> None:
        """
        The L{IPublishAuthorizer} is asked with the identity, resource and
        event type, and may refuse (403) what the own-state check lets
        through.
        """
        response = self.response(
            publishRequest(
                "sip:pbx@127.0.0.1",
                body=pidf("sip:pbx@127.0.0.1"),
                contentType=PIDF,
                headers=auth("pbx"),
            )
        )
        self.assertEqual(
            (response.code, response.reason), (403, "Publication not authorized")
        )
        self.assertEqual(
            self.publishAuthorizer.asked,
            [(SIPUser("pbx", REALM), "sip:pbx@127.0.0.1", "presence")],
        )
        self.assertEqual(self.service.store.allPublications(), [])

    def test_publishAuthorizerWithoutAuthentication(self) -> None:
        """
        Without authentication the publish authorizer is asked with no
        identity.
        """
        self.start(authenticator=None)
        response = self.response(
            publishRequest(body=pidf("sip:bob@127.0.0.1"), contentType=PIDF)
        )
        self.assertEqual(response.code, 200)
        self.assertEqual(
            self.publishAuthorizer.asked, [(None, "sip:bob@127.0.0.1", "presence")]
        )

    def test_optionsNotChallenged(self) -> None:
        """
        OPTIONS is answered 200 without credentials.
        """
        self.assertEqual(self.response(optionsRequest()).code, 200)
        self.assertEqual(self.authenticator.asked, [])
