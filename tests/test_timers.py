# -*- test-case-name: tests.test_timers -*-
"""
Tests for L{sipevents.sip.timers.TimerQueue}: many deadlines on one
C{IDelayedCall}, driven by a L{Clock}.
"""

from __future__ import annotations

from collections.abc import Hashable

from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from sipevents.sip.timers import FixedDelayQueue, LookupTimerQueue, TimerQueue


class TimerQueueTests(SynchronousTestCase):
    """
    L{TimerQueue} fires callbacks with their key, in deadline order, never
    early, through a single delayed call.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.queue = TimerQueue(self.clock, self.record)
        self.fired: list[tuple[float, Hashable]] = []

    def record(self, key: Hashable) -> None:
        self.fired.append((self.clock.seconds(), key))

    def test_firesInOrderWithKey(self) -> None:
        """
        Callbacks run with their key when the clock reaches their deadline,
        earliest first, whatever the order they were scheduled in.
        """
        self.queue.schedule(30, "c", self.record)
        self.queue.schedule(10, "a", self.record)
        self.queue.schedule(20, "b", self.record)
        self.clock.advance(9.9)
        self.assertEqual(self.fired, [])
        self.clock.advance(0.1)
        self.assertEqual(self.fired, [(10, "a")])
        self.clock.advance(10)
        self.clock.advance(10)
        self.assertEqual(self.fired, [(10, "a"), (20, "b"), (30, "c")])
        self.assertEqual(len(self.queue), 0)

    def test_singleDelayedCall(self) -> None:
        """
        However many deadlines there are, the clock holds one delayed call,
        armed for the earliest (the point of the queue: no timer object per
        subscription).
        """
        for i in range(1000):
            self.queue.schedule(1000 - i, f"k{i}", self.record)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.assertEqual(self.clock.getDelayedCalls()[0].getTime(), 1)
        self.assertEqual(len(self.queue), 1000)

    def test_rescheduleReplaces(self) -> None:
        """
        Scheduling a key again replaces its deadline (a refresh moves an
        expiry), earlier or later.
        """
        self.queue.schedule(10, "a", self.record)
        self.queue.schedule(50, "a", self.record)
        self.clock.advance(10)
        self.assertEqual(self.fired, [])
        self.assertEqual(self.queue.when("a"), 50)
        self.queue.schedule(20, "a", self.record)
        self.clock.advance(10)
        self.assertEqual(self.fired, [(20, "a")])
        self.clock.advance(100)
        self.assertEqual(self.fired, [(20, "a")])

    def test_sameDeadlineDifferentCallbacks(self) -> None:
        """
        A key may have its own callback instead of the queue's; equal
        deadlines are fine, and re-scheduling with the queue's callback
        drops the key's own.
        """
        other: list[Hashable] = []
        self.queue.schedule(5, "a", self.record)
        self.queue.schedule(5, "b", other.append)
        self.queue.schedule(5, "c", other.append)
        self.queue.schedule(5, "c")
        self.clock.advance(5)
        self.assertEqual(other, ["b"])
        self.assertEqual(self.fired, [(5, "a"), (5, "c")])
        self.assertEqual(self.queue._callbacks, {})

    def test_queueCallback(self) -> None:
        """
        Keys scheduled without a callback get the queue's; a queue without
        one refuses them.
        """
        queue = TimerQueue(self.clock, self.record)
        queue.schedule(1, "a")
        self.clock.advance(1)
        self.assertEqual(self.fired, [(1, "a")])
        self.assertRaises(TypeError, TimerQueue(self.clock).schedule, 1, "a")

    def test_sameFloatScheduledTwice(self) -> None:
        """
        Scheduling a key twice with the very same deadline object fires it
        once.
        """
        when = 7.5
        self.queue.schedule(when, "a", self.record)
        self.queue.schedule(when, "a", self.record)
        self.clock.advance(10)
        self.assertEqual(self.fired, [(10, "a")])

    def test_shrinksAfterBurst(self) -> None:
        """
        Once most keys of a burst are gone, the index is copied smaller.
        """
        for i in range(5000):
            self.queue.schedule(1, f"k{i}", self.record)
        self.queue.schedule(100, "late", self.record)
        self.clock.advance(1)
        self.assertEqual(len(self.queue), 1)
        self.assertEqual(self.queue._peak, 1)

    def test_cancel(self) -> None:
        """
        A cancelled key does not fire; cancelling says whether it had a
        deadline; the delayed call is re-armed past the stale entry.
        """
        self.queue.schedule(10, "a", self.record)
        self.queue.schedule(20, "b", self.record)
        self.assertTrue(self.queue.cancel("a"))
        self.assertFalse(self.queue.cancel("a"))
        self.assertNotIn("a", self.queue)
        self.clock.advance(10)
        self.assertEqual(self.fired, [])
        self.assertEqual(self.clock.getDelayedCalls()[0].getTime(), 20)
        self.clock.advance(10)
        self.assertEqual(self.fired, [(20, "b")])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_clear(self) -> None:
        """
        L{TimerQueue.clear} forgets everything and leaves no delayed call.
        """
        self.queue.schedule(10, "a", self.record)
        self.queue.schedule(10, "b", print)
        self.queue.clear()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(100)
        self.assertEqual(self.fired, [])
        self.assertEqual(len(self.queue), 0)

    def test_callbackMayReschedule(self) -> None:
        """
        A callback may schedule its own key again (the key is removed before
        it runs) and other keys.
        """

        def again(key: Hashable) -> None:
            self.record(key)
            if len(self.fired) < 3:
                self.queue.schedule(self.clock.seconds() + 5, key, again)

        self.queue.schedule(5, "a", again)
        self.clock.advance(5)
        self.clock.advance(5)
        self.clock.advance(5)
        self.clock.advance(5)
        self.assertEqual(self.fired, [(5, "a"), (10, "a"), (15, "a")])

    def test_callbackCancelsLaterDueKey(self) -> None:
        """
        A callback that cancels another key due in the same batch stops it.
        """

        def cancelB(key: Hashable) -> None:
            self.record(key)
            self.queue.cancel("b")

        self.queue.schedule(1, "a", cancelB)
        self.queue.schedule(2, "b", self.record)
        self.clock.advance(5)
        self.assertEqual(self.fired, [(5, "a")])

    def test_failingCallbackLogged(self) -> None:
        """
        An exception from one callback is logged and the others still run.
        """

        def boom(key: Hashable) -> None:
            raise RuntimeError("boom")

        self.queue.schedule(1, "a", boom)
        self.queue.schedule(1, "b", self.record)
        with capturedLogs() as events:
            self.clock.advance(1)
        self.assertEqual(self.fired, [(1, "b")])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertTrue(any(e["log_level"] == LogLevel.critical for e in events))

    def test_pastDeadlineFiresAtOnce(self) -> None:
        """
        A deadline already passed fires on the next turn of the clock.
        """
        self.clock.advance(100)
        self.queue.schedule(50, "a", self.record)
        self.clock.advance(0)
        self.assertEqual(self.fired, [(100, "a")])

    def test_compaction(self) -> None:
        """
        Re-scheduling the same keys over and over does not grow the heap
        without bound: stale entries are dropped by a rebuild.
        """
        for round in range(100):
            for key in range(100):
                self.queue.schedule(1000 + round, f"k{key}", self.record)
        self.assertEqual(len(self.queue), 100)
        self.assertLessEqual(len(self.queue._heap), 2 * 100 + 64 + 1)
        self.clock.advance(2000)
        self.assertEqual(len(self.fired), 100)
        self.assertEqual({t for t, _ in self.fired}, {2000})

    def test_iterationAndContains(self) -> None:
        """
        The queue lists its keys and answers membership.
        """
        self.queue.schedule(1, "a", self.record)
        self.queue.schedule(2, "b", self.record)
        self.assertEqual(sorted(str(k) for k in self.queue), ["a", "b"])
        self.assertIn("a", self.queue)
        self.assertIsNone(self.queue.when("c"))


class LookupTimerQueueTests(SynchronousTestCase):
    """
    L{LookupTimerQueue} fires its callback with a key once the clock
    reaches the key's deadline, while the owner (here C{self.deadlines})
    still holds that very deadline object; it keeps no index of its own.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.deadlines: dict[Hashable, float] = {}
        self.queue = LookupTimerQueue(self.clock, self.record, self.deadlines.get)
        self.fired: list[tuple[float, Hashable]] = []

    def record(self, key: Hashable) -> None:
        self.fired.append((self.clock.seconds(), key))
        del self.deadlines[key]

    def schedule(self, when: float, key: str) -> None:
        # As the notifier does: the owner holds the deadline, then the
        # queue is told of it.
        when = float(when)
        self.deadlines[key] = when
        self.queue.schedule(when, key)

    def test_firesInOrderWithKey(self) -> None:
        """
        The callback runs with each key when the clock reaches its
        deadline, earliest first, through a single delayed call.
        """
        self.schedule(30, "c")
        self.schedule(10, "a")
        self.schedule(20, "b")
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.assertEqual(len(self.queue), 3)
        self.assertIn("a", self.queue)
        self.assertEqual(self.queue.when("b"), 20)
        self.clock.advance(9.9)
        self.assertEqual(self.fired, [])
        self.clock.advance(0.1)
        self.assertEqual(self.fired, [(10, "a")])
        self.clock.advance(10)
        self.clock.advance(10)
        self.assertEqual(self.fired, [(10, "a"), (20, "b"), (30, "c")])
        self.assertEqual(len(self.queue), 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_ownerChangesDeadline(self) -> None:
        """
        A key re-scheduled with a new deadline object fires at the new
        deadline only, earlier or later; one the owner dropped never fires.
        """
        self.schedule(10, "later")
        self.schedule(10, "earlier")
        self.schedule(10, "dropped")
        self.schedule(20, "later")
        self.schedule(5, "earlier")
        del self.deadlines["dropped"]
        self.clock.advance(30)
        self.assertEqual(self.fired, [(30, "earlier"), (30, "later")])
        self.clock.pump([1, 1, 30])
        self.assertEqual(len(self.fired), 2)

    def test_equalValueIsNotTheDeadline(self) -> None:
        """
        Liveness is by identity: an entry whose deadline the owner replaced
        by an equal but new object is stale, and only the entry scheduled
        with the new object fires.
        """
        self.schedule(10, "a")
        self.schedule(10, "a")
        self.clock.advance(10)
        self.assertEqual(self.fired, [(10, "a")])

    def test_sameObjectScheduledTwice(self) -> None:
        """
        The same deadline object scheduled twice fires once when the
        callback drops the key.
        """
        self.schedule(10, "a")
        self.queue.schedule(self.deadlines["a"], "a")
        self.clock.advance(10)
        self.assertEqual(self.fired, [(10, "a")])

    def test_callbackMayReschedule(self) -> None:
        """
        The callback may give its key a new deadline; a past one fires on
        the next turn of the clock, not in the same batch.
        """
        times = []

        def again(key: Hashable) -> None:
            times.append(self.clock.seconds())
            if len(times) < 3:
                when = self.clock.seconds() + (0 if len(times) == 1 else 5)
                self.deadlines[key] = float(when)
                self.queue.schedule(self.deadlines[key], key)

        self.queue.callback = again
        self.schedule(10, "a")
        self.clock.advance(10)
        # The past deadline ran on the clock's next turn, within advance().
        self.assertEqual(times, [10, 10])
        self.clock.advance(5)
        self.assertEqual(times, [10, 10, 15])

    def test_failingCallbackLogged(self) -> None:
        """
        An exception from the callback is logged and the other due keys
        still fire.
        """

        def boom(key: Hashable) -> None:
            if key == "a":
                raise RuntimeError("boom")
            self.record(key)

        self.queue.callback = boom
        self.schedule(1, "a")
        self.schedule(1, "b")
        with capturedLogs() as events:
            self.clock.advance(1)
        self.assertEqual(self.fired, [(1, "b")])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertTrue(any(e["log_level"] == LogLevel.critical for e in events))

    def test_compaction(self) -> None:
        """
        Re-scheduling the same keys over and over does not grow the heap
        without bound: stale entries are dropped by a rebuild.
        """
        for round in range(100):
            for key in range(100):
                self.schedule(1000 + round, f"k{key}")
        self.assertEqual(len(self.queue), 100)
        self.assertLessEqual(self.queue._entries, 2 * 2 * 100 + 64 + 1)
        self.assertLessEqual(
            sum(len(b) for b in self.queue._buckets.values()), 2 * (2 * 2 * 100 + 65)
        )
        self.clock.advance(2000)
        self.assertEqual(len(self.fired), 100)
        self.assertEqual({t for t, _ in self.fired}, {2000})

    def test_clear(self) -> None:
        """
        L{LookupTimerQueue.clear} forgets every deadline and cancels the
        delayed call.
        """
        self.schedule(10, "a")
        self.queue.clear()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(20)
        self.assertEqual(self.fired, [])

    def test_fractionalDeadlinesInOneSecond(self) -> None:
        """
        Deadlines within one clock second fire each at its own time, in
        order, never early, also when more come into that second while it
        is the earliest.
        """
        for when, key in ((10.75, "c"), (10.25, "a"), (10.5, "b")):
            self.schedule(when, key)
        self.clock.advance(10.25)
        self.assertEqual(self.fired, [(10.25, "a")])
        # Binary fractions, so that the clock's sums are exact.
        self.schedule(10.375, "d")
        self.clock.advance(0.0625)
        self.assertEqual(self.fired, [(10.25, "a")])
        self.clock.advance(0.0625)
        self.assertEqual(self.fired, [(10.25, "a"), (10.375, "d")])
        self.clock.advance(0.125)
        self.assertEqual(self.fired[-1], (10.5, "b"))
        self.clock.advance(0.25)
        self.assertEqual([k for _, k in self.fired], ["a", "d", "b", "c"])
        self.assertEqual(self.queue._buckets, {})

    def test_tiesInKeyOrder(self) -> None:
        """
        Equal deadlines fire in key order, as with L{TimerQueue}.
        """
        for key in ("b", "c", "a"):
            self.schedule(5, key)
        self.clock.advance(5)
        self.assertEqual([k for _, k in self.fired], ["a", "b", "c"])


class FixedDelayQueueTests(SynchronousTestCase):
    """
    L{FixedDelayQueue}: deadlines that all lie one delay after they were
    set, fired in order through one delayed call (Timers E, F, J and K of
    the transactions, RFC 3261 section 17).
    """

    def setUp(self) -> None:
        self.clock = Clock()

    def test_queueOrderAndReentry(self) -> None:
        """
        The queue fires targets in the order armed, each C{delay} after it
        was armed; a callback may arm the queue again, and one that raises
        is logged without stopping the others.
        """
        fired: list[tuple[float, str]] = []
        queue: FixedDelayQueue

        def fire(target: str) -> None:
            fired.append((self.clock.seconds(), target))
            if target == "boom":
                raise ValueError(target)
            if target == "again":
                queue.schedule("later")

        queue = FixedDelayQueue(self.clock, 2.0, fire)
        queue.schedule("a")
        self.clock.advance(0.5)
        again = queue.schedule("again")
        boom = queue.schedule("boom")
        cancelled = queue.schedule("cancelled")
        self.clock.advance(0.5)
        queue.schedule("b")
        cancelled.cancel()
        cancelled.cancel()
        self.assertFalse(cancelled.active())
        self.assertTrue(again.active())
        self.assertEqual(len(queue), 4)
        with capturedLogs() as events:
            self.clock.advance(10.0)
            self.clock.advance(10.0)
        self.assertEqual(
            fired,
            [
                (11.0, "a"),
                (11.0, "again"),
                (11.0, "boom"),
                (11.0, "b"),
                (21.0, "later"),
            ],
        )
        self.assertFalse(again.active())
        self.assertFalse(boom.active())
        [failed] = [e for e in events if "Timer callback failed" in e["log_format"]]
        self.assertIsInstance(failed["log_failure"].value, ValueError)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        self.assertEqual(len(queue), 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_queueDropsCancelledHandles(self) -> None:
        """
        Cancelled handles do not pile up until their deadline: once they
        outnumber the live ones (by more than a small slack), they are
        dropped, and the live ones still fire in order.
        """
        fired: list[int] = []
        queue = FixedDelayQueue(self.clock, 32.0, fired.append, keepArmed=True)
        keep = [queue.schedule(n) for n in range(3)]
        for n in range(1000):
            queue.schedule(100 + n).cancel()
        self.assertEqual(len(queue), 3)
        self.assertLess(len(queue._handles), 3 * 2 + 64 + 2)
        self.assertTrue(all(handle.active() for handle in keep))
        self.clock.advance(32.0)
        self.assertEqual(fired, [0, 1, 2])

    def test_queueExactDeadlines(self) -> None:
        """
        Each target fires at the first clock step at or past its deadline,
        never before, with deadlines that are not binary fractions.
        """
        fired: list[tuple[float, int]] = []
        queue = FixedDelayQueue(
            self.clock, 0.3, lambda n: fired.append((self.clock.seconds(), n))
        )
        for n in range(3):
            queue.schedule(n)
            self.clock.advance(0.1)
        for _ in range(10):
            self.clock.advance(0.1)
        self.assertEqual([n for _, n in fired], [0, 1, 2])
        for (when, n), armed in zip(fired, (0.0, 0.1, 0.2), strict=True):
            self.assertGreaterEqual(when, armed + 0.3 - 1e-9, n)
            self.assertLess(when, armed + 0.3 + 0.1, n)
