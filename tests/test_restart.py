# -*- test-case-name: tests.test_restart -*-
"""
Persistence end to end (issue 3 item 7): C{twistd sipevents --store
sqlite:PATH} in a child process is killed with SIGKILL right after it has
answered a SUBSCRIBE and sent its NOTIFY, and started again on the same
file:

  - the subscription is still there: a PUBLISH for its resource after the
    restart produces a NOTIFY in the same dialog (Call-ID, tags) with a
    CSeq above every CSeq used before the kill (RFC 6665 section 4.2.2,
    RFC 3261 section 12.2.1.1);
  - a publication made before the kill is still there: a poll after the
    restart gets it (RFC 6665 section 4.4.3, RFC 3903 section 4);
  - a subscription that expired while the server was down gets no NOTIFY
    at all (neither a final one at start-up nor one for the PUBLISH);
  - the start-up log says how many subscriptions were restored.

The watchers and the publisher are a plain UDP socket in this process
(messages from L{sipevents.testing}'s factories, what comes back parsed
with L{sipevents.sip.parser.parseMessage}).
Only 127.0.0.1 is used, and only the twistd processes this test started
are signalled, by PID.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from sipevents.sip.message import Request, Response
from sipevents.sip.parser import parseMessage
from sipevents.testing import responseTo, sipRequest
from tests.test_sipp import LOOPBACK, freePort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# twisted/scripts/twistd.py has no "if __name__ == '__main__'" block.
TWISTD = (
    "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"
)

PIDF = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:{user}@127.0.0.1">'
    '<tuple id="t"><status><basic>open</basic></status>'
    "<note>{note}</note></tuple></presence>\n"
)


class Peer:
    """
    Watchers and a publisher on one UDP socket: sends requests, collects
    what comes back, answers every NOTIFY 200.

    @ivar notifies: every NOTIFY received, in order.
    """

    def __init__(self, serverPort: int) -> None:
        self.server = (LOOPBACK, serverPort)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.port: int = self.sock.getsockname()[1]
        self.notifies: list[Request] = []
        self.responses: list[Response] = []
        self.n = 0

    def close(self) -> None:
        self.sock.close()

    def send(
        self,
        method: str,
        user: str,
        callId: str,
        fromTag: str,
        cseq: int = 1,
        toTag: str | None = None,
        expires: int | None = None,
        body: str = "",
    ) -> str:
        """
        Send a request; returns its branch.
        """
        self.n += 1
        branch = f"z9hG4bKrestart{self.n}x{os.getpid()}"
        fields = [("Event", "presence")]
        if expires is not None:
            fields.append(("Expires", str(expires)))
        request = sipRequest(
            method,
            f"sip:{user}@{LOOPBACK}:{self.server[1]}",
            branch=branch,
            sentBy=f"{LOOPBACK}:{self.port}",
            rport=True,
            fromURI=f"sip:watcher@{LOOPBACK}",
            fromTag=fromTag,
            toURI=f"sip:{user}@{LOOPBACK}",
            toTag=toTag,
            callId=callId,
            cseq=cseq,
            contact=f"<sip:watcher@{LOOPBACK}:{self.port}>",
            headers=fields,
            body=body.encode(),
            contentType="application/pidf+xml" if body else None,
        )
        self.sock.sendto(request.toBytes(), self.server)
        return branch

    def publish(self, user: str, callId: str, fromTag: str, note: str) -> str:
        """
        Publish C{user}'s presence with C{note} for an hour; returns the
        branch.
        """
        return self.send(
            "PUBLISH",
            user,
            callId,
            fromTag,
            expires=3600,
            body=PIDF.format(user=user, note=note),
        )

    def pump(self, seconds: float) -> None:
        """
        Receive for C{seconds}, answering NOTIFYs.
        """
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                return
            message = parseMessage(data)
            if isinstance(message, Response):
                self.responses.append(message)
                continue
            assert isinstance(message, Request)
            if message.method == "NOTIFY":
                self.notifies.append(message)
                self.sock.sendto(responseTo(message, 200).toBytes(), addr)

    def waitFor(self, test: Any, seconds: float = 10.0) -> bool:
        """
        Receive until C{test()} is true or C{seconds} pass.
        """
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if test():
                return True
            self.pump(0.05)
        return bool(test())

    def response(self, branch: str) -> Response | None:
        for response in self.responses:
            if response.topVia is not None and response.topVia.branch == branch:
                if response.code >= 200:
                    return response
        return None

    def notifiesFor(self, callId: str) -> list[Request]:
        return [n for n in self.notifies if n.callId == callId]


class SIGKILLRestartTests(SynchronousTestCase):
    """
    Subscriptions and publications survive SIGKILL with the SQLite store.
    """

    def setUp(self) -> None:
        self.work = os.path.abspath(self.mktemp())
        os.makedirs(self.work)
        self.store = os.path.join(self.work, "store.sqlite")
        self.port = freePort()
        self.processes: list[subprocess.Popen[bytes]] = []
        self.addCleanup(self.stopAll)
        self.peer = Peer(self.port)
        self.addCleanup(self.peer.close)

    def startServer(self, run: int) -> subprocess.Popen[bytes]:
        """
        Start C{twistd -n sipevents} on the store and wait until it serves
        SUBSCRIBE.
        """
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (ROOT, env.get("PYTHONPATH")) if p
        )
        log = os.path.join(self.work, f"twistd-{run}.log")
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                TWISTD,
                "-n",
                "--pidfile",
                "",
                "--logfile",
                log,
                "sipevents",
                "--listen",
                f"udp:{self.port}:interface={LOOPBACK}",
                "--store",
                f"sqlite:{self.store}",
                "--min-expires",
                "1",
            ],
            cwd=self.work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)
        deadline = time.monotonic() + 30
        n = 0
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.fail(f"twistd exited with {process.returncode}:\n{self.tail(log)}")
            n += 1
            # A poll (RFC 6665 section 4.4.3) keeps nothing: 200 once the
            # notifier serves, 503 while the store loads.
            branch = self.peer.send(
                "SUBSCRIBE", "probe", f"probe{run}-{n}", f"p{n}", expires=0
            )
            self.peer.pump(0.2)
            response = self.peer.response(branch)
            if response is not None and response.code == 200:
                return process
        self.fail(f"twistd never served SUBSCRIBE:\n{self.tail(log)}")

    def tail(self, path: str) -> str:
        try:
            with open(path, errors="replace") as f:
                return "".join(f.readlines()[-40:])
        except FileNotFoundError:
            return f"({path} missing)"

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """
        SIGKILL one twistd we started, by its PID.
        """
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)

    def stopAll(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    self.kill(process)

    def subscribe(self, user: str, callId: str, fromTag: str, expires: int) -> Response:
        """
        Subscribe and wait for the 200 and the first NOTIFY.
        """
        branch = self.peer.send("SUBSCRIBE", user, callId, fromTag, expires=expires)
        ok = self.peer.waitFor(
            lambda: (
                self.peer.response(branch) is not None and self.peer.notifiesFor(callId)
            )
        )
        self.assertTrue(ok, f"no 200 and NOTIFY for {callId}")
        response = self.peer.response(branch)
        assert response is not None
        self.assertEqual(response.code, 200)
        return response

    def test_rfc6665_4_2_2_sigkillAndRestart(self) -> None:
        """
        See the module docstring: after SIGKILL and a restart on the same
        SQLite file, the live subscription is NOTIFYed in its dialog with a
        higher CSeq, the publication is still there, and the subscription
        that expired while the server was down hears nothing.
        """
        first = self.startServer(1)
        kept = self.subscribe("alice", "kept@127.0.0.1", "k1", expires=3600)
        expiring = self.subscribe("bob", "expiring@127.0.0.1", "e1", expires=2)
        branch = self.peer.publish("carol", "pub@127.0.0.1", "pub1", "before the kill")
        self.assertTrue(self.peer.waitFor(lambda: self.peer.response(branch)))
        published = self.peer.response(branch)
        assert published is not None
        self.assertEqual(published.code, 200)
        before = self.peer.notifiesFor("kept@127.0.0.1")
        assert before[-1].cseq is not None
        lastCSeq = max(n.cseq.number for n in before if n.cseq is not None)
        # Right after the 200s and NOTIFYs: no graceful shutdown at all.
        self.kill(first)

        # Bob's subscription (2 s) expires while the server is down.
        time.sleep(3)
        notifiesBefore = len(self.peer.notifies)
        self.startServer(2)
        self.peer.pump(1.0)
        self.assertEqual(
            self.peer.notifiesFor("expiring@127.0.0.1")[1:],
            [],
            "a subscription that expired while down got a NOTIFY",
        )

        # State changes after the restart reach the kept subscription.
        branch = self.peer.publish(
            "alice", "pub2@127.0.0.1", "pub2", "after the restart"
        )
        branchBob = self.peer.publish("bob", "pub3@127.0.0.1", "pub3", "nobody watches")
        self.assertTrue(
            self.peer.waitFor(
                lambda: len(self.peer.notifiesFor("kept@127.0.0.1")) > len(before)
            ),
            "no NOTIFY after the restart",
        )
        self.peer.pump(1.0)
        after = self.peer.notifiesFor("kept@127.0.0.1")[len(before) :]
        [notify] = after
        assert kept.toAddr is not None
        assert notify.fromAddr is not None and notify.toAddr is not None
        assert notify.cseq is not None
        self.assertEqual(notify.fromAddr.tag, kept.toAddr.tag)
        self.assertEqual(notify.toAddr.tag, "k1")
        self.assertGreater(notify.cseq.number, lastCSeq)
        self.assertIn(b"after the restart", notify.body)
        self.assertEqual(notify.headers.get("Subscription-State")[:6], "active")
        bobAnswer = self.peer.response(branchBob)
        self.assertIsNotNone(bobAnswer)
        self.assertEqual(len(self.peer.notifiesFor("expiring@127.0.0.1")), 1)
        self.assertIsNotNone(expiring)

        # The publication made before the kill is still there.
        branch = self.peer.send("SUBSCRIBE", "carol", "poll@127.0.0.1", "q1", expires=0)
        self.assertTrue(
            self.peer.waitFor(lambda: self.peer.notifiesFor("poll@127.0.0.1"))
        )
        [poll] = self.peer.notifiesFor("poll@127.0.0.1")
        self.assertIn(b"before the kill", poll.body)
        self.assertGreaterEqual(len(self.peer.notifies), notifiesBefore)

        with open(os.path.join(self.work, "twistd-2.log"), errors="replace") as f:
            log = f.read()
        self.assertIn("restored 1 subscriptions and 1 publications", log)
        self.assertNotIn("Traceback", log)
