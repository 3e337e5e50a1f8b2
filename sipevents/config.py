# -*- test-case-name: tests.test_transaction -*-
"""
Timer values and limits in one place.

The RFC 3261 timer defaults (section 17.1.1.1 and table 4 in appendix A) are
configurable because a LAN deployment may want a shorter T1, and tests want
predictable numbers.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """
    Transaction timer base values, in seconds (RFC 3261 section 17 and
    appendix A).

    @ivar T1: RTT estimate; 500 ms by default.
    @ivar T2: the maximum retransmit interval for non-INVITE requests and
        INVITE responses; 4 s by default.
    @ivar T4: the maximum duration a message remains in the network; 5 s.
    """

    T1: float = 0.5
    T2: float = 4.0
    T4: float = 5.0

    @property
    def timerB(self) -> float:
        """INVITE client transaction timeout: 64*T1."""
        return 64 * self.T1

    @property
    def timerF(self) -> float:
        """Non-INVITE client transaction timeout: 64*T1."""
        return 64 * self.T1

    @property
    def timerH(self) -> float:
        """Wait time for ACK receipt: 64*T1."""
        return 64 * self.T1

    @property
    def timerI(self) -> float:
        """Wait time for ACK retransmits (unreliable transports): T4."""
        return self.T4

    @property
    def timerJ(self) -> float:
        """Wait time for non-INVITE request retransmits (unreliable): 64*T1."""
        return 64 * self.T1

    @property
    def timerK(self) -> float:
        """Wait time for response retransmits (unreliable): T4."""
        return self.T4


DEFAULT_TIMERS = TimerConfig()


@dataclass(frozen=True, slots=True)
class Limits:
    """
    Safe limits on what a peer may send; all sizes count octets.

    @ivar maxMessageSize: the largest whole message (start line, headers and
        body). UDP datagrams cannot exceed 65,535 octets anyway; streams are
        refused with 513 past this and the connection closed.
    @ivar maxHeaders: the most header fields (lines after unfolding).
    @ivar maxLineLength: the longest start line or unfolded header field.
    """

    maxMessageSize: int = 65535
    maxHeaders: int = 256
    maxLineLength: int = 16384


DEFAULT_LIMITS = Limits()
