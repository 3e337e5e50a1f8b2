# -*- test-case-name: tests.test_expiry -*-
"""
How long a subscription or a publication lasts: the duration granted for
the Expires of a SUBSCRIBE (RFC 6665 sections 3.1.1, 4.2.1.1 and 4.2.1.4)
or a PUBLISH (RFC 3903 section 6, step 4), from the event package's
C{defaultExpires}, C{minExpires} and C{maxExpires} and the operator's
overrides of them (C{twistd sipevents --min-expires/--max-expires}).

The two RFCs differ in two places, which L{ExpiryRule} names: RFC 6665
allows 423 only below one hour, RFC 3903 below any minimum; and a PUBLISH
without Expires gets the default raised to the minimum, so that a
publication never lasts less than the notifier asks of others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sipevents.errors import IntervalTooBrief

if TYPE_CHECKING:
    from sipevents.interfaces import IEventPackage

__all__ = [
    "NO_423_ABOVE",
    "PUBLISH_EXPIRY",
    "SUBSCRIBE_EXPIRY",
    "ExpiryRule",
    "grantExpires",
    "negotiateExpires",
]

#: RFC 6665 section 4.2.1.1: 423 only "if ... the expiration interval is
#: greater than zero AND smaller than one hour AND less than a
#: notifier-configured minimum".
NO_423_ABOVE = 3600


@dataclass(frozen=True, slots=True)
class ExpiryRule:
    """
    Where the durations of one kind of request part from the common rule of
    L{negotiateExpires}.

    @ivar briefBelow: a request below the minimum is answered 423 only when
        it is also below this many seconds.
    @ivar defaultAtLeastMinimum: whether a request without Expires gets the
        default raised to the minimum.
    """

    briefBelow: float
    defaultAtLeastMinimum: bool


#: SUBSCRIBE (RFC 6665 section 4.2.1.1): 423 only below one hour; the
#: package's default as it is.
SUBSCRIBE_EXPIRY = ExpiryRule(briefBelow=NO_423_ABOVE, defaultAtLeastMinimum=False)

#: PUBLISH (RFC 3903 section 6, step 4): 423 below any minimum; the default
#: never below the minimum.
PUBLISH_EXPIRY = ExpiryRule(briefBelow=math.inf, defaultAtLeastMinimum=True)


def negotiateExpires(
    requested: int | None,
    default: int,
    minimum: int,
    maximum: int,
    briefBelow: float = NO_423_ABOVE,
) -> int:
    """
    The duration to grant a request asking for C{requested} seconds
    (RFC 6665 sections 3.1.1, 4.2.1.1 and 4.2.1.4; RFC 3903 section 6).

      - No Expires: C{default} (RFC 6665 section 3.1.1), never above
        C{maximum}.
      - Zero: zero (an unsubscribe or a fetch, RFC 6665 section 4.4.3; the
        removal of a publication, RFC 3903 section 4.5).
      - Above C{maximum}: C{maximum} (the notifier may shorten, never
        lengthen).
      - Below C{minimum}, above zero and below C{briefBelow}: 423 with
        Min-Expires. Below C{minimum} but at or above C{briefBelow}
        (possible for a SUBSCRIBE only with a minimum above an hour):
        granted as asked, since RFC 6665 allows 423 only below one hour and
        a 200 may not lengthen it.

    @raise IntervalTooBrief: 423 with C{Min-Expires: minimum}.
    """
    if requested is None:
        return min(default, maximum)
    if requested == 0:
        return 0
    if requested < briefBelow and requested < minimum:
        raise IntervalTooBrief(minimum)
    return min(requested, maximum)


def grantExpires(
    requested: int | None,
    package: IEventPackage,
    rule: ExpiryRule,
    minExpires: int | None = None,
    maxExpires: int | None = None,
    defaultExpires: int | None = None,
) -> int:
    """
    The duration to grant a request for C{package} asking for C{requested}
    seconds: L{negotiateExpires} over the package's durations, each
    overridden by the operator's when that is not C{None}, under C{rule}.

    Called by the notifier for every SUBSCRIBE and by the publication
    manager for every PUBLISH.

    @param rule: L{SUBSCRIBE_EXPIRY} or L{PUBLISH_EXPIRY}.
    @raise IntervalTooBrief: 423 with C{Min-Expires}.
    """
    minimum: int = package.minExpires if minExpires is None else minExpires
    maximum: int = max(package.maxExpires if maxExpires is None else maxExpires, 0)
    default: int = package.defaultExpires if defaultExpires is None else defaultExpires
    if rule.defaultAtLeastMinimum:
        default = max(default, minimum)
    return negotiateExpires(requested, default, minimum, maximum, rule.briefBelow)
