"""
Memory per active subscription: 100,000 presence subscriptions held by the
notifier with the memory store, measured with C{tracemalloc} (Python heap
bytes still allocated) and as resident set size (the target is at most 1
KiB per idle subscription, record, indices and the notifier's runtime
state together).

Every subscription goes the whole way a real one goes, without sockets: a
SUBSCRIBE is built as bytes (its own Call-ID, tags, Contact port and, by
default, its own resource), parsed by L{sipevents.sip.parser.parseMessage},
handed to a L{sipevents.sip.useragent.UserAgent} as if it came from UDP, answered
200 by the L{sipevents.notifier.notifier.Notifier}, whose first NOTIFY goes to a
fake transport layer that answers it 200 at once.

Time is simulated (L{HeapClock}; Twisted's C{task.Clock} re-sorts every
pending call on each C{callLater}, which is quadratic with thousands of
transaction timers). Subscriptions arrive in batches of 1,000, each
followed by 33 s of clock time, so a batch's transactions end (Timer J,
32 s, RFC 3261 section 17.2.2) before the next batch comes, as at a
steady 30 SUBSCRIBE/s; after the last batch the clock moves 40 s more.
Then no transaction, merged-request entry or coalescing timer is left and
only idle subscriptions (Expires: 7200) remain. What is counted is
everything still allocated then, less what was allocated before the first
SUBSCRIBE (after a warm-up of 1,000 subscriptions, since ended): store
records and indices, the notifier's expiry queue and per-dialog state,
and anything else kept by mistake.

The two figures come from two child processes, since tracemalloc's own
bookkeeping inflates the resident set:

  - C{tracemalloc}: traced bytes per subscription, and where they were
    allocated (top files);
  - C{rss}: growth of the resident set (C{/proc/self/statm}) per
    subscription; includes allocator overhead and free lists, so it is
    the operator's figure.

Run from the repository root (~3-6 minutes with the defaults):

    python -m bench.memory
    python -m bench.memory --count 20000
    python -m bench.memory --resources 10000     # 10 watchers per resource
    python -m bench.memory --quick               # to see that it runs

The last line is machine-readable: C{BENCH_MEMORY {json}}.
"""

from __future__ import annotations

import argparse
import gc
import heapq
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from bench import harness
from bench.harness import ROOT

#: For reference, not measured here: Kamailio 5.6 keeps an idle
#: subscription in about 680 bytes of shared memory.
KAMAILIO_BYTES = 680

#: The smallest settings (C{--quick}): one batch.
QUICK = {"count": 1000}


class HeapClock:
    """
    An C{IReactorTime} for a simulation: C{task.Clock}'s interface
    (C{seconds}, C{callLater}, C{advance}) over a heap, so that a call
    costs O(log n) with n pending calls. Cancelled and rescheduled calls
    are left in the heap and skipped when they come up.
    """

    def __init__(self, now: float = 0.0) -> None:
        self.now = now
        self._heap: list[tuple[float, int, Any]] = []
        self._sequence = 0

    def seconds(self) -> float:
        return self.now

    def callLater(self, delay: float, f: Any, *args: Any, **kw: Any) -> Any:
        from twisted.internet.base import DelayedCall

        call = DelayedCall(
            self.now + delay,
            f,
            args,
            kw,
            lambda call: None,
            self._push,
            seconds=self.seconds,
        )
        self._push(call)
        return call

    def _push(self, call: Any) -> None:
        self._sequence += 1
        heapq.heappush(self._heap, (call.getTime(), self._sequence, call))

    def getDelayedCalls(self) -> list[Any]:
        return [
            call
            for when, _, call in self._heap
            if not (call.cancelled or call.called) and call.getTime() == when
        ]

    def advance(self, amount: float) -> None:
        self.now += amount
        heap = self._heap
        while heap and heap[0][0] <= self.now:
            when, _, call = heapq.heappop(heap)
            if call.cancelled or call.called or call.getTime() != when:
                continue
            call.called = 1
            call.func(*call.args, **call.kw)


def subscribeBytes(i: int, resources: int, run: str) -> bytes:
    """
    A SUBSCRIBE as a phone would send it (~450 octets).
    """
    resource = i % resources
    port = 10000 + i % 50000
    return (
        f"SUBSCRIBE sip:user{resource}@127.0.0.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{run}x{i};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:watcher{i}@127.0.0.1>;tag={run}t{i}\r\n"
        f"To: <sip:user{resource}@127.0.0.1>\r\n"
        f"Call-ID: {run}c{i}@127.0.0.1\r\n"
        "CSeq: 1 SUBSCRIBE\r\n"
        f"Contact: <sip:watcher{i}@127.0.0.1:{port}>\r\n"
        "Event: presence\r\n"
        "Accept: application/pidf+xml\r\n"
        "Expires: 7200\r\n"
        "User-Agent: bench/memory\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def child(mode: str, count: int, resources: int) -> dict[str, Any]:
    """
    Build the notifier, subscribe C{count} times, and measure (see the
    module docstring). Runs in a child process.
    """
    import tracemalloc

    if mode == "tracemalloc":
        tracemalloc.start(1)

    from twisted.internet.defer import Deferred, succeed

    from sipevents.notifier.notifier import Notifier
    from sipevents.notifier.publication import PublicationManager
    from sipevents.packages import PackageRegistry
    from sipevents.packages.presence import PresencePackage
    from sipevents.sip.addresses import Source, Target
    from sipevents.sip.message import Request, Response, makeResponse
    from sipevents.sip.parser import parseMessage
    from sipevents.sip.useragent import UserAgent
    from sipevents.store.memory import MemoryStore
    from sipevents.testing import FakeSIPConnection, RecordingTransportLayer

    class AnsweringTransport(RecordingTransportLayer):
        """
        A transport layer that counts responses without keeping them and
        answers each request (a NOTIFY) 200, on the next L{flush}.
        """

        def __init__(self) -> None:
            super().__init__()
            self.pending: list[Request] = []
            self.responseCount = 0

        def sendResponse(self, response: Response, source: Source) -> None:
            self.responseCount += 1

        def sendRequest(self, request: Request, target: Target) -> Deferred[None]:
            self.pending.append(request)
            return succeed(None)

        def flush(self, userAgent: UserAgent, source: Source) -> int:
            requests, self.pending = self.pending, []
            for request in requests:
                userAgent.messageReceived(makeResponse(request, 200), source)
            return len(requests)

    clock = HeapClock(1_800_000_000.0)
    transport = AnsweringTransport()
    connection = FakeSIPConnection("UDP", "127.0.0.1", 5060)
    userAgent = UserAgent(clock, transport)
    store = MemoryStore()
    registry = PackageRegistry([PresencePackage()])
    publications = PublicationManager(clock, store, registry)
    notifier = Notifier(clock, userAgent, store, registry, publications)
    publications.onStateChanged = notifier.stateChanged
    notifier.install()
    publications.install(userAgent)
    notifier.start()
    publications.start()
    run = f"{os.getpid():x}"

    def subscribe(first: int, last: int) -> None:
        # In batches of 1,000, each followed by 33 s of clock time: the
        # batch's transactions end (Timer J, 32 s) before the next starts,
        # as they would at a steady 30 SUBSCRIBE/s, so the resident set
        # measures idle subscriptions rather than 100,000 transactions
        # alive at once. The subscriptions last 7200 s, longer than the
        # run.
        for start in range(first, last, 1000):
            for i in range(start, min(start + 1000, last)):
                data = subscribeBytes(i, resources, run)
                source = Source(connection, "127.0.0.1", 10000 + i % 50000)
                userAgent.messageReceived(parseMessage(data), source)
            settle(33)

    def settle(seconds: int) -> None:
        # One second at a time, so that timers fire in order; every NOTIFY
        # is answered as it goes out.
        source = Source(connection, "127.0.0.1", 10000)
        transport.flush(userAgent, source)
        for _ in range(seconds):
            clock.advance(1)
            transport.flush(userAgent, source)

    # Warm up: caches, interned strings, first-use allocations.
    warm = 1000
    subscribe(count, count + warm)
    for record in list(store.allSubscriptions()):
        notifier.terminate(key=record.key, reason="deactivated")
    settle(40)

    gc.collect()
    before = tracemalloc.take_snapshot() if mode == "tracemalloc" else None
    tracedBefore = tracemalloc.get_traced_memory()[0] if mode == "tracemalloc" else 0
    rssBefore = harness.residentBytes()
    began = time.perf_counter()
    subscribe(0, count)
    settle(40)
    seconds = time.perf_counter() - began
    gc.collect()
    live = len(store.allSubscriptions())
    result: dict[str, Any] = {
        "mode": mode,
        "count": count,
        "resources": resources,
        "live": live,
        "responses": transport.responseCount,
        "seconds": round(seconds, 1),
        "pendingCalls": len(clock.getDelayedCalls()),
    }
    if mode == "tracemalloc":
        traced = tracemalloc.get_traced_memory()[0] - tracedBefore
        result["bytesPerSubscription"] = round(traced / max(live, 1), 1)
        assert before is not None
        after = tracemalloc.take_snapshot()
        top = after.compare_to(before, "filename")[:8]
        result["top"] = [
            {
                "file": os.path.relpath(stat.traceback[0].filename, ROOT)
                if stat.traceback[0].filename.startswith(ROOT)
                else os.path.basename(stat.traceback[0].filename),
                "bytesPerSubscription": round(stat.size_diff / max(live, 1), 1),
            }
            for stat in top
        ]
    else:
        result["bytesPerSubscription"] = round(
            (harness.residentBytes() - rssBefore) / max(live, 1), 1
        )
    # Keep everything alive until measured.
    del notifier, publications, store
    return result


def arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """
    The command line (see C{--help}).
    """
    parser = argparse.ArgumentParser(
        prog="python -m bench.memory",
        description="Bytes of memory per active (idle) subscription, "
        "in-process notifier with the memory store.",
    )
    parser.add_argument(
        "--count",
        type=harness.atLeast(1),
        default=100_000,
        help="subscriptions (default 100000)",
    )
    parser.add_argument(
        "--resources",
        type=harness.atLeast(0),
        default=0,
        help="distinct resources they watch (default: one per subscription, "
        "the case where nothing is shared)",
    )
    parser.add_argument(
        "--child", choices=["tracemalloc", "rss"], help=argparse.SUPPRESS
    )
    return harness.parseArguments(parser, argv, QUICK)


def main(argv: Sequence[str] | None = None) -> int:
    args = arguments(argv)
    resources = args.resources or args.count

    if args.child:
        print(json.dumps(child(args.child, args.count, resources)))
        return 0

    results: dict[str, dict[str, Any]] = {}
    print(
        f"{args.count:,} presence subscriptions to {resources:,} resources, "
        "memory store, in-process notifier"
    )
    for mode in ("rss", "tracemalloc"):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.memory",
                "--child",
                mode,
                "--count",
                str(args.count),
                "--resources",
                str(resources),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if proc.returncode != 0:
            print(f"{mode} run failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
            return 1
        results[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
        r = results[mode]
        print(
            f"  {mode:>11}: {r['bytesPerSubscription']:,.0f} bytes per subscription "
            f"({r['live']:,} live after {r['seconds']} s)"
        )
    problems = [
        f"{mode}: {r['live']} of {args.count} subscriptions live"
        for mode, r in results.items()
        if r["live"] != args.count
    ]
    print("\nwhere the traced bytes were allocated (per subscription):")
    for entry in results["tracemalloc"].get("top", []):
        print(f"  {entry['bytesPerSubscription']:>8,.0f}  {entry['file']}")
    traced = results["tracemalloc"]["bytesPerSubscription"]
    resident = results["rss"]["bytesPerSubscription"]
    print(
        f"\nbytes per idle subscription: {traced:,.0f} traced (Python heap), "
        f"{resident:,.0f} resident; target <= 1024; Kamailio 5.6 about "
        f"{KAMAILIO_BYTES} (not measured here)"
    )
    for problem in problems:
        print(f"WARNING: {problem}")
    print(
        "BENCH_MEMORY "
        + json.dumps(
            {
                "count": args.count,
                "resources": resources,
                "tracedBytesPerSubscription": traced,
                "rssBytesPerSubscription": resident,
                "top": results["tracemalloc"].get("top", []),
                "kamailioReference": KAMAILIO_BYTES,
                "problems": problems,
            },
            sort_keys=True,
        )
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
