# -*- test-case-name: tests.test_sipp -*-
"""
End-to-end tests with a foreign peer: SIPp (Debian's C{sip-tester}) sends
OPTIONS to the real sipevents service over loopback UDP and TCP.

The service runs in this process on the global reactor (built by
L{sipevents.tap.makeService} from the same options C{twistd sipevents} takes),
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
import socket
from typing import Any

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.error import ProcessExitedAlready
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.python.filepath import FilePath
from twisted.trial.unittest import SkipTest, TestCase

from sipevents import tap

LOOPBACK = "127.0.0.1"
SCENARIO = FilePath(__file__).sibling("sipp").child("options_uac.xml")
CALLS = 5


def inCI() -> bool:
    """
    Whether we run under CI, where a missing SIPp is a failure, not a skip.
    """
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def requireSIPp(testCase: TestCase) -> str:
    """
    The path of C{sipp}. Without it the test is skipped, except in CI
    (C{CI=true}), where the end-to-end tests must run and so fail.
    """
    sipp = shutil.which("sipp")
    if sipp is None:
        message = "sipp is not installed (Debian/Ubuntu: apt-get install sip-tester)"
        if inCI():
            testCase.fail(f"{message}; CI is set, so this end-to-end test must run")
        raise SkipTest(message)
    return sipp


def assertSIPpSucceeded(
    testCase: TestCase,
    code: int | None,
    sig: int | None,
    process: _SippProcess,
    statFile: FilePath[str],
    errorFile: FilePath[str],
    calls: int,
) -> None:
    """
    Assert that SIPp exited 0 with every one of C{calls} calls successful;
    a failure shows SIPp's statistics, error log and standard error.
    """
    err = bytes(process.err).decode("utf-8", "replace")
    if sig is not None:
        testCase.fail(f"sipp was killed by signal {sig}: {err[-2000:]}")
    errors = (
        errorFile.getContent().decode("utf-8", "replace") if errorFile.exists() else ""
    )
    stats = readStats(statFile) if statFile.exists() else {}
    detail = (
        f"\nsipp exit code {code}\nstats: {stats}\nerrors log:\n{errors[-4000:]}"
        f"\nstderr:\n{err[-2000:]}"
    )
    testCase.assertEqual(code, 0, "sipp reported failed calls" + detail)
    testCase.assertEqual(stats.get("SuccessfulCall(C)"), str(calls), detail)
    testCase.assertEqual(stats.get("FailedCall(C)"), "0", detail)


def freePort() -> int:
    """
    A loopback port that is free for both UDP and TCP right now.

    The service is given a fixed port rather than port 0 so that one number
    serves its UDP and TCP listeners alike, as SIP's default port does.
    """
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((LOOPBACK, 0))
            port: int = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((LOOPBACK, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no loopback port free for both UDP and TCP")


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
        options = tap.Options()
        options.parseOptions(
            [
                "--listen",
                f"udp:{self.port}:interface={LOOPBACK}",
                "--listen",
                f"tcp:{self.port}:interface={LOOPBACK}",
            ]
        )
        self.service = tap.makeService(options)
        self.service.startService()
        self.addCleanup(self.service.stopService)
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
        statFile = self.work.child(f"stat-{transport}.csv")
        errorFile = self.work.child(f"errors-{transport}.log")
        args = [
            "-sf",
            SCENARIO.path,
            f"{LOOPBACK}:{self.port}",
            "-t",
            transport,
            "-i",
            LOOPBACK,
            "-p",
            str(freePort()),
            "-m",
            str(CALLS),
            "-r",
            str(CALLS),
            "-timeout",
            "20s",
            "-timeout_error",
            "-nostdin",
            "-trace_stat",
            "-stf",
            statFile.path,
            "-trace_err",
            "-error_file",
            errorFile.path,
        ]
        assert self.sipp is not None
        process = _SippProcess()
        reactor.spawnProcess(  # type: ignore[attr-defined]
            process,
            self.sipp,
            [self.sipp, *args],
            env=dict(os.environ),
            path=self.work.path,
            childFDs={0: "w", 1: "r", 2: "r"},
        )
        # SIPp's -timeout bounds the run; this only guards against a hang.
        guard = reactor.callLater(60, process.kill)  # type: ignore[attr-defined]
        self.addCleanup(process.kill)
        try:
            code, sig = yield process.ended
        finally:
            if guard.active():
                guard.cancel()
        assertSIPpSucceeded(self, code, sig, process, statFile, errorFile, CALLS)

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
