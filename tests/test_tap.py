# -*- test-case-name: tests.test_tap -*-
"""
Tests for L{sipevents.app.tap} and the C{twistd sipevents} plugin.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from twisted.application.service import IServiceMaker
from twisted.internet.testing import MemoryReactorClock
from twisted.plugin import getPlugins
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from sipevents.app.service import SIPEventsService
from sipevents.app.tap import DEFAULT_LISTEN, Options, makeService
from sipevents.config import DEFAULT_LIMITS, DEFAULT_TIMERS, TimerConfig
from sipevents.notifier.authorization import AcceptAll, AuthenticatedWatchers
from sipevents.sip.authentication import DigestAuthenticator

#: The checkout, whose C{twisted/plugins} holds the dropin.
ROOT = Path(__file__).resolve().parent.parent


def parse(*argv: str) -> Options:
    """
    Parse C{argv} with a new L{Options}.
    """
    options = Options()
    options.parseOptions(list(argv))
    return options


class OptionsTests(SynchronousTestCase):
    """
    L{Options} parses and checks the command line.
    """

    def test_defaults(self) -> None:
        """
        Without options the server listens on UDP and TCP port 5060 of the
        loopback interface, with the RFC 3261 timer defaults (section
        17.1.1.1) and the default limits.
        """
        options = parse()
        self.assertEqual(
            options["listen"],
            ["udp:5060:interface=127.0.0.1", "tcp:5060:interface=127.0.0.1"],
        )
        self.assertEqual(options.timers(), DEFAULT_TIMERS)
        self.assertEqual(options.limits(), DEFAULT_LIMITS)
        self.assertEqual(list(DEFAULT_LISTEN), options["listen"])

    def test_listenRepeatable(self) -> None:
        """
        C{--listen} (or C{-l}) may be given several times and replaces the
        defaults; C{tls:} is accepted as Twisted's C{ssl:}.
        """
        options = parse(
            "--listen", "udp:0:interface=127.0.0.1", "-l", "tcp:0:interface=127.0.0.1"
        )
        self.assertEqual(
            options["listen"],
            ["udp:0:interface=127.0.0.1", "tcp:0:interface=127.0.0.1"],
        )

    def test_listenIPv6(self) -> None:
        """
        An IPv6 interface is written escaped, as in Twisted endpoint strings.
        """
        options = parse("--listen", "udp:5060:interface=\\:\\:1")
        self.assertEqual(options["listen"], ["udp:5060:interface=\\:\\:1"])

    def test_badListen(self) -> None:
        """
        Descriptions that cannot be listened on are usage errors naming the
        description: an unknown type, a bad port, an unknown option, and a
        TLS description whose certificate file is missing.
        """
        for description in [
            "sctp:5060",
            "5060",
            "udp:http",
            "udp:5060:color=blue",
            "udp:99999",
            "tcp:abc",
            "tcp:5060:color=blue",
            "tls:5061:privateKey=/nonexistent/key.pem",
        ]:
            error = self.assertRaises(UsageError, parse, "--listen", description)
            self.assertIn(description, str(error))

    def test_timers(self) -> None:
        """
        C{--t1}, C{--t2} and C{--t4} set the timer values (RFC 3261 section
        17.1.1.1), fractions allowed.
        """
        options = parse("--t1", "0.1", "--t2", "2", "--t4", "2.5")
        self.assertEqual(options.timers(), TimerConfig(T1=0.1, T2=2.0, T4=2.5))

    def test_badTimers(self) -> None:
        """
        Timers must be numbers above zero, and T2 (the retransmission cap,
        RFC 3261 section 17.1.2.2) not below T1.
        """
        for argv in [
            ("--t1", "fast"),
            ("--t1", "0"),
            ("--t2", "-1"),
            ("--t4", "nan"),
            ("--t4", "inf"),
            ("--t1", "5", "--t2", "4"),
        ]:
            self.assertRaises(UsageError, parse, *argv)

    def test_limits(self) -> None:
        """
        C{--max-message-size}, C{--max-connections} and C{--idle-timeout}
        are taken.
        """
        options = parse(
            "--max-message-size",
            "4096",
            "--max-connections",
            "10",
            "--idle-timeout",
            "30.5",
        )
        self.assertEqual(options.limits().maxMessageSize, 4096)
        self.assertEqual(options["max-connections"], 10)
        self.assertEqual(options["idle-timeout"], 30.5)

    def test_badLimits(self) -> None:
        """
        Sizes and counts must be whole numbers above zero, a message size
        at least 1024 bytes, and the idle timeout a number above zero.
        """
        for argv in [
            ("--max-message-size", "big"),
            ("--max-message-size", "100"),
            ("--max-message-size", "4096.5"),
            ("--max-connections", "0"),
            ("--max-connections", "-3"),
            ("--idle-timeout", "soon"),
            ("--idle-timeout", "0"),
        ]:
            self.assertRaises(UsageError, parse, *argv)

    def test_unknownOption(self) -> None:
        """
        An unknown option is a usage error.
        """
        self.assertRaises(UsageError, parse, "--port", "5060")

    def test_helpExplainsEveryOption(self) -> None:
        """
        C{--help} lists every option with a sentence of explanation.
        """
        usage = str(Options())
        for name in [
            "--listen",
            "--t1",
            "--t2",
            "--t4",
            "--max-message-size",
            "--max-connections",
            "--idle-timeout",
        ]:
            self.assertIn(name + "=", usage)
        for _, _, _, doc, *_ in Options.optParameters:
            self.assertGreater(len(doc.split()), 8)
        self.assertIn("udp:PORT[:interface=HOST]", usage)
        self.assertIn("[default:", usage)


class MakeServiceTests(SynchronousTestCase):
    """
    L{makeService} builds the service the options describe.
    """

    def test_makeService(self) -> None:
        """
        The service listens where the options say, and its user agent and
        transport layer use the timers and limits chosen.
        """
        reactor = MemoryReactorClock()
        options = parse(
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--t1",
            "0.25",
            "--max-message-size",
            "2048",
            "--max-connections",
            "7",
            "--idle-timeout",
            "9",
        )
        service = makeService(options, reactor=reactor)
        self.assertIsInstance(service, SIPEventsService)
        self.assertEqual(service.descriptions, ["tcp:0:interface=127.0.0.1"])
        self.assertIs(service.reactor, reactor)
        self.assertEqual(service.userAgent.timers.T1, 0.25)
        self.assertEqual(service.userAgent.transactions.timers.T1, 0.25)
        self.assertEqual(service.transportLayer.limits.maxMessageSize, 2048)
        self.assertEqual(service.transportLayer.maxConnections, 7)
        self.assertEqual(service.transportLayer.idleTimeout, 9.0)

    def test_gcTuning(self) -> None:
        """
        The C{twistd} service tunes the garbage collector unless
        C{--no-gc-tuning} says not to.
        """
        self.assertTrue(makeService(parse(), reactor=MemoryReactorClock()).tuneGC)
        service = makeService(parse("--no-gc-tuning"), reactor=MemoryReactorClock())
        self.assertFalse(service.tuneGC)

    def test_logSubscriptions(self) -> None:
        """
        Subscription and publication lifecycle lines are logged only with
        C{--log-subscriptions}.
        """
        service = makeService(parse(), reactor=MemoryReactorClock())
        self.assertFalse(service.notifier.logLifecycle)
        self.assertFalse(service.publications.logLifecycle)
        service = makeService(
            parse("--log-subscriptions"), reactor=MemoryReactorClock()
        )
        self.assertTrue(service.notifier.logLifecycle)
        self.assertTrue(service.publications.logLifecycle)

    def test_makeServiceDefaults(self) -> None:
        """
        Without C{--listen}, the service listens on the default
        descriptions.
        """
        service = makeService(parse(), reactor=MemoryReactorClock())
        self.assertEqual(service.descriptions, list(DEFAULT_LISTEN))


class AuthenticationOptionsTests(SynchronousTestCase):
    """
    C{--users}, C{--realm} and C{--no-authentication}, and the refusal to
    serve beyond loopback without authentication.
    """

    def usersFile(self, *lines: str) -> str:
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("".join(line + "\n" for line in lines))
        return path

    def test_refusesBeyondLoopback(self) -> None:
        """
        Without C{--users}, a C{--listen} on all interfaces (no interface,
        C{0.0.0.0}, C{::}) or on another address is a usage error naming
        C{--users} and C{--no-authentication}.
        """
        for description in [
            "udp:5060:interface=0.0.0.0",
            "udp:5060",
            "tcp:5060",
            "tcp:5060:interface=192.0.2.1",
            "tcp6:5060:interface=\\:\\:",
            "udp:5060:interface=example.com",
        ]:
            error = self.assertRaises(
                UsageError,
                parse,
                "--listen",
                "udp:5060:interface=127.0.0.1",
                "--listen",
                description,
            )
            message = str(error)
            self.assertIn(description, message)
            self.assertIn("--users", message)
            self.assertIn("--no-authentication", message)

    def test_loopbackNeedsNothing(self) -> None:
        """
        Loopback listeners need neither option, and the defaults are on
        loopback: the server authenticates no one.
        """
        for description in [
            "udp:5060:interface=127.0.0.1",
            "udp:5060:interface=127.0.0.2",
            "tcp:5060:interface=localhost",
            "tcp6:5060:interface=\\:\\:1",
            "udp:5060:interface=[::1]",
        ]:
            self.assertEqual(parse("--listen", description)["listen"], [description])
        service = makeService(parse(), reactor=MemoryReactorClock())
        self.assertIsNone(service.userAgent.authenticator)
        self.assertIsInstance(service.notifier.authorizer, AcceptAll)

    def test_noAuthentication(self) -> None:
        """
        C{--no-authentication} lets a server without users listen anywhere.
        """
        options = parse("--no-authentication", "--listen", "udp:5060")
        self.assertEqual(options["listen"], ["udp:5060"])
        service = makeService(options, reactor=MemoryReactorClock())
        self.assertIsNone(service.userAgent.authenticator)

    def test_users(self) -> None:
        """
        C{--users} turns authentication on with the file's realm, and lets
        the server listen beyond loopback; the authenticator is built on
        the reactor, the portal of the file and the realm, offers only the
        algorithms the file's users have (an htdigest file as Apache writes
        it: MD5 only, RFC 8760 section 2.4), and the default authorizer is
        L{AuthenticatedWatchers}.
        """
        path = self.usersFile("alice:example.com:" + "0" * 32)
        options = parse("--users", path, "--listen", "udp:5060")
        self.assertEqual(options["realm"], "example.com")
        self.assertEqual(options["users"], os.path.abspath(path))
        reactor = MemoryReactorClock()
        service = makeService(options, reactor=reactor)
        authenticator = service.userAgent.authenticator
        self.assertIsInstance(authenticator, DigestAuthenticator)
        assert isinstance(authenticator, DigestAuthenticator)
        self.assertIs(authenticator.clock, reactor)
        self.assertIs(authenticator.portal, options["portal"])
        self.assertEqual(authenticator.realm, "example.com")
        self.assertEqual(authenticator.algorithms, ("MD5",))
        self.assertEqual(
            service.userAgent.authenticatedMethods, frozenset({"SUBSCRIBE", "PUBLISH"})
        )
        self.assertIsInstance(service.notifier.authorizer, AuthenticatedWatchers)

    def test_severalRealms(self) -> None:
        """
        A users file with several realms needs C{--realm}; the usage error
        says so.
        """
        path = self.usersFile(
            "alice:example.com:" + "0" * 32, "bob:example.org:" + "1" * 32
        )
        error = self.assertRaises(UsageError, parse, "--users", path)
        self.assertIn("--realm", str(error))
        self.assertIn(path, str(error))
        options = parse("--users", path, "--realm", "example.org")
        self.assertEqual(options["realm"], "example.org")

    def test_badCombinations(self) -> None:
        """
        A missing users file, C{--realm} without C{--users}, and C{--users}
        with C{--no-authentication} are usage errors.
        """
        missing = self.mktemp()
        error = self.assertRaises(UsageError, parse, "--users", missing)
        self.assertIn("no such file", str(error))
        error = self.assertRaises(UsageError, parse, "--realm", "example.com")
        self.assertIn("--users", str(error))
        path = self.usersFile("alice:example.com:" + "0" * 32)
        error = self.assertRaises(
            UsageError, parse, "--users", path, "--no-authentication"
        )
        self.assertIn("--no-authentication", str(error))


class PluginTests(SynchronousTestCase):
    """
    The C{twistd sipevents} plugin.
    """

    def test_pluginFound(self) -> None:
        """
        Twisted's plugin system finds a service maker named C{sipevents}
        whose options are L{Options}.
        """
        makers = {maker.tapname: maker for maker in getPlugins(IServiceMaker)}
        maker = makers["sipevents"]
        self.assertIs(maker.options, Options)
        self.assertIs(maker.makeService, makeService)
        self.assertTrue(maker.description)

    def test_twistdHelp(self) -> None:
        """
        C{twistd -n sipevents --help} runs and shows our options.
        """
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        )
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                "from twisted.scripts.twistd import run; run()",
                "-n",
                "sipevents",
                "--help",
            ],
            cwd=str(ROOT),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("--listen=", result.stdout)
        self.assertIn("sipevents", result.stdout)
