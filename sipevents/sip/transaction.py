# -*- test-case-name: tests.test_transaction -*-
"""
SIP transactions (RFC 3261 section 17): the non-INVITE client transaction
(section 17.1.2), the non-INVITE server transaction (section 17.2.2), the
INVITE server transaction (section 17.2.1) and the L{TransactionManager}
that creates them and matches messages to them (sections 17.1.3, 17.2.3 and
9.2).

The module is sans-I/O: a transaction is given a C{send} callable that puts
one message on the wire, a C{reliable} flag saying whether the transport
needs retransmissions, and takes time from the manager's injected
C{clock: IReactorTime}.

Design: declared state machines
===============================
Each machine has a L{TableEnum} of states, a L{TableEnum} of inputs and a
class-level transition table mapping C{(state, input)} to C{(next state,
action)}, in the style of h2's C{H2ConnectionStateMachine}. Every input goes
through one small engine (L{_Transaction._fire}): a pair missing from the
table is refused with L{InvalidTransition} (L{sipevents.statetable.lookup})
before any action runs. Inputs that come from the
network, the transport or the manager have an entry in every state
(absorbing what the RFC says to absorb), so a peer can never make the engine
raise; only a TU that misuses a transaction (say, C{respond()} with a second
final response, which RFC 3261 section 17.2.2 says to discard: it is not
sent, and the TU learns of its mistake) gets the exception.

Timers are state data: every C{IDelayedCall} slot declares the states that
own it (C{_timerOwners}), and the engine cancels it on any transition into a
state that does not. A timer is armed on entering a state that owns it (or
re-armed by that state's own timer transition), and a timer input appears in
the table only for states that own that timer, so a terminated transaction
holds no timer and no timer fires where it is not expected. A timer of zero
seconds (Timers I, J and K on reliable transports) is not scheduled: the
transition happens at once.

Fixed-length timers share a queue: Timers J, K and F always run the same
length on one manager (64*T1, T4 and 64*T1), and so does the first Timer E
of a client transaction (T1), so their deadlines arrive in the order they
were armed. Each manager keeps one first-in first-out queue per such
timer, armed on the injected clock with a single C{IDelayedCall} for the
earliest deadline (L{sipevents.sip.timers.FixedDelayQueue}); a
transaction's timer slot holds a small handle with C{active()} and
C{cancel()}. The other timers (Timer E after the first, G, H, I, the
100-Trying delay) vary in length per transaction and are plain
C{IDelayedCall}s in the slots of the states that own them. Over UDP every answered
request keeps its transaction in "Completed" for Timer J (32 seconds), so a
server answering thousands of requests a second would otherwise keep tens of
thousands of C{IDelayedCall}s (about 500 bytes and three garbage-collected
objects each) in the reactor's heap.

A completed transaction keeps only what RFC 3261 section 17.2.2 still needs
it for: its matching keys and a way to send the final response again. When
the C{send} callable offers one (an
L{sipevents.interfaces.IRetransmittingSender}), a non-INVITE server
transaction entering "Completed" over an unreliable transport swaps its
request and response for an L{sipevents.interfaces.IRetransmission}
holding the octets as they went on the wire, so that each of those tens of
thousands of transactions costs about a kilobyte instead of the six or
seven its parsed messages and their typed views would.

Automat's C{TypeMachineBuilder} expresses the same thing, but it costs about
290 bytes per machine before its core and state data, and about 8
microseconds per input on CPython 3.11; a presence server holds tens of
thousands of live transactions (Timer J keeps each UDP one 32 seconds) and
routes every message through one. Plain L{Enum} states, a dict lookup
and L{__slots__} do it in a fraction of both, and the table stays as
readable as a diagram.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Callable, Mapping
from enum import Enum
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Generic,
    Literal,
    TypeVar,
    overload,
)

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from sipevents.config import DEFAULT_TIMERS, TimerConfig
from sipevents.errors import (
    SIPError,
    TransactionTimeout,
    TransportFailure,
)
from sipevents.interfaces import IRetransmission, IRetransmittingSender
from sipevents.sip.addresses import defaultPort
from sipevents.sip.message import Request, Response, makeResponse
from sipevents.sip.timers import FixedDelayQueue, TimerHandle
from sipevents.statetable import TableEnum, lookup

if TYPE_CHECKING:
    from sipevents.sip.headers import NameAddr, Via

__all__ = [
    "MAGIC_COOKIE",
    "ClientInput",
    "ClientState",
    "ClientTransaction",
    "InviteServerInput",
    "InviteServerState",
    "InviteServerTransaction",
    "ServerInput",
    "ServerState",
    "ServerTransaction",
    "TransactionManager",
]

#: The prefix of every branch parameter made by an RFC 3261 element
#: (RFC 3261 section 8.1.1.7).
MAGIC_COOKIE = "z9hG4bK"
_COOKIE = MAGIC_COOKIE.lower()


_S = TypeVar("_S", bound=Enum)
_I = TypeVar("_I", bound=Enum)

#: An action run on a transition: an unbound method taking the input's
#: payload (a message, a failure, or C{None} for timers).
_Action = Callable[[Any, Any], None]
_Table = Mapping[tuple[Any, Any], tuple[Any, _Action | None]]
_Key = tuple[Any, ...]


#: What a transaction's timer slot holds: an C{IDelayedCall}, or the
#: handle of a deadline in one of the manager's L{FixedDelayQueue}s.
_Timer = IDelayedCall | TimerHandle


class _Transaction(Generic[_S, _I]):
    """
    The engine shared by every transaction: a table-driven state machine
    whose timers belong to states.

    @ivar state: the current state, a member of the subclass's state enum.
    @ivar method: the method of the request that created the transaction.
    @ivar reliable: whether the transport is reliable (no retransmissions,
        zero-length Timers I, J and K; RFC 3261 section 17).
    """

    __slots__ = ("state", "method", "reliable", "_manager")

    #: C{(state, input) -> (next state, action or None)}.
    _transitions: ClassVar[_Table]
    #: C{state -> action run after entering it} (arms that state's timers).
    _entryActions: ClassVar[Mapping[Any, Callable[[Any], None]]]
    #: C{(slot name, states owning the timer in that slot)}.
    _timerOwners: ClassVar[tuple[tuple[str, frozenset[Any]], ...]]
    #: The state in which the transaction is destroyed.
    _terminal: ClassVar[Any]
    #: Where the state machine is specified, for error messages.
    _section: ClassVar[str]

    state: _S

    def __init__(
        self, manager: TransactionManager, request: Request, reliable: bool
    ) -> None:
        self._manager = manager
        self.method = request.method
        self.reliable = reliable

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.method} branch={self.branch} "
            f"{self.state.value}>"
        )

    @property
    def branch(self) -> str | None:
        """The branch of the request's top Via, for logs."""
        raise NotImplementedError()

    def _fire(self, input: _I, payload: object = None) -> None:
        """
        Apply C{input}: look the transition up, change state, cancel the
        timers the new state does not own, run the action, then the entry
        action of the new state (unless the action itself moved on, for
        example because a send failed synchronously).

        @raise InvalidTransition: when the table has no entry for the
            current state and C{input}.
        """
        old = self.state
        target, action = lookup(self._transitions, self, old, input, self._section)
        if target is not old:
            self.state = target
            # The slots are named in the class's declared _timerOwners
            # table: one loop clears them for every machine.
            for slot in _slotsToClear(type(self), target):
                call: _Timer | None = getattr(self, slot)
                if call is not None:
                    call.cancel()
                    setattr(self, slot, None)
            if target is self._terminal:
                # "MUST be destroyed immediately" (RFC 3261 sections 17.1.2.2,
                # 17.2.1, 17.2.2): nothing can match it any more.
                self._unregister()
        if action is not None:
            action(self, payload)
        if target is not old and self.state is target:
            enter = self._entryActions.get(target)
            if enter is not None:
                enter(self)

    def _callLater(self, delay: float, f: Callable[[], None]) -> IDelayedCall:
        return self._manager.clock.callLater(delay, f)

    def _unregister(self) -> None:
        raise NotImplementedError()


#: For each transaction class and state: the timer slots that state does
#: not own, cleared on entering it (see L{_Transaction._fire}).
_clearing: dict[tuple[type, Any], tuple[str, ...]] = {}


def _slotsToClear(cls: type[_Transaction[Any, Any]], state: Any) -> tuple[str, ...]:
    """
    The timer slots of C{cls} that C{state} does not own, from its
    C{_timerOwners}; computed once per class and state, rather than
    testing every slot on every transition.
    """
    slots = _clearing.get((cls, state))
    if slots is None:
        slots = _clearing[cls, state] = tuple(
            slot for slot, owners in cls._timerOwners if state not in owners
        )
    return slots


def _viaBranch(request: Request) -> str | None:
    via = request.topVia
    return via.branch if via is not None else None


def _succeeded(d: Deferred[Any]) -> bool:
    """
    Whether C{d} has fired with a result that is not a failure (and runs no
    callbacks now): a send that went out at once, for which an errback
    would only be a few microseconds of Deferred machinery per message.
    """
    return d.called and not d.paused and not isinstance(d.result, Failure)


def _asException(reason: object) -> BaseException | None:
    if isinstance(reason, Failure):
        return reason.value
    if isinstance(reason, BaseException):
        return reason
    return None


# ---------------------------------------------------------------------------
# Non-INVITE client transaction (RFC 3261 section 17.1.2)


class ClientState(TableEnum):
    """
    States of the non-INVITE client transaction (RFC 3261 section 17.1.2.2,
    figure 6).
    """

    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


class ClientInput(TableEnum):
    """
    Inputs of the non-INVITE client transaction.
    """

    PROVISIONAL = "a provisional response"
    FINAL = "a final response"
    TIMER_E = "Timer E"
    TIMER_F = "Timer F"
    TIMER_K = "Timer K"
    TRANSPORT_ERROR = "a transport error"
    ABANDON = "abandoning the transaction"


class ClientTransaction(_Transaction[ClientState, ClientInput]):
    """
    A non-INVITE client transaction (RFC 3261 section 17.1.2). Create it with
    L{TransactionManager.createClientTransaction}.

    @ivar request: the request, sent again on each retransmission;
        C{None} once the transaction is "Completed" over an unreliable
        transport, waiting for Timer K with nothing left to send.
    @ivar deferred: fires with the final response, or fails with
        L{TransactionTimeout} (Timer F) or L{TransportFailure} (RFC 3261
        section 17.1.4). Cancelling it abandons the transaction: its timers
        stop and it fails with C{CancelledError}.
    @ivar onProvisional: called with each provisional response passed to the
        TU (RFC 3261 section 17.1.2.2), or C{None}.
    """

    __slots__ = (
        "request",
        "deferred",
        "onProvisional",
        "_send",
        "_key",
        "_interval",
        "_timerE",
        "_timerF",
        "_timerK",
    )

    log = Logger()
    _section = "RFC 3261 section 17.1.2"
    _terminal = ClientState.TERMINATED

    def __init__(
        self,
        manager: TransactionManager,
        request: Request,
        key: _Key,
        send: Callable[[], object],
        reliable: bool,
        onProvisional: Callable[[Response], object] | None = None,
    ) -> None:
        super().__init__(manager, request, reliable)
        self.request: Request | None = request
        self.state = ClientState.TRYING
        self.deferred: Deferred[Response] = Deferred(self._cancelled)
        self.onProvisional = onProvisional
        self._send: Callable[[], object] | None = send
        self._key = key
        self._interval = manager.timers.T1
        self._timerE: _Timer | None = None
        self._timerF: _Timer | None = None
        self._timerK: _Timer | None = None

    @property
    def branch(self) -> str | None:
        """
        The branch of the request's top Via, for logs (lower-cased, as
        matched, once the request is let go).
        """
        if self.request is None:
            branch: str = self._key[0]
            return branch
        return _viaBranch(self.request)

    def _start(self) -> None:
        """
        Enter "Trying": arm Timer F, and Timer E on unreliable transports,
        then send the request (RFC 3261 section 17.1.2.2). Timers are armed
        first so that a send failing at once cancels them.
        """
        # Timer F and the first Timer E always last 64*T1 and T1: they come
        # from the manager's fixed-delay queues, not one IDelayedCall each
        # (which the reactor would keep in its heap long after the response
        # cancelled them). Only later, doubled Timers E are scheduled
        # singly.
        manager = self._manager
        timers = manager.timers
        self._timerF = manager._timerFQueue(timers.timerF).schedule(self)
        if not self.reliable:
            self._timerE = manager._timerEQueue(timers.T1).schedule(self)
        self._transmit()

    # Inputs.

    def responseReceived(self, response: Response) -> None:
        """
        A response matching this transaction arrived (RFC 3261 section
        17.1.3). Provisional responses go to L{onProvisional}, the first
        final response to L{deferred}; later ones are retransmissions and
        are absorbed.
        """
        self._fire(
            ClientInput.PROVISIONAL if response.code < 200 else ClientInput.FINAL,
            response,
        )

    def transportError(self, reason: Failure | BaseException | None = None) -> None:
        """
        The transport layer failed to send the request (RFC 3261 section
        17.1.4): fail L{deferred} with L{TransportFailure} and terminate.
        Ignored once a final response has arrived.
        """
        self._fire(ClientInput.TRANSPORT_ERROR, reason)

    def _cancelled(self, d: Deferred[Response]) -> None:
        self._fire(ClientInput.ABANDON)

    def _onTimerE(self) -> None:
        self._timerE = None
        self._fire(ClientInput.TIMER_E)

    def _onTimerF(self) -> None:
        self._timerF = None
        self._fire(ClientInput.TIMER_F)

    def _onTimerK(self) -> None:
        self._timerK = None
        self._fire(ClientInput.TIMER_K)

    # Actions.

    def _transmit(self) -> None:
        send = self._send
        if send is None:
            # Completed: nothing is sent any more (never reached: only
            # Trying and Proceeding transmit).
            return
        try:
            result = send()
        except Exception as e:
            self.transportError(e)
            return
        if isinstance(result, Deferred) and not _succeeded(result):
            result.addErrback(self.transportError)

    def _retransmitDoubling(self, _: object) -> None:
        # "Trying": MIN(2*interval, T2) (RFC 3261 section 17.1.2.2). Re-armed
        # before sending, so a failing send cancels it.
        self._interval = min(2 * self._interval, self._manager.timers.T2)
        self._timerE = self._callLater(self._interval, self._onTimerE)
        self._transmit()

    def _retransmitAtT2(self, _: object) -> None:
        # "Proceeding": reset with T2 when it fires (RFC 3261 section
        # 17.1.2.2); the interval already running when the provisional
        # response came is left to run out, as the RFC words it.
        self._interval = self._manager.timers.T2
        self._timerE = self._callLater(self._interval, self._onTimerE)
        self._transmit()

    def _passProvisional(self, response: Response) -> None:
        if self.onProvisional is not None:
            try:
                self.onProvisional(response)
            except Exception:
                self.log.failure(
                    "onProvisional raised for {method} {branch}",
                    method=self.method,
                    branch=self.branch,
                )

    def _passFinal(self, response: Response) -> None:
        self.deferred.callback(response)

    def _timedOut(self, _: object) -> None:
        self.log.info(
            "{method} client transaction {branch} timed out (Timer F, {timeout}s)",
            method=self.method,
            branch=self.branch,
            timeout=self._manager.timers.timerF,
        )
        self.deferred.errback(
            TransactionTimeout(f"No response to {self.method} (Timer F)")
        )

    def _transportFailed(self, reason: object) -> None:
        cause = _asException(reason)
        self.log.info(
            "{method} client transaction {branch}: transport failure {cause!r}",
            method=self.method,
            branch=self.branch,
            cause=cause,
        )
        self.deferred.errback(TransportFailure(f"Could not send {self.method}", cause))

    def _enterCompleted(self) -> None:
        # Timer K: T4 unreliable, zero reliable (RFC 3261 section 17.1.2.2).
        delay = 0.0 if self.reliable else self._manager.timers.timerK
        if delay <= 0:
            self._fire(ClientInput.TIMER_K)
        else:
            self._timerK = self._manager._timerKQueue(delay).schedule(self)
            # Completed only absorbs retransmitted responses until Timer K
            # (T4, 5 s): let go of the request and its sender, as a
            # completed server transaction does (a few dozen objects each
            # that the garbage collector would otherwise walk, times every
            # request of the last five seconds).
            self.request = None
            self._send = None

    def _unregister(self) -> None:
        self._manager._removeClient(self)

    _transitions: ClassVar[_Table] = {
        # Trying
        (ClientState.TRYING, ClientInput.PROVISIONAL): (
            ClientState.PROCEEDING,
            _passProvisional,
        ),
        (ClientState.TRYING, ClientInput.FINAL): (ClientState.COMPLETED, _passFinal),
        (ClientState.TRYING, ClientInput.TIMER_E): (
            ClientState.TRYING,
            _retransmitDoubling,
        ),
        (ClientState.TRYING, ClientInput.TIMER_F): (ClientState.TERMINATED, _timedOut),
        (ClientState.TRYING, ClientInput.TRANSPORT_ERROR): (
            ClientState.TERMINATED,
            _transportFailed,
        ),
        (ClientState.TRYING, ClientInput.ABANDON): (ClientState.TERMINATED, None),
        # Proceeding
        (ClientState.PROCEEDING, ClientInput.PROVISIONAL): (
            ClientState.PROCEEDING,
            _passProvisional,
        ),
        (ClientState.PROCEEDING, ClientInput.FINAL): (
            ClientState.COMPLETED,
            _passFinal,
        ),
        (ClientState.PROCEEDING, ClientInput.TIMER_E): (
            ClientState.PROCEEDING,
            _retransmitAtT2,
        ),
        (ClientState.PROCEEDING, ClientInput.TIMER_F): (
            ClientState.TERMINATED,
            _timedOut,
        ),
        (ClientState.PROCEEDING, ClientInput.TRANSPORT_ERROR): (
            ClientState.TERMINATED,
            _transportFailed,
        ),
        (ClientState.PROCEEDING, ClientInput.ABANDON): (ClientState.TERMINATED, None),
        # Completed: buffers response retransmissions.
        (ClientState.COMPLETED, ClientInput.PROVISIONAL): (ClientState.COMPLETED, None),
        (ClientState.COMPLETED, ClientInput.FINAL): (ClientState.COMPLETED, None),
        (ClientState.COMPLETED, ClientInput.TIMER_K): (ClientState.TERMINATED, None),
        (ClientState.COMPLETED, ClientInput.TRANSPORT_ERROR): (
            ClientState.COMPLETED,
            None,
        ),
        (ClientState.COMPLETED, ClientInput.ABANDON): (ClientState.TERMINATED, None),
        # Terminated: late network input (a failed send's Deferred, a
        # response handed over directly) is dropped.
        (ClientState.TERMINATED, ClientInput.PROVISIONAL): (
            ClientState.TERMINATED,
            None,
        ),
        (ClientState.TERMINATED, ClientInput.FINAL): (ClientState.TERMINATED, None),
        (ClientState.TERMINATED, ClientInput.TRANSPORT_ERROR): (
            ClientState.TERMINATED,
            None,
        ),
        (ClientState.TERMINATED, ClientInput.ABANDON): (ClientState.TERMINATED, None),
    }
    _entryActions: ClassVar[Mapping[Any, Callable[[Any], None]]] = {
        ClientState.COMPLETED: _enterCompleted,
    }
    _timerOwners: ClassVar[tuple[tuple[str, frozenset[Any]], ...]] = (
        ("_timerE", frozenset({ClientState.TRYING, ClientState.PROCEEDING})),
        ("_timerF", frozenset({ClientState.TRYING, ClientState.PROCEEDING})),
        ("_timerK", frozenset({ClientState.COMPLETED})),
    )


# ---------------------------------------------------------------------------
# Server transactions (RFC 3261 sections 17.2.1 and 17.2.2)


class _ServerBase(_Transaction[_S, _I]):
    """
    What both server transactions share: sending responses, the last
    response, failure reporting and removal from the manager.

    @ivar request: the request that created the transaction; C{None} once a
        non-INVITE transaction has stored its final response for
        retransmission (see L{ServerTransaction}).
    @ivar onFailure: called with L{TransactionTimeout} (Timer H) or
        L{TransportFailure} (RFC 3261 section 17.2.4) when the transaction
        fails, or C{None}.
    """

    __slots__ = (
        "request",
        "onFailure",
        "_lastResponse",
        "_retransmission",
        "_send",
        "_keys",
    )

    log = Logger()
    #: The input L{TransactionManager.stop} fires.
    _abandonInput: ClassVar[Any]

    def __init__(
        self,
        manager: TransactionManager,
        request: Request,
        keys: tuple[_Key, ...],
        send: Callable[[Response], object],
        reliable: bool,
    ) -> None:
        super().__init__(manager, request, reliable)
        self.request: Request | None = request
        self.onFailure: Callable[[SIPError], object] | None = None
        self._lastResponse: Response | None = None
        self._retransmission: IRetransmission | None = None
        self._send: Callable[[Response], object] | None = send
        self._keys = keys

    @property
    def lastResponse(self) -> Response | None:
        """
        The most recent response sent, or C{None}. Its To tag is the one a
        200 to a CANCEL SHOULD reuse (RFC 3261 section 9.2). Once the
        response is only kept in wire form (L{IRetransmission}), it is parsed
        again from those octets on each access.
        """
        if self._lastResponse is None and self._retransmission is not None:
            response: Response = self._retransmission.response
            return response
        return self._lastResponse

    @property
    def branch(self) -> str | None:
        """The branch of the request's top Via, for logs."""
        if self.request is not None:
            return _viaBranch(self.request)
        key = self._keys[0][0]
        # Only a magic-cookie key is kept without its request; its first
        # element is the branch, lower-cased (RFC 3261 section 17.2.3).
        return key[0] if len(key) == 3 else None

    def respond(self, response: Response) -> None:
        """
        Send C{response} to the request through this transaction.

        @raise ValueError: when the status code is not 100 to 699.
        @raise InvalidTransition: when the state does not allow it, e.g. a
            final response was already sent; the response is discarded
            (RFC 3261 sections 17.2.1 and 17.2.2).
        """
        raise NotImplementedError()

    def transportError(self, reason: Failure | BaseException | None = None) -> None:
        """
        The transport layer failed to send a response (RFC 3261 section
        17.2.4): report it to L{onFailure} and terminate. Ignored in states
        that send nothing.
        """
        raise NotImplementedError()

    def _transmit(self, send: Callable[..., object], *args: object) -> None:
        try:
            result = send(*args)
        except Exception as e:
            self.transportError(e)
            return
        if isinstance(result, Deferred) and not _succeeded(result):
            result.addErrback(self.transportError)

    def _sendResponse(self, response: Response) -> None:
        self._lastResponse = response
        send = self._send
        if send is not None:
            self._transmit(send, response)

    def _resendLast(self, _: object) -> None:
        retransmission = self._retransmission
        if retransmission is not None:
            self._transmit(retransmission)
            return
        send = self._send
        if self._lastResponse is not None and send is not None:
            self._transmit(send, self._lastResponse)

    def _keepForRetransmission(self) -> None:
        """
        Swap the request, the last response and C{send} for the response in
        wire form, when C{send} can give it (L{IRetransmittingSender}): all a
        completed transaction needs to answer retransmissions (RFC 3261
        section 17.2.2), in a fraction of the memory.
        """
        response = self._lastResponse
        send = self._send
        if response is None or not IRetransmittingSender.providedBy(send):
            return
        retransmission = send.retransmission(response)
        if retransmission is None:
            return
        self._retransmission = retransmission
        self._lastResponse = None
        self._send = None
        self.request = None

    def _report(self, error: SIPError) -> None:
        if self.onFailure is not None:
            try:
                self.onFailure(error)
            except Exception:
                self.log.failure(
                    "onFailure raised for {transaction!r}", transaction=self
                )

    def _transportFailed(self, reason: object) -> None:
        cause = _asException(reason)
        self.log.info(
            "{method} server transaction {branch}: transport failure {cause!r}",
            method=self.method,
            branch=self.branch,
            cause=cause,
        )
        self._report(TransportFailure("Could not send a response", cause))

    def _abandon(self) -> None:
        self._fire(self._abandonInput)

    def _unregister(self) -> None:
        self._manager._removeServer(self)


class ServerState(TableEnum):
    """
    States of the non-INVITE server transaction (RFC 3261 section 17.2.2,
    figure 8).
    """

    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


class ServerInput(TableEnum):
    """
    Inputs of the non-INVITE server transaction.
    """

    REQUEST = "a request retransmission"
    PROVISIONAL = "a provisional response from the TU"
    FINAL = "a final response from the TU"
    TIMER_J = "Timer J"
    TRANSPORT_ERROR = "a transport error"
    ABANDON = "abandoning the transaction"


class ServerTransaction(_ServerBase[ServerState, ServerInput]):
    """
    A non-INVITE server transaction (RFC 3261 section 17.2.2). Create it with
    L{TransactionManager.createServerTransaction}.

    In "Completed" over an unreliable transport it lives on for Timer J only
    to answer retransmissions of the request with the final response. If
    its C{send} is an L{IRetransmittingSender}, it then keeps that response
    as an L{IRetransmission} and lets go of the request, the L{Response} and
    C{send} (L{request} becomes C{None}, L{lastResponse} is parsed again
    from the octets when asked for).
    """

    __slots__ = ("_timerJ",)

    _section = "RFC 3261 section 17.2.2"
    _terminal = ServerState.TERMINATED
    _abandonInput = ServerInput.ABANDON

    def __init__(
        self,
        manager: TransactionManager,
        request: Request,
        keys: tuple[_Key, ...],
        send: Callable[[Response], object],
        reliable: bool,
    ) -> None:
        super().__init__(manager, request, keys, send, reliable)
        self.state = ServerState.TRYING
        self._timerJ: _Timer | None = None

    def requestRetransmitted(self) -> None:
        """
        A retransmission of the request arrived (RFC 3261 section 17.2.2):
        discarded in "Trying", otherwise the last response is sent again.
        """
        self._fire(ServerInput.REQUEST)

    def respond(self, response: Response) -> None:
        code = response.code
        if not 100 <= code <= 699:
            raise ValueError(f"Bad status code {code}")
        self._fire(
            ServerInput.PROVISIONAL if code < 200 else ServerInput.FINAL, response
        )

    def transportError(self, reason: Failure | BaseException | None = None) -> None:
        self._fire(ServerInput.TRANSPORT_ERROR, reason)

    def _onTimerJ(self) -> None:
        self._timerJ = None
        self._fire(ServerInput.TIMER_J)

    def _enterCompleted(self) -> None:
        # Timer J: 64*T1 unreliable, zero reliable (RFC 3261 section 17.2.2).
        delay = 0.0 if self.reliable else self._manager.timers.timerJ
        if delay <= 0:
            self._fire(ServerInput.TIMER_J)
        else:
            self._keepForRetransmission()
            self._timerJ = self._manager._timerJQueue(delay).schedule(self)

    _transitions: ClassVar[_Table] = {
        # Trying: retransmissions are discarded.
        (ServerState.TRYING, ServerInput.REQUEST): (ServerState.TRYING, None),
        (ServerState.TRYING, ServerInput.PROVISIONAL): (
            ServerState.PROCEEDING,
            _ServerBase._sendResponse,
        ),
        (ServerState.TRYING, ServerInput.FINAL): (
            ServerState.COMPLETED,
            _ServerBase._sendResponse,
        ),
        # Nothing was sent yet, so nothing can fail.
        (ServerState.TRYING, ServerInput.TRANSPORT_ERROR): (ServerState.TRYING, None),
        (ServerState.TRYING, ServerInput.ABANDON): (ServerState.TERMINATED, None),
        # Proceeding
        (ServerState.PROCEEDING, ServerInput.REQUEST): (
            ServerState.PROCEEDING,
            _ServerBase._resendLast,
        ),
        (ServerState.PROCEEDING, ServerInput.PROVISIONAL): (
            ServerState.PROCEEDING,
            _ServerBase._sendResponse,
        ),
        (ServerState.PROCEEDING, ServerInput.FINAL): (
            ServerState.COMPLETED,
            _ServerBase._sendResponse,
        ),
        (ServerState.PROCEEDING, ServerInput.TRANSPORT_ERROR): (
            ServerState.TERMINATED,
            _ServerBase._transportFailed,
        ),
        (ServerState.PROCEEDING, ServerInput.ABANDON): (ServerState.TERMINATED, None),
        # Completed: the final response answers every retransmission; further
        # responses from the TU are refused (and so discarded).
        (ServerState.COMPLETED, ServerInput.REQUEST): (
            ServerState.COMPLETED,
            _ServerBase._resendLast,
        ),
        (ServerState.COMPLETED, ServerInput.TIMER_J): (ServerState.TERMINATED, None),
        (ServerState.COMPLETED, ServerInput.TRANSPORT_ERROR): (
            ServerState.TERMINATED,
            _ServerBase._transportFailed,
        ),
        (ServerState.COMPLETED, ServerInput.ABANDON): (ServerState.TERMINATED, None),
        # Terminated
        (ServerState.TERMINATED, ServerInput.REQUEST): (ServerState.TERMINATED, None),
        (ServerState.TERMINATED, ServerInput.TRANSPORT_ERROR): (
            ServerState.TERMINATED,
            None,
        ),
        (ServerState.TERMINATED, ServerInput.ABANDON): (ServerState.TERMINATED, None),
    }
    _entryActions: ClassVar[Mapping[Any, Callable[[Any], None]]] = {
        ServerState.COMPLETED: _enterCompleted,
    }
    _timerOwners: ClassVar[tuple[tuple[str, frozenset[Any]], ...]] = (
        ("_timerJ", frozenset({ServerState.COMPLETED})),
    )


class InviteServerState(TableEnum):
    """
    States of the INVITE server transaction (RFC 3261 section 17.2.1,
    figure 7).
    """

    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


class InviteServerInput(TableEnum):
    """
    Inputs of the INVITE server transaction.
    """

    REQUEST = "an INVITE retransmission"
    ACK = "an ACK"
    PROVISIONAL = "a provisional response from the TU"
    SUCCESS = "a 2xx response from the TU"
    FINAL = "a 300-699 response from the TU"
    TIMER_TRYING = "the 100 (Trying) timer"
    TIMER_G = "Timer G"
    TIMER_H = "Timer H"
    TIMER_I = "Timer I"
    TRANSPORT_ERROR = "a transport error"
    ABANDON = "abandoning the transaction"


class InviteServerTransaction(_ServerBase[InviteServerState, InviteServerInput]):
    """
    An INVITE server transaction (RFC 3261 section 17.2.1). Create it with
    L{TransactionManager.createServerTransaction}.

    sipevents uses it to refuse INVITE with a non-2xx final response: that
    response is retransmitted (Timer G, unreliable transports only) until the
    ACK arrives or Timer H fires, and retransmitted ACKs are absorbed until
    Timer I.

    @cvar tryingDelay: if the TU has sent no response this many seconds after
        the INVITE, the transaction sends 100 (Trying) itself (RFC 3261
        section 17.2.1: it MUST, unless the TU answers within 200 ms).
    """

    __slots__ = ("_interval", "_timerTrying", "_timerG", "_timerH", "_timerI")

    tryingDelay: ClassVar[float] = 0.2
    _section = "RFC 3261 section 17.2.1"
    _terminal = InviteServerState.TERMINATED
    _abandonInput = InviteServerInput.ABANDON

    def __init__(
        self,
        manager: TransactionManager,
        request: Request,
        keys: tuple[_Key, ...],
        send: Callable[[Response], object],
        reliable: bool,
    ) -> None:
        super().__init__(manager, request, keys, send, reliable)
        self.state = InviteServerState.PROCEEDING
        self._interval = manager.timers.T1
        self._timerTrying: IDelayedCall | None = self._callLater(
            self.tryingDelay, self._onTimerTrying
        )
        self._timerG: IDelayedCall | None = None
        self._timerH: IDelayedCall | None = None
        self._timerI: IDelayedCall | None = None

    def requestRetransmitted(self) -> None:
        """
        A retransmission of the INVITE arrived (RFC 3261 section 17.2.1): the
        most recent response is sent again ("Proceeding", "Completed").
        """
        self._fire(InviteServerInput.REQUEST)

    def ackReceived(self) -> None:
        """
        An ACK matching this transaction arrived (RFC 3261 section 17.2.1):
        in "Completed" it stops retransmissions and moves to "Confirmed";
        elsewhere it is absorbed.
        """
        self._fire(InviteServerInput.ACK)

    def respond(self, response: Response) -> None:
        code = response.code
        if not 100 <= code <= 699:
            raise ValueError(f"Bad status code {code}")
        if code < 200:
            input = InviteServerInput.PROVISIONAL
        elif code < 300:
            input = InviteServerInput.SUCCESS
        else:
            input = InviteServerInput.FINAL
        self._fire(input, response)

    def transportError(self, reason: Failure | BaseException | None = None) -> None:
        self._fire(InviteServerInput.TRANSPORT_ERROR, reason)

    def _onTimerTrying(self) -> None:
        self._timerTrying = None
        self._fire(InviteServerInput.TIMER_TRYING)

    def _onTimerG(self) -> None:
        self._timerG = None
        self._fire(InviteServerInput.TIMER_G)

    def _onTimerH(self) -> None:
        self._timerH = None
        self._fire(InviteServerInput.TIMER_H)

    def _onTimerI(self) -> None:
        self._timerI = None
        self._fire(InviteServerInput.TIMER_I)

    def _sendTrying(self, _: object) -> None:
        # The 100 carries no To tag (RFC 3261 section 17.2.1: SHOULD NOT).
        # An INVITE transaction keeps its request to the end.
        assert self.request is not None
        self._sendResponse(makeResponse(self.request, 100))

    def _sendProvisional(self, response: Response) -> None:
        if self._timerTrying is not None:
            self._timerTrying.cancel()
            self._timerTrying = None
        self._sendResponse(response)

    def _sendFinal(self, response: Response) -> None:
        self._manager._addAckKey(self, response)
        self._sendResponse(response)

    def _retransmitFinal(self, _: object) -> None:
        # MIN(2*interval, T2), as for Timer E (RFC 3261 section 17.2.1).
        self._interval = min(2 * self._interval, self._manager.timers.T2)
        self._timerG = self._callLater(self._interval, self._onTimerG)
        self._resendLast(None)

    def _timedOut(self, _: object) -> None:
        self.log.info(
            "INVITE server transaction {branch}: no ACK (Timer H, {timeout}s)",
            branch=self.branch,
            timeout=self._manager.timers.timerH,
        )
        self._report(TransactionTimeout("No ACK for the final response (Timer H)"))

    def _enterCompleted(self) -> None:
        timers = self._manager.timers
        self._timerH = self._callLater(timers.timerH, self._onTimerH)
        if not self.reliable:
            self._timerG = self._callLater(timers.T1, self._onTimerG)

    def _enterConfirmed(self) -> None:
        # Timer I: T4 unreliable, zero reliable (RFC 3261 section 17.2.1).
        delay = 0.0 if self.reliable else self._manager.timers.timerI
        if delay <= 0:
            self._fire(InviteServerInput.TIMER_I)
        else:
            self._timerI = self._callLater(delay, self._onTimerI)

    _P = InviteServerState.PROCEEDING
    _C = InviteServerState.COMPLETED
    _A = InviteServerState.CONFIRMED
    _T = InviteServerState.TERMINATED
    _In = InviteServerInput
    _transitions: ClassVar[_Table] = {
        # Proceeding
        (_P, _In.REQUEST): (_P, _ServerBase._resendLast),
        (_P, _In.ACK): (_P, None),
        (_P, _In.PROVISIONAL): (_P, _sendProvisional),
        (_P, _In.SUCCESS): (_T, _ServerBase._sendResponse),
        (_P, _In.FINAL): (_C, _sendFinal),
        (_P, _In.TIMER_TRYING): (_P, _sendTrying),
        (_P, _In.TRANSPORT_ERROR): (_T, _ServerBase._transportFailed),
        (_P, _In.ABANDON): (_T, None),
        # Completed
        (_C, _In.REQUEST): (_C, _ServerBase._resendLast),
        (_C, _In.ACK): (_A, None),
        (_C, _In.TIMER_G): (_C, _retransmitFinal),
        (_C, _In.TIMER_H): (_T, _timedOut),
        (_C, _In.TRANSPORT_ERROR): (_T, _ServerBase._transportFailed),
        (_C, _In.ABANDON): (_T, None),
        # Confirmed: absorbs ACK retransmissions until Timer I.
        (_A, _In.REQUEST): (_A, None),
        (_A, _In.ACK): (_A, None),
        (_A, _In.TIMER_I): (_T, None),
        (_A, _In.TRANSPORT_ERROR): (_A, None),
        (_A, _In.ABANDON): (_T, None),
        # Terminated
        (_T, _In.REQUEST): (_T, None),
        (_T, _In.ACK): (_T, None),
        (_T, _In.TRANSPORT_ERROR): (_T, None),
        (_T, _In.ABANDON): (_T, None),
    }
    _entryActions: ClassVar[Mapping[Any, Callable[[Any], None]]] = {
        _C: _enterCompleted,
        _A: _enterConfirmed,
    }
    _timerOwners: ClassVar[tuple[tuple[str, frozenset[Any]], ...]] = (
        ("_timerTrying", frozenset({_P})),
        ("_timerG", frozenset({_C})),
        ("_timerH", frozenset({_C})),
        ("_timerI", frozenset({_A})),
    )
    del _P, _C, _A, _T, _In


# ---------------------------------------------------------------------------
# Matching keys (RFC 3261 sections 17.1.3, 17.2.3 and 9.2)


def _tag(addr: NameAddr | None) -> str | None:
    # Tags are tokens, compared case-insensitively (RFC 3261 section 7.3.1).
    if addr is None:
        return None
    tag = addr.tag
    return tag.lower() if tag is not None else None


def _viaKey(via: Via) -> tuple[Any, ...]:
    """
    The top Via as compared by the RFC 2543 fallback: parameters that this
    host's transport layer stamps (C{received}, C{rport}; RFC 3261 section
    18.2.1, RFC 3581) are left out, so a client whose source port changed
    still matches.
    """
    return (
        via.transport.upper(),
        via.host.lower(),
        via.port,
        tuple(
            (name.lower(), value)
            for name, value in via.params
            if name.lower() not in ("received", "rport")
        ),
    )


def _requestKey(request: Request, toTag: str | None) -> _Key | None:
    """
    What identifies the transaction of C{request} regardless of its method
    (RFC 3261 section 17.2.3): branch and sent-by when the branch has the
    magic cookie; otherwise the RFC 2543 fields (Request-URI, To tag, From
    tag, Call-ID, CSeq number, top Via).
    """
    via = request.topVia
    if via is None:
        return None
    branch = via.branch
    if branch is not None and branch[:7].lower() == _COOKIE:
        port = via.port
        return (
            branch.lower(),
            # Interned: a completed transaction keeps its key for Timer J,
            # and most come from a few hosts.
            sys.intern(via.host.lower()),
            port if port is not None else defaultPort(via.transport),
        )
    fromAddr = request.fromAddr
    cseq = request.cseq
    callId = request.callId
    if fromAddr is None or cseq is None or callId is None:
        return None
    return (request.uri, toTag, _tag(fromAddr), callId, cseq.number, _viaKey(via))


def _serverKey(request: Request) -> _Key | None:
    key = _requestKey(request, _tag(request.toAddr))
    if key is None:
        return None
    # An ACK belongs to the INVITE transaction (RFC 3261 section 17.2.3).
    method = request.method
    return (key, "INVITE" if method == "ACK" else method)


_AnyServerTransaction = ServerTransaction | InviteServerTransaction


class TransactionManager:
    """
    Creates transactions and routes messages to them.

    Lookups are single dict accesses keyed by the matching tuple of RFC 3261
    sections 17.1.3 and 17.2.3, and a transaction removes its keys the
    moment it terminates. Timers J, K and F, and the first Timer E, of
    every transaction run from one L{FixedDelayQueue} each.

    @ivar clock: where time comes from (C{callLater}).
    @ivar timers: T1, T2 and T4 (RFC 3261 appendix A).
    """

    __slots__ = (
        "clock",
        "timers",
        "_servers",
        "_clients",
        "_serverMethods",
        "_queues",
        "_lastLookup",
    )

    log = Logger()

    def __init__(
        self, clock: IReactorTime, timers: TimerConfig = DEFAULT_TIMERS
    ) -> None:
        self.clock = clock
        self.timers = timers
        self._servers: dict[_Key, _AnyServerTransaction] = {}
        self._clients: dict[_Key, ClientTransaction] = {}
        # Methods of live server transactions, for CANCEL matching of any
        # method (RFC 3261 section 9.2).
        self._serverMethods: dict[str, int] = {}
        self._queues: dict[tuple[str, float], FixedDelayQueue] = {}
        # The request absorbRequest found new last, and its key, so that the
        # createServerTransaction which usually follows does not compute the
        # key again.
        self._lastLookup: tuple[Request | None, _Key | None] = (None, None)

    def _queue(
        self,
        name: str,
        delay: float,
        fire: Callable[[Any], object],
        keepArmed: bool = False,
    ) -> FixedDelayQueue:
        """
        The queue of the fixed-length timer C{name} lasting C{delay}
        seconds (one per delay, so that a changed L{timers} still keeps
        each queue in deadline order).
        """
        queue = self._queues.get((name, delay))
        if queue is None:
            queue = self._queues[name, delay] = FixedDelayQueue(
                self.clock, delay, fire, keepArmed
            )
        return queue

    def _timerJQueue(self, delay: float) -> FixedDelayQueue:
        return self._queue("J", delay, ServerTransaction._onTimerJ)

    def _timerKQueue(self, delay: float) -> FixedDelayQueue:
        return self._queue("K", delay, ClientTransaction._onTimerK)

    def _timerEQueue(self, delay: float) -> FixedDelayQueue:
        # Kept armed: nearly every Timer E and F is cancelled by the
        # response (see FixedDelayQueue).
        return self._queue("E", delay, ClientTransaction._onTimerE, True)

    def _timerFQueue(self, delay: float) -> FixedDelayQueue:
        return self._queue("F", delay, ClientTransaction._onTimerF, True)

    def _serverKey(self, request: Request) -> _Key | None:
        last, key = self._lastLookup
        if last is request:
            self._lastLookup = (None, None)
            return key
        return _serverKey(request)

    @property
    def serverTransactionCount(self) -> int:
        """How many server transactions are alive."""
        return sum(self._serverMethods.values())

    @property
    def clientTransactionCount(self) -> int:
        """How many client transactions are alive."""
        return len(self._clients)

    @staticmethod
    def newBranch() -> str:
        """
        A new branch parameter: the magic cookie and 128 random bits, unique
        across space and time and unguessable (RFC 3261 section 8.1.1.7).
        """
        return MAGIC_COOKIE + secrets.token_urlsafe(16)

    # Server side.

    def findServerTransaction(self, request: Request) -> _AnyServerTransaction | None:
        """
        The server transaction C{request} belongs to (RFC 3261 section
        17.2.3), or C{None} when it starts a new one. An ACK matches the
        INVITE transaction it acknowledges; a CANCEL matches only its own
        transaction (see L{findCancelTarget}).
        """
        key = _serverKey(request)
        if key is None:
            return None
        return self._servers.get(key)

    def absorbRequest(self, request: Request) -> bool:
        """
        Hand C{request} to the server transaction it matches, if any: a
        retransmission re-sends the last response, an ACK is passed to
        L{InviteServerTransaction.ackReceived}.

        @return: C{True} when the request was absorbed by a transaction (the
            TU must not see it), C{False} when it is new.
        """
        key = _serverKey(request)
        transaction = None if key is None else self._servers.get(key)
        if transaction is None:
            # A new request: its transaction is usually created next.
            self._lastLookup = (request, key)
            return False
        if request.method == "ACK":
            if isinstance(transaction, InviteServerTransaction):
                transaction.ackReceived()
        else:
            transaction.requestRetransmitted()
        return True

    @overload
    def findCancelTarget(
        self, cancel: Request, anyMethod: Literal[False] = False
    ) -> InviteServerTransaction | None: ...

    @overload
    def findCancelTarget(
        self, cancel: Request, anyMethod: bool
    ) -> _AnyServerTransaction | None: ...

    def findCancelTarget(
        self, cancel: Request, anyMethod: bool = False
    ) -> _AnyServerTransaction | None:
        """
        The transaction a CANCEL refers to: the one the CANCEL would match if
        its method were anything but CANCEL or ACK (RFC 3261 section 9.2).

        @param anyMethod: by default only an INVITE transaction is returned,
            the only kind a CANCEL has an effect on. With C{True}, any
            matching transaction is (a UAS then answers 200 to the CANCEL
            and changes nothing else).
        @return: the transaction, or C{None} (answer 481).
        """
        key = _requestKey(cancel, _tag(cancel.toAddr))
        if key is None:
            return None
        servers = self._servers
        found = servers.get((key, "INVITE"))
        if found is not None or not anyMethod:
            return found
        for method in self._serverMethods:
            if method != "CANCEL":
                found = servers.get((key, method))
                if found is not None:
                    return found
        return None

    def createServerTransaction(
        self,
        request: Request,
        send: Callable[[Response], object],
        reliable: bool,
    ) -> _AnyServerTransaction:
        """
        Start the server transaction for a new request: an
        L{InviteServerTransaction} for INVITE, otherwise a
        L{ServerTransaction}.

        @param send: puts a response on the wire (RFC 3261 section 18.2.2).
            If it raises, or returns a L{Deferred} that fails, the
            transaction treats it as a transport error (section 17.2.4).
        @param reliable: whether the request came over a reliable transport.
        @raise ValueError: for an ACK (it never creates a transaction), a
            request with no top Via, or one that already has a transaction.
        """
        if request.method == "ACK":
            raise ValueError("ACK does not create a server transaction")
        key = self._serverKey(request)
        if key is None:
            raise ValueError("Cannot create a transaction: no top Via")
        if key in self._servers:
            raise ValueError(f"{request!r} already has a server transaction")
        transaction: _AnyServerTransaction
        if request.method == "INVITE":
            transaction = InviteServerTransaction(self, request, (key,), send, reliable)
        else:
            transaction = ServerTransaction(self, request, (key,), send, reliable)
        self._servers[key] = transaction
        methods = self._serverMethods
        methods[request.method] = methods.get(request.method, 0) + 1
        return transaction

    def _addAckKey(
        self, transaction: InviteServerTransaction, response: Response
    ) -> None:
        """
        An RFC 2543 ACK carries the To tag of the final response (RFC 3261
        section 17.2.3): register the INVITE transaction under that tag too.
        """
        (requestKey, method), *_ = transaction._keys
        if len(requestKey) != 6:
            return
        toTag = _tag(response.toAddr)
        if toTag == requestKey[1]:
            return
        key = ((*requestKey[:1], toTag, *requestKey[2:]), method)
        self._servers.setdefault(key, transaction)
        transaction._keys = (*transaction._keys, key)

    def _removeServer(self, transaction: _ServerBase[Any, Any]) -> None:
        servers = self._servers
        for key in transaction._keys:
            if servers.get(key) is transaction:
                del servers[key]
        methods = self._serverMethods
        method = transaction.method
        left = methods.get(method, 0) - 1
        if left > 0:
            methods[method] = left
        else:
            methods.pop(method, None)

    # Client side.

    def createClientTransaction(
        self,
        request: Request,
        send: Callable[[], object],
        reliable: bool,
        onProvisional: Callable[[Response], object] | None = None,
        branch: str | None = None,
    ) -> ClientTransaction:
        """
        Start a non-INVITE client transaction and send C{request} (RFC 3261
        section 17.1.2.2).

        @param request: carries its top Via with a magic-cookie branch.
        @param send: sends the request once (called again for each
            retransmission). If it raises, or returns a L{Deferred} that
            fails, the transaction fails with L{TransportFailure} (section
            17.1.4).
        @param reliable: whether the transport is reliable (no Timer E).
        @param onProvisional: called with each provisional response.
        @param branch: the branch of the request's top Via, when the caller
            has just written it (as L{sipevents.sip.useragent.UserAgent.sendRequest}
            has), so that the Via is not parsed back; read from the request
            otherwise.
        @raise ValueError: for INVITE or ACK (no INVITE client transaction
            here), a missing or RFC 2543 branch, or a branch and method
            already in use.
        """
        if request.method in ("INVITE", "ACK"):
            raise ValueError(f"No client transaction for {request.method} here")
        if branch is None:
            via = request.topVia
            branch = via.branch if via is not None else None
        if branch is None or branch[:7].lower() != _COOKIE:
            raise ValueError(
                f"{request!r} needs a top Via with a {MAGIC_COOKIE} branch"
            )
        key = (branch.lower(), request.method)
        if key in self._clients:
            raise ValueError(f"Branch {branch} is already in use")
        transaction = ClientTransaction(
            self, request, key, send, reliable, onProvisional
        )
        self._clients[key] = transaction
        transaction._start()
        return transaction

    def matchResponse(self, response: Response) -> bool:
        """
        Route C{response} to its client transaction: same top Via branch and
        same CSeq method as the request (RFC 3261 section 17.1.3).

        @return: C{False} when no transaction matches (the caller drops and
            logs it).
        """
        via = response.topVia
        cseq = response.cseq
        if via is None or cseq is None:
            return False
        branch = via.branch
        if branch is None:
            return False
        transaction = self._clients.get((branch.lower(), cseq.method))
        if transaction is None:
            return False
        transaction.responseReceived(response)
        return True

    def _removeClient(self, transaction: ClientTransaction) -> None:
        if self._clients.get(transaction._key) is transaction:
            del self._clients[transaction._key]

    def stop(self) -> None:
        """
        Abandon every transaction: timers are cancelled, pending client
        deferreds fail with C{CancelledError}. For shutting down.
        """
        for client in list(self._clients.values()):
            if client.deferred.called:
                # Completed: its response is delivered; only Timer K is left.
                client._fire(ClientInput.ABANDON)
            else:
                client.deferred.cancel()
        for server in set(self._servers.values()):
            server._abandon()
        for queue in self._queues.values():
            queue.clear()
        self._lastLookup = (None, None)
