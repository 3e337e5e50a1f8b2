"""
Tests for L{sipevents.store.sqlite}: the shared store behaviour, write-behind
batching and coalescing, durability across a reopen and across SIGKILL
(issue 3 item 7).

The store writes on its own thread, so these tests run on the real reactor
with a temporary file; they wait on the store's L{Deferred}s, never on time
(trial's C{timeout} bounds every wait).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.error import ProcessTerminated
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

import tests
from sipevents.interfaces import IStore, IStoreBackend
from sipevents.records import PENDING
from sipevents.store.sqlite import SCHEMA_VERSION, SQLiteStore
from sipevents.store.writebehind import StoreError
from tests.test_store import StoreTestsMixin, makePublication, makeSubscription

#: Seconds: long enough that no batch starts on its timer during a test, so
#: only flush(), maxBatch and close() write.
NEVER = 3600.0


def readRows(path: str, sql: str) -> list[tuple[Any, ...]]:
    """
    Run C{sql} on a connection of our own: what another process would see
    of C{path}, that is, what has committed.
    """
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


class SQLiteStoreMixinTests(StoreTestsMixin, TestCase):
    """
    The behaviour every store shares, on L{SQLiteStore} (look-ups come from
    its working set while writes go on behind).
    """

    timeout = 30

    def setUp(self) -> None:
        self.store = SQLiteStore(reactor, self.mktemp())
        self.addCleanup(self.store.close)


class SQLiteStoreTests(TestCase):
    """
    L{SQLiteStore}: the file, batching, durability.
    """

    timeout = 30

    def makeStore(self, path: str | None = None, **kwargs: Any) -> SQLiteStore:
        """
        A store on C{path} (a new temporary file by default), closed when
        the test ends.
        """
        store = SQLiteStore(reactor, path or self.mktemp(), **kwargs)
        self.addCleanup(store.close)
        return store

    def spyOnBatches(self, store: SQLiteStore) -> list[tuple[dict[str, Any], ...]]:
        """
        Record each batch C{store} writes: its subscription and publication
        changes.
        """
        batches: list[tuple[dict[str, Any], ...]] = []
        write = store.backend._writeBatch

        def spy(subscriptions: dict[str, Any], publications: dict[str, Any]) -> None:
            batches.append((dict(subscriptions), dict(publications)))
            write(subscriptions, publications)

        store.backend._writeBatch = spy  # type: ignore[method-assign]
        return batches

    def test_verifyObject(self) -> None:
        """
        L{SQLiteStore} provides L{IStore}, over an L{IStoreBackend}.
        """
        store = self.makeStore()
        self.assertTrue(verifyObject(IStore, store))
        self.assertTrue(verifyObject(IStoreBackend, store.backend))

    async def test_walAndSynchronousNormal(self) -> None:
        """
        The file is in WAL mode and the connection commits with
        C{synchronous=NORMAL} (durable across a process crash; see the
        module docstring), and the schema version is recorded.
        """
        store = self.makeStore()
        await store.load()
        self.assertEqual(readRows(store.path, "PRAGMA journal_mode"), [("wal",)])

        def synchronous() -> int:
            connection = store.backend._connection
            assert connection is not None
            value: int = connection.execute("PRAGMA synchronous").fetchone()[0]
            return value

        self.assertEqual(await store.backend._inThread(synchronous), 1)
        self.assertEqual(
            readRows(store.path, "SELECT version FROM schema_version"),
            [(SCHEMA_VERSION,)],
        )

    async def test_loadAfterReopen(self) -> None:
        """
        Everything written is there after a close and a reopen, every field
        intact (route sets, parameters, Accept lists, a publication that
        never expires), publications still oldest first (RFC 3903 section
        4.4).
        """
        path = self.mktemp()
        store = self.makeStore(path)
        await store.load()
        subscriptions = [
            makeSubscription(
                1,
                routeSet=("<sip:p1.invalid;lr>", "<sip:p2.invalid;lr>"),
                eventParams=(("vendor", "x"), ("flag", None)),
                accept=("application/pidf+xml", "application/xpidf+xml"),
                eventId="42",
                state=PENDING,
                localCSeq=2**31 - 1,
            ),
            makeSubscription(2, accept=()),
            makeSubscription(1001),
        ]
        for record in subscriptions:
            store.putSubscription(record)
        publications = [
            makePublication(3),
            makePublication(1, expiresAt=None, body=b"\x00\xffbinary"),
            makePublication(2, eventType="message-summary"),
        ]
        for record in publications:
            store.putPublication(record)
        # A modification keeps its place (RFC 3903 section 4.4).
        publications[0] = publications[0].evolve(body=b"<presence/>")
        store.putPublication(publications[0])
        await store.close()

        reopened = self.makeStore(path)
        await reopened.load()
        self.assertEqual(
            sorted(reopened.allSubscriptions(), key=lambda r: r.key),
            sorted(subscriptions, key=lambda r: r.key),
        )
        self.assertEqual(reopened.allPublications(), publications)
        self.assertEqual(
            reopened.publicationsByResource("sip:alice@example.invalid", "presence"),
            [publications[0], publications[1]],
        )
        self.assertEqual(
            reopened.subscriptionsByResource(subscriptions[0].resource),
            [subscriptions[0], subscriptions[2]],
        )
        record = subscriptions[0]
        self.assertEqual(
            reopened.subscriptionsByDialog(
                record.callId, record.localTag, record.remoteTag
            ),
            [record],
        )

    async def test_removalsAreStored(self) -> None:
        """
        Removed subscriptions and publications are gone after a reopen.
        """
        path = self.mktemp()
        store = self.makeStore(path)
        await store.load()
        kept, removed = makeSubscription(1), makeSubscription(2)
        store.putSubscription(kept)
        store.putSubscription(removed)
        store.putPublication(makePublication(1))
        store.putPublication(makePublication(2))
        await store.flush()
        store.removeSubscription(removed.key)
        store.removePublication("etag00000002")
        await store.close()
        reopened = self.makeStore(path)
        await reopened.load()
        self.assertEqual(reopened.allSubscriptions(), [kept])
        self.assertEqual(reopened.allPublications(), [makePublication(1)])

    async def test_writesCoalescePerKey(self) -> None:
        """
        A burst of changes to one subscription is written once, with its
        latest value; a put then remove of another writes one deletion.
        """
        store = self.makeStore(batchInterval=NEVER)
        batches = self.spyOnBatches(store)
        await store.load()
        record = makeSubscription(1)
        for cseq in range(100, 200):
            store.putSubscription(record.evolve(localCSeq=cseq))
        transient = makeSubscription(2)
        store.putSubscription(transient)
        store.removeSubscription(transient.key)
        publication = makePublication(1)
        for n in range(10):
            store.putPublication(publication.evolve(expiresAt=float(n)))
        await store.flush()
        self.assertEqual(
            batches,
            [
                (
                    {record.key: record.evolve(localCSeq=199), transient.key: None},
                    {publication.etag: publication.evolve(expiresAt=9.0)},
                )
            ],
        )
        self.assertEqual((store.batchesWritten, store.rowsWritten), (1, 3))
        self.assertEqual(
            readRows(store.path, "SELECT key, localCSeq FROM subscriptions"),
            [(record.key, 199)],
        )

    async def test_deferredFiresAfterCommit(self) -> None:
        """
        A write's L{Deferred} fires only once its row is committed: another
        connection sees it by then.
        """
        store = self.makeStore(batchInterval=NEVER)
        await store.load()
        record = makeSubscription(1)
        d = store.putSubscription(record)
        self.assertFalse(d.called)
        # Visible at once in the working set, not yet on disk.
        self.assertEqual(store.getSubscription(record.key), record)
        seen: list[list[tuple[Any, ...]]] = []
        d.addCallback(
            lambda _: seen.append(
                readRows(store.path, "SELECT localCSeq FROM subscriptions")
            )
        )
        store.flush()
        await d
        self.assertEqual(seen, [[(record.localCSeq,)]])

    async def test_timerStartsBatch(self) -> None:
        """
        Without flush(), pending writes go out on their own after
        C{batchInterval}.
        """
        store = self.makeStore(batchInterval=0.001)
        await store.load()
        await store.putSubscription(makeSubscription(1))
        self.assertEqual(store.batchesWritten, 1)

    async def test_maxBatchStartsBatch(self) -> None:
        """
        C{maxBatch} pending changes start a batch at once, without waiting
        for C{batchInterval} or a flush.
        """
        store = self.makeStore(batchInterval=NEVER, maxBatch=10)
        await store.load()
        ds = [store.putSubscription(makeSubscription(n)) for n in range(10)]
        await gatherResults(ds)
        self.assertEqual((store.batchesWritten, store.rowsWritten), (1, 10))

    async def test_writesDuringBatchGoInNext(self) -> None:
        """
        Changes made while a batch is being written wait for the next one;
        flush() waits for both.
        """
        store = self.makeStore(batchInterval=NEVER)
        batches = self.spyOnBatches(store)
        await store.load()
        first = store.putSubscription(makeSubscription(1))
        store.flush()
        second = store.putSubscription(makeSubscription(2))
        await store.flush()
        self.assertTrue(first.called and second.called)
        self.assertEqual(
            [sorted(subscriptions) for subscriptions, _ in batches],
            [[makeSubscription(1).key], [makeSubscription(2).key]],
        )

    async def test_failedBatchIsLoggedFailsAndRetries(self) -> None:
        """
        A batch that fails is logged and fails the L{Deferred}s of its
        writes; its changes are written by the next batch.
        """
        store = self.makeStore(batchInterval=NEVER)
        await store.load()
        write = store.backend._writeBatch
        calls: list[int] = []

        def failOnce(
            subscriptions: dict[str, Any], publications: dict[str, Any]
        ) -> None:
            calls.append(len(subscriptions))
            if len(calls) == 1:
                raise sqlite3.OperationalError("disk I/O error")
            write(subscriptions, publications)

        store.backend._writeBatch = failOnce  # type: ignore[method-assign]
        record = makeSubscription(1)
        d = store.putSubscription(record)
        flushed = store.flush()
        await self.assertFailure(d, sqlite3.OperationalError)
        await self.assertFailure(flushed, sqlite3.OperationalError)
        self.assertEqual(len(self.flushLoggedErrors(sqlite3.OperationalError)), 1)
        await store.flush()
        self.assertEqual(calls, [1, 1])
        self.assertEqual(
            readRows(store.path, "SELECT key FROM subscriptions"), [(record.key,)]
        )

    async def test_newerChangeWinsOverRetry(self) -> None:
        """
        A change made while a failed batch was being written is not
        overwritten by the retry of the older change.
        """
        store = self.makeStore(batchInterval=NEVER)
        await store.load()
        write = store.backend._writeBatch
        record = makeSubscription(1)
        batches: list[dict[str, Any]] = []

        def failOnce(
            subscriptions: dict[str, Any], publications: dict[str, Any]
        ) -> None:
            batches.append(dict(subscriptions))
            if len(batches) == 1:
                raise sqlite3.OperationalError("database is locked")
            write(subscriptions, publications)

        store.backend._writeBatch = failOnce  # type: ignore[method-assign]
        d = store.putSubscription(record)
        flushed = store.flush()
        newer = record.evolve(localCSeq=500)
        store.putSubscription(newer)
        await self.assertFailure(d, sqlite3.OperationalError)
        await self.assertFailure(flushed, sqlite3.OperationalError)
        self.flushLoggedErrors(sqlite3.OperationalError)
        await store.flush()
        self.assertEqual(batches, [{record.key: record}, {record.key: newer}])
        self.assertEqual(
            readRows(store.path, "SELECT localCSeq FROM subscriptions"), [(500,)]
        )

    async def test_closeFlushes(self) -> None:
        """
        close() writes what is pending before it closes; writes after it
        and load() fail with L{StoreError} while look-ups still answer;
        closing again is harmless.
        """
        path = self.mktemp()
        store = SQLiteStore(reactor, path, batchInterval=NEVER)
        record = makeSubscription(1)
        store.putSubscription(record)
        await gatherResults([store.close(), store.close()])
        await store.close()
        self.assertEqual(
            readRows(path, "SELECT key FROM subscriptions"), [(record.key,)]
        )
        await self.assertFailure(store.putSubscription(makeSubscription(2)), StoreError)
        self.assertEqual(store.getSubscription(record.key), record)

    async def test_closeUnused(self) -> None:
        """
        A store never used starts no thread and closes at once.
        """
        store = SQLiteStore(reactor, self.mktemp())
        await store.close()
        self.assertIsNone(store.backend._pool)

    async def test_newerSchemaRefused(self) -> None:
        """
        A file written by a newer version (a higher schema version) is
        refused by load() with L{StoreError} naming both versions.
        """
        path = self.mktemp()
        store = self.makeStore(path)
        await store.load()
        await store.close()
        connection = sqlite3.connect(path)
        with connection:
            connection.execute("UPDATE schema_version SET version = 99")
        connection.close()
        newer = self.makeStore(path)
        error = await self.assertFailure(newer.load(), StoreError)
        self.assertIn("99", str(error))
        self.assertIn(str(SCHEMA_VERSION), str(error))

    async def test_rfc6665_issue3_7_survivesSIGKILL(self) -> None:
        """
        Issue 3 item 7: a process that wrote records, saw them committed and
        was then killed with SIGKILL (while writing more) leaves a file a
        new store loads every committed record from; records caught by the
        kill are either whole or absent.
        """
        path = os.path.abspath(self.mktemp())
        root = os.path.dirname(os.path.dirname(os.path.abspath(tests.__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
        child = _WriterProcess()
        transport = reactor.spawnProcess(  # type: ignore[attr-defined]
            child, sys.executable, [sys.executable, "-c", _CHILD, path], env=env
        )
        await child.ready
        os.kill(transport.pid, signal.SIGKILL)
        reason = await child.ended
        assert isinstance(reason, ProcessTerminated)
        self.assertEqual(reason.signal, signal.SIGKILL)

        store = self.makeStore(path)
        await store.load()
        for n in range(200):
            record = makeSubscription(n)
            if n % 10 == 0:
                self.assertIsNone(store.getSubscription(record.key))
            else:
                self.assertEqual(
                    store.getSubscription(record.key), record.evolve(localCSeq=300)
                )
        self.assertEqual(
            store.allPublications(), [makePublication(n) for n in range(5)]
        )
        later = [r for r in store.allSubscriptions() if r.localCSeq != 300]
        for record in later:
            n = int(record.callId[:8], 16)
            self.assertEqual(record, makeSubscription(n))


#: The process of the SIGKILL test: writes records, some twice and some
#: removed, says "ready" once they are committed, then writes on until
#: killed.
_CHILD = """
import sys
from twisted.internet import defer, task
from sipevents.store.sqlite import SQLiteStore
from tests.test_store import makePublication, makeSubscription

async def main(reactor):
    store = SQLiteStore(reactor, sys.argv[1], batchInterval=0.005)
    await store.load()
    for n in range(200):
        store.putSubscription(makeSubscription(n))
    for n in range(200):
        store.putSubscription(makeSubscription(n, localCSeq=300))
    for n in range(0, 200, 10):
        store.removeSubscription(makeSubscription(n).key)
    for n in range(5):
        store.putPublication(makePublication(n))
    await store.flush()
    sys.stdout.write("ready\\n")
    sys.stdout.flush()
    n = 1000
    while True:
        await store.putSubscription(makeSubscription(n))
        n += 1

task.react(lambda reactor: defer.ensureDeferred(main(reactor)))
"""


class _WriterProcess(ProcessProtocol):
    """
    The child of the SIGKILL test, seen from the test.

    @ivar ready: fires when the child says its records are committed; fails
        if it ends before.
    @ivar ended: fires with the reason the child ended.
    """

    def __init__(self) -> None:
        self.ready: Deferred[None] = Deferred()
        self.ended: Deferred[BaseException] = Deferred()
        self.output = b""
        self.errors = b""

    def outReceived(self, data: bytes) -> None:
        self.output += data
        if b"ready\n" in self.output and not self.ready.called:
            self.ready.callback(None)

    def errReceived(self, data: bytes) -> None:
        self.errors += data

    def processEnded(self, reason: Failure) -> None:
        if not self.ready.called:
            self.ready.errback(
                RuntimeError(f"writer ended early: {self.errors.decode()!r}")
            )
        self.ended.callback(reason.value)
