"""
Shared by the notifier benchmarks (C{bench/subscribe.py}, C{bench/fanout.py}):
running a SIPp scenario at one rate, waiting for a server to answer, and
reading the CPU time of a process and its children.

The helpers of C{bench/options_load.py} (free ports, starting C{twistd
sipevents}, running and judging a SIPp step, climbing rates to the highest
one with no failed call, stopping a process by PID, the step table) are
imported from it rather than copied, so both benchmarks judge and climb the
same way.

Everything here talks to 127.0.0.1 only and stops only processes it was
handed, by PID.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence

BENCH = os.path.dirname(os.path.abspath(__file__))
if BENCH not in sys.path:
    sys.path.insert(0, BENCH)

from options_load import (  # noqa: E402
    LOOPBACK,
    ROOT,
    Climb,
    Step,
    climb,
    countProblems,
    freePort,
    printTable,
    processCpu,
    runSipp,
    startServer,
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
    "serverAnswers",
    "startServer",
    "stopProcess",
    "tailOf",
    "waitUntilAnswering",
]

#: The SIPp scenarios of the end-to-end tests, which the benchmarks reuse.
SIPP_SCENARIOS = os.path.join(ROOT, "tests", "sipp")


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
        pid = int(entry)
        stat = processCpu(pid)
        if stat is not None and (pid in wanted or stat[0] in wanted):
            total += stat[1]
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
) -> Step:
    """
    Run SIPp with C{scenario} against 127.0.0.1:C{port}: C{calls} calls at
    C{rate} calls/s, judged as C{bench/options_load.py} judges a step (no
    failed or unfinished call, exit code 0, at least 90% of the rate).

    @param tag: names the step's files in C{work} (statistics, errors,
        screen, output).
    @param service: SIPp's C{-s}, the user part of the resources.
    @param timeout: SIPp's global C{-timeout} in seconds; by default three
        times the step's expected length plus 15 s.
    @param cpuPids: processes whose CPU time to measure over the step, in
        C{step.serverCpu}.
    """
    step = Step(rate=rate, calls=calls)
    if timeout is None:
        timeout = calls / rate * 3 + 15
    cpuBefore = cpuSeconds(cpuPids)
    runSipp(sipp, scenario, port, step, transport, work, tag, timeout, ("-s", service))
    if cpuPids:
        # Shown by printTable as server microseconds per call.
        step.serverCpu = cpuSeconds(cpuPids) - cpuBefore
    return step


def serverAnswers(
    port: int,
    process: subprocess.Popen[bytes],
    name: str,
    work: str,
    logs: Sequence[str],
) -> bool:
    """
    Whether the server C{process} on C{port} answers an OPTIONS within 30
    seconds; if not, say so on stderr with the tails of its C{logs} (file
    names in C{work}).
    """
    if waitUntilAnswering(port, time.monotonic() + 30, process):
        return True
    print(f"{name} never answered OPTIONS:", file=sys.stderr)
    for log in logs:
        print(tailOf(os.path.join(work, log)), file=sys.stderr)
    return False
