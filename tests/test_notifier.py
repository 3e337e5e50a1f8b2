# -*- test-case-name: tests.test_notifier -*-
"""
Tests for L{sipevents.notifier.notifier}: SUBSCRIBE handling (RFC 6665 section
4.2.1), NOTIFY generation (section 4.2.2), coalescing (section 5.4.10), the
application API and restarts, with whole SUBSCRIBE/NOTIFY exchanges run
through a real L{UserAgent} on a fake transport layer and a L{Clock}, with
the real L{MemoryStore}, L{PackageRegistry} and L{PublicationManager}.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from sipevents import testing
from sipevents.errors import BadEvent, SIPError
from sipevents.interfaces import (
    IEventPackage,
    INotifier,
    IRequestHandler,
    ISubscriptionAuthorizer,
)
from sipevents.notifier.authorization import ACCEPT, REJECT, KnownResources, RejectAll
from sipevents.notifier.notifier import Notifier
from sipevents.notifier.publication import PublicationManager
from sipevents.packages import PackageRegistry
from sipevents.packages.presence import PIDF_TYPE, PresencePackage
from sipevents.records import ACTIVE, PENDING, SubscriptionRecord
from sipevents.sip.addresses import Source, Target
from sipevents.sip.dialog import SUBSCRIPTION_ENDING_CODES
from sipevents.sip.message import Request, Response
from sipevents.sip.parser import parseMessage
from sipevents.sip.useragent import UserAgent
from sipevents.store.memory import MemoryStore
from sipevents.testing import FakeSIPConnection, RecordingTransportLayer, responseTo

#: The event package of most tests.
PKG = "test-state"
#: The resource of most tests.
BOB = "sip:bob@127.0.0.1"


@implementer(IEventPackage)
class TextPackage:
    """
    A small event package: the state is the text of the publications
    joined with C{" + "}; neutral state says C{"neutral"} and the
    subscription state.
    """

    name = PKG
    templates = ("sub",)
    contentTypes = ("text/plain", "application/x-test")
    publishContentTypes = ("text/plain",)

    def __init__(
        self,
        defaultExpires: int = 600,
        minExpires: int = 60,
        maxExpires: int = 3600,
        minNotifyInterval: float = 0.0,
    ) -> None:
        self.defaultExpires = defaultExpires
        self.minExpires = minExpires
        self.maxExpires = maxExpires
        self.minNotifyInterval = minNotifyInterval

    def parsePublication(self, contentType: str, body: bytes) -> object:
        if body == b"bad":
            raise SIPError("Bad Test Body", 400)
        return body.decode()

    def composeState(self, resource: str, documents: Sequence[object]) -> object:
        return " + ".join(str(d) for d in documents)

    def renderState(
        self, state: object | None, contentType: str, subscription: SubscriptionRecord
    ) -> bytes:
        if state is None:
            text = f"neutral {subscription.state}"
        else:
            text = str(state)
        if contentType != "text/plain":
            text += f" as {contentType}"
        return text.encode()


def subscribeRequest(
    uri: str = BOB, *, event: str | None = PKG, toURI: str = BOB, **kwargs: Any
) -> Request:
    """
    L{sipevents.testing.subscribeRequest} for L{TextPackage}, To the
    resource whatever the Request-URI.
    """
    return testing.subscribeRequest(uri, event=event, toURI=toURI, **kwargs)


class NotifierMixin:
    """
    A notifier on a user agent with a fake transport layer, a L{Clock}, a
    L{MemoryStore}, a L{PackageRegistry} with L{TextPackage} (and the
    presence package) and a L{PublicationManager}.
    """

    #: Options for L{TextPackage}.
    packageOptions: dict[str, Any] = {}
    #: Options for L{Notifier}.
    notifierOptions: dict[str, Any] = {}

    def setUp(self) -> None:
        self.clock = Clock()
        self.transportLayer = RecordingTransportLayer()
        self.ua = UserAgent(self.clock, self.transportLayer)
        self.store = MemoryStore()
        self.package = TextPackage(**self.packageOptions)
        self.registry = PackageRegistry([self.package, PresencePackage()])
        self.publications = PublicationManager(self.clock, self.store, self.registry)
        self.publications.install(self.ua)
        self.notifier = self.makeNotifier(**self.notifierOptions)
        self.udp = FakeSIPConnection("UDP", "127.0.0.1", 5060)
        self.source = Source(self.udp, "127.0.0.1", 5070)

    def makeNotifier(self, **options: Any) -> Notifier:
        """
        A started notifier on the harness's store, wired to the user agent
        and the publication manager.
        """
        notifier = Notifier(
            self.clock, self.ua, self.store, self.registry, self.publications, **options
        )
        notifier.install()
        self.publications.onStateChanged = notifier.stateChanged
        self.successResultOf(notifier.start())  # type: ignore[attr-defined]
        return notifier

    def send(self, request: Request, source: Source | None = None) -> Response:
        """
        Deliver C{request} and return the final response it got.
        """
        before = len(self.transportLayer.responses)
        self.ua.messageReceived(request, source or self.source)
        sent = [r for r, _ in self.transportLayer.responses[before:] if r.code >= 200]
        assert len(sent) == 1, sent
        return sent[0]

    def notifies(self) -> list[Request]:
        """
        Every NOTIFY sent so far (retransmissions counted once), in order.
        """
        seen: list[Request] = []
        for request, _ in self.transportLayer.requests:
            if request.method == "NOTIFY" and not any(r is request for r in seen):
                seen.append(request)
        return seen

    def targets(self) -> list[Target]:
        """
        Where each NOTIFY of L{notifies} went.
        """
        out: list[Target] = []
        seen: list[Request] = []
        for request, target in self.transportLayer.requests:
            if request.method == "NOTIFY" and not any(r is request for r in seen):
                seen.append(request)
                out.append(target)
        return out

    def answer(
        self, notify: Request, code: int = 200, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        """
        Answer C{notify} as the subscriber would.
        """
        self.ua.messageReceived(responseTo(notify, code, headers=headers), self.source)

    def answerAll(self, code: int = 200) -> None:
        """
        Answer every NOTIFY not answered yet.
        """
        for notify in self.notifies():
            if id(notify) not in self._answered:
                self._answered.add(id(notify))
                self.answer(notify, code)

    @property
    def _answered(self) -> set[int]:
        answered: set[int] | None = self.__dict__.get("_answeredSet")
        if answered is None:
            answered = self.__dict__["_answeredSet"] = set()
        return answered

    def subscribe(self, **kwargs: Any) -> tuple[Response, Request | None]:
        """
        Send a SUBSCRIBE, answer its NOTIFY 200, and return the response
        and the NOTIFY (or C{None}).
        """
        before = len(self.notifies())
        response = self.send(subscribeRequest(**kwargs))
        new = self.notifies()[before:]
        self.answerAll()
        return response, new[-1] if new else None

    def refresh(
        self, response: Response, **kwargs: Any
    ) -> tuple[Response, Request | None]:
        """
        Send an in-dialog SUBSCRIBE for the dialog C{response} created.
        """
        toAddr = response.toAddr
        assert toAddr is not None
        kwargs.setdefault("toTag", toAddr.tag)
        kwargs.setdefault("uri", "sip:127.0.0.1:5060")
        kwargs.setdefault("cseq", 2)
        return self.subscribe(**kwargs)

    def setState(self, body: bytes, resource: str = BOB, eventType: str = PKG) -> None:
        """
        Set the application's state of C{resource}.
        """
        self.successResultOf(
            self.notifier.setState(eventType, resource, "text/plain", body)  # type: ignore[attr-defined]
        )


def substate(notify: Request) -> str:
    """
    The Subscription-State of C{notify} as written.
    """
    value = notify.headers.get("Subscription-State")
    assert value is not None
    return value


class InterfaceTests(NotifierMixin, SynchronousTestCase):
    """
    The notifier provides its interfaces.
    """

    def test_verifyObject(self) -> None:
        """
        L{Notifier} provides L{INotifier} and L{IRequestHandler}.
        """
        self.assertTrue(verifyObject(INotifier, self.notifier))
        self.assertTrue(verifyObject(IRequestHandler, self.notifier))

    def test_rfc6665_4_4_4_installed(self) -> None:
        """
        L{Notifier.install} serves SUBSCRIBE and lists our event types in
        Allow-Events of OPTIONS (RFC 6665 section 4.4.4).
        """
        self.assertIs(self.ua.handlerFor("SUBSCRIBE"), self.notifier)
        self.assertEqual(
            self.ua.allowEvents(), ["test-state", "test-state.sub", "presence"]
        )


class EstablishmentTests(NotifierMixin, SynchronousTestCase):
    """
    Initial SUBSCRIBE processing (RFC 6665 section 4.2.1.1 and 4.2.1.2).
    """

    def test_rfc6665_4_2_3_noEventPint489(self) -> None:
        """
        PINT is not supported: a SUBSCRIBE without Event gets 489 with
        Allow-Events (RFC 6665 section 4.2.3).
        """
        response = self.send(subscribeRequest(event=None))
        self.assertEqual(response.code, 489)
        self.assertEqual(
            response.headers.get("Allow-Events"), "test-state, test-state.sub, presence"
        )
        self.assertEqual(self.notifies(), [])

    def test_rfc6665_4_2_1_1_unknownEvent489(self) -> None:
        """
        An event package we do not serve gets 489 with Allow-Events.
        """
        response = self.send(subscribeRequest(event="dialog"))
        self.assertEqual(response.code, 489)
        self.assertIn("presence", response.headers.get("Allow-Events") or "")
        self.assertEqual(self.store.allSubscriptions(), [])

    def test_rfc6665_5_2_unservedTemplate489(self) -> None:
        """
        A template the package does not serve gets 489 (RFC 6665 section
        5.2); one it serves is accepted.
        """
        self.assertEqual(self.send(subscribeRequest(event="presence.winfo")).code, 489)
        response, notify = self.subscribe(event="test-state.sub", callId="call-2")
        self.assertEqual(response.code, 200)
        assert notify is not None
        self.assertEqual(notify.headers.get("Event"), "test-state.sub")

    def test_rfc3261_8_2_2_badEventHeader400(self) -> None:
        """
        A malformed Event header gets 400.
        """
        self.assertEqual(self.send(subscribeRequest(event="bad event")).code, 400)

    def test_rfc6665_3_1_1_expiresAbsentPackageDefault(self) -> None:
        """
        Without Expires, the package's default duration is granted (RFC 6665
        section 3.1.1).
        """
        response, notify = self.subscribe(expires=None)
        self.assertEqual(response.headers.get("Expires"), "600")
        assert notify is not None
        self.assertEqual(substate(notify), "active;expires=600")

    def test_rfc6665_4_2_1_1_expiresAboveMaxShortened(self) -> None:
        """
        A duration above the maximum is shortened to it, never lengthened
        (RFC 6665 section 4.2.1.1).
        """
        response, notify = self.subscribe(expires=86400)
        self.assertEqual(response.headers.get("Expires"), "3600")
        [record] = self.store.allSubscriptions()
        self.assertEqual(record.expiresAt, 3600)

    def test_rfc6665_4_2_1_1_intervalTooBrief423(self) -> None:
        """
        0 < Expires < 3600 and below the minimum gets 423 with Min-Expires
        (RFC 6665 section 4.2.1.1); nothing is created.
        """
        response = self.send(subscribeRequest(expires=30))
        self.assertEqual(response.code, 423)
        self.assertEqual(response.headers.get("Min-Expires"), "60")
        self.assertEqual(self.store.allSubscriptions(), [])
        self.assertEqual(self.notifies(), [])

    def test_rfc6665_4_2_1_1_operatorMinimumOverrides(self) -> None:
        """
        The notifier's C{minExpires} and C{maxExpires} (C{--min-expires},
        C{--max-expires}) override the package's; 423 is never sent for an
        hour or more, even below such a minimum.
        """
        self.notifier = self.makeNotifier(minExpires=7200, maxExpires=10000)
        response = self.send(subscribeRequest(expires=3599))
        self.assertEqual(response.code, 423)
        self.assertEqual(response.headers.get("Min-Expires"), "7200")
        response, _ = self.subscribe(expires=3600, callId="call-2")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.headers.get("Expires"), "3600")
        response, _ = self.subscribe(expires=20000, callId="call-3")
        self.assertEqual(response.headers.get("Expires"), "10000")

    def test_rfc3261_21_4_7_unacceptableAccept406(self) -> None:
        """
        An Accept allowing none of the package's body types gets 406 with
        the types we can send (RFC 6665 section 3.2.1, RFC 3261 section
        21.4.7); an empty Accept accepts nothing (RFC 3261 section 20.1).
        """
        response = self.send(subscribeRequest(accept="application/pidf+xml"))
        self.assertEqual(response.code, 406)
        self.assertEqual(
            response.headers.get("Accept"), "text/plain, application/x-test"
        )
        self.assertEqual(self.send(subscribeRequest(accept="", callId="c2")).code, 406)
        self.assertEqual(self.store.allSubscriptions(), [])

    def test_rfc6665_3_1_3_acceptChoosesBodyType(self) -> None:
        """
        The NOTIFY body is of the type the subscriber's Accept rates
        highest among the package's types (RFC 6665 section 3.1.3).
        """
        _, notify = self.subscribe(accept="text/plain;q=0.5, application/x-test")
        assert notify is not None
        self.assertEqual(notify.headers.get("Content-Type"), "application/x-test")
        self.assertEqual(notify.body, b"neutral active as application/x-test")

    def test_rfc6665_4_2_1_1_unknownResource404(self) -> None:
        """
        A resource policy that does not know the resource gets 404.
        """
        self.notifier = self.makeNotifier(
            resourcePolicy=KnownResources(["sip:carol@*"])
        )
        self.assertEqual(self.send(subscribeRequest()).code, 404)
        response, _ = self.subscribe(
            uri="sip:carol@127.0.0.1", toURI="sip:carol@127.0.0.1", callId="call-2"
        )
        self.assertEqual(response.code, 200)

    def test_rfc6665_4_2_1_1_deferredResourcePolicy(self) -> None:
        """
        A resource policy may answer with a L{Deferred}: the SUBSCRIBE is
        answered once it fires.
        """
        answers: list[Deferred[bool]] = []

        class Policy:
            def isKnown(self, resource: str, eventType: str) -> Deferred[bool]:
                d: Deferred[bool] = Deferred()
                answers.append(d)
                return d

        self.notifier = self.makeNotifier(resourcePolicy=Policy())
        self.ua.messageReceived(subscribeRequest(), self.source)
        self.assertEqual(self.transportLayer.responses, [])
        answers[0].callback(True)
        [(response, _)] = self.transportLayer.responses
        self.assertEqual(response.code, 200)
        self.assertEqual(len(self.notifies()), 1)
        self.ua.messageReceived(subscribeRequest(callId="call-2"), self.source)
        answers[1].callback(False)
        self.assertEqual(self.transportLayer.responses[-1][0].code, 404)

    def test_rfc3261_12_1_1_okResponse(self) -> None:
        """
        The 200 carries Expires, a To tag, our Contact (the address the
        SUBSCRIBE came to) and the request's Record-Route in order (RFC 6665
        section 4.2.1.1, RFC 3261 section 12.1.1); Allow-Events too (RFC
        6665 section 4.4.4).
        """
        response, _ = self.subscribe(
            headers=[
                ("Record-Route", "<sip:p1.invalid;lr>"),
                ("Record-Route", "<sip:p2.invalid;lr>"),
            ]
        )
        self.assertEqual(response.code, 200)
        self.assertEqual(response.headers.get("Expires"), "600")
        toAddr = response.toAddr
        assert toAddr is not None
        self.assertIsNotNone(toAddr.tag)
        self.assertEqual(response.headers.get("Contact"), "<sip:127.0.0.1:5060>")
        self.assertEqual(
            response.headers.getAll("Record-Route"),
            ["<sip:p1.invalid;lr>", "<sip:p2.invalid;lr>"],
        )
        self.assertIsNotNone(response.headers.get("Allow-Events"))

    def test_rfc3261_12_1_1_contactCarriesTransport(self) -> None:
        """
        A SUBSCRIBE that came over TCP gets a Contact with
        C{transport=tcp}, at the address of the connection; its NOTIFYs go
        back on that connection's address when there is no route set.
        """
        tcp = FakeSIPConnection("TCP", "127.0.0.1", 5080)
        source = Source(tcp, "127.0.0.1", 40001)
        response = self.send(
            subscribeRequest(
                transport="TCP", contact="<sip:alice@127.0.0.1:5070;transport=tcp>"
            ),
            source,
        )
        self.assertEqual(
            response.headers.get("Contact"), "<sip:127.0.0.1:5080;transport=tcp>"
        )
        [notify] = self.notifies()
        self.assertEqual(
            notify.headers.get("Contact"), "<sip:127.0.0.1:5080;transport=tcp>"
        )
        self.assertEqual(self.targets(), [Target("TCP", "127.0.0.1", 40001)])

    def test_rfc3261_12_1_1_wildcardListenerContact(self) -> None:
        """
        For a socket bound to every interface, the Contact uses the address
        the transport layer would write in Via.
        """
        wildcard = FakeSIPConnection("UDP", "0.0.0.0", 5060)
        response = self.send(subscribeRequest(), Source(wildcard, "127.0.0.1", 5070))
        self.assertEqual(response.headers.get("Contact"), "<sip:127.0.0.1:5060>")

    def test_rfc3261_8_1_1_8_missingContact400(self) -> None:
        """
        A SUBSCRIBE without Contact, or with one that is not SIP, gets 400:
        no NOTIFY could reach the subscriber (RFC 3261 section 8.1.1.8).
        """
        self.assertEqual(self.send(subscribeRequest(contact=None)).code, 400)
        self.assertEqual(
            self.send(subscribeRequest(contact="<tel:+123>", callId="c2")).code, 400
        )
        self.assertEqual(
            self.send(subscribeRequest(contact="*", callId="c3")).code, 400
        )
        self.assertEqual(
            self.send(
                subscribeRequest(
                    contact="<sip:a@127.0.0.1>, <sip:b@127.0.0.1>", callId="c4"
                )
            ).code,
            400,
        )
        self.assertEqual(self.store.allSubscriptions(), [])

    def test_rfc3261_12_1_1_dialogState(self) -> None:
        """
        The subscription keeps its dialog (RFC 3261 section 12.1.1): route
        set from Record-Route, remote target from Contact, remote CSeq, the
        tags, and the To and From URIs.
        """
        response, _ = self.subscribe(
            cseq=7,
            headers=[("Record-Route", "<sip:p1.invalid;lr>, <sip:p2.invalid;lr>")],
        )
        [record] = self.store.allSubscriptions()
        toAddr = response.toAddr
        assert toAddr is not None
        self.assertEqual(record.localTag, toAddr.tag)
        self.assertEqual(record.remoteTag, "ft1")
        self.assertEqual(record.callId, "call-1@127.0.0.1")
        self.assertEqual(
            record.routeSet, ("<sip:p1.invalid;lr>", "<sip:p2.invalid;lr>")
        )
        self.assertEqual(record.remoteTarget, "sip:alice@127.0.0.1:5070")
        self.assertEqual(record.remoteCSeq, 7)
        # Plain addresses are kept as bare URIs, the watcher's shared.
        self.assertEqual(record.localUri, BOB)
        self.assertEqual(record.remoteUri, "sip:alice@127.0.0.1")
        self.assertEqual(record.watcher, "sip:alice@127.0.0.1")
        self.assertIs(record.watcher, record.remoteUri)
        self.assertEqual(record.resource, BOB)
        self.assertEqual(record.eventType, PKG)
        self.assertEqual(record.state, ACTIVE)
        self.assertEqual(
            (record.flowTransport, record.flowHost, record.flowPort),
            ("UDP", "127.0.0.1", 5070),
        )

    def test_rfc6665_4_2_1_2_notifyRightAfter200(self) -> None:
        """
        Right after the 200, a NOTIFY with the current state goes out on
        the dialog (RFC 6665 section 4.2.1.2 and 4.2.2): Event, active
        Subscription-State with the seconds remaining, Content-Type, our
        Contact, Max-Forwards 70, From and To with the dialog's tags, the
        Call-ID, and a CSeq; to the remote target.
        """
        self.setState(b"busy")
        order: list[str] = []
        original = self.transportLayer.sendResponse

        def sendResponse(response: Response, source: Source) -> None:
            order.append(str(response.code))
            original(response, source)

        self.transportLayer.sendResponse = sendResponse  # type: ignore[method-assign]
        realSend = self.transportLayer.sendRequest

        def sendRequest(request: Request, target: Target) -> Deferred[None]:
            order.append(request.method)
            return realSend(request, target)

        self.transportLayer.sendRequest = sendRequest  # type: ignore[method-assign]
        response, notify = self.subscribe()
        self.assertEqual(order[:2], ["200", "NOTIFY"])
        assert notify is not None
        toAddr = response.toAddr
        assert toAddr is not None
        headers = notify.headers
        self.assertEqual(str(notify.uri), "sip:alice@127.0.0.1:5070")
        self.assertEqual(headers.get("Event"), PKG)
        self.assertEqual(substate(notify), "active;expires=600")
        self.assertEqual(headers.get("Content-Type"), "text/plain")
        self.assertEqual(notify.body, b"busy")
        self.assertEqual(headers.get("Contact"), "<sip:127.0.0.1:5060>")
        self.assertEqual(headers.get("Max-Forwards"), "70")
        self.assertEqual(headers.get("From"), f"<{BOB}>;tag={toAddr.tag}")
        self.assertEqual(headers.get("To"), "<sip:alice@127.0.0.1>;tag=ft1")
        self.assertEqual(headers.get("Call-ID"), "call-1@127.0.0.1")
        cseq = notify.cseq
        assert cseq is not None
        self.assertEqual(cseq.method, "NOTIFY")
        self.assertIsNone(headers.get("Route"))
        self.assertEqual(self.targets(), [Target("UDP", "127.0.0.1", 5070)])

    def test_rfc6665_4_2_1_2_neutralStateWhenUnpublished(self) -> None:
        """
        A resource nobody published has neutral state (RFC 6665 section
        4.2.1.2 and 5.4.7).
        """
        _, notify = self.subscribe()
        assert notify is not None
        self.assertEqual(notify.body, b"neutral active")

    def test_rfc3856_presenceNeutralDocument(self) -> None:
        """
        With the presence package, the first NOTIFY is a neutral PIDF
        document for the resource.
        """
        _, notify = self.subscribe(event="presence")
        assert notify is not None
        self.assertEqual(notify.headers.get("Content-Type"), PIDF_TYPE)
        self.assertIn(b"<presence", notify.body)
        self.assertIn(BOB.encode(), notify.body)

    def test_rfc3261_12_2_1_1_looseRouting(self) -> None:
        """
        With a loose-routing route set, the NOTIFY goes to the first route,
        with the remote target as Request-URI and the route set in Route
        (RFC 3261 section 12.2.1.1).
        """
        _, notify = self.subscribe(
            headers=[("Record-Route", "<sip:127.0.0.2:5099;lr>, <sip:p2.invalid;lr>")]
        )
        assert notify is not None
        self.assertEqual(str(notify.uri), "sip:alice@127.0.0.1:5070")
        self.assertEqual(
            notify.headers.get("Route"), "<sip:127.0.0.2:5099;lr>, <sip:p2.invalid;lr>"
        )
        self.assertEqual(self.targets(), [Target("UDP", "127.0.0.2", 5099)])

    def test_rfc3261_12_2_1_1_strictRouting(self) -> None:
        """
        With a strict router first, its URI is the Request-URI and the
        remote target ends the Route (RFC 3261 section 12.2.1.1).
        """
        _, notify = self.subscribe(
            headers=[("Record-Route", "<sip:127.0.0.3:5098>, <sip:p2.invalid;lr>")]
        )
        assert notify is not None
        self.assertEqual(str(notify.uri), "sip:127.0.0.3:5098")
        self.assertEqual(
            notify.headers.get("Route"),
            "<sip:p2.invalid;lr>, <sip:alice@127.0.0.1:5070>",
        )
        self.assertEqual(self.targets(), [Target("UDP", "127.0.0.3", 5098)])

    def test_rfc6665_4_4_3_poll(self) -> None:
        """
        An initial SUBSCRIBE with Expires: 0 is a fetch (RFC 6665 section
        4.4.3): 200 with Expires: 0 and one NOTIFY
        C{terminated;reason=timeout} carrying the state; nothing is kept.
        """
        self.setState(b"away")
        response, notify = self.subscribe(expires=0)
        self.assertEqual(response.code, 200)
        self.assertEqual(response.headers.get("Expires"), "0")
        assert notify is not None
        self.assertEqual(substate(notify), "terminated;reason=timeout")
        self.assertEqual(notify.body, b"away")
        self.assertEqual(len(self.notifies()), 1)
        self.assertEqual(self.store.allSubscriptions(), [])
        self.assertEqual(len(self.notifier._expiry), 0)
        self.setState(b"back")
        self.assertEqual(len(self.notifies()), 1)

    def test_rfc6665_4_2_1_initialSubscribeLogged(self) -> None:
        """
        Creation, refresh and termination are logged with structured
        fields when the notifier's C{logLifecycle} is set.
        """
        self.notifier.logLifecycle = True
        with capturedLogs() as events:
            response, _ = self.subscribe()
            self.refresh(response, expires=0)
        keys = [e.get("key") for e in events if "key" in e]
        self.assertTrue(keys)
        formats = " ".join(str(e.get("log_format")) for e in events)
        self.assertIn("created", formats)
        self.assertIn("terminated", formats)
        created = [e for e in events if "created" in str(e.get("log_format"))]
        self.assertEqual(created[0]["resource"], BOB)
        self.assertEqual(created[0]["eventType"], PKG)


class AuthorizationTests(NotifierMixin, SynchronousTestCase):
    """
    The authorizer decides (RFC 6665 section 4.2.1.3).
    """

    def test_rfc6665_4_2_1_lifecycleNotLoggedByDefault(self) -> None:
        """
        By default a subscription's creation and termination log nothing:
        twistd writes every event to its log file whatever its level, and
        a busy server has thousands a second.
        """
        with capturedLogs() as events:
            response, _ = self.subscribe()
            self.refresh(response, expires=0)
        self.assertEqual([e for e in events if "key" in e], [])

    def test_rfc6665_4_2_1_3_immediateReject403(self) -> None:
        """
        An immediate rejection answers 403 and creates nothing.
        """
        self.notifier = self.makeNotifier(authorizer=RejectAll())
        response = self.send(subscribeRequest())
        self.assertEqual(response.code, 403)
        self.assertEqual(self.notifies(), [])
        self.assertEqual(self.store.allSubscriptions(), [])

    def test_rfc6665_4_2_1_3_firedDeferredIsImmediate(self) -> None:
        """
        A L{Deferred} that has already fired is an immediate answer.
        """

        class Authorizer:
            def authorize(
                self, watcher: str, resource: str, eventType: str, request: Request
            ) -> Deferred[str]:
                return succeed(REJECT if "mallory" in watcher else ACCEPT)

        self.notifier = self.makeNotifier(authorizer=Authorizer())
        response, notify = self.subscribe()
        self.assertEqual(response.code, 200)
        assert notify is not None
        self.assertTrue(substate(notify).startswith("active"))

    def deferredAuthorizer(self) -> list[Deferred[str]]:
        """
        Make the notifier's authorizer answer with L{Deferred}s, returned.
        """
        pending: list[Deferred[str]] = []

        @implementer(ISubscriptionAuthorizer)
        class Authorizer:
            def authorize(
                self, watcher: str, resource: str, eventType: str, request: Request
            ) -> Deferred[str]:
                d: Deferred[str] = Deferred()
                pending.append(d)
                return d

        self.assertTrue(verifyObject(ISubscriptionAuthorizer, Authorizer()))
        self.notifier.authorizer = Authorizer()
        return pending

    def test_rfc6665_4_2_1_3_pendingThenActive(self) -> None:
        """
        An undecided authorizer makes the subscription pending: 200 and a
        NOTIFY C{pending} with neutral state, even when state is published;
        once accepted, a NOTIFY C{active} with the state.
        """
        decisions = self.deferredAuthorizer()
        self.setState(b"secret")
        response, notify = self.subscribe()
        self.assertEqual(response.code, 200)
        assert notify is not None
        self.assertEqual(substate(notify), "pending;expires=600")
        self.assertEqual(notify.body, b"neutral pending")
        [record] = self.store.allSubscriptions()
        self.assertEqual(record.state, PENDING)
        # State changes are not sent while pending.
        self.setState(b"still secret")
        self.assertEqual(len(self.notifies()), 1)
        self.clock.advance(10)
        decisions[0].callback(ACCEPT)
        notify = self.notifies()[-1]
        self.assertEqual(substate(notify), "active;expires=590")
        self.assertEqual(notify.body, b"still secret")
        [record] = self.store.allSubscriptions()
        self.assertEqual(record.state, ACTIVE)

    def test_rfc6665_4_2_1_3_pendingThenRejected(self) -> None:
        """
        A later rejection ends the subscription with
        C{terminated;reason=rejected} and no body.
        """
        decisions = self.deferredAuthorizer()
        self.subscribe()
        decisions[0].callback(REJECT)
        notify = self.notifies()[-1]
        self.assertEqual(substate(notify), "terminated;reason=rejected")
        self.assertEqual(notify.body, b"")
        self.assertIsNone(notify.headers.get("Content-Type"))
        self.assertEqual(self.store.allSubscriptions(), [])

    def test_rfc6665_4_2_1_3_authorizerFailureGivesUp(self) -> None:
        """
        A failed decision ends a pending subscription with
        C{reason=giveup}, and is logged.
        """
        decisions = self.deferredAuthorizer()
        self.subscribe()
        decisions[0].errback(RuntimeError("directory down"))
        self.assertEqual(substate(self.notifies()[-1]), "terminated;reason=giveup")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_rfc6665_4_2_1_3_decisionAfterUnsubscribeIgnored(self) -> None:
        """
        A subscription that ended before the decision came has its
        L{Deferred} cancelled; nothing more is sent.
        """
        decisions = self.deferredAuthorizer()
        response, _ = self.subscribe()
        self.refresh(response, expires=0)
        count = len(self.notifies())
        self.assertTrue(decisions[0].called)
        self.assertEqual(len(self.notifies()), count)

    def test_rfc3265_pending202(self) -> None:
        """
        In RFC 3265 compatibility mode a pending subscription is answered
        202 (RFC 3265 section 3.1.6.1); an accepted one still 200.
        """
        self.notifier = self.makeNotifier(rfc3265Compat=True)
        decisions = self.deferredAuthorizer()
        response, _ = self.subscribe()
        self.assertEqual(response.code, 202)
        decisions[0].callback(ACCEPT)
        response, _ = self.refresh(response)
        self.assertEqual(response.code, 200)

    def test_rfc6665_4_2_1_3_pendingAfterRestartReauthorized(self) -> None:
        """
        A pending subscription restored after a restart has lost its
        authorizer L{Deferred}: a refresh asks the authorizer again.
        """
        decisions = self.deferredAuthorizer()
        response, _ = self.subscribe()
        self.successResultOf(self.notifier.stop())
        self.notifier = self.makeNotifier()
        response, notify = self.refresh(response)
        assert notify is not None
        self.assertEqual(substate(notify), "active;expires=600")
        self.assertEqual(len(decisions), 1)

    def test_rfc6665_4_2_1_3_pollWhilePending(self) -> None:
        """
        A fetch the authorizer has not decided gets neutral state.
        """
        decisions = self.deferredAuthorizer()
        self.setState(b"secret")
        _, notify = self.subscribe(expires=0)
        assert notify is not None
        self.assertEqual(substate(notify), "terminated;reason=timeout")
        self.assertEqual(notify.body, b"neutral pending")
        self.assertTrue(decisions[0].called)


class RefreshTests(NotifierMixin, SynchronousTestCase):
    """
    SUBSCRIBE inside a dialog (RFC 6665 section 4.2.1.4 and 4.5.2, RFC 3261
    section 12.2.2).
    """

    def test_rfc6665_4_2_1_4_refresh(self) -> None:
        """
        A refresh gets a new duration (never longer than asked), 200 with
        it, and a NOTIFY with a higher CSeq in the same dialog.
        """
        response, first = self.subscribe()
        self.clock.advance(100)
        response2, second = self.refresh(response, expires=300)
        self.assertEqual(response2.code, 200)
        self.assertEqual(response2.headers.get("Expires"), "300")
        assert first is not None and second is not None
        self.assertEqual(substate(second), "active;expires=300")
        cseq1, cseq2 = first.cseq, second.cseq
        assert cseq1 is not None and cseq2 is not None
        self.assertEqual(cseq2.number, cseq1.number + 1)
        self.assertEqual(second.headers.get("From"), first.headers.get("From"))
        [record] = self.store.allSubscriptions()
        self.assertEqual(record.expiresAt, 400)
        self.assertEqual(record.remoteCSeq, 2)
        # The old deadline is gone: nothing at 600.
        self.clock.advance(250)
        self.assertEqual(len(self.notifies()), 2)

    def test_rfc6665_4_2_1_4_refreshShortenedToMax(self) -> None:
        """
        A refresh asking for more than the maximum gets the maximum.
        """
        response, _ = self.subscribe()
        response2, notify = self.refresh(response, expires=99999)
        self.assertEqual(response2.headers.get("Expires"), "3600")

    def test_rfc6665_4_2_1_4_refreshTooBrief423(self) -> None:
        """
        A refresh below the minimum gets 423; the subscription is unchanged.
        """
        response, _ = self.subscribe()
        response2 = self.send(
            subscribeRequest(
                uri="sip:127.0.0.1:5060",
                toTag=(response.toAddr.tag if response.toAddr else None),
                cseq=2,
                expires=10,
            )
        )
        self.assertEqual(response2.code, 423)
        [record] = self.store.allSubscriptions()
        self.assertEqual(record.expiresAt, 600)
        self.assertEqual(record.remoteCSeq, 1)

    def test_rfc6665_4_2_1_4_unsubscribe(self) -> None:
        """
        Expires: 0 on a subscription: 200 with Expires: 0, then a final
        NOTIFY C{terminated;reason=timeout} with the state; the
        subscription is gone.
        """
        self.setState(b"on the phone")
        response, _ = self.subscribe()
        response2, notify = self.refresh(response, expires=0)
        self.assertEqual(response2.code, 200)
        self.assertEqual(response2.headers.get("Expires"), "0")
        assert notify is not None
        self.assertEqual(substate(notify), "terminated;reason=timeout")
        self.assertEqual(notify.body, b"on the phone")
        self.assertEqual(self.store.allSubscriptions(), [])
        self.assertEqual(self.notifier.subscriptions(), [])
        self.setState(b"free")
        self.clock.advance(1000)
        self.assertEqual(len(self.notifies()), 2)

    def test_rfc6665_4_2_1_unknownDialog481(self) -> None:
        """
        A SUBSCRIBE for a dialog we do not have gets 481.
        """
        response = self.send(subscribeRequest(toTag="nosuchtag", cseq=2))
        self.assertEqual(response.code, 481)

    def test_rfc6665_4_2_1_4_afterUnsubscribe481(self) -> None:
        """
        Once a subscription ended, its dialog is gone: a refresh gets 481.
        """
        response, _ = self.subscribe()
        self.refresh(response, expires=0)
        response2 = self.send(
            subscribeRequest(
                toTag=(response.toAddr.tag if response.toAddr else None), cseq=3
            )
        )
        self.assertEqual(response2.code, 481)

    def test_rfc3261_12_2_2_lowerCSeq500(self) -> None:
        """
        A CSeq lower than the dialog's remote sequence number gets 500
        (RFC 3261 section 12.2.2); a gap is fine.
        """
        response, _ = self.subscribe(cseq=5)
        toTag = response.toAddr.tag if response.toAddr else None
        self.assertEqual(self.send(subscribeRequest(toTag=toTag, cseq=4)).code, 500)
        response2, _ = self.refresh(response, cseq=9)
        self.assertEqual(response2.code, 200)
        [record] = self.store.allSubscriptions()
        self.assertEqual(record.remoteCSeq, 9)

    def test_rfc3261_12_2_2_targetRefresh(self) -> None:
        """
        A refresh with a new Contact changes the remote target (SUBSCRIBE
        is a target refresh request, RFC 6665 section 3.1).
        """
        response, _ = self.subscribe()
        _, notify = self.refresh(response, contact="<sip:alice@127.0.0.1:5072>")
        assert notify is not None
        self.assertEqual(str(notify.uri), "sip:alice@127.0.0.1:5072")
        self.assertEqual(self.targets()[-1], Target("UDP", "127.0.0.1", 5072))

    def test_rfc6665_4_5_2_dialogSharing(self) -> None:
        """
        A SUBSCRIBE in an existing dialog for another event type or C{id}
        creates a new subscription in that dialog (RFC 6665 section 4.5.2):
        its NOTIFYs echo the C{id}, share the dialog's CSeq space, and it
        expires on its own.
        """
        response, first = self.subscribe(event="test-state;id=1")
        assert first is not None
        self.assertEqual(first.headers.get("Event"), "test-state;id=1")
        response2, second = self.refresh(response, event="test-state;id=2", expires=120)
        self.assertEqual(response2.code, 200)
        assert second is not None
        self.assertEqual(second.headers.get("Event"), "test-state;id=2")
        self.assertEqual(second.headers.get("Call-ID"), first.headers.get("Call-ID"))
        self.assertEqual(second.headers.get("From"), first.headers.get("From"))
        records = self.store.allSubscriptions()
        self.assertEqual(sorted(r.eventId or "" for r in records), ["1", "2"])
        self.assertEqual({r.resource for r in records}, {BOB})
        self.setState(b"x")
        numbers = [n.cseq.number for n in self.notifies() if n.cseq is not None]
        self.assertEqual(numbers, sorted(numbers))
        self.assertEqual(len(set(numbers)), len(numbers))
        self.answerAll()
        self.clock.advance(120)
        last = self.notifies()[-1]
        self.assertEqual(last.headers.get("Event"), "test-state;id=2")
        self.assertEqual(substate(last), "terminated;reason=timeout")
        [remaining] = self.store.allSubscriptions()
        self.assertEqual(remaining.eventId, "1")

    def test_rfc6665_8_2_1_eventMatching(self) -> None:
        """
        An in-dialog SUBSCRIBE refreshes the subscription with the same
        event type and C{id}; one without the C{id} is another one
        (RFC 6665 section 8.2.1).
        """
        response, _ = self.subscribe(event="test-state;id=7")
        self.refresh(response, event="test-state;id=7;foo=bar", expires=100)
        [record] = self.store.allSubscriptions()
        self.assertEqual(record.expiresAt, 100)
        self.refresh(response, event="test-state", cseq=3)
        self.assertEqual(len(self.store.allSubscriptions()), 2)

    def test_rfc6665_4_5_2_sharedDialogUnknownEvent489(self) -> None:
        """
        An unknown event in an existing dialog gets 489.
        """
        response, _ = self.subscribe()
        toTag = response.toAddr.tag if response.toAddr else None
        self.assertEqual(
            self.send(subscribeRequest(toTag=toTag, cseq=2, event="dialog")).code, 489
        )

    def test_rfc6665_4_2_1_4_refreshChangesAccept(self) -> None:
        """
        A refresh with another Accept changes the body type of later
        NOTIFYs.
        """
        response, _ = self.subscribe()
        _, notify = self.refresh(response, accept="application/x-test")
        assert notify is not None
        self.assertEqual(notify.headers.get("Content-Type"), "application/x-test")


class NotifyTests(NotifierMixin, SynchronousTestCase):
    """
    NOTIFY generation and its failures (RFC 6665 section 4.2.2).
    """

    def test_rfc6665_4_2_2_stateChangeNotifies(self) -> None:
        """
        A state change NOTIFYs every active watcher of the resource with
        the new state and the seconds remaining.
        """
        self.subscribe()
        self.subscribe(callId="call-2", fromTag="ft2")
        self.subscribe(callId="call-3", uri="sip:carol@127.0.0.1")
        self.clock.advance(42)
        before = len(self.notifies())
        self.setState(b"ringing")
        new = self.notifies()[before:]
        self.assertEqual(len(new), 2)
        for notify in new:
            self.assertEqual(notify.body, b"ringing")
            self.assertEqual(substate(notify), "active;expires=558")

    def test_rfc3261_12_2_1_1_cseqIncreasesByOne(self) -> None:
        """
        The NOTIFYs of a dialog have increasing, contiguous CSeqs.
        """
        self.subscribe()
        for i in range(5):
            self.setState(str(i).encode())
        numbers = [n.cseq.number for n in self.notifies() if n.cseq is not None]
        self.assertEqual(numbers, list(range(numbers[0], numbers[0] + 6)))

    def test_rfc6665_4_2_1_4_expiry(self) -> None:
        """
        A subscription not refreshed in time gets C{terminated;reason=timeout}
        with its state, and is removed.
        """
        self.setState(b"last known")
        self.subscribe()
        self.clock.advance(599)
        self.assertEqual(len(self.notifies()), 1)
        self.clock.advance(1)
        notify = self.notifies()[-1]
        self.assertEqual(substate(notify), "terminated;reason=timeout")
        self.assertEqual(notify.body, b"last known")
        self.assertEqual(self.store.allSubscriptions(), [])

    def test_rfc6665_4_2_2_errorResponsesRemove(self) -> None:
        """
        A NOTIFY answered 404, 405, 410, 416, 480-485, 489, 501 or 604
        removes the subscription without a further NOTIFY.
        """
        for code in sorted(SUBSCRIPTION_ENDING_CODES):
            callId = f"call-{code}"
            self.send(subscribeRequest(callId=callId))
            notify = self.notifies()[-1]
            count = len(self.notifies())
            with capturedLogs() as events:
                self.answer(notify, code)
            self.assertEqual(
                [r for r in self.store.allSubscriptions() if r.callId == callId],
                [],
                code,
            )
            self.assertEqual(len(self.notifies()), count, code)
            self.assertTrue(any(e.get("code") == code for e in events))
        self.setState(b"x")
        self.clock.advance(10000)
        self.assertEqual(len(self.notifies()), len(SUBSCRIPTION_ENDING_CODES))

    def test_rfc6665_4_2_2_otherErrorsKeep(self) -> None:
        """
        Other failures (500, 503, 408, a 3xx) keep the subscription.
        """
        for code in (500, 503, 408, 302):
            self.send(subscribeRequest(callId=f"call-{code}"))
            with capturedLogs() as events:
                self.answer(self.notifies()[-1], code)
            self.assertTrue(any(e["log_level"] == LogLevel.warn for e in events))
        self.assertEqual(len(self.store.allSubscriptions()), 4)

    def test_rfc6665_4_2_2_timerFRemoves(self) -> None:
        """
        A NOTIFY that gets no answer is retransmitted (Timer E, RFC 3261
        section 17.1.2.2) and, at Timer F, the subscription is removed
        without a further NOTIFY.
        """
        self.send(subscribeRequest())
        [notify] = self.notifies()
        self.clock.advance(0.5)
        self.clock.advance(1)
        self.assertEqual(
            [r for r, _ in self.transportLayer.requests], [notify, notify, notify]
        )
        for _ in range(64):
            self.clock.advance(0.5)
        self.assertEqual(self.store.allSubscriptions(), [])
        self.setState(b"x")
        self.assertEqual(self.notifies(), [notify])

    def test_rfc6665_4_2_2_transportFailureKeeps(self) -> None:
        """
        A NOTIFY the transport could not send is logged; the subscription
        stays (only a timeout or the listed codes remove it).
        """
        failed: Deferred[None] = Deferred()
        self.transportLayer.sendResults.append(failed)
        self.send(subscribeRequest())
        with capturedLogs() as events:
            failed.errback(ConnectionRefusedError())
        self.assertEqual(len(self.store.allSubscriptions()), 1)
        self.assertTrue(any("failed" in str(e.get("log_format")) for e in events))

    def test_rfc6665_4_2_2_finalNotifyFailureHarmless(self) -> None:
        """
        A final NOTIFY answered 481 changes nothing more.
        """
        response, _ = self.subscribe()
        self.send(
            subscribeRequest(
                uri="sip:127.0.0.1:5060",
                toTag=(response.toAddr.tag if response.toAddr else None),
                cseq=2,
                expires=0,
            )
        )
        self.answer(self.notifies()[-1], 481)
        self.assertEqual(self.store.allSubscriptions(), [])


class CoalescingTests(NotifierMixin, SynchronousTestCase):
    """
    Rate of notifications (RFC 6665 section 5.4.10): changes within the
    package's minimum interval are coalesced into one NOTIFY with the
    latest state.
    """

    packageOptions = {"minNotifyInterval": 5.0}

    def test_rfc6665_5_4_10_coalesced(self) -> None:
        """
        Changes within the interval after a NOTIFY produce one NOTIFY, with
        the latest state, when the interval has passed.
        """
        self.subscribe()
        self.setState(b"one")
        self.clock.advance(1)
        self.setState(b"two")
        self.clock.advance(1)
        self.setState(b"three")
        self.assertEqual(len(self.notifies()), 1)
        self.clock.advance(3)
        self.assertEqual(len(self.notifies()), 2)
        notify = self.notifies()[-1]
        self.assertEqual(notify.body, b"three")
        self.assertEqual(substate(notify), "active;expires=595")
        self.clock.advance(100)
        self.assertEqual(len(self.notifies()), 2)

    def test_rfc6665_5_4_10_noChangeLost(self) -> None:
        """
        A change during the interval that follows a coalesced NOTIFY is
        itself sent when that interval ends; after a quiet interval, a
        change is sent at once.
        """
        self.subscribe()
        self.setState(b"one")
        self.clock.advance(5)
        self.assertEqual(self.notifies()[-1].body, b"one")
        self.clock.advance(1)
        self.setState(b"two")
        self.assertEqual(len(self.notifies()), 2)
        self.clock.advance(4)
        self.assertEqual(self.notifies()[-1].body, b"two")
        self.clock.advance(20)
        self.setState(b"three")
        self.assertEqual(self.notifies()[-1].body, b"three")
        self.assertEqual(len(self.notifies()), 4)

    def test_rfc6665_5_4_10_firstNotifyNeverDelayed(self) -> None:
        """
        The NOTIFY after a refresh goes out at once, even within the
        interval, and carries the latest state (so a pending change is
        dropped, not sent twice).
        """
        response, _ = self.subscribe()
        self.setState(b"one")
        _, notify = self.refresh(response)
        assert notify is not None
        self.assertEqual(notify.body, b"one")
        self.assertEqual(len(self.notifies()), 2)
        self.clock.advance(5)
        self.assertEqual(len(self.notifies()), 2)

    def test_rfc6665_5_4_10_expiryNotDelayed(self) -> None:
        """
        The final NOTIFY of an expiry is not held back by coalescing, and a
        change waiting is dropped with the subscription.
        """
        self.subscribe(expires=60)
        self.clock.advance(58)
        self.setState(b"one")
        self.setState(b"two")
        self.clock.advance(2)
        notify = self.notifies()[-1]
        self.assertEqual(substate(notify), "terminated;reason=timeout")
        self.clock.advance(10)
        self.assertEqual(substate(self.notifies()[-1]), "terminated;reason=timeout")

    def test_rfc6665_5_4_10_perSubscription(self) -> None:
        """
        The interval is per subscription: a new watcher gets its first
        NOTIFY at once while others wait.
        """
        self.subscribe()
        self.setState(b"one")
        _, notify = self.subscribe(callId="call-2")
        assert notify is not None
        self.assertEqual(notify.body, b"one")


class ApplicationTests(NotifierMixin, SynchronousTestCase):
    """
    The application API (L{INotifier}).
    """

    def test_setStateAndClearState(self) -> None:
        """
        L{Notifier.setState} stores the application's state through the
        publication manager and NOTIFYs the watchers; L{Notifier.clearState}
        removes it, and the watchers get neutral state.
        """
        self.subscribe()
        self.setState(b"available")
        self.assertEqual(self.notifies()[-1].body, b"available")
        self.assertEqual(self.publications.currentState(BOB, PKG), "available")
        self.successResultOf(self.notifier.clearState(PKG, BOB))
        self.assertEqual(self.notifies()[-1].body, b"neutral active")

    def test_setStateUnknownEvent489(self) -> None:
        """
        L{Notifier.setState} for an event type not served raises
        L{BadEvent}; a bad body raises the package's error.
        """
        self.assertRaises(
            BadEvent, self.notifier.setState, "dialog", BOB, "text/plain", b"x"
        )
        error = self.assertRaises(
            SIPError, self.notifier.setState, PKG, BOB, "text/plain", b"bad"
        )
        self.assertEqual(error.status, 400)

    def test_rfc6665_4_1_3_terminateWithReason(self) -> None:
        """
        L{Notifier.terminate} ends subscriptions with a final NOTIFY
        C{terminated;reason=R;retry-after=N} without a body and says how
        many it ended.
        """
        self.subscribe()
        self.subscribe(callId="call-2")
        self.subscribe(callId="call-3", uri="sip:carol@127.0.0.1")
        count = self.notifier.terminate(resource=BOB, reason="probation", retryAfter=60)
        self.assertEqual(count, 2)
        for notify in self.notifies()[-2:]:
            self.assertEqual(
                substate(notify), "terminated;reason=probation;retry-after=60"
            )
            self.assertEqual(notify.body, b"")
        [left] = self.notifier.subscriptions()
        self.assertEqual(left.resource, "sip:carol@127.0.0.1")

    def test_rfc6665_4_4_2_terminateDeactivatedByKey(self) -> None:
        """
        The default reason is C{deactivated} (RFC 6665 section 4.4.2), and a
        single subscription can be ended by key.
        """
        self.subscribe()
        self.subscribe(callId="call-2")
        key = self.store.allSubscriptions()[0].key
        self.assertEqual(self.notifier.terminate(key=key), 1)
        self.assertEqual(substate(self.notifies()[-1]), "terminated;reason=deactivated")
        self.assertEqual(len(self.notifier.subscriptions()), 1)
        self.assertEqual(self.notifier.terminate(key="nosuchkey"), 0)

    def test_terminateByEventType(self) -> None:
        """
        L{Notifier.terminate} with only an event type ends the subscriptions
        of that type.
        """
        self.subscribe()
        self.subscribe(callId="call-2", event="presence")
        self.assertEqual(
            self.notifier.terminate(eventType="presence", reason="noresource"), 1
        )
        [left] = self.notifier.subscriptions()
        self.assertEqual(left.eventType, PKG)

    def test_terminateBadReason(self) -> None:
        """
        A reason that is not a token is refused before anything is sent.
        """
        self.subscribe()
        self.assertRaises(ValueError, self.notifier.terminate, reason="no way")
        self.assertEqual(len(self.notifier.subscriptions()), 1)

    def test_subscriptionsFiltered(self) -> None:
        """
        L{Notifier.subscriptions} lists the live subscriptions, by resource
        and event type.
        """
        self.subscribe()
        self.subscribe(callId="call-2", event="presence")
        self.subscribe(callId="call-3", uri="sip:carol@127.0.0.1")
        self.assertEqual(len(self.notifier.subscriptions()), 3)
        self.assertEqual(len(self.notifier.subscriptions(resource=BOB)), 2)
        self.assertEqual(len(self.notifier.subscriptions(BOB, "presence")), 1)
        self.assertEqual(len(self.notifier.subscriptions(eventType=PKG)), 2)


class SlowStore(MemoryStore):
    """
    A L{MemoryStore} whose writes become durable only when L{commit} is
    called, like a write-behind store between batches.
    """

    def __init__(self) -> None:
        super().__init__()
        self.waiting: list[Deferred[None]] = []
        self.slow = False

    def putSubscription(self, record: SubscriptionRecord) -> Deferred[None]:
        super().putSubscription(record)
        if not self.slow:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self.waiting.append(d)
        return d

    def commit(self, error: Exception | None = None) -> None:
        """
        Make the waiting writes durable, or fail them with C{error}.
        """
        waiting, self.waiting = self.waiting, []
        for d in waiting:
            if error is None:
                d.callback(None)
            else:
                d.errback(error)


class RestartTests(NotifierMixin, SynchronousTestCase):
    """
    A new notifier on the same store takes over (DESIGN: persistence; issue
    item 7): the next CSeq goes on, expired subscriptions are dropped
    silently.
    """

    def restart(self) -> Notifier:
        """
        Stop the notifier and start a new one (on a new user agent) on the
        same store.
        """
        self.successResultOf(self.notifier.stop())
        self.ua.stop()
        self.transportLayer = RecordingTransportLayer()
        self.ua = UserAgent(self.clock, self.transportLayer)
        self.publications = PublicationManager(self.clock, self.store, self.registry)
        self.publications.install(self.ua)
        self.notifier = self.makeNotifier()
        self.successResultOf(self.publications.start())
        return self.notifier

    def test_restartCSeqContinues(self) -> None:
        """
        After a restart a state change still NOTIFYs the subscriber on the
        same dialog, with a CSeq above every one used before, and the
        subscription still expires on time.
        """
        self.subscribe()
        for i in range(3):
            self.setState(str(i).encode())
        self.answerAll()
        used = max(n.cseq.number for n in self.notifies() if n.cseq is not None)
        old = self.notifies()[-1]
        self.restart()
        self.setState(b"after restart")
        [notify] = self.notifies()
        cseq = notify.cseq
        assert cseq is not None
        self.assertGreater(cseq.number, used)
        for name in ("From", "To", "Call-ID", "Event"):
            self.assertEqual(notify.headers.get(name), old.headers.get(name))
        self.assertEqual(notify.body, b"after restart")
        self.answerAll()
        self.clock.advance(600)
        self.assertEqual(substate(self.notifies()[-1]), "terminated;reason=timeout")

    def test_restartExpiredRemovedSilently(self) -> None:
        """
        Subscriptions that expired while the notifier was down are removed
        without a NOTIFY; live ones are restored.
        """
        self.subscribe(expires=100)
        self.subscribe(callId="call-2", expires=1000)
        self.successResultOf(self.notifier.stop())
        self.clock.advance(500)
        with capturedLogs() as events:
            self.restart()
        self.assertEqual(self.notifies(), [])
        [left] = self.store.allSubscriptions()
        self.assertEqual(left.callId, "call-2")
        [restored] = [e for e in events if "restored" in e and "expired" in e]
        self.assertEqual((restored["restored"], restored["expired"]), (1, 1))

    def test_restartRefreshAccepted(self) -> None:
        """
        An in-dialog refresh after a restart finds its dialog.
        """
        response, _ = self.subscribe()
        self.restart()
        response2, notify = self.refresh(response)
        self.assertEqual(response2.code, 200)
        assert notify is not None

    def test_cseqReservedAheadOfUse(self) -> None:
        """
        The stored CSeq high-water mark is always above every CSeq used,
        reserved in blocks, so a crash can never make a CSeq go back.
        """
        self.notifier = self.makeNotifier(cseqBlock=10)
        self.subscribe()
        for i in range(25):
            self.setState(str(i).encode())
            used = self.notifies()[-1].cseq
            assert used is not None
            [record] = self.store.allSubscriptions()
            self.assertGreater(record.localCSeq, used.number)
        self.answerAll()
        # Far fewer writes than NOTIFYs: one per half block or so.
        [record] = self.store.allSubscriptions()
        self.assertLessEqual(record.localCSeq, 26 + 2 * 10)

    def test_rfc6665_4_5_2_sharedDialogReservation(self) -> None:
        """
        In a shared dialog every subscription carries the dialog's
        high-water mark, so whichever survives (and a restart) goes on above
        every CSeq used in the dialog.
        """
        self.notifier = self.makeNotifier(cseqBlock=4)
        response, _ = self.subscribe(event="test-state;id=1")
        self.refresh(response, event="test-state;id=2")
        for i in range(10):
            self.setState(str(i).encode())
        self.answerAll()
        used = max(n.cseq.number for n in self.notifies() if n.cseq is not None)
        for record in self.store.allSubscriptions():
            self.assertGreater(record.localCSeq, used)
        key = [r.key for r in self.store.allSubscriptions() if r.eventId == "1"][0]
        self.notifier.terminate(key=key)
        self.restart()
        self.setState(b"after")
        [notify] = self.notifies()
        assert notify.cseq is not None
        self.assertGreater(notify.cseq.number, used + 1)

    def restartedOnSlowStore(self) -> SlowStore:
        """
        A subscription on a L{SlowStore}, restarted, with the store now
        holding its writes until C{commit}.
        """
        store = SlowStore()
        self.store = store
        self.publications = PublicationManager(self.clock, self.store, self.registry)
        self.publications.install(self.ua)
        self.notifier = self.makeNotifier()
        self.subscribe()
        self.restart()
        store.slow = True
        return store

    def test_restartWaitsForReservation(self) -> None:
        """
        After a restart no CSeq is covered by a durable reservation yet: the
        first NOTIFY waits until the new reservation is written.
        """
        store = self.restartedOnSlowStore()
        self.setState(b"x")
        self.assertEqual(self.notifies(), [])
        store.commit()
        [notify] = self.notifies()
        self.assertEqual(notify.body, b"x")

    def test_rfc3261_12_2_1_1_failedReservationNotifyNotSent(self) -> None:
        """
        A NOTIFY waiting for a CSeq reservation that fails is not sent,
        since after a crash its CSeq could be used again (RFC 3261 section
        12.2.1.1: the CSeqs of a dialog only increase); the failure is
        logged. The next NOTIFY waits for a new reservation and goes out
        once that one is durable.
        """
        store = self.restartedOnSlowStore()
        self.setState(b"x")
        store.commit(OSError("disk full"))
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        self.assertEqual(self.notifies(), [])
        self.clock.advance(60)
        self.setState(b"y")
        self.clock.advance(60)
        self.assertEqual(self.notifies(), [])
        self.assertEqual(len(store.waiting), 1)
        store.commit()
        [notify] = self.notifies()
        self.assertEqual(notify.body, b"y")

    def test_restartUnknownPackageNoresource(self) -> None:
        """
        A restored subscription whose package is no longer served is ended
        with C{terminated;reason=noresource}.
        """
        self.subscribe(event="presence")
        self.registry.unregister("presence")
        self.restart()
        [notify] = self.notifies()
        self.assertEqual(substate(notify), "terminated;reason=noresource")
        self.assertEqual(self.store.allSubscriptions(), [])


class TargetRefreshTests(NotifierMixin, SynchronousTestCase):
    """
    NOTIFY is a target refresh request (RFC 6665 section 3.2).
    """

    def test_rfc3261_12_2_1_2_notify2xxContactRetargets(self) -> None:
        """
        A 2xx to a NOTIFY with a Contact replaces the remote target (RFC
        3261 section 12.2.1.2); the next NOTIFY goes there.
        """
        self.send(subscribeRequest())
        [notify] = self.notifies()
        self.answer(notify, 200, [("Contact", "<sip:alice@127.0.0.1:5099>")])
        [record] = self.store.allSubscriptions()
        self.assertEqual(record.remoteTarget, "sip:alice@127.0.0.1:5099")
        self.setState(b"x")
        self.assertEqual(str(self.notifies()[-1].uri), "sip:alice@127.0.0.1:5099")
        self.assertEqual(self.targets()[-1], Target("UDP", "127.0.0.1", 5099))

    def test_rfc3261_12_2_1_2_badContactIgnored(self) -> None:
        """
        A 2xx whose Contact is malformed or not SIP changes nothing.
        """
        self.send(subscribeRequest())
        [notify] = self.notifies()
        self.answer(notify, 200, [("Contact", "<tel:+1234>")])
        [record] = self.store.allSubscriptions()
        self.assertEqual(record.remoteTarget, "sip:alice@127.0.0.1:5070")


class WireTests(SynchronousTestCase):
    """
    A whole SUBSCRIBE/NOTIFY exchange as bytes, through the real
    L{TransportLayer} on a L{MemoryUDPReactor} (no sockets): UDP, and TCP
    where the NOTIFYs go back on the subscriber's connection.
    """

    def setUp(self) -> None:
        from sipevents.sip.transport import TransportLayer
        from sipevents.testing import MemoryUDPReactor

        self.reactor = MemoryUDPReactor()
        self.ua = UserAgent(self.reactor)
        self.layer = TransportLayer(self.reactor, self.ua)
        self.ua.transportLayer = self.layer
        self.store = MemoryStore()
        self.registry = PackageRegistry([TextPackage()])
        self.publications = PublicationManager(self.reactor, self.store, self.registry)
        self.notifier = Notifier(
            self.reactor, self.ua, self.store, self.registry, self.publications
        )
        self.publications.onStateChanged = self.notifier.stateChanged
        self.notifier.install()
        self.successResultOf(self.notifier.start())

    def parsed(self, data: bytes) -> Request | Response:
        message = parseMessage(data)
        assert isinstance(message, (Request, Response))
        return message

    def test_rfc6665_udpExchange(self) -> None:
        """
        Over UDP: SUBSCRIBE, 200 with our Contact, NOTIFY to the Contact
        address, 200; a state change, NOTIFY, 200; unSUBSCRIBE, 200, final
        NOTIFY, 200.
        """
        self.successResultOf(self.layer.listen("udp:5060:interface=127.0.0.1"))
        port = self.reactor.udpPorts[-1]
        protocol = port.protocol
        peer = ("127.0.0.1", 5070)
        protocol.datagramReceived(subscribeRequest().toBytes(), peer)
        ok, notify = (self.parsed(data) for data, _ in port.written)
        assert isinstance(ok, Response) and isinstance(notify, Request)
        self.assertEqual(ok.code, 200)
        self.assertEqual(ok.headers.get("Contact"), "<sip:127.0.0.1:5060>")
        self.assertEqual(notify.method, "NOTIFY")
        self.assertEqual(port.written[1][1], peer)
        self.assertEqual(notify.headers.get("Contact"), "<sip:127.0.0.1:5060>")
        self.assertEqual(substate(notify), "active;expires=600")
        via = notify.topVia
        assert via is not None
        self.assertEqual(via.sentBy, "127.0.0.1:5060")
        protocol.datagramReceived(responseTo(notify, 200).toBytes(), peer)
        self.successResultOf(self.notifier.setState(PKG, BOB, "text/plain", b"hello"))
        changed = self.parsed(port.written[-1][0])
        assert isinstance(changed, Request)
        self.assertEqual(changed.body, b"hello")
        protocol.datagramReceived(responseTo(changed, 200).toBytes(), peer)
        toAddr = ok.toAddr
        assert toAddr is not None
        protocol.datagramReceived(
            subscribeRequest(
                uri="sip:127.0.0.1:5060", toTag=toAddr.tag, cseq=2, expires=0
            ).toBytes(),
            peer,
        )
        ok2, final = (self.parsed(data) for data, _ in port.written[-2:])
        assert isinstance(ok2, Response) and isinstance(final, Request)
        self.assertEqual((ok2.code, ok2.headers.get("Expires")), (200, "0"))
        self.assertEqual(substate(final), "terminated;reason=timeout")
        protocol.datagramReceived(responseTo(final, 200).toBytes(), peer)
        self.assertEqual(self.store.allSubscriptions(), [])
        self.reactor.advance(64)
        # Nothing was retransmitted: every NOTIFY was answered.
        self.assertEqual(len(port.written), 5)

    def test_rfc5626_tcpNotifyOnSameConnection(self) -> None:
        """
        Over TCP without a route set, the NOTIFY goes back on the
        connection the SUBSCRIBE came on, and the Contact says TCP.
        """
        from sipevents.sip.transport import SIPStreamFactory
        from sipevents.testing import connectStream

        protocol, transport = connectStream(
            SIPStreamFactory(self.layer, "TCP"), ("127.0.0.1", 40000)
        )
        request = subscribeRequest(
            transport="TCP",
            sentBy="127.0.0.1:40000",
            contact="<sip:alice@127.0.0.1:40000;transport=tcp>",
        )
        protocol.dataReceived(request.toBytes())
        from sipevents.sip.parser import StreamParser

        messages = StreamParser().feed(transport.value())
        ok, notify = messages
        assert isinstance(ok, Response) and isinstance(notify, Request)
        self.assertEqual(ok.code, 200)
        self.assertEqual(
            ok.headers.get("Contact"), "<sip:127.0.0.1:5060;transport=tcp>"
        )
        self.assertEqual(notify.method, "NOTIFY")
        self.assertEqual(self.reactor.tcpClients, [])
