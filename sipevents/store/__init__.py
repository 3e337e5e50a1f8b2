# -*- test-case-name: tests.test_store -*-
"""
Stores of subscriptions and publications (DESIGN: "persistence is a
store"): one write-behind layer (L{sipevents.store.writebehind}: the
working set, batching, coalescing, retries, durability L{Deferred}s) over
small backends (L{sipevents.interfaces.IStoreBackend}).
L{MemoryStore} keeps nothing beyond its working set, for tests and
throw-away servers; L{sipevents.store.sqlite.SQLiteStore} (the default)
keeps its subscribers across restarts. They are chosen with C{--store
memory} or C{--store sqlite:PATH}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sipevents.store.memory import MemoryStore

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

    from sipevents.interfaces import IStore

__all__ = ["MemoryStore", "storeFromDescription", "DEFAULT_SQLITE_PATH"]

#: The SQLite file of C{--store sqlite} without a path, relative to the
#: server's working directory (twistd's C{--rundir}).
DEFAULT_SQLITE_PATH = "sipevents.sqlite"


def storeFromDescription(description: str, reactor: IReactorTime) -> IStore:
    """
    The store a C{--store} option names.

      - C{memory}: a L{MemoryStore}; nothing survives a restart.
      - C{sqlite:PATH}: an L{sipevents.store.sqlite.SQLiteStore} in the file
        C{PATH} (created if missing; relative to the working directory).
      - C{sqlite}: the same in L{DEFAULT_SQLITE_PATH}.

    Nothing is opened here: the SQLite store opens its file and starts its
    writer thread on first use, after twistd has daemonized (threads do not
    survive the fork).

    @param description: the option's value.
    @param reactor: the reactor the store schedules its batched writes on
        and closes with; it must also provide C{IReactorFromThreads} for
        SQLite, whose writes come back from a thread.
    @raise ValueError: for any other description, with a message fit for a
        usage error.
    """
    kind, sep, argument = description.partition(":")
    if kind == "memory" and not sep:
        return MemoryStore(reactor)
    if kind == "sqlite":
        if sep and not argument:
            raise ValueError("--store sqlite:PATH needs a file name after the colon")
        from sipevents.store.sqlite import SQLiteStore

        return SQLiteStore(reactor, argument if sep else DEFAULT_SQLITE_PATH)
    raise ValueError(
        f"unknown store {description!r}: use 'memory', 'sqlite' or 'sqlite:PATH'"
    )
