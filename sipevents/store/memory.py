# -*- test-case-name: tests.test_store -*-
"""
The store that keeps nothing beyond its working set: for tests and for
servers that need not survive a restart (C{--store memory}).

L{MemoryBackend} is the L{sipevents.interfaces.IStoreBackend} with nowhere
to write: it loads nothing and makes every batch durable at once.
L{MemoryStore} is the L{sipevents.store.writebehind.WriteBehindStore} over
it that hands each change over at once, so every write's L{Deferred} has
fired before the write returns and callers written for a slower store work
unchanged. Nothing is kept but the working set itself, so a subscription
costs no more memory here than the working set's layout
(L{sipevents.store.workingset}).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from zope.interface import implementer

from sipevents.interfaces import IStoreBackend
from sipevents.records import PublicationRecord, SubscriptionRecord
from sipevents.store.writebehind import WriteBehindStore

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime


@implementer(IStoreBackend)
class MemoryBackend:
    """
    A backend with nowhere to write: nothing was stored before, and every
    batch is as durable as it gets at once.
    """

    def load(
        self,
    ) -> Deferred[tuple[list[SubscriptionRecord], list[PublicationRecord]]]:
        """
        Nothing was stored before: a memory store starts empty.
        """
        return succeed(([], []))

    def writeBatch(
        self,
        subscriptions: Mapping[str, SubscriptionRecord | None],
        publications: Mapping[str, PublicationRecord | None],
    ) -> Deferred[None]:
        """
        Nothing to write: the working set is all there is.
        """
        return succeed(None)

    def close(self) -> Deferred[None]:
        """
        Nothing to release.
        """
        return succeed(None)


class MemoryStore(WriteBehindStore):
    """
    Subscriptions and publications in memory only: a L{WriteBehindStore}
    over a L{MemoryBackend} that hands each change over at once, so its
    L{Deferred}s have fired before the write returns.
    """

    def __init__(self, clock: IReactorTime | None = None) -> None:
        """
        @param clock: the reactor, so that the store closes with it; none
            is needed otherwise, since this backend never fails and so
            nothing is ever retried later.
        """
        super().__init__(
            Clock() if clock is None else clock,
            MemoryBackend(),
            "memory store",
            batchInterval=0,
        )
