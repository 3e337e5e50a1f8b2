# -*- test-case-name: tests.test_timers -*-
"""
Many timers on one clock: every queue of deadlines that fires through a
single C{IDelayedCall} (L{TimerQueue}, L{LookupTimerQueue},
L{FixedDelayQueue}).

A notifier holds hundreds of thousands of subscriptions, each of which
expires (RFC 6665 section 4.2.1.4). One C{IDelayedCall} each would cost
about 200 bytes and a reactor heap entry per subscription, and a refresh
would cancel and re-create one; instead a L{TimerQueue} keeps every
deadline in one binary heap and arms a single C{IDelayedCall} on the
injected clock for the earliest one.

Memory per deadline is about 100 bytes: a heap entry C{(when, key)} (a
two-item tuple) and an index entry from key to the very same C{when} float
object. An entry is live while the index holds the identical float; so
cancelling or re-scheduling a key only changes the index, and the stale
heap entry is skipped when it reaches the top (lazy deletion). The heap is
rebuilt from the index when stale entries outnumber live ones, so a
refresh-heavy load cannot make it grow without bound, and the index is
copied smaller once a burst of keys has gone.

Callbacks are per queue: the one given to the constructor serves every
key, and only a key scheduled with another callback costs an entry in a
side table.

When the owner of the keys holds every deadline already (the notifier's
subscription records hold their expiry), L{LookupTimerQueue} does without
the index and the tuples: about 16 bytes per deadline.

When every deadline lies the same delay after it was set (the transaction
Timers E, F, J and K, RFC 3261 section 17; the user agent's wait for a
handler's answer), deadlines arrive in order and L{FixedDelayQueue} keeps
them in a C{deque}: O(1) to arm and fire, a 56-byte L{TimerHandle} each.

Who uses which: the notifier's subscription expiries, a
L{LookupTimerQueue}; its coalescing intervals and the publications'
expiries, a L{TimerQueue}; the transactions' fixed-length timers and the
user agent's handler timeouts, a L{FixedDelayQueue}. A timer whose length
varies per owner and that is reset in place (a transaction's Timer G, a
stream connection's idle timeout) stays a plain C{IDelayedCall}.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

__all__ = ["FixedDelayQueue", "LookupTimerQueue", "TimerHandle", "TimerQueue"]

#: What a timer calls: C{callback(key)}.
Callback = Callable[[Hashable], object]

#: Stale heap entries tolerated, beyond the live ones, before a rebuild;
#: and (times 16) the smallest index worth copying smaller.
_SLACK = 64


class _OneDelayedCall:
    """
    The single C{IDelayedCall} a timer queue fires through, armed for its
    earliest deadline: one reactor call however many deadlines are queued.
    """

    __slots__ = ("clock", "_call", "_callAt", "_busy")

    log = Logger()

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self._call: IDelayedCall | None = None
        self._callAt = 0.0
        #: Whether due callbacks are running (the queue re-arms after them).
        self._busy = False

    def _fire(self) -> None:
        raise NotImplementedError()

    def _disarm(self) -> None:
        call = self._call
        self._call = None
        if call is not None and call.active():
            call.cancel()

    def _arm(self, when: float) -> None:
        """
        Make the single C{IDelayedCall} fire at C{when}.
        """
        delay = max(0.0, when - self.clock.seconds())
        call = self._call
        if call is not None and call.active():
            call.reset(delay)
        else:
            self._call = self.clock.callLater(delay, self._fire)
        self._callAt = when


class TimerQueue(_OneDelayedCall):
    """
    Deadlines keyed by any hashable, fired in time order through a single
    C{IDelayedCall} on C{clock}.

    Each key has at most one deadline: L{schedule} replaces an earlier one.
    The callback is called with its key, C{callback(key)}, once the clock
    reaches the deadline (never earlier), after the key has been removed
    from the queue, so the callback may schedule the key again. Callbacks
    that are due together run in deadline order; an exception from one is
    logged and does not stop the others. A callback that schedules a key
    at or before the current time runs on the next turn of the clock, not
    in the same batch.

    Keys with equal deadlines are compared to order them, so the keys of
    one queue must be mutually orderable (all strings, say).

    @ivar clock: the time source.
    @ivar callback: the callback of keys scheduled without one, or C{None}.
    """

    __slots__ = (
        "callback",
        "_heap",
        "_deadlines",
        "_callbacks",
        "_peak",
    )

    def __init__(self, clock: IReactorTime, callback: Callback | None = None) -> None:
        """
        @param callback: called as C{callback(key)} for every key scheduled
            without a callback of its own. Pass one shared callable (a bound
            method stored once), not a closure per key.
        """
        super().__init__(clock)
        self.callback = callback
        self._heap: list[tuple[float, Hashable]] = []
        self._deadlines: dict[Hashable, float] = {}
        self._callbacks: dict[Hashable, Callback] = {}
        self._peak = 0

    def __len__(self) -> int:
        return len(self._deadlines)

    def __contains__(self, key: object) -> bool:
        return key in self._deadlines

    def __iter__(self) -> Iterator[Hashable]:
        return iter(list(self._deadlines))

    def when(self, key: Hashable) -> float | None:
        """
        The deadline of C{key}, in clock seconds, or C{None} when it has
        none.
        """
        return self._deadlines.get(key)

    def schedule(
        self, when: float, key: Hashable, callback: Callback | None = None
    ) -> None:
        """
        Call C{callback(key)} (the queue's callback when C{None}) once the
        clock reaches C{when} (clock seconds), replacing any deadline
        C{key} already had.

        @raise TypeError: without a callback here or on the queue.
        """
        if callback is None or callback == self.callback:
            if self.callback is None:
                raise TypeError("No callback for this key and none for the queue")
            if self._callbacks:
                self._callbacks.pop(key, None)
        else:
            self._callbacks[key] = callback
        # float() of a float returns that very object: the heap entry and
        # the index share it, and identity tells a live entry.
        when = float(when)
        deadlines = self._deadlines
        deadlines[key] = when
        if len(deadlines) > self._peak:
            self._peak = len(deadlines)
        heap = self._heap
        heapq.heappush(heap, (when, key))
        if len(heap) > 2 * len(deadlines) + _SLACK:
            self._compact()
        if not self._busy and (self._call is None or when < self._callAt):
            self._arm(when)

    def cancel(self, key: Hashable) -> bool:
        """
        Forget the deadline of C{key}.

        @return: whether C{key} had one.
        """
        # The heap entry stays until it reaches the top (lazy deletion);
        # the single DelayedCall may then fire with nothing due, and is
        # re-armed for the next live entry.
        if self._callbacks:
            self._callbacks.pop(key, None)
        return self._deadlines.pop(key, None) is not None

    def clear(self) -> None:
        """
        Forget every deadline and stop the C{IDelayedCall}.
        """
        self._deadlines = {}
        self._callbacks = {}
        self._heap = []
        self._peak = 0
        self._disarm()

    stop = clear

    def _compact(self) -> None:
        """
        Rebuild the heap from the live entries only.
        """
        heap = [(when, key) for key, when in self._deadlines.items()]
        heapq.heapify(heap)
        self._heap = heap

    def _rearm(self) -> None:
        """
        Arm the C{IDelayedCall} for the earliest live entry, dropping stale
        entries from the top of the heap on the way.
        """
        heap = self._heap
        deadlines = self._deadlines
        while heap:
            when, key = heap[0]
            if deadlines.get(key) is when:
                self._arm(when)
                return
            heapq.heappop(heap)
        self._disarm()

    def _fire(self) -> None:
        self._call = None
        now = self.clock.seconds()
        heap = self._heap
        deadlines = self._deadlines
        due: list[tuple[float, Hashable]] = []
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            if deadlines.get(entry[1]) is entry[0]:
                due.append(entry)
        self._busy = True
        try:
            for when, key in due:
                # An earlier callback of this batch may have cancelled or
                # re-scheduled this key; or a duplicate entry fired it.
                if self._deadlines.get(key) is not when:
                    continue
                del self._deadlines[key]
                callback = (
                    self._callbacks.pop(key, None) if self._callbacks else None
                ) or self.callback
                try:
                    if callback is not None:
                        callback(key)
                except Exception:
                    self.log.failure("Timer callback for {key!r} failed", key=key)
        finally:
            self._busy = False
            self._shrink()
            self._rearm()

    def _shrink(self) -> None:
        """
        Give back the memory of a burst: a C{dict} keeps the size of its
        largest population, so once most keys are gone (a wave of short
        coalescing intervals has passed) the index is copied into one of
        the present size.
        """
        deadlines = self._deadlines
        if self._peak > _SLACK * 16 and len(deadlines) * 4 < self._peak:
            self._deadlines = dict(deadlines)
            self._peak = len(deadlines)


class LookupTimerQueue(_OneDelayedCall):
    """
    Deadlines kept by their owner, fired in time order through a single
    C{IDelayedCall} on C{clock}: a L{TimerQueue} without an index of its
    own, and without a tuple per deadline.

    When every key's deadline already lives in an object the owner keeps
    (a subscription record's C{expiresAt}, in a store that is indexed by
    key anyway), a second index from key to deadline would cost a C{dict}
    entry per key (40 to 50 bytes) only to tell live entries from stale
    ones. Here the owner's C{deadlineOf(key)} tells instead: an entry
    C{(when, key)} is live while C{deadlineOf(key) is when}, the very
    object scheduled. So changing a deadline means storing the new object
    and scheduling it; forgetting a key means dropping it from the owner
    (there is no C{cancel}); stale entries are skipped when they come up,
    and everything is rebuilt from the live entries when the entries have
    doubled since the last rebuild.

    Entries are kept in buckets of one clock second, each a flat list
    C{[when, key, when, key, ...]}, with a heap of the bucket seconds: 16
    bytes per entry, where a heap of C{(when, key)} tuples costs 64. A
    bucket costs about 150 bytes, which pays off once a few deadlines
    share a second, as they do with many subscriptions (100,000 expiring
    within an hour or two are 14 or more a second). The earliest bucket is
    sorted (latest first, so the earliest entry is popped from the end)
    when it comes up, so deadlines fire exactly in order, never early.

    Keys with equal deadlines are compared to order them, so the keys
    must be mutually orderable (all strings, say).

    @ivar clock: the time source.
    @ivar callback: called as C{callback(key)} once the clock reaches the
        deadline of C{key} (never earlier), if it is still live then.
    @ivar deadlineOf: the live deadline object of a key, or C{None}.
    """

    __slots__ = (
        "callback",
        "deadlineOf",
        "_buckets",
        "_seconds",
        "_sorted",
        "_entries",
        "_compactAt",
    )

    def __init__(
        self,
        clock: IReactorTime,
        callback: Callback,
        deadlineOf: Callable[[Hashable], object],
    ) -> None:
        super().__init__(clock)
        self.callback = callback
        self.deadlineOf = deadlineOf
        #: bucket second to its flat list of entries.
        self._buckets: dict[int, list[Any]] = {}
        #: heap of the bucket seconds.
        self._seconds: list[int] = []
        #: the bucket second whose list is sorted, latest first, if any.
        self._sorted: int | None = None
        self._entries = 0
        self._compactAt = _SLACK

    def _live(self) -> dict[Hashable, float]:
        """
        The live entries, one per key.
        """
        deadlineOf = self.deadlineOf
        live: dict[Hashable, float] = {}
        for bucket in self._buckets.values():
            for i in range(0, len(bucket), 2):
                key: Hashable = bucket[i + 1]
                if deadlineOf(key) is bucket[i]:
                    live[key] = bucket[i]
        return live

    def __len__(self) -> int:
        return len(self._live())

    def __contains__(self, key: object) -> bool:
        return key in self._live()

    def when(self, key: Hashable) -> float | None:
        """
        The deadline of C{key}, in clock seconds, or C{None} when it has
        none.
        """
        return self._live().get(key)

    def schedule(self, when: float, key: Hashable) -> None:
        """
        Call C{callback(key)} once the clock reaches C{when} (clock seconds),
        provided C{deadlineOf(key)} is then still this very C{when} object.
        """
        second = math.floor(when)
        bucket = self._buckets.get(second)
        if bucket is None:
            self._buckets[second] = [when, key]
            heapq.heappush(self._seconds, second)
        else:
            bucket.append(when)
            bucket.append(key)
            if second == self._sorted:
                self._sorted = None
        self._entries += 1
        if self._entries > self._compactAt:
            self._compact()
        if not self._busy and (self._call is None or when < self._callAt):
            self._arm(when)

    def clear(self) -> None:
        """
        Forget every deadline and stop the C{IDelayedCall}.
        """
        self._buckets = {}
        self._seconds = []
        self._sorted = None
        self._entries = 0
        self._compactAt = _SLACK
        self._disarm()

    stop = clear

    def _compact(self) -> None:
        """
        Rebuild the buckets from the live entries, and rebuild again once
        the entries have doubled: amortized, a constant cost per
        L{schedule}.
        """
        live = self._live()
        buckets: dict[int, list[Any]] = {}
        for key, when in live.items():
            buckets.setdefault(math.floor(when), []).extend((when, key))
        seconds = list(buckets)
        heapq.heapify(seconds)
        self._buckets = buckets
        self._seconds = seconds
        self._sorted = None
        self._entries = len(live)
        self._compactAt = 2 * len(live) + _SLACK

    def _earliest(self) -> list[Any] | None:
        """
        The bucket holding the earliest live entry, sorted so that the
        entry is its last two items; stale entries met on the way are
        dropped. C{None} when there is none.
        """
        seconds = self._seconds
        buckets = self._buckets
        deadlineOf = self.deadlineOf
        while seconds:
            second = seconds[0]
            bucket = buckets[second]
            if self._sorted != second:
                pairs = sorted(
                    zip(bucket[0::2], bucket[1::2], strict=True), reverse=True
                )
                bucket[:] = [item for pair in pairs for item in pair]
                self._sorted = second
            while bucket:
                if deadlineOf(bucket[-1]) is bucket[-2]:
                    return bucket
                del bucket[-2:]
                self._entries -= 1
            del buckets[second]
            heapq.heappop(seconds)
            self._sorted = None
        return None

    def _rearm(self) -> None:
        bucket = self._earliest()
        if bucket is None:
            self._disarm()
        else:
            self._arm(bucket[-2])

    def _fire(self) -> None:
        self._call = None
        now = self.clock.seconds()
        due: list[tuple[float, Hashable]] = []
        while True:
            bucket = self._earliest()
            if bucket is None or bucket[-2] > now:
                break
            due.append((bucket[-2], bucket[-1]))
            del bucket[-2:]
            self._entries -= 1
        deadlineOf = self.deadlineOf
        self._busy = True
        try:
            for when, key in due:
                # An earlier callback of this batch may have changed or
                # dropped this key's deadline; or a duplicate entry (the
                # same object scheduled twice) fired it already.
                if deadlineOf(key) is not when:
                    continue
                try:
                    self.callback(key)
                except Exception:
                    self.log.failure("Timer callback for {key!r} failed", key=key)
        finally:
            self._busy = False
            self._rearm()


class TimerHandle:
    """
    One deadline in a L{FixedDelayQueue}: C{active()} and C{cancel()} as on
    an C{IDelayedCall}, and nothing else, in 56 bytes.

    @ivar time: when it fires, in the clock's seconds.
    """

    __slots__ = ("time", "_queue", "_target")

    def __init__(self, queue: FixedDelayQueue, time: float, target: object) -> None:
        self.time = time
        self._queue = queue
        self._target: object | None = target

    def active(self) -> bool:
        """Whether it has neither fired nor been cancelled."""
        return self._target is not None

    def cancel(self) -> None:
        """Forget it; it will not fire. Does nothing once inactive."""
        if self._target is not None:
            self._target = None
            self._queue._cancelled()


#: Cancelled handles a L{FixedDelayQueue} keeps, beyond twice its live
#: ones, before dropping them.
_QUEUE_SLACK = 64


class FixedDelayQueue(_OneDelayedCall):
    """
    Deadlines that all lie the same C{delay} after they were set, fired
    through one C{IDelayedCall} on C{clock} for the earliest of them.

    Because the delay never changes and a clock never goes back, deadlines
    are appended in time order and a C{deque} is a priority queue: arming
    and firing are O(1), and a cancelled handle is skipped when it reaches
    the front. When the last live handle is cancelled the queue empties
    and its C{IDelayedCall} is cancelled, so an idle manager leaves no call
    pending on the clock; unless C{keepArmed}: then the call stays, and
    fires with nothing to do (or for a handle scheduled since, which it
    re-arms for). That is for the timers a response nearly always cancels
    (Timers E and F of client transactions): a NOTIFY answered before the
    next is sent would otherwise create and cancel an C{IDelayedCall} per
    timer per NOTIFY. L{sipevents.sip.transaction.TransactionManager.stop}
    clears every queue.

    @ivar delay: the seconds between arming a handle and its firing.
    """

    __slots__ = ("delay", "keepArmed", "_callback", "_handles", "_live")

    def __init__(
        self,
        clock: IReactorTime,
        delay: float,
        fire: Callable[[Any], object],
        keepArmed: bool = False,
    ) -> None:
        super().__init__(clock)
        self.delay = delay
        self.keepArmed = keepArmed
        self._callback = fire
        self._handles: deque[TimerHandle] = deque()
        self._live = 0

    def __len__(self) -> int:
        return self._live

    def schedule(self, target: object) -> TimerHandle:
        """
        Call C{fire(target)} C{delay} seconds from now.
        """
        handle = TimerHandle(self, self.clock.seconds() + self.delay, target)
        self._handles.append(handle)
        self._live += 1
        if self._call is None and not self._busy:
            # The delay itself, not a deadline minus now, which may round.
            self._call = self.clock.callLater(self.delay, self._fire)
        return handle

    def _cancelled(self) -> None:
        self._live -= 1
        if self._busy:
            return
        handles = self._handles
        if self._live == 0:
            handles.clear()
            if not self.keepArmed:
                self._disarm()
        elif len(handles) > 2 * self._live + _QUEUE_SLACK:
            # Mostly cancelled handles (Timers E and F, which responses
            # cancel, each for up to 64*T1): drop them now rather than when
            # they reach the front, so that they neither pile up nor keep
            # the collector busy. The deadlines stay in order.
            self._handles = deque(h for h in handles if h._target is not None)

    def clear(self) -> None:
        """
        Forget every handle (they will not fire) and cancel the
        C{IDelayedCall}.
        """
        for handle in self._handles:
            handle._target = None
        self._handles.clear()
        self._live = 0
        self._disarm()

    def _fire(self) -> None:
        self._call = None
        self._busy = True
        handles = self._handles
        now = self.clock.seconds()
        try:
            while handles and handles[0].time <= now:
                handle = handles.popleft()
                target = handle._target
                if target is None:
                    continue
                handle._target = None
                self._live -= 1
                try:
                    self._callback(target)
                except Exception:
                    self.log.failure(
                        "Timer callback failed for {target!r}", target=target
                    )
        finally:
            self._busy = False
        while handles and handles[0]._target is None:
            handles.popleft()
        if handles:
            when = handles[0].time
            delay = when - now
            # Never arm later than the deadline: now + delay may round up.
            if now + delay > when:
                delay = math.nextafter(delay, -math.inf)
            self._call = self.clock.callLater(max(delay, 0.0), self._fire)
