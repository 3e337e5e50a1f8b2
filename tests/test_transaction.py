# -*- test-case-name: tests.test_transaction -*-
"""
Tests for L{sipevents.sip.transaction}: RFC 3261 section 17 transactions, their
timers (appendix A) and matching (sections 17.1.3, 17.2.3 and 9.2).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from itertools import pairwise
from typing import Any

from twisted.internet.defer import CancelledError, Deferred, fail
from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from sipevents.config import TimerConfig
from sipevents.errors import (
    InvalidTransition,
    SIPError,
    TransactionTimeout,
    TransportFailure,
)
from sipevents.interfaces import IRetransmission, IRetransmittingSender
from sipevents.sip.message import Request, Response, makeResponse
from sipevents.sip.parser import parseMessage
from sipevents.sip.transaction import (
    MAGIC_COOKIE,
    ClientInput,
    ClientState,
    ClientTransaction,
    InviteServerInput,
    InviteServerState,
    InviteServerTransaction,
    ServerInput,
    ServerState,
    ServerTransaction,
    TransactionManager,
)
from sipevents.testing import sipRequest


def makeRequest(
    method: str = "SUBSCRIBE",
    *,
    branch: str | None = "z9hG4bKtest1",
    uri: str = "sip:alice@127.0.0.1",
    **kwargs: Any,
) -> Request:
    """
    L{sipRequest} as a peer at 127.0.0.1 would send it (C{branch=None}
    for none), built without the parser, which would refuse the requests
    that test matching on a CSeq method of their own.
    """
    kwargs.setdefault("fromURI", "sip:bob@127.0.0.1")
    kwargs.setdefault("fromTag", "from1")
    kwargs.setdefault("toURI", "sip:alice@127.0.0.1")
    kwargs.setdefault("callId", "call1@127.0.0.1")
    return sipRequest(
        method, uri, branch="" if branch is None else branch, parsed=False, **kwargs
    )


class ServerSends:
    """
    A server transaction's C{send}: records C{(time, response)}.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.sent: list[tuple[float, Response]] = []

    def __call__(self, response: Response) -> None:
        self.sent.append((self.clock.seconds(), response))

    @property
    def times(self) -> list[float]:
        return [t for t, _ in self.sent]

    @property
    def codes(self) -> list[int]:
        return [r.code for _, r in self.sent]


class ClientSends:
    """
    A client transaction's C{send}: records the time of each transmission.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.times: list[float] = []

    def __call__(self) -> None:
        self.times.append(self.clock.seconds())


def intervals(times: list[float]) -> list[float]:
    return [b - a for a, b in pairwise(times)]


#: Which slot holds each timer input's IDelayedCall.
TIMER_SLOTS: dict[Enum, str] = {
    ClientInput.TIMER_E: "_timerE",
    ClientInput.TIMER_F: "_timerF",
    ClientInput.TIMER_K: "_timerK",
    ServerInput.TIMER_J: "_timerJ",
    InviteServerInput.TIMER_TRYING: "_timerTrying",
    InviteServerInput.TIMER_G: "_timerG",
    InviteServerInput.TIMER_H: "_timerH",
    InviteServerInput.TIMER_I: "_timerI",
}


class TransactionTestCase(SynchronousTestCase):
    """
    A manager on a L{Clock} with the default timers (T1 0.5 s, T2 4 s,
    T4 5 s), and helpers that check the timer invariant as time passes.
    """

    timers = TimerConfig()

    def setUp(self) -> None:
        self.clock = Clock()
        self.manager = TransactionManager(self.clock, self.timers)
        self.watched: list[Any] = []

    def assertIdle(self) -> None:
        """
        No timer is left that would do anything: nothing on the clock but
        the call of a kept-armed queue (Timers E and F) with no live
        handle, which fires with nothing to do.
        """
        idle = [
            queue._call
            for queue in self.manager._queues.values()
            if queue.keepArmed and len(queue) == 0 and queue._call is not None
        ]
        self.assertEqual(
            [
                call
                for call in self.clock.getDelayedCalls()
                if not any(call is other for other in idle)
            ],
            [],
        )

    def assertTimersOwned(self, transaction: Any) -> None:
        """
        Every armed timer of C{transaction} belongs to its current state, and
        a terminated transaction has none.
        """
        for slot, owners in type(transaction)._timerOwners:
            call = getattr(transaction, slot)
            if call is not None:
                self.assertIn(transaction.state, owners, slot)
                self.assertTrue(call.active(), slot)

    def advanceTo(self, until: float, step: float = 0.125) -> None:
        """
        Advance the clock to C{until} in small steps (binary fractions, so
        the recorded send times are exact), checking the timer invariant of
        every watched transaction after each step.
        """
        while self.clock.seconds() < until:
            self.clock.advance(step)
            for transaction in self.watched:
                self.assertTimersOwned(transaction)

    def server(
        self, request: Request, reliable: bool = False
    ) -> tuple[ServerTransaction | InviteServerTransaction, ServerSends]:
        sends = ServerSends(self.clock)
        transaction = self.manager.createServerTransaction(request, sends, reliable)
        self.watched.append(transaction)
        return transaction, sends

    def invite(
        self, reliable: bool = False, **kw: Any
    ) -> tuple[InviteServerTransaction, ServerSends, Request]:
        request = makeRequest("INVITE", **kw)
        transaction, sends = self.server(request, reliable)
        assert isinstance(transaction, InviteServerTransaction)
        return transaction, sends, request

    def client(
        self,
        request: Request | None = None,
        reliable: bool = False,
        onProvisional: Callable[[Response], object] | None = None,
    ) -> tuple[ClientTransaction, ClientSends, Request]:
        if request is None:
            request = makeRequest("NOTIFY", branch=self.manager.newBranch())
        sends = ClientSends(self.clock)
        transaction = self.manager.createClientTransaction(
            request, sends, reliable, onProvisional
        )
        self.watched.append(transaction)
        return transaction, sends, request


class NonInviteClientTests(TransactionTestCase):
    """
    The non-INVITE client transaction (RFC 3261 section 17.1.2).
    """

    def test_rfc3261_17_1_2_2_sendsRequestInTrying(self) -> None:
        """
        A new client transaction is in "Trying" and has passed the request to
        the transport (RFC 3261 section 17.1.2.2).
        """
        transaction, sends, _ = self.client()
        self.assertEqual(sends.times, [0.0])
        self.assertIs(transaction.state, ClientState.TRYING)
        self.assertNoResult(transaction.deferred)
        self.assertEqual(self.manager.clientTransactionCount, 1)

    def test_rfc3261_17_1_2_2_timerE_doublesToT2(self) -> None:
        """
        Over an unreliable transport, Timer E retransmits the request at
        intervals starting at T1 and doubling up to T2: 500 ms, 1 s, 2 s,
        4 s, 4 s ... (RFC 3261 section 17.1.2.2).
        """
        _, sends, _ = self.client()
        self.advanceTo(31.875)
        self.assertEqual(
            intervals(sends.times), [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]
        )

    def test_rfc3261_17_1_2_2_timerE_inProceedingIsT2(self) -> None:
        """
        Once a provisional response moved the transaction to "Proceeding",
        each firing of Timer E resets it to T2 (RFC 3261 section 17.1.2.2).
        """
        transaction, sends, request = self.client()
        self.advanceTo(1.0)
        self.assertTrue(self.manager.matchResponse(makeResponse(request, 100)))
        self.assertIs(transaction.state, ClientState.PROCEEDING)
        self.advanceTo(14.0)
        # The timer armed in "Trying" fires at 1.5; every later one at T2.
        self.assertEqual(sends.times, [0.0, 0.5, 1.5, 5.5, 9.5, 13.5])

    def test_rfc3261_17_1_2_2_timerE_reliable(self) -> None:
        """
        Over a reliable transport the request is sent once: there is no
        Timer E (RFC 3261 section 17.1.2.2).
        """
        transaction, sends, _ = self.client(reliable=True)
        self.assertIsNone(transaction._timerE)
        self.advanceTo(31.875)
        self.assertEqual(sends.times, [0.0])

    def test_rfc3261_17_1_2_2_timerF_unreliable(self) -> None:
        """
        Without a final response, Timer F (64*T1) fails the deferred with
        L{TransactionTimeout}, stops retransmissions, terminates the
        transaction and logs it (RFC 3261 section 17.1.2.2).
        """
        transaction, sends, request = self.client()
        with capturedLogs() as events:
            self.advanceTo(31.875)
            self.assertNoResult(transaction.deferred)
            self.advanceTo(32.0)
        failure = self.failureResultOf(transaction.deferred, TransactionTimeout)
        self.assertEqual(failure.value.status, 408)
        self.assertIs(transaction.state, ClientState.TERMINATED)
        self.assertIdle()
        self.assertEqual(self.manager.clientTransactionCount, 0)
        self.assertFalse(self.manager.matchResponse(makeResponse(request, 200)))
        [event] = [e for e in events if "Timer F" in e["log_format"]]
        self.assertEqual(event["method"], "NOTIFY")
        self.assertEqual(event["timeout"], 32.0)
        count = len(sends.times)
        self.advanceTo(40.0)
        self.assertEqual(len(sends.times), count)

    def test_rfc3261_17_1_2_2_timerF_reliable(self) -> None:
        """
        Timer F runs over reliable transports too (RFC 3261 section
        17.1.2.2).
        """
        transaction, _, _ = self.client(reliable=True)
        self.clock.advance(31.999)
        self.assertNoResult(transaction.deferred)
        self.clock.advance(0.001)
        self.failureResultOf(transaction.deferred, TransactionTimeout)
        self.assertIdle()

    def test_rfc3261_17_1_2_2_timerF_inProceeding(self) -> None:
        """
        Timer F also fires in "Proceeding": a provisional response does not
        extend the transaction (RFC 3261 section 17.1.2.2).
        """
        transaction, _, request = self.client()
        self.manager.matchResponse(makeResponse(request, 180))
        self.advanceTo(32.0)
        self.failureResultOf(transaction.deferred, TransactionTimeout)
        self.assertIs(transaction.state, ClientState.TERMINATED)
        self.assertIdle()

    def test_rfc3261_17_1_2_2_provisionalPassedToTU(self) -> None:
        """
        Provisional responses go to C{onProvisional} and move "Trying" to
        "Proceeding"; the deferred waits for the final response (RFC 3261
        section 17.1.2.2).
        """
        seen: list[int] = []
        transaction, _, request = self.client(
            onProvisional=lambda r: seen.append(r.code)
        )
        self.manager.matchResponse(makeResponse(request, 100))
        self.manager.matchResponse(makeResponse(request, 183))
        self.assertEqual(seen, [100, 183])
        self.assertIs(transaction.state, ClientState.PROCEEDING)
        self.assertNoResult(transaction.deferred)

    def test_rfc3261_17_1_2_2_onProvisionalErrorLogged(self) -> None:
        """
        An exception from C{onProvisional} is logged and does not break the
        transaction.
        """

        def broken(response: Response) -> None:
            raise ZeroDivisionError()

        transaction, _, request = self.client(onProvisional=broken)
        with capturedLogs() as events:
            self.manager.matchResponse(makeResponse(request, 100))
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertTrue(any("log_failure" in e for e in events))
        self.assertIs(transaction.state, ClientState.PROCEEDING)

    def test_rfc3261_17_1_2_2_finalResponse(self) -> None:
        """
        A final response fires the deferred, moves to "Completed" and stops
        retransmissions (RFC 3261 section 17.1.2.2).
        """
        transaction, sends, request = self.client()
        self.advanceTo(0.5)
        response = makeResponse(request, 200, toTag="to1")
        self.manager.matchResponse(response)
        self.assertIs(self.successResultOf(transaction.deferred), response)
        self.assertIs(transaction.state, ClientState.COMPLETED)
        self.assertIsNone(transaction._timerE)
        self.assertIsNone(transaction._timerF)
        self.advanceTo(4.0)
        self.assertEqual(sends.times, [0.0, 0.5])

    def test_rfc3261_17_1_2_2_finalFromProceeding(self) -> None:
        """
        A final response in "Proceeding" also completes the transaction (RFC
        3261 section 17.1.2.2).
        """
        transaction, _, request = self.client()
        self.manager.matchResponse(makeResponse(request, 100))
        response = makeResponse(request, 489, toTag="to1")
        self.manager.matchResponse(response)
        self.assertIs(self.successResultOf(transaction.deferred), response)
        self.assertIs(transaction.state, ClientState.COMPLETED)

    def test_rfc3261_17_1_2_2_timerK_unreliable(self) -> None:
        """
        Over an unreliable transport the transaction stays "Completed" for
        Timer K (T4), absorbing retransmitted responses, then terminates and
        leaves the manager (RFC 3261 section 17.1.2.2).
        """
        transaction, _, request = self.client()
        self.advanceTo(1.0)
        response = makeResponse(request, 200, toTag="to1")
        self.manager.matchResponse(response)
        self.advanceTo(5.875)
        self.assertIs(transaction.state, ClientState.COMPLETED)
        # A retransmission matches and is absorbed: the TU saw one response.
        self.assertTrue(self.manager.matchResponse(makeResponse(request, 200)))
        self.assertIs(self.successResultOf(transaction.deferred), response)
        self.advanceTo(6.0)
        self.assertIs(transaction.state, ClientState.TERMINATED)
        self.assertEqual(self.manager.clientTransactionCount, 0)
        self.assertFalse(self.manager.matchResponse(makeResponse(request, 200)))
        self.assertIdle()

    def test_rfc3261_17_1_2_2_timerK_reliable(self) -> None:
        """
        Over a reliable transport Timer K is zero: the final response
        terminates the transaction at once (RFC 3261 section 17.1.2.2).
        """
        transaction, _, request = self.client(reliable=True)
        self.manager.matchResponse(makeResponse(request, 200, toTag="to1"))
        self.successResultOf(transaction.deferred)
        self.assertIs(transaction.state, ClientState.TERMINATED)
        self.assertEqual(self.manager.clientTransactionCount, 0)
        self.assertIdle()

    def test_rfc3261_17_1_4_sendRaises(self) -> None:
        """
        When the transport fails at once, the deferred fails with
        L{TransportFailure} carrying the cause and the transaction terminates
        (RFC 3261 section 17.1.4).
        """
        error = OSError("unreachable")

        def send() -> None:
            raise error

        request = makeRequest("NOTIFY", branch=self.manager.newBranch())
        transaction = self.manager.createClientTransaction(request, send, False)
        failure = self.failureResultOf(transaction.deferred, TransportFailure)
        self.assertIs(failure.value.cause, error)
        self.assertEqual(failure.value.status, 503)
        self.assertIs(transaction.state, ClientState.TERMINATED)
        self.assertIdle()
        self.assertEqual(self.manager.clientTransactionCount, 0)

    def test_rfc3261_17_1_4_sendDeferredFails(self) -> None:
        """
        C{send} may return a L{Deferred}; its failure, even later, is a
        transport error (RFC 3261 section 17.1.4).
        """
        pending: Deferred[None] = Deferred()
        request = makeRequest("NOTIFY", branch=self.manager.newBranch())
        transaction = self.manager.createClientTransaction(
            request, lambda: pending, True
        )
        self.assertNoResult(transaction.deferred)
        pending.errback(ConnectionRefusedError())
        failure = self.failureResultOf(transaction.deferred, TransportFailure)
        self.assertIsInstance(failure.value.cause, ConnectionRefusedError)
        self.assertIdle()

    def test_rfc3261_17_1_4_retransmissionFails(self) -> None:
        """
        A retransmission that the transport cannot send also fails the
        transaction, and no timer is left behind (RFC 3261 section 17.1.4).
        """
        calls: list[int] = []

        def send() -> Deferred[None] | None:
            calls.append(1)
            return fail(OSError()) if len(calls) == 2 else None

        request = makeRequest("NOTIFY", branch=self.manager.newBranch())
        transaction = self.manager.createClientTransaction(request, send, False)
        self.clock.advance(0.5)
        self.failureResultOf(transaction.deferred, TransportFailure)
        self.assertIdle()

    def test_rfc3261_17_1_4_transportErrorAfterFinal(self) -> None:
        """
        A transport error reported after the final response changes nothing.
        """
        transaction, _, request = self.client()
        response = makeResponse(request, 200, toTag="to1")
        self.manager.matchResponse(response)
        transaction.transportError(OSError())
        self.assertIs(transaction.state, ClientState.COMPLETED)
        self.assertIs(self.successResultOf(transaction.deferred), response)

    def test_cancelDeferredAbandons(self) -> None:
        """
        Cancelling the deferred abandons the transaction: no more
        retransmissions, no timers, gone from the manager.
        """
        transaction, sends, _ = self.client()
        transaction.deferred.cancel()
        self.failureResultOf(transaction.deferred, CancelledError)
        self.assertIs(transaction.state, ClientState.TERMINATED)
        self.assertIdle()
        self.advanceTo(5.0)
        self.assertEqual(sends.times, [0.0])
        self.assertEqual(self.manager.clientTransactionCount, 0)

    def test_rfc3261_8_1_3_1_errorStatuses(self) -> None:
        """
        A timeout is treated as 408 and a transport failure as 503 (RFC 3261
        section 8.1.3.1): the exceptions are L{SIPError}s with those codes.
        """
        self.assertIsInstance(TransactionTimeout(), SIPError)
        self.assertEqual(TransactionTimeout().status, 408)
        self.assertEqual(TransportFailure().status, 503)
        self.assertIsNone(TransportFailure().cause)

    def test_createRejectsInviteAndAck(self) -> None:
        """
        Only non-INVITE client transactions exist here; ACK never has one
        (RFC 3261 section 17.1).
        """
        for method in ("INVITE", "ACK"):
            request = makeRequest(method, branch=self.manager.newBranch())
            self.assertRaises(
                ValueError,
                self.manager.createClientTransaction,
                request,
                lambda: None,
                False,
            )

    def test_rfc3261_8_1_1_7_createNeedsMagicCookie(self) -> None:
        """
        The request must carry a top Via whose branch starts with the magic
        cookie (RFC 3261 section 8.1.1.7).
        """
        for branch in (None, "abc123"):
            self.assertRaises(
                ValueError,
                self.manager.createClientTransaction,
                makeRequest("NOTIFY", branch=branch),
                lambda: None,
                False,
            )

    def test_createRejectsBranchInUse(self) -> None:
        """
        Two live client transactions cannot share branch and method.
        """
        _, _, request = self.client()
        self.assertRaises(
            ValueError,
            self.manager.createClientTransaction,
            request,
            lambda: None,
            False,
        )


class ClientMatchingTests(TransactionTestCase):
    """
    Matching responses to client transactions (RFC 3261 section 17.1.3).
    """

    def test_rfc3261_17_1_3_branchAndMethod(self) -> None:
        """
        A response matches when its top Via branch and its CSeq method are
        those of the request (RFC 3261 section 17.1.3).
        """
        transaction, _, request = self.client()
        self.assertTrue(self.manager.matchResponse(makeResponse(request, 200)))
        self.successResultOf(transaction.deferred)

    def test_rfc3261_17_1_3_cseqMethodDiffers(self) -> None:
        """
        A response with the same branch but another CSeq method (a CANCEL's)
        does not match (RFC 3261 section 17.1.3).
        """
        transaction, _, request = self.client()
        cancel = makeRequest(
            "CANCEL", branch=request.topVia.branch if request.topVia else None
        )
        self.assertFalse(self.manager.matchResponse(makeResponse(cancel, 200)))
        self.assertNoResult(transaction.deferred)

    def test_rfc3261_17_1_3_branchDiffers(self) -> None:
        """
        A response with another branch does not match (RFC 3261 section
        17.1.3).
        """
        transaction, _, _ = self.client()
        other = makeRequest("NOTIFY", branch=self.manager.newBranch())
        self.assertFalse(self.manager.matchResponse(makeResponse(other, 200)))
        self.assertFalse(
            self.manager.matchResponse(makeResponse(makeRequest(branch=None), 200))
        )
        self.assertNoResult(transaction.deferred)

    def test_rfc3261_7_3_1_branchCaseInsensitive(self) -> None:
        """
        The branch is a token, compared case-insensitively (RFC 3261 section
        7.3.1).
        """
        request = makeRequest("NOTIFY", branch="z9hG4bKAbCdEf")
        transaction, _, _ = self.client(request)
        response = makeResponse(makeRequest("NOTIFY", branch="z9hG4bKabcdef"), 200)
        self.assertTrue(self.manager.matchResponse(response))
        self.successResultOf(transaction.deferred)

    def test_rfc3261_8_1_1_7_newBranch(self) -> None:
        """
        New branches start with the magic cookie and are unique (RFC 3261
        section 8.1.1.7).
        """
        branches = {self.manager.newBranch() for _ in range(1000)}
        self.assertEqual(len(branches), 1000)
        for branch in branches:
            self.assertTrue(branch.startswith(MAGIC_COOKIE))
            self.assertGreaterEqual(len(branch), len(MAGIC_COOKIE) + 16)


class NonInviteServerTests(TransactionTestCase):
    """
    The non-INVITE server transaction (RFC 3261 section 17.2.2).
    """

    def test_rfc3261_17_2_2_tryingDiscardsRetransmissions(self) -> None:
        """
        In "Trying", request retransmissions are discarded: there is no
        response to repeat yet (RFC 3261 section 17.2.2).
        """
        request = makeRequest()
        transaction, sends = self.server(request)
        self.assertIsInstance(transaction, ServerTransaction)
        self.assertIs(transaction.state, ServerState.TRYING)
        self.assertTrue(self.manager.absorbRequest(makeRequest()))
        self.assertEqual(sends.sent, [])

    def test_rfc3261_17_2_2_proceedingResendsProvisional(self) -> None:
        """
        A provisional response moves to "Proceeding"; a retransmitted request
        then gets the most recent provisional response again (RFC 3261
        section 17.2.2).
        """
        request = makeRequest()
        transaction, sends = self.server(request)
        transaction.respond(makeResponse(request, 100))
        transaction.respond(makeResponse(request, 183))
        self.assertIs(transaction.state, ServerState.PROCEEDING)
        transaction.requestRetransmitted()
        self.assertEqual(sends.codes, [100, 183, 183])

    def test_rfc3261_17_2_2_completedResendsFinal(self) -> None:
        """
        In "Completed", each request retransmission gets the final response
        again (RFC 3261 section 17.2.2).
        """
        request = makeRequest()
        transaction, sends = self.server(request)
        final = makeResponse(request, 202, toTag="srv")
        transaction.respond(final)
        self.assertIs(transaction.state, ServerState.COMPLETED)
        self.assertTrue(self.manager.absorbRequest(makeRequest()))
        self.assertTrue(self.manager.absorbRequest(makeRequest()))
        self.assertEqual([r for _, r in sends.sent], [final] * 3)
        self.assertIs(transaction.lastResponse, final)

    def test_rfc3261_17_2_2_timerJ_unreliable(self) -> None:
        """
        Over an unreliable transport the transaction stays "Completed" for
        Timer J (64*T1), then terminates and leaves the manager (RFC 3261
        section 17.2.2).
        """
        request = makeRequest()
        transaction, _ = self.server(request)
        transaction.respond(makeResponse(request, 200, toTag="srv"))
        self.advanceTo(31.875)
        self.assertIs(transaction.state, ServerState.COMPLETED)
        self.assertIs(self.manager.findServerTransaction(makeRequest()), transaction)
        self.advanceTo(32.0)
        self.assertIs(transaction.state, ServerState.TERMINATED)
        self.assertIsNone(self.manager.findServerTransaction(makeRequest()))
        self.assertEqual(self.manager.serverTransactionCount, 0)
        self.assertIdle()

    def test_rfc3261_17_2_2_timerJ_reliable(self) -> None:
        """
        Over a reliable transport Timer J is zero: the final response
        terminates the transaction at once (RFC 3261 section 17.2.2).
        """
        request = makeRequest(transport="TCP")
        transaction, sends = self.server(request, reliable=True)
        transaction.respond(makeResponse(request, 200, toTag="srv"))
        self.assertEqual(sends.codes, [200])
        self.assertIs(transaction.state, ServerState.TERMINATED)
        self.assertEqual(self.manager.serverTransactionCount, 0)
        self.assertIdle()

    def test_rfc3261_17_2_2_secondFinalRaises(self) -> None:
        """
        A second final response is refused with L{InvalidTransition} and not
        sent (RFC 3261 section 17.2.2: it MUST be discarded).
        """
        request = makeRequest()
        transaction, sends = self.server(request)
        transaction.respond(makeResponse(request, 200, toTag="srv"))
        error = self.assertRaises(
            InvalidTransition,
            transaction.respond,
            makeResponse(request, 500, toTag="srv"),
        )
        self.assertIn("final response", str(error))
        self.assertIn("Completed", str(error))
        self.assertIn("17.2.2", str(error))
        self.assertIs(error.state, ServerState.COMPLETED)
        self.assertIs(error.input, ServerInput.FINAL)
        self.assertEqual(sends.codes, [200])
        self.assertIs(transaction.state, ServerState.COMPLETED)

    def test_rfc3261_17_2_2_provisionalAfterFinalRaises(self) -> None:
        """
        A provisional response after the final one is refused too.
        """
        request = makeRequest()
        transaction, sends = self.server(request)
        transaction.respond(makeResponse(request, 200, toTag="srv"))
        self.assertRaises(
            InvalidTransition, transaction.respond, makeResponse(request, 100)
        )
        self.assertEqual(sends.codes, [200])

    def test_rfc3261_17_2_2_respondWhenTerminatedRaises(self) -> None:
        """
        A terminated transaction refuses responses.
        """
        request = makeRequest(transport="TCP")
        transaction, _ = self.server(request, reliable=True)
        transaction.respond(makeResponse(request, 200, toTag="srv"))
        error = self.assertRaises(
            InvalidTransition,
            transaction.respond,
            makeResponse(request, 200, toTag="srv"),
        )
        self.assertIn("Terminated", str(error))

    def test_respondBadStatusCode(self) -> None:
        """
        Status codes outside 100-699 are refused (RFC 3261 section 21).
        """
        request = makeRequest()
        transaction, sends = self.server(request)
        for code in (99, 700):
            self.assertRaises(
                ValueError, transaction.respond, makeResponse(request, code)
            )
        self.assertEqual(sends.sent, [])
        self.assertIs(transaction.state, ServerState.TRYING)

    def test_rfc3261_17_2_4_transportError(self) -> None:
        """
        When a response cannot be sent, the TU is told through C{onFailure}
        and the transaction terminates (RFC 3261 section 17.2.4).
        """
        request = makeRequest()
        failures: list[SIPError] = []
        error = OSError("gone")

        def send(response: Response) -> None:
            raise error

        transaction = self.manager.createServerTransaction(request, send, False)
        transaction.onFailure = failures.append
        transaction.respond(makeResponse(request, 200, toTag="srv"))
        self.assertIs(transaction.state, ServerState.TERMINATED)
        [failure] = failures
        assert isinstance(failure, TransportFailure)
        self.assertIs(failure.cause, error)
        self.assertIdle()
        self.assertEqual(self.manager.serverTransactionCount, 0)

    def test_rfc3261_17_2_4_transportErrorDeferred(self) -> None:
        """
        A L{Deferred} returned by C{send} that fails is a transport error
        (RFC 3261 section 17.2.4), in "Proceeding" as in "Completed".
        """
        request = makeRequest()
        pending: Deferred[None] = Deferred()
        transaction = self.manager.createServerTransaction(
            request, lambda response: pending, False
        )
        transaction.respond(makeResponse(request, 100))
        pending.errback(OSError())
        self.assertIs(transaction.state, ServerState.TERMINATED)

    def test_rfc3261_17_2_4_transportErrorInTryingIgnored(self) -> None:
        """
        Nothing is sent in "Trying", so a transport error there is ignored.
        """
        transaction, _ = self.server(makeRequest())
        transaction.transportError()
        self.assertIs(transaction.state, ServerState.TRYING)

    def test_onFailureErrorLogged(self) -> None:
        """
        An exception from C{onFailure} is logged, not raised.
        """
        request = makeRequest()
        transaction, _ = self.server(request)
        transaction.respond(makeResponse(request, 100))

        def broken(error: SIPError) -> None:
            raise ZeroDivisionError()

        transaction.onFailure = broken
        transaction.transportError(OSError())
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertIs(transaction.state, ServerState.TERMINATED)


class InviteServerTests(TransactionTestCase):
    """
    The INVITE server transaction (RFC 3261 section 17.2.1), used to refuse
    INVITE with a non-2xx final response.
    """

    def test_rfc3261_17_2_1_sends100Trying(self) -> None:
        """
        If the TU has not answered within 200 ms, the transaction sends 100
        (Trying), without a To tag (RFC 3261 section 17.2.1).
        """
        transaction, sends, _ = self.invite()
        self.assertIs(transaction.state, InviteServerState.PROCEEDING)
        self.advanceTo(0.125)
        self.assertEqual(sends.sent, [])
        self.advanceTo(0.25)
        self.assertEqual(sends.codes, [100])
        [(_, trying)] = sends.sent
        self.assertIsNone(trying.toAddr.tag if trying.toAddr else None)
        transaction.requestRetransmitted()
        self.assertEqual(sends.codes, [100, 100])

    def test_rfc3261_17_2_1_no100WhenTUAnswers(self) -> None:
        """
        A response from the TU within 200 ms makes the 100 (Trying)
        unnecessary (RFC 3261 section 17.2.1).
        """
        transaction, sends, request = self.invite()
        transaction.respond(makeResponse(request, 180, toTag="srv"))
        self.advanceTo(1.0)
        self.assertEqual(sends.codes, [180])

    def test_rfc3261_17_2_1_timerG_doublesToT2(self) -> None:
        """
        Over an unreliable transport, Timer G retransmits a 300-699 response
        at intervals starting at T1 and doubling up to T2 (RFC 3261 section
        17.2.1).
        """
        transaction, sends, request = self.invite()
        transaction.respond(makeResponse(request, 405, toTag="srv"))
        self.assertIs(transaction.state, InviteServerState.COMPLETED)
        self.advanceTo(31.875)
        self.assertEqual(sends.codes, [405] * 11)
        self.assertEqual(
            intervals(sends.times), [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]
        )

    def test_rfc3261_17_2_1_timerG_reliable(self) -> None:
        """
        Over a reliable transport there is no Timer G (RFC 3261 section
        17.2.1).
        """
        transaction, sends, request = self.invite(reliable=True, transport="TCP")
        transaction.respond(makeResponse(request, 405, toTag="srv"))
        self.assertIsNone(transaction._timerG)
        self.advanceTo(31.875)
        self.assertEqual(sends.codes, [405])

    def test_rfc3261_17_2_1_timerH_unreliable(self) -> None:
        """
        Without an ACK, Timer H (64*T1) stops retransmissions, terminates the
        transaction, tells the TU with L{TransactionTimeout} and logs it (RFC
        3261 section 17.2.1).
        """
        transaction, sends, request = self.invite()
        failures: list[SIPError] = []
        transaction.onFailure = failures.append
        transaction.respond(makeResponse(request, 405, toTag="srv"))
        with capturedLogs() as events:
            self.advanceTo(31.875)
            self.assertEqual(failures, [])
            self.advanceTo(32.0)
        self.assertIs(transaction.state, InviteServerState.TERMINATED)
        [failure] = failures
        self.assertIsInstance(failure, TransactionTimeout)
        self.assertTrue(any("Timer H" in e["log_format"] for e in events))
        self.assertIdle()
        self.assertEqual(self.manager.serverTransactionCount, 0)
        count = len(sends.sent)
        self.advanceTo(40.0)
        self.assertEqual(len(sends.sent), count)

    def test_rfc3261_17_2_1_timerH_reliable(self) -> None:
        """
        Timer H runs over reliable transports too (RFC 3261 section 17.2.1).
        """
        transaction, _, request = self.invite(reliable=True, transport="TCP")
        transaction.respond(makeResponse(request, 405, toTag="srv"))
        self.clock.advance(31.999)
        self.assertIs(transaction.state, InviteServerState.COMPLETED)
        self.clock.advance(0.001)
        self.assertIs(transaction.state, InviteServerState.TERMINATED)

    def test_rfc3261_17_2_1_ackConfirms_timerI_unreliable(self) -> None:
        """
        An ACK in "Completed" moves to "Confirmed", which stops Timer G;
        further ACKs are absorbed until Timer I (T4) terminates the
        transaction (RFC 3261 section 17.2.1).
        """
        transaction, sends, request = self.invite()
        transaction.respond(makeResponse(request, 405, toTag="srv"))
        self.advanceTo(1.0)
        ack = makeRequest("ACK", toTag="srv")
        self.assertIs(self.manager.findServerTransaction(ack), transaction)
        self.assertTrue(self.manager.absorbRequest(ack))
        self.assertIs(transaction.state, InviteServerState.CONFIRMED)
        self.assertIsNone(transaction._timerG)
        self.assertIsNone(transaction._timerH)
        self.advanceTo(5.875)
        self.assertTrue(self.manager.absorbRequest(makeRequest("ACK", toTag="srv")))
        self.assertTrue(self.manager.absorbRequest(makeRequest("INVITE")))
        self.assertIs(transaction.state, InviteServerState.CONFIRMED)
        self.advanceTo(6.0)
        self.assertIs(transaction.state, InviteServerState.TERMINATED)
        self.assertEqual(sends.times, [0.0, 0.5])
        self.assertFalse(self.manager.absorbRequest(makeRequest("ACK", toTag="srv")))
        self.assertIdle()

    def test_rfc3261_17_2_1_timerI_reliable(self) -> None:
        """
        Over a reliable transport Timer I is zero: the ACK terminates the
        transaction at once (RFC 3261 section 17.2.1).
        """
        transaction, _, request = self.invite(reliable=True, transport="TCP")
        transaction.respond(makeResponse(request, 405, toTag="srv"))
        transaction.ackReceived()
        self.assertIs(transaction.state, InviteServerState.TERMINATED)
        self.assertIdle()
        self.assertEqual(self.manager.serverTransactionCount, 0)

    def test_rfc3261_17_2_1_2xxTerminates(self) -> None:
        """
        A 2xx is sent once and terminates the transaction at once: its
        retransmissions belong to the TU (RFC 3261 section 17.2.1).
        """
        transaction, sends, request = self.invite()
        transaction.respond(makeResponse(request, 200, toTag="srv"))
        self.assertIs(transaction.state, InviteServerState.TERMINATED)
        self.advanceTo(10.0)
        self.assertEqual(sends.codes, [200])
        self.assertIdle()
        self.assertIsNone(
            self.manager.findServerTransaction(makeRequest("ACK", toTag="srv"))
        )

    def test_rfc3261_17_2_1_retransmittedInvite(self) -> None:
        """
        A retransmitted INVITE gets the most recent provisional response in
        "Proceeding", the final response in "Completed" (RFC 3261 section
        17.2.1).
        """
        transaction, sends, request = self.invite()
        self.assertTrue(self.manager.absorbRequest(makeRequest("INVITE")))
        self.assertEqual(sends.sent, [])
        transaction.respond(makeResponse(request, 180, toTag="srv"))
        self.assertTrue(self.manager.absorbRequest(makeRequest("INVITE")))
        self.assertEqual(sends.codes, [180, 180])
        transaction.respond(makeResponse(request, 405, toTag="srv"))
        self.assertTrue(self.manager.absorbRequest(makeRequest("INVITE")))
        self.assertEqual(sends.codes, [180, 180, 405, 405])

    def test_rfc3261_17_2_1_ackInProceedingAbsorbed(self) -> None:
        """
        An ACK before any final response is absorbed and changes nothing.
        """
        transaction, sends, _ = self.invite()
        transaction.ackReceived()
        self.assertIs(transaction.state, InviteServerState.PROCEEDING)
        self.assertEqual(sends.sent, [])

    def test_rfc3261_17_2_1_respondAfterFinalRaises(self) -> None:
        """
        Once "Completed", the TU cannot respond again: L{InvalidTransition},
        nothing sent.
        """
        transaction, sends, request = self.invite()
        transaction.respond(makeResponse(request, 405, toTag="srv"))
        for code in (180, 200, 486):
            error = self.assertRaises(
                InvalidTransition,
                transaction.respond,
                makeResponse(request, code, toTag="srv"),
            )
            self.assertIn("17.2.1", str(error))
        self.assertEqual(sends.codes, [405])

    def test_rfc3261_17_2_4_transportErrorInCompleted(self) -> None:
        """
        A transport error while retransmitting the final response terminates
        the transaction and tells the TU (RFC 3261 section 17.2.4).
        """
        transaction, _, request = self.invite()
        failures: list[SIPError] = []
        transaction.onFailure = failures.append
        transaction.respond(makeResponse(request, 405, toTag="srv"))
        transaction.transportError(OSError())
        self.assertIs(transaction.state, InviteServerState.TERMINATED)
        self.assertIsInstance(failures[0], TransportFailure)
        self.assertIdle()


class ServerMatchingTests(TransactionTestCase):
    """
    Matching requests to server transactions (RFC 3261 section 17.2.3) and
    finding the target of a CANCEL (section 9.2).
    """

    def test_rfc3261_17_2_3_branchSentByMethod(self) -> None:
        """
        With a magic-cookie branch, a request matches when branch, sent-by
        and method are those of the request that created the transaction
        (RFC 3261 section 17.2.3).
        """
        transaction, _ = self.server(makeRequest())
        find = self.manager.findServerTransaction
        self.assertIs(find(makeRequest()), transaction)
        # The other fields do not take part.
        self.assertIs(find(makeRequest(callId="x", fromTag="y", cseq=9)), transaction)
        self.assertIsNone(find(makeRequest(branch="z9hG4bKother")))
        self.assertIsNone(find(makeRequest(sentBy="127.0.0.1:5071")))
        self.assertIsNone(find(makeRequest(sentBy="127.0.0.2:5070")))
        self.assertIsNone(find(makeRequest("PUBLISH")))

    def test_rfc3261_17_2_3_sentByDefaultPort(self) -> None:
        """
        A sent-by without a port equals one with the transport's default
        port (RFC 3261 sections 18.2.2 and 19.1.2).
        """
        transaction, _ = self.server(makeRequest(sentBy="127.0.0.1"))
        found = self.manager.findServerTransaction(makeRequest(sentBy="127.0.0.1:5060"))
        self.assertIs(found, transaction)

    def test_rfc3261_17_2_3_ackMatchesInvite(self) -> None:
        """
        An ACK matches the INVITE transaction with its branch (RFC 3261
        section 17.2.3), never a non-INVITE one.
        """
        invite, _ = self.server(makeRequest("INVITE"))
        subscribe, _ = self.server(makeRequest(branch="z9hG4bKsub"))
        find = self.manager.findServerTransaction
        self.assertIs(find(makeRequest("ACK")), invite)
        self.assertIsNone(find(makeRequest("ACK", branch="z9hG4bKsub")))
        self.assertIsNotNone(subscribe)

    def test_rfc3261_17_2_3_cancelDoesNotMatchInvite(self) -> None:
        """
        A CANCEL shares the INVITE's branch but is a transaction of its own
        (RFC 3261 section 9.2 and 17.2.3).
        """
        invite, _ = self.server(makeRequest("INVITE"))
        self.assertIsNone(self.manager.findServerTransaction(makeRequest("CANCEL")))
        cancel, _ = self.server(makeRequest("CANCEL"))
        self.assertIs(self.manager.findServerTransaction(makeRequest("CANCEL")), cancel)
        self.assertIs(self.manager.findServerTransaction(makeRequest("INVITE")), invite)

    def test_rfc3261_17_2_3_rfc2543Retransmission(self) -> None:
        """
        Without a magic-cookie branch, a request matches when Request-URI, To
        tag, From tag, Call-ID, CSeq and top Via are equal (RFC 3261 section
        17.2.3).
        """
        for branch in (None, "1234abcd"):
            transaction, _ = self.server(makeRequest(branch=branch))
            found = self.manager.findServerTransaction(makeRequest(branch=branch))
            self.assertIs(found, transaction)
            transaction.respond(makeResponse(transaction.request, 200, toTag="t"))
            self.clock.advance(32)

    def test_rfc3261_17_2_3_rfc2543FieldsCompared(self) -> None:
        """
        Each RFC 2543 matching field takes part (RFC 3261 section 17.2.3).
        """
        kw: dict[str, Any] = {"branch": None, "toTag": "tt"}
        self.server(makeRequest(**kw))
        find = self.manager.findServerTransaction
        self.assertIsNotNone(find(makeRequest(**kw)))
        for change in (
            {"uri": "sip:carol@127.0.0.1"},
            {"toTag": "other"},
            {"fromTag": "other"},
            {"callId": "other@127.0.0.1"},
            {"cseq": 2},
            {"sentBy": "127.0.0.1:5071"},
            {"viaParams": ("maddr=127.0.0.1",)},
            {"branch": "1234"},
        ):
            self.assertIsNone(find(makeRequest(**{**kw, **change})), change)
        self.assertIsNone(find(makeRequest("PUBLISH", **kw)))

    def test_rfc3261_17_2_3_rfc2543ReceivedIgnored(self) -> None:
        """
        The received and rport parameters that this host's transport stamps
        on the top Via (RFC 3261 section 18.2.1, RFC 3581) do not take part
        in RFC 2543 matching.
        """
        transaction, _ = self.server(
            makeRequest(branch=None, viaParams=("received=127.0.0.9", "rport=5070"))
        )
        found = self.manager.findServerTransaction(
            makeRequest(branch=None, viaParams=("received=127.0.0.8", "rport=6000"))
        )
        self.assertIs(found, transaction)

    def test_rfc3261_17_2_3_rfc2543AckUsesResponseToTag(self) -> None:
        """
        An RFC 2543 ACK matches the INVITE by Request-URI, From tag, Call-ID,
        CSeq number and top Via, and by the To tag of the response the
        transaction sent (RFC 3261 section 17.2.3).
        """
        transaction, _, request = self.invite(branch=None)
        find = self.manager.findServerTransaction
        self.assertIsNone(find(makeRequest("ACK", branch=None, toTag="srv")))
        transaction.respond(makeResponse(request, 405, toTag="srv"))
        self.assertIs(find(makeRequest("ACK", branch=None, toTag="srv")), transaction)
        self.assertIs(find(makeRequest("ACK", branch=None, toTag="SRV")), transaction)
        self.assertIsNone(find(makeRequest("ACK", branch=None, toTag="nope")))
        self.assertIsNone(find(makeRequest("ACK", branch=None, toTag="srv", cseq=2)))
        # The INVITE retransmission still matches on its own (tagless) To.
        self.assertIs(find(makeRequest("INVITE", branch=None)), transaction)
        self.assertTrue(
            self.manager.absorbRequest(makeRequest("ACK", branch=None, toTag="srv"))
        )
        self.assertIs(transaction.state, InviteServerState.CONFIRMED)
        self.clock.advance(5)
        self.assertEqual(self.manager._servers, {})

    def test_rfc3261_9_2_cancelTarget(self) -> None:
        """
        A CANCEL refers to the INVITE transaction it would match if it were
        not a CANCEL (RFC 3261 section 9.2).
        """
        invite, _ = self.server(makeRequest("INVITE"))
        self.assertIs(self.manager.findCancelTarget(makeRequest("CANCEL")), invite)
        self.assertIsNone(
            self.manager.findCancelTarget(makeRequest("CANCEL", branch="z9hG4bKx"))
        )
        self.assertIsNone(
            self.manager.findCancelTarget(makeRequest("CANCEL", sentBy="127.0.0.1:1"))
        )

    def test_rfc3261_9_2_cancelTargetRFC2543(self) -> None:
        """
        Without a magic-cookie branch the CANCEL matches by the RFC 2543
        fields, which RFC 3261 section 9.1 makes equal to the INVITE's.
        """
        invite, _ = self.server(makeRequest("INVITE", branch=None))
        cancel = makeRequest("CANCEL", branch=None)
        self.assertIs(self.manager.findCancelTarget(cancel), invite)
        self.assertIsNone(
            self.manager.findCancelTarget(makeRequest("CANCEL", branch=None, cseq=7))
        )

    def test_rfc3261_9_2_cancelTargetOtherMethods(self) -> None:
        """
        By default only an INVITE transaction is a CANCEL target; with
        C{anyMethod} any transaction but a CANCEL's is (RFC 3261 section
        9.2).
        """
        subscribe, _ = self.server(makeRequest())
        self.server(makeRequest("CANCEL", branch="z9hG4bKcancelonly"))
        cancel = makeRequest("CANCEL")
        self.assertIsNone(self.manager.findCancelTarget(cancel))
        self.assertIs(self.manager.findCancelTarget(cancel, anyMethod=True), subscribe)
        self.assertIsNone(
            self.manager.findCancelTarget(
                makeRequest("CANCEL", branch="z9hG4bKcancelonly"), anyMethod=True
            )
        )

    def test_rfc3261_9_2_cancelTargetGoneAfterTermination(self) -> None:
        """
        A terminated INVITE transaction is no longer a CANCEL target (answer
        481, RFC 3261 section 9.2).
        """
        invite, _ = self.server(makeRequest("INVITE"))
        invite.respond(makeResponse(invite.request, 200, toTag="srv"))
        self.assertIsNone(self.manager.findCancelTarget(makeRequest("CANCEL")))

    def test_createRejectsAckAndDuplicates(self) -> None:
        """
        An ACK never creates a transaction, and a request that matches one
        cannot create another.
        """
        self.assertRaises(
            ValueError,
            self.manager.createServerTransaction,
            makeRequest("ACK"),
            lambda r: None,
            False,
        )
        self.server(makeRequest())
        self.assertRaises(
            ValueError,
            self.manager.createServerTransaction,
            makeRequest(),
            lambda r: None,
            False,
        )

    def test_absorbRequestNew(self) -> None:
        """
        L{TransactionManager.absorbRequest} returns C{False} for a request
        that matches nothing, and for an ACK without a transaction (an ACK
        for a 2xx goes to the TU).
        """
        self.assertFalse(self.manager.absorbRequest(makeRequest()))
        self.assertFalse(self.manager.absorbRequest(makeRequest("ACK")))


class ManagerTests(TransactionTestCase):
    """
    Bookkeeping, configuration and the declared state machines.
    """

    def test_rfc3261_17_terminatedTransactionsRemoved(self) -> None:
        """
        Every transaction leaves the manager when it terminates ("MUST be
        destroyed immediately", RFC 3261 sections 17.1.2.2, 17.2.1 and
        17.2.2), so that many transactions over time hold no memory.
        """
        for i in range(200):
            request = makeRequest(branch=f"z9hG4bKs{i}")
            server, _ = self.server(request)
            server.respond(makeResponse(request, 200, toTag="srv"))
            invite = makeRequest("INVITE", branch=f"z9hG4bKi{i}")
            inviteServer, _ = self.server(invite)
            inviteServer.respond(makeResponse(invite, 405, toTag="srv"))
            client, _, clientRequest = self.client()
            self.manager.matchResponse(makeResponse(clientRequest, 200))
        self.watched.clear()
        self.assertEqual(self.manager.serverTransactionCount, 400)
        self.assertEqual(self.manager.clientTransactionCount, 200)
        self.clock.advance(32)
        self.assertEqual(self.manager.serverTransactionCount, 0)
        self.assertEqual(self.manager.clientTransactionCount, 0)
        self.assertEqual(self.manager._servers, {})
        self.assertEqual(self.manager._clients, {})
        self.assertEqual(self.manager._serverMethods, {})
        self.assertIdle()

    def test_stop(self) -> None:
        """
        L{TransactionManager.stop} abandons every transaction: no timers
        remain and pending client deferreds fail with C{CancelledError}.
        """
        self.server(makeRequest())
        invite, _ = self.server(makeRequest("INVITE"))
        invite.respond(makeResponse(invite.request, 486, toTag="srv"))
        client, _, _ = self.client()
        self.manager.stop()
        self.failureResultOf(client.deferred, CancelledError)
        self.assertIdle()
        self.assertEqual(self.manager.serverTransactionCount, 0)
        self.assertEqual(self.manager.clientTransactionCount, 0)

    def test_stopCompletedClient(self) -> None:
        """
        L{TransactionManager.stop} also ends client transactions that have
        their final response and wait for Timer K (RFC 3261 section
        17.1.2.2), leaving their result alone.
        """
        client, _, request = self.client()
        response = makeResponse(request, 200)
        self.manager.matchResponse(response)
        self.assertIs(client.state, ClientState.COMPLETED)
        self.manager.stop()
        self.assertIs(client.state, ClientState.TERMINATED)
        self.assertIs(self.successResultOf(client.deferred), response)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.manager.clientTransactionCount, 0)

    def test_rfc3261_17_1_2_2_completedLetsGoOfRequest(self) -> None:
        """
        Over an unreliable transport a client transaction waiting in
        "Completed" for Timer K keeps neither its request nor its sender,
        only what matches response retransmissions, which it still absorbs.
        """
        client, sends, request = self.client()
        branch = client.branch
        self.manager.matchResponse(makeResponse(request, 200))
        self.assertIs(client.state, ClientState.COMPLETED)
        self.assertIsNone(client.request)
        self.assertEqual(client.branch, branch.lower() if branch else branch)
        self.assertTrue(self.manager.matchResponse(makeResponse(request, 200)))
        self.assertEqual(len(sends.times), 1)
        self.clock.advance(self.timers.timerK)
        self.assertIs(client.state, ClientState.TERMINATED)

    def test_rfc3261_17_1_2_2_timersEFQueuesRunDry(self) -> None:
        """
        The shared queues of Timers E and F stay armed when a response
        cancels their last timer, so that the next request does not arm
        them again; their call then fires with nothing to do and is not
        renewed: a manager left alone ends with nothing on the clock.
        """
        for _ in range(3):
            client, _, request = self.client()
            self.manager.matchResponse(makeResponse(request, 200))
            self.assertIs(client.state, ClientState.COMPLETED)
        self.clock.advance(self.timers.timerK)
        self.assertEqual(self.manager.clientTransactionCount, 0)
        # Only the idle queues' calls are left, and they come due.
        self.assertNotEqual(self.clock.getDelayedCalls(), [])
        self.assertIdle()
        self.clock.advance(self.timers.timerF)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.manager.clientTransactionCount, 0)

    def test_rfc3261_appendixA_configurableTimers(self) -> None:
        """
        T1, T2 and T4 come from the manager's L{TimerConfig}: Timer E runs
        T1, 2*T1 ... up to T2, Timer F is 64*T1 and Timer K is T4 (RFC 3261
        appendix A).
        """
        self.manager = TransactionManager(
            self.clock, TimerConfig(T1=0.125, T2=0.5, T4=1.0)
        )
        transaction, sends, request = self.client()
        self.advanceTo(7.875)
        self.assertEqual(intervals(sends.times)[:5], [0.125, 0.25, 0.5, 0.5, 0.5])
        self.assertNoResult(transaction.deferred)
        self.advanceTo(8.0)
        self.failureResultOf(transaction.deferred, TransactionTimeout)

        transaction, _, request = self.client()
        self.manager.matchResponse(makeResponse(request, 200))
        self.advanceTo(8.875)
        self.assertIs(transaction.state, ClientState.COMPLETED)
        self.advanceTo(9.0)
        self.assertIs(transaction.state, ClientState.TERMINATED)

        request = makeRequest("INVITE")
        invite, sent = self.server(request)
        invite.respond(makeResponse(request, 405, toTag="srv"))
        self.advanceTo(17.0)
        self.assertEqual(intervals(sent.times)[:4], [0.125, 0.25, 0.5, 0.5])
        self.assertIs(invite.state, InviteServerState.TERMINATED)

    def test_timerInputsOnlyInOwningStates(self) -> None:
        """
        Each timer input is declared only in states that own its timer, so a
        timer can never fire in a state that does not expect it.
        """
        for cls in (ClientTransaction, ServerTransaction, InviteServerTransaction):
            owners = dict(cls._timerOwners)
            for (state, input), _ in cls._transitions.items():
                slot = TIMER_SLOTS.get(input)
                if slot is not None:
                    self.assertIn(state, owners[slot], (cls, state, input))
            self.assertEqual(
                {slot for slot, _ in cls._timerOwners},
                set(cls.__slots__) & set(TIMER_SLOTS.values()),
            )
            for _, states in cls._timerOwners:
                self.assertNotIn(cls._terminal, states)

    def test_networkInputsAlwaysDeclared(self) -> None:
        """
        Inputs that come from the network, the transport or the manager have
        a transition in every state: a peer can never make a transaction
        raise.
        """
        table: list[tuple[type[Any], type[Enum], tuple[Enum, ...]]] = [
            (
                ClientTransaction,
                ClientState,
                (
                    ClientInput.PROVISIONAL,
                    ClientInput.FINAL,
                    ClientInput.TRANSPORT_ERROR,
                    ClientInput.ABANDON,
                ),
            ),
            (
                ServerTransaction,
                ServerState,
                (ServerInput.REQUEST, ServerInput.TRANSPORT_ERROR, ServerInput.ABANDON),
            ),
            (
                InviteServerTransaction,
                InviteServerState,
                (
                    InviteServerInput.REQUEST,
                    InviteServerInput.ACK,
                    InviteServerInput.TRANSPORT_ERROR,
                    InviteServerInput.ABANDON,
                ),
            ),
        ]
        for cls, states, inputs in table:
            for state in states:
                for input in inputs:
                    self.assertIn((state, input), cls._transitions, (state, input))

    def test_undeclaredTransitionsRaise(self) -> None:
        """
        Every (state, input) pair missing from a table is refused with
        L{InvalidTransition}, leaving the state unchanged (the h2 rule).
        """
        makers: list[tuple[type[Enum], type[Enum], Callable[[], Any]]] = [
            (ClientState, ClientInput, lambda: self.client()[0]),
            (ServerState, ServerInput, lambda: self.server(makeRequest())[0]),
            (
                InviteServerState,
                InviteServerInput,
                lambda: self.server(makeRequest("INVITE"))[0],
            ),
        ]
        checked = 0
        for states, inputs, make in makers:
            for state in states:
                for input in inputs:
                    transaction = make()
                    if (state, input) not in type(transaction)._transitions:
                        initial = transaction.state
                        transaction.state = state
                        self.assertRaises(InvalidTransition, transaction._fire, input)
                        self.assertIs(transaction.state, state)
                        transaction.state = initial
                        checked += 1
                    # Only the table is under test: consume the
                    # cancellations stop() causes.
                    for client in list(self.manager._clients.values()):
                        client.deferred.addErrback(lambda failure: None)
                    self.manager.stop()
        self.assertGreater(checked, 0)


@implementer(IRetransmittingSender)
class WireSender(ServerSends):
    """
    A server transaction's C{send} that can also hand over the final
    response in wire form (an L{IRetransmittingSender}), as the user agent's
    does over UDP.

    @ivar resent: the times each L{WireRetransmission} was called.
    @ivar refuse: when set, L{retransmission} gives C{None}.
    @ivar failure: when set, retransmissions raise it.
    """

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.resent: list[float] = []
        self.refuse = False
        self.failure: Exception | None = None

    def retransmission(self, response: Response) -> WireRetransmission | None:
        if self.refuse:
            return None
        return WireRetransmission(self, response.toBytes())


@implementer(IRetransmission)
class WireRetransmission:
    """
    An L{IRetransmission} that records its calls on its L{WireSender}.
    """

    def __init__(self, sender: WireSender, data: bytes) -> None:
        self.sender = sender
        self.data = data

    def __call__(self) -> None:
        if self.sender.failure is not None:
            raise self.sender.failure
        self.sender.resent.append(self.sender.clock.seconds())

    @property
    def response(self) -> Response:
        message = parseMessage(self.data)
        assert isinstance(message, Response)
        return message


class CompletedStorageTests(TransactionTestCase):
    """
    What a non-INVITE server transaction keeps in "Completed" (RFC 3261
    section 17.2.2 needs only its key and the final response): with a
    L{IRetransmittingSender}, the response in wire form and nothing else.
    """

    def test_verifyObject(self) -> None:
        """
        The test sender and its retransmissions provide the interfaces the
        transaction relies on.
        """
        sends = WireSender(self.clock)
        self.assertTrue(verifyObject(IRetransmittingSender, sends))
        retransmission = sends.retransmission(makeResponse(makeRequest(), 200))
        self.assertTrue(verifyObject(IRetransmission, retransmission))

    def test_plainCallableKeepsMessages(self) -> None:
        """
        A C{send} that is a plain callable, not an L{IRetransmittingSender},
        leaves the completed transaction holding its messages.
        """
        request = makeRequest()
        sends = ServerSends(self.clock)
        transaction = self.manager.createServerTransaction(request, sends, False)
        assert isinstance(transaction, ServerTransaction)
        self.watched.append(transaction)
        final = makeResponse(request, 200, toTag="srv")
        transaction.respond(final)
        self.assertIs(transaction.state, ServerState.COMPLETED)
        self.assertIs(transaction.request, request)
        self.assertIs(transaction.lastResponse, final)

    def wireServer(
        self, request: Request, reliable: bool = False
    ) -> tuple[ServerTransaction, WireSender]:
        sends = WireSender(self.clock)
        transaction = self.manager.createServerTransaction(request, sends, reliable)
        assert isinstance(transaction, ServerTransaction)
        self.watched.append(transaction)
        return transaction, sends

    def test_rfc3261_17_2_2_completedKeepsWireForm(self) -> None:
        """
        Over an unreliable transport the completed transaction lets go of
        the request and the response, answers each retransmission with the
        stored octets, and still ends with Timer J (RFC 3261 section
        17.2.2).
        """
        request = makeRequest()
        transaction, sends = self.wireServer(request)
        final = makeResponse(request, 200, toTag="srv")
        transaction.respond(final)
        self.assertEqual(sends.sent, [(0.0, final)])
        self.assertIs(transaction.state, ServerState.COMPLETED)
        self.assertIsNone(transaction.request)
        self.assertIsNone(transaction._lastResponse)
        self.assertIsNone(transaction._send)
        lastResponse = transaction.lastResponse
        assert lastResponse is not None
        self.assertEqual(lastResponse.toBytes(), final.toBytes())
        self.assertEqual(transaction.branch, "z9hg4bktest1")
        self.assertIn("SUBSCRIBE branch=z9hg4bktest1 Completed", repr(transaction))
        self.advanceTo(1.0)
        self.assertTrue(self.manager.absorbRequest(makeRequest()))
        self.advanceTo(2.0)
        self.assertTrue(self.manager.absorbRequest(makeRequest()))
        self.assertEqual(sends.resent, [1.0, 2.0])
        self.assertEqual(len(sends.sent), 1)
        self.advanceTo(32.0)
        self.assertIs(transaction.state, ServerState.TERMINATED)
        self.assertEqual(self.manager.serverTransactionCount, 0)
        self.assertIdle()

    def test_rfc3261_17_2_2_proceedingKeepsRequest(self) -> None:
        """
        Until the final response the transaction keeps its request and
        re-sends provisional responses through C{send}.
        """
        request = makeRequest()
        transaction, sends = self.wireServer(request)
        transaction.respond(makeResponse(request, 100))
        transaction.requestRetransmitted()
        self.assertIs(transaction.request, request)
        self.assertEqual(sends.codes, [100, 100])
        self.assertEqual(sends.resent, [])

    def test_rfc3261_17_2_2_reliableKeepsNothing(self) -> None:
        """
        Over a reliable transport the transaction terminates at once: there
        is nothing to keep (Timer J is zero).
        """
        request = makeRequest(transport="TCP")
        transaction, sends = self.wireServer(request, reliable=True)
        transaction.respond(makeResponse(request, 200, toTag="srv"))
        self.assertIs(transaction.state, ServerState.TERMINATED)
        self.assertEqual(sends.codes, [200])

    def test_senderWithoutWireForm(self) -> None:
        """
        A sender that cannot give the wire form leaves the transaction with
        its request and response, re-sent through C{send}.
        """
        request = makeRequest()
        transaction, sends = self.wireServer(request)
        sends.refuse = True
        final = makeResponse(request, 200, toTag="srv")
        transaction.respond(final)
        self.assertIs(transaction.request, request)
        self.assertIs(transaction.lastResponse, final)
        transaction.requestRetransmitted()
        self.assertEqual([r for _, r in sends.sent], [final, final])

    def test_rfc3261_17_2_4_retransmissionFails(self) -> None:
        """
        A stored response that cannot be sent again is a transport error:
        the TU is told and the transaction terminates (RFC 3261 section
        17.2.4).
        """
        request = makeRequest()
        transaction, sends = self.wireServer(request)
        failures: list[SIPError] = []
        transaction.onFailure = failures.append
        transaction.respond(makeResponse(request, 200, toTag="srv"))
        sends.failure = OSError("gone")
        with capturedLogs():
            transaction.requestRetransmitted()
        self.assertIs(transaction.state, ServerState.TERMINATED)
        [failure] = failures
        assert isinstance(failure, TransportFailure)
        self.assertIs(failure.cause, sends.failure)
        self.assertIdle()


class FixedTimerTests(TransactionTestCase):
    """
    Timers J and K run from one shared queue per manager: one
    C{IDelayedCall} on the clock however many transactions wait, each
    firing at its own time (RFC 3261 sections 17.1.2.2 and 17.2.2).
    """

    def test_rfc3261_17_2_2_timerJShared(self) -> None:
        """
        Transactions completed at different times each end exactly Timer J
        after their final response, with one delayed call on the clock.
        """
        transactions = []
        for n in range(40):
            request = makeRequest(branch=f"z9hG4bKshared{n}")
            transaction, _ = self.server(request)
            transaction.respond(makeResponse(request, 200, toTag="srv"))
            transactions.append((self.clock.seconds() + 32.0, transaction))
            self.assertEqual(len(self.clock.getDelayedCalls()), 1)
            self.clock.advance(0.25)
        for end, transaction in transactions:
            self.advanceTo(end - 0.125)
            self.assertIs(transaction.state, ServerState.COMPLETED)
            self.advanceTo(end)
            self.assertIs(transaction.state, ServerState.TERMINATED)
        self.assertIdle()

    def test_rfc3261_17_1_2_2_timerKShared(self) -> None:
        """
        Timer K of completed client transactions runs from the shared
        queue too: each ends T4 after its final response.
        """
        clients = []
        for _ in range(10):
            transaction, _, request = self.client()
            self.manager.matchResponse(makeResponse(request, 200))
            clients.append((self.clock.seconds() + 5.0, transaction))
            self.clock.advance(0.25)
        for end, transaction in clients:
            self.advanceTo(end - 0.125)
            self.assertIs(transaction.state, ClientState.COMPLETED)
            self.advanceTo(end)
            self.assertIs(transaction.state, ClientState.TERMINATED)
        self.assertEqual(self.manager.clientTransactionCount, 0)

    def test_cancelledTimersLeaveNoCall(self) -> None:
        """
        When every waiting transaction is abandoned, the shared queue
        cancels its delayed call.
        """
        for n in range(5):
            request = makeRequest(branch=f"z9hG4bKstop{n}")
            transaction, _ = self.server(request)
            transaction.respond(makeResponse(request, 200, toTag="srv"))
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.manager.stop()
        self.assertIdle()
        self.assertEqual(self.manager.serverTransactionCount, 0)

    def test_changedTimers(self) -> None:
        """
        A manager whose timers change keeps deadlines exact: each Timer J
        length has its own queue.
        """
        first = makeRequest(branch="z9hG4bKlong")
        long, _ = self.server(first)
        long.respond(makeResponse(first, 200, toTag="srv"))
        self.manager.timers = TimerConfig(T1=0.125)
        second = makeRequest(branch="z9hG4bKshort")
        short, _ = self.server(second)
        short.respond(makeResponse(second, 200, toTag="srv"))
        self.advanceTo(8.0)
        self.assertIs(short.state, ServerState.TERMINATED)
        self.assertIs(long.state, ServerState.COMPLETED)
        self.advanceTo(32.0)
        self.assertIs(long.state, ServerState.TERMINATED)
        self.assertIdle()
