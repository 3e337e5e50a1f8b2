#!/usr/bin/env python
"""
Parse + serialize throughput: L{sipevents.parser} against
C{twisted.protocols.sip}, on the same bytes, in the same run.

For every case the same datagram is parsed and serialized again, over and
over, by:

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

    python bench/parse.py                 # 20,000 messages per case, <= 5 s each
    python bench/parse.py --count 100000 --seconds 10

The last line of output is machine-readable: C{BENCH_PARSE {json}}.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from twisted.protocols import sip as tsip  # noqa: E402

from sipevents.errors import ParseError  # noqa: E402
from sipevents.parser import parseMessage  # noqa: E402

TWISTED_VERSION = importlib.metadata.version("twisted")

# Addresses are loopback or example.com: these bytes are only parsed here, but
# the house rule is that nothing copied into the tree points at a real host.

SUBSCRIBE = (
    "SUBSCRIBE sip:alice@example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK776asdhds77;rport\r\n"
    "Max-Forwards: 70\r\n"
    'From: "Bob" <sip:bob@example.com>;tag=a6c85cf\r\n'
    "To: <sip:alice@example.com>\r\n"
    "Call-ID: a84b4c76e66710@127.0.0.1\r\n"
    "CSeq: 314159 SUBSCRIBE\r\n"
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


def notify(body: bytes) -> bytes:
    """
    An in-dialog NOTIFY (RFC 6665 section 4.2.1.4 / 4.2.2) carrying C{body}.
    """
    head = (
        "NOTIFY sip:bob@127.0.0.1:5070;transport=udp SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK8f2c7e1d;rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@example.com>;tag=ffd2\r\n"
        'To: "Bob" <sip:bob@example.com>;tag=a6c85cf\r\n'
        "Call-ID: a84b4c76e66710@127.0.0.1\r\n"
        "CSeq: 7 NOTIFY\r\n"
        "Contact: <sip:alice@127.0.0.1:5060>\r\n"
        "Event: presence\r\n"
        "Subscription-State: active;expires=3599\r\n"
        "Content-Type: application/pidf+xml\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode("ascii") + body


UTF8_NOTE = "Café ☕ — réunion à 14h"
ASCII_NOTE = "Cafe (coffee) - meeting at 2pm"

CASES: list[tuple[str, bytes, bytes]] = [
    ("subscribe", SUBSCRIBE, b""),
    ("notify-utf8", notify(pidfBody(UTF8_NOTE)), pidfBody(UTF8_NOTE)),
    ("notify-ascii", notify(pidfBody(ASCII_NOTE)), pidfBody(ASCII_NOTE)),
]


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


def timeLoop(step: Callable[[], bool], count: int, limit: float) -> Run:
    """
    Call C{step} up to C{count} times or until C{limit} seconds have passed.

    @param step: parses and serializes once; returns C{True} on success, and
        raises or returns C{False} on failure.
    """
    run = Run(errors={})
    assert run.errors is not None
    clock = time.perf_counter
    start = clock()
    deadline = start + limit
    ok = 0
    attempts = 0
    while attempts < count:
        try:
            if step():
                ok += 1
        except Exception as e:
            name = type(e).__name__
            run.errors[name] = run.errors.get(name, 0) + 1
        attempts += 1
        # Reading the clock every time would cost more than a parse.
        if not attempts & 255 and clock() > deadline:
            break
    run.seconds = clock() - start
    run.attempts = attempts
    run.ok = ok
    run.failures = attempts - ok
    return run


def sipeventsStep(data: bytes) -> Callable[[], bool]:
    """
    One sipevents parse + serialize of C{data}.
    """

    def step() -> bool:
        return bool(parseMessage(data).toBytes())

    return step


def twistedStep(data: bytes) -> Callable[[], bool]:
    """
    One twisted.protocols.sip parse + serialize of C{data}, the way
    C{sip.Base.datagramReceived} and C{sip.Base.sendMessage} do it.
    """
    received: list[tsip.Message] = []
    parser = tsip.MessagesParser(received.append)

    def step() -> bool:
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


def check(name: str, data: bytes, body: bytes) -> list[str]:
    """
    Sanity checks on the sipevents side before timing: the message parses,
    the body is the expected octets, and serializing gives the same bytes.
    """
    problems = []
    try:
        message = parseMessage(data)
    except ParseError as e:
        return [f"{name}: sipevents.parser rejected it: {e}"]
    if message.body != body:
        problems.append(f"{name}: body differs ({len(message.body)} != {len(body)})")
    if message.toBytes() != data:
        problems.append(f"{name}: toBytes() is not byte-identical to the input")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--count",
        type=int,
        default=20000,
        help="messages per case and parser (default 20000)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=5.0,
        help="time limit per case and parser, in seconds (default 5)",
    )
    parser.add_argument(
        "--case",
        action="append",
        choices=[name for name, _, _ in CASES],
        help="run only this case (repeatable)",
    )
    args = parser.parse_args(argv)

    cases = [c for c in CASES if not args.case or c[0] in args.case]
    problems = [p for name, data, body in cases for p in check(name, data, body)]
    for problem in problems:
        print(f"WARNING: {problem}")

    results = {}
    for name, data, _ in cases:
        # Warm caches (header-name keys, interned strings) for both sides.
        timeLoop(sipeventsStep(data), 200, 1.0)
        timeLoop(twistedStep(data), 200, 1.0)
        ours = timeLoop(sipeventsStep(data), args.count, args.seconds)
        theirs = timeLoop(twistedStep(data), args.count, args.seconds)
        results[name] = (len(data), ours, theirs)

    print(
        f"parse + serialize, messages/s (Python {platform.python_version()}, "
        f"Twisted {TWISTED_VERSION}, count {args.count}, "
        f"limit {args.seconds:g} s per run)"
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
    print("ratio = sipevents messages/s / twisted messages/s (higher is better)")

    machine = {
        "python": platform.python_version(),
        "twisted": TWISTED_VERSION,
        "count": args.count,
        "seconds": args.seconds,
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
