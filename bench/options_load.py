#!/usr/bin/env python
"""
OPTIONS load: the highest rate the sipevents server answers with no failed
call, measured with SIPp over UDP (or TCP) on loopback.

The script starts C{twistd -n sipevents --listen udp:PORT:interface=127.0.0.1}
(and a TCP listener on the same port) on a free loopback port, with its pidfile
and log in a temporary directory, waits until it answers an OPTIONS, then runs
SIPp (C{bench/options.xml}: one OPTIONS and its 200 per call) at rising rates.
Every step is bounded by C{-m} (calls) and C{-timeout}. SIPp's statistics file
(C{-trace_stat -stf}) gives successful and failed calls and retransmissions,
and its exit code must be 0.

A step passes when no call failed, SIPp exited 0, and SIPp achieved at least
90% of the target rate (past that point SIPp only queues calls, and the figure
would overstate the server). The climb stops at the first step that does not
pass, when the rates run out, or when the time budget is spent.

Only processes this script started are stopped, by PID: SIPp steps, and the
twistd server (SIGTERM, then SIGKILL after 10 s).

Run from anywhere::

    python bench/options_load.py                       # ~1-2 minutes
    python bench/options_load.py --rates 1000,2000 --step-seconds 3
    python bench/options_load.py --target 5060         # an already running server

The last line is machine-readable: C{BENCH_OPTIONS {json}}.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCENARIO = os.path.join(ROOT, "bench", "options.xml")
LOOPBACK = "127.0.0.1"

#: Clock ticks per second, for /proc/PID/stat CPU times.
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

# twisted/scripts/twistd.py has no "if __name__ == '__main__'" block, so
# "python -m twisted.scripts.twistd" would import it and exit 0 silently.
TWISTD = (
    "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"
)


@dataclass
class Step:
    """
    What one SIPp run at one target rate measured.

    @ivar rate: the target rate, calls/s.
    @ivar calls: calls SIPp was told to make (C{-m}).
    @ivar exitCode: SIPp's exit code (0: every call succeeded).
    @ivar successful: calls that got their 200.
    @ivar failed: calls SIPp counted as failed.
    @ivar retransmissions: OPTIONS retransmitted by SIPp (lost or late 200s).
    @ivar seconds: SIPp's elapsed time from its statistics.
    @ivar achieved: successful calls per second of SIPp's elapsed time.
    @ivar passed: no failure, exit 0, and C{achieved >= 0.9 * rate}.
    @ivar note: why a step did not pass.
    @ivar serverCpu: CPU seconds (user and system) the server used during
        the step, when this script started it and C{/proc} tells.
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


def freePort() -> int:
    """
    A loopback port free for both UDP and TCP right now.
    """
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((LOOPBACK, 0))
            port: int = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((LOOPBACK, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free loopback port")


def optionsProbe(port: int, n: int) -> bytes:
    """
    A minimal OPTIONS (RFC 3261 section 11) to see whether the server is up.
    """
    return (
        f"OPTIONS sip:probe@{LOOPBACK}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {LOOPBACK}:{{local}};branch=z9hG4bKprobe{n};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@{LOOPBACK}>;tag=probe{n}\r\n"
        f"To: <sip:probe@{LOOPBACK}:{port}>\r\n"
        f"Call-ID: probe{n}-{os.getpid()}@{LOOPBACK}\r\n"
        f"CSeq: {n} OPTIONS\r\n"
        "Content-Length: 0\r\n"
        "\r\n"
    ).encode("ascii")


def waitUntilAnswering(
    port: int, deadline: float, server: subprocess.Popen[bytes] | None
) -> bool:
    """
    Send OPTIONS over UDP until a 200 comes back or C{deadline} passes.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.settimeout(0.25)
        local = sock.getsockname()[1]
        n = 0
        while time.monotonic() < deadline:
            if server is not None and server.poll() is not None:
                return False
            n += 1
            data = optionsProbe(port, n).replace(b"{local}", str(local).encode())
            try:
                sock.sendto(data, (LOOPBACK, port))
                while True:
                    reply = sock.recv(65535)
                    if reply.startswith(b"SIP/2.0 200"):
                        return True
            except (TimeoutError, ConnectionRefusedError):
                continue
    return False


def startServer(
    port: int,
    work: str,
    extra: Sequence[str],
    transports: Sequence[str] = ("udp", "tcp"),
    store: str | None = None,
    cwd: str = ROOT,
) -> subprocess.Popen[bytes]:
    """
    Start C{twistd -n sipevents} on C{port} (loopback only), its pid file
    and log in C{work}.

    @param extra: further arguments for the sipevents plugin.
    @param transports: which of C{udp} and C{tcp} to listen on.
    @param store: the C{--store} option, or C{None} for the server's
        default (C{sqlite:sipevents.sqlite} in its working directory).
    @param cwd: the server's working directory. The checkout is put on
        C{PYTHONPATH}, so its C{twisted/plugins} dropins are found from
        anywhere.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    argv = [
        sys.executable,
        "-c",
        TWISTD,
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
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stopProcess(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """
    Stop one process we started, by its PID: SIGTERM, then SIGKILL.
    """
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


def processCpu(pid: int) -> tuple[int, float] | None:
    """
    The parent PID of process C{pid} and the user and system CPU seconds it
    has used so far, from C{/proc/PID/stat} (Linux); C{None} when unknown.
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            # The command name (field 2) may hold spaces; it ends with ")".
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS


def cpuSeconds(pid: int | None) -> float | None:
    """
    The user and system CPU seconds process C{pid} has used so far
    (L{processCpu}); C{None} when unknown.
    """
    stat = None if pid is None else processCpu(pid)
    return None if stat is None else stat[1]


def epoch(stamp: str) -> float:
    """
    SIPp writes times as "date<TAB>time<TAB>epoch"; the epoch is last.
    """
    return float(stamp.split("\t")[-1])


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


def runStep(
    sipp: str,
    port: int,
    rate: int,
    stepSeconds: float,
    transport: str,
    work: str,
) -> Step:
    """
    One SIPp run: C{rate} calls/s for about C{stepSeconds}.
    """
    calls = max(1, int(rate * stepSeconds))
    step = Step(rate=rate, calls=calls)
    tag = f"r{rate}"
    # Calls still unanswered after retransmissions give up by themselves
    # (-max_non_invite_retrans); the global timeout bounds everything else.
    timeout = int(stepSeconds * 3 + 15)
    runSipp(sipp, SCENARIO, port, step, transport, work, tag, timeout)
    return step


def runSipp(
    sipp: str,
    scenario: str,
    port: int,
    step: Step,
    transport: str,
    work: str,
    tag: str,
    timeout: float,
    extra: Sequence[str] = (),
) -> None:
    """
    Run SIPp with C{scenario} against 127.0.0.1:C{port}, C{step.calls}
    calls at C{step.rate} calls/s, with its statistics, errors and screen
    in C{work} under C{tag}; then fill and judge C{step} (L{judgeStep}).

    @param timeout: SIPp's global C{-timeout} in seconds.
    @param extra: further SIPp arguments (e.g. C{-s SERVICE}).
    """
    rate, calls = step.rate, step.calls
    statFile = os.path.join(work, f"stat-{tag}.csv")
    argv = [
        sipp,
        "-sf",
        scenario,
        *extra,
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
    ]
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
    judgeStep(step, statFile, calls, rate)


def judgeStep(step: Step, statFile: str, calls: int, rate: int) -> None:
    """
    Fill C{step} from SIPp's C{-trace_stat} file and decide whether it
    passed: every call successful, SIPp exited 0, and at least 90% of the
    target rate reached.
    """
    stats = readStats(statFile)
    if stats is None:
        step.note = step.note or "no SIPp statistics (see sipp output)"
        return
    step.successful = int(stats.get("SuccessfulCall(C)", 0))
    step.failed = int(stats.get("FailedCall(C)", 0))
    step.retransmissions = int(stats.get("Retransmissions(C)", 0))
    step.seconds = epoch(stats["CurrentTime"]) - epoch(stats["StartTime"])
    if step.seconds > 0:
        step.achieved = step.successful / step.seconds
    missing = calls - step.successful - step.failed
    if step.exitCode is None:
        # Killed after the timeout: the statistics stop where it hung.
        step.note = f"{step.note}: {step.successful} ok, {missing} unfinished"
    elif step.failed or missing:
        step.note = f"{step.failed} failed, {missing} unfinished"
    elif step.exitCode != 0:
        step.note = f"SIPp exit code {step.exitCode}"
    elif step.achieved < 0.9 * rate:
        step.note = "below 90% of target rate"
    else:
        step.passed = True


def countProblems(logPath: str) -> int:
    """
    How many lines of the server's log show a traceback or an unhandled
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


def printTable(steps: list[Step]) -> None:
    """
    A readable table of every step.
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Highest OPTIONS/s the sipevents server answers with no "
        "failed call (SIPp over loopback)."
    )
    parser.add_argument(
        "--rates",
        default="500,1000,2000,4000,8000,16000",
        help="comma-separated target rates in calls/s, tried in order "
        "(default 500,1000,2000,4000,8000,16000)",
    )
    parser.add_argument(
        "--step-seconds",
        type=float,
        default=5.0,
        help="duration of each step; calls = rate * this (default 5)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=120.0,
        help="total time budget in seconds; no step starts that would "
        "overrun it (default 120)",
    )
    parser.add_argument(
        "--refine",
        type=int,
        default=2,
        help="extra steps bisecting between the last rate that passed and "
        "the first that did not (default 2; 0 to disable)",
    )
    parser.add_argument(
        "--transport", choices=["udp", "tcp"], default="udp", help="default udp"
    )
    parser.add_argument(
        "--target",
        type=int,
        metavar="PORT",
        help="load a server already listening on 127.0.0.1:PORT instead of "
        "starting twistd (e.g. another SIP server, for comparison)",
    )
    parser.add_argument(
        "--twistd-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for the sipevents plugin (repeatable), "
        "e.g. --twistd-arg=--t1=0.5",
    )
    parser.add_argument("--sipp", default=shutil.which("sipp"), help="SIPp binary")
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (logs, CSVs)"
    )
    args = parser.parse_args(argv)

    if not args.sipp:
        print("sipp not found (Debian: apt-get install sip-tester)", file=sys.stderr)
        return 2
    rates = [int(r) for r in args.rates.split(",") if r.strip()]
    began = time.monotonic()
    work = tempfile.mkdtemp(prefix="sipevents-options-load-")
    server: subprocess.Popen[bytes] | None = None
    steps: list[Step] = []
    stopReason = "all rates passed"
    serverProblems: int | None = None
    try:
        if args.target:
            port = args.target
        else:
            port = freePort()
            server = startServer(port, work, args.twistd_arg)
        if not waitUntilAnswering(port, time.monotonic() + 20, server):
            print(
                f"server on {LOOPBACK}:{port} never answered OPTIONS", file=sys.stderr
            )
            log = os.path.join(work, "twistd.log")
            for name in (log, os.path.join(work, "twistd.out")):
                if os.path.exists(name):
                    with open(name, errors="replace") as f:
                        print(f"--- {name} (tail)", file=sys.stderr)
                        print("".join(f.readlines()[-30:]), file=sys.stderr)
            return 2
        serverPid: int | None = None
        if server is not None:
            with open(os.path.join(work, "twistd.pid")) as f:
                serverPid = int(f.read().strip())
            pidNote = f"twistd pid {serverPid}"
        else:
            pidNote = "external server"
        print(
            f"OPTIONS load over {args.transport.upper()} to {LOOPBACK}:{port} "
            f"({pidNote}); {args.step_seconds:g} s per step, budget "
            f"{args.budget:g} s; work dir {work}"
        )

        def budgetLeft() -> bool:
            # A step takes its calls' time plus SIPp start-up and drain.
            elapsed = time.monotonic() - began
            return elapsed + args.step_seconds + 10 <= args.budget

        died: list[Step] = []

        def runOne(rate: int) -> Step | None:
            cpuBefore = cpuSeconds(serverPid)
            step = runStep(
                args.sipp, port, rate, args.step_seconds, args.transport, work
            )
            cpuAfter = cpuSeconds(serverPid)
            if cpuBefore is not None and cpuAfter is not None:
                step.serverCpu = cpuAfter - cpuBefore
            print(
                f"  {rate:>6}/s: {step.successful}/{step.calls} ok, "
                f"{step.failed} failed, {step.retransmissions} retransmitted, "
                f"{step.achieved:,.0f}/s achieved"
                + (
                    ""
                    if step.serverMicroseconds is None
                    else f", server {step.serverMicroseconds:,.0f} us CPU/call"
                )
                + ("" if step.passed else f"  <- {step.note}"),
                flush=True,
            )
            if server is not None and server.poll() is not None:
                died.append(step)
                return None
            # Let the server work off its backlog between steps.
            time.sleep(1.0 if step.passed else 3.0)
            return step

        result = climb(
            runOne,
            rates,
            args.refine,
            budgetLeft,
            f"time budget ({args.budget:g} s) spent",
        )
        steps = result.steps + died
        stopReason = result.stopped
        if server is not None and server.poll() is not None:
            stopReason = f"server exited with {server.returncode}"
    finally:
        if server is not None:
            stopProcess(server)
            serverProblems = countProblems(os.path.join(work, "twistd.log"))
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    steps.sort(key=lambda s: s.rate)
    print()
    printTable(steps)
    print()
    best = max((s for s in steps if s.passed), key=lambda s: s.rate, default=None)
    if best is None:
        print("no rate passed with zero failed calls")
    else:
        print(
            f"highest rate with zero failed calls: {best.rate} OPTIONS/s target, "
            f"{best.achieved:,.0f}/s achieved ({best.successful} calls, "
            f"{best.retransmissions} retransmissions)"
        )
    print(f"stopped: {stopReason}")
    if serverProblems:
        print(
            f"WARNING: the server log has {serverProblems} traceback or "
            "unhandled-error lines (run with --keep to read twistd.log)"
        )
    if args.keep:
        print(f"logs kept in {work}")
    print(
        "BENCH_OPTIONS "
        + json.dumps(
            {
                "transport": args.transport,
                "stepSeconds": args.step_seconds,
                "best": best.rate if best else 0,
                "bestAchieved": round(best.achieved, 1) if best else 0.0,
                "stopped": stopReason,
                "serverLogProblems": serverProblems,
                "steps": [
                    {**asdict(s), "serverMicroseconds": s.serverMicroseconds}
                    for s in steps
                ],
                "seconds": round(time.monotonic() - began, 1),
            },
            sort_keys=True,
        )
    )
    return 0 if best is not None else 1


if __name__ == "__main__":
    sys.exit(main())
