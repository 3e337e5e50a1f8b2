"""
The server's CPU per SUBSCRIBE call, in process: the call flow of
C{bench.subscribe} (C{tests/sipp/subscribe_uac.xml}) pushed through the
real L{sipevents.app.service.SIPEventsService} stack, with no sockets and no
SIPp, so that it can be profiled and its cost read without the noise of a
shared machine.

One call, as SIPp makes it:

    SUBSCRIBE (Expires: 600)   ->  200, NOTIFY (active)  ->  200
    SUBSCRIBE in the dialog (Expires: 0)  ->  200, NOTIFY (terminated) -> 200

each on its own resource (C{sip:benchN@127.0.0.1}), each request with its
own branch, tags and Call-ID. The service listens on a
L{sipevents.testing.MemoryUDPReactor} (datagrams in memory, delivered by
calling the protocol's C{datagramReceived} as the reactor would), and its
timers run on a real Twisted reactor object that is never started: its
clock is simulated and its C{runUntilCurrent} is called as the reactor's
loop would, so that every C{callLater} and cancellation costs what it
costs in C{twistd}. Simulated time advances by 1/C{--rate} per call, so
that completed transactions pile up for Timer J (32 s) as they do at that
rate in the real server; the garbage collector is tuned as C{twistd
sipevents} tunes it.

Only the server's work is timed (process CPU time around each delivery and
each timer run); building SIPp's messages and reading the server's is not.

    python -m bench.subscribe_profile                      # 20,000 calls
    python -m bench.subscribe_profile --calls 50000 --rate 1500
    python -m bench.subscribe_profile --profile 30         # cProfile, top 30
    python -m bench.subscribe_profile --store sqlite       # in a temp file
    python -m bench.subscribe_profile --quick              # to see that it runs

The last line is machine-readable: C{BENCH_SUBSCRIBE_PROFILE {json}}.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import pstats
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from twisted.internet.selectreactor import SelectReactor

from bench import harness
from sipevents.app.service import SIPEventsService, tuneGarbageCollector
from sipevents.store.memory import MemoryStore
from sipevents.testing import MemoryUDPReactor

#: The smallest settings (C{--quick}).
QUICK = {"calls": 1000, "warmup": 1000}

PEER = ("127.0.0.1", 5061)
SERVER_PORT = 5060

SUBSCRIBE = (
    "SUBSCRIBE {uri} SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-{run}-{n}-{cseq};rport\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:sipp@127.0.0.1>;tag={run}SIPpTag{n}\r\n"
    "To: <sip:bench{n}@127.0.0.1>{totag}\r\n"
    "Call-ID: {n}-{run}@127.0.0.1\r\n"
    "CSeq: {cseq} SUBSCRIBE\r\n"
    "Contact: <sip:sipp@127.0.0.1:5061;transport=UDP>\r\n"
    "Event: presence\r\n"
    "Accept: application/pidf+xml\r\n"
    "Expires: {expires}\r\n"
    "Content-Length: 0\r\n"
    "\r\n"
)

_TOTAG = re.compile(rb"\r\nTo:[^\r]*;tag=([^;> \r]+)", re.I)
_CONTACT = re.compile(rb"\r\n(?:Contact|m):[^<\r]*<([^>]+)>", re.I)
_STATE = re.compile(rb"\r\nSubscription-State: *([a-z]+)", re.I)


class Failed(Exception):
    """The server did not answer as the SIPp scenario expects."""


class Driver:
    """
    The service on an in-memory UDP port, and a SIPp-like subscriber.
    """

    def __init__(self, store: str, rate: float, logToFile: bool) -> None:
        self.tempdir = tempfile.mkdtemp(prefix="sipevents-profile-")
        if logToFile:
            # What twistd --logfile does: every event, whatever its level,
            # formatted as text into a file that rotates every megabyte.
            from twisted.logger import globalLogBeginner, textFileLogObserver
            from twisted.python.logfile import LogFile

            globalLogBeginner.beginLoggingTo(
                [
                    textFileLogObserver(
                        LogFile.fromFullPath(  # type: ignore[no-untyped-call]
                            os.path.join(self.tempdir, "twistd.log")
                        )
                    )
                ],
                redirectStandardIO=False,
            )
        self.udp = MemoryUDPReactor()
        # A real reactor's timer queue, never run: its clock is ours.
        self.timers = SelectReactor()
        self.now = 1_800_000_000.0
        self.timers.seconds = lambda: self.now
        self.threaded = store != "memory"
        if store == "memory":
            storeObject: Any = MemoryStore()
        else:
            from sipevents.store.sqlite import SQLiteStore

            storeObject = SQLiteStore(
                self.timers, os.path.join(self.tempdir, "bench.sqlite")
            )
        self.service = SIPEventsService(
            [f"udp:{SERVER_PORT}:interface=127.0.0.1"],
            reactor=self.udp,
            clock=self.timers,
            store=storeObject,
        )
        self.service.startService()
        # The SQLite store loads in its thread: let its result in.
        deadline = time.monotonic() + 30
        while not self.service.ready and time.monotonic() < deadline:
            self.pump()
        [self.port] = self.udp.udpPorts
        self.protocol = self.port.protocol
        self.step = 1.0 / rate
        self.run = f"{os.getpid():x}"
        self.cpu = 0.0
        self.calls = 0
        #: CPU seconds by what was delivered (and what it set off).
        self.byKind: dict[str, float] = {}

    def pump(self) -> None:
        """
        Run what threads handed back to the reactor (the SQLite store's
        results) and the timers that are due.
        """
        self.timers.runUntilCurrent()
        self.timers.doIteration(0.001)  # type: ignore[no-untyped-call]

    def deliver(self, data: bytes, kind: str) -> None:
        began = time.process_time()
        self.protocol.datagramReceived(data, PEER)
        spent = time.process_time() - began
        self.cpu += spent
        self.byKind[kind] = self.byKind.get(kind, 0.0) + spent

    def tick(self) -> None:
        self.now += self.step
        began = time.process_time()
        if self.threaded:
            # Batched writes come back from the SQLite store's thread.
            self.pump()
        else:
            self.timers.runUntilCurrent()
        spent = time.process_time() - began
        self.cpu += spent
        self.byKind["timers"] = self.byKind.get("timers", 0.0) + spent

    def take(self) -> list[bytes]:
        written = self.port.written
        out = [packet for packet, _ in written]
        written.clear()
        return out

    def exchange(self, request: bytes, state: bytes, kind: str) -> bytes:
        """
        Send C{request}, answer the NOTIFY, and return the 200 to the
        request; the NOTIFY must say C{state}.
        """
        self.deliver(request, kind)
        final: bytes | None = None
        notified = False
        for _ in range(3):
            for packet in self.take():
                if packet.startswith(b"SIP/2.0 "):
                    if packet.startswith(b"SIP/2.0 200"):
                        final = packet
                    else:
                        raise Failed(packet.split(b"\r\n", 1)[0].decode())
                elif packet.startswith(b"NOTIFY "):
                    found = _STATE.search(packet)
                    if found is None or found.group(1) != state:
                        raise Failed(f"NOTIFY says {found and found.group(1)!r}")
                    notified = True
                    self.deliver(
                        harness.answerNotify(packet)[0],
                        f"200 to NOTIFY ({state.decode()})",
                    )
            if final is not None and notified:
                return final
        raise Failed(f"200 {final is not None}, NOTIFY {notified}")

    def call(self, n: int) -> None:
        uri = f"sip:bench{n}@127.0.0.1:{SERVER_PORT}"
        ok = self.exchange(
            SUBSCRIBE.format(
                uri=uri, run=self.run, n=n, cseq=1, totag="", expires=600
            ).encode(),
            b"active",
            "SUBSCRIBE",
        )
        toTag = _TOTAG.search(ok)
        contact = _CONTACT.search(ok)
        if toTag is None or contact is None:
            raise Failed("200 without a To tag or Contact")
        self.exchange(
            SUBSCRIBE.format(
                uri=contact.group(1).decode(),
                run=self.run,
                n=n,
                cseq=2,
                totag=";tag=" + toTag.group(1).decode(),
                expires=0,
            ).encode(),
            b"terminated",
            "unSUBSCRIBE",
        )
        self.calls += 1
        self.tick()

    def close(self) -> None:
        import shutil

        self.service.stopService()
        # Let a write-behind store's thread finish its last batch.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.timers.getDelayedCalls():
            self.pump()
        shutil.rmtree(self.tempdir, ignore_errors=True)


def arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """
    The command line (see C{--help}).
    """
    parser = argparse.ArgumentParser(
        prog="python -m bench.subscribe_profile",
        description="Server CPU per SUBSCRIBE/NOTIFY/unSUBSCRIBE call, in "
        "process (the call flow of bench.subscribe, no sockets).",
    )
    parser.add_argument(
        "--calls",
        type=harness.atLeast(1),
        default=20000,
        help="timed calls (default 20000)",
    )
    parser.add_argument(
        "--warmup",
        type=harness.atLeast(0),
        default=None,
        help="untimed calls first (default: 40 s of simulated time, so that "
        "Timer J's queue is full)",
    )
    parser.add_argument(
        "--rate",
        type=harness.atLeast(1.0, float),
        default=1000.0,
        help="simulated calls/s: how fast simulated time advances (default 1000)",
    )
    parser.add_argument(
        "--store",
        choices=["memory", "sqlite"],
        default="memory",
        help="the store (default memory, as bench.subscribe)",
    )
    parser.add_argument(
        "--profile",
        type=harness.atLeast(0),
        default=0,
        metavar="N",
        help="run the timed calls under cProfile and print the top N "
        "functions by own time and by cumulative time",
    )
    parser.add_argument(
        "--dump",
        metavar="PATH",
        help="with --profile, also write the cProfile statistics to PATH "
        "(for pstats or snakeviz)",
    )
    parser.add_argument(
        "--no-log-file",
        action="store_true",
        help="do not log to a file as twistd --logfile does (events then "
        "go to Twisted's start-up buffer, and are dropped)",
    )
    parser.add_argument(
        "--no-gc-tuning",
        action="store_true",
        help="leave the garbage collector as it is (twistd tunes it)",
    )
    return harness.parseArguments(parser, argv, QUICK)


def main(argv: Sequence[str] | None = None) -> int:
    args = arguments(argv)
    warmup = args.warmup if args.warmup is not None else min(int(args.rate * 40), 60000)

    driver = Driver(args.store, args.rate, not args.no_log_file)
    if not args.no_gc_tuning:
        tuneGarbageCollector()
    problems: list[str] = []
    profiler: cProfile.Profile | None = None
    if not driver.service.ready:
        problems.append("the service did not become ready (store not loaded)")
    try:
        for n in range(warmup):
            driver.call(n)
        driver.cpu = 0.0
        driver.calls = 0
        driver.byKind.clear()
        profiler = cProfile.Profile() if args.profile else None
        gcBefore = sum(s["collections"] for s in gc.get_stats())
        wall = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        for n in range(warmup, warmup + args.calls):
            driver.call(n)
        if profiler is not None:
            profiler.disable()
        wall = time.perf_counter() - wall
        collections = sum(s["collections"] for s in gc.get_stats()) - gcBefore
    except Failed as e:
        problems.append(f"call {driver.calls}: {e}")
        wall = 0.0
        collections = 0
    live = driver.service.userAgent.transactions.serverTransactionCount
    driver.close()

    perCall = driver.cpu / driver.calls * 1e6 if driver.calls else 0.0
    print(
        f"SUBSCRIBE calls in process ({args.store} store, simulated "
        f"{args.rate:,.0f} calls/s, {warmup} warm-up calls"
        f"{', under cProfile' if args.profile else ''}"
        f"{', no log file' if args.no_log_file else ''})"
    )
    print(f"  calls:                        {driver.calls:10,}")
    print(f"  server CPU per call:          {perCall:10.1f} us")
    print(f"  calls/s of server CPU:        {(1e6 / perCall if perCall else 0):10,.0f}")
    for kind, seconds in driver.byKind.items():
        print(f"    {kind + ':':<27}{seconds / max(driver.calls, 1) * 1e6:10.1f} us")
    print(f"  wall time (driver included):  {wall:10.2f} s")
    print(f"  gc collections:               {collections:10,}")
    print(f"  server transactions alive:    {live:10,}")
    if profiler is not None:
        if args.dump:
            profiler.dump_stats(args.dump)
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(args.profile)
        stats.sort_stats("cumulative").print_stats(args.profile)
    for problem in problems:
        print(f"WARNING: {problem}")
    print(
        "BENCH_SUBSCRIBE_PROFILE "
        + json.dumps(
            {
                "calls": driver.calls,
                "store": args.store,
                "rate": args.rate,
                "usPerCall": round(perCall, 1),
                "usPerCallByMessage": {
                    kind: round(seconds / max(driver.calls, 1) * 1e6, 1)
                    for kind, seconds in driver.byKind.items()
                },
                "gcCollections": collections,
                "problems": problems,
            },
            sort_keys=True,
        )
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
