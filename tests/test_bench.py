# -*- test-case-name: tests.test_bench -*-
"""
The benchmarks (C{bench/}) cannot rot unnoticed: every module imports, every
script's command line parses (with and without C{--quick}), and the cheap
parts of L{bench.harness} work: the C{/proc} CPU reader, judging a SIPp
step, the climb, the 200 to a NOTIFY, and a C{twistd sipevents} server
started on loopback, asked one OPTIONS and loaded by SIPp for a handful of
calls, then stopped by its PID.

No figure is asserted: these check that the benchmarks run and measure
what they say, not how fast anything is.
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import pkgutil
import socket
import subprocess
import sys
from types import ModuleType

from twisted.python.filepath import FilePath
from twisted.trial.unittest import TestCase

import bench
from bench import harness
from tests.test_sipp import requireSIPp

#: Every script of C{bench/}: the modules with a C{main}.
SCRIPTS = sorted(
    info.name for info in pkgutil.iter_modules(bench.__path__) if info.name != "harness"
)


def script(name: str) -> ModuleType:
    return importlib.import_module(f"bench.{name}")


class ModuleTests(TestCase):
    """
    Every benchmark module imports and documents how it is run.
    """

    def test_scripts(self) -> None:
        """
        The package holds the seven scripts, each with C{arguments} and
        C{main}, and each docstring gives its C{python -m bench.NAME}
        command.
        """
        self.assertEqual(
            SCRIPTS,
            [
                "fanout",
                "memory",
                "options_load",
                "parse",
                "subscribe",
                "subscribe_profile",
                "transaction_memory",
            ],
        )
        for name in SCRIPTS:
            module = script(name)
            self.assertTrue(callable(module.main), name)
            self.assertTrue(callable(module.arguments), name)
            self.assertIn(f"python -m bench.{name}", module.__doc__ or "", name)

    def test_readme(self) -> None:
        """
        C{bench/README.md} gives every script's command as C{python -m
        bench.NAME} and never the old C{python bench/NAME.py}.
        """
        readme = FilePath(harness.ROOT).child("bench").child("README.md")
        text = readme.getContent().decode("utf-8")
        old = [line for line in text.splitlines() if "python bench/" in line]
        self.assertEqual(old, [])
        for name in SCRIPTS:
            self.assertIn(f"python -m bench.{name}", text, name)

    def test_noPathEdits(self) -> None:
        """
        No module of the package edits C{sys.path}: C{python -m bench.NAME}
        from the repository root finds C{sipevents}, C{bench} and
        C{tests}.
        """
        for path in FilePath(harness.ROOT).child("bench").globChildren("*.py"):
            source = path.getContent().decode("utf-8")
            self.assertNotIn("sys.path.insert", source, path.basename())
            self.assertNotIn("sys.path.append", source, path.basename())


class ArgumentsTests(TestCase):
    """
    Every script's command line: its defaults, C{--quick}, and its bounds.
    """

    def setUp(self) -> None:
        # argparse writes its complaints to standard error before exiting.
        self.stderr = io.StringIO()
        self.patch(sys, "stderr", self.stderr)

    def test_defaults(self) -> None:
        """
        Without options, each script has its full settings.
        """
        self.assertEqual(
            script("subscribe").arguments([]).rates, [250, 500, 1000, 2000, 4000, 8000]
        )
        self.assertEqual(script("fanout").arguments([]).watchers, 1000)
        self.assertEqual(script("memory").arguments([]).count, 100_000)
        self.assertEqual(script("options_load").arguments([]).budget, 120.0)
        self.assertEqual(script("parse").arguments([]).pool, 10000)
        self.assertEqual(script("subscribe_profile").arguments([]).calls, 20000)
        self.assertEqual(script("transaction_memory").arguments([]).count, 20000)

    def test_quick(self) -> None:
        """
        C{--quick} puts in every script's smallest settings, its C{QUICK}.
        """
        for name in SCRIPTS:
            module = script(name)
            args = module.arguments(["--quick"])
            self.assertTrue(args.quick)
            for dest, value in module.QUICK.items():
                self.assertEqual(getattr(args, dest), value, f"{name} {dest}")
            self.assertNotEqual(
                vars(args) | {"quick": False}, vars(module.arguments([])), name
            )

    def test_quickGivenWins(self) -> None:
        """
        An option given on the command line wins over C{--quick}, on
        either side of it.
        """
        fanout = script("fanout")
        self.assertEqual(fanout.arguments(["--quick", "--watchers", "7"]).watchers, 7)
        self.assertEqual(fanout.arguments(["--watchers", "7", "--quick"]).watchers, 7)
        self.assertEqual(fanout.arguments(["--watchers", "7", "--quick"]).rounds, 1)

    def test_bounds(self) -> None:
        """
        A bound set to nothing or less is refused, as is a pool no larger
        than the parser's caches.
        """
        for name, argv in [
            ("fanout", ["--watchers", "0"]),
            ("memory", ["--count", "-5"]),
            ("subscribe", ["--rates", "0,100"]),
            ("subscribe", ["--rates", "fast"]),
            ("subscribe", ["--step-seconds", "0"]),
            ("transaction_memory", ["--count", "999"]),
            ("parse", ["--pool", str(script("parse").LARGEST_CACHE)]),
        ]:
            self.assertRaises(SystemExit, script(name).arguments, argv)
        self.assertIn("must be at least", self.stderr.getvalue())

    def test_serverOptions(self) -> None:
        """
        The scripts that start servers share C{--port}, C{--store},
        C{--twistd-arg} and C{--keep}; those that compare with Kamailio
        share C{--no-kamailio} and C{--kamailio-only}.
        """
        args = script("subscribe").arguments(
            ["--port", "5099", "--twistd-arg=--t1=0.5", "--keep", "--no-kamailio"]
        )
        self.assertEqual(
            (args.port, args.store, args.twistd_arg, args.keep, args.no_kamailio),
            (5099, "memory", ["--t1=0.5"], True, True),
        )
        self.assertIsNone(script("options_load").arguments([]).store)
        self.assertTrue(script("fanout").arguments(["--kamailio-only"]).kamailio_only)

    def test_auth(self) -> None:
        """
        C{bench.subscribe --auth} measures sipevents only, with Digest
        authentication: it implies C{--no-kamailio} and is refused with
        C{--kamailio-only}; without it authentication is off.
        """
        subscribe = script("subscribe")
        self.assertEqual(
            (subscribe.arguments([]).auth, subscribe.arguments([]).no_kamailio),
            (False, False),
        )
        args = subscribe.arguments(["--auth", "--quick"])
        self.assertEqual((args.auth, args.no_kamailio), (True, True))
        self.assertRaises(
            SystemExit, subscribe.arguments, ["--auth", "--kamailio-only"]
        )
        self.assertIn("--kamailio-only", self.stderr.getvalue())


class ProcTests(TestCase):
    """
    The CPU and memory readers of C{/proc}.
    """

    def test_parseStat(self) -> None:
        """
        The parent PID is field 4 and the CPU time fields 14 and 15 (user,
        system) in clock ticks, counted after the command name, which may
        hold spaces and parentheses.
        """
        ticks = os.sysconf("SC_CLK_TCK")
        fields = ["S", "77"] + ["0"] * 9 + [str(3 * ticks), str(ticks)] + ["0"] * 30
        text = "1234 (odd) name (x)) " + " ".join(fields)
        self.assertEqual(harness.parseStat(text), (77, 4.0))

    def test_thisProcess(self) -> None:
        """
        L{harness.processCpu} reads this process: its parent and a CPU time.
        """
        stat = harness.processCpu(os.getpid())
        assert stat is not None
        self.assertEqual(stat[0], os.getppid())
        self.assertGreaterEqual(stat[1], 0.0)
        self.assertGreater(harness.residentBytes(), 0)

    def test_gone(self) -> None:
        """
        A process that is not there has no CPU time; no process, none.
        """
        process = subprocess.Popen([sys.executable, "-c", ""])
        process.wait()
        self.assertIsNone(harness.processCpu(process.pid))
        self.assertEqual(harness.cpuSeconds([]), 0.0)

    def test_children(self) -> None:
        """
        L{harness.cpuSeconds} counts a process's live children with it
        (Kamailio's workers under its main process).
        """
        burn = (
            "import sys, time\n"
            "while time.process_time() < 0.2: pass\n"
            "print('burnt', flush=True)\n"
            "sys.stdin.read()\n"
        )
        child = subprocess.Popen(
            [sys.executable, "-c", burn],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        try:
            assert child.stdout is not None
            self.assertEqual(child.stdout.readline(), b"burnt\n")
            childCpu = harness.cpuSeconds([child.pid])
            mine = harness.processCpu(os.getpid())
            both = harness.cpuSeconds([os.getpid()])
        finally:
            assert child.stdin is not None
            child.stdin.close()
            child.wait()
            assert child.stdout is not None
            child.stdout.close()
        assert mine is not None
        self.assertGreaterEqual(childCpu, 0.15)
        self.assertGreaterEqual(both, mine[1] + childCpu)


class SIPpStepTests(TestCase):
    """
    Judging a SIPp step from its statistics file, and climbing rates.
    """

    def judge(
        self, rate: int, calls: int, ok: int, failed: int, seconds: float, exit: int
    ) -> harness.Step:
        path = self.mktemp()
        start = 1_700_000_000.0
        with open(path, "w") as f:
            f.write("StartTime;CurrentTime;SuccessfulCall(C);FailedCall(C);")
            f.write("Retransmissions(C)\n")
            f.write(f"d\tt\t{start};d\tt\t{start};0;0;0\n")
            f.write(f"d\tt\t{start};d\tt\t{start + seconds};{ok};{failed};3\n")
        step = harness.Step(rate=rate, calls=calls, exitCode=exit)
        harness.judgeStep(step, path)
        return step

    def test_passed(self) -> None:
        """
        Every call successful, exit code 0, at least 90% of the rate: the
        step passes, with the last row's figures.
        """
        step = self.judge(100, 500, 500, 0, 5.5, 0)
        self.assertTrue(step.passed)
        self.assertEqual((step.successful, step.retransmissions), (500, 3))
        self.assertAlmostEqual(step.achieved, 500 / 5.5)

    def test_failed(self) -> None:
        """
        A failed or unfinished call, a non-zero exit code, or less than 90%
        of the rate: the step does not pass, and says why.
        """
        cases = [
            ((100, 500, 498, 2, 5.0, 1), "2 failed, 0 unfinished"),
            ((100, 500, 490, 0, 5.0, 0), "0 failed, 10 unfinished"),
            ((100, 500, 500, 0, 5.0, 99), "SIPp exit code 99"),
            ((100, 500, 500, 0, 6.0, 0), "below 90% of target rate"),
        ]
        for arguments, note in cases:
            step = self.judge(*arguments)
            self.assertFalse(step.passed)
            self.assertEqual(step.note, note)

    def test_noStatistics(self) -> None:
        """
        Without a statistics file, the step does not pass.
        """
        step = harness.Step(rate=100, calls=10, exitCode=0)
        harness.judgeStep(step, self.mktemp())
        self.assertFalse(step.passed)
        self.assertIn("no SIPp statistics", step.note)

    def test_climb(self) -> None:
        """
        L{harness.climb} tries the rates in order until one fails, then
        bisects to the nearest 100/s, and reports the best step.
        """
        tried: list[int] = []

        def runStep(rate: int) -> harness.Step:
            tried.append(rate)
            return harness.Step(rate=rate, calls=rate, passed=rate <= 650)

        result = harness.climb(runStep, [250, 500, 1000, 2000], 3, lambda: True)
        self.assertEqual(tried, [250, 500, 1000, 800, 600, 700])
        assert result.best is not None
        self.assertEqual(result.best.rate, 600)
        self.assertEqual(result.stopped, "1000/s did not pass: ")

    def test_climbBudget(self) -> None:
        """
        No step starts once the budget is spent.
        """
        budget = [True, True, False]
        result = harness.climb(
            lambda rate: harness.Step(rate=rate, calls=rate, passed=True),
            [1, 2, 3],
            2,
            lambda: budget.pop(0),
            "spent",
        )
        self.assertEqual([s.rate for s in result.steps], [1, 2])
        self.assertEqual(result.stopped, "spent")


class CommandLineTests(TestCase):
    """
    The argparse helpers and the work directory.
    """

    def test_atLeast(self) -> None:
        convert = harness.atLeast(2, float)
        self.assertEqual(convert("2.5"), 2.5)
        self.assertRaises(argparse.ArgumentTypeError, convert, "1.5")
        self.assertRaises(ValueError, convert, "many")

    def test_workDirectory(self) -> None:
        """
        The work directory goes when the block ends, unless kept.
        """
        with harness.workDirectory("sipevents-test-", keep=False) as work:
            self.assertTrue(os.path.isdir(work))
        self.assertFalse(os.path.exists(work))
        with harness.workDirectory("sipevents-test-", keep=True) as kept:
            pass
        self.addCleanup(os.rmdir, kept)
        self.assertTrue(os.path.isdir(kept))


class AnswerNotifyTests(TestCase):
    def test_answer(self) -> None:
        """
        The 200 to a NOTIFY copies its Via, From, To, Call-ID and CSeq,
        compact forms too (RFC 3261 sections 7.3.3 and 8.2.6.2), and the
        NOTIFY's Call-ID comes with it.
        """
        notify = (
            b"NOTIFY sip:w@127.0.0.1:5070 SIP/2.0\r\n"
            b"v: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\n"
            b"From: <sip:r@127.0.0.1>;tag=a\r\n"
            b"t: <sip:w@127.0.0.1>;tag=b\r\n"
            b"i: abc@127.0.0.1\r\n"
            b"CSeq: 2 NOTIFY\r\n"
            b"Event: presence\r\n"
            b"Content-Length: 3\r\n\r\nxyz"
        )
        reply, callId = harness.answerNotify(notify)
        self.assertEqual(callId, b"abc@127.0.0.1")
        self.assertEqual(
            reply,
            b"SIP/2.0 200 OK\r\n"
            b"v: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\n"
            b"From: <sip:r@127.0.0.1>;tag=a\r\n"
            b"t: <sip:w@127.0.0.1>;tag=b\r\n"
            b"i: abc@127.0.0.1\r\n"
            b"CSeq: 2 NOTIFY\r\n"
            b"Content-Length: 0\r\n\r\n",
        )


class ServerTests(TestCase):
    """
    L{harness.twistdServer}: C{twistd -n sipevents} on loopback, as the
    benchmarks start it.
    """

    def setUp(self) -> None:
        self.work = self.mktemp()
        os.makedirs(self.work)

    def test_answersAndStops(self) -> None:
        """
        The server is up when the block starts: it answers an OPTIONS with
        200. Every call of SIPp's OPTIONS scenario succeeds against it, with
        the server's CPU time measured. When the block ends, its process
        has exited and its log shows no traceback.
        """
        with harness.twistdServer(
            self.work, transports=("udp",), store="memory"
        ) as server:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind((harness.LOOPBACK, 0))
                sock.settimeout(5)
                local = sock.getsockname()[1]
                sock.sendto(
                    harness.optionsProbe(server.port, local, 7),
                    (harness.LOOPBACK, server.port),
                )
                reply = sock.recv(65535)
            self.assertTrue(reply.startswith(b"SIP/2.0 200"), reply[:80])
            self.assertIn(b"CSeq: 7 OPTIONS", reply)
            step = harness.runScenario(
                requireSIPp(self),
                harness.OPTIONS_SCENARIO,
                server.port,
                rate=50,
                calls=5,
                work=self.work,
                tag="test",
                cpuPids=[server.pid],
            )
            # Whether 90% of the rate was achieved is a matter of timing,
            # which is not this test's: every call succeeded is.
            self.assertEqual(
                (step.exitCode, step.successful, step.failed), (0, 5, 0), step.note
            )
            self.assertIsNotNone(step.serverCpu)
            process = server.process
        self.assertIsNotNone(process.poll())
        self.assertEqual(server.logProblems, 0)
        self.assertTrue(os.path.exists(os.path.join(self.work, "twistd.log")))

    def test_neverAnswers(self) -> None:
        """
        A server that exits instead of answering raises
        L{harness.ServerFailed}, with the tail of its output.
        """
        with self.assertRaises(harness.ServerFailed) as caught:
            with harness.twistdServer(self.work, extra=["--no-such-option"]):
                self.fail("the block ran")
        self.assertIn("never answered OPTIONS", str(caught.exception))
        self.assertIn("no-such-option", str(caught.exception))


class MemoryBenchTests(TestCase):
    """
    The memory bench's in-process notifier really keeps the subscriptions
    it measures: a change to the notifier's collaborators (its transport
    layer contract, its store) that made every SUBSCRIBE fail would
    otherwise print nonsense per-subscription figures.
    """

    def test_everySubscriptionLive(self) -> None:
        """
        A small run ends with every subscription live and every NOTIFY
        answered; no byte figure is asserted.
        """
        result = script("memory").child("rss", 200, 200)
        self.assertEqual(result["live"], 200)
        self.assertGreaterEqual(result["responses"], 200)
