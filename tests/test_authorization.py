# -*- test-case-name: tests.test_authorization -*-
"""
Tests for L{sipevents.notifier.authorization}: the default and list-based
authorizers (RFC 6665 section 4.2.1.3) and resource policies (section
4.2.1.1).
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from sipevents.interfaces import IResourcePolicy, ISubscriptionAuthorizer
from sipevents.notifier.authorization import (
    ACCEPT,
    REJECT,
    AcceptAll,
    AllResourcesKnown,
    KnownResources,
    RejectAll,
    WatcherList,
)
from sipevents.testing import buildRequest

REQUEST = buildRequest("SUBSCRIBE", headers=[("Event", "presence")])


class InterfaceTests(SynchronousTestCase):
    """
    Every provider provides its interface.
    """

    def test_verifyObject(self) -> None:
        """
        The authorizers provide L{ISubscriptionAuthorizer} and the policies
        L{IResourcePolicy}.
        """
        for authorizer in (AcceptAll(), RejectAll(), WatcherList()):
            self.assertTrue(verifyObject(ISubscriptionAuthorizer, authorizer))
        for policy in (AllResourcesKnown(), KnownResources([])):
            self.assertTrue(verifyObject(IResourcePolicy, policy))


class AuthorizerTests(SynchronousTestCase):
    """
    Decisions of the built-in authorizers (RFC 6665 section 4.2.1.3).
    """

    def test_rfc6665_4_2_1_3_acceptAll(self) -> None:
        """
        The default accepts everyone.
        """
        self.assertEqual(
            AcceptAll().authorize(
                "sip:a@127.0.0.1", "sip:b@127.0.0.1", "presence", REQUEST
            ),
            ACCEPT,
        )

    def test_rfc6665_4_2_1_3_rejectAll(self) -> None:
        """
        L{RejectAll} rejects everyone (403).
        """
        self.assertEqual(
            RejectAll().authorize(
                "sip:a@127.0.0.1", "sip:b@127.0.0.1", "presence", REQUEST
            ),
            REJECT,
        )

    def test_rfc6665_4_2_1_3_watcherList(self) -> None:
        """
        L{WatcherList}: deny patterns win, then allow patterns, then the
        default; wildcards match case-insensitively.
        """
        authorizer = WatcherList(
            allow=["sip:*@example.com", "sip:boss@*"], deny=["sip:mallory@*"]
        )
        decide = authorizer.authorize
        self.assertEqual(
            decide("sip:alice@EXAMPLE.com", "r", "presence", REQUEST), ACCEPT
        )
        self.assertEqual(decide("sip:boss@127.0.0.1", "r", "presence", REQUEST), ACCEPT)
        self.assertEqual(
            decide("sip:mallory@example.com", "r", "presence", REQUEST), REJECT
        )
        self.assertEqual(decide("sip:eve@127.0.0.1", "r", "presence", REQUEST), REJECT)
        lenient = WatcherList(deny=["sip:eve@*"], default=ACCEPT)
        self.assertEqual(
            lenient.authorize("sip:bob@127.0.0.1", "r", "presence", REQUEST), ACCEPT
        )

    def test_watcherListBadDefault(self) -> None:
        """
        A default other than accept or reject is refused.
        """
        self.assertRaises(ValueError, WatcherList, default="pending")


class ResourcePolicyTests(SynchronousTestCase):
    """
    Which resources exist (RFC 6665 section 4.2.1.1).
    """

    def test_rfc6665_4_2_1_1_allKnown(self) -> None:
        """
        By default every resource exists.
        """
        self.assertTrue(AllResourcesKnown().isKnown("sip:anyone@127.0.0.1", "presence"))

    def test_rfc6665_4_2_1_1_knownResources(self) -> None:
        """
        L{KnownResources} knows resources matching its patterns only; with
        none, no resource.
        """
        policy = KnownResources(["sip:bob@*", "tel:+1555*"])
        self.assertTrue(policy.isKnown("sip:bob@127.0.0.1", "presence"))
        self.assertTrue(policy.isKnown("tel:+15550100", "message-summary"))
        self.assertFalse(policy.isKnown("sip:carol@127.0.0.1", "presence"))
        self.assertFalse(KnownResources([]).isKnown("sip:bob@127.0.0.1", "presence"))
