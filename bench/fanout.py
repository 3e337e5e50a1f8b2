"""
Fan-out: how long one PUBLISH takes to reach N watchers of one resource,
from the PUBLISH leaving the publisher until the last of the N NOTIFYs it
causes has been answered 200 (N = 1,000 by default).

The script starts C{twistd -n sipevents --store memory} on a free loopback
UDP port and, when it is installed, Kamailio's presence server
(C{tests/kamailio/kamailio.cfg}), and runs the same measurement against
each:

  1. N watchers subscribe to C{sip:fanout@127.0.0.1} (Event: presence,
     Expires: 3600), each in its own dialog; a subscription counts once its
     200 and first NOTIFY have arrived. The watchers are this script: one
     UDP socket with a large receive buffer, a handful of SUBSCRIBEs in
     flight at a time, every NOTIFY answered 200 at once.
  2. It waits C{--settle} seconds (default 6), answering any NOTIFY,
     because a presence subscription that has just had a NOTIFY gets the
     next one only after the package's minimum interval (5 s for our
     presence package, RFC 3856 section 6.10, RFC 6665 section 5.4.10):
     the fan-out must not wait on that throttle.
  3. It sends one PUBLISH (a PIDF document whose note says which round it
     is; the first round an initial PUBLISH, later rounds a modify with
     SIP-If-Match, RFC 3903 section 4.4) and times: the 200 to the PUBLISH,
     the first NOTIFY carrying the new document, and the moment the N-th
     such NOTIFY has been answered. Duplicates (UDP retransmissions) are
     counted, not timed.
  4. Repeats for C{--rounds} rounds (default 3) and reports the median and
     the best.

Only 127.0.0.1 is used; only processes this script started are stopped,
by PID.

    python -m bench.fanout                  # N = 1000, ~1 minute
    python -m bench.fanout --watchers 5000 --rounds 5
    python -m bench.fanout --no-kamailio
    python -m bench.fanout --quick          # to see that it runs

The last line is machine-readable: C{BENCH_FANOUT {json}}.
"""

from __future__ import annotations

import argparse
import json
import secrets
import socket
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from bench import harness
from bench.harness import LOOPBACK

RESOURCE = "fanout"

#: The smallest settings (C{--quick}): a few watchers, one round.
QUICK = {"watchers": 50, "rounds": 1}


@dataclass
class Round:
    """
    One PUBLISH and its fan-out, in milliseconds from the PUBLISH sent.

    @ivar published: the 200 to the PUBLISH arrived.
    @ivar first: the first NOTIFY with the new document arrived.
    @ivar last: the N-th such NOTIFY was answered: the fan-out time.
    @ivar notified: distinct watchers that got the new document.
    @ivar duplicates: NOTIFYs of this round seen again (retransmissions).
    @ivar serverCpu: the server's CPU milliseconds over the round.
    @ivar clientCpu: this script's CPU milliseconds over the round (the
        watchers' share of the time: if it nears C{last}, the watchers,
        not the server, set the pace).
    """

    number: int
    published: float | None = None
    first: float | None = None
    last: float | None = None
    notified: int = 0
    duplicates: int = 0
    serverCpu: float = 0.0
    clientCpu: float = 0.0


@dataclass
class Result:
    """
    Everything measured against one server.
    """

    name: str
    watchers: int
    subscribed: int = 0
    subscribeSeconds: float = 0.0
    rounds: list[Round] = field(default_factory=list)
    error: str = ""

    def fanouts(self) -> list[float]:
        return [r.last for r in self.rounds if r.last is not None]


class Watchers:
    """
    N subscribers on one UDP socket, and the publisher.
    """

    def __init__(self, serverPort: int, count: int) -> None:
        self.server = (LOOPBACK, serverPort)
        self.count = count
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for option in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
            if option is None:
                continue
            try:
                # Room for every NOTIFY of a round at once, so that none is
                # dropped (and retransmitted 500 ms later) while we answer.
                self.sock.setsockopt(socket.SOL_SOCKET, option, 32 * 1024 * 1024)
                break
            except OSError:
                continue
        self.sock.bind((LOOPBACK, 0))
        self.port = self.sock.getsockname()[1]
        self.run = secrets.token_hex(4)
        self.etag: str | None = None
        self.publishCSeq = 0

    def close(self) -> None:
        self.sock.close()

    def callId(self, i: int) -> str:
        return f"fan{i}-{self.run}@{LOOPBACK}"

    def subscribe(self, i: int) -> bytes:
        port = self.server[1]
        return (
            f"SUBSCRIBE sip:{RESOURCE}@{LOOPBACK}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {LOOPBACK}:{self.port};"
            f"branch=z9hG4bKfan{i}{self.run};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:w{i}@{LOOPBACK}>;tag=w{i}{self.run}\r\n"
            f"To: <sip:{RESOURCE}@{LOOPBACK}>\r\n"
            f"Call-ID: {self.callId(i)}\r\n"
            "CSeq: 1 SUBSCRIBE\r\n"
            f"Contact: <sip:w{i}@{LOOPBACK}:{self.port}>\r\n"
            "Event: presence\r\n"
            "Accept: application/pidf+xml\r\n"
            "Expires: 3600\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()

    def publish(self, marker: str) -> bytes:
        port = self.server[1]
        self.publishCSeq += 1
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<presence xmlns="urn:ietf:params:xml:ns:pidf" '
            f'entity="sip:{RESOURCE}@{LOOPBACK}">\n'
            f'<tuple id="fan"><status><basic>open</basic></status>'
            f"<note>{marker}</note></tuple>\n</presence>\n"
        ).encode()
        match = f"SIP-If-Match: {self.etag}\r\n" if self.etag else ""
        head = (
            f"PUBLISH sip:{RESOURCE}@{LOOPBACK}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {LOOPBACK}:{self.port};"
            f"branch=z9hG4bKpub{self.publishCSeq}{self.run};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:{RESOURCE}@{LOOPBACK}>;tag=pub{self.run}\r\n"
            f"To: <sip:{RESOURCE}@{LOOPBACK}>\r\n"
            f"Call-ID: pub-{self.run}@{LOOPBACK}\r\n"
            f"CSeq: {self.publishCSeq} PUBLISH\r\n"
            "Event: presence\r\n"
            "Expires: 3600\r\n"
            f"{match}"
            "Content-Type: application/pidf+xml\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        return head + body

    def receive(self, timeout: float) -> tuple[bytes, tuple[str, int]] | None:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recvfrom(65535)
        except TimeoutError:
            return None

    def subscribeAll(self, window: int = 50, deadline: float = 120.0) -> int:
        """
        Subscribe every watcher; returns how many got their 200 and first
        NOTIFY.
        """
        ok: set[bytes] = set()
        notified: set[bytes] = set()
        sentAt: dict[int, float] = {}
        ids = {self.callId(i).encode(): i for i in range(self.count)}
        following = 0
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            done = len(ok & notified)
            if done == self.count:
                return done
            inFlight = following - done
            while following < self.count and inFlight < window:
                self.sock.sendto(self.subscribe(following), self.server)
                sentAt[following] = time.monotonic()
                following += 1
                inFlight += 1
            got = self.receive(0.5)
            if got is None:
                # Re-send what has had no answer for a second (UDP).
                now = time.monotonic()
                for callId, i in ids.items():
                    if i < following and callId not in ok and now - sentAt[i] > 1.0:
                        self.sock.sendto(self.subscribe(i), self.server)
                        sentAt[i] = now
                continue
            data, addr = got
            if data.startswith(b"NOTIFY "):
                reply, callId = harness.answerNotify(data)
                self.sock.sendto(reply, addr)
                notified.add(callId)
            elif data.startswith(b"SIP/2.0 "):
                code = data[8:11]
                callId = harness.answerNotify(data)[1]
                if code == b"200" and callId in ids:
                    ok.add(callId)
                elif code[:1] != b"1":
                    raise RuntimeError(f"SUBSCRIBE answered {data[:60]!r}")
        return len(ok & notified)

    def drain(self, seconds: float) -> int:
        """
        Answer whatever NOTIFY arrives for C{seconds}; returns how many.
        """
        end = time.monotonic() + seconds
        count = 0
        while (left := end - time.monotonic()) > 0:
            got = self.receive(left)
            if got is None:
                break
            data, addr = got
            if data.startswith(b"NOTIFY "):
                self.sock.sendto(harness.answerNotify(data)[0], addr)
                count += 1
        return count

    def fanOut(self, number: int, pids: list[int], timeout: float = 30.0) -> Round:
        """
        One PUBLISH, timed until every watcher has answered its NOTIFY.
        """
        marker = f"round {number} {self.run}".encode()
        result = Round(number)
        seen: set[bytes] = set()
        message = self.publish(marker.decode())
        cpuBefore = harness.cpuSeconds(pids)
        clientBefore = time.process_time()
        began = time.perf_counter()
        self.sock.sendto(message, self.server)
        end = time.monotonic() + timeout
        while len(seen) < self.count or result.published is None:
            left = end - time.monotonic()
            if left <= 0:
                break
            got = self.receive(left)
            if got is None:
                break
            data, addr = got
            now = time.perf_counter()
            if data.startswith(b"NOTIFY "):
                reply, callId = harness.answerNotify(data)
                self.sock.sendto(reply, addr)
                if marker not in data:
                    continue
                if callId in seen:
                    result.duplicates += 1
                    continue
                seen.add(callId)
                if result.first is None:
                    result.first = (now - began) * 1000
                if len(seen) == self.count:
                    result.last = (time.perf_counter() - began) * 1000
            elif data.startswith(b"SIP/2.0 ") and b"PUBLISH" in data:
                if data[8:11] == b"200":
                    result.published = (now - began) * 1000
                    for line in data.split(b"\r\n"):
                        if line.lower().startswith(b"sip-etag:"):
                            self.etag = line.split(b":", 1)[1].strip().decode()
                elif data[8:9] != b"1":
                    raise RuntimeError(f"PUBLISH answered {data[:60]!r}")
        result.notified = len(seen)
        result.clientCpu = (time.process_time() - clientBefore) * 1000
        result.serverCpu = (harness.cpuSeconds(pids) - cpuBefore) * 1000
        return result


def measure(server: harness.Server, name: str, args: argparse.Namespace) -> Result:
    """
    Subscribe the watchers to C{server}, then time C{args.rounds} fan-outs.
    """
    result = Result(name, args.watchers)
    watchers = Watchers(server.port, args.watchers)
    try:
        began = time.monotonic()
        result.subscribed = watchers.subscribeAll()
        result.subscribeSeconds = round(time.monotonic() - began, 2)
        print(
            f"  {name}: {result.subscribed}/{args.watchers} watchers subscribed "
            f"in {result.subscribeSeconds:.1f} s",
            flush=True,
        )
        if result.subscribed < args.watchers:
            result.error = "not every watcher could subscribe"
            return result
        for number in range(1, args.rounds + 1):
            watchers.drain(args.settle)
            one = watchers.fanOut(number, [server.pid])
            result.rounds.append(one)
            print(
                f"  {name} round {number}: PUBLISH 200 after "
                f"{_ms(one.published)}, first NOTIFY {_ms(one.first)}, "
                f"{one.notified}/{args.watchers} answered after {_ms(one.last)} "
                f"({one.duplicates} duplicates; CPU: server {one.serverCpu:.0f} ms, "
                f"watchers {one.clientCpu:.0f} ms)",
                flush=True,
            )
            if server.process.poll() is not None:
                result.error = "server exited"
                break
    except RuntimeError as error:
        result.error = str(error)
    finally:
        watchers.close()
    return result


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """
    The command line (see C{--help}).
    """
    parser = argparse.ArgumentParser(
        prog="python -m bench.fanout",
        description="Time from one PUBLISH until N watchers have answered "
        "their NOTIFY: sipevents vs Kamailio, UDP on loopback.",
    )
    parser.add_argument(
        "--watchers", type=harness.atLeast(1), default=1000, help="N (default 1000)"
    )
    parser.add_argument(
        "--rounds",
        type=harness.atLeast(1),
        default=3,
        help="PUBLISHes to time (default 3)",
    )
    parser.add_argument(
        "--settle",
        type=harness.atLeast(0.0, float),
        default=6.0,
        help="seconds to wait before each PUBLISH, past the presence "
        "package's minimum NOTIFY interval (default 6)",
    )
    harness.addServerOptions(parser, store="memory")
    harness.addKamailioOptions(parser)
    return harness.parseArguments(parser, argv, QUICK)


def main(argv: Sequence[str] | None = None) -> int:
    args = arguments(argv)
    kamailio = None if args.no_kamailio else harness.findKamailio()
    if args.kamailio_only and kamailio is None:
        print(harness.KAMAILIO_MISSING, file=sys.stderr)
        return 2
    began = time.monotonic()
    results: list[Result] = []
    problems = None
    with harness.workDirectory("sipevents-fanout-", args.keep) as work:
        print(f"fan-out of one PUBLISH to {args.watchers} watchers; work dir {work}")
        if not args.kamailio_only:
            try:
                with harness.twistdServer(
                    work, args.port, store=args.store, extra=args.twistd_arg
                ) as server:
                    print(f"sipevents: twistd pid {server.pid}, --store {args.store}")
                    results.append(measure(server, "sipevents", args))
            except harness.ServerFailed as failure:
                print(failure, file=sys.stderr)
                return 2
            problems = server.logProblems
        if kamailio is not None:
            try:
                with harness.kamailioServer(work, kamailio, args.port) as server:
                    version = harness.kamailioVersion(kamailio[0])
                    print(f"kamailio: {version}, pid {server.pid}")
                    results.append(measure(server, "kamailio", args))
            except harness.ServerFailed as failure:
                print(failure, file=sys.stderr)

    print()
    figures: dict[str, dict[str, object]] = {}
    for result in results:
        fanouts = result.fanouts()
        median = statistics.median(fanouts) if fanouts else None
        best = min(fanouts) if fanouts else None
        figures[result.name] = {
            "watchers": result.watchers,
            "subscribed": result.subscribed,
            "subscribeSeconds": result.subscribeSeconds,
            "medianMs": round(median, 1) if median is not None else None,
            "bestMs": round(best, 1) if best is not None else None,
            "rounds": [asdict(r) for r in result.rounds],
            "error": result.error,
        }
        if median is None:
            print(f"{result.name}: no complete fan-out ({result.error or 'timeout'})")
        else:
            print(
                f"{result.name}: one PUBLISH to {result.watchers} watchers, all "
                f"NOTIFYs answered in {median:.1f} ms (median of "
                f"{len(fanouts)}; best {best:.1f} ms)"
            )
    ratio = None
    ours = figures.get("sipevents", {}).get("medianMs")
    theirs = figures.get("kamailio", {}).get("medianMs")
    if ours and theirs:
        ratio = round(float(theirs) / float(ours), 3)  # type: ignore[arg-type]
        print(
            f"ratio Kamailio time / sipevents time: {ratio:.2f} "
            "(above 1: we are faster)"
        )
    if problems:
        print(
            f"WARNING: the sipevents log has {problems} traceback or "
            "unhandled-error lines"
        )
    if args.keep:
        print(f"logs kept in {work}")
    print(
        "BENCH_FANOUT "
        + json.dumps(
            {
                "servers": figures,
                "ratio": ratio,
                "serverLogProblems": problems,
                "seconds": round(time.monotonic() - began, 1),
            },
            sort_keys=True,
        )
    )
    complete = [r for r in results if r.fanouts()]
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
