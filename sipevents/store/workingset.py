# -*- test-case-name: tests.test_store -*-
"""
The in-memory working set of subscriptions and publications, under every
store (L{sipevents.store.writebehind.WriteBehindStore}): the look-ups of
L{sipevents.interfaces.ISubscriptionStore} and
L{sipevents.interfaces.IPublicationStore}, and the changes the store makes
before it writes them behind to its backend.

Look-ups are synchronous: the notifier finds a subscription by dialog for
every in-dialog SUBSCRIBE (RFC 6665 section 4.2.1) and every watcher of a
resource for every state change (RFC 6665 section 4.2.2) without waiting on
anything.

Memory is the point of the layout (the target is at most 1 KiB per idle
subscription for the whole server):

  - There are no per-record index objects. Each index maps a string that
    the record already holds (the Call-ID, the resource key) to either the
    record itself, when it is the only one, or a C{dict} from record key to
    record when there are several (dialog sharing, RFC 6665 section 4.5.2;
    many watchers of one resource). A shared C{dict} goes back to a bare
    record when its second-to-last entry leaves.
  - The dialog index is keyed by local tag alone and the resource index
    by resource alone; the rest of the key (Call-ID, remote tag, event
    type) is checked on look-up. That avoids a tuple per record (64 bytes
    each) at the cost of a comparison; our local tags are unique to a
    dialog, while one resource rarely carries more than a couple of event
    packages.
  - A record whose key is its local tag (the notifier keys the first
    subscription of each dialog so) is found in the dialog index through
    the record index itself: it has a dialog index entry only while other
    records share its dialog (RFC 6665 section 4.5.2). With one
    subscription per dialog, the usual case, that saves a C{dict} entry
    per record (40 to 50 bytes).
  - Values that many records repeat are made to share one object: the
    resource (and our own URI) with the records already indexed under it,
    event types and transports through L{sys.intern}, and what one
    subscriber repeats in each of its subscriptions (its URIs, contact,
    address, Accept list, route set) through a small cache of recent
    values. Records are immutable values, so the store swaps equal-valued
    fields for the shared object in place when a record is put: nothing
    observable changes, and no second record is allocated. Values unique
    to one dialog (Call-ID, tags, key) are left alone, and so are values
    seen once: an interning table entry (about 40 bytes) would cost more
    than it saves.
"""

from __future__ import annotations

import sys
from typing import TypeAlias

from sipevents.records import PublicationRecord, SubscriptionRecord

#: An index: a string a record holds to the record, or to several by key.
_Index: TypeAlias = "dict[str, SubscriptionRecord | dict[str, SubscriptionRecord]]"

#: Fields of L{SubscriptionRecord} with few distinct values in a server
#: (event packages, transports): interned for good.
_INTERNED_SUBSCRIPTION_FIELDS = ("eventType", "flowTransport")

#: Fields of L{SubscriptionRecord} that one subscriber repeats in each of
#: its subscriptions (a phone subscribing to its buddy list or BLF keys in
#: a burst), shared through the recent-values cache.
_RECENT_SUBSCRIPTION_FIELDS = (
    "watcher",
    "remoteUri",
    "remoteTarget",
    "flowHost",
    "flowPort",
    "accept",
    "eventParams",
    "routeSet",
)

#: Fields of L{PublicationRecord} with few distinct values, interned.
_INTERNED_PUBLICATION_FIELDS = ("resource", "eventType", "contentType")

#: How many distinct values the recent-values cache holds before it starts
#: afresh: a fixed cost for the server (about 100 KiB), not one per record.
RECENT_VALUES = 1024

_intern = sys.intern
_setField = object.__setattr__


def _internFields(
    record: SubscriptionRecord | PublicationRecord, names: tuple[str, ...]
) -> None:
    """
    Swap the string fields C{names} of the frozen C{record} for their
    interned equals, in place (see the module docstring).
    """
    for name in names:
        value = getattr(record, name)
        if type(value) is str:
            shared = _intern(value)
            if shared is not value:
                _setField(record, name, shared)


def _indexAdd(index: _Index, indexKey: str, record: SubscriptionRecord) -> None:
    """
    Add C{record} to the entry C{indexKey} of C{index}: the bare record when
    it is alone, else a C{dict} from record key to record.
    """
    current = index.get(indexKey)
    if current is None:
        index[indexKey] = record
    elif isinstance(current, SubscriptionRecord):
        if current.key == record.key:
            index[indexKey] = record
        else:
            index[indexKey] = {current.key: current, record.key: record}
    else:
        current[record.key] = record


def _indexRemove(index: _Index, indexKey: str, key: str) -> None:
    """
    Remove the record with C{key} from the entry C{indexKey} of C{index},
    going back to a bare record when one is left.
    """
    current = index.get(indexKey)
    if current is None:
        return
    if isinstance(current, SubscriptionRecord):
        if current.key == key:
            del index[indexKey]
        return
    current.pop(key, None)
    if len(current) == 1:
        index[indexKey] = next(iter(current.values()))
    elif not current:
        del index[indexKey]


def _indexValues(index: _Index, indexKey: str) -> list[SubscriptionRecord]:
    """
    The records in the entry C{indexKey} of C{index}, in insertion order.
    """
    current = index.get(indexKey)
    if current is None:
        return []
    if isinstance(current, SubscriptionRecord):
        return [current]
    return list(current.values())


class WorkingSet:
    """
    Subscriptions and publications in memory (see the module docstring for
    the layout): the synchronous look-ups, and the changes a store makes
    (C{_setSubscription} and friends) before writing them behind.

    @ivar _subscriptions: record key to subscription.
    @ivar _byDialog: local tag to the subscription(s) in dialogs with it,
        but for a record keyed by its local tag and alone in its dialog
        (see L{_dialogValues}).
    @ivar _byResource: resource key to the subscription(s) to it.
    @ivar _publications: entity-tag to publication.
    @ivar _publicationsByResource: (resource, event type) to the
        publications, entity-tag to record, oldest first (RFC 3903 section
        4.4: the package composes them in order).
    @ivar _recent: recently stored values, each mapped to itself, for
        sharing; emptied when it reaches C{_recentLimit} entries.
    @ivar _recentLimit: L{RECENT_VALUES}, or more while a whole store is
        loaded at once.
    """

    def __init__(self) -> None:
        self._subscriptions: dict[str, SubscriptionRecord] = {}
        self._byDialog: _Index = {}
        self._byResource: _Index = {}
        self._publications: dict[str, PublicationRecord] = {}
        self._publicationsByResource: dict[
            tuple[str, str], dict[str, PublicationRecord]
        ] = {}
        self._recent: dict[object, object] = {}
        self._recentLimit = RECENT_VALUES

    # -- changes, made by the store that owns the working set -------------

    def _share(self, record: SubscriptionRecord) -> None:
        """
        Make C{record}'s repeated values shared objects (see the module
        docstring): equal values replace equal values, so the frozen record
        is unchanged as a value.

          - The resource, and our own URI when it is written alike, come
            from a record already stored for the resource: the index
            entry finds it, so this sharing costs nothing per value.
          - Event type and transport are interned: a server sees few.
          - Values one subscriber repeats (its URIs, contact, address,
            Accept list, route set) go through a small cache of recent
            values, which costs a fixed amount rather than an interning
            table entry (about 40 bytes) for each value seen only once.
        """
        current = self._byResource.get(record.resource)
        if current is not None:
            other = (
                current
                if isinstance(current, SubscriptionRecord)
                else next(iter(current.values()))
            )
            if other.resource is not record.resource:
                _setField(record, "resource", other.resource)
            if other.localUri is not record.localUri and other.localUri == (
                record.localUri
            ):
                _setField(record, "localUri", other.localUri)
        if record.localUri == record.resource:
            _setField(record, "localUri", record.resource)
        _internFields(record, _INTERNED_SUBSCRIPTION_FIELDS)
        recent = self._recent
        for name in _RECENT_SUBSCRIPTION_FIELDS:
            value = getattr(record, name)
            known = recent.get(value)
            if known is None:
                if len(recent) >= self._recentLimit:
                    recent.clear()
                recent[value] = value
            elif known is not value:
                _setField(record, name, known)

    def _setSubscription(self, record: SubscriptionRecord) -> None:
        """
        Create or replace C{record} in the working set, moving it between
        index entries when its dialog or resource changed.
        """
        self._share(record)
        key = record.key
        old = self._subscriptions.get(key)
        self._subscriptions[key] = record
        if old is not None:
            if old.localTag != record.localTag:
                self._dialogRemove(old.localTag, key)
            if old.resource != record.resource:
                _indexRemove(self._byResource, old.resource, key)
        self._dialogAdd(record)
        _indexAdd(self._byResource, record.resource, record)

    def _dialogAdd(self, record: SubscriptionRecord) -> None:
        """
        Index C{record} (already in C{_subscriptions}) by its local tag,
        leaving a record keyed by its local tag and alone in its dialog
        implied (see the module docstring).
        """
        tag = record.localTag
        byDialog = self._byDialog
        if tag not in byDialog:
            if record.key == tag:
                return
            implied = self._subscriptions.get(tag)
            if implied is not None and implied.localTag == tag:
                # It joins an implied record: both are indexed now, the
                # older first.
                byDialog[tag] = {tag: implied, record.key: record}
                return
        _indexAdd(byDialog, tag, record)

    def _dialogRemove(self, tag: str, key: str) -> None:
        """
        Take the record C{key} out of the dialog index entry C{tag}; a
        record keyed by C{tag} left alone there goes back to being implied.
        """
        byDialog = self._byDialog
        if tag not in byDialog:
            return
        _indexRemove(byDialog, tag, key)
        current = byDialog.get(tag)
        if isinstance(current, SubscriptionRecord) and current.key == tag:
            del byDialog[tag]

    def _dialogValues(self, tag: str) -> list[SubscriptionRecord]:
        """
        The records whose local tag may be C{tag}, in the order they were
        created: the dialog index entry, or else the record keyed by C{tag}.
        """
        if tag in self._byDialog:
            return _indexValues(self._byDialog, tag)
        implied = self._subscriptions.get(tag)
        return [] if implied is None else [implied]

    def _deleteSubscription(self, key: str) -> None:
        """
        Remove the subscription C{key} from the working set, if there.
        """
        old = self._subscriptions.pop(key, None)
        if old is not None:
            self._dialogRemove(old.localTag, key)
            _indexRemove(self._byResource, old.resource, key)

    def _setPublication(self, record: PublicationRecord) -> None:
        """
        Create or replace C{record} in the working set. A replaced one keeps
        its place among the publications of its resource (its age is that
        of its entity-tag); one that moves to another resource or event
        type goes last there.
        """
        _internFields(record, _INTERNED_PUBLICATION_FIELDS)
        etag = record.etag
        old = self._publications.get(etag)
        self._publications[etag] = record
        indexKey = (record.resource, record.eventType)
        if old is not None and (old.resource, old.eventType) != indexKey:
            self._unindexPublication(old)
        self._publicationsByResource.setdefault(indexKey, {})[etag] = record

    def _deletePublication(self, etag: str) -> None:
        """
        Remove the publication C{etag} from the working set, if there.
        """
        old = self._publications.pop(etag, None)
        if old is not None:
            self._unindexPublication(old)

    def _unindexPublication(self, record: PublicationRecord) -> None:
        """
        Take C{record} out of the by-resource index.
        """
        indexKey = (record.resource, record.eventType)
        entry = self._publicationsByResource.get(indexKey)
        if entry is not None:
            entry.pop(record.etag, None)
            if not entry:
                del self._publicationsByResource[indexKey]

    # -- look-ups (ISubscriptionStore and IPublicationStore) --------------

    def getSubscription(self, key: str) -> SubscriptionRecord | None:
        """
        The subscription with C{key}, or C{None}.
        """
        return self._subscriptions.get(key)

    def subscriptionsByDialog(
        self, callId: str, localTag: str, remoteTag: str
    ) -> list[SubscriptionRecord]:
        """
        Every subscription in the dialog (RFC 3261 section 12: Call-ID,
        local tag, remote tag), several with RFC 6665 section 4.5.2 dialog
        sharing, in the order they were created.
        """
        return [
            record
            for record in self._dialogValues(localTag)
            if record.localTag == localTag
            and record.callId == callId
            and record.remoteTag == remoteTag
        ]

    def subscriptionsByResource(
        self, resource: str, eventType: str | None = None
    ) -> list[SubscriptionRecord]:
        """
        Every subscription to C{resource} (of C{eventType} when given), in
        the order they were created.
        """
        records = _indexValues(self._byResource, resource)
        if eventType is None:
            return records
        return [record for record in records if record.eventType == eventType]

    def allSubscriptions(self) -> list[SubscriptionRecord]:
        """
        Every subscription.
        """
        return list(self._subscriptions.values())

    def getPublication(self, etag: str) -> PublicationRecord | None:
        """
        The publication with entity-tag C{etag}, or C{None}.
        """
        return self._publications.get(etag)

    def publicationsByResource(
        self, resource: str, eventType: str
    ) -> list[PublicationRecord]:
        """
        Every publication of C{resource} for C{eventType}, oldest first.
        """
        entry = self._publicationsByResource.get((resource, eventType))
        if entry is None:
            return []
        return list(entry.values())

    def allPublications(self) -> list[PublicationRecord]:
        """
        Every publication.
        """
        return list(self._publications.values())
