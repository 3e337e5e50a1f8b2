#!/usr/bin/env python
"""
SUBSCRIBE load: the highest rate of whole subscriptions the sipevents
notifier serves with no failed call, measured with SIPp over UDP on
loopback, and the same load against Kamailio's presence module when it is
installed, with the ratio of the two (issue 3 item 9).

One SIPp call (C{tests/sipp/subscribe_uac.xml}) is a subscriber's life:

    SUBSCRIBE -> 200, NOTIFY (active) -> 200,
    unSUBSCRIBE (in the dialog, Expires: 0) -> 200,
    NOTIFY (terminated;reason=timeout) -> 200

each call on its own resource (C{sip:benchN@127.0.0.1}). The script starts
C{twistd -n sipevents --store memory} on a free loopback port (the
in-memory store, like Kamailio's C{subs_db_mode=0}; C{--store} chooses
another), then runs SIPp at rising rates as C{bench/options_load.py} does:
a step passes when no call failed or went unfinished, SIPp exited 0 and
the achieved rate is at least 90% of the target. It stops climbing at the
first step that does not pass and bisects to the nearest 100/s (waiting
C{--recovery} seconds, past Timer F, after a step that did not pass, so
that the server's retransmissions to failed calls are over). Then it
does the same against Kamailio (C{tests/kamailio/kamailio.cfg}: one worker
process, everything in memory), and prints both figures and
C{ours / Kamailio}.

It also reports the servers' CPU time per successful call over the best
step (from /proc: twistd's process; Kamailio's main process and its
children), a per-core figure that does not depend on SIPp sharing the
machine.

Only processes this script started are stopped, by PID.

    python bench/subscribe.py                    # ~3-8 minutes
    python bench/subscribe.py --rates 500,1000,1500 --step-seconds 3
    python bench/subscribe.py --no-kamailio
    python bench/subscribe.py --store sqlite:bench.sqlite   # ours only

The last line is machine-readable: C{BENCH_SUBSCRIBE {json}}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict

from _kamailio import findKamailio, kamailioVersion, startKamailio
from _sipp import (
    LOOPBACK,
    SIPP_SCENARIOS,
    Climb,
    Step,
    climb,
    countProblems,
    freePort,
    printTable,
    runScenario,
    serverAnswers,
    startServer,
    stopProcess,
)

SCENARIO = os.path.join(SIPP_SCENARIOS, "subscribe_uac.xml")


def measure(
    name: str,
    sipp: str,
    port: int,
    server: subprocess.Popen[bytes],
    rates: list[int],
    args: argparse.Namespace,
    work: str,
    deadline: float,
) -> Climb:
    """
    Climb the rates against one server, measuring its CPU seconds in each
    step's C{serverCpu}.
    """

    def budgetLeft() -> bool:
        return time.monotonic() + args.step_seconds + 10 <= deadline

    def runStep(rate: int) -> Step | None:
        step = runScenario(
            sipp,
            SCENARIO,
            port,
            rate,
            max(1, int(rate * args.step_seconds)),
            work,
            f"{name}-r{rate}",
            transport="udp",
            cpuPids=[server.pid],
        )
        seconds = step.serverCpu or 0.0
        perCall = seconds / step.successful * 1000 if step.successful else 0.0
        print(
            f"  {name:>9} {rate:>6}/s: {step.successful}/{step.calls} ok, "
            f"{step.failed} failed, {step.retransmissions} retransmitted, "
            f"{step.achieved:,.0f}/s achieved, {perCall:.3f} ms CPU/call"
            + ("" if step.passed else f"  <- {step.note}"),
            flush=True,
        )
        if server.poll() is not None:
            return None
        # Let the server work off its backlog between steps. After an
        # overloaded step, wait past Timer F (32 s, RFC 3261 section
        # 17.1.2.2): until then the server still retransmits NOTIFYs to
        # calls SIPp has given up, and the next step would measure that.
        time.sleep(2.0 if step.passed else args.recovery)
        return step

    return climb(runStep, rates, args.refine, budgetLeft)


def summary(name: str, result: Climb | None) -> dict[str, object]:
    """
    The machine-readable figures of one server.
    """
    if result is None:
        return {"name": name, "measured": False}
    best = result.best
    perCall = (
        (best.serverCpu or 0.0) / best.successful * 1000
        if best is not None and best.successful
        else None
    )
    return {
        "name": name,
        "measured": True,
        "best": best.rate if best else 0,
        "bestAchieved": round(best.achieved, 1) if best else 0.0,
        "cpuMsPerCall": round(perCall, 4) if perCall is not None else None,
        "stopped": result.stopped,
        "steps": [
            asdict(s) | {"cpuSeconds": round(s.serverCpu or 0.0, 3)}
            for s in result.steps
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Highest SUBSCRIBE/NOTIFY/unSUBSCRIBE calls/s with no "
        "failed call: sipevents vs Kamailio (SIPp over loopback UDP)."
    )
    parser.add_argument(
        "--rates",
        default="250,500,1000,2000,4000,8000",
        help="comma-separated target rates in calls/s, tried in order "
        "(default 250,500,1000,2000,4000,8000)",
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
        default=240.0,
        help="time budget in seconds for each server; no step starts that "
        "would overrun it (default 240)",
    )
    parser.add_argument(
        "--recovery",
        type=float,
        default=35.0,
        help="seconds to wait after a step that did not pass, past Timer F "
        "(32 s), so that the server has stopped retransmitting to failed "
        "calls before the next step (default 35)",
    )
    parser.add_argument(
        "--refine",
        type=int,
        default=2,
        help="extra steps bisecting between the last rate that passed and "
        "the first that did not (default 2; 0 to disable)",
    )
    parser.add_argument(
        "--store",
        default="memory",
        help="the --store of twistd sipevents (default memory, as Kamailio "
        "here keeps its subscriptions in memory)",
    )
    parser.add_argument(
        "--twistd-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for the sipevents plugin (repeatable)",
    )
    parser.add_argument(
        "--no-kamailio",
        action="store_true",
        help="measure sipevents only, even if Kamailio is installed",
    )
    parser.add_argument(
        "--kamailio-only", action="store_true", help="measure Kamailio only"
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
    kamailio = None if args.no_kamailio else findKamailio()
    if args.kamailio_only and kamailio is None:
        print(
            "kamailio with its presence and sqlite modules is not installed "
            "(Debian: apt-get install kamailio kamailio-presence-modules "
            "kamailio-sqlite-modules)",
            file=sys.stderr,
        )
        return 2
    began = time.monotonic()
    work = tempfile.mkdtemp(prefix="sipevents-subscribe-")
    results: dict[str, Climb | None] = {}
    problems: int | None = None
    print(
        f"SUBSCRIBE load over UDP on {LOOPBACK}, {args.step_seconds:g} s per "
        f"step, budget {args.budget:g} s per server; work dir {work}"
    )

    def measureOn(name: str, port: int, server: subprocess.Popen[bytes]) -> Climb:
        deadline = time.monotonic() + args.budget
        return measure(name, args.sipp, port, server, rates, args, work, deadline)

    try:
        if not args.kamailio_only:
            port = freePort()
            server = startServer(
                port,
                work,
                args.twistd_arg,
                transports=("udp",),
                store=args.store,
                cwd=work,
            )
            try:
                if not serverAnswers(
                    port, server, "twistd sipevents", work, ("twistd.log", "twistd.out")
                ):
                    return 2
                print(f"sipevents: twistd pid {server.pid}, --store {args.store}")
                results["sipevents"] = measureOn("sipevents", port, server)
            finally:
                stopProcess(server)
                problems = countProblems(os.path.join(work, "twistd.log"))
        if kamailio is not None:
            port = freePort()
            server = startKamailio(port, work, found=kamailio)
            try:
                if not serverAnswers(port, server, "Kamailio", work, ("kamailio.log",)):
                    results["kamailio"] = None
                else:
                    print(f"kamailio: {kamailioVersion(kamailio[0])}, pid {server.pid}")
                    results["kamailio"] = measureOn("kamailio", port, server)
            finally:
                stopProcess(server)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    figures = {}
    for name, result in results.items():
        figures[name] = summary(name, result)
        if result is None:
            continue
        print()
        print(f"{name}:")
        printTable(sorted(result.steps, key=lambda s: s.rate))
        best = result.best
        if best is None:
            print(f"{name}: no rate passed with zero failed calls ({result.stopped})")
        else:
            perCall = figures[name]["cpuMsPerCall"]
            print(
                f"{name}: highest rate with zero failed calls: {best.rate} calls/s "
                f"target, {best.achieved:,.0f}/s achieved, {perCall} ms of "
                f"server CPU per call; stopped: {result.stopped}"
            )
    ours = figures.get("sipevents", {})
    theirs = figures.get("kamailio", {})
    ratio = None
    if ours.get("best") and theirs.get("best"):
        ratio = round(float(ours["best"]) / float(theirs["best"]), 3)  # type: ignore[arg-type]
        print(
            f"\nratio sipevents / Kamailio: {ratio:.2f} "
            f"({ours['best']} vs {theirs['best']} calls/s)"
        )
    elif kamailio is None and not args.no_kamailio:
        print(
            "\nKamailio is not installed: no ratio (Debian: apt-get install "
            "kamailio kamailio-presence-modules kamailio-sqlite-modules)"
        )
    if problems:
        print(
            f"WARNING: the sipevents log has {problems} traceback or "
            "unhandled-error lines (run with --keep to read twistd.log)"
        )
    if args.keep:
        print(f"logs kept in {work}")
    print(
        "BENCH_SUBSCRIBE "
        + json.dumps(
            {
                "stepSeconds": args.step_seconds,
                "store": args.store,
                "servers": figures,
                "ratio": ratio,
                "serverLogProblems": problems,
                "seconds": round(time.monotonic() - began, 1),
            },
            sort_keys=True,
        )
    )
    return 0 if any(f.get("best") for f in figures.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
