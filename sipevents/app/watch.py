# -*- test-case-name: tests.test_watch -*-
"""
C{sipevents-watch}: subscribe to a SIP event and print every NOTIFY (RFC
6665 section 4.1), for operators who want to see what a server really
sends. Also C{python -m sipevents.app.watch}.

    sipevents-watch sip:alice@127.0.0.1:5070 --event presence

Output: every NOTIFY is printed to standard output as it arrives, flushed
at once (the output is read by scripts and pipes): a line with the local
time and the event, then the C{Subscription-State} and C{Content-Type} as
the NOTIFY had them, a blank line and the body as text; or, with C{--json},
one JSON object per NOTIFY and line (L{notificationRecord}). Everything
else, progress and errors, goes to standard error, so that standard output
carries NOTIFYs only.

Exit status (L{EXIT_OK} ...):

  - 0: a clean end: the notifier ended the subscription with a reason that
    asks for no new one (C{rejected}, C{noresource}, C{invariant}, or
    none; RFC 6665 section 4.1.3); C{--once} printed its NOTIFY; or a
    SIGINT (Ctrl-C) or SIGTERM stopped a watch, which first unsubscribes
    (RFC 6665 section 4.1.2.3), waiting at most L{UNSUBSCRIBE_TIMEOUT}
    seconds for the final NOTIFY (a second signal stops waiting).
  - 1: a failure, in one line on standard error: the SUBSCRIBE was refused
    (a 489 lists what the notifier's C{Allow-Events} offers), no answer or
    no NOTIFY came in time (the message names the target), the
    subscription was lost (a refresh refused), or we could not listen.
  - 2: a usage error: a bad URI or option (the message says which), or
    C{--user} with no password to be had (see L{Options}).
  - 128 + the signal number: C{--once} interrupted before its NOTIFY came,
    or Ctrl-C at the password prompt.

Re-subscriptions the notifier asks for (C{deactivated}, C{timeout},
C{probation}, C{giveup}; RFC 6665 section 4.1.3) are made by the
L{sipevents.subscriber.subscriber.Subscriber}; the watch goes on through them and
says so on standard error.
"""

from __future__ import annotations

import base64
import datetime
import getopt
import getpass
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from io import TextIOWrapper
from typing import IO, TYPE_CHECKING, Any, NoReturn

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater, react
from twisted.logger import globalLogBeginner, textFileLogObserver
from twisted.python import usage
from twisted.python.failure import Failure

from sipevents import __version__
from sipevents.config import DEFAULT_TIMERS, TimerConfig
from sipevents.errors import ParseError
from sipevents.events import Credentials, Notification, SubscriptionFailed, Termination
from sipevents.interfaces import ISubscription
from sipevents.sip.endpoints import describeListener, parseListenDescription
from sipevents.sip.headers import parseEvent
from sipevents.sip.routing import isIPAddress, normalizeHost, targetFromURI
from sipevents.sip.uri import SIPURI, formatURI, parseURI
from sipevents.subscriber.client import SubscriberClient, startSubscriber
from sipevents.subscriber.subscriber import SubscriptionObserver

if TYPE_CHECKING:
    from twisted.internet._sslverify import IOpenSSLTrustRoot

__all__ = [
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_USAGE",
    "Options",
    "StopRequest",
    "formatNotification",
    "formatRecord",
    "main",
    "notificationRecord",
    "proxyURI",
    "readPasswordFile",
    "watch",
]

PROGRAM = "sipevents-watch"

#: Exit status: a clean end (see the module docstring).
EXIT_OK = 0
#: Exit status: the subscription failed or was lost.
EXIT_FAILURE = 1
#: Exit status: bad options or arguments.
EXIT_USAGE = 2

#: How long, in seconds, a signalled watch waits for the NOTIFY that
#: confirms its unsubscribe. Timer N (RFC 6665 section 4.1.2.4, 32 s by
#: default) is the protocol's bound; a person who pressed Ctrl-C will not
#: wait that long, and a notifier that has not answered in a few seconds
#: will clean up at expiry anyway.
UNSUBSCRIBE_TIMEOUT = 5.0

#: How long stopping the subscriber may take once the watch is over.
STOP_TIMEOUT = 5.0

#: The environment variable read for the password when C{--user} is given
#: without C{--password} (a password on the command line is visible to
#: every user of the machine in the process list).
PASSWORD_VARIABLE = "SIPEVENTS_PASSWORD"

_PROXY_TRANSPORTS = ("udp", "tcp", "tls")


def proxyURI(text: str) -> str:
    """
    The outbound proxy URI for a C{--proxy} value (RFC 3261 section 8.1.2:
    a preloaded route): C{udp:HOST:PORT}, C{tcp:HOST:PORT} or
    C{tls:HOST:PORT} become C{sip:HOST:PORT;transport=udp} (C{tcp},
    C{tls}); the port may be left out (the transport's default), an IPv6
    host is written in brackets (C{udp:[::1]:5060}); a SIP or SIPS URI is
    taken as it is.

    @raise ValueError: with a message for the user, when C{text} is none
        of these.
    """
    kind, sep, rest = text.partition(":")
    kind = kind.lower()
    if kind in ("sip", "sips"):
        uri = _parseSIPURI(text, "--proxy")
        targetFromURI(uri)
        return formatURI(uri)
    if not sep or kind not in _PROXY_TRANSPORTS:
        raise ValueError(
            f"--proxy {text!r}: expected udp:HOST:PORT, tcp:HOST:PORT,"
            " tls:HOST:PORT or a sip: URI"
        )
    host, port = rest, ""
    if rest.startswith("["):
        end = rest.find("]")
        if end == -1:
            raise ValueError(f"--proxy {text!r}: unclosed IPv6 reference")
        host, after = rest[: end + 1], rest[end + 1 :]
        if after:
            if not after.startswith(":"):
                raise ValueError(f"--proxy {text!r}: bad port")
            port = after[1:]
    elif ":" in rest:
        host, _, port = rest.rpartition(":")
        if ":" in host:
            raise ValueError(f"--proxy {text!r}: write an IPv6 host as [HOST]")
    if not host:
        raise ValueError(f"--proxy {text!r}: no host")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"--proxy {text!r}: bad port {port!r}")
    text = f"sip:{host}:{port}" if port else f"sip:{host}"
    text += f";transport={kind}"
    _parseSIPURI(text, "--proxy")
    return text


def _parseSIPURI(text: str, what: str) -> SIPURI:
    """
    C{text} parsed as a SIP or SIPS URI.

    @raise ValueError: with a message for the user naming C{what}; when
        the scheme is missing, it suggests one.
    """
    try:
        uri = parseURI(text)
    except ParseError as e:
        if (
            not text.lower().startswith(("sip:", "sips:"))
            and ":" not in text.split("@")[0]
        ):
            raise ValueError(
                f"{what} {text!r} is not a SIP URI (did you mean sip:{text}?)"
            ) from None
        raise ValueError(f"{what} {text!r} is not a SIP URI: {e.reason}") from None
    except ValueError as e:
        raise ValueError(f"{what} {text!r} is not a SIP URI: {e}") from None
    if not isinstance(uri, SIPURI):
        raise ValueError(f"{what} {text!r} is not a SIP or SIPS URI")
    return uri


def readPasswordFile(path: str) -> str:
    """
    The password in the file at C{path}: its first line, without the line
    ending, so that C{echo secret > FILE} makes a usable file.

    @raise ValueError: with a message for the user, when the file cannot be
        read or its first line is empty.
    """
    try:
        with open(path, encoding="utf-8") as f:
            line = f.readline()
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ValueError(f"--password-file {path!r}: {reason}") from None
    password = line.rstrip("\r\n")
    if not password:
        raise ValueError(f"--password-file {path!r}: the first line is empty")
    return password


def _defaultListen(hop: SIPURI) -> list[str]:
    """
    Where to listen when no C{--listen} is given, from the first hop (the
    proxy, or else the target): a free UDP port on loopback for a loopback
    notifier, so that nothing is exposed for a local test, on every
    interface of the family otherwise (our Via and Contact then carry the
    local address that routes to it); plus a TCP port on the same
    interface when the first hop is reached over TCP, so that our Contact
    is a TCP one a notifier can connect back to.
    """
    target = targetFromURI(hop)
    host = normalizeHost(target.host)
    if isIPAddress(host) and ":" in host:
        interface = "::1" if host == "::1" else "::"
        listen = [f"udp:0:interface=[{interface}]"]
        tcp = "tcp6:0:interface=" + interface.replace(":", "\\:")
    else:
        loopback = host == "localhost" or (
            isIPAddress(host) and host.startswith("127.")
        )
        interface = "127.0.0.1" if loopback else ""
        listen = [f"udp:0:interface={interface}" if interface else "udp:0"]
        tcp = f"tcp:0:interface={interface}" if interface else "tcp:0"
    if target.transport == "TCP":
        listen.append(tcp)
    return listen


class Options(usage.Options):
    """
    The options of C{sipevents-watch}; every value is checked in
    L{postOptions}, so that a mistake is a usage error before anything is
    sent.
    """

    synopsis = f"Usage: {PROGRAM} TARGET --event EVENT [options]"

    longdesc = (
        "Subscribe to EVENT at TARGET (a SIP URI such as "
        "sip:alice@127.0.0.1:5070) and print every NOTIFY as it arrives; "
        "Ctrl-C unsubscribes and exits. Progress and errors go to standard "
        "error. Exit status: 0 for a clean end, 1 when the subscription "
        "fails or is lost, 2 for a usage error."
    )

    optFlags = [
        [
            "once",
            "1",
            "Poll: fetch the current state once (Expires: 0), print it, exit.",
        ],
        ["json", "j", "Print one JSON object per NOTIFY and line."],
        ["verbose", "v", "Log the SIP machinery's events to standard error."],
    ]

    optParameters = [
        [
            "event",
            "e",
            None,
            "The event package to subscribe to: presence, message-summary, "
            "dialog ... (required).",
        ],
        [
            "expires",
            "x",
            None,
            "The subscription duration to ask for, in seconds; the notifier "
            "may shorten it, and it is refreshed before it ends. Default: "
            "the notifier's choice for the package.",
        ],
        ["id", None, None, "The Event header's id parameter."],
        [
            "proxy",
            None,
            None,
            "Send through this outbound proxy: udp:HOST:PORT, tcp:HOST:PORT, "
            "tls:HOST:PORT, or a sip: URI.",
        ],
        [
            "user",
            "u",
            None,
            "The username for digest authentication. Without --password or "
            f"--password-file, the password is read from ${PASSWORD_VARIABLE}, "
            "or else asked for when standard input is a terminal.",
        ],
        [
            "password-file",
            None,
            None,
            "Read the password from the first line of this file.",
        ],
        [
            "password",
            "p",
            None,
            "The password for digest authentication. Shown to every user of "
            "the machine by ps: prefer --password-file or the prompt.",
        ],
        ["realm", None, None, "Answer digest challenges of this realm only."],
        [
            "from",
            None,
            None,
            "Our From URI. Default: with --user, sip:USER@ the target's host "
            "(the address of record a server that authenticates expects); "
            "without, sip:sipevents@OUR-ADDRESS.",
        ],
        [
            "ca-file",
            None,
            None,
            "PEM file of the certificate authority a TLS notifier or proxy "
            "must chain to (default: the system's).",
        ],
        [
            "t1",
            None,
            None,
            "Timer T1 in seconds (RFC 3261 section 17.1.1.1; default 0.5). "
            "We give up waiting for an answer after 64*T1, and for a NOTIFY "
            "after Timer N, also 64*T1 (RFC 6665 section 4.1.2.4).",
        ],
    ]

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self["accept"] = []
        self["listen"] = []

    def opt_accept(self, mimeType: str) -> None:
        """
        A body type to accept (the Accept header), e.g.
        application/pidf+xml; repeat for several. Default: the package's.
        """
        self["accept"].append(mimeType)

    opt_accept.__doc__ = " ".join((opt_accept.__doc__ or "").split())
    opt_a = opt_accept

    def opt_listen(self, description: str) -> None:
        """
        Where to listen for NOTIFYs, as twistd sipevents takes it:
        udp:PORT[:interface=HOST], tcp:PORT[:interface=HOST] (repeatable).
        Default: a free UDP port on loopback for a loopback target, on
        every interface otherwise (and TCP too for a TCP first hop).
        """
        self["listen"].append(description)

    opt_listen.__doc__ = " ".join((opt_listen.__doc__ or "").split())
    opt_l = opt_listen

    def opt_version(self) -> NoReturn:
        """
        Display the version of sipevents and exit.
        """
        print(f"{PROGRAM} (sipevents) {__version__}")
        raise SystemExit(0)

    def parseOptions(self, options: Sequence[str] | None = None) -> None:
        """
        Parse C{options} (C{sys.argv[1:]} by default), taking options
        after the TARGET as well, as GNU tools do:
        C{sipevents-watch sip:alice@127.0.0.1 --event presence}.
        (L{usage.Options} alone stops at the first argument.)
        """
        arguments = sys.argv[1:] if options is None else list(options)
        try:
            found, rest = getopt.gnu_getopt(arguments, self.shortOpt, self.longOpt)
        except getopt.error as e:
            raise usage.UsageError(str(e)) from None
        ordered: list[str] = []
        for option, value in found:
            if option.startswith("--"):
                takesValue = option[2:] + "=" in self.longOpt
                ordered.append(f"{option}={value}" if takesValue else option)
            else:
                index = self.shortOpt.find(option[1])
                takesValue = self.shortOpt[index + 1 : index + 2] == ":"
                ordered.append(option + value if takesValue else option)
        super().parseOptions([*ordered, "--", *rest])  # type: ignore[no-untyped-call]

    def parseArgs(self, target: str | None = None, *extra: str) -> None:
        if target is None:
            raise usage.UsageError("no TARGET: give the SIP URI to watch")
        if extra:
            raise usage.UsageError(f"unexpected arguments: {' '.join(extra)}")
        self["target"] = target

    def postOptions(self) -> None:
        try:
            self._check()
        except ValueError as e:
            raise usage.UsageError(str(e)) from None

    def _check(self) -> None:
        target = _parseSIPURI(self["target"], "TARGET")
        try:
            targetFromURI(target)
        except ValueError as e:
            raise ValueError(f"TARGET {self['target']!r}: {e}") from None
        self["target"] = formatURI(target)
        event = self["event"]
        if not event:
            raise ValueError("--event is required (e.g. --event presence)")
        try:
            parsed = parseEvent(event)
        except ParseError:
            raise ValueError(f"--event {event!r} is not an event type") from None
        if parsed.params or parsed.id is not None:
            raise ValueError(f"--event {event!r}: give the id with --id")
        if self["id"] is not None and not self["id"].strip():
            raise ValueError("--id must not be empty")
        if self["expires"] is not None:
            expires = self["expires"]
            if not expires.isdigit() or int(expires) >= 2**32:
                raise ValueError(f"--expires {expires!r} is not a number of seconds")
            if int(expires) == 0:
                raise ValueError("--expires 0 polls: use --once")
            if self["once"]:
                raise ValueError("--once polls with Expires: 0; leave out --expires")
            self["expires"] = int(expires)
        self["proxyURI"] = None if self["proxy"] is None else proxyURI(self["proxy"])
        self._checkPassword()
        if self["from"] is not None:
            self["from"] = formatURI(_parseSIPURI(self["from"], "--from"))
        elif self["user"] is not None:
            # A server that authenticates wants the From to be the user's
            # address of record (RFC 3856 section 6.6.1, RFC 6665 section
            # 6.1), whose domain is, most often, the target's.
            self["from"] = formatURI(
                SIPURI(scheme=target.scheme, user=self["user"], host=target.host)
            )
        t1 = DEFAULT_TIMERS.T1
        if self["t1"] is not None:
            try:
                t1 = float(self["t1"])
            except ValueError:
                t1 = -1.0
            if not 0 < t1 <= 60:
                raise ValueError(f"--t1 {self['t1']!r} is not a number of seconds")
        self["timers"] = TimerConfig(T1=t1, T2=max(DEFAULT_TIMERS.T2, t1))
        if self["ca-file"] is not None and not os.path.isfile(self["ca-file"]):
            raise ValueError(f"--ca-file {self['ca-file']!r}: no such file")
        for description in self["listen"]:
            parseListenDescription(description)
        if not self["listen"]:
            hop = self["target"] if self["proxyURI"] is None else self["proxyURI"]
            self["listen"] = _defaultListen(_parseSIPURI(hop, "--proxy"))

    def _checkPassword(self) -> None:
        """
        Find the password for C{--user}: C{--password}, C{--password-file},
        C{$SIPEVENTS_PASSWORD}, or a prompt when standard input is a
        terminal, in that order.
        """
        given = [o for o in ("password", "password-file") if self[o] is not None]
        if len(given) > 1:
            raise ValueError("give either --password or --password-file, not both")
        if given and self["user"] is None:
            raise ValueError(f"--{given[0]} needs --user")
        if self["user"] is None or self["password"] is not None:
            return
        if self["password-file"] is not None:
            self["password"] = readPasswordFile(self["password-file"])
            return
        password = os.environ.get(PASSWORD_VARIABLE)
        if password is None:
            if not sys.stdin.isatty():
                raise ValueError(
                    "--user needs a password: --password-file FILE, "
                    f"${PASSWORD_VARIABLE}, or a terminal to type it on"
                )
            try:
                password = getpass.getpass(f"Password for {self['user']}: ")
            except EOFError:
                raise ValueError("no password typed") from None
        self["password"] = password

    @property
    def credentials(self) -> Credentials | None:
        """
        The digest credentials given, or C{None}.
        """
        if self["user"] is None:
            return None
        return Credentials(self["user"], self["password"], self["realm"])


# Output. Pure functions, so that the formats are tested without a network.


def _localTime(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def _utcTime(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _fromOf(notification: Notification) -> tuple[str | None, str | None]:
    try:
        address = notification.request.fromAddr
    except ParseError:
        return None, None
    if address is None:
        return None, None
    return formatURI(address.uri), address.tag


def formatNotification(notification: Notification, fork: bool = False) -> str:
    """
    A NOTIFY for people: the local time it arrived and its event, the
    C{Subscription-State} and C{Content-Type}, and the body as UTF-8 text
    (undecodable bytes replaced) after a blank line; ends with a blank
    line, so that NOTIFYs stand apart.

    @param fork: whether it came in a dialog other than the first one (a
        forked subscription, RFC 6665 section 4.1.2.4): its sender is
        named.
    """
    event = notification.event
    header = f"{_localTime(notification.receivedAt)} NOTIFY {event.eventType}"
    if event.id is not None:
        header += f";id={event.id}"
    if fork:
        uri, tag = _fromOf(notification)
        header += f" (fork: from {uri};tag={tag})"
    lines = [header, f"Subscription-State: {notification.subscriptionState}"]
    if notification.contentType is not None:
        lines.append(f"Content-Type: {notification.contentType}")
    text = "\n".join(lines) + "\n"
    if notification.body:
        body = notification.body.decode("utf-8", "replace")
        text += "\n" + body
        if not body.endswith("\n"):
            text += "\n"
    return text + "\n"


def notificationRecord(
    notification: Notification, target: str, fork: bool = False
) -> dict[str, Any]:
    """
    A NOTIFY as a JSON-ready dictionary, for C{--json}:

      - C{time}: when it arrived, ISO 8601 in UTC; C{timestamp}: the same
        in seconds since the epoch;
      - C{target}: the URI subscribed to; C{from}, C{fromTag}: the
        notifier's From URI and tag (they tell forks apart); C{fork}:
        whether it came in a dialog other than the first;
      - C{event}, C{id}: the event type and C{id} parameter (or null);
      - C{state}, C{reason}, C{expires}, C{retryAfter}: the parsed
        C{Subscription-State} (null when absent), C{subscriptionState}: the
        whole value;
      - C{contentType} (null without a body), C{body}: the body as UTF-8
        text, undecodable bytes replaced; when the body is not UTF-8,
        C{bodyBase64} holds it exactly.
    """
    state = notification.subscriptionState
    uri, tag = _fromOf(notification)
    record: dict[str, Any] = {
        "time": _utcTime(notification.receivedAt),
        "timestamp": notification.receivedAt,
        "target": target,
        "from": uri,
        "fromTag": tag,
        "fork": fork,
        "event": notification.event.eventType,
        "id": notification.event.id,
        "state": state.state,
        "reason": state.reason,
        "expires": state.expires,
        "retryAfter": state.retryAfter,
        "subscriptionState": str(state),
        "contentType": notification.contentType,
    }
    try:
        record["body"] = notification.body.decode("utf-8")
    except UnicodeDecodeError:
        record["body"] = notification.body.decode("utf-8", "replace")
        record["bodyBase64"] = base64.b64encode(notification.body).decode("ascii")
    return record


def formatRecord(record: dict[str, Any]) -> str:
    """
    One line of C{--json} output: compact JSON, ASCII only (so that no
    locale can make it unprintable), and a newline.
    """
    return json.dumps(record, separators=(",", ":")) + "\n"


def describeTermination(termination: Termination) -> str:
    """
    Why a subscription ended, for standard error.
    """
    if termination.failure is not None:
        return str(termination.failure)
    text = "ended by the notifier"
    if termination.reason is not None:
        text += f" (reason={termination.reason}"
        if termination.retryAfter is not None:
            text += f", retry-after={termination.retryAfter}"
        text += ")"
    elif termination.notification is None:
        text = "ended"
    return text


class _Printer(SubscriptionObserver):
    """
    Prints each NOTIFY to the output, and what happens to the
    subscription to the error stream (see the module docstring).
    """

    def __init__(
        self,
        out: IO[str],
        err: IO[str],
        target: str,
        asJSON: bool,
        outputLost: Callable[[], None],
    ) -> None:
        self.out = out
        self.err = err
        self.target = target
        self.asJSON = asJSON
        self.outputLost = outputLost

    def notificationReceived(
        self, subscription: ISubscription, notification: Notification
    ) -> None:
        self.show(notification, subscription.forkOf is not None)

    def show(self, notification: Notification, fork: bool = False) -> None:
        """
        Print C{notification}, and flush.
        """
        if self.asJSON:
            text = formatRecord(notificationRecord(notification, self.target, fork))
        else:
            text = formatNotification(notification, fork)
        try:
            self.out.write(text)
            self.out.flush()
        except (OSError, ValueError):
            # The reader went away (a closed pipe: `| head -1`): stop as if
            # interrupted, unsubscribing first.
            self.outputLost()

    def subscriptionStarted(self, subscription: ISubscription) -> None:
        if subscription.forkOf is not None:
            say(self.err, f"another notifier answered too (a fork) for {self.target}")

    def subscriptionEnded(
        self, subscription: ISubscription, termination: Termination
    ) -> None:
        if termination.willRetry:
            say(
                self.err,
                f"subscription {describeTermination(termination)}; subscribing again",
            )


def say(err: IO[str], message: str) -> None:
    """
    One line on standard error, prefixed with the program's name.
    """
    try:
        err.write(f"{PROGRAM}: {message}\n")
        err.flush()
    except (OSError, ValueError):
        pass


def _loadTrustRoot(path: str) -> IOpenSSLTrustRoot:
    from twisted.internet.ssl import Certificate, trustRootFromCertificates

    with open(path, "rb") as f:
        certificate = Certificate.loadPEM(f.read())
    return trustRootFromCertificates([certificate])  # type: ignore[no-untyped-call,no-any-return]


class StopRequest:
    """
    The requests to stop a watch: the first signal (or a lost output)
    fires L{requested}; a second one fires L{again}, to stop waiting for
    the unsubscribe.
    """

    def __init__(self) -> None:
        self.requested: Deferred[int] = Deferred()
        self.again: Deferred[int] = Deferred()

    def __call__(self, signum: int = 0) -> None:
        """
        Ask the watch to stop, as signal C{signum} (0: not a signal).
        """
        if not self.requested.called:
            self.requested.callback(signum)
        elif not self.again.called:
            self.again.callback(signum)


def _first(ds: Sequence[Deferred[Any]]) -> Deferred[tuple[int, Any]]:
    """
    A L{Deferred} that fires like the first of C{ds} to fire, with its
    index and result (or fails with its failure). Unlike
    L{twisted.internet.defer.race}, the others are neither cancelled nor
    waited for: cancelling a subscription's L{Deferred} is not ours to do.
    Later results are dropped.
    """
    first: Deferred[tuple[int, Any]] = Deferred()

    def fired(result: object, index: int) -> None:
        if first.called:
            return
        if isinstance(result, Failure):
            first.errback(result)
        else:
            first.callback((index, result))

    for index, d in enumerate(ds):
        d.addBoth(fired, index)
    return first


def _timer(reactor: Any, seconds: float) -> Deferred[None]:
    """
    A L{Deferred} firing after C{seconds}; cancel it when done with it.
    """
    return deferLater(reactor, seconds, lambda: None)


async def watch(
    reactor: Any,
    config: Options,
    out: IO[str],
    err: IO[str],
    stop: StopRequest | None = None,
) -> int:
    """
    Run a watch as C{config} says, printing to C{out} and C{err}; see the
    module docstring for what is printed and the exit status returned.

    @param reactor: the reactor to listen and time with.
    @param stop: fire it to stop the watch as a signal does (L{main}
        connects SIGINT and SIGTERM to it); one is made when C{None}.
    @return: the exit status.
    """
    if stop is None:
        stop = StopRequest()
    trustRoot = None
    if config["ca-file"] is not None:
        try:
            trustRoot = _loadTrustRoot(config["ca-file"])
        except Exception as e:
            say(err, f"cannot load --ca-file {config['ca-file']!r}: {e}")
            return EXIT_FAILURE
    try:
        client = await startSubscriber(
            reactor,
            config["listen"],
            timers=config["timers"],
            trustRoot=trustRoot,
            localUri=config["from"],
        )
    except Exception as e:
        say(err, f"cannot listen on {', '.join(config['listen'])}: {e}")
        return EXIT_FAILURE
    try:
        if config["once"]:
            return await _fetch(client, config, out, err, stop)
        return await _follow(client, config, out, err, stop)
    finally:
        timer = _timer(reactor, STOP_TIMEOUT)
        await _first([client.stop(), timer])
        timer.cancel()


def _listening(client: SubscriberClient) -> str:
    return ", ".join(
        describeListener(transport, port)
        for transport, port in client.transportLayer.listeners
    )


def _failureMessage(error: BaseException, target: str) -> str:
    if isinstance(error, SubscriptionFailed):
        return str(error)
    return f"{target}: {error.__class__.__name__}: {error}"


def _keywords(config: Options) -> dict[str, Any]:
    return dict(
        id=config["id"],
        accept=tuple(config["accept"]),
        proxy=config["proxyURI"],
        credentials=config.credentials,
    )


async def _fetch(
    client: SubscriberClient,
    config: Options,
    out: IO[str],
    err: IO[str],
    stop: StopRequest,
) -> int:
    """
    C{--once}: a poll (RFC 6665 section 4.4.3), its first NOTIFY printed.
    """
    target = config["target"]
    say(
        err,
        f"fetching {config['event']} of {target} (listening on {_listening(client)})",
    )
    try:
        fetching = client.subscriber.fetch(target, config["event"], **_keywords(config))
    except ValueError as e:
        say(err, f"cannot fetch from {target}: {e}")
        return EXIT_FAILURE
    try:
        index, result = await _first([fetching, stop.requested])
    except Exception as e:
        say(err, _failureMessage(e, target))
        return EXIT_FAILURE
    if index == 1:
        say(err, "interrupted")
        return 128 + int(result)
    assert isinstance(result, Notification)
    _Printer(out, err, target, config["json"], lambda: None).show(result)
    return EXIT_OK


async def _follow(
    client: SubscriberClient,
    config: Options,
    out: IO[str],
    err: IO[str],
    stop: StopRequest,
) -> int:
    """
    The watch proper: subscribe, print until the subscription ends or a
    stop is requested, then unsubscribe.
    """
    target = config["target"]
    printer = _Printer(out, err, target, config["json"], stop)
    say(
        err,
        f"subscribing to {config['event']} of {target}"
        f" (listening on {_listening(client)}; Ctrl-C to stop)",
    )
    try:
        subscription = client.subscriber.subscribe(
            target,
            config["event"],
            printer,
            expires=config["expires"],
            **_keywords(config),
        )
    except ValueError as e:
        # No route to the target or proxy, or no address of ours to give.
        say(err, f"cannot subscribe to {target}: {e}")
        return EXIT_FAILURE
    try:
        index, result = await _first([subscription.whenTerminated(), stop.requested])
    except Exception as e:
        say(err, _failureMessage(e, target))
        return EXIT_FAILURE
    if index == 0:
        assert isinstance(result, Termination)
        if result.failure is not None:
            say(err, _failureMessage(result.failure, target))
            return EXIT_FAILURE
        say(err, f"subscription {describeTermination(result)}")
        return EXIT_OK
    say(err, f"unsubscribing from {target} (again to quit at once)")
    timer = _timer(client.reactor, UNSUBSCRIBE_TIMEOUT)
    try:
        index, _ = await _first([subscription.unsubscribe(), timer, stop.again])
    except Exception as e:
        say(err, f"unsubscribing failed: {_failureMessage(e, target)}")
    else:
        if index == 1:
            say(err, f"no final NOTIFY from {target}; exiting anyway")
        elif index == 2:
            say(err, "not waiting for the final NOTIFY")
        else:
            say(err, "unsubscribed")
    finally:
        timer.cancel()
    return EXIT_OK


def _installSignals(reactor: Any, stop: StopRequest) -> Callable[[], None]:
    """
    Send SIGINT and SIGTERM to C{stop} (from the reactor thread); return
    the function that puts the previous handlers back.
    """
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: object) -> None:
        reactor.callFromThread(stop, signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, handler)

    def restore() -> None:
        for signum, old in previous.items():
            signal.signal(signum, old)

    return restore


def _run(reactor: Any, config: Options) -> Deferred[None]:
    """
    The function L{react} runs: the watch, with SIGINT and SIGTERM
    connected to its stop once the reactor runs. (L{react} calls us before
    the reactor starts, and starting puts Twisted's own SIGTERM handler in
    place, which would stop the reactor without unsubscribing.)
    """
    stop = StopRequest()
    restorers: list[Callable[[], None]] = []
    reactor.callWhenRunning(lambda: restorers.append(_installSignals(reactor, stop)))
    d = Deferred.fromCoroutine(watch(reactor, config, sys.stdout, sys.stderr, stop))

    def finished(code: int) -> None:
        for restore in restorers:
            restore()
        if code:
            raise SystemExit(code)

    return d.addCallback(finished)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """
    The C{sipevents-watch} console script: parse C{argv} (C{sys.argv[1:]}
    by default) and run the watch on the global reactor, then exit with
    its status (see the module docstring).
    """
    config = Options()
    try:
        config.parseOptions(sys.argv[1:] if argv is None else list(argv))
    except KeyboardInterrupt:
        # Ctrl-C at the password prompt.
        sys.stderr.write("\n")
        raise SystemExit(128 + signal.SIGINT) from None
    except usage.UsageError as e:
        sys.stderr.write(f"{PROGRAM}: error: {e}\n")
        sys.stderr.write(f"{config.synopsis}\n")
        sys.stderr.write(f"Run '{PROGRAM} --help' for the options.\n")
        raise SystemExit(EXIT_USAGE) from None
    if config["verbose"]:
        globalLogBeginner.beginLoggingTo(
            [textFileLogObserver(sys.stderr)], redirectStandardIO=False
        )
    if isinstance(sys.stdout, TextIOWrapper):
        # Unencodable text must not end the watch.
        sys.stdout.reconfigure(errors="backslashreplace")
    try:
        react(_run, (config,))
    finally:
        # Python flushes stdout at exit; a reader that went away would make
        # that fail loudly after we exited cleanly.
        try:
            sys.stdout.flush()
        except OSError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    main()
