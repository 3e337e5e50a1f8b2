# -*- test-case-name: tests.test_tap -*-
"""
C{twistd sipevents}: command-line options and the service they make.

Run C{twistd -n sipevents --help} for the options. Listening addresses are
endpoint descriptions (C{--listen}, repeatable): C{udp:PORT[:interface=HOST]}
(ours: Twisted has none for UDP) and Twisted's stream server strings
(C{tcp:}, C{ssl:}, with C{tls:} as an alias of C{ssl:}).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from twisted.python import usage

from sipevents.config import DEFAULT_LIMITS, DEFAULT_TIMERS, Limits, TimerConfig
from sipevents.endpoints import parseListenDescription, streamServerEndpoint
from sipevents.service import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    SIPEventsService,
)

#: What we listen on when no C{--listen} is given: UDP and TCP on the
#: loopback interface only, so that a server started by mistake is not
#: reachable from the network.
DEFAULT_LISTEN = ("udp:5060:interface=127.0.0.1", "tcp:5060:interface=127.0.0.1")

#: The smallest C{--max-message-size} we take: below this, ordinary
#: SUBSCRIBE and NOTIFY requests with their headers would be refused.
MIN_MESSAGE_SIZE = 1024


def _positive(kind: Callable[[str], Any], what: str) -> Callable[[str], Any]:
    """
    A C{coerce} function for L{usage.Options.optParameters} that converts
    with C{kind} and takes only values above zero.
    """

    def coerce(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise ValueError(f"{text!r} is not {what}") from None
        if not 0 < value < math.inf:
            raise ValueError(f"{text!r} is not {what} above 0")
        return value

    coerce.coerceDoc = f"Must be {what} above 0."  # type: ignore[attr-defined]
    return coerce


_seconds = _positive(float, "a number of seconds")
_count = _positive(int, "a whole number")


class Options(usage.Options):
    """
    The options of C{twistd sipevents}.
    """

    synopsis = "[--listen DESCRIPTION ...] [options]"

    longdesc = (
        "Run a SIP event notification server (RFC 6665 SUBSCRIBE/NOTIFY, "
        "RFC 3903 PUBLISH). Without --listen it listens on "
        + " and ".join(DEFAULT_LISTEN)
        + ". Logs go to twistd's log (structured events from twisted.logger)."
    )

    optParameters = [
        [
            "t1",
            None,
            DEFAULT_TIMERS.T1,
            "Timer T1, the round-trip time estimate in seconds that SIP "
            "retransmissions start from (RFC 3261 section 17.1.1.1). "
            "Lower it only on a network known to be faster.",
            _seconds,
        ],
        [
            "t2",
            None,
            DEFAULT_TIMERS.T2,
            "Timer T2, the longest interval in seconds between "
            "retransmissions of a request or response (RFC 3261 section "
            "17.1.2.2). Must not be below T1.",
            _seconds,
        ],
        [
            "t4",
            None,
            DEFAULT_TIMERS.T4,
            "Timer T4, how long in seconds a message can stay in the "
            "network; completed transactions wait this long for "
            "retransmissions (RFC 3261 section 17.1.2.2).",
            _seconds,
        ],
        [
            "max-message-size",
            None,
            DEFAULT_LIMITS.maxMessageSize,
            "The largest SIP message accepted, in bytes, headers and body "
            "together; larger ones are answered 513 (RFC 3261 section "
            f"21.5.10). At least {MIN_MESSAGE_SIZE}.",
            _count,
        ],
        [
            "max-connections",
            None,
            DEFAULT_MAX_CONNECTIONS,
            "The most TCP and TLS connections open at once, accepted and "
            "opened together; new ones are refused past this.",
            _count,
        ],
        [
            "idle-timeout",
            None,
            DEFAULT_IDLE_TIMEOUT,
            "Seconds a TCP or TLS connection may stay without traffic "
            "before it is closed.",
            _seconds,
        ],
    ]

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self["listen"] = []

    def opt_listen(self, description: str) -> None:
        """
        Listen on this endpoint description; repeat for several. UDP:
        udp:PORT[:interface=HOST]. TCP: tcp:PORT[:interface=HOST]. TLS:
        ssl:PORT:privateKey=KEY.pem:certKey=CERT.pem (tls: is the same).
        An IPv6 interface is escaped: interface=\\:\\:1. [default:
        udp:5060:interface=127.0.0.1 and tcp:5060:interface=127.0.0.1]
        """
        try:
            parsed = parseListenDescription(description)
            if parsed.transport != "UDP":
                # Builds the endpoint without listening, so that a typo or
                # a missing certificate file is reported now.
                streamServerEndpoint(None, parsed)
        except Exception as error:
            # Besides ValueError, serverFromString reports problems such as
            # an unreadable certificate file with exceptions of its own.
            raise usage.UsageError(
                f"Bad --listen description {description!r}: {error}"
            ) from None
        self["listen"].append(description)

    # usage.Options prints the docstring as it is; make it one paragraph.
    opt_listen.__doc__ = " ".join((opt_listen.__doc__ or "").split())
    opt_l = opt_listen

    def postOptions(self) -> None:
        """
        Apply the default listeners and check that the numbers fit together.

        @raise usage.UsageError: when they do not.
        """
        if not self["listen"]:
            self["listen"] = list(DEFAULT_LISTEN)
        if self["t2"] < self["t1"]:
            raise usage.UsageError(
                f"--t2 ({self['t2']}) must not be below --t1 ({self['t1']})"
            )
        if self["max-message-size"] < MIN_MESSAGE_SIZE:
            raise usage.UsageError(
                f"--max-message-size must be at least {MIN_MESSAGE_SIZE}"
            )

    def timers(self) -> TimerConfig:
        """
        The timer values chosen.
        """
        return TimerConfig(T1=self["t1"], T2=self["t2"], T4=self["t4"])

    def limits(self) -> Limits:
        """
        The message limits chosen.
        """
        return Limits(maxMessageSize=self["max-message-size"])


def makeService(options: Options, reactor: Any = None) -> SIPEventsService:
    """
    Make the C{twistd sipevents} service from parsed C{options}.

    @param reactor: the reactor to listen with and take time from; the
        global one when C{None}.
    """
    return SIPEventsService(
        options["listen"] or list(DEFAULT_LISTEN),
        reactor=reactor,
        timers=options.timers(),
        limits=options.limits(),
        maxConnections=options["max-connections"],
        idleTimeout=options["idle-timeout"],
    )
