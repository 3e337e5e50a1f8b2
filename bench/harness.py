"""
What the benchmarks share: the servers they measure, the SIPp runner, the
CPU time read from C{/proc}, and their common command-line options.

Servers. L{twistdServer} starts C{twistd -n sipevents} on a loopback port,
waits until it answers an OPTIONS, and stops it by its PID when the block
ends; L{kamailioServer} does the same with Kamailio's presence server,
the foreign notifier the benchmarks compare sipevents with. Both give a
L{Server}. Only processes started here are ever stopped, by PID.

The Kamailio side is imported from C{tests/kamailio/} rather than copied:
that launcher sits beside the configuration it runs
(C{tests/kamailio/kamailio.cfg}) and is the one the interop tests use, so
the benchmarks load the very Kamailio that the tests check our subscriber
against, and a change to its command line is made once. It imports only
the standard library, and C{python -m bench.NAME} run from the repository
root has that root on C{sys.path}, so C{tests.kamailio} imports as
C{bench} does. Only the load run's two settings are added here
(L{KAMAILIO_SHARED_MEMORY_MB}, L{KAMAILIO_PUBLICATION_CACHE}).

SIPp. L{runScenario} runs one scenario at one rate for a bounded number of
calls and judges the step (L{judgeStep}); L{climb} climbs rates to the
highest one that passes and bisects the gap above it. Every SIPp benchmark
judges and climbs this way.

Nothing here imports sipevents: the in-process benchmarks import it
themselves, and a script that measures a server's memory or CPU counts
nothing of this module's.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sipevents.testing import freePort, htdigestLine, stopProcess
from tests.kamailio import (
    MISSING as KAMAILIO_MISSING,
)
from tests.kamailio import (
    findKamailio,
    kamailioVersion,
    startKamailio,
    stopKamailio,
)

__all__ = [
    "KAMAILIO_MISSING",
    "LOOPBACK",
    "OPTIONS_SCENARIO",
    "ROOT",
    "SIPP_SCENARIOS",
    "Climb",
    "Server",
    "ServerFailed",
    "Step",
    "addClimbOptions",
    "addKamailioOptions",
    "addServerOptions",
    "answerNotify",
    "atLeast",
    "climb",
    "countProblems",
    "cpuSeconds",
    "findKamailio",
    "freePort",
    "htdigestLine",
    "kamailioServer",
    "kamailioVersion",
    "parseArguments",
    "parseStat",
    "printTable",
    "processCpu",
    "residentBytes",
    "runScenario",
    "twistdServer",
    "waitUntilAnswering",
    "workDirectory",
]

#: The repository root: the benchmarks measure this checkout.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOOPBACK = "127.0.0.1"

#: One OPTIONS and its 200 per call (C{bench/options.xml}).
OPTIONS_SCENARIO = os.path.join(ROOT, "bench", "options.xml")
#: The SIPp scenarios of the end-to-end tests, which the benchmarks reuse.
SIPP_SCENARIOS = os.path.join(ROOT, "tests", "sipp")

#: Kamailio's shared memory for a load run (C{-m}): its default 64 MB runs
#: out, since every subscription and transaction lives there.
KAMAILIO_SHARED_MEMORY_MB = 1024
#: Publications in memory only (C{publ_cache=2}), like C{twistd sipevents
#: --store memory}: a like-for-like comparison. It costs Kamailio the body
#: of a new subscription's first NOTIFY, which no benchmark needs (see
#: C{tests/kamailio/kamailio.cfg}).
KAMAILIO_PUBLICATION_CACHE = 2

# twisted/scripts/twistd.py has no "if __name__ == '__main__'" block, so
# "python -m twisted.scripts.twistd" would import it and exit 0 silently.
_TWISTD = (
    "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"
)

#: Clock ticks per second, the unit of CPU times in /proc/PID/stat.
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# Command line.


def atLeast(minimum: float, kind: Callable[[str], Any] = int) -> Callable[[str], Any]:
    """
    An argparse C{type}: C{kind} of the text, refused below C{minimum}, so
    that no bound of a benchmark can be set to nothing or less.
    """

    def convert(text: str) -> Any:
        value = kind(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}")
        return value

    convert.__name__ = getattr(kind, "__name__", "value")
    return convert


def rateList(text: str) -> list[int]:
    """
    An argparse C{type}: comma-separated rates in calls/s, each at least 1.
    """
    try:
        rates = [int(r) for r in text.split(",") if r.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("comma-separated integers") from None
    if not rates or min(rates) < 1:
        raise argparse.ArgumentTypeError("at least one rate, each at least 1")
    return rates


def addClimbOptions(
    parser: argparse.ArgumentParser, rates: str, budget: float, budgetText: str
) -> None:
    """
    The options of a SIPp climb: C{--rates}, C{--step-seconds},
    C{--budget}, C{--refine} and C{--sipp}.

    @param rates: the default rates, comma-separated.
    @param budget: the default time budget in seconds.
    @param budgetText: what the budget bounds, for the help.
    """
    parser.add_argument(
        "--rates",
        type=rateList,
        default=rateList(rates),
        help=f"comma-separated target rates in calls/s, tried in order "
        f"(default {rates})",
    )
    parser.add_argument(
        "--step-seconds",
        type=atLeast(0.1, float),
        default=5.0,
        help="duration of each step; calls = rate * this (default 5)",
    )
    parser.add_argument(
        "--budget",
        type=atLeast(1.0, float),
        default=budget,
        help=f"{budgetText}; no step starts that would overrun it (default {budget:g})",
    )
    parser.add_argument(
        "--refine",
        type=atLeast(0),
        default=2,
        help="extra steps bisecting between the last rate that passed and "
        "the first that did not (default 2; 0 to disable)",
    )
    parser.add_argument("--sipp", default=shutil.which("sipp"), help="SIPp binary")


def addServerOptions(parser: argparse.ArgumentParser, store: str | None) -> None:
    """
    The options of a benchmark that starts its servers: C{--port},
    C{--store}, C{--twistd-arg} and C{--keep}.

    @param store: the default C{--store} of C{twistd sipevents}, or
        C{None} for the server's own default.
    """
    parser.add_argument(
        "--port",
        type=atLeast(1),
        default=None,
        help="loopback port of the server(s) it starts, one after the other "
        "(default: a free port)",
    )
    parser.add_argument(
        "--store",
        default=store,
        help="the --store of twistd sipevents (default "
        + (
            f"{store}, as Kamailio here keeps its subscriptions in memory)"
            if store
            else "the server's own, SQLite in the work directory)"
        ),
    )
    parser.add_argument(
        "--twistd-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for the sipevents plugin (repeatable), "
        "e.g. --twistd-arg=--t1=0.5",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (logs, CSVs)"
    )


def addKamailioOptions(parser: argparse.ArgumentParser) -> None:
    """
    C{--no-kamailio} and C{--kamailio-only}, for a benchmark that measures
    Kamailio too when it is installed.
    """
    parser.add_argument(
        "--no-kamailio",
        action="store_true",
        help="measure sipevents only, even if Kamailio is installed",
    )
    parser.add_argument(
        "--kamailio-only", action="store_true", help="measure Kamailio only"
    )


def parseArguments(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    quick: Mapping[str, Any],
) -> argparse.Namespace:
    """
    Add C{--quick} to C{parser} and parse C{argv}. With C{--quick}, the
    values in C{quick} (by destination) replace the defaults, a benchmark's
    smallest settings, to see that it runs; an option given on the command
    line still wins.
    """
    settings = ", ".join(
        f"--{name.replace('_', '-')} {_shown(value)}" for name, value in quick.items()
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smallest settings, a few seconds ({settings}): to see that it "
        "runs, not for figures",
    )
    args = parser.parse_args(argv)
    if args.quick:
        parser.set_defaults(**quick)
        args = parser.parse_args(argv)
    return args


def _shown(value: object) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


@contextmanager
def workDirectory(prefix: str, keep: bool) -> Iterator[str]:
    """
    A fresh temporary directory for logs, pid files and CSVs, removed when
    the block ends unless C{keep}.
    """
    work = tempfile.mkdtemp(prefix=prefix)
    try:
        yield work
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


# CPU and memory, from /proc (Linux).


def parseStat(text: str) -> tuple[int, float]:
    """
    The parent PID and the user plus system CPU seconds in the text of a
    C{/proc/PID/stat} file.
    """
    # The command name (field 2) may hold spaces and parentheses; it ends
    # at the last ")".
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS


def processCpu(pid: int) -> tuple[int, float] | None:
    """
    The parent PID of process C{pid} and the CPU seconds it has used so
    far (L{parseStat}); C{None} when C{/proc} does not tell.
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            return parseStat(f.read())
    except (OSError, IndexError, ValueError):
        return None


def cpuSeconds(pids: Sequence[int]) -> float:
    """
    User plus system CPU seconds used so far by C{pids} and, for each, its
    live child processes (Kamailio runs workers under its main process);
    0.0 where C{/proc} cannot be read.
    """
    wanted = set(pids)
    if not wanted:
        return 0.0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0.0
    total = 0.0
    for entry in entries:
        if not entry.isdigit():
            continue
        pid = int(entry)
        stat = processCpu(pid)
        if stat is not None and (pid in wanted or stat[0] in wanted):
            total += stat[1]
    return total


def residentBytes() -> int:
    """
    The resident set size of this process in bytes, from
    C{/proc/self/statm}.
    """
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


# Servers.


def optionsProbe(port: int, local: int, n: int) -> bytes:
    """
    A minimal OPTIONS (RFC 3261 section 11) from 127.0.0.1:C{local} to
    see whether the server on C{port} is up: the C{n}-th from that port.
    Its branch, tag and Call-ID name the port, so that probes from two
    sockets are never taken for one request merged (RFC 3261 section
    8.2.2.2).
    """
    unique = f"{local}x{n}"
    return (
        f"OPTIONS sip:probe@{LOOPBACK}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {LOOPBACK}:{local};branch=z9hG4bKprobe{unique};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@{LOOPBACK}>;tag=probe{unique}\r\n"
        f"To: <sip:probe@{LOOPBACK}:{port}>\r\n"
        f"Call-ID: probe{unique}-{os.getpid()}@{LOOPBACK}\r\n"
        f"CSeq: {n} OPTIONS\r\n"
        "Content-Length: 0\r\n"
        "\r\n"
    ).encode("ascii")


def waitUntilAnswering(
    port: int, deadline: float, process: subprocess.Popen[bytes] | None = None
) -> bool:
    """
    Send OPTIONS over UDP to 127.0.0.1:C{port} until a 200 comes back
    (C{True}), C{deadline} (on C{time.monotonic}) passes or C{process}
    exits (C{False}).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.settimeout(0.25)
        local = sock.getsockname()[1]
        n = 0
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                return False
            n += 1
            try:
                sock.sendto(optionsProbe(port, local, n), (LOOPBACK, port))
                while True:
                    if sock.recv(65535).startswith(b"SIP/2.0 200"):
                        return True
            except (TimeoutError, ConnectionRefusedError):
                continue
    return False


def tailOf(path: str, lines: int = 30) -> str:
    """
    The last C{lines} lines of a log file, or a note that there is none.
    """
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except FileNotFoundError:
        return f"({path} does not exist)\n"


def countProblems(logPath: str) -> int:
    """
    How many lines of a server's log show a traceback or an unhandled
    error: the server must never let one reach the reactor.
    """
    count = 0
    try:
        with open(logPath, errors="replace") as f:
            for line in f:
                if "Traceback (most recent call last)" in line or "Unhandled" in line:
                    count += 1
    except FileNotFoundError:
        pass
    return count


class ServerFailed(Exception):
    """
    A server never answered OPTIONS; the message has the tails of its logs.
    """


@dataclass
class Server:
    """
    A server started for a benchmark, listening on 127.0.0.1:C{port}.

    @ivar name: how the output names it.
    @ivar process: the process started; its PID is the one whose CPU a
        benchmark reads (with its children, L{cpuSeconds}).
    @ivar work: the directory of its logs.
    @ivar logs: its log files' names in C{work}.
    @ivar logProblems: traceback or unhandled-error lines in its log
        (L{countProblems}), once it has stopped; C{None} before, or when
        its log is not ours to read.
    """

    name: str
    port: int
    process: subprocess.Popen[bytes]
    work: str
    logs: tuple[str, ...]
    logProblems: int | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def waitUntilAnswering(self, seconds: float = 30.0) -> None:
        """
        Wait until it answers an OPTIONS with 200.

        @raise ServerFailed: when it does not within C{seconds}, or exits.
        """
        if waitUntilAnswering(self.port, time.monotonic() + seconds, self.process):
            return
        tails = "".join(
            f"--- {name} (tail)\n{tailOf(os.path.join(self.work, name))}"
            for name in self.logs
        )
        raise ServerFailed(
            f"{self.name} on {LOOPBACK}:{self.port} never answered OPTIONS\n{tails}"
        )


@contextmanager
def twistdServer(
    work: str,
    port: int | None = None,
    transports: Sequence[str] = ("udp",),
    store: str | None = None,
    extra: Sequence[str] = (),
) -> Iterator[Server]:
    """
    C{twistd -n sipevents} on 127.0.0.1 for the duration of the block,
    with its pid file and log in C{work}, which is also its working
    directory (the default SQLite store goes there). It runs through
    C{sys.executable} with the checkout first on C{PYTHONPATH}, so the
    sipevents and C{twisted/plugins} drop-in of this checkout are the ones
    measured.

    @param port: its port; by default a free one.
    @param transports: which of C{udp} and C{tcp} it listens on.
    @param store: its C{--store}, or C{None} for its default.
    @param extra: further arguments for the sipevents plugin.
    @raise ServerFailed: when it never answers an OPTIONS.
    """
    # The server runs in the work directory: its paths must not be relative.
    work = os.path.abspath(work)
    port = port or freePort()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    argv = [
        sys.executable,
        "-c",
        _TWISTD,
        "-n",
        "--pidfile",
        os.path.join(work, "twistd.pid"),
        "--logfile",
        os.path.join(work, "twistd.log"),
        "sipevents",
    ]
    for transport in transports:
        argv += ["--listen", f"{transport}:{port}:interface={LOOPBACK}"]
    if store is not None:
        argv += ["--store", store]
    argv += extra
    with open(os.path.join(work, "twistd.out"), "wb") as out:
        process = subprocess.Popen(
            argv,
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(
        "twistd sipevents", port, process, work, ("twistd.log", "twistd.out")
    )
    try:
        server.waitUntilAnswering()
        yield server
    finally:
        stopProcess(process)
        server.logProblems = countProblems(os.path.join(work, "twistd.log"))


@contextmanager
def kamailioServer(
    work: str,
    found: tuple[str, str, str] | None = None,
    port: int | None = None,
) -> Iterator[Server]:
    """
    Kamailio's presence server on 127.0.0.1 for the duration of the block
    (C{tests.kamailio.startKamailio}, with the load run's shared memory
    and publications in memory only), its log and database in C{work}.

    @param found: what L{findKamailio} returned; looked up when C{None}.
    @param port: its port; by default a free one.
    @raise RuntimeError: when Kamailio is not installed.
    @raise ServerFailed: when it never answers an OPTIONS.
    """
    work = os.path.abspath(work)
    port = port or freePort()
    process = startKamailio(
        port,
        work,
        sharedMemoryMB=KAMAILIO_SHARED_MEMORY_MB,
        found=found,
        publicationCache=KAMAILIO_PUBLICATION_CACHE,
    )
    server = Server("Kamailio", port, process, work, ("kamailio.log",))
    try:
        server.waitUntilAnswering()
        yield server
    finally:
        stopKamailio(process)


# SIPp.


@dataclass
class Step:
    """
    What one SIPp run at one target rate measured.

    @ivar rate: the target rate, calls/s.
    @ivar calls: calls SIPp was told to make (C{-m}).
    @ivar exitCode: SIPp's exit code (0: every call succeeded); C{None}
        when it had to be stopped.
    @ivar successful: calls that succeeded.
    @ivar failed: calls SIPp counted as failed.
    @ivar retransmissions: requests SIPp retransmitted (lost or late
        answers).
    @ivar seconds: SIPp's elapsed time from its statistics.
    @ivar achieved: successful calls per second of SIPp's elapsed time.
    @ivar passed: no failed or unfinished call, exit 0, and C{achieved >=
        0.9 * rate}.
    @ivar note: why a step did not pass.
    @ivar serverCpu: CPU seconds (user and system) the server used during
        the step, when known.
    """

    rate: int
    calls: int
    exitCode: int | None = None
    successful: int = 0
    failed: int = 0
    retransmissions: int = 0
    seconds: float = 0.0
    achieved: float = 0.0
    passed: bool = False
    note: str = ""
    serverCpu: float | None = None

    @property
    def serverMicroseconds(self) -> float | None:
        """Server CPU microseconds per successful call, when known."""
        if self.serverCpu is None or not self.successful:
            return None
        return self.serverCpu / self.successful * 1e6


def readStats(path: str) -> dict[str, str] | None:
    """
    The last row of a SIPp C{-trace_stat} CSV (";"-separated, header first),
    keyed by column name; C{None} if SIPp wrote none.
    """
    try:
        with open(path, newline="") as f:
            rows = [row for row in csv.reader(f, delimiter=";") if row]
    except FileNotFoundError:
        return None
    if len(rows) < 2:
        return None
    return dict(zip(rows[0], rows[-1], strict=False))


def _epoch(stamp: str) -> float:
    # SIPp writes times as "date<TAB>time<TAB>epoch".
    return float(stamp.split("\t")[-1])


def judgeStep(step: Step, statFile: str) -> None:
    """
    Fill C{step} from SIPp's C{-trace_stat} file and decide whether it
    passed: every call successful, SIPp exited 0, and at least 90% of the
    target rate reached (beyond that SIPp only queues calls, and the
    figure would overstate the server).
    """
    stats = readStats(statFile)
    if stats is None:
        step.note = step.note or "no SIPp statistics (see sipp output)"
        return
    step.successful = int(stats.get("SuccessfulCall(C)", 0))
    step.failed = int(stats.get("FailedCall(C)", 0))
    step.retransmissions = int(stats.get("Retransmissions(C)", 0))
    step.seconds = _epoch(stats["CurrentTime"]) - _epoch(stats["StartTime"])
    if step.seconds > 0:
        step.achieved = step.successful / step.seconds
    missing = step.calls - step.successful - step.failed
    if step.exitCode is None:
        # Killed after the timeout: the statistics stop where it hung.
        step.note = f"{step.note}: {step.successful} ok, {missing} unfinished"
    elif step.failed or missing:
        step.note = f"{step.failed} failed, {missing} unfinished"
    elif step.exitCode != 0:
        step.note = f"SIPp exit code {step.exitCode}"
    elif step.achieved < 0.9 * step.rate:
        step.note = "below 90% of target rate"
    else:
        step.passed = True


def runScenario(
    sipp: str,
    scenario: str,
    port: int,
    rate: int,
    calls: int,
    work: str,
    tag: str,
    transport: str = "udp",
    service: str | None = None,
    timeout: float | None = None,
    cpuPids: Sequence[int] = (),
    extra: Sequence[str] = (),
) -> Step:
    """
    Run SIPp with C{scenario} against 127.0.0.1:C{port}: C{calls} calls
    at C{rate} calls/s, bound to 127.0.0.1 on a free port, then judge the
    step (L{judgeStep}).

    @param tag: names the step's files in C{work} (statistics, errors,
        screen, output).
    @param service: SIPp's C{-s}, the user part of the request URIs.
    @param timeout: SIPp's global C{-timeout} in seconds; by default three
        times the step's expected length plus 15 s. Calls still unanswered
        after their retransmissions give up by themselves; this bounds
        everything else.
    @param cpuPids: processes whose CPU time (with their children's) to
        measure over the step, in C{step.serverCpu}.
    @param extra: further SIPp arguments, e.g. C{-au} and C{-ap} for a
        scenario that authenticates.
    """
    step = Step(rate=rate, calls=calls)
    if timeout is None:
        timeout = calls / rate * 3 + 15
    # SIPp runs in the work directory: its paths must not be relative.
    work = os.path.abspath(work)
    statFile = os.path.join(work, f"stat-{tag}.csv")
    argv = [
        sipp,
        "-sf",
        scenario,
        *(("-s", service) if service is not None else ()),
        f"{LOOPBACK}:{port}",
        "-t",
        "u1" if transport == "udp" else "t1",
        "-i",
        LOOPBACK,
        "-p",
        str(freePort()),
        "-r",
        str(rate),
        "-rp",
        "1000",
        "-m",
        str(calls),
        "-timeout",
        f"{int(timeout)}s",
        "-timeout_error",
        "-nostdin",
        "-trace_stat",
        "-stf",
        statFile,
        "-trace_err",
        "-error_file",
        os.path.join(work, f"errors-{tag}.log"),
        "-trace_screen",
        "-screen_file",
        os.path.join(work, f"screen-{tag}.log"),
        "-max_log_size",
        "1000000",
        *extra,
    ]
    cpuBefore = cpuSeconds(cpuPids)
    with open(os.path.join(work, f"sipp-{tag}.out"), "wb") as out:
        process = subprocess.Popen(
            argv, cwd=work, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
        try:
            step.exitCode = process.wait(timeout + 15)
        except subprocess.TimeoutExpired:
            step.note = "SIPp did not stop in time"
        finally:
            stopProcess(process, grace=2.0)
    if cpuPids:
        step.serverCpu = cpuSeconds(cpuPids) - cpuBefore
    judgeStep(step, statFile)
    return step


@dataclass
class Climb:
    """
    The outcome of L{climb}: every step in the order run, why the climb
    stopped, and the best step that passed (or C{None}).
    """

    steps: list[Step]
    stopped: str
    best: Step | None


def climb(
    runStep: Callable[[int], Step | None],
    rates: Sequence[int],
    refine: int,
    budgetLeft: Callable[[], bool],
    budgetSpent: str = "time budget spent",
) -> Climb:
    """
    Try C{rates} in order until one does not pass, then bisect between the
    last rate that passed and the first that did not, to the nearest
    100/s, C{refine} more times: the doubling ladder alone is coarse.

    @param runStep: runs one step at a rate; C{None} when the server died.
    @param budgetLeft: whether another step fits in the time budget.
    @param budgetSpent: why the climb stopped when it did not.
    """
    steps: list[Step] = []
    stopped = "all rates passed"
    lastPass: int | None = None
    failedAt: int | None = None
    for rate in rates:
        if not budgetLeft():
            stopped = budgetSpent
            break
        step = runStep(rate)
        if step is None:
            stopped = "server exited"
            break
        steps.append(step)
        if not step.passed:
            stopped = f"{rate}/s did not pass: {step.note}"
            failedAt = rate
            break
        lastPass = rate
    if lastPass is not None and failedAt is not None:
        low, high = lastPass, failedAt
        for _ in range(refine):
            mid = int(round((low + high) / 2, -2))
            if not low < mid < high or not budgetLeft():
                break
            step = runStep(mid)
            if step is None:
                stopped = "server exited"
                break
            steps.append(step)
            if step.passed:
                low = mid
            else:
                high = mid
    best = max((s for s in steps if s.passed), key=lambda s: s.rate, default=None)
    return Climb(steps, stopped, best)


def printTable(steps: Sequence[Step]) -> None:
    """
    A readable table of every step; C{srv us/call} is the server's CPU
    microseconds per successful call.
    """
    header = (
        f"{'target/s':>9}{'calls':>8}{'ok':>8}{'failed':>8}{'retrans':>9}"
        f"{'achieved/s':>12}{'srv us/call':>12}{'exit':>6}  result"
    )
    print(header)
    print("-" * (len(header) + 20))
    for s in steps:
        result = "pass" if s.passed else f"FAIL: {s.note}"
        cpu = s.serverMicroseconds
        print(
            f"{s.rate:>9}{s.calls:>8}{s.successful:>8}{s.failed:>8}"
            f"{s.retransmissions:>9}{s.achieved:>12,.0f}"
            f"{'-' if cpu is None else f'{cpu:,.0f}':>12}"
            f"{'-' if s.exitCode is None else s.exitCode:>6}  {result}"
        )


# Subscribers.

#: Header names (full and compact, RFC 3261 section 7.3.3) copied from a
#: request into its response (RFC 3261 section 8.2.6.2), lower-cased with
#: the colon.
_COPIED = (b"via:", b"v:", b"from:", b"f:", b"to:", b"t:", b"call-id:", b"i:", b"cseq:")
_CALL_ID = (b"call-id:", b"i:")


def answerNotify(notify: bytes) -> tuple[bytes, bytes]:
    """
    The 200 a subscriber sends to C{notify} (its Via, From, To, Call-ID and
    CSeq copied, as SIPp's C{[last_*]} fields do), and the NOTIFY's
    Call-ID, found in the same pass.
    """
    head = notify.split(b"\r\n\r\n", 1)[0]
    copied = []
    callId = b""
    for line in head.split(b"\r\n")[1:]:
        lower = line[:9].lower()
        if lower.startswith(_COPIED):
            copied.append(line)
            if lower.startswith(_CALL_ID):
                callId = line.split(b":", 1)[1].strip()
    return (
        b"SIP/2.0 200 OK\r\n" + b"\r\n".join(copied) + b"\r\nContent-Length: 0\r\n\r\n"
    ), callId
