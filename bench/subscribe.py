"""
SUBSCRIBE load: the highest rate of whole subscriptions the sipevents
notifier serves with no failed call, measured with SIPp over UDP on
loopback, and the same load against Kamailio's presence module when it is
installed, with the ratio of the two.

One SIPp call (C{tests/sipp/subscribe_uac.xml}) is a subscriber's life:

    SUBSCRIBE -> 200, NOTIFY (active) -> 200,
    unSUBSCRIBE (in the dialog, Expires: 0) -> 200,
    NOTIFY (terminated;reason=timeout) -> 200

each call on its own resource (C{sip:benchN@127.0.0.1}). With C{--auth}
the server is started with C{--users} (an htdigest file in the work
directory holding user C{alice}, realm C{127.0.0.1}) and SIPp runs
C{tests/sipp/auth_subscribe_uac.xml} as alice: the same call, but the
SUBSCRIBE is challenged (401) and sent again with Digest credentials, and
the unSUBSCRIBE carries them too (RFC 3261 section 22); each call watches
C{sip:aliceN@127.0.0.1}. C{--auth} implies C{--no-kamailio}. The script starts
C{twistd -n sipevents --store memory} on a free loopback port (the
in-memory store, like Kamailio's C{subs_db_mode=0}; C{--store} chooses
another), then runs SIPp at rising rates as C{bench.options_load} does:
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

    python -m bench.subscribe                    # ~3-8 minutes
    python -m bench.subscribe --rates 500,1000,1500 --step-seconds 3
    python -m bench.subscribe --no-kamailio
    python -m bench.subscribe --auth             # Digest authentication on
    python -m bench.subscribe --store sqlite:bench.sqlite   # ours only
    python -m bench.subscribe --quick            # to see that it runs

The last line is machine-readable: C{BENCH_SUBSCRIBE {json}}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict

from bench import harness

SCENARIO = os.path.join(harness.SIPP_SCENARIOS, "subscribe_uac.xml")
#: The same call with Digest authentication (C{--auth}).
AUTH_SCENARIO = os.path.join(harness.SIPP_SCENARIOS, "auth_subscribe_uac.xml")
#: The one user of C{--auth}: the realm is the address SIPp reaches the
#: server at, so that SIPp's From C{sip:alice@127.0.0.1} is alice's address
#: of record.
AUTH_USER = "alice"
AUTH_PASSWORD = "bench-wonderland"

#: The smallest settings (C{--quick}): two short steps per server.
QUICK = {"rates": [100, 200], "step_seconds": 1.0, "refine": 0, "recovery": 2.0}


def measure(
    server: harness.Server,
    name: str,
    sipp: str,
    rates: list[int],
    args: argparse.Namespace,
    deadline: float,
) -> harness.Climb:
    """
    Climb the rates against one server, measuring its CPU seconds in each
    step's C{serverCpu}.
    """

    def budgetLeft() -> bool:
        return time.monotonic() + args.step_seconds + 10 <= deadline

    def runStep(rate: int) -> harness.Step | None:
        if args.auth:
            scenario, service = AUTH_SCENARIO, AUTH_USER
            extra = ["-au", AUTH_USER, "-ap", AUTH_PASSWORD]
        else:
            scenario, service, extra = SCENARIO, "bench", []
        step = harness.runScenario(
            sipp,
            scenario,
            server.port,
            rate,
            max(1, int(rate * args.step_seconds)),
            server.work,
            f"{name}-r{rate}",
            transport="udp",
            service=service,
            cpuPids=[server.pid],
            extra=extra,
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
        if server.process.poll() is not None:
            return None
        # Let the server work off its backlog between steps. After an
        # overloaded step, wait past Timer F (32 s, RFC 3261 section
        # 17.1.2.2): until then the server still retransmits NOTIFYs to
        # calls SIPp has given up, and the next step would measure that.
        time.sleep(2.0 if step.passed else args.recovery)
        return step

    return harness.climb(runStep, rates, args.refine, budgetLeft)


def summary(name: str, result: harness.Climb | None) -> dict[str, object]:
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


def arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """
    The command line (see C{--help}).
    """
    parser = argparse.ArgumentParser(
        prog="python -m bench.subscribe",
        description="Highest SUBSCRIBE/NOTIFY/unSUBSCRIBE calls/s with no "
        "failed call: sipevents vs Kamailio (SIPp over loopback UDP).",
    )
    harness.addClimbOptions(
        parser,
        rates="250,500,1000,2000,4000,8000",
        budget=240.0,
        budgetText="time budget in seconds for each server",
    )
    parser.add_argument(
        "--recovery",
        type=harness.atLeast(0.0, float),
        default=35.0,
        help="seconds to wait after a step that did not pass, past Timer F "
        "(32 s), so that the server has stopped retransmitting to failed "
        "calls before the next step (default 35)",
    )
    harness.addServerOptions(parser, store="memory")
    harness.addKamailioOptions(parser)
    parser.add_argument(
        "--auth",
        action="store_true",
        help="Digest authentication on: the server runs with --users and "
        "every SUBSCRIBE is challenged and answered; implies --no-kamailio",
    )
    args = harness.parseArguments(parser, argv, QUICK)
    if args.auth:
        # The Kamailio configuration here authenticates no one: there is
        # nothing to compare with.
        if args.kamailio_only:
            parser.error("--auth measures sipevents only: not with --kamailio-only")
        args.no_kamailio = True
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = arguments(argv)
    if not args.sipp:
        print("sipp not found (Debian: apt-get install sip-tester)", file=sys.stderr)
        return 2
    rates: list[int] = args.rates
    kamailio = None if args.no_kamailio else harness.findKamailio()
    if args.kamailio_only and kamailio is None:
        print(harness.KAMAILIO_MISSING, file=sys.stderr)
        return 2
    began = time.monotonic()
    results: dict[str, harness.Climb | None] = {}
    problems: int | None = None

    def measureOn(server: harness.Server, name: str) -> harness.Climb:
        deadline = time.monotonic() + args.budget
        return measure(server, name, args.sipp, rates, args, deadline)

    with harness.workDirectory("sipevents-subscribe-", args.keep) as work:
        print(
            f"SUBSCRIBE load over UDP on {harness.LOOPBACK}, authentication "
            f"{'on (Digest, --users)' if args.auth else 'off'}, "
            f"{args.step_seconds:g} s per step, budget {args.budget:g} s per "
            f"server; work dir {work}"
        )
        if not args.kamailio_only:
            extra = list(args.twistd_arg)
            if args.auth:
                users = os.path.join(work, "users.htdigest")
                with open(users, "w", encoding="ascii") as f:
                    f.write(
                        harness.htdigestLine(AUTH_USER, harness.LOOPBACK, AUTH_PASSWORD)
                    )
                extra += ["--users", os.path.abspath(users)]
            try:
                with harness.twistdServer(
                    work, args.port, store=args.store, extra=extra
                ) as server:
                    print(f"sipevents: twistd pid {server.pid}, --store {args.store}")
                    results["sipevents"] = measureOn(server, "sipevents")
            except harness.ServerFailed as failure:
                print(failure, file=sys.stderr)
                return 2
            problems = server.logProblems
        if kamailio is not None:
            try:
                with harness.kamailioServer(work, kamailio, args.port) as server:
                    version = harness.kamailioVersion(kamailio[0])
                    print(f"kamailio: {version}, pid {server.pid}")
                    results["kamailio"] = measureOn(server, "kamailio")
            except harness.ServerFailed as failure:
                print(failure, file=sys.stderr)
                results["kamailio"] = None

    figures = {}
    for name, result in results.items():
        figures[name] = summary(name, result)
        if result is None:
            continue
        print()
        print(f"{name}:")
        harness.printTable(sorted(result.steps, key=lambda s: s.rate))
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
        print(f"\nno ratio: {harness.KAMAILIO_MISSING}")
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
                "auth": args.auth,
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
