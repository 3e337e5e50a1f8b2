# -*- test-case-name: tests.test_subscriber -*-
"""
The subscriber's view of one subscription (RFC 6665 section 4.1.2), pure:
the declared state table, the timers each state holds, and the decisions
(when to refresh, when to re-subscribe, how long a 2xx grants).

Design: a declared state machine
================================
L{SubscriberState} names the states: those of the diagram of RFC 6665
section 4.1.2 (C{init}, C{notify_wait}, C{pending}, C{active},
C{terminated}) and two the diagram leaves implicit, C{unsubscribing}
(C{Expires: 0} sent, section 4.1.2.3) and C{retry_wait} (the dialog usage
ended and the same handle re-subscribes after a delay, section 4.1.3).
L{SubscriberInput} names what can happen to a subscription; L{TRANSITIONS}
maps each allowed C{(state, input)} pair to a L{Transition}: the next state
and the L{SubscriberAction} the handle runs. A pair missing from the table
is refused with L{InvalidTransition}: a bug, raised and logged, never
mapped to some other state. L{transition} is the only way through, as in
L{sipevents.sip.transaction} and L{sipevents.notifier.states}.

Inputs are decided events: where what happened may or may not lead to a
re-subscription (a C{terminated} NOTIFY, a failed SUBSCRIBE, Timer N, the
expiry), the handle first asks the decision functions below and then gives
L{SubscriberInput.ENDED} or L{SubscriberInput.ENDED_RETRY}, so the target
state of every pair is fixed. The table then says, for instance, that an
unsubscribing subscription never re-subscribes.

Timers are state data: L{TIMERS} names the states that hold each
L{SubscriberTimer}. Waiting for the first NOTIFY holds Timer N; C{pending}
and C{active} hold the refresh and the expiry (and Timer N after a
refresh); C{unsubscribing} holds Timer N; C{retry_wait} holds the delay
before re-subscribing; C{init} and C{terminated} hold none. The handle
clears a timer on entering a state that does not hold it, and refuses to
arm one there.

Late input: a NOTIFY for a usage that has ended finds no subscription and
is answered 481 before any handle sees it (RFC 6665 section 4.1.3); an
answer to a SUBSCRIBE of an ended usage is L{SubscriberInput.LATE_ANSWER},
declared in every state past C{init} and ignored.

The decisions (see L{sipevents.subscriber.handle} for the choices they
implement): L{refreshDelay} (C{min(32, duration / 2)} seconds before the
expiry), L{retryDelay} (by C{reason} and C{retry-after}, RFC 6665 section
4.1.3), L{resubscribeDelay} (a re-subscription's SUBSCRIBE that failed),
L{backoff} (RFC 5626 section 4.5) and L{grantedExpires} (RFC 6665 section
3.1.1).
"""

from __future__ import annotations

import random as _random
from collections.abc import Mapping
from dataclasses import dataclass

from sipevents.errors import ParseError
from sipevents.sip.dialog import SUBSCRIPTION_ENDING_CODES
from sipevents.sip.message import Response
from sipevents.statetable import TableEnum, lookup

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "DEFAULT_EXPIRES",
    "IMMEDIATE_REASONS",
    "IMMEDIATE_RETRIES",
    "NO_RETRY_REASONS",
    "REFRESH_MARGIN",
    "RETRIABLE_CODES",
    "TIMERS",
    "TRANSITIONS",
    "SubscriberAction",
    "SubscriberInput",
    "SubscriberState",
    "SubscriberTimer",
    "Transition",
    "backoff",
    "grantedExpires",
    "refreshDelay",
    "refreshOutcome",
    "resubscribeDelay",
    "retryDelay",
    "transition",
]

#: The duration assumed when a 2xx has no Expires and we asked for none
#: (see L{grantedExpires}).
DEFAULT_EXPIRES = 3600

#: The most seconds a refresh is sent before the expiry: Timer F with the
#: default T1.
REFRESH_MARGIN = 32.0

#: Responses to a re-subscription's SUBSCRIBE after which we try again
#: later: the notifier is busy, restarting or unreachable, not refusing.
RETRIABLE_CODES = frozenset({408, 480, 500, 503, 504, 600})

#: Reasons after which we never re-subscribe (RFC 6665 section 4.1.3).
NO_RETRY_REASONS = frozenset({"rejected", "noresource", "invariant"})

#: Reasons after which we re-subscribe at once (RFC 6665 section 4.1.3).
IMMEDIATE_REASONS = frozenset({"deactivated", "timeout"})

#: The back-off of RFC 5626 section 4.5: base and cap in seconds.
BACKOFF_BASE = 30.0
BACKOFF_CAP = 1800.0

#: Immediate retries in a row, without reaching active, before backing off.
IMMEDIATE_RETRIES = 3


class SubscriberState(TableEnum):
    """
    The states of a subscription at the subscriber (RFC 6665 section
    4.1.2), the values of L{sipevents.interfaces.ISubscription.state}.
    """

    #: Created, nothing sent yet.
    INIT = "init"
    #: A SUBSCRIBE is out, its first NOTIFY awaited (section 4.1.2.4).
    NOTIFY_WAIT = "notify_wait"
    #: A C{pending} NOTIFY came (section 4.1.3).
    PENDING = "pending"
    #: An C{active} NOTIFY came (section 4.1.3).
    ACTIVE = "active"
    #: C{Expires: 0} is out, the final NOTIFY awaited (section 4.1.2.3).
    UNSUBSCRIBING = "unsubscribing"
    #: The dialog usage ended; the same handle re-subscribes after a delay
    #: (section 4.1.3).
    RETRY_WAIT = "retry_wait"
    #: Ended for good.
    TERMINATED = "terminated"


class SubscriberInput(TableEnum):
    """
    What can happen to a subscription at the subscriber.
    """

    SUBSCRIBE = "the first SUBSCRIBE is sent"
    FORKED = "a forked NOTIFY made a new usage (RFC 6665 section 4.1.4)"
    RETRY_TIMER = "the wait before re-subscribing is over"
    ACCEPTED = "a 2xx to a SUBSCRIBE or refresh of this usage"
    UNSUBSCRIBE_ACCEPTED = "a 2xx to the unsubscribing SUBSCRIBE"
    REFRESH_FAILED = "a refresh failed in a way that does not end the usage"
    NOTIFY_PENDING = "a NOTIFY with pending"
    NOTIFY_ACTIVE = "a NOTIFY with active"
    NOTIFY_UNKNOWN = "a NOTIFY with an unknown Subscription-State value"
    REFRESH = "the application asks for a refresh"
    REFRESH_TIMER = "the refresh is due"
    UNSUBSCRIBE = "the application unsubscribes, in a dialog"
    GIVE_UP = "the usage ends with nothing to send"
    ENDED = "the usage ended, with no re-subscription"
    ENDED_RETRY = "the usage ended, to be re-subscribed"
    LATE_ANSWER = "an answer to a SUBSCRIBE of an ended usage"


class SubscriberAction(TableEnum):
    """
    What the handle does on a transition
    (L{sipevents.subscriber.handle.Subscription} maps each to a method).
    """

    #: Nothing.
    NONE = "none"
    #: Send the first SUBSCRIBE of a usage (RFC 6665 section 4.1.2.1).
    SEND_SUBSCRIBE = "send SUBSCRIBE"
    #: Take over a forked usage's dialog values (section 4.1.4).
    ADOPT_FORK = "adopt fork"
    #: Send a new SUBSCRIBE, new Call-ID and From tag (section 4.1.2.2).
    RESUBSCRIBE = "re-subscribe"
    #: Apply the duration a 2xx grants (section 4.1.2.1 and 4.1.2.2).
    GRANT = "grant"
    #: The unsubscription was answered (section 4.1.2.3).
    UNSUBSCRIBE_ANSWERED = "unsubscribe answered"
    #: Keep the subscription until it expires; refresh again half way.
    HOLD_UNTIL_EXPIRY = "hold until expiry"
    #: Report the NOTIFY, apply its expires, fire the waiters (4.1.3).
    NOTIFIED = "notified"
    #: Report the NOTIFY only.
    REPORT = "report"
    #: Send a refreshing SUBSCRIBE (section 4.1.2.2).
    SEND_REFRESH = "send refresh"
    #: Fail a refresh asked for when there is no dialog to refresh.
    REFUSE_REFRESH = "refuse refresh"
    #: Send C{Expires: 0} in the dialog (section 4.1.2.3).
    SEND_UNSUBSCRIBE = "send unsubscribe"
    #: Tell the observer the usage ended and end for good.
    END = "end"
    #: End for good; the observer was told when the usage ended.
    END_QUIETLY = "end quietly"
    #: Tell the observer the usage ended, then wait to re-subscribe.
    END_AND_WAIT = "end and wait"


class SubscriberTimer(TableEnum):
    """
    The timers a subscription holds.
    """

    #: 64*T1 after each SUBSCRIBE, cancelled by a NOTIFY (section 4.1.2.4).
    TIMER_N = "Timer N"
    #: When to refresh (L{refreshDelay}, section 4.1.2.2).
    REFRESH = "refresh"
    #: When the granted duration runs out (section 4.1.2.2).
    EXPIRY = "expiry"
    #: When to re-subscribe (section 4.1.3).
    RETRY = "retry"


@dataclass(frozen=True, slots=True)
class Transition:
    """
    One entry of L{TRANSITIONS}.

    @ivar state: the next state.
    @ivar action: what the handle does.
    """

    state: SubscriberState
    action: SubscriberAction


_S = SubscriberState
_I = SubscriberInput
_A = SubscriberAction

#: The states that hold each timer; entering any other state clears it.
TIMERS: Mapping[SubscriberTimer, frozenset[SubscriberState]] = {
    SubscriberTimer.TIMER_N: frozenset(
        {_S.NOTIFY_WAIT, _S.PENDING, _S.ACTIVE, _S.UNSUBSCRIBING}
    ),
    # A 2xx can grant before the first NOTIFY, so notify_wait holds them too.
    SubscriberTimer.REFRESH: frozenset({_S.NOTIFY_WAIT, _S.PENDING, _S.ACTIVE}),
    SubscriberTimer.EXPIRY: frozenset({_S.NOTIFY_WAIT, _S.PENDING, _S.ACTIVE}),
    SubscriberTimer.RETRY: frozenset({_S.RETRY_WAIT}),
}


def _rows(
    states: tuple[SubscriberState, ...],
    input: SubscriberInput,
    target: SubscriberState | None,
    action: SubscriberAction,
) -> dict[tuple[SubscriberState, SubscriberInput], Transition]:
    """
    The same step from several states; C{target} C{None} stays put.
    """
    return {
        (s, input): Transition(s if target is None else target, action) for s in states
    }


#: The states of a live dialog usage.
_LIVE = (_S.NOTIFY_WAIT, _S.PENDING, _S.ACTIVE)
#: Those that can still receive NOTIFYs and answers of this usage.
_IN_USAGE = (*_LIVE, _S.UNSUBSCRIBING)

#: C{(state, input) -> Transition}: the subscriber's state diagram of RFC
#: 6665 section 4.1.2, with the waits for an unsubscription and a
#: re-subscription as states of their own. Active back to pending is not
#: in the diagram; it is accepted, since a notifier may need to authorize
#: again.
TRANSITIONS: Mapping[tuple[SubscriberState, SubscriberInput], Transition] = {
    # A usage begins: the SUBSCRIBE of Subscriber.subscribe, a fork, or the
    # re-subscription of the same handle.
    (_S.INIT, _I.SUBSCRIBE): Transition(_S.NOTIFY_WAIT, _A.SEND_SUBSCRIBE),
    (_S.INIT, _I.FORKED): Transition(_S.NOTIFY_WAIT, _A.ADOPT_FORK),
    (_S.RETRY_WAIT, _I.RETRY_TIMER): Transition(_S.NOTIFY_WAIT, _A.RESUBSCRIBE),
    # Answers to our SUBSCRIBEs.
    **_rows(_IN_USAGE, _I.ACCEPTED, None, _A.GRANT),
    (_S.UNSUBSCRIBING, _I.UNSUBSCRIBE_ACCEPTED): Transition(
        _S.UNSUBSCRIBING, _A.UNSUBSCRIBE_ANSWERED
    ),
    **_rows(_LIVE, _I.REFRESH_FAILED, None, _A.HOLD_UNTIL_EXPIRY),
    # Only the unsubscription's own answer or Timer N decides now.
    (_S.UNSUBSCRIBING, _I.REFRESH_FAILED): Transition(_S.UNSUBSCRIBING, _A.NONE),
    **_rows((*_IN_USAGE, _S.RETRY_WAIT, _S.TERMINATED), _I.LATE_ANSWER, None, _A.NONE),
    # NOTIFYs (section 4.1.3); an unsubscribing usage reports them and
    # waits on for the final one.
    **_rows(_LIVE, _I.NOTIFY_PENDING, _S.PENDING, _A.NOTIFIED),
    **_rows(_LIVE, _I.NOTIFY_ACTIVE, _S.ACTIVE, _A.NOTIFIED),
    (_S.UNSUBSCRIBING, _I.NOTIFY_PENDING): Transition(_S.UNSUBSCRIBING, _A.NOTIFIED),
    (_S.UNSUBSCRIBING, _I.NOTIFY_ACTIVE): Transition(_S.UNSUBSCRIBING, _A.NOTIFIED),
    **_rows(_IN_USAGE, _I.NOTIFY_UNKNOWN, None, _A.REPORT),
    # Refreshing (section 4.1.2.2): the application may ask in any state a
    # handle it holds can be in (init never leaves Subscriber.subscribe),
    # and is refused where there is nothing to refresh.
    **_rows(_LIVE, _I.REFRESH, None, _A.SEND_REFRESH),
    **_rows(
        (_S.UNSUBSCRIBING, _S.RETRY_WAIT, _S.TERMINATED),
        _I.REFRESH,
        None,
        _A.REFUSE_REFRESH,
    ),
    **_rows(_LIVE, _I.REFRESH_TIMER, None, _A.SEND_REFRESH),
    # Unsubscribing (section 4.1.2.3).
    **_rows(_LIVE, _I.UNSUBSCRIBE, _S.UNSUBSCRIBING, _A.SEND_UNSUBSCRIBE),
    (_S.UNSUBSCRIBING, _I.UNSUBSCRIBE): Transition(_S.UNSUBSCRIBING, _A.NONE),
    **_rows(_IN_USAGE, _I.GIVE_UP, _S.TERMINATED, _A.END),
    (_S.RETRY_WAIT, _I.GIVE_UP): Transition(_S.TERMINATED, _A.END_QUIETLY),
    (_S.TERMINATED, _I.GIVE_UP): Transition(_S.TERMINATED, _A.NONE),
    # The usage ends (section 4.1.2): only a live one may re-subscribe.
    **_rows(_IN_USAGE, _I.ENDED, _S.TERMINATED, _A.END),
    **_rows(_LIVE, _I.ENDED_RETRY, _S.RETRY_WAIT, _A.END_AND_WAIT),
}

del _S, _I, _A


def transition(state: SubscriberState, input: SubscriberInput) -> Transition:
    """
    The step C{input} makes from C{state} (RFC 6665 section 4.1.2).

    @raise InvalidTransition: when the table has no such step.
    """
    return lookup(TRANSITIONS, "subscriber", state, input, "RFC 6665 section 4.1.2")


def backoff(attempt: int, random: _random.Random) -> float:
    """
    Seconds to wait before retry number C{attempt} (from 0) after failures
    in a row: RFC 5626 section 4.5, C{min(1800, 30 * 2**attempt)}, times a
    uniform jitter in [0.5, 1].
    """
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * (1 << min(attempt, 16)))
    return ceiling * random.uniform(0.5, 1.0)


def retryDelay(
    reason: str | None,
    retryAfter: int | None,
    attempt: int,
    random: _random.Random,
) -> float | None:
    """
    When to re-subscribe after a subscription ended with C{reason}
    (RFC 6665 section 4.1.3): never after C{rejected}, C{noresource} and
    C{invariant}; at once after C{deactivated} and C{timeout}; after
    C{retryAfter} when given; otherwise after a L{backoff}. Immediate
    retries are tight-loop guarded: after L{IMMEDIATE_RETRIES} in a row
    that did not reach C{active}, one that would come sooner than a second
    is backed off instead.

    @param reason: the Subscription-State reason (lower case), or C{None}.
    @param retryAfter: its C{retry-after}, or C{None}.
    @param attempt: re-subscriptions made in a row without reaching
        C{active}.
    @param random: the source of jitter.
    @return: seconds to wait, or C{None} for never.
    """
    if reason in NO_RETRY_REASONS:
        return None
    if reason in IMMEDIATE_REASONS:
        # retry-after has no semantics for these (section 4.1.3).
        delay = 0.0
    elif retryAfter is not None:
        delay = float(retryAfter)
    else:
        return backoff(attempt, random)
    if delay < 1.0 and attempt >= IMMEDIATE_RETRIES:
        # A notifier terminating every new subscription at once must not
        # make us loop as fast as the network goes.
        return backoff(attempt - IMMEDIATE_RETRIES, random)
    return delay


def resubscribeDelay(
    code: int | None,
    retryAfter: float | None,
    attempt: int,
    random: _random.Random,
) -> float | None:
    """
    When to try again after a SUBSCRIBE outside a dialog failed: a first
    attempt never is; a re-subscription is, when the notifier was busy,
    restarting or unreachable (L{RETRIABLE_CODES}, or no answer), after
    its C{Retry-After} or a L{backoff}.

    @param code: the error status, or C{None} for no answer at all.
    @param retryAfter: the response's C{Retry-After} seconds, or C{None}.
    @param attempt: re-subscriptions made in a row without reaching
        C{active} (0 for the first attempt).
    @return: seconds to wait, or C{None} for never.
    """
    if attempt == 0:
        return None
    if code is not None and code not in RETRIABLE_CODES:
        return None
    if retryAfter is not None:
        return retryAfter
    return backoff(attempt, random)


def refreshOutcome(code: int | None) -> tuple[bool, str | None]:
    """
    What a failed refresh means (RFC 6665 section 4.1.2.2).

    @param code: the error status, or C{None} for no answer at all.
    @return: whether the usage is gone, and the reason to end it with:
        for a code in L{sipevents.sip.dialog.SUBSCRIPTION_ENDING_CODES},
        C{deactivated} for 481
        (RFC 3265 section 3.1.4.2: re-subscribe) or C{rejected} for the
        others; for no answer, no reason (the re-subscription "times
        out"); for any other error, the subscription stays valid until it
        expires.
    """
    if code is None:
        return True, None
    if code in SUBSCRIPTION_ENDING_CODES:
        return True, "deactivated" if code == 481 else "rejected"
    return False, None


def refreshDelay(duration: float) -> float:
    """
    Seconds after a duration of C{duration} was granted at which to
    refresh (RFC 6665 section 4.1.2.2): C{min(32, duration / 2)} before
    the expiry.
    """
    return duration - min(REFRESH_MARGIN, duration / 2)


def grantedExpires(response: Response, asked: int | None) -> int:
    """
    The duration a 2xx to SUBSCRIBE grants (RFC 6665 section 3.1.1): its
    Expires; without one (or a malformed one), what was C{asked}, else
    L{DEFAULT_EXPIRES}.
    """
    try:
        expires = response.expires
    except ParseError:
        expires = None
    if expires is not None:
        return expires
    return DEFAULT_EXPIRES if asked is None else asked
