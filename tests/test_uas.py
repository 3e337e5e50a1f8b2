# -*- test-case-name: tests.test_uas -*-
"""
Tests for L{sipevents.sip.useragent}: the user agent core (RFC 3261 section 8.2, 9.2,
11 and 17), with a fake transport layer and a L{Clock}.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from sipevents import __version__
from sipevents.config import TimerConfig
from sipevents.errors import SIPError
from sipevents.interfaces import (
    IMessageReceiver,
    IRequestContext,
    IRequestHandler,
    IRetransmittingSender,
    ITransportLayer,
    IUserAgent,
)
from sipevents.sip.addresses import Source, Target
from sipevents.sip.message import Message, Request, Response, makeResponse
from sipevents.sip.parser import parseMessage
from sipevents.sip.transport import TransportLayer
from sipevents.sip.uri import parseURI
from sipevents.sip.useragent import (
    AlreadyResponded,
    FunctionHandler,
    MergedRequests,
    OptionsHandler,
    UserAgent,
)
from sipevents.testing import (
    FakeSIPConnection,
    MemoryUDPReactor,
    RecordingTransportLayer,
    connectStream,
    sipRequest,
)

TIMERS = TimerConfig()


def uacRequest(
    method: str = "OPTIONS",
    uri: str = "sip:uas@127.0.0.1",
    branch: str = "z9hG4bK-1",
    **kwargs: Any,
) -> Request:
    """
    L{sipRequest} from the UAC C{sip:uac@127.0.0.1} to the UAS of these
    tests, in one transaction unless C{branch} says otherwise.
    """
    kwargs.setdefault("fromURI", "sip:uac@127.0.0.1")
    kwargs.setdefault("toURI", "sip:uas@127.0.0.1")
    return sipRequest(method, uri, branch=branch, **kwargs)


class UserAgentTestsMixin:
    """
    A user agent on a fake transport layer and a L{Clock}.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.transportLayer = RecordingTransportLayer()
        self.ua = UserAgent(self.clock, self.transportLayer, TIMERS)
        self.udp = FakeSIPConnection("UDP")
        self.tcp = FakeSIPConnection("TCP")
        self.source = Source(self.udp, "127.0.0.1", 5070)

    def receive(self, message: Message, source: Source | None = None) -> None:
        """
        Deliver C{message} as the transport layer would.
        """
        self.ua.messageReceived(message, source or self.source)

    def responses(self) -> list[Response]:
        """
        The responses sent so far, oldest first.
        """
        return [response for response, _ in self.transportLayer.responses]

    def lastResponse(self) -> Response:
        """
        The response sent last.
        """
        return self.transportLayer.responses[-1][0]

    def answer(self, request: Request, source: Source | None = None) -> Response:
        """
        Deliver C{request} and return the one response it got.
        """
        before = len(self.transportLayer.responses)
        self.receive(request, source)
        sent = self.responses()[before:]
        assert len(sent) == 1, sent
        return sent[0]


class InterfaceTests(UserAgentTestsMixin, SynchronousTestCase):
    """
    The objects of L{sipevents.sip.useragent} provide their interfaces.
    """

    def test_userAgentProvidesIMessageReceiver(self) -> None:
        """
        L{UserAgent} provides L{IMessageReceiver}, what the transport layer
        delivers to.
        """
        self.assertTrue(verifyObject(IMessageReceiver, self.ua))

    def test_userAgentProvidesIUserAgent(self) -> None:
        """
        L{UserAgent} provides L{IUserAgent}, what the roles use; the
        recording transport layer it is given in tests provides
        L{ITransportLayer}, as the real one does.
        """
        self.assertTrue(verifyObject(IUserAgent, self.ua))
        self.assertTrue(verifyObject(ITransportLayer, self.transportLayer))

    def test_responseSenderProvidesIRetransmittingSender(self) -> None:
        """
        The C{send} the user agent gives each server transaction provides
        L{IRetransmittingSender}, so a completed transaction over UDP can
        keep the response in wire form (RFC 3261 section 17.2.2).
        """
        contexts: list[IRequestContext] = []

        def handle(request: Request, context: IRequestContext) -> None:
            contexts.append(context)

        self.ua.registerMethod("MESSAGE", FunctionHandler(handle))
        self.receive(uacRequest("MESSAGE"))
        transaction = contexts[0].transaction  # type: ignore[attr-defined]
        self.assertTrue(verifyObject(IRetransmittingSender, transaction._send))

    def test_handlersProvideIRequestHandler(self) -> None:
        """
        L{OptionsHandler} and L{FunctionHandler} provide L{IRequestHandler}.
        """
        self.assertTrue(verifyObject(IRequestHandler, OptionsHandler(self.ua)))
        handler = FunctionHandler(lambda request, context: None, ["text/plain"])
        self.assertTrue(verifyObject(IRequestHandler, handler))

    def test_contextProvidesIRequestContext(self) -> None:
        """
        The context a handler gets provides L{IRequestContext}.
        """
        contexts: list[IRequestContext] = []

        def handle(request: Request, context: IRequestContext) -> None:
            contexts.append(context)
            context.respond(200)

        self.ua.registerMethod("MESSAGE", FunctionHandler(handle))
        self.receive(uacRequest("MESSAGE"))
        self.assertTrue(verifyObject(IRequestContext, contexts[0]))
        self.assertIs(contexts[0].userAgent, self.ua)
        self.assertEqual(contexts[0].source, self.source)
        self.assertFalse(contexts[0].inDialog)


class OptionsTests(UserAgentTestsMixin, SynchronousTestCase):
    """
    OPTIONS (RFC 3261 section 11) and what every response carries
    (section 8.2.6).
    """

    def test_rfc3261_11_2_options200(self) -> None:
        """
        OPTIONS is answered 200 with Allow, an empty Accept (no handler takes
        a body; an absent Accept would mean application/sdp, RFC 3261
        section 20.1), and neither Allow-Events nor Supported while there is
        nothing to list.
        """
        response = self.answer(uacRequest())
        self.assertEqual(response.code, 200)
        self.assertEqual(response.reason, "OK")
        self.assertEqual(response.allow, ["OPTIONS"])
        self.assertEqual(response.headers.get("Accept"), "")
        self.assertNotIn("Allow-Events", response.headers)
        self.assertNotIn("Supported", response.headers)

    def test_rfc3261_8_2_6_2_responseHeaders(self) -> None:
        """
        The response copies Via, From, Call-ID and CSeq, keeps the To URI
        and adds a To tag (RFC 3261 section 8.2.6.2), and names us in a
        Server header (section 20.35).
        """
        request = uacRequest()
        response = self.answer(request)
        for name in ("Via", "From", "Call-ID", "CSeq"):
            self.assertEqual(response.headers.get(name), request.headers.get(name))
        toAddr = response.toAddr
        assert toAddr is not None and request.toAddr is not None
        self.assertEqual(toAddr.uri, request.toAddr.uri)
        self.assertIsNotNone(toAddr.tag)
        self.assertEqual(toAddr.tag, self.ua.toTagFor(request))
        self.assertEqual(response.headers.get("Server"), f"sipevents/{__version__}")

    def test_rfc3261_19_3_toTagsDiffer(self) -> None:
        """
        Different requests get different To tags of at least 32 random bits
        (RFC 3261 section 19.3).
        """
        first = self.answer(uacRequest(branch="z9hG4bK-a", callId="a"))
        second = self.answer(uacRequest(branch="z9hG4bK-b", callId="b"))
        assert first.toAddr is not None and second.toAddr is not None
        self.assertNotEqual(first.toAddr.tag, second.toAddr.tag)
        self.assertGreaterEqual(len(first.toAddr.tag or ""), 8)

    def test_rfc3261_8_2_6_2_inDialogToUnchanged(self) -> None:
        """
        When the request's To has a tag, the response's To equals it
        (RFC 3261 section 8.2.6.2).
        """
        request = uacRequest(toTag="remote1")
        response = self.answer(request)
        self.assertEqual(response.headers.get("To"), request.headers.get("To"))

    def test_rfc3261_11_2_optionsListsCapabilities(self) -> None:
        """
        The answer to OPTIONS lists the methods with handlers in Allow, the
        union of their body types in Accept, our event packages in
        Allow-Events (RFC 6665 section 4.4.4) and our option tags in
        Supported.
        """
        self.ua.registerMethod(
            "SUBSCRIBE",
            FunctionHandler(lambda r, c: None, ["application/pidf+xml"]),
        )
        self.ua.registerMethod(
            "PUBLISH",
            FunctionHandler(lambda r, c: None, ["application/pidf+xml", "text/plain"]),
        )
        self.ua.eventTypes = lambda: ["presence", "message-summary"]
        self.ua.registerExtension("eventlist")
        response = self.answer(uacRequest())
        self.assertEqual(response.allow, ["OPTIONS", "SUBSCRIBE", "PUBLISH"])
        self.assertEqual(
            response.headers.get("Accept"), "application/pidf+xml, text/plain"
        )
        self.assertEqual(response.allowEvents, ["presence", "message-summary"])
        self.assertEqual(response.supported, ["eventlist"])

    def test_rfc3261_11_optionsHandlerReplaceable(self) -> None:
        """
        The built-in OPTIONS handler is a registered handler like any other,
        so an application can replace it.
        """
        self.ua.registerMethod("OPTIONS", FunctionHandler(lambda r, c: c.respond(486)))
        self.assertEqual(self.answer(uacRequest()).code, 486)

    def test_rfc3261_8_2_maxForwardsZeroAnswered(self) -> None:
        """
        Max-Forwards: 0 concerns proxies (RFC 3261 section 16.3): a UAS
        answers OPTIONS normally (RFC 3261 section 11).
        """
        request = uacRequest()
        request.headers.set("Max-Forwards", "0")
        self.assertEqual(self.answer(request).code, 200)


class TransactionTests(UserAgentTestsMixin, SynchronousTestCase):
    """
    Retransmissions and ACKs go to server transactions (RFC 3261 section
    17.2).
    """

    def test_rfc3261_17_2_3_retransmittedOptionsSameResponse(self) -> None:
        """
        A retransmitted OPTIONS gets the same 200 again (RFC 3261 section
        17.2.2) and never reaches the handler twice.
        """
        calls: list[Request] = []

        def handle(request: Request, context: IRequestContext) -> Response:
            calls.append(request)
            return makeResponse(request, 200, toTag=context.toTag)

        self.ua.registerMethod("OPTIONS", FunctionHandler(handle))
        self.receive(uacRequest())
        self.receive(uacRequest())
        responses = self.responses()
        self.assertEqual(len(calls), 1)
        self.assertEqual(len(responses), 2)
        self.assertEqual(responses[0].toBytes(), responses[1].toBytes())

    def test_rfc3261_17_2_1_invite405RetransmittedUntilAck(self) -> None:
        """
        An INVITE is answered 405 with Allow through an INVITE server
        transaction: over UDP the 405 is retransmitted on Timer G (T1, then
        doubling, RFC 3261 section 17.2.1) until the ACK, which is absorbed.
        """
        invite = uacRequest("INVITE", branch="z9hG4bK-inv")
        self.receive(invite)
        self.assertEqual(len(self.responses()), 1)
        first = self.lastResponse()
        self.assertEqual(first.code, 405)
        self.assertEqual(first.allow, ["OPTIONS"])
        self.clock.advance(TIMERS.T1)
        self.assertEqual(len(self.responses()), 2)
        self.clock.advance(2 * TIMERS.T1)
        self.assertEqual(len(self.responses()), 3)
        self.assertEqual(self.lastResponse().toBytes(), first.toBytes())
        assert first.toAddr is not None
        ack = uacRequest("ACK", branch="z9hG4bK-inv", toTag=first.toAddr.tag)
        self.receive(ack)
        self.clock.advance(60)
        self.assertEqual(len(self.responses()), 3)

    def test_rfc3261_17_2_1_timerH(self) -> None:
        """
        Without an ACK, the 405 to an INVITE is retransmitted until Timer H
        (64*T1, RFC 3261 section 17.2.1); an ACK arriving later matches no
        transaction and is dropped.
        """
        invite = uacRequest("INVITE", branch="z9hG4bK-h")
        first = self.answer(invite)
        self.clock.pump([TIMERS.T2] * int(TIMERS.timerH / TIMERS.T2 + 2))
        count = len(self.responses())
        self.assertGreater(count, 5)
        self.clock.advance(60)
        self.assertEqual(len(self.responses()), count)
        assert first.toAddr is not None
        with capturedLogs() as events:
            self.receive(uacRequest("ACK", branch="z9hG4bK-h", toTag=first.toAddr.tag))
        self.assertEqual(len(self.responses()), count)
        self.assertTrue(
            any("ACK matching no transaction" in e["log_format"] for e in events)
        )

    def test_rfc3261_17_2_1_invite405NotRetransmittedOverTCP(self) -> None:
        """
        Over a reliable transport the 405 to an INVITE is sent once
        (RFC 3261 section 17.2.1: Timer G only for unreliable transports).
        """
        source = Source(self.tcp, "127.0.0.1", 5070)
        self.receive(uacRequest("INVITE", transport="TCP"), source)
        self.clock.advance(60)
        self.assertEqual([r.code for r in self.responses()], [405])

    def test_rfc3261_17_2_3_strayAckDropped(self) -> None:
        """
        An ACK matching no transaction is dropped and logged; an ACK is
        never answered (RFC 3261 section 17.2.3).
        """
        with capturedLogs() as events:
            self.receive(uacRequest("ACK", branch="z9hG4bK-none", toTag="x"))
        self.assertEqual(self.responses(), [])
        self.assertTrue(
            any("ACK matching no transaction" in e["log_format"] for e in events)
        )


class CancelTests(UserAgentTestsMixin, SynchronousTestCase):
    """
    CANCEL (RFC 3261 section 9.2).
    """

    def test_rfc3261_9_2_cancelWithoutTransaction481(self) -> None:
        """
        A CANCEL that matches no transaction is answered 481.
        """
        response = self.answer(uacRequest("CANCEL", branch="z9hG4bK-gone"))
        self.assertEqual(response.code, 481)

    def test_rfc3261_9_2_cancelOfInvite200(self) -> None:
        """
        A CANCEL of an INVITE transaction still alive is answered 200, with
        the To tag of the responses to the INVITE; the INVITE already had
        its final 405, so there is no 487.
        """
        inviteResponse = self.answer(uacRequest("INVITE", branch="z9hG4bK-c"))
        cancelResponse = self.answer(uacRequest("CANCEL", branch="z9hG4bK-c"))
        self.assertEqual(cancelResponse.code, 200)
        assert inviteResponse.toAddr is not None
        assert cancelResponse.toAddr is not None
        self.assertEqual(cancelResponse.toAddr.tag, inviteResponse.toAddr.tag)
        self.assertEqual(
            cancelResponse.cseq.method if cancelResponse.cseq else "", "CANCEL"
        )

    def test_rfc3261_8_2_2_3_cancelIgnoresRequire(self) -> None:
        """
        Require in a CANCEL is ignored (RFC 3261 section 8.2.2.3).
        """
        request = uacRequest("CANCEL", branch="z9hG4bK-r", headers=[("Require", "foo")])
        self.assertEqual(self.answer(request).code, 481)

    def test_rfc3261_17_2_3_cancelRetransmission(self) -> None:
        """
        A retransmitted CANCEL gets the same answer from its own server
        transaction.
        """
        first = self.answer(uacRequest("CANCEL", branch="z9hG4bK-cr"))
        second = self.answer(uacRequest("CANCEL", branch="z9hG4bK-cr"))
        self.assertEqual(first.toBytes(), second.toBytes())


class MethodInspectionTests(UserAgentTestsMixin, SynchronousTestCase):
    """
    Method inspection (RFC 3261 section 8.2.1) and the registry.
    """

    def test_rfc3261_8_2_1_unknownMethod501(self) -> None:
        """
        A method we do not know is answered 501 with Allow (RFC 3261
        section 21.5.2).
        """
        response = self.answer(uacRequest("FOOBAR"))
        self.assertEqual(response.code, 501)
        self.assertEqual(response.allow, ["OPTIONS"])

    def test_rfc3261_8_2_1_knownMethod405(self) -> None:
        """
        A method we know but do not serve is answered 405 with Allow listing
        what we do serve (RFC 3261 section 8.2.1).
        """
        self.ua.registerMethod(
            "SUBSCRIBE", FunctionHandler(lambda r, c: c.respond(200))
        )
        for number, method in enumerate(
            [
                "BYE",
                "REGISTER",
                "PRACK",
                "UPDATE",
                "INFO",
                "MESSAGE",
                "REFER",
                "PUBLISH",
                "NOTIFY",
            ]
        ):
            response = self.answer(uacRequest(method, branch=f"z9hG4bK-m{number}"))
            self.assertEqual((method, response.code), (method, 405))
            self.assertEqual(response.allow, ["OPTIONS", "SUBSCRIBE"])

    def test_rfc3261_8_2_1_methodsAreCaseSensitive(self) -> None:
        """
        Methods are case-sensitive (RFC 3261 section 7.1): C{options} is not
        OPTIONS but an unknown method.
        """
        self.assertEqual(self.answer(uacRequest("options")).code, 501)

    def test_rfc3261_8_2_1_registeredMethodDispatched(self) -> None:
        """
        A registered handler gets the requests of its method, which Allow
        then lists; unregistered, the method is answered 405 again.
        """
        self.ua.registerMethod(
            "SUBSCRIBE", FunctionHandler(lambda r, c: c.respond(202))
        )
        self.assertEqual(self.answer(uacRequest("SUBSCRIBE")).code, 202)
        self.ua.unregisterMethod("SUBSCRIBE")
        response = self.answer(uacRequest("SUBSCRIBE", branch="z9hG4bK-2", cseq=2))
        self.assertEqual(response.code, 405)

    def test_coreMethodsNotRegistrable(self) -> None:
        """
        ACK and CANCEL are handled by the core (RFC 3261 section 9.2 and
        17.2.3) and cannot get handlers; a method must be a token.
        """
        handler = FunctionHandler(lambda r, c: None)
        self.assertRaises(ValueError, self.ua.registerMethod, "ACK", handler)
        self.assertRaises(ValueError, self.ua.registerMethod, "CANCEL", handler)
        self.assertRaises(ValueError, self.ua.registerMethod, "NOT A TOKEN", handler)
        self.assertRaises(ValueError, self.ua.registerMethod, "", handler)

    def test_rfc3261_8_2_versionNotSupported505(self) -> None:
        """
        A request of another SIP version is answered 505 (RFC 3261 section
        8.1.1.1 and 21.5.6); the parser does this for the wire, the core for
        requests built in memory.
        """
        request = uacRequest()
        request.version = "SIP/3.0"
        self.assertEqual(self.answer(request).code, 505)


class HeaderInspectionTests(UserAgentTestsMixin, SynchronousTestCase):
    """
    Header inspection (RFC 3261 section 8.2.2) and content processing
    (section 8.2.3).
    """

    def test_rfc3261_8_2_2_1_unsupportedScheme416(self) -> None:
        """
        A Request-URI whose scheme is neither sip, sips nor tel is answered
        416 (RFC 3261 section 8.2.2.1).
        """
        request = uacRequest(uri="sip:uas@127.0.0.1")
        request.uri = parseURI("urn:service:sos")
        self.assertEqual(self.answer(request).code, 416)

    def test_rfc3261_8_2_2_1_telAccepted(self) -> None:
        """
        tel URIs (RFC 3966) are accepted: event packages decide whether
        they know the resource (404 otherwise).
        """
        request = uacRequest(uri="tel:+15551234567")
        self.assertEqual(self.answer(request).code, 200)

    def test_rfc3261_8_2_2_1_sipsAccepted(self) -> None:
        """
        sips URIs are accepted (RFC 3261 section 19.1).
        """
        self.assertEqual(self.answer(uacRequest(uri="sips:uas@127.0.0.1")).code, 200)

    def test_rfc3261_8_2_1_methodBeforeScheme(self) -> None:
        """
        Method inspection comes before the Request-URI (RFC 3261 section
        8.2: the steps in order), so an unknown method with a strange
        scheme is answered 501.
        """
        request = uacRequest("FOOBAR")
        request.uri = parseURI("urn:service:sos")
        self.assertEqual(self.answer(request).code, 501)

    def test_rfc3261_8_2_2_2_mergedRequest482(self) -> None:
        """
        A request without To tag whose From tag, Call-ID and CSeq match an
        earlier request but whose transaction differs (another branch: it
        came by another path) is answered 482 (RFC 3261 section 8.2.2.2).
        """
        self.assertEqual(self.answer(uacRequest(branch="z9hG4bK-p1")).code, 200)
        response = self.answer(uacRequest(branch="z9hG4bK-p2"))
        self.assertEqual(response.code, 482)

    def test_rfc3261_8_2_2_2_mergedSentByDiffers482(self) -> None:
        """
        Same branch but another sent-by is another transaction (RFC 3261
        section 17.2.3), hence merged.
        """
        self.answer(uacRequest(branch="z9hG4bK-s"))
        response = self.answer(uacRequest(branch="z9hG4bK-s", sentBy="127.0.0.1:5071"))
        self.assertEqual(response.code, 482)

    def test_rfc3261_8_2_2_2_sameTransactionNotMerged(self) -> None:
        """
        Over TCP a transaction ends with its final response (Timer J is
        zero, RFC 3261 section 17.2.2), so a copy of the request with the
        same branch is a new transaction: it is processed again, not
        answered 482.
        """
        source = Source(self.tcp, "127.0.0.1", 5070)
        request = uacRequest(branch="z9hG4bK-t", transport="TCP")
        self.assertEqual(self.answer(request, source).code, 200)
        again = uacRequest(branch="z9hG4bK-t", transport="TCP")
        self.assertEqual(self.answer(again, source).code, 200)

    def test_rfc3261_8_2_2_2_notMergedOtherCSeq(self) -> None:
        """
        A new CSeq is a new request, not a merged one.
        """
        self.answer(uacRequest(branch="z9hG4bK-c1"))
        self.assertEqual(self.answer(uacRequest(branch="z9hG4bK-c2", cseq=2)).code, 200)

    def test_rfc3261_8_2_2_2_mergedInDialogNotChecked(self) -> None:
        """
        Only requests without To tag are checked for merging (RFC 3261
        section 8.2.2.2).
        """
        self.answer(uacRequest(branch="z9hG4bK-d1", toTag="t"))
        response = self.answer(uacRequest(branch="z9hG4bK-d2", toTag="t"))
        self.assertEqual(response.code, 200)

    def test_rfc3261_8_2_2_2_mergedMemoryExpires(self) -> None:
        """
        Requests are remembered for Timer J (64*T1), as long as their
        transaction can live: a copy arriving later is processed.
        """
        self.answer(uacRequest(branch="z9hG4bK-e1"))
        self.clock.advance(TIMERS.timerJ + 1)
        self.assertEqual(self.answer(uacRequest(branch="z9hG4bK-e2")).code, 200)

    def test_rfc3261_8_2_2_2_mergedMemoryBounded(self) -> None:
        """
        The memory holds at most C{maxEntries}; the oldest go first.
        """
        merged = MergedRequests(self.clock, 32.0, 2)
        for n in range(3):
            self.assertFalse(merged.isMerged(uacRequest(callId=f"c{n}")))
        self.assertEqual(len(merged), 2)
        self.assertFalse(merged.isMerged(uacRequest(callId="c0", branch="z9hG4bK-x")))
        self.assertTrue(merged.isMerged(uacRequest(callId="c2", branch="z9hG4bK-x")))

    def test_rfc3261_8_2_2_3_require420(self) -> None:
        """
        A Require option tag we do not support is answered 420 with
        Unsupported listing each such tag (RFC 3261 section 8.2.2.3);
        registered extensions pass.
        """
        self.ua.registerExtension("eventlist")
        request = uacRequest(
            headers=[("Require", "foo, eventlist"), ("Require", "bar")]
        )
        response = self.answer(request)
        self.assertEqual(response.code, 420)
        self.assertEqual(response.unsupported, ["foo", "bar"])

    def test_rfc3261_8_2_2_3_requireSupported(self) -> None:
        """
        A request requiring only extensions we support is processed.
        """
        self.ua.registerExtension("eventlist")
        request = uacRequest(headers=[("Require", "eventlist")])
        self.assertEqual(self.answer(request).code, 200)

    def test_rfc3261_8_2_2_badRequire400(self) -> None:
        """
        A malformed header we need (Require) is answered 400 with the
        parse error's reason phrase.
        """
        request = uacRequest(headers=[("Require", "foo bar")])
        response = self.answer(request)
        self.assertEqual(response.code, 400)
        self.assertIn("foo bar", response.reason)

    def test_rfc3261_8_2_3_unsupportedMediaType415(self) -> None:
        """
        A body of a type the handler does not take is answered 415 with
        Accept listing what it takes (RFC 3261 section 8.2.3).
        """
        called: list[Request] = []
        self.ua.registerMethod(
            "PUBLISH",
            FunctionHandler(
                lambda r, c: called.append(r) or c.respond(200),
                ["application/pidf+xml"],
            ),
        )
        request = uacRequest(
            "PUBLISH", headers=[("Content-Type", "text/plain")], body=b"hello"
        )
        response = self.answer(request)
        self.assertEqual(response.code, 415)
        self.assertEqual(response.headers.get("Accept"), "application/pidf+xml")
        self.assertEqual(called, [])

    def test_rfc3261_8_2_3_acceptedMediaType(self) -> None:
        """
        A body of an accepted type, matched case-insensitively and through
        wildcards, reaches the handler.
        """
        self.ua.registerMethod(
            "PUBLISH", FunctionHandler(lambda r, c: c.respond(200), ["application/*"])
        )
        request = uacRequest(
            "PUBLISH",
            headers=[("Content-Type", "Application/PIDF+XML")],
            body=b"<presence/>",
        )
        self.assertEqual(self.answer(request).code, 200)

    def test_rfc3261_8_2_3_unsupportedEncoding415(self) -> None:
        """
        A content encoding we do not take is answered 415 with
        Accept-Encoding (RFC 3261 section 8.2.3).
        """
        self.ua.registerMethod(
            "PUBLISH", FunctionHandler(lambda r, c: c.respond(200), ["text/plain"])
        )
        request = uacRequest(
            "PUBLISH",
            headers=[("Content-Type", "text/plain"), ("Content-Encoding", "gzip")],
            body=b"x",
        )
        response = self.answer(request)
        self.assertEqual(response.code, 415)
        self.assertEqual(response.headers.get("Accept-Encoding"), "identity")

    def test_rfc3261_8_2_3_handlerChecksBodies(self) -> None:
        """
        A handler whose C{accept} is C{None} gets every body.
        """
        self.ua.registerMethod("MESSAGE", FunctionHandler(lambda r, c: c.respond(200)))
        request = uacRequest(
            "MESSAGE", headers=[("Content-Type", "text/x-odd")], body=b"x"
        )
        self.assertEqual(self.answer(request).code, 200)


class HandlerTests(UserAgentTestsMixin, SynchronousTestCase):
    """
    How handlers answer (L{IRequestHandler}).
    """

    def register(self, function: object, method: str = "SUBSCRIBE") -> None:
        self.ua.registerMethod(method, FunctionHandler(function))  # type: ignore[arg-type]

    def test_returnedResponseCompleted(self) -> None:
        """
        A returned response is sent, with the To tag and Server added when
        the handler left them out (RFC 3261 section 8.2.6.2).
        """
        self.register(
            lambda r, c: Response(
                200,
                "OK",
                [
                    (n, v)
                    for n, v in r.headers
                    if n in ("Via", "From", "To", "Call-ID", "CSeq")
                ],
            )
        )
        response = self.answer(uacRequest("SUBSCRIBE"))
        assert response.toAddr is not None
        self.assertIsNotNone(response.toAddr.tag)
        self.assertIn("Server", response.headers)

    def test_sipErrorAnswered(self) -> None:
        """
        A L{SIPError} raised by a handler is answered with its status,
        reason and headers (e.g. 489 with Allow-Events, RFC 6665 section
        8.3.2).
        """

        def handle(request: Request, context: IRequestContext) -> None:
            raise SIPError("Bad Event", 489, [("Allow-Events", "presence")])

        self.register(handle)
        response = self.answer(uacRequest("SUBSCRIBE"))
        self.assertEqual((response.code, response.reason), (489, "Bad Event"))
        self.assertEqual(response.allowEvents, ["presence"])

    def test_unexpectedError500(self) -> None:
        """
        Any other exception is logged and answered 500.
        """

        def handle(request: Request, context: IRequestContext) -> None:
            raise ZeroDivisionError()

        self.register(handle)
        self.assertEqual(self.answer(uacRequest("SUBSCRIBE")).code, 500)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_noAnswer500(self) -> None:
        """
        A handler that returns without answering gets its request answered
        500, and an error logged.
        """
        self.register(lambda r, c: None)
        with capturedLogs() as events:
            self.assertEqual(self.answer(uacRequest("SUBSCRIBE")).code, 500)
        self.assertTrue(any(e["log_level"] == LogLevel.error for e in events))

    def test_deferredResponse(self) -> None:
        """
        A handler may return a L{Deferred} that fires with the response
        later; until then nothing is sent, and retransmissions are absorbed.
        """
        pending: Deferred[Response | None] = Deferred()
        contexts: list[IRequestContext] = []

        def handle(
            request: Request, context: IRequestContext
        ) -> Deferred[Response | None]:
            contexts.append(context)
            return pending

        self.register(handle)
        request = uacRequest("SUBSCRIBE")
        self.receive(request)
        self.receive(uacRequest("SUBSCRIBE"))
        self.assertEqual(self.responses(), [])
        pending.callback(makeResponse(request, 202, toTag=contexts[0].toTag))
        self.assertEqual([r.code for r in self.responses()], [202])

    def test_deferredSIPError(self) -> None:
        """
        A L{Deferred} failing with a L{SIPError} answers with its status.
        """
        pending: Deferred[Response | None] = Deferred()
        self.register(lambda r, c: pending)
        self.receive(uacRequest("SUBSCRIBE"))
        pending.errback(SIPError("Interval Too Brief", 423, [("Min-Expires", "60")]))
        response = self.lastResponse()
        self.assertEqual(response.code, 423)
        self.assertEqual(response.minExpires, 60)

    def test_deferredUnexpectedError(self) -> None:
        """
        A L{Deferred} failing with another exception is logged and answered
        500.
        """
        pending: Deferred[Response | None] = Deferred()
        self.register(lambda r, c: pending)
        self.receive(uacRequest("SUBSCRIBE"))
        pending.errback(KeyError("x"))
        self.assertEqual(self.lastResponse().code, 500)
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 1)

    def test_rfc3261_17_1_2_2_handlerTimeout408(self) -> None:
        """
        A handler L{Deferred} that has not fired after Timer F (when the
        client gives up, RFC 3261 section 17.1.2.2) gets its request
        answered 408 and is cancelled.
        """
        cancelled: list[object] = []
        pending: Deferred[Response | None] = Deferred(cancelled.append)
        self.register(lambda r, c: pending)
        self.receive(uacRequest("SUBSCRIBE"))
        self.clock.advance(TIMERS.timerF - 1)
        self.assertEqual(self.responses(), [])
        self.clock.advance(1)
        self.assertEqual(self.lastResponse().code, 408)
        self.assertEqual(len(cancelled), 1)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_rfc6665_4_2_1_answerThenNotify(self) -> None:
        """
        A SUBSCRIBE handler can answer 200 through its context and send the
        first NOTIFY right after (RFC 6665 section 4.2.1.1): the 200 goes
        out first.
        """
        order: list[str] = []
        results: list[Response] = []

        def handle(request: Request, context: IRequestContext) -> None:
            context.respond(200, headers=[("Expires", "3600")])
            order.append("200")
            notify = Request(
                "NOTIFY",
                parseURI("sip:uac@127.0.0.1:5070"),
                [
                    ("From", f"<sip:uas@127.0.0.1>;tag={context.toTag}"),
                    ("To", request.headers.get("From") or ""),
                    ("Call-ID", request.callId or ""),
                    ("CSeq", "1 NOTIFY"),
                    ("Max-Forwards", "70"),
                    ("Event", "presence"),
                    ("Subscription-State", "active;expires=3600"),
                ],
            )
            context.userAgent.sendRequest(
                notify, Target("UDP", "127.0.0.1", 5070)
            ).addCallback(results.append)
            order.append("NOTIFY")

        self.register(handle)
        self.receive(uacRequest("SUBSCRIBE"))
        self.assertEqual(order, ["200", "NOTIFY"])
        self.assertEqual(self.lastResponse().code, 200)
        [(notify, target)] = self.transportLayer.requests
        self.assertEqual(notify.method, "NOTIFY")
        self.assertEqual(target, Target("UDP", "127.0.0.1", 5070))

    def test_secondFinalResponseRefused(self) -> None:
        """
        A second final response raises L{AlreadyResponded}; a response
        returned after answering is ignored with a warning.
        """
        errors: list[Exception] = []

        def handle(request: Request, context: IRequestContext) -> Response:
            context.respond(200)
            try:
                context.respond(500)
            except AlreadyResponded as error:
                errors.append(error)
            return makeResponse(request, 202)

        self.register(handle)
        with capturedLogs() as events:
            self.receive(uacRequest("SUBSCRIBE"))
        self.assertEqual([r.code for r in self.responses()], [200])
        self.assertEqual(len(errors), 1)
        self.assertTrue(any(e["log_level"] == LogLevel.warn for e in events))

    def test_rfc6665_4_4_4_allowEventsOnDialogCreating(self) -> None:
        """
        Responses to requests that create dialogs carry Allow-Events
        (RFC 6665 section 4.4.4), unless the handler set it.
        """
        self.ua.eventTypes = lambda: ["presence"]
        self.register(lambda r, c: c.respond(200))
        self.assertEqual(self.answer(uacRequest("SUBSCRIBE")).allowEvents, ["presence"])
        invite = self.answer(uacRequest("INVITE", branch="z9hG4bK-i"))
        self.assertEqual(invite.allowEvents, ["presence"])


class ResponseTests(UserAgentTestsMixin, SynchronousTestCase):
    """
    Responses and the UAC side (RFC 3261 section 8.1 and 17.1).
    """

    def notify(self) -> Request:
        return Request(
            "NOTIFY",
            parseURI("sip:uac@127.0.0.1:5070"),
            [
                ("From", "<sip:uas@127.0.0.1>;tag=n1"),
                ("To", "<sip:uac@127.0.0.1>;tag=n2"),
                ("Call-ID", "notify-1"),
                ("CSeq", "1 NOTIFY"),
                ("Max-Forwards", "70"),
            ],
        )

    def test_rfc3261_17_1_3_strayResponseDropped(self) -> None:
        """
        A response matching no client transaction is dropped and logged
        (RFC 3261 section 17.1.3 and 18.1.2).
        """
        request = uacRequest("NOTIFY")
        response = makeResponse(request, 200, toTag="x")
        with capturedLogs() as events:
            self.receive(response)
        self.assertEqual(self.responses(), [])
        self.assertEqual(self.transportLayer.requests, [])
        [event] = [e for e in events if "matching no transaction" in e["log_format"]]
        self.assertEqual(event["code"], 200)

    def test_rfc3261_8_1_sendRequest(self) -> None:
        """
        L{UserAgent.sendRequest} adds our Via with a fresh RFC 3261 branch
        (section 8.1.1.7) and a User-Agent, sends the request, and fires
        with the final response routed to its client transaction.
        """
        notify = self.notify()
        target = Target("UDP", "127.0.0.1", 5070)
        result = self.ua.sendRequest(notify, target)
        [(sent, sentTo)] = self.transportLayer.requests
        self.assertIs(sent, notify)
        self.assertEqual(sentTo, target)
        via = sent.topVia
        assert via is not None and via.branch is not None
        self.assertTrue(via.branch.startswith("z9hG4bK"))
        self.assertEqual(sent.headers.get("User-Agent"), f"sipevents/{__version__}")
        self.assertNoResult(result)
        self.receive(makeResponse(sent, 200))
        self.assertEqual(self.successResultOf(result).code, 200)

    def test_rfc3261_17_1_2_2_retransmittedOverUDP(self) -> None:
        """
        Over UDP the request is retransmitted (Timer E) until a response.
        """
        self.ua.sendRequest(self.notify(), Target("UDP", "127.0.0.1", 5070))
        self.clock.advance(TIMERS.T1)
        self.assertEqual(len(self.transportLayer.requests), 2)

    def test_rfc3261_17_1_2_2_timerF(self) -> None:
        """
        Without a response the L{Deferred} fails after Timer F.
        """
        result = self.ua.sendRequest(self.notify(), Target("UDP", "127.0.0.1", 5070))
        self.clock.advance(TIMERS.timerF + 1)
        self.failureResultOf(result)

    def test_noTransportLayer(self) -> None:
        """
        Without a transport layer, sending fails at once.
        """
        ua = UserAgent(self.clock)
        self.failureResultOf(
            ua.sendRequest(self.notify(), Target("UDP", "127.0.0.1", 5070)),
            RuntimeError,
        )

    def test_messageReceivedNeverRaises(self) -> None:
        """
        An unexpected error while processing is logged, not raised to the
        transport (L{IMessageReceiver.messageReceived} must not raise).
        """

        request = uacRequest()
        request.headers.remove("Via")
        self.receive(request)
        self.assertEqual(self.responses(), [])
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)


class CompletedTransactionTests(SynchronousTestCase):
    """
    The user agent on a real L{TransportLayer} in memory: what a completed
    UDP transaction keeps for Timer J (RFC 3261 section 17.2.2).
    """

    def setUp(self) -> None:
        self.reactor = MemoryUDPReactor()
        self.clock = Clock()
        self.ua = UserAgent(self.clock, None, TIMERS)
        self.layer = TransportLayer(self.reactor, self.ua)
        self.ua.transportLayer = self.layer
        self.successResultOf(self.layer.listen("udp:5060:interface=127.0.0.1"))
        self.port = self.reactor.udpPorts[0]

    def datagram(self, request: Request) -> None:
        self.port.protocol.datagramReceived(request.toBytes(), ("127.0.0.1", 5070))

    def test_rfc3261_17_2_2_completedKeepsOnlyWireForm(self) -> None:
        """
        Once answered, an OPTIONS transaction over UDP keeps the 200 as
        sent and lets go of the request; a retransmission of the request
        gets the same octets at the same address; Timer J still ends it.
        """
        request = uacRequest(branch="z9hG4bK-wire")
        self.datagram(request)
        [(first, address)] = self.port.written
        self.assertEqual(address, ("127.0.0.1", 5070))
        transaction = self.ua.transactions.findServerTransaction(request)
        assert transaction is not None
        self.assertIsNone(transaction.request)
        lastResponse = transaction.lastResponse
        assert lastResponse is not None
        self.assertEqual(lastResponse.toBytes(), first)
        self.datagram(request)
        self.assertEqual(self.port.written, [(first, address)] * 2)
        self.clock.advance(TIMERS.timerJ)
        self.assertEqual(self.ua.transactions.serverTransactionCount, 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_rfc3261_17_2_2_tcpKeepsNothing(self) -> None:
        """
        Over TCP the transaction ends with its final response.
        """
        self.successResultOf(self.layer.listen("tcp:5060:interface=127.0.0.1"))
        [(_, factory, _, _)] = self.reactor.tcpServers
        protocol, transport = connectStream(factory)
        request = uacRequest(transport="TCP", sentBy="127.0.0.1:40000")
        protocol.dataReceived(request.toBytes())
        response = parseMessage(transport.value())
        assert isinstance(response, Response)
        self.assertEqual(response.code, 200)
        self.assertEqual(self.ua.transactions.serverTransactionCount, 0)

    def test_rfc3261_19_3_toTagKeyed(self) -> None:
        """
        The To tag is 64 bits of a keyed hash (RFC 3261 section 19.3): the
        same for the same request, different under another key.
        """
        request = uacRequest()
        tag = self.ua.toTagFor(request)
        self.assertEqual(len(tag), 16)
        int(tag, 16)
        self.assertEqual(self.ua.toTagFor(uacRequest()), tag)
        self.assertNotEqual(UserAgent(self.clock).toTagFor(request), tag)
