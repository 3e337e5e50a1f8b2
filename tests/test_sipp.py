# -*- test-case-name: tests.test_sipp -*-
"""
End-to-end tests with a foreign peer: SIPp (Debian's C{sip-tester}) sends
OPTIONS to the real sipevents service over loopback UDP and TCP.

The service runs in this process on the global reactor (built by
L{sipevents.app.tap.makeService} from the same options C{twistd sipevents} takes),
so trial sees anything it logs as an error and its cleanup is checked. SIPp
runs as a child process (C{tests/sipp/options_uac.xml}); its exit code and
its statistics file (C{-trace_stat}) say whether every call got a 200 that
carries an C{Allow} header.

Without C{sipp} on C{PATH} the tests are skipped, unless the C{CI}
environment variable is set (as CI services set it), in which case they fail:
CI must run them.
"""

from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from twisted.internet import defer, protocol, reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.error import ProcessExitedAlready
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.python.filepath import FilePath
from twisted.trial.unittest import SkipTest, TestCase

from sipevents.app import tap
from sipevents.app.service import SIPEventsService
from sipevents.testing import freePort

LOOPBACK = "127.0.0.1"
#: The SIPp scenarios of every end-to-end test (C{tests/sipp/*.xml}).
SCENARIOS = FilePath(__file__).sibling("sipp")
CALLS = 5

_T = TypeVar("_T")


def inCI() -> bool:
    """
    Whether we run under CI, where a missing SIPp is a failure, not a skip.
    """
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def requirePeer(testCase: TestCase, found: _T | None, missing: str) -> _T:
    """
    What locating a foreign peer (SIPp, Kamailio) C{found}. When it found
    nothing the test is skipped with C{missing} as the reason, except in CI
    (L{inCI}), where the end-to-end tests must run and so fail.
    """
    if found is None:
        if inCI():
            testCase.fail(f"{missing}; CI is set, so this end-to-end test must run")
        raise SkipTest(missing)
    return found


def requireSIPp(testCase: TestCase) -> str:
    """
    The path of C{sipp}, or a skip (a failure in CI) through L{requirePeer}.
    """
    return requirePeer(
        testCase,
        shutil.which("sipp"),
        "sipp is not installed (Debian/Ubuntu: apt-get install sip-tester)",
    )


def assertSIPpSucceeded(
    testCase: TestCase, run: SippRun, result: tuple[int | None, int | None]
) -> None:
    """
    Assert that SIPp's C{run} ended (with C{result}, its C{(exitCode,
    signal)}) with every one of its calls successful; a failure shows
    SIPp's statistics, error log and standard error, and the messages it
    logged when it logs them.
    """
    code, sig = result
    err = bytes(run.process.err).decode("utf-8", "replace")
    messages = "" if run.messageFile is None else f"\nmessages:\n{sippMessages(run)}"
    if sig is not None:
        testCase.fail(f"sipp was killed by signal {sig}: {err[-2000:]}{messages}")
    errors = (
        run.errorFile.getContent().decode("utf-8", "replace")
        if run.errorFile.exists()
        else ""
    )
    stats = readStats(run.statFile) if run.statFile.exists() else {}
    detail = (
        f"\nsipp exit code {code}\nstats: {stats}\nerrors log:\n{errors[-4000:]}"
        f"\nstderr:\n{err[-2000:]}{messages}"
    )
    testCase.assertEqual(code, 0, "sipp reported failed calls" + detail)
    testCase.assertEqual(stats.get("SuccessfulCall(C)"), str(run.calls), detail)
    testCase.assertEqual(stats.get("FailedCall(C)"), "0", detail)


def sippMessages(run: SippRun) -> str:
    """
    The tail of C{run}'s message log (what crossed the wire), for failure
    messages.
    """
    if run.messageFile is None or not run.messageFile.exists():
        return "(none logged)"
    return run.messageFile.getContent().decode("utf-8", "replace")[-6000:]


class _OptionsProbe(protocol.DatagramProtocol):
    """
    Sends one OPTIONS at a time and fires C{answered} on a 200.
    """

    def __init__(self) -> None:
        self.answered: defer.Deferred[bytes] = defer.Deferred()

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        if data.startswith(b"SIP/2.0 200") and not self.answered.called:
            self.answered.callback(data)

    def probe(self, port: int, n: int) -> None:
        local = self.transport.getHost().port  # type: ignore[union-attr]
        self.transport.write(  # type: ignore[union-attr]
            (
                f"OPTIONS sip:probe@{LOOPBACK}:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {LOOPBACK}:{local};branch=z9hG4bKprobe{n};rport\r\n"
                "Max-Forwards: 70\r\n"
                f"From: <sip:probe@{LOOPBACK}>;tag=probe{n}\r\n"
                f"To: <sip:probe@{LOOPBACK}:{port}>\r\n"
                f"Call-ID: probe{n}-{os.getpid()}@{LOOPBACK}\r\n"
                f"CSeq: {n} OPTIONS\r\n"
                "Content-Length: 0\r\n"
                "\r\n"
            ).encode("ascii"),
            (LOOPBACK, port),
        )


class _SippProcess(protocol.ProcessProtocol):
    """
    Collects a SIPp child's output and fires C{ended} with C{(exitCode,
    signal)} when it exits.
    """

    def __init__(self) -> None:
        self.ended: defer.Deferred[tuple[int | None, int | None]] = defer.Deferred()
        self.err = bytearray()
        self.running = True

    def connectionMade(self) -> None:
        # -nostdin: SIPp reads no keys; close its stdin so it never waits.
        self.transport.closeStdin()  # type: ignore[union-attr]

    def outReceived(self, data: bytes) -> None:
        # SIPp redraws its screens on stdout; nothing there is needed.
        pass

    def errReceived(self, data: bytes) -> None:
        self.err.extend(data)
        del self.err[:-65536]

    def processEnded(self, reason: Any) -> None:
        self.running = False
        self.ended.callback((reason.value.exitCode, reason.value.signal))

    def kill(self) -> None:
        """
        Kill this SIPp (and only it, by its PID) if it still runs.
        """
        if self.running and self.transport is not None:
            try:
                self.transport.signalProcess("KILL")
            except ProcessExitedAlready:
                pass


@dataclass
class SippRun:
    """
    A SIPp process started by L{startSipp}.

    @ivar name: names its files in the work folder.
    @ivar port: where it listens (server mode) or sends from (client mode).
    @ivar calls: how many calls it makes or takes before it exits.
    @ivar ended: fires with C{(exitCode, signal)} when it exits.
    @ivar messageFile: its log of every message sent and received, or
        C{None} when it logs none.
    """

    name: str
    port: int
    calls: int
    process: _SippProcess
    ended: Deferred[tuple[int | None, int | None]]
    statFile: FilePath[str]
    errorFile: FilePath[str]
    messageFile: FilePath[str] | None


def startSipp(
    testCase: TestCase,
    sipp: str,
    work: FilePath[str],
    scenario: str,
    *,
    remote: str | None = None,
    transport: str = "u1",
    calls: int = 1,
    rate: int | None = None,
    timeout: int = 20,
    killAfter: float = 60.0,
    name: str | None = None,
    traceMessages: bool = False,
    extra: Sequence[str] = (),
    killInCleanup: bool = True,
) -> SippRun:
    """
    Start SIPp with C{tests/sipp/}C{scenario} on a free loopback port, in
    C{work}: as a client sending to C{remote} (C{"127.0.0.1:PORT"}), or in
    server mode (the scenario starts with a C{recv}) when C{remote} is
    C{None}.

    It stops after C{calls} calls or C{timeout} seconds, whichever is
    first, counting each timed-out call as failed. Should it hang, it is
    killed by its PID after C{killAfter} seconds and, should it still run,
    in a cleanup of C{testCase} (unless C{killInCleanup} is false: the
    caller then kills it in a cleanup of its own, to order it among its
    other cleanups).

    @param transport: SIPp's C{-t} (C{"u1"} UDP, C{"t1"} one TCP
        connection).
    @param rate: calls started a second (SIPp's C{-r}); SIPp's default
        when C{None}.
    @param name: names its statistics, error and message files; the
        scenario's name by default.
    @param traceMessages: log every message sent and received, for
        failure messages (L{sippMessages}).
    @param extra: more arguments for SIPp (C{("-s", user)}).
    """
    port = freePort()
    if name is None:
        name = scenario.split(".")[0]
    statFile = work.child(f"stat-{name}.csv")
    errorFile = work.child(f"errors-{name}.log")
    messageFile = work.child(f"messages-{name}.log") if traceMessages else None
    args = [
        "-sf",
        SCENARIOS.child(scenario).path,
        *([remote] if remote is not None else []),
        "-t",
        transport,
        "-i",
        LOOPBACK,
        "-p",
        str(port),
        "-m",
        str(calls),
        *(["-r", str(rate)] if rate is not None else []),
        "-timeout",
        f"{timeout}s",
        "-timeout_error",
        "-nostdin",
        "-trace_stat",
        "-stf",
        statFile.path,
        "-trace_err",
        "-error_file",
        errorFile.path,
        *(
            ["-trace_msg", "-message_file", messageFile.path]
            if messageFile is not None
            else []
        ),
        *extra,
    ]
    process = _SippProcess()
    reactor.spawnProcess(  # type: ignore[attr-defined]
        process,
        sipp,
        [sipp, *args],
        env=dict(os.environ),
        path=work.path,
        childFDs={0: "w", 1: "r", 2: "r"},
    )
    # SIPp's -timeout bounds the run; this only guards against a hang.
    guard = reactor.callLater(killAfter, process.kill)  # type: ignore[attr-defined]
    if killInCleanup:
        testCase.addCleanup(process.kill)

    def ended(result: Any) -> Any:
        if guard.active():
            guard.cancel()
        return result

    return SippRun(
        name,
        port,
        calls,
        process,
        process.ended.addBoth(ended),
        statFile,
        errorFile,
        messageFile,
    )


def readStats(path: FilePath[str]) -> dict[str, str]:
    """
    The last row of a SIPp statistics file (";"-separated, header first).
    """
    with path.open("r") as f:
        rows = [
            row
            for row in csv.reader(
                (line.decode("utf-8", "replace") for line in f), delimiter=";"
            )
            if row
        ]
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1], strict=False))


def startService(testCase: TestCase, port: int, *arguments: str) -> SIPEventsService:
    """
    Start the service as C{twistd sipevents} would, listening on UDP and
    TCP loopback C{port}, with C{arguments} as further options; it is
    stopped in C{testCase}'s cleanup.
    """
    options = tap.Options()
    options.parseOptions(
        [
            "--listen",
            f"udp:{port}:interface={LOOPBACK}",
            "--listen",
            f"tcp:{port}:interface={LOOPBACK}",
            *arguments,
        ]
    )
    service = tap.makeService(options)
    service.startService()
    testCase.addCleanup(service.stopService)
    return service


class SIPpOptionsTests(TestCase):
    """
    SIPp as an OPTIONS UAC against the running service (RFC 3261 section 11).
    """

    timeout = 90

    def setUp(self) -> Any:
        self.sipp = requireSIPp(self)
        self.work = FilePath(self.mktemp())
        self.work.makedirs()
        self.port = freePort()
        self.service = startService(self, self.port)
        return self.waitUntilListening()

    @defer.inlineCallbacks
    def waitUntilListening(self) -> Any:
        """
        Wait until the service answers an OPTIONS over UDP and accepts a TCP
        connection, so that SIPp's first call does not race the listeners.
        """
        clock: IReactorTime = reactor  # type: ignore[assignment]
        probe = _OptionsProbe()
        probePort = reactor.listenUDP(0, probe, interface=LOOPBACK)  # type: ignore[attr-defined]
        try:
            for n in range(1, 51):
                probe.probe(self.port, n)
                yield deferLater(clock, 0.1, lambda: None)
                if probe.answered.called:
                    break
            else:
                self.fail(f"the service never answered OPTIONS on udp:{self.port}")
        finally:
            yield probePort.stopListening()
        endpoint = TCP4ClientEndpoint(reactor, LOOPBACK, self.port, timeout=5)
        connected = yield endpoint.connect(
            protocol.Factory.forProtocol(protocol.Protocol)
        )
        connected.transport.loseConnection()
        # Let the connection close on both sides before SIPp starts.
        yield deferLater(clock, 0.1, lambda: None)

    @defer.inlineCallbacks
    def runSipp(self, transport: str) -> Any:
        """
        Run SIPp for C{CALLS} OPTIONS calls over C{transport} (C{"u1"} or
        C{"t1"}) and assert that every one succeeded.
        """
        run = startSipp(
            self,
            self.sipp,
            self.work,
            "options_uac.xml",
            remote=f"{LOOPBACK}:{self.port}",
            transport=transport,
            calls=CALLS,
            rate=CALLS,
            name=transport,
        )
        result = yield run.ended
        assertSIPpSucceeded(self, run, result)

    def test_rfc3261_11_optionsOverUDP(self) -> Any:
        """
        Five OPTIONS from SIPp over UDP each get a 200 with an Allow header
        that lists OPTIONS (RFC 3261 section 11.2), sent back where the Via
        and its C{rport} say (RFC 3261 section 18.2.2, RFC 3581 section 4).
        """
        return self.runSipp("u1")

    def test_rfc3261_11_optionsOverTCP(self) -> Any:
        """
        Five OPTIONS from SIPp on one TCP connection each get a 200 with an
        Allow header that lists OPTIONS, on that connection (RFC 3261
        sections 11.2 and 18.2.2).
        """
        return self.runSipp("t1")
