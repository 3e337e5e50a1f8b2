"""
Parse + serialize throughput: L{sipevents.sip.parser} against
C{twisted.protocols.sip}, on the same bytes, in the same run.

Every iteration parses a different message. For each case a pool of
distinct datagrams (10,000 by default) is made from one template by varying
what varies from transaction to transaction in real traffic: the Via
branch, the From tag (and the To tag of an in-dialog NOTIFY), the Call-ID
and the CSeq number. The pool is larger than any of the bounded caches in
L{sipevents.sip.uri}, L{sipevents.sip.headers} and L{sipevents.sip.parser}, and is
walked in order, so a value that varies is never found in a cache: only
what really repeats between messages (the same URIs, C{Max-Forwards: 70},
C{Event: presence} ...) can be. Both parsers walk the same pool, taking
turns on chunks of 500 messages so that a background load on the machine
weighs on both alike, and the warm-up uses another pool, of other values.

Each message is parsed and serialized by:

  - sipevents: C{parseMessage(data)} then C{message.toBytes()};
  - twisted: one reused C{sip.MessagesParser}, fed with C{dataReceived(data)}
    then C{dataDone()} exactly as C{twisted.protocols.sip.Base.datagramReceived}
    does, then C{message.toString().encode("utf-8")} as C{Base.sendMessage}
    does.

Twisted's parser counts Content-Length in characters of the decoded body, not
in octets (RFC 3261 section 20.14 says octets), so a body with non-ASCII UTF-8
never completes and C{dataDone} raises C{RuntimeError}. Those failures are
caught, counted and printed; they never stop the benchmark. The
C{notify-ascii} case carries the same body with the non-ASCII characters
replaced, so that the two parsers can also be compared on a body they both
read.

Run from the repository root::

    python -m bench.parse                 # 50,000 messages per case, <= 5 s each
    python -m bench.parse --count 100000 --seconds 10 --pool 20000
    python -m bench.parse --quick         # to see that it runs

The last line of output is machine-readable: C{BENCH_PARSE {json}}.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from twisted.protocols import sip as tsip

from bench import harness
from sipevents.errors import ParseError
from sipevents.sip import headers as _headers
from sipevents.sip import parser as _parser
from sipevents.sip import uri as _uri
from sipevents.sip.parser import parseMessage

TWISTED_VERSION = importlib.metadata.version("twisted")

# Addresses are loopback or example.com: these bytes are only parsed here, but
# the house rule is that nothing copied into the tree points at a real host.


@dataclass(frozen=True)
class Varying:
    """
    What differs from one message of a pool to the next (RFC 3261 section
    8.1.1: each new request has its own branch, tag, Call-ID and CSeq).
    """

    branch: str
    fromTag: str
    toTag: str
    callId: str
    cseq: int


def subscribe(v: Varying) -> bytes:
    """
    A typical presence SUBSCRIBE (RFC 6665 section 4.1.2.1) that creates a
    subscription: no To tag yet.
    """
    return (
        "SUBSCRIBE sip:alice@example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5070;branch={v.branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        f'From: "Bob" <sip:bob@example.com>;tag={v.fromTag}\r\n'
        "To: <sip:alice@example.com>\r\n"
        f"Call-ID: {v.callId}\r\n"
        f"CSeq: {v.cseq} SUBSCRIBE\r\n"
        "Contact: <sip:bob@127.0.0.1:5070;transport=udp>\r\n"
        "Event: presence\r\n"
        "Accept: application/pidf+xml, application/xpidf+xml;q=0.5\r\n"
        "Expires: 3600\r\n"
        "Allow-Events: presence, message-summary, dialog\r\n"
        "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, SUBSCRIBE, NOTIFY\r\n"
        "Supported: eventlist\r\n"
        "User-Agent: sipevents-bench/1.0\r\n"
        "Content-Length: 0\r\n"
        "\r\n"
    ).encode("ascii")


def pidfBody(note: str) -> bytes:
    """
    A PIDF document (RFC 3863) of roughly 1 KB whose notes are C{note}.
    """
    tuples = "".join(
        f'  <tuple id="t{i}">\n'
        "    <status><basic>open</basic></status>\n"
        f'    <contact priority="0.{9 - i}">sip:alice@127.0.0.1:50{60 + i}</contact>\n'
        f'    <note xml:lang="fr">{note} #{i}</note>\n'
        f"    <timestamp>2024-05-0{i + 1}T12:00:00Z</timestamp>\n"
        "  </tuple>\n"
        for i in range(3)
    )
    document = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<presence xmlns="urn:ietf:params:xml:ns:pidf"\n'
        '          entity="sip:alice@example.com">\n'
        f"{tuples}"
        f"  <note>{note}</note>\n"
        "</presence>\n"
    )
    return document.encode("utf-8")


def notify(body: bytes) -> Callable[[Varying], bytes]:
    """
    In-dialog NOTIFYs (RFC 6665 section 4.2.1.4 / 4.2.2) carrying C{body}.
    """

    def make(v: Varying) -> bytes:
        head = (
            "NOTIFY sip:bob@127.0.0.1:5070;transport=udp SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:5060;branch={v.branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:alice@example.com>;tag={v.fromTag}\r\n"
            f'To: "Bob" <sip:bob@example.com>;tag={v.toTag}\r\n'
            f"Call-ID: {v.callId}\r\n"
            f"CSeq: {v.cseq} NOTIFY\r\n"
            "Contact: <sip:alice@127.0.0.1:5060>\r\n"
            "Event: presence\r\n"
            "Subscription-State: active;expires=3599\r\n"
            "Content-Type: application/pidf+xml\r\n"
            f"Content-Length: {len(body)}\r\n"
            "\r\n"
        )
        return head.encode("ascii") + body

    return make


UTF8_NOTE = "Café ☕ — réunion à 14h"
ASCII_NOTE = "Cafe (coffee) - meeting at 2pm"

#: name, message template, the body every message of the case carries.
CASES: list[tuple[str, Callable[[Varying], bytes], bytes]] = [
    ("subscribe", subscribe, b""),
    ("notify-utf8", notify(pidfBody(UTF8_NOTE)), pidfBody(UTF8_NOTE)),
    ("notify-ascii", notify(pidfBody(ASCII_NOTE)), pidfBody(ASCII_NOTE)),
]

#: The largest bounded cache of parsed values in sipevents; a pool must be
#: larger, so that no varying value is found in a cache.
LARGEST_CACHE = max(
    getattr(module, name, 0)
    for module, name in [
        (_uri, "_CACHE_SIZE"),
        (_headers, "_CACHE_SIZE"),
        (_parser, "_NAME_CACHE_SIZE"),
        (_parser, "_LINE_CACHE_SIZE"),
    ]
)

#: The smallest settings (C{--quick}): the smallest pool allowed.
QUICK = {"count": 2000, "seconds": 1.0, "pool": LARGEST_CACHE + 1}


def makePool(template: Callable[[Varying], bytes], size: int, seed: int) -> list[bytes]:
    """
    C{size} distinct messages from C{template}: every one has its own Via
    branch, From tag, To tag, Call-ID and CSeq number.
    """
    rng = random.Random(seed)
    numbers = rng.sample(range(1, 2**31), size)
    pool = []
    seen: set[str] = set()
    for number in numbers:
        v = Varying(
            branch=f"z9hG4bK{rng.getrandbits(64):016x}",
            fromTag=f"{rng.getrandbits(40):010x}",
            toTag=f"{rng.getrandbits(40):010x}",
            callId=f"{rng.getrandbits(96):024x}@127.0.0.1",
            cseq=number,
        )
        values = (v.branch, v.fromTag, v.toTag, v.callId)
        if seen.intersection(values):
            raise RuntimeError("random values collided; use another seed")
        seen.update(values)
        pool.append(template(v))
    return pool


@dataclass
class Run:
    """
    The outcome of timing one parser on one case.

    @ivar attempts: messages fed to the parser.
    @ivar ok: messages parsed and serialized again.
    @ivar failures: attempts that raised or produced no message.
    @ivar seconds: wall time spent on the attempts.
    @ivar errors: exception class name to count.
    """

    attempts: int = 0
    ok: int = 0
    failures: int = 0
    seconds: float = 0.0
    errors: dict[str, int] | None = None

    @property
    def rate(self) -> float:
        """Attempts per second (failed attempts included)."""
        return self.attempts / self.seconds if self.seconds else 0.0

    @property
    def okRate(self) -> float:
        """Successfully parsed and serialized messages per second."""
        return self.ok / self.seconds if self.seconds else 0.0


def timeLoop(
    step: Callable[[bytes], bool],
    pool: list[bytes],
    start: int,
    count: int,
    run: Run,
) -> None:
    """
    Call C{step} on C{count} messages of C{pool} from index C{start} on
    (wrapping around at its end), adding the outcome to C{run}.

    @param step: parses and serializes one message; returns C{True} on
        success, and raises or returns C{False} on failure.
    """
    errors = run.errors
    assert errors is not None
    size = len(pool)
    ok = 0
    clock = time.perf_counter
    began = clock()
    for i in range(start, start + count):
        try:
            if step(pool[i % size]):
                ok += 1
        except Exception as e:
            name = type(e).__name__
            errors[name] = errors.get(name, 0) + 1
    run.seconds += clock() - began
    run.attempts += count
    run.ok += ok
    run.failures += count - ok


def timeBoth(
    pool: list[bytes], count: int, limit: float, chunk: int = 500
) -> tuple[Run, Run]:
    """
    Time sipevents and twisted on the messages of C{pool} in turn, C{count}
    each or until either has spent C{limit} seconds.

    The two take turns on the same chunk of messages, so that both see the
    machine in the same state: a background load slows both down alike,
    rather than whichever happened to run at the time.
    """
    ours, theirs = Run(errors={}), Run(errors={})
    ourStep, theirStep = sipeventsStep(), twistedStep()
    done = 0
    while done < count and max(ours.seconds, theirs.seconds) < limit:
        n = min(chunk, count - done)
        timeLoop(ourStep, pool, done, n, ours)
        timeLoop(theirStep, pool, done, n, theirs)
        done += n
    return ours, theirs


def sipeventsStep() -> Callable[[bytes], bool]:
    """
    One sipevents parse + serialize.
    """

    def step(data: bytes) -> bool:
        return bool(parseMessage(data).toBytes())

    return step


def twistedStep() -> Callable[[bytes], bool]:
    """
    One twisted.protocols.sip parse + serialize, the way
    C{sip.Base.datagramReceived} and C{sip.Base.sendMessage} do it.
    """
    received: list[tsip.Message] = []
    parser = tsip.MessagesParser(received.append)

    def step(data: bytes) -> bool:
        try:
            parser.dataReceived(data)
            parser.dataDone()
        except BaseException:
            # Base.datagramReceived would let this escape into the reactor
            # and leave the parser stuck mid-body; reset so the next datagram
            # gets a fair chance.
            parser.reset()
            del received[:]
            raise
        if len(received) != 1:
            del received[:]
            return False
        out = received.pop().toString().encode("utf-8")
        return bool(out)

    return step


def check(name: str, pool: list[bytes], body: bytes) -> list[str]:
    """
    Sanity checks on the sipevents side before timing: every message of the
    pool is distinct and parses, its body is the expected octets, and
    serializing gives the same bytes.
    """
    problems = []
    if len(set(pool)) != len(pool):
        problems.append(f"{name}: the pool holds repeated messages")
    for data in pool:
        try:
            message = parseMessage(data)
        except ParseError as e:
            problems.append(f"{name}: sipevents.sip.parser rejected it: {e}")
            break
        if message.body != body:
            problems.append(
                f"{name}: body differs ({len(message.body)} != {len(body)})"
            )
            break
        if message.toBytes() != data:
            problems.append(f"{name}: toBytes() is not byte-identical to the input")
            break
    return problems


def arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """
    The command line (see C{--help}).
    """
    parser = argparse.ArgumentParser(
        prog="python -m bench.parse", description=__doc__.strip().split("\n\n")[0]
    )
    parser.add_argument(
        "--count",
        type=harness.atLeast(1),
        default=50000,
        help="messages per case and parser (default 50000)",
    )
    parser.add_argument(
        "--seconds",
        type=harness.atLeast(0.1, float),
        default=5.0,
        help="time limit per case and parser, in seconds (default 5)",
    )
    parser.add_argument(
        "--pool",
        type=harness.atLeast(LARGEST_CACHE + 1),
        default=10000,
        help="distinct messages per case (default 10000; more than "
        f"{LARGEST_CACHE}, the largest sipevents cache)",
    )
    parser.add_argument(
        "--case",
        action="append",
        choices=[name for name, _, _ in CASES],
        help="run only this case (repeatable)",
    )
    return harness.parseArguments(parser, argv, QUICK)


def main(argv: Sequence[str] | None = None) -> int:
    args = arguments(argv)
    cases = [c for c in CASES if not args.case or c[0] in args.case]
    pools = {name: makePool(template, args.pool, 0) for name, template, _ in cases}
    problems = [p for name, _, body in cases for p in check(name, pools[name], body)]
    for problem in problems:
        print(f"WARNING: {problem}")

    results = {}
    for name, template, _ in cases:
        pool = pools[name]
        # Warm up both sides (imports, header-name tables) on other messages,
        # so that the timed pool starts with nothing of its own in a cache.
        warm = makePool(template, 200, 1)
        timeBoth(warm, len(warm), 1.0)
        ours, theirs = timeBoth(pool, args.count, args.seconds)
        size = round(sum(map(len, pool)) / len(pool))
        results[name] = (size, ours, theirs)

    print(
        f"parse + serialize, messages/s (Python {platform.python_version()}, "
        f"Twisted {TWISTED_VERSION}, count {args.count}, "
        f"limit {args.seconds:g} s per run)"
    )
    print(
        f"every iteration parses a different message: {args.pool:,} distinct "
        "messages per case\n(Via branch, From/To tag, Call-ID and CSeq number "
        f"vary), more than the largest\nsipevents cache ({LARGEST_CACHE:,} "
        "entries), walked in order; both parsers get the same messages,\n"
        "taking turns on chunks of 500"
    )
    print()
    header = (
        f"{'case':<14}{'octets':>7}{'sipevents':>12}{'twisted':>12}"
        f"{'ratio':>9}  twisted failures"
    )
    print(header)
    print("-" * (len(header) + 12))
    footnote = False
    for name, (size, ours, theirs) in results.items():
        ratio = ours.okRate / theirs.rate if theirs.rate else float("inf")
        mark = ""
        if theirs.ok == 0:
            mark = "*"
            footnote = True
        errors = ", ".join(
            f"{k} x{v}" for k, v in sorted((theirs.errors or {}).items())
        )
        fails = f"{theirs.failures}/{theirs.attempts}" + (
            f" ({errors})" if errors else ""
        )
        oursText = f"{ours.okRate:,.0f}"
        if ours.failures:
            oursText += f" ({ours.failures} failed!)"
        print(
            f"{name:<14}{size:>7}{oursText:>12}{theirs.rate:>11,.0f}{mark:1}"
            f"{ratio:>8.2f}x  {fails}"
        )
    print()
    if footnote:
        print(
            "* twisted.protocols.sip failed on every attempt (it counts "
            "Content-Length in characters,\n  not octets, so a UTF-8 body never "
            "completes); its figure is attempts/s."
        )
    print("octets = mean message size in the pool")
    print("ratio = sipevents messages/s / twisted messages/s (higher is better)")

    machine = {
        "python": platform.python_version(),
        "twisted": TWISTED_VERSION,
        "count": args.count,
        "seconds": args.seconds,
        "pool": args.pool,
        "distinctMessages": True,
        "largestCache": LARGEST_CACHE,
        "problems": problems,
        "cases": {
            name: {
                "octets": size,
                "sipevents": dict(asdict(ours), rate=ours.okRate),
                "twisted": dict(asdict(theirs), rate=theirs.rate, okRate=theirs.okRate),
                "ratio": (ours.okRate / theirs.rate) if theirs.rate else None,
            }
            for name, (size, ours, theirs) in results.items()
        },
    }
    print("BENCH_PARSE " + json.dumps(machine, sort_keys=True))
    failedOurs = any(ours.failures for _, ours, _ in results.values())
    return 1 if problems or failedOurs else 0


if __name__ == "__main__":
    sys.exit(main())
