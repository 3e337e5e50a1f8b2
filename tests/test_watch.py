# -*- test-case-name: tests.test_watch -*-
"""
Tests for L{sipevents.app.watch}, the C{sipevents-watch} command: option
parsing, the output formats (pure functions), and whole watches against our
own notifier on 127.0.0.1 (RFC 6665 section 4.1), in process and as a
subprocess stopped by SIGINT.
"""

from __future__ import annotations

import datetime
import getpass
import io
import json
import os
import signal
import sys
from collections.abc import Generator
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.internet.protocol import DatagramProtocol, ProcessProtocol
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

import sipevents.app.watch
from sipevents.app.watch import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    Options,
    StopRequest,
    describeTermination,
    formatNotification,
    formatRecord,
    main,
    notificationRecord,
    proxyURI,
    watch,
)
from sipevents.config import DEFAULT_TIMERS
from sipevents.events import Credentials, Notification, Termination
from sipevents.interfaces import IRequestContext, IRequestHandler
from sipevents.sip.headers import parseEvent, parseSubscriptionState
from sipevents.sip.message import Request, Response
from sipevents.testing import htdigestLine, sipRequest
from tests.test_client import LOOPBACK, PIDF, WAIT, NotifierMixin
from tests.test_sipp import freePort, startService

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse(*args: str) -> Options:
    options = Options()
    options.parseOptions(list(args))
    return options


def notification(
    state: str = "active;expires=600",
    body: bytes = PIDF,
    contentType: str | None = "application/pidf+xml",
    event: str = "presence",
    receivedAt: float = 1700000000.25,
) -> Notification:
    request = sipRequest(
        "NOTIFY",
        "sip:sipevents@127.0.0.1:5071",
        sentBy="127.0.0.1:5060",
        fromURI="sip:alice@127.0.0.1",
        fromTag="nt",
        toTag="st",
        headers=[("Event", event), ("Subscription-State", state)],
        body=body,
        contentType=contentType,
    )
    return Notification(
        subscriptionState=parseSubscriptionState(state),
        event=parseEvent(event),
        contentType=contentType,
        body=body,
        request=request,
        receivedAt=receivedAt,
    )


def localTime(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


class OptionsTests(SynchronousTestCase):
    """
    L{Options} checks everything before anything is sent.
    """

    def test_defaults(self) -> None:
        """
        A target and an event are enough: loopback UDP listener for a
        loopback target, no proxy, no credentials, the default timers.
        """
        options = parse("sip:alice@127.0.0.1:5070", "--event", "presence")
        self.assertEqual(options["target"], "sip:alice@127.0.0.1:5070")
        self.assertEqual(options["event"], "presence")
        self.assertEqual(options["listen"], ["udp:0:interface=127.0.0.1"])
        self.assertIsNone(options["expires"])
        self.assertEqual(options["accept"], [])
        self.assertIsNone(options["proxyURI"])
        self.assertIsNone(options.credentials)
        self.assertEqual(options["timers"], DEFAULT_TIMERS)
        self.assertFalse(options["once"])
        self.assertFalse(options["json"])

    def test_everything(self) -> None:
        """
        Every option, short forms included.
        """
        options = parse(
            "sip:alice@127.0.0.1:5070",
            "-e",
            "presence.winfo",
            "-x",
            "600",
            "-a",
            "application/watcherinfo+xml",
            "--accept",
            "text/plain",
            "--proxy",
            "tcp:127.0.0.1:5060",
            "-u",
            "alice",
            "-p",
            "secret",
            "--realm",
            "r",
            "--id",
            "7",
            "--from",
            "sip:watcher@127.0.0.1",
            "-l",
            "udp:5072:interface=127.0.0.1",
            "--t1",
            "0.1",
            "--json",
        )
        self.assertEqual(options["event"], "presence.winfo")
        self.assertEqual(options["expires"], 600)
        self.assertEqual(
            options["accept"], ["application/watcherinfo+xml", "text/plain"]
        )
        self.assertEqual(options["proxyURI"], "sip:127.0.0.1:5060;transport=tcp")
        self.assertEqual(options.credentials, Credentials("alice", "secret", "r"))
        self.assertEqual(options["id"], "7")
        self.assertEqual(options["from"], "sip:watcher@127.0.0.1")
        self.assertEqual(options["listen"], ["udp:5072:interface=127.0.0.1"])
        self.assertEqual(options["timers"].T1, 0.1)
        self.assertEqual(options["timers"].timerF, 6.4)
        self.assertTrue(options["json"])

    def assertUsage(self, *args: str, message: str) -> None:
        error = self.assertRaises(usage.UsageError, parse, *args)
        self.assertIn(message, str(error))

    def test_rfc3261_19_1_badTarget(self) -> None:
        """
        A target that is not a SIP URI is a usage error; without a scheme,
        the message suggests one.
        """
        self.assertUsage(
            "alice@127.0.0.1", "--event", "presence", message="sip:alice@127.0.0.1?"
        )
        self.assertUsage(
            "tel:+15551234", "--event", "presence", message="not a SIP or SIPS URI"
        )
        self.assertUsage(
            "sip:alice@127.0.0.1;transport=sctp",
            "--event",
            "presence",
            message="sctp",
        )
        self.assertUsage("--event", "presence", message="no TARGET")
        self.assertUsage(
            "sip:a@127.0.0.1", "sip:b@127.0.0.1", "-e", "presence", message="unexpected"
        )

    def test_rfc6665_8_2_1_event(self) -> None:
        """
        --event is required and is an event type; its id goes in --id.
        """
        self.assertUsage("sip:a@127.0.0.1", message="--event is required")
        self.assertUsage("sip:a@127.0.0.1", "-e", "pres ence", message="not an event")
        self.assertUsage("sip:a@127.0.0.1", "-e", "presence;id=1", message="--id")

    def test_rfc6665_4_1_2_1_expires(self) -> None:
        """
        --expires is a positive number of seconds, and cannot go with
        --once (a poll is Expires: 0).
        """
        self.assertUsage(
            "sip:a@127.0.0.1", "-e", "presence", "-x", "abc", message="abc"
        )
        self.assertUsage("sip:a@127.0.0.1", "-e", "presence", "-x", "-5", message="-5")
        self.assertUsage(
            "sip:a@127.0.0.1", "-e", "presence", "-x", "0", message="--once"
        )
        self.assertUsage(
            "sip:a@127.0.0.1", "-e", "presence", "-x", "60", "--once", message="--once"
        )

    def test_rfc3261_22_credentials(self) -> None:
        """
        --password and --password-file need --user and exclude each other;
        --user without either reads $SIPEVENTS_PASSWORD.
        """
        self.assertUsage(
            "sip:a@127.0.0.1", "-e", "presence", "-p", "x", message="needs --user"
        )
        path = self.passwordFile("x\n")
        self.assertUsage(
            "sip:a@127.0.0.1",
            "-e",
            "presence",
            "--password-file",
            path,
            message="--password-file needs --user",
        )
        self.assertUsage(
            "sip:a@127.0.0.1",
            "-e",
            "presence",
            "-u",
            "a",
            "-p",
            "x",
            "--password-file",
            path,
            message="not both",
        )
        environ = dict(os.environ)
        environ["SIPEVENTS_PASSWORD"] = "from-env"
        self.patch(os, "environ", environ)
        options = parse("sip:a@127.0.0.1", "-e", "presence", "-u", "a")
        self.assertEqual(options.credentials, Credentials("a", "from-env"))

    def passwordFile(self, content: str) -> str:
        """
        The path of a new file holding C{content}.
        """
        path = self.mktemp()
        with open(path, "w", encoding="utf-8") as f:
            f.write(content)
        return path

    def test_rfc3856_6_6_1_fromWithUser(self) -> None:
        """
        With --user and no --from, the From is the user at the target's
        host, without its port or parameters: the address of record a
        server that authenticates expects. --from still wins; without
        --user the From is left to the subscriber.
        """
        environ = dict(os.environ)
        environ["SIPEVENTS_PASSWORD"] = "x"
        self.patch(os, "environ", environ)
        options = parse(
            "sip:bob@example.com:5070;transport=tcp", "-e", "presence", "-u", "alice"
        )
        self.assertEqual(options["from"], "sip:alice@example.com")
        options = parse("sips:bob@[::1]", "-e", "presence", "-u", "alice")
        self.assertEqual(options["from"], "sips:alice@[::1]")
        options = parse(
            "sip:bob@example.com", "-e", "presence", "-u", "a", "--from", "sip:b@c"
        )
        self.assertEqual(options["from"], "sip:b@c")
        self.assertIsNone(parse("sip:bob@example.com", "-e", "presence")["from"])

    def test_rfc3261_22_passwordFile(self) -> None:
        """
        --password-file gives the first line of the file, without its line
        ending, and takes precedence over $SIPEVENTS_PASSWORD.
        """
        environ = dict(os.environ)
        environ["SIPEVENTS_PASSWORD"] = "from-env"
        self.patch(os, "environ", environ)
        for content in ("s3cret: x\n", "s3cret: x", "s3cret: x\r\nsecond line\n"):
            options = parse(
                "sip:a@127.0.0.1",
                "-e",
                "presence",
                "-u",
                "a",
                "--password-file",
                self.passwordFile(content),
            )
            self.assertEqual(options.credentials, Credentials("a", "s3cret: x"))

    def test_rfc3261_22_passwordFileBad(self) -> None:
        """
        A missing or unreadable file, or an empty first line, is a usage
        error naming the file.
        """
        for path, message in [
            (self.mktemp(), "No such file"),
            (self.passwordFile("\nsecret\n"), "the first line is empty"),
            (self.passwordFile(""), "the first line is empty"),
        ]:
            self.assertUsage(
                "sip:a@127.0.0.1",
                "-e",
                "presence",
                "-u",
                "a",
                "--password-file",
                path,
                message=f"--password-file {path!r}: {message}",
            )

    def withoutPassword(self, tty: bool) -> list[str]:
        """
        Run without $SIPEVENTS_PASSWORD, standard input a terminal or not,
        and L{getpass.getpass} answering C{"typed"}; return its prompts.
        """
        environ = dict(os.environ)
        environ.pop("SIPEVENTS_PASSWORD", None)
        self.patch(os, "environ", environ)
        stdin = io.StringIO()
        self.patch(stdin, "isatty", lambda: tty)
        self.patch(sys, "stdin", stdin)
        prompts: list[str] = []

        def fakeGetpass(prompt: str = "Password: ", stream: object = None) -> str:
            prompts.append(prompt)
            return "typed"

        self.patch(getpass, "getpass", fakeGetpass)
        return prompts

    def test_rfc3261_22_prompt(self) -> None:
        """
        --user without a password, on a terminal, asks for it with
        L{getpass.getpass}, which does not echo it.
        """
        prompts = self.withoutPassword(tty=True)
        options = parse("sip:a@127.0.0.1", "-e", "presence", "-u", "alice")
        self.assertEqual(options.credentials, Credentials("alice", "typed"))
        self.assertEqual(prompts, ["Password for alice: "])

    def test_rfc3261_22_promptEndOfFile(self) -> None:
        """
        End of file at the prompt (Ctrl-D) is a usage error.
        """
        self.withoutPassword(tty=True)

        def eof(prompt: str = "", stream: object = None) -> str:
            raise EOFError()

        self.patch(getpass, "getpass", eof)
        self.assertUsage(
            "sip:a@127.0.0.1", "-e", "presence", "-u", "a", message="no password typed"
        )

    def test_rfc3261_22_noTerminal(self) -> None:
        """
        --user without a password and without a terminal to ask on (a
        script, a pipe) is a usage error that says how to give one, and
        nothing is asked.
        """
        prompts = self.withoutPassword(tty=False)
        self.assertUsage(
            "sip:a@127.0.0.1",
            "-e",
            "presence",
            "-u",
            "a",
            message="--user needs a password: --password-file FILE, "
            "$SIPEVENTS_PASSWORD, or a terminal",
        )
        self.assertEqual(prompts, [])

    def test_listenDefaults(self) -> None:
        """
        Without --listen: every interface for a remote first hop, loopback
        for a loopback one, a TCP listener as well for a TCP first hop, and
        IPv6 for an IPv6 one.
        """
        cases = [
            (["sip:a@192.0.2.1"], ["udp:0"]),
            (["sip:a@example.com;transport=tcp"], ["udp:0", "tcp:0"]),
            (
                ["sip:a@127.0.0.1;transport=tcp"],
                ["udp:0:interface=127.0.0.1", "tcp:0:interface=127.0.0.1"],
            ),
            (["sip:a@[::1]:5070"], ["udp:0:interface=[::1]"]),
            (["sip:a@localhost:5070"], ["udp:0:interface=127.0.0.1"]),
            (["sip:a@127.example.com"], ["udp:0"]),
            (
                ["sip:a@192.0.2.1", "--proxy", "udp:127.0.0.1:5060"],
                ["udp:0:interface=127.0.0.1"],
            ),
        ]
        for args, listen in cases:
            self.assertEqual(parse(*args, "-e", "presence")["listen"], listen, args)
        self.assertUsage(
            "sip:a@127.0.0.1", "-e", "presence", "-l", "bogus:1", message="bogus"
        )

    def test_rfc3261_17_1_1_1_t1(self) -> None:
        """
        --t1 is a positive number of seconds; T2 is kept at or above it.
        """
        self.assertUsage("sip:a@127.0.0.1", "-e", "presence", "--t1", "0", message="t1")
        self.assertUsage("sip:a@127.0.0.1", "-e", "presence", "--t1", "x", message="t1")
        timers = parse("sip:a@127.0.0.1", "-e", "presence", "--t1", "8")["timers"]
        self.assertEqual((timers.T1, timers.T2), (8.0, 8.0))

    def test_caFileMissing(self) -> None:
        """
        --ca-file must name a file.
        """
        self.assertUsage(
            "sip:a@127.0.0.1",
            "-e",
            "presence",
            "--ca-file",
            "/nonexistent/ca.pem",
            message="no such file",
        )


class ProxyURITests(SynchronousTestCase):
    """
    L{proxyURI} turns --proxy values into preloaded-route URIs (RFC 3261
    section 8.1.2).
    """

    def test_rfc3261_8_1_2_transports(self) -> None:
        """
        udp:, tcp: and tls: become a sip: URI with that transport; the port
        may be left out; IPv6 hosts keep their brackets; sip: URIs pass.
        """
        cases = {
            "udp:127.0.0.1:5060": "sip:127.0.0.1:5060;transport=udp",
            "tcp:proxy.example.com:5070": "sip:proxy.example.com:5070;transport=tcp",
            "TLS:127.0.0.1:5061": "sip:127.0.0.1:5061;transport=tls",
            "udp:127.0.0.1": "sip:127.0.0.1;transport=udp",
            "udp:[::1]:5060": "sip:[::1]:5060;transport=udp",
            "tcp:[::1]": "sip:[::1];transport=tcp",
            "sip:127.0.0.1:5060;lr": "sip:127.0.0.1:5060;lr",
        }
        for given, expected in cases.items():
            self.assertEqual(proxyURI(given), expected, given)

    def test_bad(self) -> None:
        """
        Anything else is a C{ValueError} whose message shows the forms.
        """
        for bad in (
            "127.0.0.1:5060",
            "sctp:127.0.0.1:5060",
            "udp:",
            "udp:127.0.0.1:99999",
            "udp:127.0.0.1:x",
            "udp:::1:5060",
            "udp:[::1",
            "udp:[::1]x",
            "tel:+1555",
        ):
            self.assertRaises(ValueError, proxyURI, bad)
        error = self.assertRaises(ValueError, proxyURI, "127.0.0.1:5060")
        self.assertIn("udp:HOST:PORT", str(error))


class FormatTests(SynchronousTestCase):
    """
    The output formats, plain and JSON (RFC 6665 section 8.2.3 for the
    Subscription-State shown).
    """

    def test_rfc6665_8_2_3_plain(self) -> None:
        """
        Time and event, Subscription-State, Content-Type, a blank line, the
        body, a blank line.
        """
        self.assertEqual(
            formatNotification(notification()),
            f"{localTime(1700000000.25)} NOTIFY presence\n"
            "Subscription-State: active;expires=600\n"
            "Content-Type: application/pidf+xml\n"
            "\n" + PIDF.decode() + "\n",
        )

    def test_rfc6665_8_2_3_plainWithoutBody(self) -> None:
        """
        Without a body there is no Content-Type line and no body.
        """
        self.assertEqual(
            formatNotification(notification("terminated;reason=noresource", b"", None)),
            f"{localTime(1700000000.25)} NOTIFY presence\n"
            "Subscription-State: terminated;reason=noresource\n\n",
        )

    def test_rfc6665_4_1_2_4_plainFork(self) -> None:
        """
        A fork's NOTIFY names its sender; the event id is shown.
        """
        text = formatNotification(
            notification(body=b"x", event="dialog;id=9"), fork=True
        )
        self.assertEqual(
            text.splitlines()[0],
            f"{localTime(1700000000.25)} NOTIFY dialog;id=9"
            " (fork: from sip:alice@127.0.0.1;tag=nt)",
        )
        self.assertTrue(text.endswith("\nx\n\n"))

    def test_plainUndecodableBody(self) -> None:
        """
        Bytes that are not UTF-8 are replaced, never an error.
        """
        self.assertIn("\ufffd", formatNotification(notification(body=b"\xff\xfe")))

    def test_rfc6665_8_2_3_json(self) -> None:
        """
        One JSON object per line, with the parsed Subscription-State.
        """
        line = formatRecord(
            notificationRecord(
                notification("terminated;reason=probation;retry-after=30"),
                "sip:alice@127.0.0.1:5070",
            )
        )
        self.assertTrue(line.endswith("}\n"))
        self.assertEqual(line.count("\n"), 1)
        self.assertTrue(line.isascii())
        self.assertEqual(
            json.loads(line),
            {
                "time": "2023-11-14T22:13:20.250Z",
                "timestamp": 1700000000.25,
                "target": "sip:alice@127.0.0.1:5070",
                "from": "sip:alice@127.0.0.1",
                "fromTag": "nt",
                "fork": False,
                "event": "presence",
                "id": None,
                "state": "terminated",
                "reason": "probation",
                "expires": None,
                "retryAfter": 30,
                "subscriptionState": "terminated;reason=probation;retry-after=30",
                "contentType": "application/pidf+xml",
                "body": PIDF.decode(),
            },
        )

    def test_jsonBinaryBody(self) -> None:
        """
        A body that is not UTF-8 is also given exactly, in base64; a UTF-8
        one with non-ASCII text is escaped into an ASCII line.
        """
        record = notificationRecord(notification(body=b"\xff\x00"), "sip:a@b")
        self.assertEqual(record["bodyBase64"], "/wA=")
        self.assertEqual(record["body"], "\ufffd\x00")
        line = formatRecord(notificationRecord(notification(body="é".encode()), "x"))
        self.assertTrue(line.isascii())
        self.assertEqual(json.loads(line)["body"], "é")

    def test_rfc6665_4_1_3_describeTermination(self) -> None:
        """
        Why a subscription ended, in words.
        """
        final = notification("terminated;reason=noresource")
        self.assertEqual(
            describeTermination(Termination("noresource", None, final, None, False)),
            "ended by the notifier (reason=noresource)",
        )
        self.assertEqual(
            describeTermination(Termination("giveup", 60, final, None, True)),
            "ended by the notifier (reason=giveup, retry-after=60)",
        )
        self.assertEqual(
            describeTermination(Termination(None, None, None, None, False)), "ended"
        )


class MainUsageTests(SynchronousTestCase):
    """
    L{main} reports usage errors with exit status 2.
    """

    def test_usageError(self) -> None:
        """
        A bad URI: one error line, the synopsis and a pointer to --help on
        standard error, exit status 2, nothing on standard output.
        """
        err = io.StringIO()
        out = io.StringIO()
        self.patch(sys, "stderr", err)
        self.patch(sys, "stdout", out)
        exit = self.assertRaises(SystemExit, main, ["alice", "--event", "presence"])
        self.assertEqual(exit.code, EXIT_USAGE)
        lines = err.getvalue().splitlines()
        self.assertTrue(lines[0].startswith("sipevents-watch: error: TARGET 'alice'"))
        self.assertIn("--help", lines[-1])
        self.assertEqual(out.getvalue(), "")

    def test_help(self) -> None:
        """
        --help lists every option and exits 0.
        """
        out = io.StringIO()
        self.patch(sys, "stdout", out)
        exit = self.assertRaises(SystemExit, main, ["--help"])
        self.assertIn(exit.code, (None, 0))
        for option in (
            "--event",
            "--expires",
            "--accept",
            "--proxy",
            "--once",
            "--json",
            "--user",
            "--password",
            "--password-file",
            "--listen",
            "--id",
        ):
            self.assertIn(option, out.getvalue())


class Stream(io.StringIO):
    """
    A text stream a test can wait on.
    """

    def __init__(self) -> None:
        super().__init__()
        self.waiting: list[tuple[str, int, Deferred[None]]] = []

    def write(self, text: str) -> int:
        written = super().write(text)
        value = self.getvalue()
        for entry in list(self.waiting):
            needle, count, d = entry
            if value.count(needle) >= count:
                self.waiting.remove(entry)
                d.callback(None)
        return written

    def waitFor(self, needle: str, count: int = 1) -> Deferred[None]:
        """
        Fire once C{needle} has been written C{count} times; fail after
        L{WAIT} seconds.
        """
        if self.getvalue().count(needle) >= count:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self.waiting.append((needle, count, d))
        return d.addTimeout(WAIT, reactor)


class _Silent(DatagramProtocol):
    """
    A UDP socket that takes everything and answers nothing.
    """

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        pass


class WatchTests(NotifierMixin, TestCase):
    """
    Whole watches, run in process against our notifier on 127.0.0.1.
    """

    timeout = 60

    def setUp(self) -> Deferred[None]:
        return self.startNotifier(self)  # type: ignore[no-any-return]

    def startWatch(
        self, *args: str
    ) -> tuple[Deferred[int], Stream, Stream, StopRequest]:
        """
        Start a watch with C{args}; return its exit status L{Deferred},
        its output and error streams, and its stop trigger.
        """
        options = parse(*args)
        out, err, stop = Stream(), Stream(), StopRequest()
        running = Deferred.fromCoroutine(watch(reactor, options, out, err, stop))
        running.addTimeout(WAIT * 3, reactor)
        self.addCleanup(lambda: running if running.called else _stopAnd(stop, running))
        return running, out, err, stop

    @property
    def alice(self) -> str:
        return f"sip:alice@127.0.0.1:{self.udpPort}"

    @inlineCallbacks
    def test_rfc6665_4_1_watchChangeInterrupt(
        self,
    ) -> Generator[Deferred[Any], Any, None]:
        """
        A watch prints the first NOTIFY and each change; stopping it (as
        SIGINT does) unsubscribes (RFC 6665 section 4.1.2.3), prints the
        final NOTIFY and exits 0.
        """
        running, out, err, stop = self.startWatch(self.alice, "--event", "presence")
        yield out.waitFor("Subscription-State: active")
        self.assertIn("subscribing to presence of " + self.alice, err.getvalue())
        self.assertEqual(len(self.service.notifier.subscriptions()), 1)
        yield self.service.notifier.setState(
            "presence", "sip:alice@127.0.0.1", "application/pidf+xml", PIDF
        )
        yield out.waitFor("<basic>open</basic>")
        self.assertIn("Content-Type: application/pidf+xml\n", out.getvalue())
        stop(signal.SIGINT)
        code = yield running
        self.assertEqual(code, EXIT_OK)
        self.assertIn("Subscription-State: terminated", out.getvalue())
        self.assertIn("unsubscribed", err.getvalue())
        self.assertEqual(self.service.notifier.subscriptions(), [])

    def deafen(self) -> Deaf:
        userAgent = self.service.userAgent
        inner = userAgent.handlerFor("SUBSCRIBE")
        assert inner is not None
        deaf = Deaf(inner)
        userAgent.registerMethod("SUBSCRIBE", deaf)
        return deaf

    @inlineCallbacks
    def test_rfc6665_4_1_2_3_unsubscribeBounded(
        self,
    ) -> Generator[Deferred[Any], Any, None]:
        """
        When the notifier does not confirm the unsubscribe, the watch exits
        anyway after L{sipevents.app.watch.UNSUBSCRIBE_TIMEOUT}, saying so.
        """
        deaf = self.deafen()
        self.patch(sipevents.app.watch, "UNSUBSCRIBE_TIMEOUT", 0.1)
        running, out, err, stop = self.startWatch(
            self.alice, "--event", "presence", "--t1", "0.01"
        )
        yield out.waitFor("Subscription-State: active")
        stop(signal.SIGINT)
        code = yield running
        self.assertEqual(code, EXIT_OK)
        self.assertEqual(len(deaf.unanswered), 1)
        self.assertIn(f"no final NOTIFY from {self.alice}", err.getvalue())

    @inlineCallbacks
    def test_rfc6665_4_1_2_3_secondSignalQuits(
        self,
    ) -> Generator[Deferred[Any], Any, None]:
        """
        A second signal stops waiting for the unsubscribe at once.
        """
        self.deafen()
        self.patch(sipevents.app.watch, "UNSUBSCRIBE_TIMEOUT", 30.0)
        running, out, err, stop = self.startWatch(
            self.alice, "--event", "presence", "--t1", "0.01"
        )
        yield out.waitFor("Subscription-State: active")
        stop(signal.SIGINT)
        stop(signal.SIGINT)
        code = yield running
        self.assertEqual(code, EXIT_OK)
        self.assertIn("not waiting for the final NOTIFY", err.getvalue())

    @inlineCallbacks
    def test_rfc6665_4_4_3_once(self) -> Generator[Deferred[Any], Any, None]:
        """
        --once prints the state from the poll's NOTIFY and exits 0, leaving
        no subscription.
        """
        yield self.service.notifier.setState(
            "presence", "sip:alice@127.0.0.1", "application/pidf+xml", PIDF
        )
        running, out, err, _ = self.startWatch(
            self.alice, "--event", "presence", "--once"
        )
        code = yield running
        self.assertEqual(code, EXIT_OK, err.getvalue())
        self.assertEqual(out.getvalue().count(" NOTIFY presence\n"), 1)
        self.assertIn("<basic>open</basic>", out.getvalue())
        self.assertEqual(self.service.notifier.subscriptions(), [])

    @inlineCallbacks
    def test_rfc6665_8_2_3_json(self) -> Generator[Deferred[Any], Any, None]:
        """
        --json prints one JSON object per NOTIFY and line.
        """
        running, out, _, stop = self.startWatch(
            self.alice, "--event", "presence", "--json", "--expires", "120"
        )
        yield out.waitFor('"state":"active"')
        yield self.service.notifier.setState(
            "presence", "sip:alice@127.0.0.1", "application/pidf+xml", PIDF
        )
        yield out.waitFor("<basic>open</basic>")
        stop(signal.SIGTERM)
        code = yield running
        self.assertEqual(code, EXIT_OK)
        records = [json.loads(line) for line in out.getvalue().splitlines()]
        self.assertEqual(
            [record["state"] for record in records], ["active", "active", "terminated"]
        )
        self.assertLessEqual(records[0]["expires"], 120)
        self.assertIn("<basic>open</basic>", records[1]["body"])
        self.assertEqual(records[1]["target"], self.alice)

    @inlineCallbacks
    def test_rfc6665_4_1_3_terminatedByNotifier(
        self,
    ) -> Generator[Deferred[Any], Any, None]:
        """
        A NOTIFY ending the subscription with a reason that asks for no new
        one ends the watch cleanly.
        """
        running, out, err, _ = self.startWatch(self.alice, "--event", "presence")
        yield out.waitFor("Subscription-State: active")
        self.service.notifier.terminate(reason="noresource")
        code = yield running
        self.assertEqual(code, EXIT_OK)
        self.assertIn("terminated;reason=noresource", out.getvalue())
        self.assertIn("(reason=noresource)", err.getvalue())

    @inlineCallbacks
    def test_rfc6665_4_2_1_1_badEvent(self) -> Generator[Deferred[Any], Any, None]:
        """
        A 489 fails the watch with one line listing the Allow-Events.
        """
        running, out, err, _ = self.startWatch(self.alice, "--event", "no-such-package")
        code = yield running
        self.assertEqual(code, EXIT_FAILURE)
        self.assertEqual(out.getvalue(), "")
        last = err.getvalue().splitlines()[-1]
        self.assertIn("489", last)
        self.assertIn("presence", last)
        self.assertIn(self.alice, last)

    @inlineCallbacks
    def test_rfc6665_4_1_2_4_noAnswer(self) -> Generator[Deferred[Any], Any, None]:
        """
        A target that never answers fails the watch after 64*T1 with a
        message naming the target.
        """
        silent = reactor.listenUDP(0, _Silent(), interface=LOOPBACK)  # type: ignore[attr-defined]
        self.addCleanup(silent.stopListening)
        target = f"sip:bob@127.0.0.1:{silent.getHost().port}"
        running, out, err, _ = self.startWatch(
            target, "--event", "presence", "--t1", "0.02"
        )
        code = yield running
        self.assertEqual(code, EXIT_FAILURE)
        self.assertIn(target, err.getvalue().splitlines()[-1])

    @inlineCallbacks
    def test_rfc3261_22_2_credentials(self) -> Generator[Deferred[Any], Any, None]:
        """
        --user and --password answer a digest challenge.
        """
        wrapper = self.challenge("secret")
        running, out, _, _ = self.startWatch(
            self.alice, "--event", "presence", "--once", "-u", "alice", "-p", "secret"
        )
        code = yield running
        self.assertEqual(code, EXIT_OK)
        self.assertEqual(len(wrapper.authorized), 1)
        self.assertIn(" NOTIFY presence", out.getvalue())


@implementer(IRequestHandler)
class Deaf:
    """
    Wraps the notifier's SUBSCRIBE handler, and never answers an
    unsubscribe (an in-dialog SUBSCRIBE with Expires: 0): a notifier that
    went away.
    """

    def __init__(self, inner: IRequestHandler) -> None:
        self.inner = inner
        self.accept = inner.accept
        self.unanswered: list[Request] = []

    def handleRequest(
        self, request: Request, context: IRequestContext
    ) -> Response | Deferred[Response | None] | None:
        if context.inDialog and request.expires == 0:
            self.unanswered.append(request)
            return Deferred()
        return self.inner.handleRequest(request, context)


def _stopAnd(stop: StopRequest, running: Deferred[int]) -> Deferred[int]:
    """
    Stop a watch a failed test left running, and wait for it.
    """
    stop(signal.SIGINT)
    stop(signal.SIGINT)
    return running.addErrback(lambda _: EXIT_FAILURE)


class _Process(ProcessProtocol):
    def __init__(self) -> None:
        self.code: int | None = None
        self.out = Stream()
        self.err = Stream()
        self.ended: Deferred[int | None] = Deferred()

    def outReceived(self, data: bytes) -> None:
        self.out.write(data.decode("utf-8", "replace"))

    def errReceived(self, data: bytes) -> None:
        self.err.write(data.decode("utf-8", "replace"))

    def processEnded(self, reason: Failure) -> None:
        self.ended.callback(getattr(reason.value, "exitCode", None))


def spawnWatch(testCase: TestCase, *arguments: str) -> tuple[_Process, Any]:
    """
    Start C{python -m sipevents.app.watch} with C{arguments} from this
    checkout (without C{$SIPEVENTS_PASSWORD}); whatever happens, the
    process does not outlive C{testCase}.

    @return: its protocol and its process transport.
    """
    process = _Process()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [REPOSITORY, *filter(None, [env.get("PYTHONPATH")])]
    )
    env.pop("SIPEVENTS_PASSWORD", None)
    transport = reactor.spawnProcess(  # type: ignore[attr-defined]
        process,
        sys.executable,
        [sys.executable, "-m", "sipevents.app.watch", *arguments],
        env=env,
        path=REPOSITORY,
    )
    guard = reactor.callLater(60, _kill, transport)  # type: ignore[attr-defined]
    testCase.addCleanup(_kill, transport)
    testCase.addCleanup(lambda: guard.cancel() if guard.active() else None)
    return process, transport


class CommandTests(NotifierMixin, TestCase):
    """
    C{python -m sipevents.app.watch} as a separate process, stopped by a real
    SIGINT.
    """

    timeout = 90

    def setUp(self) -> Deferred[None]:
        return self.startNotifier(self)  # type: ignore[no-any-return]

    @inlineCallbacks
    def runAndSignal(self, signalName: str) -> Generator[Deferred[Any], Any, None]:
        """
        Run the command against our notifier, wait for the first NOTIFY
        (printed and flushed, though the output is a pipe), send
        C{signalName}, and check that it unsubscribed and exited 0.
        """
        process, transport = spawnWatch(
            self, f"sip:alice@127.0.0.1:{self.udpPort}", "--event", "presence"
        )
        yield process.out.waitFor("Subscription-State: active").addErrback(
            lambda failure: self.fail(f"no NOTIFY; stderr: {process.err.getvalue()}")
        )
        self.assertEqual(len(self.service.notifier.subscriptions()), 1)
        transport.signalProcess(signalName)
        code = yield process.ended
        self.assertEqual(code, EXIT_OK, process.err.getvalue())
        self.assertIn("Subscription-State: terminated", process.out.getvalue())
        self.assertIn("unsubscribed", process.err.getvalue())
        self.assertEqual(self.service.notifier.subscriptions(), [])

    def test_rfc6665_4_1_2_3_sigintUnsubscribes(self) -> Deferred[None]:
        """
        SIGINT (Ctrl-C) makes the command unsubscribe and exit 0.
        """
        return self.runAndSignal("INT")  # type: ignore[no-any-return]

    def test_rfc6665_4_1_2_3_sigtermUnsubscribes(self) -> Deferred[None]:
        """
        So does SIGTERM (which the reactor would otherwise take to stop at
        once).
        """
        return self.runAndSignal("TERM")  # type: ignore[no-any-return]


class AuthenticatedCommandTests(TestCase):
    """
    C{python -m sipevents.app.watch --user alice --password-file FILE} as a
    separate process against our server started as C{twistd sipevents
    --users FILE} would start it, over loopback UDP (RFC 3261 section 22,
    RFC 3856 section 6.6.1).
    """

    timeout = 90

    def setUp(self) -> Any:
        self.work = os.path.abspath(self.mktemp())
        os.makedirs(self.work)
        users = os.path.join(self.work, "users.htdigest")
        with open(users, "w", encoding="ascii") as f:
            f.write(htdigestLine("alice", LOOPBACK, "wonderland"))
        self.port = freePort()
        self.service = startService(
            self, self.port, "--store", "memory", "--users", users
        )
        assert self.service.whenReady is not None
        return self.service.whenReady

    @inlineCallbacks
    def runOnce(self, password: str) -> Generator[Deferred[Any], Any, _Process]:
        """
        Run C{--once} for alice's presence with C{password} in a password
        file, and return the ended process.
        """
        passwordFile = os.path.join(self.work, "password")
        with open(passwordFile, "w", encoding="utf-8") as f:
            f.write(password + "\n")
        process, _ = spawnWatch(
            self,
            f"sip:alice@{LOOPBACK}:{self.port}",
            "--event",
            "presence",
            "--once",
            "--user",
            "alice",
            "--password-file",
            passwordFile,
            "--t1",
            "0.05",
        )
        process.code = yield process.ended
        return process

    @inlineCallbacks
    def test_rfc3261_22_2_passwordFile(self) -> Generator[Deferred[Any], Any, None]:
        """
        The right password answers the server's 401 challenge: the NOTIFY
        is printed and the command exits 0.
        """
        process = yield self.runOnce("wonderland")
        self.assertEqual(process.code, EXIT_OK, process.err.getvalue())
        out = process.out.getvalue()
        self.assertIn(" NOTIFY presence\nSubscription-State: terminated", out)
        self.assertIn("Content-Type: application/pidf+xml", out)
        self.assertIn("<presence", out)

    @inlineCallbacks
    def test_rfc3261_22_2_wrongPassword(self) -> Generator[Deferred[Any], Any, None]:
        """
        A wrong password is refused again with 401: the command exits 1
        with one line on standard error after its progress line, and
        prints nothing on standard output.
        """
        process = yield self.runOnce("not-it")
        self.assertEqual(process.code, EXIT_FAILURE, process.err.getvalue())
        self.assertEqual(process.out.getvalue(), "")
        lines = process.err.getvalue().splitlines()
        self.assertEqual(len(lines), 2, lines)
        self.assertTrue(lines[0].startswith("sipevents-watch: fetching presence"))
        self.assertTrue(lines[1].startswith("sipevents-watch: "), lines)
        self.assertIn("401", lines[1])
        self.assertNotIn("not-it", process.err.getvalue())


def _kill(transport: Any) -> None:
    """
    Kill the process by its PID if it still runs.
    """
    if transport.pid is not None:
        try:
            transport.signalProcess("KILL")
        except Exception:
            pass
