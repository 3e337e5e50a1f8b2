"""
Tests for L{sipevents.sip.routing}: Via stamping (RFC 3261 section 18.2.1,
RFC 3581 section 4), response addresses (RFC 3261 section 18.2.2) and
request targets (RFC 3261 section 19.1.2, RFC 3263).
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from sipevents.sip.addresses import Source, Target
from sipevents.sip.headers import parseVia
from sipevents.sip.message import Request
from sipevents.sip.routing import (
    _canonicalIP,
    formatHostPort,
    isIPAddress,
    normalizeHost,
    replaceTopVia,
    responseAddress,
    sameAddress,
    stampReceived,
    targetFromURI,
)
from sipevents.sip.uri import parseURI
from sipevents.testing import FakeSIPConnection, buildRequest

UDP_SOURCE = Source(FakeSIPConnection("UDP"), "127.0.0.1", 40000)
TCP_SOURCE = Source(FakeSIPConnection("TCP"), "127.0.0.1", 40000)


def _request(via: str) -> Request:
    """
    A request whose only Via is C{via}.
    """
    request = buildRequest("OPTIONS", via=False)
    request.headers.addFirst("Via", via)
    return request


def _threeVias(topParams: str = "") -> Request:
    """
    A request with three Via values: two on one compact C{v} line (the top
    one with C{topParams} after its branch), then one on a C{Via} line.
    """
    request = buildRequest("OPTIONS", via=False)
    request.headers.addFirst("Via", "SIP/2.0/UDP 127.0.0.9;branch=z9hG4bKlast")
    request.headers.addFirst(
        "v",
        f"SIP/2.0/UDP a.example;branch=z9hG4bKtop{topParams}, "
        "SIP/2.0/TCP b.example;branch=z9hG4bKmid",
    )
    return request


class AddressHelperTests(SynchronousTestCase):
    """
    Tests for the address helpers.
    """

    def test_normalizeHost(self) -> None:
        """
        IPv6 addresses lose brackets and are compressed, IPv4-mapped ones
        become IPv4, host names are lower-cased (RFC 3261 section 19.1.4
        compares hosts case-insensitively).
        """
        self.assertEqual(normalizeHost("[0:0::1]"), "::1")
        self.assertEqual(normalizeHost("::FFFF:127.0.0.1"), "127.0.0.1")
        self.assertEqual(normalizeHost("Example.COM"), "example.com")
        self.assertEqual(normalizeHost("127.0.0.1"), "127.0.0.1")

    def test_hostChecksCached(self) -> None:
        """
        Host checks run once per distinct spelling: every received request
        asks about its source and its Via, from the same few peers.
        """
        _canonicalIP.cache_clear()
        for _ in range(5):
            self.assertTrue(isIPAddress("127.0.0.1"))
            self.assertTrue(sameAddress("127.0.0.1", "::ffff:127.0.0.1"))
            self.assertEqual(normalizeHost("[::1]"), "::1")
            self.assertFalse(isIPAddress("example.com"))
        self.assertEqual(_canonicalIP.cache_info().misses, 4)

    def test_formatHostPort(self) -> None:
        """
        IPv6 addresses are bracketed in hostport (RFC 3261 section 25.1).
        """
        self.assertEqual(formatHostPort("::1", 5060), "[::1]:5060")
        self.assertEqual(formatHostPort("[::1]", None), "[::1]")
        self.assertEqual(formatHostPort("127.0.0.1", None), "127.0.0.1")
        self.assertEqual(formatHostPort("a.example", 5061), "a.example:5061")

    def test_sameAddress(self) -> None:
        """
        Addresses compare by value; host names never equal anything.
        """
        self.assertTrue(sameAddress("::1", "[0::1]"))
        self.assertTrue(sameAddress("127.0.0.1", "::ffff:127.0.0.1"))
        self.assertFalse(sameAddress("127.0.0.1", "127.0.0.2"))
        self.assertFalse(sameAddress("localhost", "localhost"))
        self.assertTrue(isIPAddress("[::1]"))
        self.assertFalse(isIPAddress("localhost"))


class StampReceivedTests(SynchronousTestCase):
    """
    Tests for L{stampReceived}.
    """

    def test_rfc3261_18_2_1_sameAddressUnchanged(self) -> None:
        """
        A sent-by IP equal to the source address gets no received
        parameter (RFC 3261 section 18.2.1).
        """
        request = _request("SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa")
        stampReceived(request, "127.0.0.1", 5070)
        self.assertEqual(
            request.headers.get("Via"), "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa"
        )

    def test_rfc3261_18_2_1_domainGetsReceived(self) -> None:
        """
        A domain name in sent-by always gets received (RFC 3261 section
        18.2.1).
        """
        request = _request("SIP/2.0/UDP pc.example.com;branch=z9hG4bKa")
        stampReceived(request, "127.0.0.1", 5060)
        via = request.topVia
        assert via is not None
        self.assertEqual(via.received, "127.0.0.1")
        self.assertEqual(via.host, "pc.example.com")

    def test_rfc3261_18_2_1_differentAddressGetsReceived(self) -> None:
        """
        An IP address in sent-by that differs from the source gets
        received (RFC 3261 section 18.2.1).
        """
        request = _request("SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKa")
        stampReceived(request, "127.0.0.1", 5060)
        via = request.topVia
        assert via is not None
        self.assertEqual(via.received, "127.0.0.1")
        self.assertFalse(via.rportRequested)

    def test_rfc3581_4_rportFilledAndReceivedAlways(self) -> None:
        """
        A valueless rport is set to the source port, and received is added
        even when sent-by equals the source address (RFC 3581 section 4).
        """
        request = _request("SIP/2.0/UDP 127.0.0.1:5060;rport;branch=z9hG4bKa")
        stampReceived(request, "127.0.0.1", 40123)
        via = request.topVia
        assert via is not None
        self.assertEqual(via.rport, 40123)
        self.assertEqual(via.received, "127.0.0.1")
        self.assertEqual(via.branch, "z9hG4bKa")
        # The parameter stays where it was written.
        self.assertEqual([name for name, _ in via.params][:2], ["rport", "branch"])

    def test_rfc3581_4_rportWithValueKept(self) -> None:
        """
        An rport that already has a value is left alone; received is still
        added (RFC 3581 section 4).
        """
        request = _request("SIP/2.0/UDP 127.0.0.1:5060;rport=5999;branch=z9hG4bKa")
        stampReceived(request, "127.0.0.1", 40123)
        via = request.topVia
        assert via is not None
        self.assertEqual(via.rport, 5999)
        self.assertEqual(via.received, "127.0.0.1")

    def test_rfc3261_18_2_1_ipv6(self) -> None:
        """
        IPv6 sources compare by value; a different one is written without
        brackets (RFC 3261 section 25.1, C{via-received}).
        """
        request = _request("SIP/2.0/UDP [0:0::1]:5060;branch=z9hG4bKa")
        stampReceived(request, "::1", 5060)
        self.assertEqual(
            request.headers.get("Via"), "SIP/2.0/UDP [0:0::1]:5060;branch=z9hG4bKa"
        )
        request = _request("SIP/2.0/UDP [2001:db8::5]:5060;branch=z9hG4bKa;rport")
        stampReceived(request, "::1", 5062)
        via = request.topVia
        assert via is not None
        self.assertEqual(via.received, "::1")
        self.assertEqual(via.rport, 5062)
        # The stamped value parses again.
        self.assertEqual(parseVia(str(via)), [via])

    def test_ipv4MappedSource(self) -> None:
        """
        A dual-stack socket reports an IPv4 peer as an IPv4-mapped IPv6
        address: it equals the IPv4 sent-by, and received is written as
        plain IPv4.
        """
        request = _request("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKa;rport")
        stampReceived(request, "::ffff:127.0.0.1", 5060)
        via = request.topVia
        assert via is not None
        self.assertEqual(via.received, "127.0.0.1")

    def test_onlyTopViaChanged(self) -> None:
        """
        Only the top-most Via value changes; others on the same line and on
        later lines stay, and the field name stays as written (RFC 3261
        section 7.3.1 allows combining values on one line).
        """
        request = _threeVias()
        stampReceived(request, "127.0.0.1", 5060)
        self.assertEqual(
            request.headers.items()[:2],
            [
                (
                    "v",
                    "SIP/2.0/UDP a.example;branch=z9hG4bKtop;received=127.0.0.1, "
                    "SIP/2.0/TCP b.example;branch=z9hG4bKmid",
                ),
                ("Via", "SIP/2.0/UDP 127.0.0.9;branch=z9hG4bKlast"),
            ],
        )
        self.assertEqual(len(request.vias), 3)

    def test_typedViasAfterStamping(self) -> None:
        """
        After stamping, the typed Via view is what parsing the changed
        field gives, for the top value and the others, on one line and on
        several.
        """
        request = _threeVias(";rport")
        self.assertEqual(len(request.vias), 3)
        stampReceived(request, "127.0.0.1", 5070)
        parsed = [
            via for value in request.headers.getAll("Via") for via in parseVia(value)
        ]
        self.assertEqual(request.vias, parsed)
        self.assertEqual(parsed[0].rport, 5070)
        self.assertEqual(parsed[0].received, "127.0.0.1")

    def test_otherTypedViewsKept(self) -> None:
        """
        Stamping changes only the Via field, so the typed views already
        parsed from the other fields are kept rather than parsed again.
        """
        request = _request("SIP/2.0/UDP a.example:5070;branch=z9hG4bKa;rport")
        fromAddr = request.fromAddr
        cseq = request.cseq
        self.assertIsNotNone(request.topVia)
        stampReceived(request, "127.0.0.1", 40000)
        self.assertIs(request.fromAddr, fromAddr)
        self.assertIs(request.cseq, cseq)
        via = request.topVia
        assert via is not None
        self.assertEqual(
            request.headers.get("Via"),
            "SIP/2.0/UDP a.example:5070;branch=z9hG4bKa;rport=40000;received=127.0.0.1",
        )
        [reparsed] = parseVia(request.headers.get("Via") or "")
        self.assertEqual(via, reparsed)

    def test_replaceTopViaWithoutOldViews(self) -> None:
        """
        L{replaceTopVia} without the old views drops every typed view, to
        be parsed again from the fields.
        """
        request = _request("SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa")
        old = request.topVia
        assert old is not None
        replaceTopVia(request, old.withParam("received", "127.0.0.2"))
        via = request.topVia
        assert via is not None
        self.assertEqual(via.received, "127.0.0.2")

    def test_noVia(self) -> None:
        """
        A request without Via is left alone.
        """
        request = buildRequest("OPTIONS", via=False)
        stampReceived(request, "127.0.0.1", 5060)
        self.assertEqual(request.vias, [])


class ResponseAddressTests(SynchronousTestCase):
    """
    Tests for L{responseAddress}: every case of RFC 3261 section 18.2.2
    and RFC 3581 section 4.
    """

    def _address(self, via: str, source: Source = UDP_SOURCE) -> tuple[str, int]:
        return responseAddress(parseVia(via)[0], source)

    def test_rfc3261_18_2_2_reliableReceived(self) -> None:
        """
        For a reliable transport whose connection is gone: the received
        address with the sent-by port.
        """
        self.assertEqual(
            self._address(
                "SIP/2.0/TCP a.example:5070;branch=z9hG4bKa;received=127.0.0.1",
                TCP_SOURCE,
            ),
            ("127.0.0.1", 5070),
        )

    def test_rfc3261_18_2_2_reliableDefaultPorts(self) -> None:
        """
        Without a sent-by port the transport's default is used: 5060 for
        TCP, 5061 for TLS (RFC 3261 section 18.2.2 and 19.1.2); without
        received, the sent-by host.
        """
        self.assertEqual(
            self._address("SIP/2.0/TCP 127.0.0.1;branch=z9hG4bKa", TCP_SOURCE),
            ("127.0.0.1", 5060),
        )
        self.assertEqual(
            self._address(
                "SIP/2.0/TLS a.example;branch=z9hG4bKa;received=::1", TCP_SOURCE
            ),
            ("::1", 5061),
        )

    def test_rfc3261_18_2_2_reliableIgnoresRport(self) -> None:
        """
        rport applies to unreliable transports only (RFC 3581 section 4):
        a new TCP connection goes to the sent-by port, where the client
        listens.
        """
        self.assertEqual(
            self._address(
                "SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bKa;rport=40000"
                ";received=127.0.0.1",
                TCP_SOURCE,
            ),
            ("127.0.0.1", 5070),
        )

    def test_rfc3261_18_2_2_maddr(self) -> None:
        """
        With maddr: that address, with the sent-by port or 5060; maddr
        comes before received.
        """
        self.assertEqual(
            self._address(
                "SIP/2.0/UDP a.example:5070;branch=z9hG4bKa;maddr=127.0.0.3"
                ";received=127.0.0.1"
            ),
            ("127.0.0.3", 5070),
        )
        self.assertEqual(
            self._address("SIP/2.0/UDP a.example;branch=z9hG4bKa;maddr=127.0.0.3"),
            ("127.0.0.3", 5060),
        )

    def test_rfc3261_18_2_2_received(self) -> None:
        """
        With received: that address, with the sent-by port or 5060.
        """
        self.assertEqual(
            self._address(
                "SIP/2.0/UDP a.example:5070;branch=z9hG4bKa;received=127.0.0.1"
            ),
            ("127.0.0.1", 5070),
        )
        self.assertEqual(
            self._address("SIP/2.0/UDP a.example;branch=z9hG4bKa;received=127.0.0.1"),
            ("127.0.0.1", 5060),
        )

    def test_rfc3581_4_receivedAndRport(self) -> None:
        """
        With received and an rport value: that address and port
        (RFC 3581 section 4).
        """
        self.assertEqual(
            self._address(
                "SIP/2.0/UDP a.example:5070;branch=z9hG4bKa;rport=40001"
                ";received=127.0.0.1"
            ),
            ("127.0.0.1", 40001),
        )

    def test_rfc3581_4_rportWithoutReceived(self) -> None:
        """
        An rport value without received (never produced by
        L{stampReceived}, but possible in a hand-built response) goes to the
        source address.
        """
        self.assertEqual(
            self._address("SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa;rport=40001"),
            ("127.0.0.1", 40001),
        )

    def test_rfc3261_18_2_2_sentBy(self) -> None:
        """
        Otherwise: the sent-by host and port, or 5060.
        """
        self.assertEqual(
            self._address("SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa"),
            ("127.0.0.1", 5070),
        )
        self.assertEqual(
            self._address("SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKa;rport"),
            ("127.0.0.1", 5060),
        )

    def test_rfc3261_18_2_2_ipv6(self) -> None:
        """
        IPv6 addresses come back without brackets, in sent-by, received and
        maddr alike.
        """
        self.assertEqual(
            self._address("SIP/2.0/UDP [::1]:5070;branch=z9hG4bKa"), ("::1", 5070)
        )
        self.assertEqual(
            self._address(
                "SIP/2.0/UDP [2001:db8::1]:5070;branch=z9hG4bKa;received=::1;rport=9"
            ),
            ("::1", 9),
        )
        self.assertEqual(
            self._address("SIP/2.0/UDP a.example;branch=z9hG4bKa;maddr=[::1]"),
            ("::1", 5060),
        )


class TargetFromURITests(SynchronousTestCase):
    """
    Tests for L{targetFromURI}.
    """

    def test_rfc3261_19_1_2_defaults(self) -> None:
        """
        A SIP URI without transport goes over UDP to port 5060.
        """
        self.assertEqual(
            targetFromURI(parseURI("sip:bob@127.0.0.1")),
            Target("UDP", "127.0.0.1", 5060),
        )

    def test_transportParam(self) -> None:
        """
        The transport parameter picks the transport (RFC 3261 section
        19.1.1); the port is kept.
        """
        self.assertEqual(
            targetFromURI(parseURI("sip:bob@127.0.0.1:5070;transport=tcp")),
            Target("TCP", "127.0.0.1", 5070),
        )
        self.assertEqual(
            targetFromURI(parseURI("sip:bob@127.0.0.1;transport=TLS")),
            Target("TLS", "127.0.0.1", 5061),
        )

    def test_rfc3261_26_2_2_sipsIsTLS(self) -> None:
        """
        A SIPS URI goes over TLS, port 5061 by default; transport=tcp still
        means TLS over TCP; transport=udp is refused.
        """
        self.assertEqual(
            targetFromURI(parseURI("sips:bob@example.com")),
            Target("TLS", "example.com", 5061),
        )
        self.assertEqual(
            targetFromURI(parseURI("sips:bob@127.0.0.1:5999;transport=tcp")),
            Target("TLS", "127.0.0.1", 5999),
        )
        self.assertRaises(
            ValueError, targetFromURI, parseURI("sips:bob@127.0.0.1;transport=udp")
        )

    def test_maddr(self) -> None:
        """
        The maddr parameter overrides the host (RFC 3261 section 19.1.1).
        """
        self.assertEqual(
            targetFromURI(parseURI("sip:bob@example.com;maddr=127.0.0.7")),
            Target("UDP", "127.0.0.7", 5060),
        )

    def test_ipv6(self) -> None:
        """
        IPv6 hosts come without brackets.
        """
        self.assertEqual(
            targetFromURI(parseURI("sip:bob@[::1]:5070;transport=tcp")),
            Target("TCP", "::1", 5070),
        )

    def test_refused(self) -> None:
        """
        Non-SIP URIs and unknown transports raise C{ValueError}.
        """
        self.assertRaises(ValueError, targetFromURI, parseURI("tel:+15551234"))
        self.assertRaises(
            ValueError, targetFromURI, parseURI("sip:bob@127.0.0.1;transport=sctp")
        )
