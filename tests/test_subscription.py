# -*- test-case-name: tests.test_subscription -*-
"""
Tests for L{sipevents.notifier.states}: the notifier's declared state machine
(RFC 6665 section 4.2.2) and the rules applied to a SUBSCRIBE (sections
3.1.1, 3.1.3, 4.2.1.1 and 8.2.3).
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from sipevents.errors import InvalidTransition, NotAcceptable
from sipevents.notifier.states import (
    TRANSITIONS,
    NotifyKind,
    SubscriptionInput,
    SubscriptionState,
    chooseContentType,
    formatSubscriptionState,
    transition,
)
from sipevents.records import ACTIVE, PENDING, TERMINATED
from sipevents.sip.headers import parseAccept, parseSubscriptionState

S = SubscriptionState
I = SubscriptionInput  # noqa: E741
N = NotifyKind


class TransitionTableTests(SynchronousTestCase):
    """
    The state diagram of RFC 6665 section 4.2.2, as a table.
    """

    def test_rfc6665_4_2_2_statesMatchRecords(self) -> None:
        """
        The state values are those of the Subscription-State header and of
        stored records.
        """
        self.assertEqual(S.PENDING.value, PENDING)
        self.assertEqual(S.ACTIVE.value, ACTIVE)
        self.assertEqual(S.TERMINATED.value, TERMINATED)

    def test_rfc6665_4_2_1_2_initialSteps(self) -> None:
        """
        A SUBSCRIBE becomes active (state NOTIFY), pending (neutral
        NOTIFY), is rejected (no NOTIFY: a 403) or, as a fetch, ends with a
        final NOTIFY C{reason=timeout}.
        """
        self.assertEqual(
            transition(S.INIT, I.AUTHORIZED), TRANSITIONS[(S.INIT, I.AUTHORIZED)]
        )
        self.assertEqual(transition("init", I.AUTHORIZED).state, S.ACTIVE)
        self.assertEqual(transition("init", I.AUTHORIZED).notify, N.STATE)
        step = transition("init", I.AUTHORIZATION_PENDING)
        self.assertEqual((step.state, step.notify), (S.PENDING, N.NEUTRAL))
        step = transition("init", I.REJECTED)
        self.assertEqual((step.state, step.notify), (S.TERMINATED, N.NONE))
        step = transition("init", I.POLLED)
        self.assertEqual(
            (step.state, step.notify, step.reason),
            (S.TERMINATED, N.FINAL_STATE, "timeout"),
        )
        step = transition("init", I.POLLED_PENDING)
        self.assertEqual(step.notify, N.FINAL_NEUTRAL)

    def test_rfc6665_4_2_1_3_pendingNeverGetsState(self) -> None:
        """
        No step from C{pending} sends the resource's state (RFC 6665
        section 4.2.1.3): only neutral state, a body-less final NOTIFY, or
        nothing; until authorized.
        """
        for (state, input), step in TRANSITIONS.items():
            if state is S.PENDING and input is not I.AUTHORIZED:
                self.assertNotIn(step.notify, (N.STATE, N.FINAL_STATE), input)
        self.assertEqual(transition(PENDING, I.STATE_CHANGED).notify, N.NONE)
        self.assertEqual(transition(PENDING, I.AUTHORIZED).state, S.ACTIVE)
        step = transition(PENDING, I.REJECTED)
        self.assertEqual(
            (step.state, step.notify, step.reason),
            (S.TERMINATED, N.FINAL_EMPTY, "rejected"),
        )

    def test_rfc6665_4_2_1_4_timeoutSteps(self) -> None:
        """
        Expiry and unsubscribe end an active subscription with its state and
        C{reason=timeout}, a pending one with neutral state.
        """
        for input in (I.EXPIRED, I.UNSUBSCRIBED):
            step = transition(ACTIVE, input)
            self.assertEqual(
                (step.state, step.notify, step.reason),
                (S.TERMINATED, N.FINAL_STATE, "timeout"),
            )
            self.assertEqual(transition(PENDING, input).notify, N.FINAL_NEUTRAL)

    def test_rfc6665_4_2_2_notifyFailureSilent(self) -> None:
        """
        A NOTIFY failure ends the subscription without a further NOTIFY.
        """
        for state in (ACTIVE, PENDING):
            step = transition(state, I.NOTIFY_FAILED)
            self.assertEqual((step.state, step.notify), (S.TERMINATED, N.NONE))

    def test_rfc6665_4_1_3_localTermination(self) -> None:
        """
        Termination by the application sends a body-less final NOTIFY whose
        reason the caller gives.
        """
        step = transition(ACTIVE, I.TERMINATED)
        self.assertEqual((step.notify, step.reason), (N.FINAL_EMPTY, None))

    def test_rfc6665_4_2_2_terminatedIsFinal(self) -> None:
        """
        Nothing leaves C{terminated}, and C{init} only takes the inputs of
        a SUBSCRIBE being processed: other pairs are refused.
        """
        for input in I:
            self.assertRaises(InvalidTransition, transition, S.TERMINATED, input)
        for input in (I.REFRESHED, I.EXPIRED, I.STATE_CHANGED, I.NOTIFY_FAILED):
            error = self.assertRaises(InvalidTransition, transition, S.INIT, input)
            self.assertIs(error.state, S.INIT)
            self.assertIs(error.input, input)
            self.assertIn("RFC 6665 section 4.2.2", str(error))
        self.assertRaises(InvalidTransition, transition, ACTIVE, I.AUTHORIZED)

    def test_unknownStateString(self) -> None:
        """
        A state string naming no state raises L{ValueError}.
        """
        self.assertRaises(ValueError, transition, "resp_wait", I.EXPIRED)

    def test_everyTerminatingStepHasReasonOrNone(self) -> None:
        """
        Every step into C{terminated} that sends a NOTIFY with a body states
        its reason in the table.
        """
        for step in TRANSITIONS.values():
            if step.notify in (N.FINAL_STATE, N.FINAL_NEUTRAL):
                self.assertEqual(step.reason, "timeout")
            if step.state is not S.TERMINATED:
                self.assertIsNone(step.reason)


class ChooseContentTypeTests(SynchronousTestCase):
    """
    L{chooseContentType}: RFC 6665 sections 3.1.3 and 3.2.1, RFC 3261
    section 20.1.
    """

    offered = ("application/pidf+xml", "application/xpidf+xml")

    def test_rfc6665_3_1_3_noAcceptPackageDefault(self) -> None:
        """
        Without Accept, the package's first type.
        """
        self.assertEqual(chooseContentType(None, self.offered), self.offered[0])

    def test_rfc3261_20_1_qualityRanks(self) -> None:
        """
        The offered type with the highest q wins; ties go to the package's
        order.
        """
        accept = parseAccept("application/pidf+xml;q=0.2, application/xpidf+xml")
        self.assertEqual(chooseContentType(accept, self.offered), self.offered[1])
        accept = parseAccept("application/*")
        self.assertEqual(chooseContentType(accept, self.offered), self.offered[0])

    def test_rfc3261_20_1_specificRangeOverridesWildcard(self) -> None:
        """
        A range naming the type exactly overrides a wildcard, so q=0 on it
        refuses it.
        """
        accept = parseAccept("*/*, application/pidf+xml;q=0")
        self.assertEqual(chooseContentType(accept, self.offered), self.offered[1])

    def test_rfc3261_21_4_7_noneAcceptable406(self) -> None:
        """
        Nothing acceptable (or an empty Accept): 406 listing what we send.
        """
        error = self.assertRaises(
            NotAcceptable, chooseContentType, parseAccept("text/plain"), self.offered
        )
        self.assertEqual(error.status, 406)
        self.assertEqual(
            error.headers, [("Accept", "application/pidf+xml, application/xpidf+xml")]
        )
        self.assertRaises(NotAcceptable, chooseContentType, [], self.offered)


class FormatSubscriptionStateTests(SynchronousTestCase):
    """
    L{formatSubscriptionState}: RFC 6665 sections 4.2.2 and 8.2.3.
    """

    def test_rfc6665_4_2_2_activeAndPendingCarryExpires(self) -> None:
        """
        C{active} and C{pending} carry C{expires} (required there).
        """
        self.assertEqual(formatSubscriptionState(S.ACTIVE, 300), "active;expires=300")
        self.assertEqual(formatSubscriptionState("pending", 0), "pending;expires=0")
        self.assertRaises(ValueError, formatSubscriptionState, "active")
        self.assertRaises(ValueError, formatSubscriptionState, "active", -1)

    def test_rfc6665_4_1_3_terminatedReasonRetryAfter(self) -> None:
        """
        C{terminated} carries C{reason} and C{retry-after}, no C{expires};
        the value parses back.
        """
        value = formatSubscriptionState(
            "terminated", 100, reason="probation", retryAfter=30
        )
        self.assertEqual(value, "terminated;reason=probation;retry-after=30")
        parsed = parseSubscriptionState(value)
        self.assertEqual(
            (parsed.state, parsed.reason, parsed.retryAfter, parsed.expires),
            ("terminated", "probation", 30, None),
        )
        self.assertEqual(formatSubscriptionState(S.TERMINATED), "terminated")

    def test_rfc6665_8_4_reasonMustBeToken(self) -> None:
        """
        A reason that is not a token, a negative retry-after or an unknown
        state are refused.
        """
        self.assertRaises(
            ValueError, formatSubscriptionState, "terminated", reason="a b"
        )
        self.assertRaises(
            ValueError, formatSubscriptionState, "terminated", retryAfter=-1
        )
        self.assertRaises(ValueError, formatSubscriptionState, "init", 10)
