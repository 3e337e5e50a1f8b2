"""
Memory per completed UDP server transaction, and the in-process cost of an
OPTIONS, without sockets.

Over UDP every answered request keeps its non-INVITE server transaction in
"Completed" for Timer J, 64*T1 = 32 s (RFC 3261 section 17.2.2), so a server
answering R requests a second holds about 32 * R of them: at 3,000/s, close
to 100,000. What each one costs, in bytes and in objects the cyclic garbage
collector has to walk, decides both the server's memory and the length of
its full collections (each of which stops the reactor).

The script builds the server's receive path as C{twistd sipevents} has it:
a L{sipevents.sip.transport.TransportLayer} with one UDP socket on a
L{sipevents.testing.MemoryUDPReactor} (datagrams in memory) delivering to a
L{sipevents.sip.useragent.UserAgent} on a L{twisted.internet.task.Clock}. It feeds it
SIPp-like OPTIONS (the request of C{bench/options.xml}, with a different
branch, From tag and Call-ID each), then measures:

  - bytes per completed transaction: what C{tracemalloc} counts as still
    allocated, after a full collection, once N requests have been answered
    and their transactions wait for Timer J, divided by N;
  - collector-tracked objects per completed transaction
    (C{gc.get_objects()}), the part a full collection walks;
  - OPTIONS/s in process, with the collector off, best of five runs (the
    cost of parsing, the transaction and user agent layers and
    serializing, without the reactor or system calls), and retransmissions
    absorbed per second.

Then it runs the clock past Timer J and checks that every transaction has
gone and no timer is left: the figures are only valid if so (exit code 1
otherwise).

Run from the repository root::

    python -m bench.transaction_memory            # 20,000 transactions
    python -m bench.transaction_memory --count 50000
    python -m bench.transaction_memory --quick    # to see that it runs

The last line is machine-readable: C{BENCH_MEMORY {json}}.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import tracemalloc
from collections.abc import Sequence

from twisted.internet.task import Clock

from bench import harness
from sipevents.sip.transport import SIPDatagramProtocol, TransportLayer
from sipevents.sip.useragent import UserAgent
from sipevents.testing import MemoryUDPReactor

#: The smallest settings (C{--quick}).
QUICK = {"count": 1000}

#: The OPTIONS of bench/options.xml as SIPp sends it (RFC 3261 section 11).
TEMPLATE = (
    "OPTIONS sip:service@127.0.0.1:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-{run}-{n}-0;rport\r\n"
    "Max-Forwards: 70\r\n"
    'From: "sipp" <sip:sipp@127.0.0.1:5061>;tag={run}SIPpTag00{n}\r\n'
    "To: <sip:service@127.0.0.1:5060>\r\n"
    "Call-ID: {n}-{run}@127.0.0.1\r\n"
    "CSeq: 1 OPTIONS\r\n"
    "Contact: <sip:sipp@127.0.0.1:5061;transport=UDP>\r\n"
    "Accept: application/sdp\r\n"
    "Content-Length: 0\r\n"
    "\r\n"
)

PEER = ("127.0.0.1", 5061)


def datagrams(run: int, count: int) -> list[bytes]:
    """
    C{count} distinct OPTIONS, tagged with C{run} so that runs never
    match each other's transactions.
    """
    return [TEMPLATE.format(run=run, n=n).encode("ascii") for n in range(count)]


def arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """
    The command line (see C{--help}).
    """
    parser = argparse.ArgumentParser(
        prog="python -m bench.transaction_memory",
        description="Memory per completed UDP server transaction and the "
        "in-process cost of an OPTIONS.",
    )
    parser.add_argument(
        "--count",
        type=harness.atLeast(1000),
        default=20000,
        help="completed transactions to measure (default 20000, at least 1000)",
    )
    return harness.parseArguments(parser, argv, QUICK)


def main(argv: Sequence[str] | None = None) -> int:
    args = arguments(argv)
    count = args.count

    reactor = MemoryUDPReactor()
    clock = Clock()
    userAgent = UserAgent(clock)
    layer = TransportLayer(reactor, userAgent)
    userAgent.transportLayer = layer
    layer.listen("udp:5060:interface=127.0.0.1")
    [port] = reactor.udpPorts
    protocol = port.protocol
    assert isinstance(protocol, SIPDatagramProtocol)
    problems: list[str] = []

    # Warm up (caches, first-use imports), then time fresh requests.
    for data in datagrams(1, 2000):
        protocol.datagramReceived(data, PEER)
    timed = datagrams(2, count)
    chunk = count // 5
    best = float("inf")
    gc.collect()
    gc.disable()
    try:
        for run in range(5):
            part = timed[run * chunk : (run + 1) * chunk]
            began = time.perf_counter()
            for data in part:
                protocol.datagramReceived(data, PEER)
            best = min(best, (time.perf_counter() - began) / chunk)
        began = time.perf_counter()
        for data in timed[:chunk]:
            protocol.datagramReceived(data, PEER)
        absorbed = chunk / (time.perf_counter() - began)
    finally:
        gc.enable()
    answered = len(port.written)
    if answered != 2000 + 6 * chunk:
        problems.append(f"{answered} responses for {2000 + 6 * chunk} requests")

    # Let everything so far time out, then measure fresh transactions.
    clock.advance(userAgent.timers.timerJ)
    port.written.clear()
    measured = datagrams(3, count)
    gc.collect()
    objectsBefore = len(gc.get_objects())
    tracemalloc.start()
    bytesBefore = tracemalloc.get_traced_memory()[0]
    for data in measured:
        protocol.datagramReceived(data, PEER)
    del data
    sent = len(port.written)
    port.written.clear()
    gc.collect()
    bytesAfter = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    objectsAfter = len(gc.get_objects())
    live = userAgent.transactions.serverTransactionCount
    if sent != count or live != count:
        problems.append(f"{sent} responses and {live} live transactions for {count}")
    clock.advance(userAgent.timers.timerJ)
    left = userAgent.transactions.serverTransactionCount
    timers = len(clock.getDelayedCalls())
    if left or timers:
        problems.append(f"after Timer J: {left} transactions, {timers} timers left")

    perTransaction = (bytesAfter - bytesBefore) / count
    objects = (objectsAfter - objectsBefore) / count
    print(f"OPTIONS over UDP in memory, {count} completed transactions")
    print(f"  bytes per completed transaction:      {perTransaction:8,.0f}")
    print(f"  gc-tracked objects per transaction:   {objects:8.1f}")
    print(
        f"  OPTIONS/s in process (gc off):        {1 / best:8,.0f}"
        f"  ({best * 1e6:.1f} us each, best of 5 runs of {chunk})"
    )
    print(f"  retransmissions absorbed/s:           {absorbed:8,.0f}")
    for problem in problems:
        print(f"WARNING: {problem}")
    print(
        "BENCH_MEMORY "
        + json.dumps(
            {
                "count": count,
                "bytesPerTransaction": round(perTransaction),
                "objectsPerTransaction": round(objects, 2),
                "optionsPerSecond": round(1 / best),
                "microsecondsPerOptions": round(best * 1e6, 1),
                "retransmissionsPerSecond": round(absorbed),
                "problems": problems,
            },
            sort_keys=True,
        )
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
