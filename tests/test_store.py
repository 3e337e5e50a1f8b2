"""
Tests for L{sipevents.store}: L{storeFromDescription} and the L{IStore}
behaviour every store shares, run here against L{MemoryStore} (and against
L{sipevents.store.sqlite.SQLiteStore} from L{tests.test_store_sqlite}).
"""

from __future__ import annotations

import sys
from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from sipevents.interfaces import IPublicationStore, IStore, ISubscriptionStore
from sipevents.records import ACTIVE, PENDING, PublicationRecord, SubscriptionRecord
from sipevents.store import DEFAULT_SQLITE_PATH, MemoryStore, storeFromDescription


def makeSubscription(n: int = 0, **changes: Any) -> SubscriptionRecord:
    """
    A realistic subscription record, distinct for each C{n}: a 40-character
    Call-ID, 10-character tags, URIs of about 30 characters.

    @param n: makes the dialog, watcher and contact unique.
    @param changes: fields to set instead.
    """
    callId = f"{n:08x}-6f1c-4a3e-9b2d-7c5e8f1a2b3c@ua.invalid"[:40]
    localTag = f"lt{n:08x}"
    remoteTag = f"rt{n:08x}"
    eventType = changes.get("eventType", "presence")
    eventId = changes.get("eventId")
    resource = changes.get("resource", f"sip:user{n % 1000:04d}@example.invalid")
    fields: dict[str, Any] = {
        # As the notifier makes it: our tag is unique per dialog.
        "key": f"{localTag} {eventType} {eventId or ''}",
        "resource": resource,
        "eventType": eventType,
        "eventId": eventId,
        "eventParams": (),
        "state": ACTIVE,
        "expiresAt": 1_700_000_000.0 + n,
        "watcher": f"sip:watcher{n:07d}@example.invalid",
        "accept": ("application/pidf+xml",),
        "callId": callId,
        "localTag": localTag,
        "remoteTag": remoteTag,
        "localUri": f"<{resource}>",
        "remoteUri": f"sip:watcher{n:07d}@example.invalid",
        "remoteTarget": f"sip:watcher{n:07d}@127.0.0.1:{5060 + n % 1000}",
        "routeSet": (),
        "localCSeq": 100,
        "remoteCSeq": 1,
        "flowTransport": "UDP",
        "flowHost": "127.0.0.1",
        "flowPort": 5060 + n % 1000,
    }
    fields.update(changes)
    return SubscriptionRecord(**fields)


def makePublication(n: int = 0, **changes: Any) -> PublicationRecord:
    """
    A publication record, distinct for each C{n}.
    """
    fields: dict[str, Any] = {
        "etag": f"etag{n:08d}",
        "resource": "sip:alice@example.invalid",
        "eventType": "presence",
        "contentType": "application/pidf+xml",
        "body": b"<presence entity='sip:alice@example.invalid'/>",
        "expiresAt": 1_700_000_000.0 + n,
    }
    fields.update(changes)
    return PublicationRecord(**fields)


class StoreTestsMixin:
    """
    The L{IStore} behaviour of every store. A test case mixing
    it in sets C{self.store} in C{setUp}. Look-ups are synchronous in every
    store, so these tests need not wait for writes.
    """

    store: Any

    # Provided by the TestCase this is mixed into.
    assertEqual: Any
    assertIs: Any
    assertIsNone: Any
    assertTrue: Any

    def test_verifyObject(self) -> None:
        """
        The store provides L{IStore}: the notifier's L{ISubscriptionStore}
        and the publication manager's L{IPublicationStore}.
        """
        for interface in (IStore, ISubscriptionStore, IPublicationStore):
            self.assertTrue(verifyObject(interface, self.store))

    def test_putGetSubscription(self) -> None:
        """
        A subscription put is found by its key; an unknown key gives
        C{None}.
        """
        record = makeSubscription(1)
        self.store.putSubscription(record)
        self.assertEqual(self.store.getSubscription(record.key), record)
        self.assertIsNone(self.store.getSubscription("no such key"))

    def test_replaceSubscription(self) -> None:
        """
        Putting a record with the key of an existing one replaces it
        everywhere: by key, by dialog, by resource, in the full list.
        """
        record = makeSubscription(1, state=PENDING)
        self.store.putSubscription(record)
        refreshed = record.evolve(state=ACTIVE, expiresAt=2e9, localCSeq=200)
        self.store.putSubscription(refreshed)
        self.assertEqual(self.store.getSubscription(record.key), refreshed)
        self.assertEqual(
            self.store.subscriptionsByDialog(
                record.callId, record.localTag, record.remoteTag
            ),
            [refreshed],
        )
        self.assertEqual(
            self.store.subscriptionsByResource(record.resource), [refreshed]
        )
        self.assertEqual(self.store.allSubscriptions(), [refreshed])

    def test_removeSubscription(self) -> None:
        """
        A removed subscription is gone from every look-up; removing an
        unknown key does nothing.
        """
        record = makeSubscription(1)
        other = makeSubscription(1001)
        self.assertEqual(record.resource, other.resource)
        self.store.putSubscription(record)
        self.store.putSubscription(other)
        self.store.removeSubscription(record.key)
        self.store.removeSubscription("no such key")
        self.assertIsNone(self.store.getSubscription(record.key))
        self.assertEqual(
            self.store.subscriptionsByDialog(
                record.callId, record.localTag, record.remoteTag
            ),
            [],
        )
        self.assertEqual(self.store.subscriptionsByResource(record.resource), [other])
        self.assertEqual(self.store.allSubscriptions(), [other])

    def test_rfc6665_4_5_2_dialogSharing(self) -> None:
        """
        Several subscriptions in one dialog (RFC 6665 section 4.5.2: same
        dialog, another event type or C{id}) are all found by the dialog,
        and each goes away alone.
        """
        first = makeSubscription(1)
        second = makeSubscription(1, eventType="message-summary")
        third = makeSubscription(1, eventId="7")
        for record in (first, second, third):
            self.store.putSubscription(record)
        dialog = (first.callId, first.localTag, first.remoteTag)
        self.assertEqual(
            self.store.subscriptionsByDialog(*dialog), [first, second, third]
        )
        self.store.removeSubscription(second.key)
        self.assertEqual(self.store.subscriptionsByDialog(*dialog), [first, third])
        self.store.removeSubscription(first.key)
        self.assertEqual(self.store.subscriptionsByDialog(*dialog), [third])
        self.store.removeSubscription(third.key)
        self.assertEqual(self.store.subscriptionsByDialog(*dialog), [])

    def test_rfc6665_4_5_2_dialogSharingKeyedByTag(self) -> None:
        """
        As the notifier keys them, the first subscription of a dialog keyed
        by the local tag alone and the others by tag, event type and C{id}:
        all are found by the dialog, in the order they were created,
        whichever goes first, and each goes away alone.
        """
        first = makeSubscription(1)
        first = first.evolve(key=first.localTag)
        second = makeSubscription(1, eventType="message-summary")
        third = makeSubscription(1, eventId="7")
        dialog = (first.callId, first.localTag, first.remoteTag)
        for order in ((first, second, third), (second, first, third)):
            for record in order:
                self.store.putSubscription(record)
            self.assertEqual(self.store.subscriptionsByDialog(*dialog), list(order))
            self.store.putSubscription(first.evolve(remoteCSeq=2))
            self.assertEqual(
                [r.key for r in self.store.subscriptionsByDialog(*dialog)],
                [r.key for r in order],
            )
            self.store.removeSubscription(second.key)
            self.store.removeSubscription(third.key)
            self.assertEqual(
                self.store.subscriptionsByDialog(*dialog),
                [first.evolve(remoteCSeq=2)],
            )
            self.store.putSubscription(third)
            self.store.removeSubscription(first.key)
            self.assertEqual(self.store.subscriptionsByDialog(*dialog), [third])
            self.store.removeSubscription(third.key)
            self.assertEqual(self.store.subscriptionsByDialog(*dialog), [])

    def test_rfc3261_12_keyedByTagDialogMatch(self) -> None:
        """
        A subscription keyed by its local tag is found only by its own
        dialog: the Call-ID and remote tag must match too, and a record
        whose key looks like another dialog's local tag is not in that
        dialog.
        """
        record = makeSubscription(1)
        record = record.evolve(key=record.localTag)
        other = makeSubscription(2, key=record.localTag + "x")
        self.store.putSubscription(record)
        self.store.putSubscription(other)
        self.assertEqual(
            self.store.subscriptionsByDialog(
                record.callId, record.localTag, record.remoteTag
            ),
            [record],
        )
        self.assertEqual(
            self.store.subscriptionsByDialog(
                "other", record.localTag, record.remoteTag
            ),
            [],
        )
        self.assertEqual(
            self.store.subscriptionsByDialog(record.callId, record.localTag, "other"),
            [],
        )
        moved = record.evolve(localTag="lt-moved")
        self.store.putSubscription(moved)
        self.assertEqual(
            self.store.subscriptionsByDialog(
                record.callId, record.localTag, record.remoteTag
            ),
            [],
        )
        self.assertEqual(
            self.store.subscriptionsByDialog(
                record.callId, "lt-moved", record.remoteTag
            ),
            [moved],
        )

    def test_rfc3261_12_dialogTagsMatch(self) -> None:
        """
        A dialog is the Call-ID and both tags (RFC 3261 section 12): a
        subscription with the same Call-ID and other tags is not in it.
        """
        record = makeSubscription(1)
        sibling = makeSubscription(2, callId=record.callId, key="sibling")
        self.store.putSubscription(record)
        self.store.putSubscription(sibling)
        self.assertEqual(
            self.store.subscriptionsByDialog(
                record.callId, record.localTag, record.remoteTag
            ),
            [record],
        )
        self.assertEqual(
            self.store.subscriptionsByDialog(
                record.callId, sibling.localTag, sibling.remoteTag
            ),
            [sibling],
        )
        self.assertEqual(
            self.store.subscriptionsByDialog(
                record.callId, record.localTag, sibling.remoteTag
            ),
            [],
        )
        self.assertEqual(
            self.store.subscriptionsByDialog("unknown", "a", "b"),
            [],
        )

    def test_subscriptionsByResource(self) -> None:
        """
        Every watcher of a resource is found, filtered by event type when
        one is given, in the order they subscribed.
        """
        records = [makeSubscription(n) for n in (1, 1001, 2001)]
        summary = makeSubscription(3001, eventType="message-summary")
        elsewhere = makeSubscription(2)
        for record in [*records, summary, elsewhere]:
            self.store.putSubscription(record)
        resource = records[0].resource
        self.assertEqual(
            self.store.subscriptionsByResource(resource), [*records, summary]
        )
        self.assertEqual(
            self.store.subscriptionsByResource(resource, "presence"), records
        )
        self.assertEqual(
            self.store.subscriptionsByResource(resource, "message-summary"),
            [summary],
        )
        self.assertEqual(self.store.subscriptionsByResource(resource, "dialog"), [])
        self.assertEqual(self.store.subscriptionsByResource("sip:nobody@x"), [])

    def test_replaceMovesResource(self) -> None:
        """
        A record whose resource changes on replace moves from the old
        resource's index entry to the new one.
        """
        record = makeSubscription(1)
        stays = makeSubscription(1001)
        self.store.putSubscription(record)
        self.store.putSubscription(stays)
        moved = record.evolve(resource="sip:carol@example.invalid")
        self.store.putSubscription(moved)
        self.assertEqual(self.store.subscriptionsByResource(record.resource), [stays])
        self.assertEqual(
            self.store.subscriptionsByResource("sip:carol@example.invalid"), [moved]
        )
        self.store.removeSubscription(moved.key)
        self.assertEqual(
            self.store.subscriptionsByResource("sip:carol@example.invalid"), []
        )

    def test_replaceMovesDialog(self) -> None:
        """
        A record whose dialog changes on replace is found by its new dialog
        only.
        """
        record = makeSubscription(1)
        self.store.putSubscription(record)
        moved = record.evolve(callId="another-call-id", localTag="x")
        self.store.putSubscription(moved)
        self.assertEqual(
            self.store.subscriptionsByDialog(
                record.callId, record.localTag, record.remoteTag
            ),
            [],
        )
        self.assertEqual(
            self.store.subscriptionsByDialog("another-call-id", "x", record.remoteTag),
            [moved],
        )

    def test_manyWatchersOneResource(self) -> None:
        """
        A resource with many watchers keeps them all through puts, replaces
        and removes, down to none.
        """
        records = [makeSubscription(n * 1000) for n in range(50)]
        for record in records:
            self.store.putSubscription(record)
        resource = records[0].resource
        for record in records[::2]:
            self.store.putSubscription(record.evolve(localCSeq=300))
        for record in records[1::2]:
            self.store.removeSubscription(record.key)
        self.assertEqual(
            [r.key for r in self.store.subscriptionsByResource(resource)],
            [r.key for r in records[::2]],
        )
        for record in records[::2]:
            self.store.removeSubscription(record.key)
        self.assertEqual(self.store.subscriptionsByResource(resource), [])
        self.assertEqual(self.store.allSubscriptions(), [])

    def test_putGetPublication(self) -> None:
        """
        A publication put is found by its entity-tag (RFC 3903 section
        4.1); an unknown one gives C{None}.
        """
        record = makePublication(1)
        self.store.putPublication(record)
        self.assertEqual(self.store.getPublication(record.etag), record)
        self.assertIsNone(self.store.getPublication("unknown"))
        self.assertEqual(self.store.allPublications(), [record])

    def test_rfc3903_4_4_publicationsOldestFirst(self) -> None:
        """
        The publications of a resource come oldest first (RFC 3903 section
        4.4: they are composed in order); a refreshed or modified one keeps
        its place; other resources and event types are apart.
        """
        records = [makePublication(n) for n in range(3)]
        other = makePublication(10, eventType="message-summary")
        elsewhere = makePublication(11, resource="sip:bob@example.invalid")
        for record in [*records, other, elsewhere]:
            self.store.putPublication(record)
        modified = records[0].evolve(body=b"<presence/>", expiresAt=2e9)
        self.store.putPublication(modified)
        self.assertEqual(
            self.store.publicationsByResource("sip:alice@example.invalid", "presence"),
            [modified, *records[1:]],
        )
        self.assertEqual(
            self.store.publicationsByResource(
                "sip:alice@example.invalid", "message-summary"
            ),
            [other],
        )
        self.assertEqual(
            self.store.publicationsByResource("sip:nobody@example.invalid", "x"),
            [],
        )

    def test_rfc3903_6_removePublication(self) -> None:
        """
        A removed publication (RFC 3903 section 6, C{Expires: 0}) is gone
        from every look-up; removing an unknown entity-tag does nothing.
        """
        records = [makePublication(n) for n in range(2)]
        for record in records:
            self.store.putPublication(record)
        self.store.removePublication(records[0].etag)
        self.store.removePublication("unknown")
        self.assertIsNone(self.store.getPublication(records[0].etag))
        self.assertEqual(
            self.store.publicationsByResource("sip:alice@example.invalid", "presence"),
            [records[1]],
        )
        self.store.removePublication(records[1].etag)
        self.assertEqual(
            self.store.publicationsByResource("sip:alice@example.invalid", "presence"),
            [],
        )
        self.assertEqual(self.store.allPublications(), [])

    def test_publicationMovesResource(self) -> None:
        """
        A publication replaced with another resource moves index entry.
        """
        record = makePublication(1)
        self.store.putPublication(record)
        moved = record.evolve(resource="sip:bob@example.invalid")
        self.store.putPublication(moved)
        self.assertEqual(
            self.store.publicationsByResource("sip:alice@example.invalid", "presence"),
            [],
        )
        self.assertEqual(
            self.store.publicationsByResource("sip:bob@example.invalid", "presence"),
            [moved],
        )

    def test_applicationPublicationNeverExpires(self) -> None:
        """
        A publication set by the application has no expiry (C{None}), and
        the store keeps it so.
        """
        record = makePublication(1, etag="app0123", expiresAt=None)
        self.store.putPublication(record)
        found = self.store.getPublication("app0123")
        self.assertIsNone(found.expiresAt)

    def test_sharedValues(self) -> None:
        """
        Values many records repeat are shared objects once stored (memory:
        one copy per distinct value), and the records are equal to what was
        put.
        """
        first = makeSubscription(1, accept=("application/pidf+xml", "x/y"))
        second = makeSubscription(1001, accept=("application/pidf+xml", "x/y"))
        expected = (first.evolve(), second.evolve())
        self.store.putSubscription(first)
        self.store.putSubscription(second)
        a = self.store.getSubscription(first.key)
        b = self.store.getSubscription(second.key)
        self.assertEqual((a, b), expected)
        self.assertIs(a.resource, b.resource)
        self.assertIs(a.accept, b.accept)
        self.assertIs(a.flowPort, b.flowPort)
        self.assertIs(a.eventType, sys.intern("presence"))


class MemoryStoreTests(StoreTestsMixin, SynchronousTestCase):
    """
    L{MemoryStore}.
    """

    def setUp(self) -> None:
        self.store = MemoryStore()

    def test_writesFireAtOnce(self) -> None:
        """
        Every write's L{Deferred} has fired already: the memory store has no
        disk to wait on.
        """
        record = makeSubscription(1)
        for d in (
            self.store.load(),
            self.store.putSubscription(record),
            self.store.removeSubscription(record.key),
            self.store.putPublication(makePublication(1)),
            self.store.removePublication("etag00000001"),
            self.store.flush(),
            self.store.close(),
        ):
            self.assertIsNone(self.successResultOf(d))

    def test_indexEntriesCollapse(self) -> None:
        """
        An index entry shared by several records goes back to the bare
        record when one is left, and away when none is (the compact layout
        of the module docstring).
        """
        first = makeSubscription(1)
        second = makeSubscription(1001)
        self.store.putSubscription(first)
        self.assertIs(self.store._byResource[first.resource], first)
        self.store.putSubscription(second)
        self.assertEqual(
            self.store._byResource[first.resource],
            {first.key: first, second.key: second},
        )
        self.store.removeSubscription(first.key)
        self.assertIs(self.store._byResource[first.resource], second)
        self.store.removeSubscription(second.key)
        self.assertNotIn(first.resource, self.store._byResource)
        self.assertEqual(self.store._byDialog, {})

    def test_dialogIndexImplied(self) -> None:
        """
        A subscription keyed by its local tag and alone in its dialog has
        no dialog index entry (the record index finds it); it gets one
        while another subscription shares its dialog, and loses it again.
        """
        first = makeSubscription(1)
        first = first.evolve(key=first.localTag)
        second = makeSubscription(1, eventType="message-summary")
        self.store.putSubscription(first)
        self.assertEqual(self.store._byDialog, {})
        self.store.putSubscription(second)
        self.assertEqual(
            self.store._byDialog,
            {first.localTag: {first.key: first, second.key: second}},
        )
        self.store.removeSubscription(second.key)
        self.assertEqual(self.store._byDialog, {})


class StoreFromDescriptionTests(SynchronousTestCase):
    """
    L{storeFromDescription}: the C{--store} option.
    """

    def test_memory(self) -> None:
        """
        C{memory} is a L{MemoryStore}.
        """
        self.assertIsInstance(storeFromDescription("memory", Clock()), MemoryStore)

    def test_sqlitePath(self) -> None:
        """
        C{sqlite:PATH} is an SQLite store in C{PATH}, not opened yet.
        """
        from sipevents.store.sqlite import SQLiteStore

        path = self.mktemp()
        store = storeFromDescription(f"sqlite:{path}", Clock())
        self.assertIsInstance(store, SQLiteStore)
        assert isinstance(store, SQLiteStore)
        self.assertEqual(store.path, path)

    def test_sqliteDefault(self) -> None:
        """
        C{sqlite} alone is an SQLite store in L{DEFAULT_SQLITE_PATH}.
        """
        from sipevents.store.sqlite import SQLiteStore

        store = storeFromDescription("sqlite", Clock())
        assert isinstance(store, SQLiteStore)
        self.assertEqual(store.path, DEFAULT_SQLITE_PATH)
        self.assertEqual(DEFAULT_SQLITE_PATH, "sipevents.sqlite")

    def test_unknown(self) -> None:
        """
        Anything else is a L{ValueError} whose message names the choices.
        """
        for description in ("redis", "", "memory:x", "sqlite:", "SQLite:x"):
            error = self.assertRaises(
                ValueError, storeFromDescription, description, Clock()
            )
            self.assertIn("sqlite:PATH", str(error))
