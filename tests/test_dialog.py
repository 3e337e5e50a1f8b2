# -*- test-case-name: tests.test_dialog -*-
"""
Tests for L{sipevents.sip.dialog}: the dialog a SUBSCRIBE creates at the UAS
(RFC 3261 section 12.1.1), checks on requests inside it (section 12.2.2),
and the requests we send in it (section 12.2.1.1).
"""

from __future__ import annotations

from dataclasses import replace

from twisted.trial.unittest import SynchronousTestCase

from sipevents.errors import SIPError
from sipevents.records import ACTIVE, SubscriptionRecord
from sipevents.sip.addresses import Source, Target
from sipevents.sip.dialog import (
    SUBSCRIPTION_ENDING_CODES,
    OutOfOrder,
    addressField,
    buildRequest,
    checkRemoteCSeq,
    contactURI,
    dialogFromRequest,
    listeningContact,
    nextHop,
    remoteTargetOf,
    requestURIAndRoutes,
    secureRequest,
)
from sipevents.sip.dialogstate import NO_CSEQ, Dialog
from sipevents.sip.message import Request
from sipevents.sip.parser import parseMessage
from sipevents.sip.uri import formatURI
from sipevents.testing import FakeSIPConnection, RecordingTransportLayer


def request(*extra: str, uri: str = "sip:bob@127.0.0.1", cseq: int = 4) -> Request:
    """
    A parsed SUBSCRIBE with the extra header lines given.
    """
    lines = [
        f"SUBSCRIBE {uri} SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-d1",
        "Max-Forwards: 70",
        '"Alice" <sip:alice@127.0.0.1>;tag=abc;x=1',
        "To: <sip:bob@127.0.0.1>;foo=bar",
        "Call-ID: dialog-1@127.0.0.1",
        f"CSeq: {cseq} SUBSCRIBE",
        "Event: presence",
        *extra,
        "Content-Length: 0",
    ]
    lines[3] = "From: " + lines[3]
    message = parseMessage(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert isinstance(message, Request)
    return message


UDP = Source(FakeSIPConnection("UDP"), "127.0.0.1", 5070)
TCP = Source(FakeSIPConnection("TCP"), "127.0.0.1", 40001)
TLS = Source(FakeSIPConnection("TLS"), "127.0.0.1", 40002)


def dialog(**changes: object) -> Dialog:
    """
    A dialog, with C{changes}.
    """
    base = Dialog(
        callId="c1@127.0.0.1",
        localTag="local",
        remoteTag="remote",
        localUri="<sip:bob@127.0.0.1>",
        remoteUri='"Alice" <sip:alice@127.0.0.1>',
        remoteTarget="sip:alice@127.0.0.1:5070",
        routeSet=(),
        remoteCSeq=1,
        flowTransport="UDP",
        flowHost="127.0.0.1",
        flowPort=5070,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


class DialogCreationTests(SynchronousTestCase):
    """
    L{dialogFromRequest}: RFC 3261 section 12.1.1.
    """

    def test_rfc3261_12_1_1_state(self) -> None:
        """
        The route set is the Record-Route values in order with their
        parameters, the remote target the Contact URI, the remote sequence
        number the CSeq, the tags and URIs from From and To (URIs without
        tags, other parameters kept).
        """
        d = dialogFromRequest(
            request(
                "Contact: <sip:alice@127.0.0.1:5070;ob>",
                "Record-Route: <sip:p1.invalid;lr;x=y>;rrp=1",
                "Record-Route: <sip:p2.invalid;lr>",
            ),
            "localtag",
            UDP,
        )
        self.assertEqual(d.callId, "dialog-1@127.0.0.1")
        self.assertEqual(d.localTag, "localtag")
        self.assertEqual(d.remoteTag, "abc")
        self.assertEqual(d.localUri, "<sip:bob@127.0.0.1>;foo=bar")
        self.assertEqual(d.remoteUri, '"Alice" <sip:alice@127.0.0.1>;x=1')
        self.assertEqual(d.remoteTarget, "sip:alice@127.0.0.1:5070;ob")
        self.assertEqual(
            d.routeSet, ("<sip:p1.invalid;lr;x=y>;rrp=1", "<sip:p2.invalid;lr>")
        )
        self.assertEqual(d.remoteCSeq, 4)
        self.assertEqual(
            (d.flowTransport, d.flowHost, d.flowPort), ("UDP", "127.0.0.1", 5070)
        )

    def test_rfc3261_12_1_1_noFromTag(self) -> None:
        """
        A From without a tag (RFC 2543) gives a null remote tag, and our To
        of requests then has none.
        """
        r = request("Contact: <sip:alice@127.0.0.1>")
        r.headers.set("From", "<sip:alice@127.0.0.1>")
        d = dialogFromRequest(r, "t", UDP)
        self.assertEqual(d.remoteTag, "")
        self.assertEqual(
            buildRequest(d, "NOTIFY", 1).headers.get("To"), "<sip:alice@127.0.0.1>"
        )

    def test_rfc3261_12_1_1_secure(self) -> None:
        """
        A SIPS Request-URI over TLS makes the dialog secure; over TCP, or a
        SIP Request-URI over TLS, does not.
        """
        sips = request("Contact: <sips:alice@127.0.0.1>", uri="sips:bob@127.0.0.1")
        self.assertTrue(secureRequest(sips, TLS))
        self.assertFalse(secureRequest(sips, TCP))
        sip = request("Contact: <sip:alice@127.0.0.1>")
        self.assertFalse(secureRequest(sip, TLS))

    def test_rfc3261_8_1_1_8_contactRequired(self) -> None:
        """
        No Contact, several, a wildcard or a non-SIP URI: 400.
        """
        for extra in (
            (),
            ("Contact: <sip:a@127.0.0.1>, <sip:b@127.0.0.1>",),
            ("Contact: *",),
            ("Contact: <tel:+1234>",),
        ):
            error = self.assertRaises(
                SIPError, dialogFromRequest, request(*extra), "t", UDP
            )
            self.assertEqual(error.status, 400)

    def test_rfc3261_12_1_1_unroutable400(self) -> None:
        """
        A Contact or first Record-Route we cannot send to is refused with
        400 before any state exists.
        """
        error = self.assertRaises(
            SIPError,
            dialogFromRequest,
            request("Contact: <sip:alice@127.0.0.1;transport=sctp>"),
            "t",
            UDP,
        )
        self.assertEqual(error.status, 400)
        error = self.assertRaises(
            SIPError,
            dialogFromRequest,
            request("Contact: <sip:alice@127.0.0.1>", "Record-Route: <tel:+1;lr>"),
            "t",
            UDP,
        )
        self.assertEqual(error.status, 400)

    def test_rfc3261_12_2_2_remoteTargetOf(self) -> None:
        """
        A target refresh without Contact leaves the target; with one, it is
        the Contact URI.
        """
        self.assertIsNone(remoteTargetOf(request()))
        self.assertEqual(
            remoteTargetOf(request("Contact: Alice <sip:alice@127.0.0.1:5999>")),
            "sip:alice@127.0.0.1:5999",
        )


class RemoteCSeqTests(SynchronousTestCase):
    """
    L{checkRemoteCSeq}: RFC 3261 section 12.2.2.
    """

    def test_rfc3261_12_2_2_lower500(self) -> None:
        """
        A CSeq lower than the remote sequence number is out of order: 500.
        """
        error = self.assertRaises(OutOfOrder, checkRemoteCSeq, 5, request(cseq=4))
        self.assertEqual(error.status, 500)

    def test_rfc3261_12_2_2_higherOrGap(self) -> None:
        """
        Higher (even by more than one), equal, or an empty remote sequence
        number: in order, and the new number is returned.
        """
        self.assertEqual(checkRemoteCSeq(1, request(cseq=4)), 4)
        self.assertEqual(checkRemoteCSeq(4, request(cseq=4)), 4)
        self.assertEqual(checkRemoteCSeq(NO_CSEQ, request(cseq=4)), 4)
        self.assertEqual(checkRemoteCSeq(NO_CSEQ, request(cseq=0)), 0)


class RequestTests(SynchronousTestCase):
    """
    L{buildRequest}, L{requestURIAndRoutes}, L{nextHop}: RFC 3261 sections
    12.2.1.1 and 8.1.2.
    """

    def test_rfc3261_12_2_1_1_fields(self) -> None:
        """
        To is the remote URI and tag, From the local URI and tag, the
        dialog's Call-ID, the CSeq given with the method, Max-Forwards 70,
        further fields appended; no Route without a route set.
        """
        r = buildRequest(dialog(), "NOTIFY", 42, [("Event", "presence")], body=b"x")
        self.assertEqual(r.method, "NOTIFY")
        self.assertEqual(formatURI(r.uri), "sip:alice@127.0.0.1:5070")
        headers = r.headers
        self.assertEqual(headers.get("To"), '"Alice" <sip:alice@127.0.0.1>;tag=remote')
        self.assertEqual(headers.get("From"), "<sip:bob@127.0.0.1>;tag=local")
        self.assertEqual(headers.get("Call-ID"), "c1@127.0.0.1")
        self.assertEqual(headers.get("CSeq"), "42 NOTIFY")
        self.assertEqual(headers.get("Max-Forwards"), "70")
        self.assertEqual(headers.get("Event"), "presence")
        self.assertIsNone(headers.get("Route"))
        self.assertEqual(r.body, b"x")
        # It serializes and parses back.
        parsed = parseMessage(
            b"NOTIFY sip:alice@127.0.0.1:5070 SIP/2.0\r\n"
            b"Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\n"
            + r.toBytes().split(b"\r\n", 1)[1]
        )
        assert isinstance(parsed, Request)
        self.assertEqual(parsed.toAddr and parsed.toAddr.tag, "remote")

    def test_rfc3261_12_2_1_1_looseRouting(self) -> None:
        """
        A first route with C{lr}: the remote target is the Request-URI and
        the whole route set, with its parameters, the Route.
        """
        d = dialog(routeSet=("<sip:127.0.0.2;lr;x=1>;p=q", "<sip:p2.invalid;lr>"))
        uri, routes = requestURIAndRoutes(d)
        self.assertEqual(formatURI(uri), "sip:alice@127.0.0.1:5070")
        self.assertEqual(routes, ["<sip:127.0.0.2;lr;x=1>;p=q", "<sip:p2.invalid;lr>"])
        self.assertEqual(
            buildRequest(d, "NOTIFY", 1).headers.get("Route"),
            "<sip:127.0.0.2;lr;x=1>;p=q, <sip:p2.invalid;lr>",
        )
        self.assertEqual(nextHop(d), Target("UDP", "127.0.0.2", 5060))

    def test_rfc3261_12_2_1_1_strictRouting(self) -> None:
        """
        A first route without C{lr}: its URI (less C{method} and headers)
        is the Request-URI, the rest of the route set and then the remote
        target the Route (the RFC's own example).
        """
        d = dialog(
            remoteTarget="sip:user@remoteua.invalid",
            routeSet=(
                "<sip:proxy1.invalid;method=INVITE>",
                "<sip:proxy2.invalid>",
                "<sip:proxy3.invalid;lr>",
                "<sip:proxy4.invalid>",
            ),
        )
        uri, routes = requestURIAndRoutes(d)
        self.assertEqual(formatURI(uri), "sip:proxy1.invalid")
        self.assertEqual(
            routes,
            [
                "<sip:proxy2.invalid>",
                "<sip:proxy3.invalid;lr>",
                "<sip:proxy4.invalid>",
                "<sip:user@remoteua.invalid>",
            ],
        )
        self.assertEqual(nextHop(d), Target("UDP", "proxy1.invalid", 5060))

    def test_rfc3261_8_1_2_nextHopRemoteTarget(self) -> None:
        """
        Without a route set, requests go to the remote target, on its
        transport.
        """
        self.assertEqual(nextHop(dialog()), Target("UDP", "127.0.0.1", 5070))
        self.assertEqual(
            nextHop(dialog(remoteTarget="sip:alice@127.0.0.1:5071;transport=tcp")),
            Target("TCP", "127.0.0.1", 5071),
        )

    def test_rfc5626_reliableFlowReused(self) -> None:
        """
        Without a route set, a dialog created over TCP or TLS sends back to
        the address the SUBSCRIBE came from on that transport, so the
        subscriber's connection is reused.
        """
        d = dialog(flowTransport="TCP", flowHost="127.0.0.1", flowPort=40001)
        self.assertEqual(nextHop(d), Target("TCP", "127.0.0.1", 40001))
        d = dialog(
            flowTransport="TCP", flowPort=40001, routeSet=("<sip:127.0.0.2;lr>",)
        )
        self.assertEqual(nextHop(d), Target("UDP", "127.0.0.2", 5060))

    def test_rfc3261_12_1_1_contactURI(self) -> None:
        """
        Our Contact: a SIP URI with the transport for TCP and TLS, a SIPS
        URI for a secure dialog, IPv6 in brackets.
        """
        self.assertEqual(contactURI("UDP", "127.0.0.1", 5060), "sip:127.0.0.1:5060")
        self.assertEqual(
            contactURI("tcp", "127.0.0.1", 5060), "sip:127.0.0.1:5060;transport=tcp"
        )
        self.assertEqual(contactURI("TLS", "::1", 5061), "sip:[::1]:5061;transport=tls")
        self.assertEqual(contactURI("TLS", "::1", 5061, True), "sips:[::1]:5061")


class AddressTests(SynchronousTestCase):
    """
    How the dialog keeps its URIs, and L{addressField}.
    """

    def test_plainAddressKeptBare(self) -> None:
        """
        A From that is just a URI in brackets is kept as the bare URI; the
        request built from it brackets it again.
        """
        r = request("Contact: <sip:alice@127.0.0.1>")
        r.headers.set("From", "<sip:alice@127.0.0.1>;tag=abc")
        d = dialogFromRequest(r, "t", UDP)
        self.assertEqual(d.remoteUri, "sip:alice@127.0.0.1")
        self.assertEqual(
            buildRequest(d, "NOTIFY", 1).headers.get("To"),
            "<sip:alice@127.0.0.1>;tag=abc",
        )

    def test_uriWithParametersBracketed(self) -> None:
        """
        A URI with parameters stays in brackets, so a tag appended is a
        header parameter, not a URI one (RFC 3261 section 20.10).
        """
        r = request("Contact: <sip:alice@127.0.0.1>")
        r.headers.set("From", "<sip:+1555@127.0.0.1;user=phone>;tag=abc")
        d = dialogFromRequest(r, "t", UDP)
        self.assertEqual(d.remoteUri, "<sip:+1555@127.0.0.1;user=phone>")
        self.assertEqual(
            addressField(d.remoteUri, "abc"), "<sip:+1555@127.0.0.1;user=phone>;tag=abc"
        )
        self.assertEqual(addressField("sip:a@127.0.0.1", ""), "<sip:a@127.0.0.1>")


class ListeningContactTests(SynchronousTestCase):
    """
    L{listeningContact}: our Contact is where the transport layer says we
    listen (RFC 3261 section 8.1.1.8).
    """

    def test_rfc3261_8_1_1_8_contactFromSentBy(self) -> None:
        """
        The Contact carries the sent-by host and port, with the transport
        parameter for TCP, or a SIPS URI when secure; the host comes too.
        """
        layer = RecordingTransportLayer("127.0.0.1", 5070)
        self.assertEqual(
            listeningContact(layer, "UDP", "127.0.0.1"),
            ("sip:127.0.0.1:5070", "127.0.0.1"),
        )
        self.assertEqual(
            listeningContact(layer, "TCP", "127.0.0.1"),
            ("sip:127.0.0.1:5070;transport=tcp", "127.0.0.1"),
        )
        self.assertEqual(
            listeningContact(layer, "TLS", "127.0.0.1", secure=True),
            ("sips:127.0.0.1:5070", "127.0.0.1"),
        )

    def test_noAddressToGive(self) -> None:
        """
        A socket bound to every interface, or a user agent with no
        transport layer yet, gives no Contact.
        """
        for host in ("0.0.0.0", "::", ""):
            layer = RecordingTransportLayer(host, 5070)
            self.assertIsNone(listeningContact(layer, "UDP", "127.0.0.1"))
        self.assertIsNone(listeningContact(None, "UDP", "127.0.0.1"))


class SubscriptionEndingCodesTests(SynchronousTestCase):
    """
    L{SUBSCRIPTION_ENDING_CODES}: the one list of RFC 6665 sections 4.1.2.2
    and 4.2.2.
    """

    def test_rfc6665_4_1_2_2_and_4_2_2(self) -> None:
        """
        Both sections list the same responses: 404, 405, 410, 416, 480 to
        485, 489, 501 and 604; other failures, 408 and 500 among them, do
        not end a subscription.
        """
        self.assertEqual(
            SUBSCRIPTION_ENDING_CODES,
            {404, 405, 410, 416, *range(480, 486), 489, 501, 604},
        )
        self.assertNotIn(408, SUBSCRIPTION_ENDING_CODES)
        self.assertNotIn(500, SUBSCRIPTION_ENDING_CODES)


class SharedDialogTests(SynchronousTestCase):
    """
    L{Dialog} is the one dialog value: a stored
    L{sipevents.records.SubscriptionRecord} is one.
    """

    def record(self) -> SubscriptionRecord:
        d = dialog()
        return SubscriptionRecord(
            key="k",
            resource="sip:bob@127.0.0.1",
            eventType="presence",
            eventId=None,
            eventParams=(),
            state=ACTIVE,
            expiresAt=100.0,
            watcher="sip:alice@127.0.0.1",
            accept=(),
            callId=d.callId,
            localTag=d.localTag,
            remoteTag=d.remoteTag,
            localUri=d.localUri,
            remoteUri=d.remoteUri,
            remoteTarget=d.remoteTarget,
            routeSet=d.routeSet,
            localCSeq=7,
            remoteCSeq=d.remoteCSeq,
            flowTransport=d.flowTransport,
            flowHost=d.flowHost,
            flowPort=d.flowPort,
        )

    def test_recordIsDialog(self) -> None:
        """
        A record is a L{Dialog}, and a request built in it is the one built
        in the dialog it holds (RFC 3261 section 12.2.1.1).
        """
        record = self.record()
        self.assertIsInstance(record, Dialog)
        self.assertEqual(
            buildRequest(record, "NOTIFY", 7).toBytes(),
            buildRequest(dialog(), "NOTIFY", 7).toBytes(),
        )
        self.assertEqual(nextHop(record), nextHop(dialog()))

    def test_recordSlots(self) -> None:
        """
        Records stay slotted (no per-instance dictionary) with the dialog
        fields inherited, and evolve keeps the class.
        """
        record = self.record()
        self.assertFalse(hasattr(record, "__dict__"))
        evolved = record.evolve(remoteCSeq=9)
        self.assertIs(type(evolved), SubscriptionRecord)
        self.assertEqual(evolved.remoteCSeq, 9)
        self.assertEqual(evolved.localCSeq, 7)
