# -*- test-case-name: tests.test_publication -*-
"""
Tests for L{sipevents.notifier.publication}: PUBLISH handling (RFC 3903 section 6,
every step and status), expiry, composition of several publications,
application state, restart from the store, and bad input (RFC 3903 section
6 step 5, issue 3 item 5).

PUBLISH requests go through a real L{UserAgent} on a fake transport layer
with a L{Clock}, and publications through the real
L{sipevents.store.memory.MemoryStore}.
"""

from __future__ import annotations

from collections.abc import Iterable

from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from sipevents.config import TimerConfig
from sipevents.errors import SIPError
from sipevents.interfaces import (
    IEventStateCompositor,
    IRequestHandler,
    IResourcePolicy,
)
from sipevents.notifier.publication import PublicationManager, applicationETag
from sipevents.packages import PackageRegistry
from sipevents.packages.messagesummary import (
    MESSAGE_SUMMARY_TYPE,
    MessageSummary,
    MessageSummaryPackage,
)
from sipevents.packages.presence import PIDF_TYPE, PresencePackage, PresenceState
from sipevents.records import PublicationRecord
from sipevents.sip.addresses import Source
from sipevents.sip.message import Response
from sipevents.sip.useragent import UserAgent
from sipevents.store.memory import MemoryStore
from sipevents.testing import (
    FakeSIPConnection,
    RecordingTransportLayer,
    publishRequest,
)
from tests.test_presence import BILLION_LAUGHS, EXTERNAL_ENTITY, pidf, tuple_

RESOURCE = "sip:bob@127.0.0.1"
TOKEN_CHARS = set(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~"
)


class SlowStore(MemoryStore):
    """
    A memory store whose writes become durable only when the test says:
    each write's L{Deferred} waits in C{pending}.
    """

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[Deferred[None]] = []
        self.fail = False

    def _wait(self) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        self.pending.append(d)
        return d

    def putPublication(self, record: PublicationRecord) -> Deferred[None]:
        super().putPublication(record)
        return self._wait()

    def removePublication(self, etag: str) -> Deferred[None]:
        super().removePublication(etag)
        return self._wait()

    def finish(self, error: Exception | None = None) -> None:
        """
        Make every pending write durable, or fail them with C{error}.
        """
        pending, self.pending = self.pending, []
        for d in pending:
            if d.called:
                continue
            if error is None:
                d.callback(None)
            else:
                d.errback(error)


class FailingStore(MemoryStore):
    """
    A memory store whose publication writes fail (after changing the
    working set, as a write-behind store does).
    """

    def putPublication(self, record: PublicationRecord) -> Deferred[None]:
        super().putPublication(record)
        return fail(OSError("disk full"))


@implementer(IResourcePolicy)
class Policy:
    """
    A resource policy that knows C{known}, answering at once or, with
    C{later}, through L{Deferred}s the test fires.
    """

    def __init__(self, known: Iterable[str], later: bool = False) -> None:
        self.known = set(known)
        self.later = later
        self.asked: list[tuple[str, str]] = []
        self.answers: list[Deferred[bool]] = []

    def isKnown(self, resource: str, eventType: str) -> bool | Deferred[bool]:
        self.asked.append((resource, eventType))
        if self.later:
            d: Deferred[bool] = Deferred()
            self.answers.append(d)
            return d
        return resource in self.known

    def answer(self) -> None:
        d = self.answers.pop(0)
        d.callback(self.asked[-len(self.answers) - 1][0] in self.known)


class PublicationTestsMixin:
    """
    A publication manager behind a user agent, on a L{Clock}, with the
    built-in packages and a memory store.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_000_000)
        self.store = self.makeStore()
        self.registry = PackageRegistry([PresencePackage(), MessageSummaryPackage()])
        self.changes: list[tuple[str, str]] = []
        self.manager = PublicationManager(
            self.clock,
            self.store,
            self.registry,
            maxBodySize=4096,
            onStateChanged=lambda resource, eventType: self.changes.append(
                (resource, eventType)
            ),
        )
        self.transportLayer = RecordingTransportLayer()
        self.ua = UserAgent(self.clock, self.transportLayer, TimerConfig())
        self.manager.install(self.ua)
        self.source = Source(FakeSIPConnection("UDP"), "127.0.0.1", 5070)

    def makeStore(self) -> MemoryStore:
        return MemoryStore()

    def send(
        self,
        body: bytes = b"",
        etag: str | None = None,
        expires: int | None = None,
        event: str | None = "presence",
        contentType: str | None = PIDF_TYPE,
        uri: str = RESOURCE,
        headers: Iterable[tuple[str, str]] = (),
    ) -> list[Response]:
        """
        Deliver a PUBLISH and return the responses sent so far to any
        request.
        """
        request = publishRequest(
            uri,
            event=event,
            etag=etag,
            expires=expires,
            headers=headers,
            body=body,
            contentType=contentType if body else None,
        )
        self.ua.messageReceived(request, self.source)
        return [response for response, _ in self.transportLayer.responses]

    def publish(self, *args: object, **kwargs: object) -> Response:
        """
        Deliver a PUBLISH and return the response to it.
        """
        before = len(self.transportLayer.responses)
        responses = self.send(*args, **kwargs)  # type: ignore[arg-type]
        assert len(responses) == before + 1, responses
        return responses[-1]

    def assertOK(self, response: Response, expires: int) -> str:
        """
        C{response} is the 200 of RFC 3903 section 6 step 6; return its
        entity-tag.
        """
        test: SynchronousTestCase = self  # type: ignore[assignment]
        test.assertEqual(response.code, 200, response.reason)
        test.assertEqual(response.expires, expires)
        etags = response.headers.getAll("SIP-ETag")
        test.assertEqual(len(etags), 1)
        test.assertTrue(set(etags[0]) <= TOKEN_CHARS, etags[0])
        return etags[0]

    def timers(self) -> list[object]:
        """
        The publication expiry timers pending on the clock.
        """
        return [
            call
            for call in self.clock.getDelayedCalls()
            if getattr(call.func, "__name__", "") == "_expire"
        ]

    def state(self, resource: str = RESOURCE) -> PresenceState | None:
        state = self.manager.currentState(resource, "presence")
        assert state is None or isinstance(state, PresenceState)
        return state


class PublishTests(PublicationTestsMixin, SynchronousTestCase):
    """
    The operations of RFC 3903 section 4 and the steps of section 6.
    """

    def test_interfaces(self) -> None:
        """
        The manager is an L{IRequestHandler} whose C{accept} is every body
        type a package takes in PUBLISH, and the L{IEventStateCompositor}
        the notifier takes state from (RFC 3903 section 2).
        """
        self.assertTrue(verifyObject(IRequestHandler, self.manager))
        self.assertTrue(verifyObject(IEventStateCompositor, self.manager))
        self.assertEqual(self.manager.accept, (PIDF_TYPE, MESSAGE_SUMMARY_TYPE))
        self.assertIs(self.ua.handlerFor("PUBLISH"), self.manager)

    def test_rfc3261_17_1_2_2_answeredBeforeWatchersAreTold(self) -> None:
        """
        With a store that is durable at once, the 200 goes out before the
        notifier is told of the change: a fan-out to many watchers must not
        hold the publisher's answer past T1 (RFC 3261 section 17.1.2.2) and
        make it retransmit. The same holds when a publication is removed.
        """
        seen: list[int] = []
        self.manager.onStateChanged = lambda resource, eventType: seen.append(
            len(self.transportLayer.responses)
        )
        etag = self.assertOK(self.publish(pidf(tuple_("t1"))), 3600)
        self.assertEqual(seen, [1])
        self.assertEqual(self.publish(etag=etag, expires=0).code, 200)
        self.assertEqual(seen, [1, 2])

    def test_rfc3903_4_2_initialPublication(self) -> None:
        """
        An initial PUBLISH with a body gets 200 with a SIP-ETag and the
        chosen Expires (the package default when none is asked); the
        publication is stored, composed and the notifier told.
        """
        response = self.publish(pidf(tuple_("t1")))
        etag = self.assertOK(response, 3600)
        record = self.store.getPublication(etag)
        assert record is not None
        self.assertEqual(record.resource, RESOURCE)
        self.assertEqual(record.eventType, "presence")
        self.assertEqual(record.contentType, PIDF_TYPE)
        self.assertEqual(record.expiresAt, self.clock.seconds() + 3600)
        self.assertEqual(self.changes, [(RESOURCE, "presence")])
        state = self.state()
        assert state is not None
        self.assertEqual(state.tupleIds(), ["t1"])

    def test_rfc3903_6_noRecordRoute(self) -> None:
        """
        The 200 has a To tag and no Record-Route or Contact (RFC 3903
        section 6, section 4: no dialog).
        """
        response = self.publish(
            pidf(tuple_("t1")),
            headers=[("Record-Route", "<sip:127.0.0.1:5080;lr>")],
        )
        self.assertEqual(response.code, 200)
        assert response.toAddr is not None
        self.assertIsNotNone(response.toAddr.tag)
        self.assertNotIn("Record-Route", response.headers)
        self.assertNotIn("Contact", response.headers)

    def test_rfc3903_6_resourceKey(self) -> None:
        """
        The resource is the canonical key of the Request-URI: a PUBLISH to
        C{sips:bob@127.0.0.1:5061} publishes for C{sip:bob@127.0.0.1}.
        """
        self.publish(pidf(tuple_("t1")), uri="sips:bob@127.0.0.1:5061;transport=tls")
        self.assertIsNotNone(self.state(RESOURCE))

    def test_rfc3903_6_step1_unknownResource404(self) -> None:
        """
        With a resource policy, an initial publication for a resource it
        does not know gets 404 (RFC 3903 section 6 step 1); the policy is
        asked with the event type.
        """
        policy = Policy(["sip:alice@127.0.0.1"])
        self.manager.resourcePolicy = policy
        self.assertEqual(self.publish(pidf(tuple_("t1"))).code, 404)
        self.assertEqual(policy.asked, [(RESOURCE, "presence")])
        response = self.publish(pidf(tuple_("t1")), uri="sip:alice@127.0.0.1")
        etag = self.assertOK(response, 3600)
        # A refresh is not asked about: its entity-tag proves the resource.
        self.assertOK(self.publish(etag=etag, uri="sip:alice@127.0.0.1"), 3600)
        self.assertEqual(len(policy.asked), 2)

    def test_rfc3903_6_step1_policyLater(self) -> None:
        """
        A resource policy may answer later; the PUBLISH is answered then.
        """
        policy = Policy([RESOURCE], later=True)
        self.manager.resourcePolicy = policy
        responses = self.send(pidf(tuple_("t1")))
        self.assertEqual(responses, [])
        policy.answer()
        self.assertOK(self.transportLayer.responses[-1][0], 3600)
        policy.known.clear()
        self.send(pidf(tuple_("t1")))
        policy.answer()
        self.assertEqual(self.transportLayer.responses[-1][0].code, 404)

    def test_rfc3903_6_sameURIInOrder(self) -> None:
        """
        PUBLISH requests for one Request-URI are processed in the order
        received (RFC 3903 section 6), even while the first waits on the
        resource policy; another resource does not wait.
        """
        policy = Policy([RESOURCE, "sip:carol@127.0.0.1"], later=True)
        self.manager.resourcePolicy = policy
        self.send(pidf(tuple_("first")))
        self.send(pidf(tuple_("second")))
        self.assertEqual(len(policy.asked), 1)
        self.send(pidf(tuple_("c")), uri="sip:carol@127.0.0.1")
        self.assertEqual(len(policy.asked), 2)
        # Answer the first request for bob: the second is then processed.
        policy.answers.pop(0).callback(True)
        self.assertEqual(len(policy.asked), 3)
        self.assertEqual(len(self.transportLayer.responses), 1)
        policy.answers.pop(-1).callback(True)
        self.assertEqual(len(self.transportLayer.responses), 2)
        state = self.state()
        assert state is not None
        self.assertEqual(state.tupleIds(), ["first", "second"])
        policy.answers.pop(0).callback(True)
        self.assertEqual(len(self.transportLayer.responses), 3)
        self.assertEqual(self.manager._waiting, {})

    def test_rfc3903_6_step2_missingEvent489(self) -> None:
        """
        A PUBLISH without Event gets 489 with Allow-Events listing the
        packages that take PUBLISH (RFC 3903 section 6 step 2).
        """
        response = self.publish(pidf(tuple_("t1")), event=None)
        self.assertEqual(response.code, 489)
        self.assertEqual(
            response.headers.get("Allow-Events"), "presence, message-summary"
        )

    def test_rfc3903_6_step2_unknownEvent489(self) -> None:
        """
        A PUBLISH for a package we do not serve gets 489.
        """
        response = self.publish(pidf(tuple_("t1")), event="dialog")
        self.assertEqual(response.code, 489)
        self.assertEqual(
            response.headers.get("Allow-Events"), "presence, message-summary"
        )

    def test_rfc3903_6_step2_template489(self) -> None:
        """
        A PUBLISH for an event template (C{presence.winfo}) gets 489.
        """
        self.assertEqual(
            self.publish(pidf(tuple_("t1")), event="presence.winfo").code, 489
        )

    def test_rfc3903_6_step2_packageWithoutPublish489(self) -> None:
        """
        A PUBLISH for a package that takes no PUBLISH gets 489, and is left
        out of its Allow-Events.
        """
        package = PresencePackage()
        package.name = "dialog"  # type: ignore[misc]
        package.publishContentTypes = ()  # type: ignore[misc]
        self.registry.register(package)
        response = self.publish(pidf(tuple_("t1")), event="dialog")
        self.assertEqual(response.code, 489)
        self.assertEqual(
            response.headers.get("Allow-Events"), "presence, message-summary"
        )

    def test_rfc3903_6_step3_severalETags400(self) -> None:
        """
        A SIP-If-Match that does not hold a single entity-tag gets 400 (RFC
        3903 section 6 step 3).
        """
        etag = self.assertOK(self.publish(pidf(tuple_("t1"))), 3600)
        response = self.publish(headers=[("SIP-If-Match", etag)] * 2)
        self.assertEqual(response.code, 400)
        response = self.publish(etag=f"{etag}, {etag}")
        self.assertEqual(response.code, 400)
        self.assertEqual(self.publish(etag="").code, 400)

    def test_rfc3903_6_step3_unknownETag412(self) -> None:
        """
        An entity-tag that matches no publication gets 412 (RFC 3903
        section 6 step 3).
        """
        response = self.publish(etag="nosuchtag")
        self.assertEqual(response.code, 412)
        self.assertEqual(response.reason, "Conditional Request Failed")
        self.assertEqual(self.publish(pidf(tuple_("t1")), etag="nosuchtag").code, 412)
        self.assertEqual(self.publish(etag="nosuchtag", expires=0).code, 412)

    def test_rfc3903_6_step3_otherResourceOrEvent412(self) -> None:
        """
        An entity-tag is matched only against the publications of the same
        resource and event package (RFC 3903 section 6 step 3).
        """
        etag = self.assertOK(self.publish(pidf(tuple_("t1"))), 3600)
        self.assertEqual(self.publish(etag=etag, uri="sip:carol@127.0.0.1").code, 412)
        self.assertEqual(self.publish(etag=etag, event="message-summary").code, 412)
        self.assertOK(self.publish(etag=etag), 3600)

    def test_rfc3903_6_step3_applicationETag412(self) -> None:
        """
        The application's publication cannot be refreshed, modified or
        removed by PUBLISH: its entity-tag gets 412.
        """
        self.manager.setApplicationState(
            "presence", RESOURCE, PIDF_TYPE, pidf(tuple_("app"))
        )
        etag = applicationETag("presence", RESOURCE)
        self.assertEqual(self.publish(etag=etag).code, 412)
        self.assertEqual(self.publish(etag=etag, expires=0).code, 412)
        self.assertIsNotNone(self.store.getPublication(etag))

    def test_rfc3903_6_step4_expiresDefault(self) -> None:
        """
        Without Expires the package default is taken (RFC 3903 section 6
        step 4): one hour for presence and for message-summary.
        """
        self.assertOK(self.publish(pidf(tuple_("t1"))), 3600)
        self.assertOK(
            self.publish(
                b"Messages-Waiting: yes\r\n",
                event="message-summary",
                contentType=MESSAGE_SUMMARY_TYPE,
            ),
            3600,
        )

    def test_rfc3903_6_step4_expiresShortened(self) -> None:
        """
        A longer Expires than the maximum is shortened, never lengthened
        (RFC 3903 section 4.2 and 6 step 4).
        """
        self.assertOK(self.publish(pidf(tuple_("t1")), expires=10**6), 86400)
        self.assertOK(self.publish(pidf(tuple_("t2")), expires=61), 61)

    def test_rfc3903_6_step4_intervalTooBrief423(self) -> None:
        """
        0 < Expires < minimum gets 423 with Min-Expires (RFC 3903 section 6
        step 4), on initial publications and refreshes alike.
        """
        response = self.publish(pidf(tuple_("t1")), expires=59)
        self.assertEqual(response.code, 423)
        self.assertEqual(response.minExpires, 60)
        etag = self.assertOK(self.publish(pidf(tuple_("t1")), expires=60), 60)
        response = self.publish(etag=etag, expires=1)
        self.assertEqual(response.code, 423)
        self.assertEqual(response.minExpires, 60)
        self.assertIsNotNone(self.store.getPublication(etag))

    def test_rfc3903_6_step4_managerLimits(self) -> None:
        """
        The manager's own default, minimum and maximum override the
        package's (C{--min-expires}, C{--max-expires}).
        """
        self.manager.defaultExpires = 600
        self.manager.minExpires = 300
        self.manager.maxExpires = 900
        self.assertOK(self.publish(pidf(tuple_("t1"))), 600)
        self.assertEqual(self.publish(pidf(tuple_("t1")), expires=299).minExpires, 300)
        self.assertOK(self.publish(pidf(tuple_("t1")), expires=3600), 900)

    def test_rfc3903_6_step5_wrongContentType415(self) -> None:
        """
        A body whose type the event package does not take gets 415 with the
        package's types in Accept (RFC 3903 section 6 step 5); a type no
        package takes is refused by the user agent core first (RFC 3261
        section 8.2.3), with every type in Accept.
        """
        response = self.publish(
            b"Messages-Waiting: yes\r\n", contentType=MESSAGE_SUMMARY_TYPE
        )
        self.assertEqual(response.code, 415)
        self.assertEqual(response.headers.get("Accept"), PIDF_TYPE)
        response = self.publish(pidf(tuple_("t1")), contentType="application/xml")
        self.assertEqual(response.code, 415)
        self.assertEqual(
            response.headers.get("Accept"), f"{PIDF_TYPE}, {MESSAGE_SUMMARY_TYPE}"
        )
        self.assertEqual(self.changes, [])

    def test_rfc3903_6_step5_contentTypeParameters(self) -> None:
        """
        Content-Type parameters (RFC 3863 section 3.1: charset) do not
        change the type.
        """
        response = self.publish(
            pidf(tuple_("t1")), contentType="Application/PIDF+XML; charset=UTF-8"
        )
        self.assertOK(response, 3600)

    def test_rfc3903_6_step5_bodyTooLarge413(self) -> None:
        """
        A body over the configured limit gets 413.
        """
        body = pidf(tuple_("t1"), extra="<note>" + "x" * 4096 + "</note>")
        response = self.publish(body)
        self.assertEqual(response.code, 413)
        self.assertEqual(self.store.allPublications(), [])

    def test_rfc3903_6_step5_malformedPIDF400(self) -> None:
        """
        A PIDF body that does not parse or check gets 400 saying why.
        """
        response = self.publish(b"<presence")
        self.assertEqual(response.code, 400)
        self.assertIn("not well-formed", response.reason)
        response = self.publish(pidf(tuple_("a"), tuple_("a")))
        self.assertEqual(response.code, 400)
        self.assertIn("two tuples", response.reason)
        self.assertEqual(self.store.allPublications(), [])

    def test_rfc3903_6_step5_xmlBombs400(self) -> None:
        """
        XML bombs and external entities get 400.
        """
        for body in (BILLION_LAUGHS, EXTERNAL_ENTITY):
            response = self.publish(body)
            self.assertEqual(response.code, 400)
            self.assertIn("not allowed", response.reason)

    def test_rfc3903_6_step5_badInputLogged(self) -> None:
        """
        A refused PUBLISH is logged with its status and reason; bad bodies
        as warnings.
        """
        with capturedLogs() as events:
            self.publish(BILLION_LAUGHS)
            self.publish(etag="nosuchtag")
        refused = [e for e in events if e.get("status") in (400, 412)]
        self.assertEqual([e["status"] for e in refused], [400, 412])
        self.assertEqual(refused[0]["log_level"], LogLevel.warn)
        self.assertEqual(refused[0]["resource"], RESOURCE)
        self.assertIn("Document type declaration", refused[0]["reason"])
        self.assertEqual(refused[1]["log_level"], LogLevel.info)

    def test_rfc3903_6_step5_badModifyLeavesStateUntouched(self) -> None:
        """
        A modification with a bad body is refused and changes nothing: the
        publication, its entity-tag and the composed state stay.
        """
        etag = self.assertOK(self.publish(pidf(tuple_("t1"))), 3600)
        before = self.state()
        del self.changes[:]
        for body, code in (
            (b"<presence", 400),
            (BILLION_LAUGHS, 400),
            (b"x" * 5000, 413),
        ):
            self.assertEqual(self.publish(body, etag=etag).code, code)
        self.assertEqual(
            self.publish(
                b"Messages-Waiting: no", etag=etag, contentType=MESSAGE_SUMMARY_TYPE
            ).code,
            415,
        )
        self.assertEqual(self.changes, [])
        self.assertIs(self.state(), before)
        self.assertIsNotNone(self.store.getPublication(etag))
        self.assertOK(self.publish(etag=etag), 3600)

    def test_rfc3903_6_step5_initialWithoutBody400(self) -> None:
        """
        An initial PUBLISH without a body gets 400 (RFC 3903 section 6 step
        5).
        """
        response = self.publish()
        self.assertEqual(response.code, 400)
        self.assertEqual(response.reason, "Initial PUBLISH Without Body")

    def test_rfc3903_4_3_refresh(self) -> None:
        """
        A PUBLISH with SIP-If-Match and no body refreshes: 200 with a new
        entity-tag, a new expiry, the same state; watchers are not told
        (RFC 3903 section 15, M10); the old entity-tag is no longer valid.
        """
        etag = self.assertOK(self.publish(pidf(tuple_("t1")), expires=600), 600)
        before = self.state()
        del self.changes[:]
        self.clock.advance(500)
        newETag = self.assertOK(self.publish(etag=etag, expires=1200), 1200)
        self.assertNotEqual(newETag, etag)
        self.assertEqual(self.changes, [])
        self.assertIs(self.state(), before)
        self.assertIsNone(self.store.getPublication(etag))
        record = self.store.getPublication(newETag)
        assert record is not None
        self.assertEqual(record.expiresAt, self.clock.seconds() + 1200)
        self.assertEqual(record.body, pidf(tuple_("t1")))
        self.assertEqual(self.publish(etag=etag).code, 412)

    def test_rfc3903_4_4_modify(self) -> None:
        """
        A PUBLISH with SIP-If-Match and a body replaces the publication's
        state: 200 with a new entity-tag, and watchers are told.
        """
        etag = self.assertOK(self.publish(pidf(tuple_("t1"))), 3600)
        del self.changes[:]
        newETag = self.assertOK(self.publish(pidf(tuple_("t2")), etag=etag), 3600)
        self.assertNotEqual(newETag, etag)
        self.assertEqual(self.changes, [(RESOURCE, "presence")])
        state = self.state()
        assert state is not None
        self.assertEqual(state.tupleIds(), ["t2"])
        self.assertEqual([r.etag for r in self.store.allPublications()], [newETag])

    def test_rfc3903_4_4_modifySameBody(self) -> None:
        """
        A modification with the very same body changes no state: watchers
        are not told.
        """
        etag = self.assertOK(self.publish(pidf(tuple_("t1"))), 3600)
        del self.changes[:]
        self.assertOK(self.publish(pidf(tuple_("t1")), etag=etag), 3600)
        self.assertEqual(self.changes, [])

    def test_rfc3903_4_5_remove(self) -> None:
        """
        Expires 0 with SIP-If-Match removes the publication at once: 200
        with Expires 0 and a SIP-ETag (RFC 3903 section 6 step 6), watchers
        told, and the entity-tag no longer valid.
        """
        etag = self.assertOK(self.publish(pidf(tuple_("t1"))), 3600)
        del self.changes[:]
        removedETag = self.assertOK(self.publish(etag=etag, expires=0), 0)
        self.assertNotEqual(removedETag, etag)
        self.assertEqual(self.changes, [(RESOURCE, "presence")])
        self.assertIsNone(self.state())
        self.assertEqual(self.store.allPublications(), [])
        self.assertEqual(self.publish(etag=etag, expires=0).code, 412)
        self.assertEqual(self.publish(etag=removedETag).code, 412)

    def test_rfc3903_6_step5_initialExpiresZero(self) -> None:
        """
        An initial PUBLISH with Expires 0 is answered 200 with Expires 0
        and stores nothing (RFC 3903 section 6 step 5).
        """
        etag = self.assertOK(self.publish(pidf(tuple_("t1")), expires=0), 0)
        self.assertEqual(self.store.allPublications(), [])
        self.assertEqual(self.changes, [])
        self.assertEqual(self.publish(etag=etag).code, 412)

    def test_rfc3903_6_step6_newETagEachTime(self) -> None:
        """
        Every successful PUBLISH gets an entity-tag different from every
        one assigned before (RFC 3903 section 6 step 6).
        """
        etags = [self.assertOK(self.publish(pidf(tuple_("t1"))), 3600)]
        for _ in range(5):
            etags.append(self.assertOK(self.publish(etag=etags[-1]), 3600))
        etags.append(
            self.assertOK(self.publish(pidf(tuple_("t2")), etag=etags[-1]), 3600)
        )
        etags.append(self.assertOK(self.publish(etag=etags[-1], expires=0), 0))
        self.assertEqual(len(set(etags)), len(etags))

    def test_rfc3903_10_3_composition(self) -> None:
        """
        The state of a resource is composed from all its publications (RFC
        3903 section 10.3): publications of two EPAs show their tuples
        together, and removing one leaves the other's.
        """
        one = self.assertOK(self.publish(pidf(tuple_("phone"))), 3600)
        self.assertOK(self.publish(pidf(tuple_("pc"))), 3600)
        self.publish(
            b"Messages-Waiting: yes\r\n",
            event="message-summary",
            contentType=MESSAGE_SUMMARY_TYPE,
        )
        state = self.state()
        assert state is not None
        self.assertEqual(state.tupleIds(), ["phone", "pc"])
        self.assertOK(self.publish(etag=one, expires=0), 0)
        state = self.state()
        assert state is not None
        self.assertEqual(state.tupleIds(), ["pc"])
        self.assertEqual(
            self.manager.currentState(RESOURCE, "message-summary"),
            MessageSummary(True),
        )

    def test_rfc3903_10_4_newerPublicationWins(self) -> None:
        """
        When two publications carry the same tuple id, the more recently
        modified one's tuple is in the state.
        """
        first = self.assertOK(self.publish(pidf(tuple_("t", "open"))), 3600)
        self.assertOK(self.publish(pidf(tuple_("t", "closed"))), 3600)
        self.assertIn(b"closed", self.composedBody())
        # A refresh does not make the first one newer; a modification does.
        first = self.assertOK(self.publish(etag=first), 3600)
        self.assertIn(b"closed", self.composedBody())
        self.assertOK(self.publish(pidf(tuple_("t", "open")), etag=first), 3600)
        self.assertIn(b"open", self.composedBody())

    def composedBody(self) -> bytes:
        state = self.state()
        assert state is not None
        return state.toBytes()

    def test_rfc6665_5_4_11_messageSummaryLatestWins(self) -> None:
        """
        For message-summary the latest publication is the state.
        """
        for body in (b"Messages-Waiting: yes\r\n", b"Messages-Waiting: no\r\n"):
            self.publish(
                body, event="message-summary", contentType=MESSAGE_SUMMARY_TYPE
            )
        self.assertEqual(
            self.manager.currentState(RESOURCE, "message-summary"),
            MessageSummary(False),
        )

    def test_currentStateCached(self) -> None:
        """
        The composed state is computed once per change and shared.
        """
        self.publish(pidf(tuple_("t1")))
        self.assertIs(self.state(), self.state())
        self.assertIsNone(self.manager.currentState("sip:nobody@127.0.0.1", "presence"))

    def test_callbackErrorsLogged(self) -> None:
        """
        An exception from C{onStateChanged} is logged and the PUBLISH still
        succeeds.
        """

        def broken(resource: str, eventType: str) -> None:
            raise RuntimeError("boom")

        self.manager.onStateChanged = broken
        self.assertOK(self.publish(pidf(tuple_("t1"))), 3600)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_publications(self) -> None:
        """
        L{PublicationManager.publications} lists the live publications,
        filtered by resource and event type.
        """
        self.publish(pidf(tuple_("t1")))
        self.publish(pidf(tuple_("t1")), uri="sip:carol@127.0.0.1")
        self.assertEqual(len(self.manager.publications()), 2)
        self.assertEqual(
            [r.resource for r in self.manager.publications(RESOURCE, "presence")],
            [RESOURCE],
        )
        self.assertEqual(self.manager.publications(eventType="message-summary"), [])


class ExpiryTests(PublicationTestsMixin, SynchronousTestCase):
    """
    Publications expire on their own (RFC 3903 section 3 and 4.2).
    """

    def test_rfc3903_4_2_expiry(self) -> None:
        """
        A publication that is not refreshed expires: it leaves the store,
        the state is recomposed and watchers told, and its entity-tag gets
        412.
        """
        etag = self.assertOK(self.publish(pidf(tuple_("t1")), expires=120), 120)
        self.publish(pidf(tuple_("t2")), expires=600)
        del self.changes[:]
        self.clock.advance(119)
        self.assertIsNotNone(self.store.getPublication(etag))
        self.assertEqual(self.changes, [])
        self.clock.advance(1)
        self.assertIsNone(self.store.getPublication(etag))
        self.assertEqual(self.changes, [(RESOURCE, "presence")])
        state = self.state()
        assert state is not None
        self.assertEqual(state.tupleIds(), ["t2"])
        self.assertEqual(self.publish(etag=etag).code, 412)
        self.clock.advance(480)
        self.assertIsNone(self.state())
        self.assertEqual(self.store.allPublications(), [])
        self.assertEqual(self.timers(), [])

    def test_rfc3903_4_3_refreshExtends(self) -> None:
        """
        A refresh before expiry keeps the publication past its first
        lifetime.
        """
        etag = self.assertOK(self.publish(pidf(tuple_("t1")), expires=120), 120)
        self.clock.advance(100)
        etag = self.assertOK(self.publish(etag=etag, expires=120), 120)
        self.clock.advance(100)
        self.assertIsNotNone(self.state())
        self.clock.advance(20)
        self.assertIsNone(self.state())
        self.assertEqual(len(self.timers()), 0)

    def test_rfc3903_4_5_removeCancelsTimer(self) -> None:
        """
        A removed publication leaves no timer behind.
        """
        etag = self.assertOK(self.publish(pidf(tuple_("t1"))), 3600)
        self.publish(etag=etag, expires=0)
        self.assertEqual(self.timers(), [])

    def test_rfc3903_6_step3_expiredButNotYetReaped412(self) -> None:
        """
        An entity-tag whose publication's time is up gets 412 even if its
        timer has not run yet.
        """
        etag = self.assertOK(self.publish(pidf(tuple_("t1")), expires=120), 120)
        self.clock.rightNow += 120
        self.assertEqual(self.publish(etag=etag).code, 412)

    def test_stop(self) -> None:
        """
        L{PublicationManager.stop} cancels every timer and keeps the store.
        """
        self.publish(pidf(tuple_("t1")))
        self.successResultOf(self.manager.stop())
        self.assertEqual(self.timers(), [])
        self.assertEqual(len(self.store.allPublications()), 1)


class ApplicationStateTests(PublicationTestsMixin, SynchronousTestCase):
    """
    L{PublicationManager.setApplicationState} and
    L{PublicationManager.clearApplicationState}: the application's own
    state, a publication that never expires.
    """

    def test_setState(self) -> None:
        """
        The application's state is stored as a publication with the
        deterministic entity-tag and no expiry, composed, and watchers
        told.
        """
        d = self.manager.setApplicationState(
            "presence", RESOURCE, PIDF_TYPE, pidf(tuple_("app"))
        )
        self.assertIsNone(self.successResultOf(d))
        etag = applicationETag("presence", RESOURCE)
        self.assertTrue(etag.startswith("app"))
        self.assertEqual(etag, applicationETag("presence", RESOURCE))
        self.assertNotEqual(etag, applicationETag("message-summary", RESOURCE))
        record = self.store.getPublication(etag)
        assert record is not None
        self.assertIsNone(record.expiresAt)
        self.assertEqual(self.changes, [(RESOURCE, "presence")])
        state = self.state()
        assert state is not None
        self.assertEqual(state.tupleIds(), ["app"])
        self.clock.advance(10 * 86400)
        self.assertIsNotNone(self.state())
        self.assertEqual(self.timers(), [])

    def test_replaceState(self) -> None:
        """
        Setting the state again replaces it; the same body again changes
        nothing.
        """
        manager = self.manager
        manager.setApplicationState("presence", RESOURCE, PIDF_TYPE, pidf(tuple_("a")))
        manager.setApplicationState("presence", RESOURCE, PIDF_TYPE, pidf(tuple_("b")))
        manager.setApplicationState("presence", RESOURCE, PIDF_TYPE, pidf(tuple_("b")))
        self.assertEqual(len(self.changes), 2)
        self.assertEqual(len(self.store.allPublications()), 1)
        state = self.state()
        assert state is not None
        self.assertEqual(state.tupleIds(), ["b"])

    def test_composesWithPublish(self) -> None:
        """
        Application state and PUBLISHed state compose the same way.
        """
        self.manager.setApplicationState(
            "presence", RESOURCE, PIDF_TYPE, pidf(tuple_("app"))
        )
        self.publish(pidf(tuple_("phone")))
        state = self.state()
        assert state is not None
        self.assertEqual(state.tupleIds(), ["app", "phone"])

    def test_clearState(self) -> None:
        """
        Clearing the application's state removes it and tells watchers;
        clearing what is not there does nothing.
        """
        self.manager.setApplicationState(
            "message-summary",
            RESOURCE,
            MESSAGE_SUMMARY_TYPE,
            MessageSummary(True).toBytes(),
        )
        del self.changes[:]
        self.successResultOf(
            self.manager.clearApplicationState("message-summary", RESOURCE)
        )
        self.assertEqual(self.changes, [(RESOURCE, "message-summary")])
        self.assertIsNone(self.manager.currentState(RESOURCE, "message-summary"))
        self.assertEqual(self.store.allPublications(), [])
        self.successResultOf(
            self.manager.clearApplicationState("message-summary", RESOURCE)
        )
        self.assertEqual(len(self.changes), 1)

    def test_resourceURI(self) -> None:
        """
        The resource may be given as any URI of it; it is made a resource
        key like a Request-URI is.
        """
        self.manager.setApplicationState(
            "presence", "sips:bob@127.0.0.1:5061", PIDF_TYPE, pidf(tuple_("a"))
        )
        self.assertIsNotNone(self.state(RESOURCE))
        self.manager.clearApplicationState(
            "presence", "sip:bob@127.0.0.1;transport=tcp"
        )
        self.assertIsNone(self.state(RESOURCE))

    def test_badInput(self) -> None:
        """
        A bad body raises the package's 400, a type the package does not
        take 415, an event type not served 489; nothing changes.
        """
        manager = self.manager
        error = self.assertRaises(
            SIPError,
            manager.setApplicationState,
            "presence",
            RESOURCE,
            PIDF_TYPE,
            b"<x",
        )
        self.assertEqual(error.status, 400)
        error = self.assertRaises(
            SIPError,
            manager.setApplicationState,
            "presence",
            RESOURCE,
            MESSAGE_SUMMARY_TYPE,
            b"Messages-Waiting: yes",
        )
        self.assertEqual(error.status, 415)
        error = self.assertRaises(
            SIPError, manager.setApplicationState, "dialog", RESOURCE, PIDF_TYPE, b""
        )
        self.assertEqual(error.status, 489)
        self.assertEqual(self.changes, [])
        self.assertEqual(self.store.allPublications(), [])

    def test_contentTypeParameters(self) -> None:
        """
        Parameters of the content type are ignored.
        """
        self.manager.setApplicationState(
            "presence",
            RESOURCE,
            "application/pidf+xml;charset=utf-8",
            pidf(tuple_("a")),
        )
        self.assertIsNotNone(self.state())


class RestartTests(SynchronousTestCase):
    """
    L{PublicationManager.start}: the working set rebuilt from the store
    after a restart.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_000_000)
        self.store = MemoryStore()
        self.registry = PackageRegistry([PresencePackage(), MessageSummaryPackage()])
        now = self.clock.seconds()
        records = [
            PublicationRecord(
                "live", RESOURCE, "presence", PIDF_TYPE, pidf(tuple_("a")), now + 100
            ),
            PublicationRecord(
                "expired", RESOURCE, "presence", PIDF_TYPE, pidf(tuple_("b")), now
            ),
            PublicationRecord(
                "broken", RESOURCE, "presence", PIDF_TYPE, b"<presence", now + 100
            ),
            PublicationRecord(
                "unserved", RESOURCE, "dialog", "text/plain", b"x", now + 100
            ),
            PublicationRecord(
                applicationETag("presence", RESOURCE),
                RESOURCE,
                "presence",
                PIDF_TYPE,
                pidf(tuple_("app")),
                None,
            ),
        ]
        for record in records:
            self.store.putPublication(record)
        self.changes: list[tuple[str, str]] = []
        self.manager = PublicationManager(
            self.clock,
            self.store,
            self.registry,
            onStateChanged=lambda r, e: self.changes.append((r, e)),
        )

    def test_start(self) -> None:
        """
        Live publications are restored and composed; expired ones and ones
        their package refuses are removed without telling anyone; those of
        a package not served are kept in the store.
        """
        with capturedLogs() as events:
            self.successResultOf(self.manager.start())
        self.assertEqual(
            sorted(r.etag for r in self.store.allPublications()),
            sorted(["live", "unserved", applicationETag("presence", RESOURCE)]),
        )
        self.assertEqual(
            sorted(r.etag for r in self.manager.publications()),
            sorted(["live", applicationETag("presence", RESOURCE)]),
        )
        state = self.manager.currentState(RESOURCE, "presence")
        assert isinstance(state, PresenceState)
        self.assertEqual(state.tupleIds(), ["a", "app"])
        self.assertEqual(self.changes, [])
        restored = [e for e in events if "restored" in e]
        self.assertEqual((restored[0]["restored"], restored[0]["dropped"]), (2, 2))

    def test_startSchedulesExpiry(self) -> None:
        """
        A restored publication still expires when its time is up.
        """
        self.manager.start()
        self.clock.advance(100)
        self.assertIsNone(self.store.getPublication("live"))
        self.assertEqual(self.changes, [(RESOURCE, "presence")])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_startTwice(self) -> None:
        """
        Starting again does nothing.
        """
        self.manager.start()
        self.successResultOf(self.manager.start())
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)

    def test_refreshAfterRestart(self) -> None:
        """
        A publisher can refresh a restored publication with its entity-tag.
        """
        self.manager.start()
        ua = UserAgent(self.clock, RecordingTransportLayer(), TimerConfig())
        self.manager.install(ua)
        request = publishRequest(RESOURCE, event="presence", etag="live")
        ua.messageReceived(request, Source(FakeSIPConnection(), "127.0.0.1", 5070))
        transportLayer = ua.transportLayer
        assert isinstance(transportLayer, RecordingTransportLayer)
        self.assertEqual(transportLayer.responses[-1][0].code, 200)


class DurableStoreTests(PublicationTestsMixin, SynchronousTestCase):
    """
    With a write-behind store, the 200 waits until the change is durable,
    and a store failure undoes it (RFC 3903 section 6 step 5: atomic).
    """

    def makeStore(self) -> MemoryStore:
        return SlowStore()

    def test_rfc3903_6_step5_answerWhenDurable(self) -> None:
        """
        The 200 is sent once the store has the publication; the state is
        visible at once.
        """
        store = self.store
        assert isinstance(store, SlowStore)
        self.assertEqual(self.send(pidf(tuple_("t1"))), [])
        self.assertIsNotNone(self.state())
        self.assertEqual(self.changes, [(RESOURCE, "presence")])
        store.finish()
        self.assertOK(self.transportLayer.responses[-1][0], 3600)

    def test_rfc3903_6_inOrderWhileWriting(self) -> None:
        """
        While a PUBLISH for a resource waits on the store, the next one for
        that resource waits behind it: a refresh can use the entity-tag the
        first one got.
        """
        store = self.store
        assert isinstance(store, SlowStore)
        self.send(pidf(tuple_("t1")))
        self.send(pidf(tuple_("t2")))
        self.assertEqual(len(store.pending), 1)
        store.finish()
        self.assertEqual(len(self.transportLayer.responses), 1)
        store.finish()
        self.assertEqual(len(self.transportLayer.responses), 2)
        state = self.state()
        assert state is not None
        self.assertEqual(state.tupleIds(), ["t1", "t2"])

    def test_rfc3903_6_step5_storeFailureUndone500(self) -> None:
        """
        When the store fails, the change is undone, watchers are told of
        the state as it was, and the PUBLISH gets 500.
        """
        store = self.store
        assert isinstance(store, SlowStore)
        self.send(pidf(tuple_("t1")))
        store.finish()
        etag = self.assertOK(self.transportLayer.responses[-1][0], 3600)
        del self.changes[:]
        self.send(pidf(tuple_("t2")), etag=etag)
        store.finish(OSError("disk full"))
        response = self.transportLayer.responses[-1][0]
        self.assertEqual(response.code, 500)
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        state = self.state()
        assert state is not None
        self.assertEqual(state.tupleIds(), ["t1"])
        self.assertEqual(self.changes, [(RESOURCE, "presence")] * 2)
        store.finish()
        self.assertEqual([r.etag for r in store.allPublications()], [etag])
        self.send(etag=etag)
        store.finish()
        self.assertOK(self.transportLayer.responses[-1][0], 3600)

    def test_rfc3261_17_2_2_timedOutWhileWaiting(self) -> None:
        """
        When the store takes longer than Timer F, the user agent answers
        408 and cancels: the change is undone, and a PUBLISH that waited
        behind it is not processed at all.
        """
        store = self.store
        assert isinstance(store, SlowStore)
        self.send(pidf(tuple_("t1")))
        self.send(pidf(tuple_("t2")))
        self.clock.advance(TimerConfig().timerF)
        self.assertEqual([r.code for r, _ in self.transportLayer.responses], [408, 408])
        self.flushLoggedErrors()
        self.assertIsNone(self.state())
        self.assertEqual(self.manager._waiting, {})
        store.finish()
        self.assertEqual(store.allPublications(), [])


class FailingStoreTests(PublicationTestsMixin, SynchronousTestCase):
    """
    A store that fails at once.
    """

    def makeStore(self) -> MemoryStore:
        return FailingStore()

    def test_rfc3903_6_step5_storeFailure500(self) -> None:
        """
        An initial publication the store cannot keep gets 500 and leaves
        nothing behind.
        """
        response = self.publish(pidf(tuple_("t1")))
        self.assertEqual(response.code, 500)
        self.assertEqual(response.reason, "Publication Not Stored")
        self.flushLoggedErrors(OSError)
        self.assertIsNone(self.state())
        self.assertEqual(self.store.allPublications(), [])
        self.assertEqual(self.timers(), [])
