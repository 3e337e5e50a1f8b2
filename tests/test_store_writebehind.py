"""
Tests for L{sipevents.store.writebehind}: the write-behind layer every
backend shares, over a fake backend that holds records the way a server
would, answers when the test says, fails and recovers; time is a
L{Clock}.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionLost
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from sipevents.interfaces import IStore, IStoreBackend
from sipevents.records import PublicationRecord, SubscriptionRecord
from sipevents.store.memory import MemoryBackend, MemoryStore
from sipevents.store.writebehind import (
    MAX_RETRY_DELAY,
    MIN_RETRY_DELAY,
    StoreError,
    WriteBehindStore,
)
from tests.test_store import StoreTestsMixin, makePublication, makeSubscription

#: The batch interval of the tests, in seconds.
INTERVAL = 0.05

_Batch = tuple[
    dict[str, SubscriptionRecord | None], dict[str, PublicationRecord | None]
]


@implementer(IStoreBackend)
class FakeBackend:
    """
    A backend that keeps its records in dictionaries, as a networked store
    keeps them on its server. Each batch waits in L{calls} until the test
    answers it (L{commit} or L{fail}); while L{down}, every batch fails at
    once, as when the server cannot be reached.

    @ivar subscriptions: what is durable, by key.
    @ivar publications: what is durable, by entity-tag, oldest first.
    @ivar calls: the batches written and not yet answered, oldest first,
        with their L{Deferred}s.
    @ivar batches: every batch offered, answered or not.
    @ivar closed: how many times L{close} was called.
    """

    def __init__(self) -> None:
        self.subscriptions: dict[str, SubscriptionRecord] = {}
        self.publications: dict[str, PublicationRecord] = {}
        self.calls: list[tuple[_Batch, Deferred[None]]] = []
        self.batches: list[_Batch] = []
        self.down = False
        self.closed = 0

    def load(
        self,
    ) -> Deferred[tuple[list[SubscriptionRecord], list[PublicationRecord]]]:
        return succeed(
            (list(self.subscriptions.values()), list(self.publications.values()))
        )

    def writeBatch(
        self,
        subscriptions: Mapping[str, SubscriptionRecord | None],
        publications: Mapping[str, PublicationRecord | None],
    ) -> Deferred[None]:
        if self.calls:
            raise AssertionError("a batch was offered before the last one ended")
        batch = (dict(subscriptions), dict(publications))
        self.batches.append(batch)
        d: Deferred[None] = Deferred()
        if self.down:
            d.errback(ConnectionLost("backend down"))
        else:
            self.calls.append((batch, d))
        return d

    def commit(self) -> _Batch:
        """
        Make the oldest waiting batch durable, and say so.
        """
        (subscriptions, publications), d = self.calls.pop(0)
        for key, record in subscriptions.items():
            if record is None:
                self.subscriptions.pop(key, None)
            else:
                self.subscriptions[key] = record
        for etag, publication in publications.items():
            if publication is None:
                self.publications.pop(etag, None)
            else:
                self.publications[etag] = publication
        d.callback(None)
        return subscriptions, publications

    def fail(self, error: Exception | None = None) -> None:
        """
        Fail the oldest waiting batch, leaving nothing of it durable.
        """
        _, d = self.calls.pop(0)
        d.errback(ConnectionLost("backend down") if error is None else error)

    def close(self) -> Deferred[None]:
        self.closed += 1
        return succeed(None)


@implementer(IStoreBackend)
class CommittingBackend(FakeBackend):
    """
    A L{FakeBackend} that makes every batch durable at once unless down.
    """

    def writeBatch(
        self,
        subscriptions: Mapping[str, SubscriptionRecord | None],
        publications: Mapping[str, PublicationRecord | None],
    ) -> Deferred[None]:
        d = super().writeBatch(subscriptions, publications)
        if self.calls:
            self.commit()
        return d


class WriteBehindMixin:
    """
    A L{WriteBehindStore} over a L{FakeBackend}, on a L{Clock}.
    """

    # Provided by the TestCase this is mixed into.
    successResultOf: Any
    failureResultOf: Any
    assertNoResult: Any
    assertTrue: Any
    flushLoggedErrors: Any

    def setUp(self) -> None:
        self.clock = Clock()
        self.backend = FakeBackend()
        self.store = self.makeStore()

    def makeStore(self, **kwargs: Any) -> WriteBehindStore:
        kwargs.setdefault("batchInterval", INTERVAL)
        return WriteBehindStore(self.clock, self.backend, "fake store", **kwargs)

    def failBatch(self) -> None:
        """
        Fail the waiting batch, and take the failure out of the log (where
        the store says so, and where the L{Deferred}s of writes nobody
        kept report it as unhandled).
        """
        self.backend.fail()
        self.assertTrue(self.flushLoggedErrors(ConnectionLost))


class SharedBehaviourTests(StoreTestsMixin, SynchronousTestCase):
    """
    The behaviour every store shares, on a L{WriteBehindStore} over a
    backend that has not answered yet: look-ups come from the working
    set.
    """

    def setUp(self) -> None:
        self.store = WriteBehindStore(Clock(), FakeBackend(), "fake store")


class BatchingTests(WriteBehindMixin, SynchronousTestCase):
    """
    Writes are visible at once, batched per C{batchInterval} or
    C{maxBatch}, coalesced per key, and durable when the backend says so.
    """

    def test_verifyObject(self) -> None:
        """
        The store provides L{IStore}; both backends L{IStoreBackend}.
        """
        self.assertTrue(verifyObject(IStore, self.store))
        self.assertTrue(verifyObject(IStoreBackend, self.backend))
        self.assertTrue(verifyObject(IStoreBackend, MemoryBackend()))

    def test_durableOnlyOnceBackendSucceeded(self) -> None:
        """
        A write is visible at once; its L{Deferred} fires only once the
        backend has made the batch carrying it durable, not when the batch
        is handed over.
        """
        record = makeSubscription(1)
        d = self.store.putSubscription(record)
        self.assertEqual(self.store.getSubscription(record.key), record)
        self.assertEqual(self.backend.batches, [])
        self.clock.advance(INTERVAL)
        self.assertEqual(self.backend.batches, [({record.key: record}, {})])
        self.assertNoResult(d)
        self.backend.commit()
        self.assertIsNone(self.successResultOf(d))
        self.assertEqual(self.backend.subscriptions, {record.key: record})
        self.assertEqual((self.store.batchesWritten, self.store.rowsWritten), (1, 1))

    def test_batchAfterInterval(self) -> None:
        """
        Changes made within C{batchInterval} of the first go in one batch,
        subscriptions and publications together.
        """
        self.store.putSubscription(makeSubscription(1))
        self.clock.advance(INTERVAL / 2)
        self.store.putPublication(makePublication(1))
        self.assertEqual(self.backend.batches, [])
        self.clock.advance(INTERVAL / 2)
        self.assertEqual(
            self.backend.batches,
            [
                (
                    {makeSubscription(1).key: makeSubscription(1)},
                    {"etag00000001": makePublication(1)},
                )
            ],
        )

    def test_coalescedPerKey(self) -> None:
        """
        A burst of changes to one key is written once, with its latest
        value; a put then a remove is written as one removal.
        """
        record = makeSubscription(1)
        ds = [
            self.store.putSubscription(record.evolve(localCSeq=cseq))
            for cseq in range(100, 110)
        ]
        transient = makeSubscription(2)
        ds.append(self.store.putSubscription(transient))
        ds.append(self.store.removeSubscription(transient.key))
        publication = makePublication(1)
        ds.append(self.store.putPublication(publication))
        ds.append(self.store.removePublication(publication.etag))
        self.clock.advance(INTERVAL)
        self.assertEqual(
            self.backend.commit(),
            (
                {record.key: record.evolve(localCSeq=109), transient.key: None},
                {publication.etag: None},
            ),
        )
        for d in ds:
            self.assertIsNone(self.successResultOf(d))
        self.assertEqual((self.store.batchesWritten, self.store.rowsWritten), (1, 3))

    def test_maxBatchStartsAtOnce(self) -> None:
        """
        C{maxBatch} pending changes are handed over at once, without
        waiting for C{batchInterval}.
        """
        store = self.makeStore(maxBatch=3)
        store.putSubscription(makeSubscription(1))
        store.putSubscription(makeSubscription(2))
        self.assertEqual(self.backend.batches, [])
        store.putSubscription(makeSubscription(3))
        self.assertEqual(len(self.backend.batches[0][0]), 3)

    def test_oneBatchAtATime(self) -> None:
        """
        Changes made while a batch is being written wait for it to end and
        go in the next batch, so they become durable in order.
        """
        first = self.store.putSubscription(makeSubscription(1))
        self.clock.advance(INTERVAL)
        second = self.store.putSubscription(makeSubscription(2))
        self.clock.advance(INTERVAL * 10)
        self.assertEqual(len(self.backend.batches), 1)
        self.backend.commit()
        self.assertIsNone(self.successResultOf(first))
        self.assertNoResult(second)
        self.clock.advance(INTERVAL)
        self.assertEqual(list(self.backend.batches[1][0]), [makeSubscription(2).key])
        self.backend.commit()
        self.assertIsNone(self.successResultOf(second))

    def test_flushWritesNow(self) -> None:
        """
        flush() hands what is pending over without waiting for
        C{batchInterval}, and fires once every write so far is durable,
        including those of the batch already being written.
        """
        self.store.putSubscription(makeSubscription(1))
        self.clock.advance(INTERVAL)
        self.store.putSubscription(makeSubscription(2))
        flushed = self.store.flush()
        self.backend.commit()
        self.assertNoResult(flushed)
        self.assertEqual(len(self.backend.batches), 2)
        self.backend.commit()
        self.assertIsNone(self.successResultOf(flushed))
        self.assertIsNone(self.successResultOf(self.store.flush()))


class FailureAndRecoveryTests(WriteBehindMixin, SynchronousTestCase):
    """
    A backend that fails: the writers hear of it, the log says so, and the
    changes are written again after a back-off until the backend recovers.
    """

    def test_failedBatchFailsItsWritersAndIsLogged(self) -> None:
        """
        The L{Deferred}s of the writes a failed batch carried fail with the
        backend's error, which is logged; the working set keeps the
        changes.
        """
        record = makeSubscription(1)
        d = self.store.putSubscription(record)
        self.clock.advance(INTERVAL)
        self.failBatch()
        self.failureResultOf(d, ConnectionLost)
        self.assertEqual(self.store.getSubscription(record.key), record)
        self.assertEqual(self.backend.subscriptions, {})

    def test_retriedWithBackOff(self) -> None:
        """
        A failed batch is offered again after a back-off that doubles with
        each failure, up to L{MAX_RETRY_DELAY}; once the backend recovers,
        the changes are durable and the next change waits only
        C{batchInterval} again.
        """
        record = makeSubscription(1)
        self.store.putSubscription(record)
        self.clock.advance(INTERVAL)
        delays = []
        for attempt in range(1, 11):
            self.failBatch()
            delay = min(INTERVAL * 2**attempt, MAX_RETRY_DELAY)
            delays.append(delay)
            self.clock.advance(delay * 0.99)
            self.assertEqual(len(self.backend.batches), attempt)
            self.clock.advance(delay * 0.01)
            self.assertEqual(len(self.backend.batches), attempt + 1)
        self.assertEqual(delays[:3], [0.1, 0.2, 0.4])
        self.assertEqual(delays[-1], MAX_RETRY_DELAY)
        self.assertEqual(self.backend.batches[-1], ({record.key: record}, {}))
        self.backend.commit()
        self.assertEqual(self.backend.subscriptions, {record.key: record})
        later = self.store.putSubscription(makeSubscription(2))
        self.clock.advance(INTERVAL)
        self.backend.commit()
        self.assertIsNone(self.successResultOf(later))

    def test_changesDuringBackOffJoinRetry(self) -> None:
        """
        Changes made while the store backs off wait for the retry and go
        with it; their L{Deferred}s fire once it has succeeded.
        """
        self.store.putSubscription(makeSubscription(1))
        self.clock.advance(INTERVAL)
        self.failBatch()
        later = self.store.putSubscription(makeSubscription(2))
        self.clock.advance(INTERVAL)
        self.assertEqual(len(self.backend.batches), 1)
        self.clock.advance(INTERVAL)
        self.assertEqual(
            sorted(self.backend.batches[1][0]),
            [makeSubscription(1).key, makeSubscription(2).key],
        )
        self.assertNoResult(later)
        self.backend.commit()
        self.assertIsNone(self.successResultOf(later))

    def test_newerChangeWinsOverRetry(self) -> None:
        """
        A change made while a batch was failing is not overwritten by the
        retry of the older change to the same key.
        """
        record = makeSubscription(1)
        self.store.putSubscription(record)
        self.clock.advance(INTERVAL)
        newer = record.evolve(localCSeq=500)
        self.store.putSubscription(newer)
        self.failBatch()
        self.clock.advance(INTERVAL * 2)
        self.assertEqual(self.backend.batches[-1], ({record.key: newer}, {}))
        self.backend.commit()
        self.assertEqual(self.backend.subscriptions, {record.key: newer})

    def test_retriedRemovalStaysRemoval(self) -> None:
        """
        A removal whose batch failed is offered again as a removal: the
        backend never keeps a record the working set dropped.
        """
        record = makeSubscription(1)
        self.store.putSubscription(record)
        self.clock.advance(INTERVAL)
        self.backend.commit()
        self.store.removeSubscription(record.key)
        self.clock.advance(INTERVAL)
        self.failBatch()
        self.clock.advance(INTERVAL * 2)
        self.backend.commit()
        self.assertEqual(self.backend.subscriptions, {})

    def test_flushDuringBackOffWritesNow(self) -> None:
        """
        flush() does not wait out a back-off: the operator asked for it.
        """
        self.store.putSubscription(makeSubscription(1))
        self.clock.advance(INTERVAL)
        self.failBatch()
        flushed = self.store.flush()
        self.assertEqual(len(self.backend.batches), 2)
        self.backend.commit()
        self.assertIsNone(self.successResultOf(flushed))

    def test_backendDownAtOnceThenUp(self) -> None:
        """
        A backend that fails as soon as it is asked (it cannot be reached)
        is asked again after the back-off, not at once, and its changes
        are written once it is up.
        """
        self.backend.down = True
        d = self.store.putSubscription(makeSubscription(1))
        self.clock.advance(INTERVAL)
        self.flushLoggedErrors(ConnectionLost)
        self.failureResultOf(d, ConnectionLost)
        self.clock.advance(INTERVAL * 2)
        self.flushLoggedErrors(ConnectionLost)
        self.assertEqual(len(self.backend.batches), 2)
        self.backend.down = False
        self.clock.advance(INTERVAL * 4)
        self.backend.commit()
        self.assertEqual(list(self.backend.subscriptions), [makeSubscription(1).key])

    def test_backendRaisingIsFailedBatch(self) -> None:
        """
        A backend that raises instead of returning a failed L{Deferred} is
        a failed batch like any other: logged, the writers told, retried.
        """
        writeBatch = self.backend.writeBatch

        def raising(*args: Any) -> Deferred[None]:
            self.backend.writeBatch = writeBatch  # type: ignore[method-assign]
            raise ConnectionLost("refused")

        self.backend.writeBatch = raising  # type: ignore[method-assign]
        d = self.store.putSubscription(makeSubscription(1))
        self.clock.advance(INTERVAL)
        self.failureResultOf(d, ConnectionLost)
        self.assertTrue(self.flushLoggedErrors(ConnectionLost))
        self.clock.advance(INTERVAL * 2)
        self.backend.commit()
        self.assertEqual(list(self.backend.subscriptions), [makeSubscription(1).key])


class WriteThroughTests(SynchronousTestCase):
    """
    With a C{batchInterval} of 0 every change is handed over at once, as
    L{MemoryStore} does; a backend durable at once fires the L{Deferred}
    before the write returns.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.backend = CommittingBackend()
        self.store = WriteBehindStore(
            self.clock, self.backend, "fake store", batchInterval=0
        )

    def test_durableBeforeWriteReturns(self) -> None:
        """
        Each change is its own batch, durable before the write returns.
        """
        record = makeSubscription(1)
        self.assertIsNone(self.successResultOf(self.store.putSubscription(record)))
        self.assertIsNone(
            self.successResultOf(self.store.putPublication(makePublication(1)))
        )
        self.assertEqual(
            self.backend.batches,
            [({record.key: record}, {}), ({}, {"etag00000001": makePublication(1)})],
        )
        self.assertEqual((self.store.batchesWritten, self.store.rowsWritten), (2, 2))

    def test_failureBacksOffThenBatches(self) -> None:
        """
        When the backend fails, the write fails and is retried after
        L{MIN_RETRY_DELAY} doubled, with every change made meanwhile in the
        same batch; once it succeeds, changes go through at once again.
        """
        self.backend.down = True
        failed = self.store.putSubscription(makeSubscription(1))
        self.failureResultOf(failed, ConnectionLost)
        self.flushLoggedErrors(ConnectionLost)
        self.backend.down = False
        waiting = self.store.putSubscription(makeSubscription(2))
        self.assertNoResult(waiting)
        self.clock.advance(MIN_RETRY_DELAY * 2)
        self.assertIsNone(self.successResultOf(waiting))
        self.assertEqual(len(self.backend.batches[-1][0]), 2)
        self.assertEqual(len(self.backend.subscriptions), 2)
        self.successResultOf(self.store.putSubscription(makeSubscription(3)))
        self.assertEqual(len(self.backend.batches), 3)

    def test_memoryStoreWritesThrough(self) -> None:
        """
        L{MemoryStore} is this store over a L{MemoryBackend}, and needs no
        clock.
        """
        store = MemoryStore()
        self.assertIsInstance(store.backend, MemoryBackend)
        self.assertEqual(store.batchInterval, 0)
        self.successResultOf(store.putSubscription(makeSubscription(1)))
        self.assertEqual(store.batchesWritten, 1)


class LifecycleTests(WriteBehindMixin, SynchronousTestCase):
    """
    load() reads what the backend holds; close() flushes and closes it.
    """

    def test_loadFromBackend(self) -> None:
        """
        load() puts what the backend holds into the working set,
        publications in the backend's order (RFC 3903 section 4.4).
        """
        record = makeSubscription(1)
        self.backend.subscriptions[record.key] = record
        for n in (3, 1, 2):
            self.backend.publications[f"etag{n:08d}"] = makePublication(n)
        self.assertIsNone(self.successResultOf(self.store.load()))
        self.assertEqual(self.store.allSubscriptions(), [record])
        self.assertEqual(
            [p.etag for p in self.store.allPublications()],
            ["etag00000003", "etag00000001", "etag00000002"],
        )

    def test_changeBeforeLoadWins(self) -> None:
        """
        A change made before load() is newer than what the backend holds.
        """
        record = makeSubscription(1)
        self.backend.subscriptions[record.key] = record
        newer = record.evolve(localCSeq=900)
        self.store.putSubscription(newer)
        self.successResultOf(self.store.load())
        self.assertEqual(self.store.getSubscription(record.key), newer)

    def test_rfc6665_4_2_2_restartOverSameBackend(self) -> None:
        """
        A new store over the same backend sees every durable change of the
        old one: what a networked backend gives a restarted node.
        """
        kept, removed = makeSubscription(1), makeSubscription(2)
        self.store.putSubscription(kept)
        self.store.putSubscription(removed)
        self.store.putPublication(makePublication(1))
        self.clock.advance(INTERVAL)
        self.backend.commit()
        self.store.removeSubscription(removed.key)
        closed = self.store.close()
        self.backend.commit()
        self.successResultOf(closed)
        restarted = self.makeStore()
        self.successResultOf(restarted.load())
        self.assertEqual(restarted.allSubscriptions(), [kept])
        self.assertEqual(restarted.allPublications(), [makePublication(1)])

    def test_closeFlushesThenClosesBackend(self) -> None:
        """
        close() writes what is pending at once and closes the backend once
        it is durable; closing again waits for, and ends as, the first.
        """
        self.store.putSubscription(makeSubscription(1))
        closed = self.store.close()
        again = self.store.close()
        self.assertEqual(len(self.backend.batches), 1)
        self.assertEqual(self.backend.closed, 0)
        self.backend.commit()
        self.assertEqual(self.backend.closed, 1)
        self.assertIsNone(self.successResultOf(closed))
        self.assertIsNone(self.successResultOf(again))
        self.assertIsNone(self.successResultOf(self.store.close()))
        self.assertEqual(self.backend.closed, 1)

    def test_closeFailsWithLastFlush(self) -> None:
        """
        When the last flush fails, close() still closes the backend, with
        no retry, and fails with that failure.
        """
        self.store.putSubscription(makeSubscription(1))
        closed = self.store.close()
        self.failBatch()
        self.failureResultOf(closed, ConnectionLost)
        self.assertEqual(self.backend.closed, 1)
        self.clock.advance(MAX_RETRY_DELAY * 2)
        self.assertEqual(len(self.backend.batches), 1)

    def test_writesAfterCloseFail(self) -> None:
        """
        After close(), writes and load() fail with L{StoreError}, while
        look-ups still answer from the working set.
        """
        record = makeSubscription(1)
        self.store.putSubscription(record)
        closed = self.store.close()
        self.backend.commit()
        self.successResultOf(closed)
        self.failureResultOf(
            self.store.putSubscription(makeSubscription(2)), StoreError
        )
        self.failureResultOf(self.store.removePublication("etag"), StoreError)
        self.failureResultOf(self.store.load(), StoreError)
        self.assertEqual(self.store.getSubscription(record.key), record)

    def test_closedBeforeReactorShutdown(self) -> None:
        """
        A store on a reactor that nobody closed is closed (so flushed)
        before the reactor shuts down.
        """
        reactor = MemoryReactorClock()
        store = WriteBehindStore(reactor, self.backend, "fake store")
        store.putSubscription(makeSubscription(1))
        reactor.advance(INTERVAL)
        [(close, args, kwargs)] = reactor.triggers["before"]["shutdown"]
        closed = close(*args, **kwargs)
        self.backend.commit()
        self.successResultOf(closed)
        self.assertEqual(self.backend.closed, 1)


class CSeqReservationTests(WriteBehindMixin, SynchronousTestCase):
    """
    L{WriteBehindStore.reserveCSeq}: the CSeq high-water mark of a dialog,
    persisted before the notifier uses the CSeqs it covers (RFC 3261
    section 12.2.1.1: the CSeqs of a dialog only increase, across a
    restart too).
    """

    def sharedDialog(self) -> list[SubscriptionRecord]:
        """
        Two subscriptions sharing one dialog (RFC 6665 section 4.5.2),
        durable, with the high-water mark 100.
        """
        first = makeSubscription(1)
        second = makeSubscription(1, eventType="message-summary")
        self.store.putSubscription(first)
        self.store.putSubscription(second)
        self.clock.advance(INTERVAL)
        self.backend.commit()
        return [first, second]

    def test_rfc6665_4_5_2_reserveRaisesWholeDialog(self) -> None:
        """
        The mark of every subscription of the dialog is raised, in the
        working set at once and in one batch, and the L{Deferred} fires
        only once that batch is durable.
        """
        first, second = self.sharedDialog()
        d = self.store.reserveCSeq(first.callId, first.localTag, first.remoteTag, 200)
        self.assertEqual(
            [r.localCSeq for r in self.store.allSubscriptions()], [200, 200]
        )
        self.clock.advance(INTERVAL)
        self.assertEqual(
            {key: r and r.localCSeq for key, r in self.backend.batches[-1][0].items()},
            {first.key: 200, second.key: 200},
        )
        self.assertNoResult(d)
        self.backend.commit()
        self.assertIsNone(self.successResultOf(d))
        self.assertEqual(
            [r.localCSeq for r in self.backend.subscriptions.values()], [200, 200]
        )

    def test_reserveBelowMarkIsDurableAlready(self) -> None:
        """
        A mark no higher than the stored one needs no write.
        """
        first, _ = self.sharedDialog()
        d = self.store.reserveCSeq(first.callId, first.localTag, first.remoteTag, 100)
        self.assertIsNone(self.successResultOf(d))
        self.clock.advance(INTERVAL)
        self.assertEqual(len(self.backend.batches), 1)

    def test_rfc3261_12_2_1_1_failedReservationFails(self) -> None:
        """
        A reservation whose batch fails fails its L{Deferred} with the
        backend's error (the notifier must not use the CSeqs it was to
        cover), and is written by the retry.
        """
        first, second = self.sharedDialog()
        d = self.store.reserveCSeq(first.callId, first.localTag, first.remoteTag, 200)
        self.clock.advance(INTERVAL)
        self.failBatch()
        self.failureResultOf(d, ConnectionLost)
        self.assertEqual(
            [r.localCSeq for r in self.backend.subscriptions.values()], [100, 100]
        )
        self.clock.advance(INTERVAL * 2)
        self.backend.commit()
        self.assertEqual(
            [r.localCSeq for r in self.backend.subscriptions.values()], [200, 200]
        )

    def test_failedReservationOfOneSubscription(self) -> None:
        """
        The failure of a reservation in a dialog of one subscription is
        the backend's error too.
        """
        record = makeSubscription(1)
        self.store.putSubscription(record)
        d = self.store.reserveCSeq(
            record.callId, record.localTag, record.remoteTag, 300
        )
        self.clock.advance(INTERVAL)
        self.failBatch()
        self.failureResultOf(d, ConnectionLost)

    def test_reserveAfterCloseFails(self) -> None:
        """
        A reservation on a closed store fails at once with L{StoreError}.
        """
        first, _ = self.sharedDialog()
        self.successResultOf(self.store.close())
        d = self.store.reserveCSeq(first.callId, first.localTag, first.remoteTag, 200)
        self.failureResultOf(d, StoreError)
