"""
Tests for L{sipevents.sip.endpoints}: C{udp:} descriptions and stream endpoint
strings.
"""

from __future__ import annotations

from twisted.internet.endpoints import TCP4ServerEndpoint, TCP6ServerEndpoint
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import SynchronousTestCase

from sipevents.sip.endpoints import (
    MAX_DATAGRAM_SIZE,
    ListenDescription,
    describeAddress,
    describeListener,
    isLoopback,
    listenInterface,
    listenUDP,
    parseListenDescription,
    streamServerEndpoint,
)
from sipevents.testing import MemoryUDPReactor


class ParseUDPTests(SynchronousTestCase):
    """
    Tests for C{udp:PORT[:interface=HOST]}.
    """

    def test_portOnly(self) -> None:
        """
        C{udp:5060} listens on every IPv4 interface.
        """
        self.assertEqual(
            parseListenDescription("udp:5060"),
            ListenDescription("UDP", "udp:5060", 5060, ""),
        )

    def test_interface(self) -> None:
        """
        C{interface=} names the address to bind; C{port=} is accepted too.
        """
        spec = parseListenDescription("udp:port=0:interface=127.0.0.1")
        self.assertEqual(
            (spec.transport, spec.port, spec.interface), ("UDP", 0, "127.0.0.1")
        )

    def test_ipv6InterfaceEscaped(self) -> None:
        """
        An IPv6 interface is written with Twisted's backslash escapes
        (C{interface=\\:\\:1}), or in brackets.
        """
        self.assertEqual(
            parseListenDescription(r"udp:5060:interface=\:\:1").interface, "::1"
        )
        self.assertEqual(
            parseListenDescription("UDP:5060:interface=[::1]").interface, "::1"
        )

    def test_errors(self) -> None:
        """
        Missing or bad ports, unknown options and unknown types raise
        C{ValueError}.
        """
        for bad in (
            "udp",
            "udp:",
            "udp:interface=127.0.0.1",
            "udp:70000",
            "udp:abc",
            "udp:5060:5061",
            "udp:5060:colour=blue",
            "udp:5060:interface=\\",
            "sctp:5060",
            "5060",
        ):
            self.assertRaises(ValueError, parseListenDescription, bad)


class ParseStreamTests(SynchronousTestCase):
    """
    Tests for stream descriptions, handed to C{serverFromString}.
    """

    def test_tcp(self) -> None:
        """
        C{tcp:} descriptions are kept as they are, with transport TCP.
        """
        self.assertEqual(
            parseListenDescription("tcp:5060:interface=127.0.0.1"),
            ListenDescription("TCP", "tcp:5060:interface=127.0.0.1"),
        )

    def test_tlsIsSSL(self) -> None:
        """
        C{tls:} is an alias of Twisted's C{ssl:}; both mean transport TLS.
        """
        self.assertEqual(
            parseListenDescription("tls:5061:privateKey=k.pem"),
            ListenDescription("TLS", "ssl:5061:privateKey=k.pem"),
        )
        self.assertEqual(parseListenDescription("ssl:5061").transport, "TLS")

    def test_streamServerEndpoint(self) -> None:
        """
        Stream descriptions become Twisted endpoints, IPv6 interfaces
        included.
        """
        reactor = MemoryReactor()
        endpoint = streamServerEndpoint(
            reactor, parseListenDescription("tcp:0:interface=127.0.0.1")
        )
        self.assertIsInstance(endpoint, TCP4ServerEndpoint)
        endpoint = streamServerEndpoint(
            reactor, parseListenDescription(r"tcp6:0:interface=\:\:1")
        )
        self.assertIsInstance(endpoint, TCP6ServerEndpoint)


class ListenUDPTests(SynchronousTestCase):
    """
    Tests for L{listenUDP} and L{describeListener}.
    """

    def test_rfc3261_18_1_1_largeDatagrams(self) -> None:
        """
        UDP ports get a 65,535-octet receive buffer (RFC 3261 section
        18.1.1: implementations MUST handle datagrams up to that size).
        """
        reactor = MemoryUDPReactor()
        port = listenUDP(
            reactor,
            parseListenDescription("udp:0:interface=127.0.0.1"),
            DatagramProtocol(),
        )
        self.assertEqual(reactor.udpPorts, [port])
        self.assertEqual(reactor.udpPorts[0].maxPacketSize, MAX_DATAGRAM_SIZE)
        self.assertEqual(describeListener("UDP", port), "UDP 127.0.0.1:40000")

    def test_describeIPv6(self) -> None:
        """
        IPv6 addresses are bracketed in descriptions; a wildcard bind is
        shown as C{0.0.0.0}.
        """
        reactor = MemoryUDPReactor()
        port = listenUDP(
            reactor,
            parseListenDescription(r"udp:5070:interface=\:\:1"),
            DatagramProtocol(),
        )
        self.assertEqual(describeListener("UDP", port), "UDP [::1]:5070")
        self.assertEqual(describeAddress("TCP", "", 5060), "TCP 0.0.0.0:5060")


class ListenInterfaceTests(SynchronousTestCase):
    """
    L{listenInterface} and L{isLoopback}: whether a listener is reachable
    from other machines.
    """

    def test_listenInterface(self) -> None:
        """
        The C{interface} option of UDP and stream descriptions, brackets and
        escapes removed; C{""} (every interface) without one.
        """
        for description, interface in [
            ("udp:5060:interface=192.0.2.1", "192.0.2.1"),
            ("udp:5060", ""),
            ("udp:5060:interface=[::1]", "::1"),
            ("tcp:5060:interface=127.0.0.1", "127.0.0.1"),
            ("tcp:5060", ""),
            ("tcp:interface=\\:\\:1:port=5060", "::1"),
            ("tcp6:5060:interface=\\:\\:", "::"),
            ("tls:5061:privateKey=k.pem:interface=10.0.0.1", "10.0.0.1"),
        ]:
            self.assertEqual(
                listenInterface(parseListenDescription(description)),
                interface,
                description,
            )

    def test_isLoopback(self) -> None:
        """
        127.0.0.0/8, C{::1} and C{localhost} are loopback; every other
        address, every interface (C{""}, C{0.0.0.0}, C{::}) and other host
        names are not.
        """
        for interface in ("127.0.0.1", "127.1.2.3", "::1", "localhost", "LOCALHOST"):
            self.assertTrue(isLoopback(interface), interface)
        for interface in ("", "0.0.0.0", "::", "192.0.2.1", "example.com", "::ffff:1"):
            self.assertFalse(isLoopback(interface), interface)
