# -*- test-case-name: tests.test_store_writebehind -*-
"""
The store every backend shares: the in-memory working set
(L{sipevents.store.workingset.WorkingSet}) that callers read synchronously,
written behind to an L{IStoreBackend} in batches (DESIGN: "persistence is
a store"), so neither the disk nor the network is ever on the notifier's
hot path.

How a write goes:

  1. C{putSubscription} and friends change the working set at once (so the
     next look-up sees the change) and note the latest change per key in a
     pending map: a burst of changes to one subscription (refresh, CSeq
     high-water mark, state) is written once.
  2. Every C{batchInterval} seconds, or as soon as C{maxBatch} changes are
     pending, or when L{WriteBehindStore.flush} asks, the pending map goes
     to the backend as one batch. One batch at a time: a batch is durable
     before the next starts, so changes become durable in the order they
     were made. With a C{batchInterval} of 0 every change is handed over
     at once (a backend that keeps nothing, as
     L{sipevents.store.memory.MemoryBackend}, then fires every L{Deferred}
     before the write returns).
  3. The L{Deferred} of every write the batch carried fires once the
     backend says it is durable. If the batch fails, the failure is logged
     and those L{Deferred}s fail; the changes go back into the pending map
     (unless a newer change to the same key is already there) and are
     tried again after a back-off that doubles with each failure up to
     L{MAX_RETRY_DELAY}, so the backend never stays behind the working set
     without the log saying so.

NOTIFY CSeqs (RFC 3261 section 12.2.1.1: they only increase within a
dialog) are reserved through L{WriteBehindStore.reserveCSeq}: the
notifier raises a dialog's high-water mark ahead of use and sends a CSeq
at or above the last durable mark only once the new mark is durable, so a
restart never reuses a CSeq. The reservation is an ordinary change of the
dialog's records, batched and retried like any other; its L{Deferred}
fails when the batch carrying it did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred, fail, gatherResults, succeed
from twisted.internet.interfaces import IReactorCore
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from sipevents.interfaces import IStore, IStoreBackend
from sipevents.records import PublicationRecord, SubscriptionRecord
from sipevents.store.workingset import RECENT_VALUES, WorkingSet

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall, IReactorTime

#: The empty side of a one-record change, shared so that a write allocates
#: only the map of the record it changes.
_NO_SUBSCRIPTIONS: Mapping[str, SubscriptionRecord | None] = MappingProxyType({})
_NO_PUBLICATIONS: Mapping[str, PublicationRecord | None] = MappingProxyType({})

#: The longest wait before writing again after failed batches, in seconds.
MAX_RETRY_DELAY = 10.0

#: The first wait before writing again after a failed batch, when
#: C{batchInterval} is shorter, in seconds: a backend that failed at once
#: is not asked again at once.
MIN_RETRY_DELAY = 0.05


class StoreError(Exception):
    """
    The store cannot be used: it is closed, or its backend refused to open
    (a file written by a newer version, say).
    """


@implementer(IStore)
class WriteBehindStore(WorkingSet):
    """
    The working set, written behind to C{backend} (see the module
    docstring for how).

    Look-ups are the working set's. Writes change the working set at once
    and return a L{Deferred} that fires once the batch carrying the change
    is durable, or fails if it could not be made so.

    @ivar backend: where the working set is written.
    @ivar name: what the log calls the store.
    @ivar batchInterval: how long changes wait to be written together, in
        seconds; 0 hands each change to the backend at once.
    @ivar maxBatch: how many pending changes start a batch at once.
    @ivar batchesWritten: how many batches the backend made durable.
    @ivar rowsWritten: how many changes (writes and deletions) they
        carried, after coalescing.
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        backend: IStoreBackend,
        name: str,
        batchInterval: float = 0.05,
        maxBatch: int = 1000,
    ) -> None:
        """
        @param clock: times batches and retries. When it also provides
            C{IReactorCore} (a reactor), the store flushes and closes
            before the reactor stops if nobody closed it.
        @param backend: see L{backend}.
        @param name: see L{name}.
        @param batchInterval: see L{batchInterval}.
        @param maxBatch: see L{maxBatch}.
        """
        super().__init__()
        self.backend = backend
        self.name = name
        self.batchInterval = batchInterval
        self.maxBatch = maxBatch
        self.batchesWritten = 0
        self.rowsWritten = 0
        self._clock = clock
        # Whether the store has yet to ask the reactor to close it at
        # shutdown, and the trigger's identifier once it has.
        self._watchShutdown = IReactorCore.providedBy(clock)
        self._shutdownTrigger: object = None
        # Changes not yet in a batch, and who waits for them.
        self._pendingSubscriptions: dict[str, SubscriptionRecord | None] = {}
        self._pendingPublications: dict[str, PublicationRecord | None] = {}
        self._waiting: list[Deferred[None]] = []
        # Who waits for the batch being written, if one is.
        self._inFlight: list[Deferred[None]] | None = None
        self._timer: IDelayedCall | None = None
        self._urgent = False
        self._failures = 0
        # close(): whether it was called, who waits, and how it ended.
        self._closed = False
        self._closeWaiters: list[Deferred[None]] = []
        self._closeOutcome: Failure | None | bool = False

    def _inUse(self) -> None:
        """
        The backend is about to be used: make sure pending writes are not
        lost if the reactor stops before anyone closes the store.
        """
        if self._watchShutdown and IReactorCore.providedBy(self._clock):
            self._watchShutdown = False
            self._shutdownTrigger = self._clock.addSystemEventTrigger(
                "before", "shutdown", self.close
            )

    # -- batching ------------------------------------------------------------

    def _changed(
        self,
        subscriptions: Mapping[str, SubscriptionRecord | None],
        publications: Mapping[str, PublicationRecord | None],
    ) -> Deferred[None]:
        """
        The working set changed: one record (C{None} once removed), in the
        map of its kind, the other map empty. Write it behind.
        """
        if self._writesThrough():
            return self._writeNow(subscriptions, publications)
        self._pendingSubscriptions.update(subscriptions)
        self._pendingPublications.update(publications)
        return self._queued()

    def _writesThrough(self) -> bool:
        """
        Whether a change goes to the backend at once, alone: with a
        C{batchInterval} of 0 while nothing else is pending, being written
        or waiting for a retry.
        """
        return (
            self.batchInterval <= 0
            and self._inFlight is None
            and self._timer is None
            and not self._pendingSubscriptions
            and not self._pendingPublications
            and not self._waiting
            and not self._closed
        )

    def _writeNow(
        self,
        subscriptions: Mapping[str, SubscriptionRecord | None],
        publications: Mapping[str, PublicationRecord | None],
    ) -> Deferred[None]:
        """
        Hand one change to the backend at once. A backend that is durable
        at once (L{sipevents.store.memory.MemoryBackend}) costs no more
        than its own L{Deferred}: this is the memory store's hot path.
        """
        self._inUse()
        try:
            d = self.backend.writeBatch(subscriptions, publications)
        except BaseException:
            d = fail()
        if d.called and not d.paused and not isinstance(d.result, Failure):
            self.batchesWritten += 1
            self.rowsWritten += 1
            return d
        waiter: Deferred[None] = Deferred()
        self._inFlight = [waiter]
        d.addCallbacks(
            self._batchDone,
            self._batchFailed,
            callbackArgs=(subscriptions, publications),
            errbackArgs=(subscriptions, publications),
        )
        return waiter

    def _queued(self) -> Deferred[None]:
        """
        A change went into the pending map: a L{Deferred} for its batch,
        which starts now if C{maxBatch} changes wait (or C{batchInterval}
        is 0), else after C{batchInterval}.
        """
        if self._closed:
            return fail(StoreError(f"{self.name} is closed; the change is not stored"))
        d: Deferred[None] = Deferred()
        self._waiting.append(d)
        if len(self._pendingSubscriptions) + len(self._pendingPublications) >= (
            self.maxBatch
        ):
            self._urgent = True
            self._startBatch()
        elif self._timer is None and self._inFlight is None:
            self._schedule(self.batchInterval)
        return d

    def _schedule(self, delay: float) -> None:
        """
        Start the next batch after C{delay} seconds, or now for none.
        """
        if delay <= 0:
            self._startBatch()
        else:
            self._timer = self._clock.callLater(delay, self._timerFired)

    def _timerFired(self) -> None:
        """
        C{batchInterval} (or a back-off) has passed since a change was made.
        """
        self._timer = None
        self._startBatch()

    def _startBatch(self) -> None:
        """
        Write what is pending, unless a batch is being written (its end
        starts the next one).
        """
        if self._inFlight is not None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._urgent = False
        subscriptions, self._pendingSubscriptions = self._pendingSubscriptions, {}
        publications, self._pendingPublications = self._pendingPublications, {}
        waiting, self._waiting = self._waiting, []
        if not subscriptions and not publications:
            for d in waiting:
                d.callback(None)
            return
        self._inFlight = waiting
        self._inUse()
        try:
            d = self.backend.writeBatch(subscriptions, publications)
        except BaseException:
            d = fail()
        d.addCallbacks(
            self._batchDone,
            self._batchFailed,
            callbackArgs=(subscriptions, publications),
            errbackArgs=(subscriptions, publications),
        )

    def _batchDone(
        self,
        ignored: None,
        subscriptions: Mapping[str, SubscriptionRecord | None],
        publications: Mapping[str, PublicationRecord | None],
    ) -> None:
        """
        A batch is durable: the next one is set going, then its writers
        hear so (last, since their callbacks may write or flush again).
        """
        waiting, self._inFlight = self._inFlight or [], None
        self._failures = 0
        self.batchesWritten += 1
        self.rowsWritten += len(subscriptions) + len(publications)
        self._next()
        for d in waiting:
            d.callback(None)

    def _batchFailed(
        self,
        failure: Failure,
        subscriptions: Mapping[str, SubscriptionRecord | None],
        publications: Mapping[str, PublicationRecord | None],
    ) -> None:
        """
        A batch failed: log it, put its changes back to be tried again
        after a back-off (unless newer changes to the same keys have come),
        and fail its writers' L{Deferred}s.
        """
        waiting, self._inFlight = self._inFlight or [], None
        self._failures += 1
        delay = min(
            max(self.batchInterval, MIN_RETRY_DELAY) * 2**self._failures,
            MAX_RETRY_DELAY,
        )
        self.log.failure(
            "{store}: writing {changes} changes failed; trying again in {delay} s",
            failure,
            store=self.name,
            changes=len(subscriptions) + len(publications),
            delay=delay,
        )
        for key, record in subscriptions.items():
            self._pendingSubscriptions.setdefault(key, record)
        for etag, publication in publications.items():
            self._pendingPublications.setdefault(etag, publication)
        # close() asked for this batch: it fails with it, with no retry.
        if not self._closed:
            if self._urgent:
                self._next()
            elif self._timer is None:
                self._timer = self._clock.callLater(delay, self._timerFired)
        for d in waiting:
            d.errback(failure)

    def _next(self) -> None:
        """
        After a batch: start the next one now if it is wanted now, else
        time it.
        """
        pending = len(self._pendingSubscriptions) + len(self._pendingPublications)
        if self._timer is not None or self._closed and not self._urgent:
            return
        if self._urgent or pending >= self.maxBatch:
            self._startBatch()
        elif pending or self._waiting:
            self._schedule(self.batchInterval)

    # -- IStore ----------------------------------------------------------------

    def load(self) -> Deferred[None]:
        """
        Read every stored subscription and publication into the working
        set (publications oldest first). Fails if the backend cannot be
        used (L{StoreError} for a file written by a newer version, say), or
        the store is closed.
        """
        if self._closed:
            return fail(StoreError(f"{self.name} is closed"))
        self._inUse()
        d = self.backend.load()
        return d.addCallback(self._loaded)

    def _loaded(
        self, records: tuple[Sequence[SubscriptionRecord], Sequence[PublicationRecord]]
    ) -> None:
        """
        Put what L{load} read into the working set. The recent-values cache
        is unbounded meanwhile, so the records of one subscriber, scattered
        through the backend, still share their values.
        """
        subscriptions, publications = records
        self._recentLimit = len(subscriptions) * 8 + 1024
        try:
            for subscription in subscriptions:
                # A change made before load() is newer than the backend's.
                if subscription.key not in self._pendingSubscriptions:
                    self._setSubscription(subscription)
        finally:
            self._recentLimit = RECENT_VALUES
            self._recent.clear()
        for publication in publications:
            if publication.etag not in self._pendingPublications:
                self._setPublication(publication)
        self.log.info(
            "{store}: loaded {subscriptions} subscriptions and "
            "{publications} publications",
            store=self.name,
            subscriptions=len(subscriptions),
            publications=len(publications),
        )

    def putSubscription(self, record: SubscriptionRecord) -> Deferred[None]:
        """
        Create or replace (by C{record.key}) a subscription; fires once
        durable.
        """
        self._setSubscription(record)
        return self._changed({record.key: record}, _NO_PUBLICATIONS)

    def removeSubscription(self, key: str) -> Deferred[None]:
        """
        Remove a subscription; fires once the removal is durable.
        """
        self._deleteSubscription(key)
        return self._changed({key: None}, _NO_PUBLICATIONS)

    def reserveCSeq(
        self, callId: str, localTag: str, remoteTag: str, highWater: int
    ) -> Deferred[None]:
        """
        Raise the CSeq high-water mark of every subscription of the dialog
        to C{highWater}, in one batch (see the module docstring).
        """
        writes = [
            self.putSubscription(record.evolve(localCSeq=highWater))
            for record in self.subscriptionsByDialog(callId, localTag, remoteTag)
            if record.localCSeq < highWater
        ]
        if not writes:
            return succeed(None)
        if len(writes) == 1:
            return writes[0]
        # Dialog sharing (RFC 6665 section 4.5.2): the writes are in one
        # batch, but fail with the first failure rather than a FirstError.
        return gatherResults(writes, consumeErrors=True).addCallbacks(
            lambda _: None, lambda failure: failure.value.subFailure
        )

    def putPublication(self, record: PublicationRecord) -> Deferred[None]:
        """
        Create or replace (by C{record.etag}) a publication; fires once
        durable.
        """
        self._setPublication(record)
        return self._changed(_NO_SUBSCRIPTIONS, {record.etag: record})

    def removePublication(self, etag: str) -> Deferred[None]:
        """
        Remove a publication; fires once the removal is durable.
        """
        self._deletePublication(etag)
        return self._changed(_NO_SUBSCRIPTIONS, {etag: None})

    def flush(self) -> Deferred[None]:
        """
        Write what is pending now, without waiting for C{batchInterval} or
        a back-off; fires once every write made so far is durable, or fails
        with the batch that could not be made so.
        """
        if self._pendingSubscriptions or self._pendingPublications:
            d: Deferred[None] = Deferred()
            self._waiting.append(d)
            self._urgent = True
            self._startBatch()
            return d
        if self._inFlight is not None:
            d = Deferred()
            self._inFlight.append(d)
            return d
        return succeed(None)

    def close(self) -> Deferred[None]:
        """
        Flush, then close the backend. Writes after this fail with
        L{StoreError}; look-ups still answer from memory. Fails, after
        closing, if the last flush did (the log has the details). Closing
        again waits for, and ends as, the first close.
        """
        d: Deferred[None] = Deferred()
        if self._closeOutcome is not False:
            self._fireClosed(d)
            return d
        self._closeWaiters.append(d)
        if not self._closed:
            self._closed = True
            self.flush().addBoth(self._release)
        return d

    def _release(self, result: None | Failure) -> None:
        """
        The last flush is over: close the backend, then tell who waits for
        L{close}.
        """
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._watchShutdown = False
        trigger, self._shutdownTrigger = self._shutdownTrigger, None
        if trigger is not None and IReactorCore.providedBy(self._clock):
            self._clock.removeSystemEventTrigger(trigger)

        def closed(closing: None | Failure) -> None:
            if isinstance(closing, Failure):
                self.log.failure("{store}: closing failed", closing, store=self.name)
            self._closeFinished(result if isinstance(result, Failure) else closing)

        try:
            closing = self.backend.close()
        except BaseException:
            closing = fail()
        closing.addBoth(closed)

    def _closeFinished(self, outcome: None | Failure) -> None:
        """
        Record how L{close} ended and tell every caller.
        """
        self._closeOutcome = outcome
        waiters, self._closeWaiters = self._closeWaiters, []
        for d in waiters:
            self._fireClosed(d)

    def _fireClosed(self, d: Deferred[None]) -> None:
        """
        Fire C{d} as L{close} ended.
        """
        if isinstance(self._closeOutcome, Failure):
            d.errback(self._closeOutcome)
        else:
            d.callback(None)
