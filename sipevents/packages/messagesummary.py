# -*- test-case-name: tests.test_messagesummary -*-
"""
The C{message-summary} event package (RFC 3842): message waiting
indication with C{application/simple-message-summary} bodies.

State comes from PUBLISH (RFC 3903 section 1 names this use) or from the
application (L{sipevents.interfaces.INotifier.setState}). Choices made
where RFC 3842 leaves them to us (RFC 6665 section 5.4):

  - Composition (RFC 6665 section 5.4.11): the most recently modified
    publication of an account wins. A mailbox has one messaging system
    that knows its counts; adding up several publications would count a
    message twice the moment a publisher re-publishes without its
    entity-tag, and OR-ing only the status line (RFC 3842 section 3.10,
    which is for subscribers merging forks) would lose the counts.
  - Neutral state (RFC 6665 section 5.4.7), sent when nothing is published
    and to pending subscriptions: C{Messages-Waiting: no}, with no account
    and no counts, which is true of an account we know nothing of and
    reveals nothing.
  - Published message headers (the optional C{opt-msg-headers} after a
    blank line, RFC 3842 section 3.5) are accepted and dropped: they may
    only describe messages added since the previous NOTIFY of each
    subscription and never go in the first one, which composed state
    shared by every subscription cannot honour.
  - Durations and rate (RFC 6665 section 5.4.4 and 5.4.10): subscriptions
    last 3600 seconds by default (RFC 3842 section 3.4); at least 60; at
    most 86400, the day RFC 3842's own example asks for ("hours or days
    are more typical and are RECOMMENDED"). NOTIFYs are at least one
    second apart (RFC 3842 section 3.11).
  - Parsing is strict where the grammar is (RFC 3842 section 5.2, case
    insensitive): the status line first, then at most one account, then
    summary lines; anything else before the blank line is a 400. Counts
    above 2**32-1 are taken as 2**32-1 (RFC 3842 section 3.5 asks that of
    subscribers, and we never send more). Folded lines (RFC 3261 section
    7.3.1) are unfolded; a bare LF is taken for a CRLF.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from twisted.plugin import IPlugin
from zope.interface import implementer

from sipevents.errors import ParseError, SIPError
from sipevents.interfaces import IEventPackage
from sipevents.packages.base import SingleTypePackage
from sipevents.sip.headers import TOKEN_CHARS
from sipevents.sip.uri import parseURI

if TYPE_CHECKING:
    from sipevents.records import SubscriptionRecord

__all__ = [
    "MESSAGE_SUMMARY_TYPE",
    "MessageCounts",
    "MessageSummary",
    "MessageSummaryPackage",
    "parseMessageSummary",
]

#: The body type of this package (RFC 3842 section 7.2).
MESSAGE_SUMMARY_TYPE = "application/simple-message-summary"

#: The largest count (RFC 3842 section 3.5).
MAX_COUNT = 2**32 - 1

#: message-context-class values (RFC 3458 section 6.2) as RFC 3842's
#: examples write them; other classes are written as published.
_CLASS_NAMES = {
    name.lower(): name
    for name in (
        "Voice-Message",
        "Fax-Message",
        "Pager-Message",
        "Multimedia-Message",
        "Text-Message",
        "None",
    )
}

_HCOLON = r"[ \t]*:[ \t]*"
_STATUS_RE = re.compile(rf"messages-waiting{_HCOLON}(yes|no)[ \t]*\Z", re.I)
_ACCOUNT_RE = re.compile(rf"message-account{_HCOLON}(\S+)[ \t]*\Z", re.I)
_SUMMARY_RE = re.compile(
    rf"([{TOKEN_CHARS}]+){_HCOLON}([0-9]+)[ \t]*/[ \t]*([0-9]+)"
    r"(?:[ \t]*\([ \t]*([0-9]+)[ \t]*/[ \t]*([0-9]+)[ \t]*\))?[ \t]*\Z"
)


def _bad(reason: str) -> SIPError:
    return SIPError(f"Bad Message Summary: {reason}", 400)


@dataclass(frozen=True, slots=True)
class MessageCounts:
    """
    One C{msg-summary-line} (RFC 3842 section 5.2): the new and old
    messages of one message-context-class, and optionally how many of each
    are urgent.

    @ivar messageClass: the message-context-class, e.g. C{"Voice-Message"}.
    @ivar new: new messages.
    @ivar old: old messages.
    @ivar urgentNew: urgent new messages, or C{None} when not given.
    @ivar urgentOld: urgent old messages, or C{None} when not given.
    """

    messageClass: str
    new: int
    old: int
    urgentNew: int | None = None
    urgentOld: int | None = None

    def __str__(self) -> str:
        name = _CLASS_NAMES.get(self.messageClass.lower(), self.messageClass)
        line = f"{name}: {min(self.new, MAX_COUNT)}/{min(self.old, MAX_COUNT)}"
        if self.urgentNew is not None or self.urgentOld is not None:
            line += (
                f" ({min(self.urgentNew or 0, MAX_COUNT)}"
                f"/{min(self.urgentOld or 0, MAX_COUNT)})"
            )
        return line


@dataclass(frozen=True, slots=True)
class MessageSummary:
    """
    A message summary (RFC 3842 section 3.5): the state of one messaging
    account. Build one to give the application's state to
    L{sipevents.interfaces.INotifier.setState}: C{MessageSummary(True,
    counts=(MessageCounts("Voice-Message", 2, 8, 0, 2),)).toBytes()}.

    @ivar waiting: the C{Messages-Waiting} status.
    @ivar account: the C{Message-Account} URI, or C{None}.
    @ivar counts: the summary lines.
    """

    waiting: bool
    account: str | None = None
    counts: tuple[MessageCounts, ...] = ()

    def toBytes(self) -> bytes:
        """
        The C{application/simple-message-summary} body (RFC 3842 section
        5.2).
        """
        lines = [f"Messages-Waiting: {'yes' if self.waiting else 'no'}"]
        if self.account is not None:
            lines.append(f"Message-Account: {self.account}")
        lines.extend(str(counts) for counts in self.counts)
        lines.append("")
        return "\r\n".join(lines).encode("utf-8")


#: The neutral state (see the module docstring).
NEUTRAL = MessageSummary(False)
_NEUTRAL_BODY = NEUTRAL.toBytes()


def _count(text: str) -> int:
    return min(int(text), MAX_COUNT)


def _unfold(lines: list[str]) -> list[str]:
    """
    Join continuation lines (starting with a space or tab) to the line
    before them (RFC 3261 section 7.3.1).
    """
    out: list[str] = []
    for line in lines:
        if line[:1] in (" ", "\t") and out and out[-1]:
            out[-1] = f"{out[-1]} {line.strip()}"
        else:
            out.append(line)
    return out


def parseMessageSummary(body: bytes) -> MessageSummary:
    """
    Parse an C{application/simple-message-summary} body (RFC 3842 section
    5.2).

    @raise SIPError: 400 saying what is wrong.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("not UTF-8") from None
    raw = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    try:
        blank = raw.index("")
    except ValueError:
        blank = len(raw)
    # Everything after the first blank line is opt-msg-headers, dropped.
    lines = _unfold(raw[:blank])
    if not lines:
        raise _bad("no Messages-Waiting line")
    status = _STATUS_RE.match(lines[0])
    if status is None:
        raise _bad("the first line is not a Messages-Waiting line")
    account: str | None = None
    counts: list[MessageCounts] = []
    classes: set[str] = set()
    for index, line in enumerate(lines[1:], 1):
        accountMatch = _ACCOUNT_RE.match(line)
        if accountMatch is not None:
            if index != 1:
                raise _bad("Message-Account must follow Messages-Waiting")
            account = accountMatch.group(1)
            try:
                parseURI(account)
            except ParseError:
                raise _bad(f"bad Message-Account URI {account!r}") from None
            continue
        summary = _SUMMARY_RE.match(line)
        if summary is None:
            raise _bad(f"bad line {line[:60]!r}")
        name, new, old, urgentNew, urgentOld = summary.groups()
        key = name.lower()
        if key in classes:
            raise _bad(f"two lines for {name}")
        classes.add(key)
        counts.append(
            MessageCounts(
                _CLASS_NAMES.get(key, name),
                _count(new),
                _count(old),
                None if urgentNew is None else _count(urgentNew),
                None if urgentOld is None else _count(urgentOld),
            )
        )
    return MessageSummary(status.group(1).lower() == "yes", account, tuple(counts))


@implementer(IPlugin, IEventPackage)
class MessageSummaryPackage(SingleTypePackage):
    """
    The C{message-summary} event package (RFC 3842); see the module
    docstring for composition, neutral state, durations and rate (the
    defaults of L{SingleTypePackage} are those of RFC 3842 sections 3.4
    and 3.11).

    Provides L{twisted.plugin.IPlugin} so that an instance at module level
    in a C{twisted/plugins} dropin is found by
    L{sipevents.packages.discoverPackages}.
    """

    name = "message-summary"
    contentType = MESSAGE_SUMMARY_TYPE
    contentTypes = (MESSAGE_SUMMARY_TYPE,)
    publishContentTypes = (MESSAGE_SUMMARY_TYPE,)

    def parsePublication(self, contentType: str, body: bytes) -> MessageSummary:
        """
        Parse a published summary (L{parseMessageSummary}).

        @raise SIPError: 400 for a bad body, 415 for another type.
        """
        self._checkPublished(contentType)
        return parseMessageSummary(body)

    def composeState(
        self, resource: str, documents: Sequence[object]
    ) -> MessageSummary:
        """
        The most recently modified publication wins (see the module
        docstring).
        """
        latest = documents[-1]
        if not isinstance(latest, MessageSummary):
            raise TypeError(f"Not a message summary: {latest!r}")
        return latest

    def renderState(
        self, state: object | None, contentType: str, subscription: SubscriptionRecord
    ) -> bytes:
        """
        The summary body of C{state}, or C{Messages-Waiting: no} when
        C{state} is C{None}.
        """
        self._checkRendered(contentType)
        if state is None:
            return _NEUTRAL_BODY
        if not isinstance(state, MessageSummary):
            raise TypeError(f"Not a message summary: {state!r}")
        return state.toBytes()
