# -*- test-case-name: tests.test_tap -*-
"""
C{twistd sipevents}: command-line options and the service they make.

Run C{twistd -n sipevents --help} for the options. Listening addresses are
endpoint descriptions (C{--listen}, repeatable): C{udp:PORT[:interface=HOST]}
(ours: Twisted has none for UDP) and Twisted's stream server strings
(C{tcp:}, C{ssl:}, with C{tls:} as an alias of C{ssl:}).

The notifier's options: C{--store} (C{sqlite:PATH} by default, or
C{memory}), C{--package} (repeatable; every installed event package by
default, found as Twisted plugins), C{--min-expires} and C{--max-expires}
(overriding the packages' limits) and C{--rfc3265-compat}. Every option is
checked in L{Options.postOptions}, so a mistake is a usage error before
anything starts.

Authentication: C{--users FILE}, an htdigest file (lines
C{user:realm:HA1}, as Apache's C{htdigest} writes them), turns on SIP
Digest authentication of every SUBSCRIBE and PUBLISH (RFC 3261 section
22, RFC 3856 section 6.6.1, RFC 3903 section 14.1); C{--realm} chooses
the realm, by default the file's only one. Without C{--users} the server
authenticates no one, so it refuses to listen on anything but loopback
unless C{--no-authentication} says it is open on purpose: a server started
with a public C{--listen} and no users would let anyone watch anyone's
presence and voicemail and publish anyone's presence.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from twisted.cred.credentials import IUsernameDigestHash
from twisted.python import usage

from sipevents.app.service import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    SIPEventsService,
)
from sipevents.config import DEFAULT_LIMITS, DEFAULT_TIMERS, Limits, TimerConfig
from sipevents.packages import discoverPackages
from sipevents.sip.authentication import DigestAuthenticator, portalFromFile
from sipevents.sip.endpoints import (
    isLoopback,
    listenInterface,
    parseListenDescription,
    streamServerEndpoint,
)
from sipevents.store import DEFAULT_SQLITE_PATH, storeFromDescription

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime
    from twisted.python.failure import Failure

#: What we listen on when no C{--listen} is given: UDP and TCP on the
#: loopback interface only, so that a server started by mistake is not
#: reachable from the network.
DEFAULT_LISTEN = ("udp:5060:interface=127.0.0.1", "tcp:5060:interface=127.0.0.1")

#: Where subscriptions and publications are kept when no C{--store} is
#: given: an SQLite file in the working directory (twistd's C{--rundir}),
#: so that they survive a restart.
DEFAULT_STORE = f"sqlite:{DEFAULT_SQLITE_PATH}"

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
_wholeSeconds = _positive(int, "a whole number of seconds")


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

    optFlags = [
        [
            "log-subscriptions",
            None,
            "Log every subscription and publication as it is created, "
            "refreshed and ended. Off by default: twistd writes every log "
            "event to its log file whatever its level, and these lines "
            "cost more CPU per SUBSCRIBE than the rest of its handling.",
        ],
        [
            "no-gc-tuning",
            None,
            "Leave Python's garbage collector as it is. By default the "
            "start-up objects are frozen out of collections and young "
            "collections run less often, so that collector pauses stay "
            "short under load.",
        ],
        [
            "no-authentication",
            None,
            "Serve without authentication on every --listen address, "
            "loopback or not: anyone who can reach the server may watch "
            "and publish anyone's state. Without --users and without this "
            "flag, listening beyond loopback is refused.",
        ],
        [
            "rfc3265-compat",
            None,
            "Answer 202 Accepted instead of 200 OK to a SUBSCRIBE whose "
            "authorization is still pending, as RFC 3265 peers expect "
            "(RFC 6665 section 8.3.1 made it 200). Matters only with an "
            "authorizer that decides later; the default one accepts at "
            "once.",
        ],
    ]

    optParameters = [
        [
            "users",
            None,
            None,
            "Authenticate every SUBSCRIBE and PUBLISH with SIP Digest (RFC "
            "3261 section 22) against this htdigest file: lines "
            "user:realm:HA1, as Apache's htdigest writes them (htdigest -c "
            "FILE REALM USER). A user may watch anyone's presence but only "
            "their own message-summary, and publish only their own state; "
            "the From of their requests must be sip:USER@REALM.",
        ],
        [
            "realm",
            None,
            None,
            "The Digest realm (RFC 3261 section 22.1), which is also the "
            "users' domain. Default: the realm of the --users file, which "
            "must then have only one.",
        ],
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
        [
            "store",
            None,
            DEFAULT_STORE,
            "Where subscriptions and publications are kept: sqlite:PATH, "
            "an SQLite file (created if missing; a relative PATH is in "
            "the working directory, see twistd --rundir) that keeps them "
            "across restarts, or memory, which forgets them when the "
            "server stops.",
        ],
        [
            "min-expires",
            None,
            None,
            "The shortest subscription or publication accepted, in "
            "seconds, for every event package; a SUBSCRIBE or PUBLISH asking "
            "for less (but more than 0) is answered 423 with Min-Expires "
            "(RFC 6665 section 4.2.1.1, RFC 3903 section 6). Default: each "
            "package's own (60 for presence and message-summary)",
            _wholeSeconds,
        ],
        [
            "max-expires",
            None,
            None,
            "The longest subscription or publication granted, in seconds, "
            "for every event package; longer requests are shortened to it "
            "(RFC 6665 section 4.2.1.1). Default: each package's own "
            "(86400 for presence and message-summary)",
            _wholeSeconds,
        ],
    ]

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self["listen"] = []
        self["package"] = []
        self["packages"] = None
        self["portal"] = None

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

    def opt_package(self, name: str) -> None:
        """
        Serve this event package (the name in the Event header, such as
        presence or message-summary); repeat for several. Packages are
        Twisted plugins: sipevents ships presence and message-summary, and
        a pip-installed distribution can add more (see the tutorial in
        docs/tutorial-package.rst). An unknown name is an error that lists
        the installed ones. [default: every installed package]
        """
        self["package"].append(name)

    opt_package.__doc__ = " ".join((opt_package.__doc__ or "").split())

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
        self._checkStore()
        self._checkAuthentication()
        if (
            self["min-expires"] is not None
            and self["max-expires"] is not None
            and self["min-expires"] > self["max-expires"]
        ):
            raise usage.UsageError(
                f"--min-expires ({self['min-expires']}) must not be above "
                f"--max-expires ({self['max-expires']})"
            )
        try:
            self["packages"] = discoverPackages(self["package"] or None)
        except ValueError as error:
            raise usage.UsageError(f"--package: {error}") from None
        if not self["packages"]:
            raise usage.UsageError(
                "No event package is installed: reinstall sipevents, whose "
                "presence and message-summary packages are Twisted plugins"
            )

    def _checkAuthentication(self) -> None:
        """
        Read the C{--users} file (its path made absolute, since twistd may
        change directory before the server starts) into a portal, or check
        that a server without users listens on loopback only, unless
        C{--no-authentication}.
        """
        users = self["users"]
        if users is None:
            if self["realm"] is not None:
                raise usage.UsageError("--realm needs --users")
            if self["no-authentication"]:
                return
            public = [
                description
                for description in self["listen"]
                if not isLoopback(listenInterface(parseListenDescription(description)))
            ]
            if public:
                raise usage.UsageError(
                    f"--listen {public[0]} is reachable beyond this machine and "
                    "nobody would be authenticated: give --users FILE to "
                    "authenticate subscribers and publishers, or "
                    "--no-authentication to serve everyone on purpose"
                )
            return
        if self["no-authentication"]:
            raise usage.UsageError(
                "--users and --no-authentication contradict each other"
            )
        path = os.path.abspath(users)
        if not os.path.isfile(path):
            raise usage.UsageError(f"--users {users}: no such file")
        try:
            portal, realm = portalFromFile(path, self["realm"])
        except OSError as error:
            raise usage.UsageError(f"--users {users}: {error}") from None
        except ValueError as error:
            raise usage.UsageError(f"--users {users}: {error} with --realm") from None
        self["users"] = path
        self["portal"] = portal
        self["realm"] = realm

    def _checkStore(self) -> None:
        """
        Check C{--store} without opening anything: the SQLite file is
        opened when the server starts, after twistd has daemonized.
        """
        description = self["store"]
        try:
            # Makes the store object only; no file is opened and the
            # reactor is not used.
            storeFromDescription(description, cast("IReactorTime", None))
        except ValueError as error:
            raise usage.UsageError(f"Bad --store: {error}") from None
        kind, _, path = description.partition(":")
        if kind == "sqlite":
            folder = os.path.dirname(path or DEFAULT_SQLITE_PATH) or "."
            if not os.path.isdir(folder):
                raise usage.UsageError(
                    f"Bad --store {description!r}: the folder {folder!r} does not exist"
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

    When the store cannot be loaded at start-up (a corrupt file, one
    written by a newer version), the error is logged and the reactor
    stopped, so that the server does not run without its subscriptions.

    @param reactor: the reactor to listen with and take time from; the
        global one when C{None}.
    """
    if reactor is None:
        from twisted.internet import reactor
    packages = options["packages"]
    if packages is None:
        packages = discoverPackages(options["package"] or None)
    authenticator = None
    if options["portal"] is not None:
        portal = options["portal"]
        realm = options["realm"]
        # Offer only the algorithms the file's users can answer: a client
        # picks SHA-256 whenever it is offered (RFC 8760 section 2.4), and
        # Apache's htdigest writes MD5 lines only.
        checker = portal.checkers[IUsernameDigestHash]
        authenticator = DigestAuthenticator(
            reactor, portal, realm, algorithms=checker.algorithms(realm)
        )

    def stopReactor(failure: Failure) -> None:
        # The store loads once the reactor runs; should it fail sooner,
        # stop as soon as it does.
        if reactor.running:
            reactor.stop()
        else:
            reactor.callWhenRunning(reactor.stop)

    return SIPEventsService(
        options["listen"] or list(DEFAULT_LISTEN),
        reactor=reactor,
        timers=options.timers(),
        limits=options.limits(),
        maxConnections=options["max-connections"],
        idleTimeout=options["idle-timeout"],
        store=storeFromDescription(options["store"], reactor),
        storeDescription=options["store"],
        packages=packages,
        minExpires=options["min-expires"],
        maxExpires=options["max-expires"],
        rfc3265Compat=bool(options["rfc3265-compat"]),
        onStartFailure=stopReactor,
        tuneGC=not options["no-gc-tuning"],
        logLifecycle=bool(options["log-subscriptions"]),
        authenticator=authenticator,
    )
