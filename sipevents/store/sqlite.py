# -*- test-case-name: tests.test_store_sqlite -*-
"""
The default store: the L{MemoryStore} working set, written behind to an
SQLite file (stdlib C{sqlite3}) in batches, so subscriptions and
publications survive a restart (issue 3 item 7; DESIGN: "persistence is a
store") and the disk is never on the notifier's hot path.

How a write goes:

  1. C{putSubscription} and friends change the working set at once (so the
     next look-up sees the change) and note the latest change per key in a
     pending map: a burst of changes to one subscription (refresh, CSeq
     high-water mark, state) is written once.
  2. Every C{batchInterval} seconds, or as soon as C{maxBatch} changes are
     pending, or when L{SQLiteStore.flush} asks, the pending map is written
     in one transaction on the store's own single-thread pool: one thread,
     because SQLite has one writer anyway and a batch must be committed
     before the next starts (see below).
  3. The L{Deferred} of every write the batch carried fires once it has
     committed. If the batch fails, the failure is logged and those
     L{Deferred}s fail; the changes go back into the pending map (unless a
     newer change to the same key is already there) and are tried again
     after a back-off, so the file never stays behind the working set
     without the log saying so.

Durability: the file is in WAL mode with C{synchronous=NORMAL}. A commit
then writes the transaction to the write-ahead log, and the C{write()} has
returned to the operating system before the commit does, so a committed
transaction survives the death of the process, even by SIGKILL, which is
what the notifier promises (issue 3 item 7). It does not C{fsync} each
commit (only at checkpoints), so a power failure or a kernel crash can lose
the last transactions, never corrupt the file. C{synchronous=FULL} would
add an C{fsync} to every batch: milliseconds on real disks, for a guarantee
SIP does not need, because a subscriber whose subscription was lost finds
out at its next refresh (481) and subscribes again (RFC 6665 section
4.1.2.2 and 4.1.2.4).
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any, cast

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from sipevents.interfaces import ISubscriptionStore
from sipevents.records import PublicationRecord, SubscriptionRecord
from sipevents.store.memory import RECENT_VALUES, MemoryStore

if TYPE_CHECKING:
    from twisted.internet.interfaces import (
        IDelayedCall,
        IReactorCore,
        IReactorFromThreads,
        IReactorTime,
    )

#: The layout of the file; a file written by a newer version is refused.
SCHEMA_VERSION = 1

#: The longest wait before writing again after failed batches, in seconds.
MAX_RETRY_DELAY = 10.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS subscriptions (
    key TEXT PRIMARY KEY NOT NULL,
    resource TEXT NOT NULL,
    eventType TEXT NOT NULL,
    eventId TEXT,
    eventParams TEXT NOT NULL,
    state TEXT NOT NULL,
    expiresAt REAL NOT NULL,
    watcher TEXT NOT NULL,
    accept TEXT NOT NULL,
    callId TEXT NOT NULL,
    localTag TEXT NOT NULL,
    remoteTag TEXT NOT NULL,
    localUri TEXT NOT NULL,
    remoteUri TEXT NOT NULL,
    remoteTarget TEXT NOT NULL,
    routeSet TEXT NOT NULL,
    localCSeq INTEGER NOT NULL,
    remoteCSeq INTEGER NOT NULL,
    flowTransport TEXT NOT NULL,
    flowHost TEXT NOT NULL,
    flowPort INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS publications (
    seq INTEGER PRIMARY KEY,
    etag TEXT NOT NULL UNIQUE,
    resource TEXT NOT NULL,
    eventType TEXT NOT NULL,
    contentType TEXT NOT NULL,
    body BLOB NOT NULL,
    expiresAt REAL
);
"""

#: Columns in the order of L{SubscriptionRecord}'s fields; the tuple-valued
#: ones (eventParams, accept, routeSet) are JSON arrays.
_SUBSCRIPTION_COLUMNS = (
    "key, resource, eventType, eventId, eventParams, state, expiresAt, "
    "watcher, accept, callId, localTag, remoteTag, localUri, remoteUri, "
    "remoteTarget, routeSet, localCSeq, remoteCSeq, flowTransport, flowHost, "
    "flowPort"
)
_PUT_SUBSCRIPTION = (
    f"INSERT OR REPLACE INTO subscriptions ({_SUBSCRIPTION_COLUMNS}) "
    f"VALUES ({', '.join('?' * 21)})"
)
_DELETE_SUBSCRIPTION = "DELETE FROM subscriptions WHERE key = ?"
_SELECT_SUBSCRIPTIONS = f"SELECT {_SUBSCRIPTION_COLUMNS} FROM subscriptions"

# An upsert rather than INSERT OR REPLACE: it keeps the row's seq, so a
# refreshed or modified publication keeps its age (RFC 3903 section 4.4).
_PUT_PUBLICATION = (
    "INSERT INTO publications (etag, resource, eventType, contentType, body, "
    "expiresAt) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(etag) DO UPDATE SET "
    "resource = excluded.resource, eventType = excluded.eventType, "
    "contentType = excluded.contentType, body = excluded.body, "
    "expiresAt = excluded.expiresAt"
)
_DELETE_PUBLICATION = "DELETE FROM publications WHERE etag = ?"
_SELECT_PUBLICATIONS = (
    "SELECT etag, resource, eventType, contentType, body, expiresAt "
    "FROM publications ORDER BY seq"
)


class StoreError(Exception):
    """
    The SQLite file cannot be used: written by a newer version, or the
    store is closed.
    """


#: The most entries each JSON cache below keeps before starting afresh.
_CODEC_CACHE_SIZE = 1024

# Tuple fields (Accept lists, route sets, parameters) repeat across records,
# so their JSON text is cached both ways: writing skips json.dumps, and
# loading gives equal tuples one shared object.
_encoded: dict[tuple[Any, ...], str] = {}
_decoded: dict[str, tuple[Any, ...]] = {}


def _encodeTuple(items: tuple[Any, ...]) -> str:
    """
    A tuple field as JSON text (nested pairs become arrays).
    """
    if not items:
        return "[]"
    text = _encoded.get(items)
    if text is None:
        text = json.dumps(items, separators=(",", ":"))
        if len(_encoded) >= _CODEC_CACHE_SIZE:
            _encoded.clear()
        _encoded[items] = text
    return text


def _decodeTuple(text: str) -> tuple[Any, ...]:
    """
    The inverse of L{_encodeTuple}: a tuple of strings, or of C{(name,
    value)} pairs for parameters.
    """
    if text == "[]":
        return ()
    items = _decoded.get(text)
    if items is None:
        items = tuple(
            tuple(item) if type(item) is list else item for item in json.loads(text)
        )
        if len(_decoded) >= _CODEC_CACHE_SIZE:
            _decoded.clear()
        _decoded[text] = items
    return items


def _subscriptionRow(record: SubscriptionRecord) -> tuple[object, ...]:
    """
    The row of C{record}, in the order of L{_SUBSCRIPTION_COLUMNS}.
    """
    return (
        record.key,
        record.resource,
        record.eventType,
        record.eventId,
        _encodeTuple(record.eventParams),
        record.state,
        record.expiresAt,
        record.watcher,
        _encodeTuple(record.accept),
        record.callId,
        record.localTag,
        record.remoteTag,
        record.localUri,
        record.remoteUri,
        record.remoteTarget,
        _encodeTuple(record.routeSet),
        record.localCSeq,
        record.remoteCSeq,
        record.flowTransport,
        record.flowHost,
        record.flowPort,
    )


def _subscriptionFromRow(row: tuple[Any, ...]) -> SubscriptionRecord:
    """
    The inverse of L{_subscriptionRow}.
    """
    (
        key,
        resource,
        eventType,
        eventId,
        eventParams,
        state,
        expiresAt,
        watcher,
        accept,
        callId,
        localTag,
        remoteTag,
        localUri,
        remoteUri,
        remoteTarget,
        routeSet,
        localCSeq,
        remoteCSeq,
        flowTransport,
        flowHost,
        flowPort,
    ) = row
    return SubscriptionRecord(
        key=key,
        resource=resource,
        eventType=eventType,
        eventId=eventId,
        eventParams=_decodeTuple(eventParams),
        state=state,
        expiresAt=expiresAt,
        watcher=watcher,
        accept=_decodeTuple(accept),
        callId=callId,
        localTag=localTag,
        remoteTag=remoteTag,
        localUri=localUri,
        remoteUri=remoteUri,
        remoteTarget=remoteTarget,
        routeSet=_decodeTuple(routeSet),
        localCSeq=localCSeq,
        remoteCSeq=remoteCSeq,
        flowTransport=flowTransport,
        flowHost=flowHost,
        flowPort=flowPort,
    )


def _publicationRow(record: PublicationRecord) -> tuple[object, ...]:
    """
    The row of C{record}, in the order of L{_PUT_PUBLICATION}'s columns.
    """
    return (
        record.etag,
        record.resource,
        record.eventType,
        record.contentType,
        record.body,
        record.expiresAt,
    )


#: A batch: the latest change per key, a record to write or C{None} to
#: delete.
_Changes = dict[str, Any]


@implementer(ISubscriptionStore)
class SQLiteStore(MemoryStore):
    """
    The working set of L{MemoryStore}, written behind to an SQLite file (see
    the module docstring for how, and why C{synchronous=NORMAL}).

    Look-ups are the memory store's. Writes change the working set at once
    and return a L{Deferred} that fires once the batch carrying the change
    has committed, or fails if it could not be.

    Nothing is opened when the store is made: the file is opened and the
    writer thread started by L{load} or the first batch, so a store made
    before twistd daemonizes starts its thread in the daemon.

    @ivar path: the SQLite file.
    @ivar batchInterval: how long changes wait to be written together, in
        seconds.
    @ivar maxBatch: how many pending changes start a batch at once.
    @ivar batchesWritten: how many batches have committed.
    @ivar rowsWritten: how many row changes (writes and deletions) they
        carried, after coalescing.
    """

    log = Logger()

    def __init__(
        self,
        reactor: IReactorTime,
        path: str,
        batchInterval: float = 0.05,
        maxBatch: int = 1000,
    ) -> None:
        """
        @param reactor: schedules batches (C{callLater}) and takes their
            results back from the writer thread, so it must also provide
            C{IReactorFromThreads} and C{IReactorCore} (to flush before the
            reactor stops if nobody closed the store).
        @param path: the SQLite file, created if missing.
        @param batchInterval: see L{batchInterval}.
        @param maxBatch: see L{maxBatch}.
        """
        super().__init__()
        self.path = path
        self.batchInterval = batchInterval
        self.maxBatch = maxBatch
        self.batchesWritten = 0
        self.rowsWritten = 0
        self._reactor = reactor
        self._pool: ThreadPool | None = None
        self._shutdownTrigger: object = None
        # Used only in the writer thread.
        self._connection: sqlite3.Connection | None = None
        self._openError: BaseException | None = None
        # Changes not yet in a batch, and who waits for them.
        self._pendingSubscriptions: _Changes = {}
        self._pendingPublications: _Changes = {}
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

    # -- the writer thread -------------------------------------------------

    def _startPool(self) -> ThreadPool:
        """
        Start the writer thread and queue the opening of the file as its
        first job, unless done already.
        """
        if self._pool is None:
            self._pool = ThreadPool(1, 1, name=f"sipevents-sqlite:{self.path}")
            self._pool.start()
            self._shutdownTrigger = cast(
                "IReactorCore", self._reactor
            ).addSystemEventTrigger("before", "shutdown", self.close)
            self._pool.callInThread(self._open)
        return self._pool

    def _inThread(self, f: Any, *args: Any) -> Deferred[Any]:
        """
        Run C{f(*args)} on the writer thread.
        """
        return deferToThreadPool(
            cast("IReactorFromThreads", self._reactor), self._startPool(), f, *args
        )

    def _open(self) -> None:
        """
        Writer thread: open the file, set WAL and C{synchronous=NORMAL},
        create or check the schema. A failure is kept and raised by every
        later job, so L{load} and the first batch report it.
        """
        try:
            connection = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False
            )
            try:
                (mode,) = connection.execute("PRAGMA journal_mode = WAL").fetchone()
                if mode.lower() != "wal":
                    raise StoreError(
                        f"{self.path}: SQLite refused WAL journaling ({mode})"
                    )
                connection.execute("PRAGMA synchronous = NORMAL")
                connection.executescript(_SCHEMA)
                connection.execute("BEGIN IMMEDIATE")
                row = connection.execute(
                    "SELECT MAX(version) FROM schema_version"
                ).fetchone()
                if row[0] is None:
                    connection.execute(
                        "INSERT INTO schema_version (version) VALUES (?)",
                        (SCHEMA_VERSION,),
                    )
                elif row[0] > SCHEMA_VERSION:
                    raise StoreError(
                        f"{self.path} has schema version {row[0]}, written by a "
                        f"newer sipevents; this one reads version {SCHEMA_VERSION}"
                    )
                connection.execute("COMMIT")
            except BaseException:
                connection.close()
                raise
        except BaseException as e:
            self._openError = e
        else:
            self._connection = connection

    def _ready(self) -> sqlite3.Connection:
        """
        Writer thread: the open connection, or the reason there is none.
        """
        if self._connection is None:
            if self._openError is not None:
                raise self._openError
            raise StoreError(f"{self.path} is closed")
        return self._connection

    def _readAll(
        self,
    ) -> tuple[list[SubscriptionRecord], list[PublicationRecord]]:
        """
        Writer thread: every stored record.
        """
        connection = self._ready()
        subscriptions = [
            _subscriptionFromRow(row)
            for row in connection.execute(_SELECT_SUBSCRIPTIONS)
        ]
        publications = [
            PublicationRecord(*row) for row in connection.execute(_SELECT_PUBLICATIONS)
        ]
        return subscriptions, publications

    def _writeBatch(self, subscriptions: _Changes, publications: _Changes) -> None:
        """
        Writer thread: write one batch of changes in one transaction.
        """
        connection = self._ready()
        connection.execute("BEGIN")
        try:
            for changes, delete, put, toRow in (
                (
                    subscriptions,
                    _DELETE_SUBSCRIPTION,
                    _PUT_SUBSCRIPTION,
                    _subscriptionRow,
                ),
                (publications, _DELETE_PUBLICATION, _PUT_PUBLICATION, _publicationRow),
            ):
                deletions = [(k,) for k, r in changes.items() if r is None]
                if deletions:
                    connection.executemany(delete, deletions)
                rows = [toRow(r) for r in changes.values() if r is not None]
                if rows:
                    connection.executemany(put, rows)
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise

    def _closeConnection(self) -> None:
        """
        Writer thread: close the file (the last connection to close
        checkpoints the write-ahead log into it).
        """
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    # -- batching, in the reactor thread -----------------------------------

    def _queued(self) -> Deferred[None]:
        """
        A change went into the pending map: a L{Deferred} for its batch,
        which starts now if C{maxBatch} changes wait, else after
        C{batchInterval}.
        """
        if self._closed:
            return fail(StoreError(f"{self.path} is closed; the change is not stored"))
        d: Deferred[None] = Deferred()
        self._waiting.append(d)
        if len(self._pendingSubscriptions) + len(self._pendingPublications) >= (
            self.maxBatch
        ):
            self._urgent = True
            self._startBatch()
        elif self._timer is None and self._inFlight is None:
            self._timer = self._reactor.callLater(self.batchInterval, self._timerFired)
        return d

    def _timerFired(self) -> None:
        """
        C{batchInterval} has passed since a change was made.
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
        d = self._inThread(self._writeBatch, subscriptions, publications)
        d.addCallbacks(
            self._batchDone,
            self._batchFailed,
            callbackArgs=(subscriptions, publications),
            errbackArgs=(subscriptions, publications),
        )

    def _batchDone(
        self, ignored: None, subscriptions: _Changes, publications: _Changes
    ) -> None:
        """
        A batch committed: the next one is set going, then its writers hear
        so (last, since their callbacks may write or flush again).
        """
        waiting, self._inFlight = self._inFlight or [], None
        self._failures = 0
        self.batchesWritten += 1
        self.rowsWritten += len(subscriptions) + len(publications)
        self._next()
        for d in waiting:
            d.callback(None)

    def _batchFailed(
        self, failure: Failure, subscriptions: _Changes, publications: _Changes
    ) -> None:
        """
        A batch failed: log it, put its changes back to be tried again
        after a back-off (unless newer changes to the same keys have come),
        and fail its writers' L{Deferred}s.
        """
        waiting, self._inFlight = self._inFlight or [], None
        self._failures += 1
        delay = min(self.batchInterval * 2**self._failures, MAX_RETRY_DELAY)
        self.log.failure(
            "SQLite store {path}: writing {changes} changes failed; "
            "trying again in {delay} s",
            failure,
            path=self.path,
            changes=len(subscriptions) + len(publications),
            delay=delay,
        )
        for key, record in subscriptions.items():
            self._pendingSubscriptions.setdefault(key, record)
        for key, record in publications.items():
            self._pendingPublications.setdefault(key, record)
        # close() asked for this batch: it fails with it, with no retry.
        if not self._closed:
            if self._urgent:
                self._next()
            else:
                self._timer = self._reactor.callLater(delay, self._timerFired)
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
            self._timer = self._reactor.callLater(self.batchInterval, self._timerFired)

    # -- ISubscriptionStore --------------------------------------------------

    def load(self) -> Deferred[None]:
        """
        Read every stored subscription and publication into the working
        set (publications oldest first). Fails if the file cannot be opened
        or was written by a newer version (L{StoreError}), or the store is
        closed.
        """
        if self._closed:
            return fail(StoreError(f"{self.path} is closed"))
        d = self._inThread(self._readAll)
        d.addCallback(self._loaded)
        return d

    def _loaded(
        self, records: tuple[list[SubscriptionRecord], list[PublicationRecord]]
    ) -> None:
        """
        Put what L{load} read into the working set. The recent-values cache
        is unbounded meanwhile, so the records of one subscriber, scattered
        through the file, still share their values.
        """
        subscriptions, publications = records
        self._recentLimit = len(subscriptions) * 8 + 1024
        try:
            for subscription in subscriptions:
                # A change made before load() is newer than the file.
                if subscription.key not in self._pendingSubscriptions:
                    self._setSubscription(subscription)
        finally:
            self._recentLimit = RECENT_VALUES
            self._recent.clear()
        for publication in publications:
            if publication.etag not in self._pendingPublications:
                self._setPublication(publication)
        self.log.info(
            "SQLite store {path}: loaded {subscriptions} subscriptions and "
            "{publications} publications",
            path=self.path,
            subscriptions=len(subscriptions),
            publications=len(publications),
        )

    def putSubscription(self, record: SubscriptionRecord) -> Deferred[None]:
        """
        Create or replace (by C{record.key}) a subscription; fires once
        written.
        """
        self._setSubscription(record)
        self._pendingSubscriptions[record.key] = record
        return self._queued()

    def removeSubscription(self, key: str) -> Deferred[None]:
        """
        Remove a subscription; fires once the row is gone.
        """
        self._deleteSubscription(key)
        self._pendingSubscriptions[key] = None
        return self._queued()

    def putPublication(self, record: PublicationRecord) -> Deferred[None]:
        """
        Create or replace (by C{record.etag}) a publication; fires once
        written.
        """
        self._setPublication(record)
        self._pendingPublications[record.etag] = record
        return self._queued()

    def removePublication(self, etag: str) -> Deferred[None]:
        """
        Remove a publication; fires once the row is gone.
        """
        self._deletePublication(etag)
        self._pendingPublications[etag] = None
        return self._queued()

    def flush(self) -> Deferred[None]:
        """
        Write what is pending now, without waiting for C{batchInterval};
        fires once every write made so far has committed, or fails with the
        batch that could not.
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
        Flush, close the file and stop the writer thread. Writes after this
        fail with L{StoreError}; look-ups still answer from memory. Fails,
        after closing, if the last flush did (the log has the details).
        Closing again waits for, and ends as, the first close.
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
        The last flush is over: close the file and stop the thread, then
        tell who waits for L{close}.
        """
        if self._pool is None:
            self._closeFinished(result)
            return

        def stopped(closing: None | Failure) -> None:
            assert self._pool is not None
            self._pool.stop()
            if self._shutdownTrigger is not None:
                cast("IReactorCore", self._reactor).removeSystemEventTrigger(
                    self._shutdownTrigger
                )
                self._shutdownTrigger = None
            if isinstance(closing, Failure):
                self.log.failure(
                    "SQLite store {path}: closing failed", closing, path=self.path
                )
            self._closeFinished(result if isinstance(result, Failure) else closing)

        self._inThread(self._closeConnection).addBoth(stopped)

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
