# -*- test-case-name: tests.test_authorization -*-
"""
Who may watch what (RFC 6665 section 4.2.1.3), and which resources exist
(section 4.2.1.1): the default L{ISubscriptionAuthorizer} and
L{IResourcePolicy} providers, and simple list-based ones for operators and
tests.

The defaults make C{twistd -n sipevents} useful without provisioning:
L{AcceptAll} lets anyone subscribe and L{AllResourcesKnown} treats every
resource URI as a resource whose state is neutral until something publishes
it. An application that needs more implements the interfaces itself; an
authorizer that has to ask a person returns a L{Deferred} that fires later,
which makes the subscription pending in the meantime.

With authentication on (C{twistd sipevents --users}), the default is
L{AuthenticatedWatchers}: the notifier has already refused (403) a
SUBSCRIBE whose From is not the authenticated user's address of record
(RFC 3856 section 6.6.1, RFC 6665 section 6.1; see L{identityOwns}), so
the watcher it is asked about is who authenticated; any of the realm's
users may watch presence, and only the owner may watch a mailbox
(C{message-summary}, RFC 3842 section 6) or a resource's watchers (the
C{winfo} template, RFC 3857 section 4.6).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from zope.interface import implementer

from sipevents.errors import ParseError
from sipevents.interfaces import IResourcePolicy, ISubscriptionAuthorizer
from sipevents.records import canonicalResource
from sipevents.sip.uri import SIPURI, URI, parseURI

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from sipevents.interfaces import ISIPIdentity
    from sipevents.sip.message import Request

__all__ = [
    "ACCEPT",
    "REJECT",
    "AcceptAll",
    "AllResourcesKnown",
    "AuthenticatedWatchers",
    "KnownResources",
    "RejectAll",
    "WatcherList",
    "identityOwns",
    "isOwnerOnly",
]

#: The authorizer's decision to grant a subscription.
ACCEPT = "accept"
#: The authorizer's decision to refuse one: 403 when it is immediate,
#: C{terminated;reason=rejected} when it comes later (RFC 6665 section
#: 4.2.1.3).
REJECT = "reject"


def _compile(patterns: Iterable[str]) -> re.Pattern[str] | None:
    """
    One regular expression matching any of C{patterns}, shell-style
    wildcards (C{"sip:*@example.com"}), case-insensitively; C{None} for no
    patterns.
    """
    parts = [fnmatch.translate(pattern) for pattern in patterns]
    if not parts:
        return None
    return re.compile("|".join(f"(?:{part})" for part in parts), re.IGNORECASE)


def identityOwns(identity: ISIPIdentity, uri: URI | str) -> bool:
    """
    Whether C{uri} (a URI, or its text as records keep it) is an address
    of C{identity} (L{ISIPIdentity.owns}). Text that is not a URI is
    nobody's.
    """
    if isinstance(uri, str):
        try:
            uri = parseURI(uri)
        except ParseError:
            return False
    owns: bool = identity.owns(uri)
    return owns


def isOwnerOnly(eventType: str) -> bool:
    """
    Whether only a resource's owner may watch C{eventType} by default:
    C{message-summary} (RFC 3842 section 6: message summaries are "very
    privacy sensitive") and every C{winfo} template (RFC 3857 section 4.6:
    watcher information "contains sensitive information").
    """
    return eventType == "message-summary" or eventType.endswith(".winfo")


def _sameResource(watcher: str, resource: str) -> bool:
    """
    Whether the watcher URI C{watcher} (text) names the resource key
    C{resource}.
    """
    try:
        uri = parseURI(watcher)
    except ParseError:
        return False
    return isinstance(uri, SIPURI) and canonicalResource(uri) == resource


@implementer(ISubscriptionAuthorizer)
class AuthenticatedWatchers:
    """
    The default authorizer with authentication on: every authenticated
    user may watch presence (and any other package), only the owner may
    watch the event types of L{isOwnerOnly}.

    It relies on the notifier having checked that the From of an
    authenticated SUBSCRIBE is the user's address of record (see the module
    docstring): it compares that watcher with the resource, since
    L{ISubscriptionAuthorizer.authorize} is not given the identity.
    """

    def authorize(
        self, watcher: str, resource: str, eventType: str, request: Request
    ) -> str:
        if isOwnerOnly(eventType) and not _sameResource(watcher, resource):
            return REJECT
        return ACCEPT


@implementer(ISubscriptionAuthorizer)
class AcceptAll:
    """
    Lets every watcher subscribe to every resource: the default.
    """

    def authorize(
        self, watcher: str, resource: str, eventType: str, request: Request
    ) -> str:
        return ACCEPT


@implementer(ISubscriptionAuthorizer)
class RejectAll:
    """
    Refuses every subscription (403), for closed servers and tests.
    """

    def authorize(
        self, watcher: str, resource: str, eventType: str, request: Request
    ) -> str:
        return REJECT


@implementer(ISubscriptionAuthorizer)
class WatcherList:
    """
    Accepts watchers whose From URI matches an allow pattern, rejects those
    that match a deny pattern (deny wins), and treats the rest as the
    C{default} decision says.

    Patterns are shell-style wildcards on the watcher's URI, compared
    without regard to case: C{"sip:*@example.com"}.

    @ivar default: L{ACCEPT} or L{REJECT} for watchers no pattern matches.
    """

    def __init__(
        self,
        allow: Iterable[str] = (),
        deny: Iterable[str] = (),
        default: str = REJECT,
    ) -> None:
        """
        @raise ValueError: when C{default} is not L{ACCEPT} or L{REJECT}.
        """
        if default not in (ACCEPT, REJECT):
            raise ValueError(f"default must be {ACCEPT!r} or {REJECT!r}")
        self._allow = _compile(allow)
        self._deny = _compile(deny)
        self.default = default

    def authorize(
        self, watcher: str, resource: str, eventType: str, request: Request
    ) -> str | Deferred[str]:
        if self._deny is not None and self._deny.match(watcher):
            return REJECT
        if self._allow is not None and self._allow.match(watcher):
            return ACCEPT
        return self.default


@implementer(IResourcePolicy)
class AllResourcesKnown:
    """
    Every resource exists, with neutral state until something publishes it
    (the default; see the module docstring).
    """

    def isKnown(self, resource: str, eventType: str) -> bool:
        return True


@implementer(IResourcePolicy)
class KnownResources:
    """
    Only resources whose key (L{sipevents.records.canonicalResource},
    C{"sip:bob@example.com"}) matches one of C{patterns} exist; a SUBSCRIBE
    for any other gets 404 (RFC 6665 section 4.2.1.1).

    Patterns are shell-style wildcards, compared without regard to case.
    """

    def __init__(self, patterns: Iterable[str]) -> None:
        self._patterns = _compile(patterns)

    def isKnown(self, resource: str, eventType: str) -> bool:
        return self._patterns is not None and bool(self._patterns.match(resource))
