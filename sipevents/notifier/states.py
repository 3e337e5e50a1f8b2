# -*- test-case-name: tests.test_subscription -*-
"""
The notifier's view of one subscription (RFC 6665 section 4.2.2), pure: no
clock, no sockets, no store.

Design: a declared state machine
================================
L{SubscriptionState} names the states of the RFC's diagram (section 4.2.2):
C{init}, C{pending}, C{active} and C{terminated}. The RFC's C{resp_wait}
(the first NOTIFY sent, its response awaited) is not a state of its own
here: the first NOTIFY goes out in the same step that answers the
SUBSCRIBE, and its failure is the same L{SubscriptionInput.NOTIFY_FAILED}
input as for any later NOTIFY. L{SubscriptionInput} names what can happen
to a subscription, and L{TRANSITIONS} maps each allowed C{(state, input)}
pair to a L{Transition}: the next state, which NOTIFY to send
(L{NotifyKind}) and, for C{terminated}, the reason code (RFC 6665 section
4.1.3). A pair missing from the table is refused with L{InvalidTransition};
L{transition} is the only way through, as in L{sipevents.sip.transaction}.

A subscription is an immutable L{sipevents.records.SubscriptionRecord} in
the store, whose C{state} is the value of a L{SubscriptionState} member;
there is no machine object per subscription (hundreds of thousands of them
must fit in memory), only this table, and the notifier stores the next
state with C{record.evolve(state=...)}. Terminated subscriptions are
removed from the store, so C{terminated} never appears in a record; nor
does C{init}, which is the state of a SUBSCRIBE being processed.

Which body a NOTIFY carries is decided by the transition too, so that a
pending subscription can never be sent the resource's state (RFC 6665
section 4.2.1.3 and 5.4.7): while pending, the package's neutral state
(C{renderState(None, ...)}); a final NOTIFY for C{reason=timeout}
(unsubscribe, expiry or a poll, sections 4.2.1.4 and 4.4.3) carries the
state for an active subscription and neutral state for a pending one; a
final NOTIFY for any other reason (rejected, deactivated, noresource ...)
carries no body, since the subscriber is no longer entitled to the state.

The module also holds the rules the notifier applies to a SUBSCRIBE before
a subscription exists: the body type (L{chooseContentType}, section 3.2.1 and
RFC 3261 section 20.1), and the C{Subscription-State} header
(L{formatSubscriptionState}, RFC 6665 section 4.2.2 and 8.2.3).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sipevents.errors import NotAcceptable
from sipevents.records import ACTIVE, PENDING, TERMINATED
from sipevents.sip.headers import MediaRange, isToken
from sipevents.statetable import TableEnum, lookup

__all__ = [
    "REASONS",
    "NotifyKind",
    "SubscriptionInput",
    "SubscriptionState",
    "TRANSITIONS",
    "Transition",
    "chooseContentType",
    "formatSubscriptionState",
    "transition",
]

#: The reason codes of RFC 6665 section 4.1.3 (others may be defined later,
#: section 7.2, so any token is accepted by L{formatSubscriptionState}).
REASONS = frozenset(
    {
        "deactivated",
        "probation",
        "rejected",
        "timeout",
        "giveup",
        "noresource",
        "invariant",
    }
)


class SubscriptionState(TableEnum):
    """
    The states of a subscription at the notifier (RFC 6665 section 4.2.2);
    the values are those of the C{Subscription-State} header and of
    L{sipevents.records.SubscriptionRecord.state}.
    """

    INIT = "init"
    PENDING = PENDING
    ACTIVE = ACTIVE
    TERMINATED = TERMINATED


class SubscriptionInput(TableEnum):
    """
    What can happen to a subscription.
    """

    AUTHORIZED = "the authorizer accepted"
    AUTHORIZATION_PENDING = "the authorizer has not decided yet"
    REJECTED = "the authorizer rejected"
    POLLED = "a SUBSCRIBE with Expires: 0 created it (a fetch)"
    POLLED_PENDING = "a fetch the authorizer has not decided yet"
    REFRESHED = "a refreshing SUBSCRIBE was accepted"
    UNSUBSCRIBED = "a SUBSCRIBE with Expires: 0 ended it"
    STATE_CHANGED = "the resource state changed"
    EXPIRED = "it was not refreshed in time"
    NOTIFY_FAILED = "a NOTIFY failed for good (RFC 6665 section 4.2.2)"
    TERMINATED = "the application or local policy ended it"


class NotifyKind(TableEnum):
    """
    Which NOTIFY a transition sends (RFC 6665 section 4.2.2).
    """

    #: No NOTIFY: nothing to tell, or the subscriber is gone.
    NONE = "none"
    #: C{active;expires=N} with the resource's state.
    STATE = "state"
    #: C{pending;expires=N} with neutral state (section 5.4.7).
    NEUTRAL = "neutral"
    #: C{terminated;reason=R} with the resource's state.
    FINAL_STATE = "final with state"
    #: C{terminated;reason=R} with neutral state.
    FINAL_NEUTRAL = "final with neutral state"
    #: C{terminated;reason=R[;retry-after=N]} without a body.
    FINAL_EMPTY = "final without body"


@dataclass(frozen=True, slots=True)
class Transition:
    """
    One entry of L{TRANSITIONS}.

    @ivar state: the next state.
    @ivar notify: the NOTIFY to send.
    @ivar reason: the C{reason} of a C{terminated} NOTIFY, or C{None} when
        the caller gives it (L{SubscriptionInput.TERMINATED}) or there is
        no NOTIFY.
    """

    state: SubscriptionState
    notify: NotifyKind
    reason: str | None = None


_S = SubscriptionState
_I = SubscriptionInput
_N = NotifyKind

#: C{(state, input) -> Transition}: the notifier's state diagram of RFC 6665
#: section 4.2.2, with the NOTIFY each step sends (sections 4.2.1.2 to
#: 4.2.1.4, 4.2.2 and 4.4.3).
TRANSITIONS: Mapping[tuple[SubscriptionState, SubscriptionInput], Transition] = {
    # A SUBSCRIBE creating a subscription: 200 (or 202) and at once a
    # NOTIFY (section 4.2.1.2); an immediate rejection is a 403 and no
    # subscription (section 4.2.1.3).
    (_S.INIT, _I.AUTHORIZED): Transition(_S.ACTIVE, _N.STATE),
    (_S.INIT, _I.AUTHORIZATION_PENDING): Transition(_S.PENDING, _N.NEUTRAL),
    (_S.INIT, _I.REJECTED): Transition(_S.TERMINATED, _N.NONE),
    # A fetch (section 4.4.3): the state, if authorized, and it is over.
    (_S.INIT, _I.POLLED): Transition(_S.TERMINATED, _N.FINAL_STATE, "timeout"),
    (_S.INIT, _I.POLLED_PENDING): Transition(
        _S.TERMINATED, _N.FINAL_NEUTRAL, "timeout"
    ),
    # Pending (section 4.2.1.3): neutral state only, and a late decision.
    (_S.PENDING, _I.AUTHORIZED): Transition(_S.ACTIVE, _N.STATE),
    (_S.PENDING, _I.REJECTED): Transition(_S.TERMINATED, _N.FINAL_EMPTY, "rejected"),
    (_S.PENDING, _I.REFRESHED): Transition(_S.PENDING, _N.NEUTRAL),
    (_S.PENDING, _I.STATE_CHANGED): Transition(_S.PENDING, _N.NONE),
    (_S.PENDING, _I.UNSUBSCRIBED): Transition(
        _S.TERMINATED, _N.FINAL_NEUTRAL, "timeout"
    ),
    (_S.PENDING, _I.EXPIRED): Transition(_S.TERMINATED, _N.FINAL_NEUTRAL, "timeout"),
    (_S.PENDING, _I.NOTIFY_FAILED): Transition(_S.TERMINATED, _N.NONE),
    (_S.PENDING, _I.TERMINATED): Transition(_S.TERMINATED, _N.FINAL_EMPTY),
    # Active.
    (_S.ACTIVE, _I.REFRESHED): Transition(_S.ACTIVE, _N.STATE),
    (_S.ACTIVE, _I.STATE_CHANGED): Transition(_S.ACTIVE, _N.STATE),
    (_S.ACTIVE, _I.UNSUBSCRIBED): Transition(_S.TERMINATED, _N.FINAL_STATE, "timeout"),
    (_S.ACTIVE, _I.EXPIRED): Transition(_S.TERMINATED, _N.FINAL_STATE, "timeout"),
    (_S.ACTIVE, _I.NOTIFY_FAILED): Transition(_S.TERMINATED, _N.NONE),
    (_S.ACTIVE, _I.TERMINATED): Transition(_S.TERMINATED, _N.FINAL_EMPTY),
}

del _S, _I, _N


def transition(state: SubscriptionState | str, input: SubscriptionInput) -> Transition:
    """
    The step C{input} makes from C{state}.

    @param state: a L{SubscriptionState}, or its value as stored in a
        record (C{"pending"}, C{"active"}).
    @raise InvalidTransition: when the table has no such step.
    @raise ValueError: for a C{state} string that names no state.
    """
    if not isinstance(state, SubscriptionState):
        state = SubscriptionState(state)
    return lookup(TRANSITIONS, "subscription", state, input, "RFC 6665 section 4.2.2")


def chooseContentType(
    accept: Sequence[MediaRange] | None, offered: Sequence[str]
) -> str:
    """
    The body type for NOTIFYs of a subscription (RFC 6665 section 3.1.3 and
    3.2.1, RFC 3261 section 20.1): the package's first type when the
    SUBSCRIBE had no Accept, otherwise the offered type the subscriber
    rates highest (a range that names the type exactly overrides a
    wildcard; C{q=0} means "not acceptable"), the package's order breaking
    ties.

    @param accept: the parsed Accept header, or C{None} when absent. An
        Accept header present but empty accepts nothing (RFC 3261 section
        20.1).
    @param offered: the package's C{contentTypes}, preferred first.
    @raise NotAcceptable: 406 with C{Accept} listing the types we could
        send (RFC 3261 section 21.4.7).
    """
    if accept is None:
        if offered:
            return offered[0]
    else:
        best: str | None = None
        bestQ = 0.0
        for mimeType in offered:
            q = _quality(accept, mimeType)
            if q > bestQ:
                best, bestQ = mimeType, q
        if best is not None:
            return best
    raise NotAcceptable(headers=[("Accept", ", ".join(offered))])


def _quality(accept: Sequence[MediaRange], mimeType: str) -> float:
    """
    The q-value C{accept} gives C{mimeType}: that of the most specific
    range matching it (C{type/subtype} over C{type/*} over C{*/*}), or zero
    when none does.
    """
    best = -1
    q = 0.0
    for mediaRange in accept:
        if not mediaRange.matches(mimeType):
            continue
        specificity = (mediaRange.type != "*") + (mediaRange.subtype != "*")
        if specificity > best:
            best, q = specificity, mediaRange.q
    return q


def formatSubscriptionState(
    state: SubscriptionState | str,
    expires: int | None = None,
    reason: str | None = None,
    retryAfter: int | None = None,
) -> str:
    """
    A C{Subscription-State} value (RFC 6665 section 4.2.2 and 8.2.3):
    C{active;expires=N} or C{pending;expires=N} (the seconds remaining,
    required for those states), or C{terminated;reason=R} with
    C{;retry-after=N} when given (no C{expires}, which has no meaning
    there, section 4.1.3).

    @raise ValueError: for a missing C{expires} on C{active} or C{pending},
        a negative number, or a C{reason} that is not a token.
    """
    if isinstance(state, SubscriptionState):
        state = state.value
    if state in (ACTIVE, PENDING):
        if expires is None or expires < 0:
            raise ValueError(f"{state} needs an expires parameter >= 0")
        return f"{state};expires={expires}"
    if state != TERMINATED:
        raise ValueError(f"Not a subscription state to send: {state!r}")
    value = TERMINATED
    if reason is not None:
        if not isToken(reason):
            raise ValueError(f"Reason is not a token: {reason!r}")
        value += f";reason={reason}"
    if retryAfter is not None:
        if retryAfter < 0:
            raise ValueError("retry-after must be >= 0")
        value += f";retry-after={retryAfter}"
    return value
