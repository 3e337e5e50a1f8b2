# -*- test-case-name: tests.test_message -*-
"""
Tests for L{sipevents.sip.message}: the L{Headers} multimap, typed views,
serialization and L{makeResponse}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from sipevents.errors import ParseError
from sipevents.sip.headers import CSeq, Event, NameAddr, SubscriptionState, Via
from sipevents.sip.message import (
    Headers,
    Request,
    Response,
    canonicalName,
    headerKey,
    makeResponse,
    reasonPhrase,
)
from sipevents.sip.uri import SIPURI, parseURI

# Addresses are loopback or example.com: nothing here goes on the wire.
SUBSCRIBE_FIELDS = [
    ("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK776asdhds;rport"),
    ("v", "SIP/2.0/TCP 127.0.0.2;branch=z9hG4bKfirst, SIP/2.0/UDP 127.0.0.3"),
    ("Max-Forwards", "70"),
    ("f", '"Bob" <sip:bob@example.com>;tag=a6c85cf'),
    ("t", "<sip:alice@example.com>"),
    ("i", "a84b4c76e66710@127.0.0.1"),
    ("CSeq", "314159 SUBSCRIBE"),
    ("m", "<sip:bob@127.0.0.1:5070;transport=udp>;expires=60, <sip:b2@127.0.0.1>"),
    ("o", "presence;id=7"),
    ("Accept", "application/pidf+xml, application/xpidf+xml;q=0.5"),
    ("Expires", "3600"),
    ("u", "presence, message-summary"),
    ("k", "eventlist, timer"),
    ("Allow", "INVITE, SUBSCRIBE, NOTIFY"),
    ("l", "0"),
]


def subscribe(body: bytes = b"") -> Request:
    """
    A SUBSCRIBE (RFC 6665 section 4.1.2) written with compact forms.
    """
    return Request(
        "SUBSCRIBE", parseURI("sip:alice@example.com"), list(SUBSCRIBE_FIELDS), body
    )


class HeaderKeyTests(SynchronousTestCase):
    """
    L{headerKey} and L{canonicalName}.
    """

    def test_rfc3261_7_3_1_caseInsensitive(self) -> None:
        """
        Header names are case-insensitive (RFC 3261 section 7.3.1).
        """
        self.assertEqual(headerKey("VIA"), "via")
        self.assertEqual(headerKey("cAlL-iD"), "call-id")
        self.assertEqual(headerKey("X-Unknown"), "x-unknown")

    def test_rfc3261_7_3_3_compactForms(self) -> None:
        """
        The compact forms of RFC 3261 section 7.3.3 and 20, and C{o} and
        C{u} of RFC 6665 section 8.2, in either case, name the long form.
        """
        for compact, full in {
            "i": "call-id",
            "m": "contact",
            "e": "content-encoding",
            "l": "content-length",
            "c": "content-type",
            "f": "from",
            "s": "subject",
            "k": "supported",
            "t": "to",
            "v": "via",
            "o": "event",
            "u": "allow-events",
        }.items():
            self.assertEqual(headerKey(compact), full)
            self.assertEqual(headerKey(compact.upper()), full)

    def test_canonicalName(self) -> None:
        """
        Names we write are spelled conventionally.
        """
        self.assertEqual(canonicalName("call-id"), "Call-ID")
        self.assertEqual(canonicalName("v"), "Via")
        self.assertEqual(canonicalName("CSEQ"), "CSeq")
        self.assertEqual(canonicalName("o"), "Event")
        self.assertEqual(canonicalName("u"), "Allow-Events")
        self.assertEqual(canonicalName("www-authenticate"), "WWW-Authenticate")
        self.assertEqual(canonicalName("subscription-state"), "Subscription-State")


class HeadersTests(SynchronousTestCase):
    """
    L{Headers}: an ordered, case-insensitive multimap (RFC 3261 section
    7.3).
    """

    def test_rfc3261_7_3_1_lookup(self) -> None:
        """
        Lookups ignore case and compact forms; names keep their spelling.
        """
        headers = Headers([("v", "a"), ("VIA", "b"), ("To", "c")])
        self.assertEqual(headers.get("Via"), "a")
        self.assertEqual(headers.getAll("via"), ["a", "b"])
        self.assertEqual(headers.count("V"), 2)
        self.assertIn("t", headers)
        self.assertNotIn("From", headers)
        self.assertNotIn(3, headers)
        self.assertIsNone(headers.get("From"))
        self.assertEqual(headers.get("From", "x"), "x")
        self.assertEqual(headers.items(), [("v", "a"), ("VIA", "b"), ("To", "c")])
        self.assertEqual(list(headers), headers.items())
        self.assertEqual(len(headers), 3)

    def test_rfc3261_7_3_1_order(self) -> None:
        """
        Field order is kept, across names, as added.
        """
        headers = Headers()
        headers.add("Route", "<sip:a@example.com>")
        headers.add("Via", "SIP/2.0/UDP a")
        headers.add("route", "<sip:b@example.com>")
        self.assertEqual(
            [name for name, _ in headers.items()], ["Route", "Via", "route"]
        )
        self.assertEqual(
            headers.getAll("Route"), ["<sip:a@example.com>", "<sip:b@example.com>"]
        )

    def test_rfc3261_7_3_1_getList(self) -> None:
        """
        L{Headers.getList} splits every line on commas outside quotes and
        angle brackets, strips the elements and drops empty ones.
        """
        headers = Headers(
            [
                ("Contact", '"Doe, J" <sip:a@example.com>, <sip:b@example.com;x=1,2>'),
                ("m", ' <sip:c@example.com>;p="a,b" , '),
                ("Allow", "INVITE,ACK , , BYE"),
            ]
        )
        self.assertEqual(
            headers.getList("contact"),
            [
                '"Doe, J" <sip:a@example.com>',
                "<sip:b@example.com;x=1,2>",
                '<sip:c@example.com>;p="a,b"',
            ],
        )
        self.assertEqual(headers.getList("allow"), ["INVITE", "ACK", "BYE"])
        self.assertEqual(headers.getList("Require"), [])

    def test_set(self) -> None:
        """
        L{Headers.set} replaces every field of a name with one, where the
        first stood, keeping its spelling; or appends one.
        """
        headers = Headers([("Expires", "1"), ("To", "t"), ("expires", "2")])
        headers.set("EXPIRES", "3")
        self.assertEqual(headers.items(), [("Expires", "3"), ("To", "t")])
        headers.set("Min-Expires", "60")
        self.assertEqual(headers.items()[-1], ("Min-Expires", "60"))

    def test_remove(self) -> None:
        """
        L{Headers.remove} removes every field of a name and says how many;
        L{Headers.removeFirst} removes one and returns its value.
        """
        headers = Headers([("v", "a"), ("To", "t"), ("Via", "b")])
        self.assertEqual(headers.removeFirst("via"), "a")
        self.assertEqual(headers.items(), [("To", "t"), ("Via", "b")])
        self.assertEqual(headers.remove("V"), 1)
        self.assertEqual(headers.remove("Via"), 0)
        self.assertIsNone(headers.removeFirst("Via"))
        self.assertEqual(headers.items(), [("To", "t")])

    def test_addFirst(self) -> None:
        """
        L{Headers.addFirst} puts a field before the others of its name (a new
        top Via, RFC 3261 section 8.1.1.7), or at the very top.
        """
        headers = Headers([("To", "t"), ("v", "old")])
        headers.addFirst("Via", "new")
        self.assertEqual(headers.items(), [("To", "t"), ("Via", "new"), ("v", "old")])
        headers.addFirst("Record-Route", "<sip:r@example.com>")
        self.assertEqual(headers.items()[0], ("Record-Route", "<sip:r@example.com>"))

    def test_copy(self) -> None:
        """
        A copy changes independently.
        """
        headers = Headers([("To", "t")])
        copy = headers.copy()
        copy.add("From", "f")
        self.assertEqual(headers.items(), [("To", "t")])
        self.assertEqual(copy.items(), [("To", "t"), ("From", "f")])

    def test_equality(self) -> None:
        """
        Headers are equal when their fields are, in order, whatever the
        spelling of their names.
        """
        self.assertEqual(Headers([("v", "a")]), Headers([("VIA", "a")]))
        self.assertNotEqual(Headers([("v", "a")]), Headers([("Via", "b")]))
        self.assertNotEqual(
            Headers([("To", "t"), ("From", "f")]), Headers([("From", "f"), ("To", "t")])
        )
        self.assertNotEqual(Headers(), object())

    def test_verbatim(self) -> None:
        """
        Unknown and odd header values are kept as they were (RFC 4475
        section 3.1.1.1).
        """
        headers = Headers([("UnknownHeaderWithUnusualValue", ";;,,;;,;")])
        self.assertEqual(headers.get("unknownheaderwithunusualvalue"), ";;,,;;,;")


class TypedViewTests(SynchronousTestCase):
    """
    The typed views of L{sipevents.sip.message.Message}, parsed once and cached
    until a field changes.
    """

    def test_views(self) -> None:
        """
        Every view parses its header, whatever form its name takes.
        """
        request = subscribe()
        self.assertEqual(
            [via.sentBy for via in request.vias],
            ["127.0.0.1:5070", "127.0.0.2", "127.0.0.3"],
        )
        topVia = request.topVia
        assert topVia is not None
        self.assertEqual(topVia.branch, "z9hG4bK776asdhds")
        self.assertEqual(request.cseq, CSeq(314159, "SUBSCRIBE"))
        self.assertEqual(request.callId, "a84b4c76e66710@127.0.0.1")
        fromAddr = request.fromAddr
        assert fromAddr is not None
        self.assertEqual(fromAddr.tag, "a6c85cf")
        toAddr = request.toAddr
        assert toAddr is not None
        self.assertEqual(toAddr.uri, SIPURI("sip", "alice", None, "example.com"))
        self.assertEqual([c.param("expires") for c in request.contacts], ["60", None])
        self.assertEqual(request.maxForwards, 70)
        self.assertEqual(request.expires, 3600)
        self.assertEqual(request.contentLength, 0)
        self.assertEqual(request.event, Event("presence", (), "7"))
        self.assertEqual(request.allowEvents, ["presence", "message-summary"])
        self.assertEqual(request.supported, ["eventlist", "timer"])
        self.assertEqual(request.allow, ["INVITE", "SUBSCRIBE", "NOTIFY"])
        self.assertEqual([r.q for r in request.accept], [1.0, 0.5])

    def test_absent(self) -> None:
        """
        Absent headers give C{None} or an empty list.
        """
        request = Request("OPTIONS", parseURI("sip:example.com"))
        for name in [
            "topVia",
            "cseq",
            "callId",
            "fromAddr",
            "toAddr",
            "maxForwards",
            "expires",
            "minExpires",
            "contentLength",
            "contentType",
            "event",
            "subscriptionState",
            "retryAfter",
        ]:
            self.assertIsNone(getattr(request, name), name)
        for name in [
            "vias",
            "contacts",
            "routes",
            "recordRoutes",
            "allowEvents",
            "require",
            "proxyRequire",
            "supported",
            "unsupported",
            "allow",
            "accept",
        ]:
            self.assertEqual(getattr(request, name), [], name)

    def test_responseViews(self) -> None:
        """
        Views that matter in responses and NOTIFYs: Subscription-State,
        Min-Expires, Retry-After, Unsupported, Content-Type (compact C{c}).
        """
        response = Response(
            489,
            "Bad Event",
            [
                ("Subscription-State", "terminated;reason=noresource"),
                ("Min-Expires", "60"),
                ("Retry-After", "30"),
                ("Unsupported", "foo"),
                ("c", "application/pidf+xml"),
                ("Record-Route", "<sip:p1.example.com;lr>, <sip:p2.example.com;lr>"),
                ("Route", "<sip:p3.example.com;lr>"),
                ("Proxy-Require", "bar"),
                ("Require", "baz"),
            ],
        )
        self.assertEqual(
            response.subscriptionState,
            SubscriptionState("terminated", "noresource"),
        )
        self.assertEqual(response.minExpires, 60)
        retryAfter = response.retryAfter
        assert retryAfter is not None
        self.assertEqual(retryAfter.seconds, 30)
        self.assertEqual(response.unsupported, ["foo"])
        contentType = response.contentType
        assert contentType is not None
        self.assertEqual(contentType.mimeType, "application/pidf+xml")
        self.assertEqual(len(response.recordRoutes), 2)
        self.assertEqual(len(response.routes), 1)
        self.assertEqual(response.proxyRequire, ["bar"])
        self.assertEqual(response.require, ["baz"])

    def test_cached(self) -> None:
        """
        A view is parsed once: the same object comes back until a field
        changes.
        """
        request = subscribe()
        self.assertIs(request.vias, request.vias)
        self.assertIs(request.fromAddr, request.fromAddr)

    def test_cacheInvalidation(self) -> None:
        """
        Every change to the fields (add, addFirst, set, remove,
        removeFirst) drops the cached views.
        """
        request = subscribe()
        self.assertEqual(len(request.vias), 3)
        request.headers.addFirst("Via", "SIP/2.0/UDP 127.0.0.9;branch=z9hG4bKnew")
        topVia = request.topVia
        assert topVia is not None
        self.assertEqual(topVia.host, "127.0.0.9")
        self.assertEqual(len(request.vias), 4)
        self.assertEqual(
            request.headers.removeFirst("v"),
            "SIP/2.0/UDP 127.0.0.9;branch=z9hG4bKnew",
        )
        self.assertEqual(len(request.vias), 3)
        request.headers.removeFirst("Via")
        self.assertEqual(len(request.vias), 2)
        self.assertEqual(request.expires, 3600)
        request.headers.set("Expires", "0")
        self.assertEqual(request.expires, 0)
        request.headers.remove("expires")
        self.assertIsNone(request.expires)
        request.headers.add("Expires", "10")
        self.assertEqual(request.expires, 10)

    def test_malformed(self) -> None:
        """
        A malformed value raises L{ParseError} when its view is used; a
        single-value header given twice is an error too (RFC 4475 section
        3.3.8).
        """
        request = Request(
            "SUBSCRIBE",
            parseURI("sip:alice@example.com"),
            [
                ("Expires", "soon"),
                ("From", "<sip:a@example.com>;tag=1"),
                ("f", "<sip:b@example.com>;tag=2"),
                ("Event", "presence;id"),
                ("Via", "SIP/2.0/UDP host;;"),
            ],
        )
        for name in ["expires", "fromAddr", "event", "vias"]:
            self.assertRaises(ParseError, getattr, request, name)


class SerializationTests(SynchronousTestCase):
    """
    L{Message.toBytes} (RFC 3261 section 7).
    """

    def test_rfc3261_7_request(self) -> None:
        """
        The request line, the fields in order with their names as written,
        an empty line and the body, all CRLF-separated.
        """
        request = Request(
            "OPTIONS",
            parseURI("sip:alice@example.com;transport=tcp"),
            [("Via", "SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK1"), ("t", "<sip:a@b.c>")],
        )
        self.assertEqual(
            request.toBytes(),
            b"OPTIONS sip:alice@example.com;transport=tcp SIP/2.0\r\n"
            b"Via: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK1\r\n"
            b"t: <sip:a@b.c>\r\n"
            b"Content-Length: 0\r\n"
            b"\r\n",
        )
        self.assertEqual(bytes(request), request.toBytes())

    def test_rfc3261_7_2_response(self) -> None:
        """
        The status line; an empty reason phrase is allowed.
        """
        self.assertEqual(
            Response(200, "OK").toBytes(),
            b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
        )
        self.assertTrue(Response(200, "").toBytes().startswith(b"SIP/2.0 200 \r\n"))

    def test_rfc3261_20_14_contentLengthRewritten(self) -> None:
        """
        Content-Length is rewritten with the body's octet count where it
        stands, in whatever form it was written; duplicates are dropped.
        """
        request = subscribe(b"hello")
        data = request.toBytes()
        self.assertIn(b"\r\nl: 5\r\n\r\nhello", data)
        self.assertNotIn(b"l: 0", data)
        response = Response(
            200,
            "OK",
            [("Content-Length", "99"), ("To", "t"), ("content-length", "7")],
            b"abc",
        )
        self.assertEqual(
            response.toBytes(),
            b"SIP/2.0 200 OK\r\nContent-Length: 3\r\nTo: t\r\n\r\nabc",
        )

    def test_rfc3261_20_14_utf8Body(self) -> None:
        """
        Content-Length counts octets, not characters, of a UTF-8 body.
        """
        body = "Caf\u00e9 \u2615".encode()
        data = Request(
            "NOTIFY",
            parseURI("sip:bob@127.0.0.1"),
            [("Content-Type", "text/plain;charset=UTF-8")],
            body,
        ).toBytes()
        self.assertIn(b"Content-Length: 9\r\n", data)
        self.assertTrue(data.endswith(b"\r\n\r\n" + body))
        self.assertEqual((len(body), len(body.decode())), (9, 6))

    def test_rfc3261_25_1_utf8Headers(self) -> None:
        """
        Header values are encoded as UTF-8 (C{TEXT-UTF8}); bytes that were
        not UTF-8 (decoded with surrogateescape) come back unchanged.
        """
        raw = b'"J\xc3\xbcrgen \xff" <sip:j@example.com>'
        value = raw.decode("utf-8", "surrogateescape")
        data = Request(
            "MESSAGE", parseURI("sip:j@example.com"), [("From", value)]
        ).toBytes()
        self.assertIn(b"From: " + raw + b"\r\n", data)


class EqualityTests(SynchronousTestCase):
    """
    Requests and responses compare by value and are not hashable.
    """

    def test_equality(self) -> None:
        """
        Equal parts make equal messages; any difference makes them differ.
        """
        self.assertEqual(subscribe(), subscribe())
        self.assertNotEqual(subscribe(), subscribe(b"x"))
        self.assertEqual(Response(200, "OK"), Response(200, "OK"))
        self.assertNotEqual(Response(200, "OK"), Response(202, "OK"))
        self.assertNotEqual(subscribe(), Response(200, "OK"))
        self.assertRaises(TypeError, hash, subscribe())
        self.assertIn("SUBSCRIBE", repr(subscribe()))
        self.assertIn("200", repr(Response(200, "OK")))


class MakeResponseTests(SynchronousTestCase):
    """
    L{makeResponse} (RFC 3261 section 8.2.6.2).
    """

    def test_rfc3261_8_2_6_2_copied(self) -> None:
        """
        Via (every value, in order), From, To, Call-ID and CSeq are copied
        under their canonical names; nothing else is.
        """
        response = makeResponse(subscribe(), 202)
        self.assertEqual(response.code, 202)
        self.assertEqual(response.reason, "Accepted")
        self.assertEqual(
            response.headers.items(),
            [
                ("Via", SUBSCRIBE_FIELDS[0][1]),
                ("Via", SUBSCRIBE_FIELDS[1][1]),
                ("From", SUBSCRIBE_FIELDS[3][1]),
                ("To", SUBSCRIBE_FIELDS[4][1]),
                ("Call-ID", SUBSCRIBE_FIELDS[5][1]),
                ("CSeq", SUBSCRIBE_FIELDS[6][1]),
            ],
        )
        self.assertEqual(len(response.vias), 3)

    def test_rfc3261_8_2_6_2_toTag(self) -> None:
        """
        A To tag is added when there is none, but never to a 100 Trying, and
        an existing tag is kept.
        """
        response = makeResponse(subscribe(), 200, toTag="xyz")
        toAddr = response.toAddr
        assert toAddr is not None
        self.assertEqual(toAddr.tag, "xyz")
        trying = makeResponse(subscribe(), 100, toTag="xyz")
        toAddr = trying.toAddr
        assert toAddr is not None
        self.assertIsNone(toAddr.tag)
        request = subscribe()
        request.headers.set("To", "<sip:alice@example.com>;tag=old")
        toAddr = makeResponse(request, 200, toTag="new").toAddr
        assert toAddr is not None
        self.assertEqual(toAddr.tag, "old")

    def test_reasonHeadersBody(self) -> None:
        """
        A reason phrase, extra fields and a body may be given.
        """
        response = makeResponse(
            subscribe(),
            423,
            reason="Interval Too Brief",
            headers=[("Min-Expires", "60")],
            body=b"x",
        )
        self.assertEqual(response.reason, "Interval Too Brief")
        self.assertEqual(response.minExpires, 60)
        self.assertEqual(response.headers.items()[-1], ("Min-Expires", "60"))
        self.assertEqual(response.body, b"x")
        self.assertIn(b"Content-Length: 1\r\n", response.toBytes())

    def test_rfc3261_21_reasonPhrase(self) -> None:
        """
        Default reason phrases (RFC 3261 section 21, RFC 6665 489 and 204),
        and the class's phrase for unknown codes.
        """
        self.assertEqual(reasonPhrase(489), "Bad Event")
        self.assertEqual(reasonPhrase(204), "No Notification")
        self.assertEqual(reasonPhrase(299), "OK")
        self.assertEqual(reasonPhrase(499), "Bad Request")
        self.assertEqual(reasonPhrase(799), "Unknown")


class NameAddrInMessageTests(SynchronousTestCase):
    """
    Typed values written back into a message.
    """

    def test_roundTrip(self) -> None:
        """
        A value built with L{NameAddr}/L{Via} and written with C{str()}
        reads back equal through the message's views.
        """
        via = Via("SIP/2.0", "TCP", "::1", 5060, (("branch", "z9hG4bKx"),))
        addr = NameAddr(
            'Al "A" ice', parseURI("sip:alice@example.com"), (("tag", "1"),)
        )
        request = Request(
            "NOTIFY",
            parseURI("sip:bob@127.0.0.1"),
            [("Via", str(via)), ("From", str(addr))],
        )
        self.assertEqual(request.vias, [via])
        self.assertEqual(request.fromAddr, addr)
