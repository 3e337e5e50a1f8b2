# -*- test-case-name: tests.test_transport -*-
"""
Where a message came from (L{Source}) and where one goes (L{Target}).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sipevents.interfaces import ISIPConnection

#: Transport names as written in a Via (RFC 3261 section 18 and 20.42).
UDP = "UDP"
TCP = "TCP"
TLS = "TLS"

#: Transports that never lose or reorder (no retransmissions, RFC 3261
#: section 17.1.2.2).
RELIABLE = frozenset({TCP, TLS, "SCTP", "WS", "WSS"})


def defaultPort(transport: str) -> int:
    """
    The default port of a transport: 5061 for TLS, 5060 for the others
    (RFC 3261 section 19.1.2).
    """
    return 5061 if transport.upper() in ("TLS", "WSS") else 5060


@dataclass(frozen=True, slots=True)
class Source:
    """
    Where a message was received: the connection (or datagram socket) it
    arrived on and the peer's address as seen by the socket.

    @ivar connection: the L{ISIPConnection} that received it; responses on a
        stream go back on it while it is open (RFC 3261 section 18.2.2).
    @ivar host: the peer's IP address (IPv6 without brackets).
    @ivar port: the peer's port.
    """

    connection: ISIPConnection
    host: str
    port: int

    @property
    def transport(self) -> str:
        """The transport name, C{"UDP"}, C{"TCP"} or C{"TLS"}."""
        name: str = self.connection.transportName
        return name

    @property
    def reliable(self) -> bool:
        """Whether the transport is reliable (no retransmissions)."""
        reliable: bool = self.connection.reliable
        return reliable


@dataclass(frozen=True, slots=True)
class Target:
    """
    Where to send a request: a transport and a host and port to reach.

    @ivar transport: C{"UDP"}, C{"TCP"} or C{"TLS"}.
    @ivar host: a host name or IP address (IPv6 without brackets).
    @ivar port: the port.
    """

    transport: str
    host: str
    port: int
