"""
OPTIONS load: the highest rate the sipevents server answers with no failed
call, measured with SIPp over UDP (or TCP) on loopback.

The script starts C{twistd -n sipevents --listen udp:PORT:interface=127.0.0.1}
(and a TCP listener on the same port) on a free loopback port, with its pid
file, log and default SQLite store in a temporary directory, waits until it
answers an OPTIONS, then runs SIPp (C{bench/options.xml}: one OPTIONS and its
200 per call) at rising rates.
Every step is bounded by C{-m} (calls) and C{-timeout}. SIPp's statistics file
(C{-trace_stat -stf}) gives successful and failed calls and retransmissions,
and its exit code must be 0.

A step passes when no call failed, SIPp exited 0, and SIPp achieved at least
90% of the target rate (past that point SIPp only queues calls, and the figure
would overstate the server). The climb stops at the first step that does not
pass, when the rates run out, or when the time budget is spent.

Only processes this script started are stopped, by PID: SIPp steps, and the
twistd server (SIGTERM, then SIGKILL after 10 s).

Run from the repository root::

    python -m bench.options_load                       # ~1-2 minutes
    python -m bench.options_load --rates 1000,2000 --step-seconds 3
    python -m bench.options_load --target 5060         # an already running server
    python -m bench.options_load --quick               # to see that it runs

The last line is machine-readable: C{BENCH_OPTIONS {json}}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict

from bench import harness

#: The smallest settings (C{--quick}): two short steps.
QUICK = {"rates": [200, 400], "step_seconds": 1.0, "refine": 0, "budget": 30.0}


def arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """
    The command line (see C{--help}).
    """
    parser = argparse.ArgumentParser(
        prog="python -m bench.options_load",
        description="Highest OPTIONS/s the sipevents server answers with no "
        "failed call (SIPp over loopback).",
    )
    harness.addClimbOptions(
        parser,
        rates="500,1000,2000,4000,8000,16000",
        budget=120.0,
        budgetText="total time budget in seconds",
    )
    parser.add_argument(
        "--transport", choices=["udp", "tcp"], default="udp", help="default udp"
    )
    parser.add_argument(
        "--target",
        type=harness.atLeast(1),
        metavar="PORT",
        help="load a server already listening on 127.0.0.1:PORT instead of "
        "starting twistd (e.g. another SIP server, for comparison)",
    )
    harness.addServerOptions(parser, store=None)
    return harness.parseArguments(parser, argv, QUICK)


def main(argv: Sequence[str] | None = None) -> int:
    args = arguments(argv)
    if not args.sipp:
        print("sipp not found (Debian: apt-get install sip-tester)", file=sys.stderr)
        return 2
    began = time.monotonic()
    with harness.workDirectory("sipevents-options-load-", args.keep) as work:
        if args.target:
            if not harness.waitUntilAnswering(args.target, time.monotonic() + 30):
                print(
                    f"server on {harness.LOOPBACK}:{args.target} never answered "
                    "OPTIONS",
                    file=sys.stderr,
                )
                return 2
            climbed = load(args, args.target, None, work, began)
            serverProblems = None
        else:
            try:
                with harness.twistdServer(
                    work,
                    args.port,
                    transports=("udp", "tcp"),
                    store=args.store,
                    extra=args.twistd_arg,
                ) as server:
                    climbed = load(args, server.port, server, work, began)
            except harness.ServerFailed as failure:
                print(failure, file=sys.stderr)
                return 2
            serverProblems = server.logProblems
    steps, stopReason = climbed
    return report(args, steps, stopReason, serverProblems, work, began)


def load(
    args: argparse.Namespace,
    port: int,
    server: harness.Server | None,
    work: str,
    began: float,
) -> tuple[list[harness.Step], str]:
    """
    Climb the rates against the server on C{port}; C{server} when this
    script started it (its CPU is then measured). Returns the steps and
    why the climb stopped.
    """
    pidNote = f"twistd pid {server.pid}" if server is not None else "external server"
    print(
        f"OPTIONS load over {args.transport.upper()} to {harness.LOOPBACK}:{port} "
        f"({pidNote}); {args.step_seconds:g} s per step, budget "
        f"{args.budget:g} s; work dir {work}"
    )

    def budgetLeft() -> bool:
        # A step takes its calls' time plus SIPp start-up and drain.
        elapsed = time.monotonic() - began
        return elapsed + args.step_seconds + 10 <= args.budget

    died: list[harness.Step] = []

    def runOne(rate: int) -> harness.Step | None:
        step = harness.runScenario(
            args.sipp,
            harness.OPTIONS_SCENARIO,
            port,
            rate,
            max(1, int(rate * args.step_seconds)),
            work,
            f"r{rate}",
            transport=args.transport,
            # Calls still unanswered after retransmissions give up by
            # themselves (-max_non_invite_retrans); this bounds the rest.
            timeout=int(args.step_seconds * 3 + 15),
            cpuPids=[server.pid] if server is not None else (),
        )
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
        if server is not None and server.process.poll() is not None:
            died.append(step)
            return None
        # Let the server work off its backlog between steps.
        time.sleep(1.0 if step.passed else 3.0)
        return step

    result = harness.climb(
        runOne,
        args.rates,
        args.refine,
        budgetLeft,
        f"time budget ({args.budget:g} s) spent",
    )
    stopReason = result.stopped
    if server is not None and server.process.poll() is not None:
        stopReason = f"server exited with {server.process.returncode}"
    return result.steps + died, stopReason


def report(
    args: argparse.Namespace,
    steps: list[harness.Step],
    stopReason: str,
    serverProblems: int | None,
    work: str,
    began: float,
) -> int:
    """
    Print the table, the headline and the machine-readable line; the exit
    code.
    """
    steps.sort(key=lambda s: s.rate)
    print()
    harness.printTable(steps)
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
