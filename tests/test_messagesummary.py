# -*- test-case-name: tests.test_messagesummary -*-
"""
Tests for L{sipevents.packages.messagesummary}: the message-summary event
package (RFC 3842) and its C{application/simple-message-summary} bodies.
"""

from __future__ import annotations

from twisted.plugin import IPlugin
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from sipevents.errors import SIPError
from sipevents.interfaces import IEventPackage
from sipevents.packages.messagesummary import (
    MAX_COUNT,
    MESSAGE_SUMMARY_TYPE,
    MessageCounts,
    MessageSummary,
    MessageSummaryPackage,
    parseMessageSummary,
)
from sipevents.records import PENDING
from tests.test_presence import subscription

#: RFC 3842 section 4.1, A3.
SYNC = (
    b"Messages-Waiting: yes\r\n"
    b"Message-Account: sip:alice@vmail.example.com\r\n"
    b"Voice-Message: 2/8 (0/2)\r\n"
)

#: RFC 3842 section 4.1, A5: with message headers after the summary.
WITH_HEADERS = (
    b"Messages-Waiting: yes\r\n"
    b"Message-Account: sip:alice@vmail.example.com\r\n"
    b"Voice-Message: 4/8 (1/2)\r\n"
    b"\r\n"
    b"To: <alice@atlanta.example.com>\r\n"
    b"From: <bob@biloxi.example.com>\r\n"
    b"Subject: carpool tomorrow?\r\n"
    b"Date: Sun, 09 Jul 2000 21:23:01 -0700\r\n"
    b"Priority: normal\r\n"
    b"Message-ID: 13784434989@vmail.example.com\r\n"
)


class ParseTests(SynchronousTestCase):
    """
    L{parseMessageSummary} follows the grammar of RFC 3842 section 5.2 and
    answers 400 for what does not.
    """

    def assertBad(self, body: bytes, reason: str) -> None:
        error = self.assertRaises(SIPError, parseMessageSummary, body)
        self.assertEqual(error.status, 400)
        self.assertIn(reason, error.reason)

    def test_rfc3842_4_1_example(self) -> None:
        """
        The example body of RFC 3842 section 4.1 parses.
        """
        self.assertEqual(
            parseMessageSummary(SYNC),
            MessageSummary(
                True,
                "sip:alice@vmail.example.com",
                (MessageCounts("Voice-Message", 2, 8, 0, 2),),
            ),
        )

    def test_rfc3842_3_5_statusOnly(self) -> None:
        """
        A body may be the status line alone (RFC 3842 section 3.5), with or
        without its final CRLF.
        """
        self.assertEqual(
            parseMessageSummary(b"Messages-Waiting: no\r\n"), MessageSummary(False)
        )
        self.assertEqual(
            parseMessageSummary(b"Messages-Waiting: yes"), MessageSummary(True)
        )

    def test_rfc3842_5_2_caseInsensitive(self) -> None:
        """
        All productions are case insensitive (RFC 3842 section 5.2); known
        message-context-classes are written as RFC 3842 does.
        """
        summary = parseMessageSummary(
            b"messages-waiting:YES\r\nfax-message :2/4\r\nX-Custom: 1/0\r\n"
        )
        self.assertTrue(summary.waiting)
        self.assertEqual(
            summary.counts,
            (MessageCounts("Fax-Message", 2, 4), MessageCounts("X-Custom", 1, 0)),
        )

    def test_rfc3842_3_5_messageHeadersDropped(self) -> None:
        """
        Message headers after the summary are accepted and dropped (see the
        module docstring).
        """
        summary = parseMessageSummary(WITH_HEADERS)
        self.assertEqual(summary.counts, (MessageCounts("Voice-Message", 4, 8, 1, 2),))
        self.assertNotIn(b"Subject", summary.toBytes())

    def test_bareLinefeedsAndFolding(self) -> None:
        """
        Bare LFs are taken as CRLFs, and folded lines are unfolded (RFC
        3261 section 7.3.1).
        """
        summary = parseMessageSummary(
            b"Messages-Waiting:\n yes\nVoice-Message: 1/2\n\t(0/1)\n"
        )
        self.assertEqual(
            summary,
            MessageSummary(True, None, (MessageCounts("Voice-Message", 1, 2, 0, 1),)),
        )

    def test_rfc3842_3_5_countLimit(self) -> None:
        """
        Counts above 2**32-1 are taken as 2**32-1 (RFC 3842 section 3.5).
        """
        summary = parseMessageSummary(
            b"Messages-Waiting: yes\r\nVoice-Message: 99999999999/4294967295\r\n"
        )
        self.assertEqual(summary.counts[0].new, MAX_COUNT)
        self.assertEqual(summary.counts[0].old, MAX_COUNT)
        self.assertEqual(
            str(MessageCounts("Voice-Message", 2**40, 1)),
            f"Voice-Message: {MAX_COUNT}/1",
        )

    def test_rfc3842_5_2_statusLineFirst(self) -> None:
        """
        The body starts with the Messages-Waiting line, whose value is
        C{yes} or C{no}.
        """
        self.assertBad(b"", "no Messages-Waiting")
        self.assertBad(b"\r\nMessages-Waiting: yes\r\n", "no Messages-Waiting")
        self.assertBad(b"Voice-Message: 1/2\r\nMessages-Waiting: yes\r\n", "first line")
        self.assertBad(b"Messages-Waiting: maybe\r\n", "first line")

    def test_rfc3842_5_2_account(self) -> None:
        """
        Message-Account, when present, follows the status line and is a URI
        without angle brackets (RFC 3842 section 3.5).
        """
        self.assertBad(
            b"Messages-Waiting: yes\r\nVoice-Message: 1/2\r\n"
            b"Message-Account: sip:a@127.0.0.1\r\n",
            "must follow",
        )
        self.assertBad(
            b"Messages-Waiting: yes\r\nMessage-Account: <sip:a@127.0.0.1>\r\n",
            "bad Message-Account",
        )

    def test_rfc3842_5_2_summaryLines(self) -> None:
        """
        A summary line is C{class: new/old} with optional C{(new/old)}
        urgent counts; anything else before the blank line gets 400, as do
        two lines for one class.
        """
        self.assertBad(b"Messages-Waiting: yes\r\nVoice-Message: 1\r\n", "bad line")
        self.assertBad(
            b"Messages-Waiting: yes\r\nVoice-Message: 1/2 (3)\r\n", "bad line"
        )
        self.assertBad(b"Messages-Waiting: yes\r\nVoice-Message: -1/2\r\n", "bad line")
        self.assertBad(
            b"Messages-Waiting: yes\r\nVoice-Message: 1/2\r\nvoice-message: 3/4\r\n",
            "two lines",
        )

    def test_notUTF8(self) -> None:
        """
        A body that is not UTF-8 gets 400.
        """
        self.assertBad(
            b"Messages-Waiting: yes\r\nMessage-Account: sip:\xff\r\n", "UTF-8"
        )


class RenderTests(SynchronousTestCase):
    """
    L{MessageSummary.toBytes} writes RFC 3842 section 5.2 bodies.
    """

    def test_rfc3842_5_2_format(self) -> None:
        """
        Status line, account, then summary lines, each ended by CRLF; the
        urgent counts only when known.
        """
        summary = MessageSummary(
            True,
            "sip:alice@vmail.example.com",
            (
                MessageCounts("voice-message", 2, 8, 0, 2),
                MessageCounts("Fax-Message", 1, 0),
            ),
        )
        self.assertEqual(
            summary.toBytes(),
            b"Messages-Waiting: yes\r\n"
            b"Message-Account: sip:alice@vmail.example.com\r\n"
            b"Voice-Message: 2/8 (0/2)\r\n"
            b"Fax-Message: 1/0\r\n",
        )

    def test_roundTrip(self) -> None:
        """
        What is written parses back to the same summary.
        """
        summary = parseMessageSummary(SYNC)
        self.assertEqual(parseMessageSummary(summary.toBytes()), summary)
        self.assertEqual(summary.toBytes(), SYNC)


class MessageSummaryPackageTests(SynchronousTestCase):
    """
    L{MessageSummaryPackage}: the IEventPackage of RFC 3842.
    """

    def setUp(self) -> None:
        self.package = MessageSummaryPackage()

    def test_interfaces(self) -> None:
        """
        The package provides L{IEventPackage} and L{IPlugin}.
        """
        self.assertTrue(verifyObject(IEventPackage, self.package))
        self.assertTrue(verifyObject(IPlugin, self.package))

    def test_rfc3842_3_packageDefinition(self) -> None:
        """
        Name C{message-summary} (RFC 3842 section 3.1), its body type
        (section 3.5 and 7.2), default duration one hour (section 3.4), at
        most one NOTIFY a second (section 3.11).
        """
        package = self.package
        self.assertEqual(package.name, "message-summary")
        self.assertEqual(package.templates, ())
        self.assertEqual(package.contentTypes, (MESSAGE_SUMMARY_TYPE,))
        self.assertEqual(package.publishContentTypes, (MESSAGE_SUMMARY_TYPE,))
        self.assertEqual(package.defaultExpires, 3600)
        self.assertEqual(package.minExpires, 60)
        self.assertEqual(package.maxExpires, 86400)
        self.assertEqual(package.minNotifyInterval, 1.0)
        other = MessageSummaryPackage(7200, 120, 604800, 2.0)
        self.assertEqual(
            (other.defaultExpires, other.minExpires, other.maxExpires),
            (7200, 120, 604800),
        )
        self.assertEqual(other.minNotifyInterval, 2.0)

    def test_rfc3903_6_step5_otherType415(self) -> None:
        """
        A body of another type gets 415 with Accept.
        """
        error = self.assertRaises(
            SIPError, self.package.parsePublication, "text/plain", SYNC
        )
        self.assertEqual(error.status, 415)
        self.assertEqual(error.headers, [("Accept", MESSAGE_SUMMARY_TYPE)])

    def test_rfc6665_5_4_7_neutralState(self) -> None:
        """
        Neutral state is C{Messages-Waiting: no}, for active and pending
        subscriptions alike.
        """
        for state in ("active", PENDING):
            self.assertEqual(
                self.package.renderState(
                    None, MESSAGE_SUMMARY_TYPE, subscription(state=state)
                ),
                b"Messages-Waiting: no\r\n",
            )

    def test_rfc6665_5_4_11_latestWins(self) -> None:
        """
        The most recently modified publication is the state (see the module
        docstring).
        """
        package = self.package
        documents = [
            package.parsePublication(MESSAGE_SUMMARY_TYPE, SYNC),
            package.parsePublication(MESSAGE_SUMMARY_TYPE, b"Messages-Waiting: no\r\n"),
        ]
        state = package.composeState("sip:alice@127.0.0.1", documents)
        self.assertEqual(
            package.renderState(state, MESSAGE_SUMMARY_TYPE, subscription()),
            b"Messages-Waiting: no\r\n",
        )
        state = package.composeState("sip:alice@127.0.0.1", documents[:1])
        self.assertEqual(
            package.renderState(state, MESSAGE_SUMMARY_TYPE, subscription()), SYNC
        )

    def test_wrongObjects(self) -> None:
        """
        Rendering for another type, or objects that are not summaries, are
        programming errors.
        """
        self.assertRaises(
            ValueError, self.package.renderState, None, "text/plain", subscription()
        )
        self.assertRaises(
            TypeError,
            self.package.renderState,
            "x",
            MESSAGE_SUMMARY_TYPE,
            subscription(),
        )
        self.assertRaises(TypeError, self.package.composeState, "sip:a@b", ["x"])
