# -*- test-case-name: tests.test_store_sqlite -*-
"""
The default store: the working set written behind to an SQLite file
(stdlib C{sqlite3}), so subscriptions and publications survive a restart
(DESIGN: "persistence is a store").

L{SQLiteBackend} is the L{sipevents.interfaces.IStoreBackend}: it loads
the file and writes each batch in one transaction on its own single-thread
pool (one thread, because SQLite has one writer anyway, and the
write-behind store hands over one batch at a time). L{SQLiteStore} is the
L{sipevents.store.writebehind.WriteBehindStore} over it, which batches,
coalesces, retries and says when a change is durable.

Durability: the file is in WAL mode with C{synchronous=NORMAL}. A commit
then writes the transaction to the write-ahead log, and the C{write()} has
returned to the operating system before the commit does, so a committed
transaction survives the death of the process, even by SIGKILL, which is
what the store promises its callers. It does not C{fsync} each commit
(only at checkpoints), so a power failure or a kernel crash can lose the
last transactions, never corrupt the file. C{synchronous=FULL} would add
an C{fsync} to every batch: milliseconds on real disks, for a guarantee
SIP does not need, because a subscriber whose subscription was lost finds
out at its next refresh (481) and subscribes again (RFC 6665 section
4.1.2.2 and 4.1.2.4).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from twisted.internet.defer import Deferred, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from sipevents.interfaces import IStoreBackend
from sipevents.records import PublicationRecord, SubscriptionRecord
from sipevents.store.writebehind import StoreError, WriteBehindStore

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorFromThreads, IReactorTime

_T = TypeVar("_T")
_R = TypeVar("_R", SubscriptionRecord, PublicationRecord)

#: The layout of the file; a file written by a newer version is refused.
SCHEMA_VERSION = 1

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


def _applyChanges(
    connection: sqlite3.Connection,
    changes: Mapping[str, _R | None],
    delete: str,
    put: str,
    toRow: Callable[[_R], tuple[object, ...]],
) -> None:
    """
    Writer thread, in a transaction: the deletions (C{None}) of C{changes}
    with C{delete}, then the other records, as rows, with C{put}.
    """
    deletions = [(key,) for key, record in changes.items() if record is None]
    if deletions:
        connection.executemany(delete, deletions)
    rows = [toRow(record) for record in changes.values() if record is not None]
    if rows:
        connection.executemany(put, rows)


@implementer(IStoreBackend)
class SQLiteBackend:
    """
    An SQLite file (see the module docstring for how, and why
    C{synchronous=NORMAL}), written on a thread of its own.

    Nothing is opened when the backend is made: the file is opened and the
    writer thread started by L{load} or the first batch, so a store made
    before twistd daemonizes starts its thread in the daemon (threads do
    not survive the fork).

    @ivar path: the SQLite file.
    """

    def __init__(self, reactor: IReactorFromThreads, path: str) -> None:
        """
        @param reactor: takes results back from the writer thread.
        @param path: the SQLite file, created if missing.
        """
        self.path = path
        self._reactor = reactor
        self._pool: ThreadPool | None = None
        # Used only in the writer thread.
        self._connection: sqlite3.Connection | None = None
        self._openError: BaseException | None = None

    # -- the writer thread -------------------------------------------------

    def _startPool(self) -> ThreadPool:
        """
        Start the writer thread and queue the opening of the file as its
        first job, unless done already.
        """
        if self._pool is None:
            self._pool = ThreadPool(1, 1, name=f"sipevents-sqlite:{self.path}")
            self._pool.start()
            self._pool.callInThread(self._open)
        return self._pool

    def _inThread(self, f: Callable[..., _T], *args: Any) -> Deferred[_T]:
        """
        Run C{f(*args)} on the writer thread.
        """
        return deferToThreadPool(self._reactor, self._startPool(), f, *args)

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

    def _writeBatch(
        self,
        subscriptions: Mapping[str, SubscriptionRecord | None],
        publications: Mapping[str, PublicationRecord | None],
    ) -> None:
        """
        Writer thread: write one batch of changes in one transaction.
        """
        connection = self._ready()
        connection.execute("BEGIN")
        try:
            _applyChanges(
                connection,
                subscriptions,
                _DELETE_SUBSCRIPTION,
                _PUT_SUBSCRIPTION,
                _subscriptionRow,
            )
            _applyChanges(
                connection,
                publications,
                _DELETE_PUBLICATION,
                _PUT_PUBLICATION,
                _publicationRow,
            )
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

    # -- IStoreBackend, in the reactor thread --------------------------------

    def load(
        self,
    ) -> Deferred[tuple[list[SubscriptionRecord], list[PublicationRecord]]]:
        """
        Every stored record, publications oldest first. Fails if the file
        cannot be opened or was written by a newer version (L{StoreError}).
        """
        return self._inThread(self._readAll)

    def writeBatch(
        self,
        subscriptions: Mapping[str, SubscriptionRecord | None],
        publications: Mapping[str, PublicationRecord | None],
    ) -> Deferred[None]:
        """
        Write the batch in one transaction; fires once it has committed.
        """
        return self._inThread(self._writeBatch, subscriptions, publications)

    def close(self) -> Deferred[None]:
        """
        Close the file and stop the writer thread, if started.
        """
        pool = self._pool
        if pool is None:
            return succeed(None)

        def stop(result: object) -> object:
            pool.stop()
            return result

        return self._inThread(self._closeConnection).addBoth(stop)


class SQLiteStore(WriteBehindStore):
    """
    The working set written behind to an SQLite file: a L{WriteBehindStore}
    over an L{SQLiteBackend}.

    @ivar path: the SQLite file.
    """

    backend: SQLiteBackend

    def __init__(
        self,
        reactor: IReactorTime,
        path: str,
        batchInterval: float = 0.05,
        maxBatch: int = 1000,
    ) -> None:
        """
        @param reactor: schedules batches and takes their results back from
            the writer thread, so it must also provide
            C{IReactorFromThreads} (and C{IReactorCore}, to flush before the
            reactor stops if nobody closed the store).
        @param path: the SQLite file, created if missing.
        @param batchInterval: see L{WriteBehindStore.batchInterval}.
        @param maxBatch: see L{WriteBehindStore.maxBatch}.
        """
        super().__init__(
            reactor,
            SQLiteBackend(cast("IReactorFromThreads", reactor), path),
            f"SQLite store {path}",
            batchInterval=batchInterval,
            maxBatch=maxBatch,
        )
        self.path = path
