"""
Shared by the notifier benchmarks (C{bench/subscribe.py}, C{bench/fanout.py},
C{bench/memory.py}): running a SIPp scenario at one rate, climbing rates to
the highest one with no failed call, starting C{twistd sipevents}, and
reading a process's CPU time.

The small helpers of C{bench/options_load.py} (free ports, SIPp statistics,
stopping a process by PID, the step table) are imported from it rather than
copied, so both benchmarks judge a step the same way.

Everything here talks to 127.0.0.1 only and stops only processes it was
handed, by PID.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

BENCH = os.path.dirname(os.path.abspath(__file__))
if BENCH not in sys.path:
    sys.path.insert(0, BENCH)

from options_load import (  # noqa: E402
    LOOPBACK,
    ROOT,
    TWISTD,
    Step,
    countProblems,
    freePort,
    printTable,
    runSipp,
    stopProcess,
    waitUntilAnswering,
)

__all__ = [
    "LOOPBACK",
    "ROOT",
    "SIPP_SCENARIOS",
    "Climb",
    "Step",
    "climb",
    "countProblems",
    "cpuSeconds",
    "freePort",
    "printTable",
    "runScenario",
    "startTwistd",
    "stopProcess",
    "tailOf",
    "waitUntilAnswering",
]

#: The SIPp scenarios of the end-to-end tests, which the benchmarks reuse.
SIPP_SCENARIOS = os.path.join(ROOT, "tests", "sipp")

#: Clock ticks per second, for /proc/PID/stat CPU times.
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpuSeconds(pids: Sequence[int]) -> float:
    """
    User plus system CPU seconds used so far by C{pids} and, for each, its
    live child processes (Kamailio runs workers under its main process;
    twistd runs one). Linux only; 0.0 where /proc cannot be read.
    """
    wanted = set(pids)
    total = 0.0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0.0
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name (field 2) may hold spaces; fields after it are
        # fixed: state, ppid, ... utime (14), stime (15).
        fields = stat[stat.rfind(")") + 2 :].split()
        pid, ppid = int(entry), int(fields[1])
        if pid in wanted or ppid in wanted:
            total += (int(fields[11]) + int(fields[12])) / _TICKS
    return total


def tailOf(path: str, lines: int = 30) -> str:
    """
    The last C{lines} lines of a log file, or a note that there is none.
    """
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except FileNotFoundError:
        return f"({path} does not exist)\n"


def startTwistd(
    port: int,
    work: str,
    extra: Sequence[str] = (),
    transports: Sequence[str] = ("udp", "tcp"),
    store: str | None = "memory",
    cwd: str | None = None,
) -> subprocess.Popen[bytes]:
    """
    Start C{twistd -n sipevents} listening on C{port} of 127.0.0.1, its pid
    file and log in C{work}.

    @param extra: further arguments for the sipevents plugin.
    @param transports: which of C{udp} and C{tcp} to listen on.
    @param store: the C{--store} option, or C{None} for the server's
        default (C{sqlite:sipevents.sqlite} in its working directory).
    @param cwd: the server's working directory; C{work} by default. The
        checkout is put on C{PYTHONPATH}, so its C{twisted/plugins} dropins
        are found from anywhere.
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
    argv += list(extra)
    with open(os.path.join(work, "twistd.out"), "wb") as out:
        return subprocess.Popen(
            argv,
            cwd=work if cwd is None else cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def runScenario(
    sipp: str,
    scenario: str,
    port: int,
    rate: int,
    calls: int,
    work: str,
    tag: str,
    transport: str = "udp",
    service: str = "bench",
    timeout: float | None = None,
    cpuPids: Sequence[int] = (),
) -> tuple[Step, float]:
    """
    Run SIPp with C{scenario} against 127.0.0.1:C{port}: C{calls} calls at
    C{rate} calls/s, judged as C{bench/options_load.py} judges a step (no
    failed or unfinished call, exit code 0, at least 90% of the rate).

    @param tag: names the step's files in C{work} (statistics, errors,
        screen, output).
    @param service: SIPp's C{-s}, the user part of the resources.
    @param timeout: SIPp's global C{-timeout} in seconds; by default three
        times the step's expected length plus 15 s.
    @param cpuPids: processes whose CPU time to measure over the step.
    @return: the step, and the CPU seconds C{cpuPids} used during it.
    """
    step = Step(rate=rate, calls=calls)
    if timeout is None:
        timeout = calls / rate * 3 + 15
    cpuBefore = cpuSeconds(cpuPids)
    runSipp(sipp, scenario, port, step, transport, work, tag, timeout, ("-s", service))
    cpu = cpuSeconds(cpuPids) - cpuBefore
    if cpuPids:
        # Shown by printTable as server microseconds per call.
        step.serverCpu = cpu
    return step, cpu


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
) -> Climb:
    """
    Try C{rates} in order until one does not pass, then bisect between the
    last rate that passed and the first that did not, to the nearest
    100/s, C{refine} more times; as C{bench/options_load.py} does.

    @param runStep: runs one step at a rate; C{None} when the server died.
    @param budgetLeft: whether another step fits in the time budget.
    """
    steps: list[Step] = []
    stopped = "all rates passed"
    lastPass: int | None = None
    failedAt: int | None = None
    for rate in rates:
        if not budgetLeft():
            stopped = "time budget spent"
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


def waitForServer(
    port: int, seconds: float, process: subprocess.Popen[bytes] | None
) -> bool:
    """
    Whether the server on C{port} answers an OPTIONS within C{seconds}.
    """
    return waitUntilAnswering(port, time.monotonic() + seconds, process)
