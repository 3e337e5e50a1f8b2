"""
Tests for L{sipevents.notifier.expiry}: the durations granted to SUBSCRIBE
(RFC 6665 sections 3.1.1 and 4.2.1.1) and PUBLISH (RFC 3903 section 6).
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from sipevents.errors import IntervalTooBrief
from sipevents.notifier.expiry import (
    PUBLISH_EXPIRY,
    SUBSCRIBE_EXPIRY,
    grantExpires,
    negotiateExpires,
)
from sipevents.packages.presence import PresencePackage


class NegotiateExpiresTests(SynchronousTestCase):
    """
    L{negotiateExpires}: RFC 6665 sections 3.1.1 and 4.2.1.1.
    """

    def test_rfc6665_3_1_1_absentGetsDefault(self) -> None:
        """
        No Expires: the package default, capped by the maximum.
        """
        self.assertEqual(negotiateExpires(None, 600, 60, 3600), 600)
        self.assertEqual(negotiateExpires(None, 6000, 60, 3600), 3600)

    def test_rfc6665_4_2_1_1_aboveMaxShortened(self) -> None:
        """
        More than the maximum: the maximum (never lengthened).
        """
        self.assertEqual(negotiateExpires(7200, 600, 60, 3600), 3600)
        self.assertEqual(negotiateExpires(1000, 600, 60, 3600), 1000)

    def test_rfc6665_4_2_1_1_intervalTooBrief423(self) -> None:
        """
        0 < requested < 3600 and below the minimum: 423 carrying
        Min-Expires.
        """
        error = self.assertRaises(IntervalTooBrief, negotiateExpires, 59, 600, 60, 3600)
        self.assertEqual(error.status, 423)
        self.assertEqual(error.headers, [("Min-Expires", "60")])
        self.assertEqual(negotiateExpires(60, 600, 60, 3600), 60)

    def test_rfc6665_4_2_1_1_zeroIsNeverTooBrief(self) -> None:
        """
        Zero is an unsubscribe or a fetch, never a 423.
        """
        self.assertEqual(negotiateExpires(0, 600, 60, 3600), 0)

    def test_rfc6665_4_2_1_1_hourOrMoreNeverTooBrief(self) -> None:
        """
        An hour or more is never answered 423, even below a larger minimum;
        it is granted as asked.
        """
        self.assertEqual(negotiateExpires(3600, 600, 7200, 86400), 3600)
        self.assertRaises(IntervalTooBrief, negotiateExpires, 3599, 600, 7200, 86400)


class GrantExpiresTests(SynchronousTestCase):
    """
    L{grantExpires}: the package's durations, the operator's overrides, and
    where SUBSCRIBE and PUBLISH differ.
    """

    def setUp(self) -> None:
        self.package = PresencePackage()

    def test_packageDurations(self) -> None:
        """
        Without overrides, the package's default, minimum and maximum apply.
        """
        package = self.package
        self.assertEqual(
            grantExpires(None, package, SUBSCRIBE_EXPIRY),
            min(package.defaultExpires, package.maxExpires),
        )
        self.assertEqual(
            grantExpires(10**9, package, SUBSCRIBE_EXPIRY), package.maxExpires
        )
        error = self.assertRaises(
            IntervalTooBrief,
            grantExpires,
            package.minExpires - 1,
            package,
            SUBSCRIBE_EXPIRY,
        )
        self.assertEqual(error.minExpires, package.minExpires)

    def test_overrides(self) -> None:
        """
        The operator's minimum, maximum and default override the package's
        (C{twistd sipevents --min-expires/--max-expires}).
        """
        package = self.package
        self.assertEqual(
            grantExpires(10**9, package, SUBSCRIBE_EXPIRY, maxExpires=500), 500
        )
        self.assertEqual(
            self.assertRaises(
                IntervalTooBrief,
                grantExpires,
                299,
                package,
                PUBLISH_EXPIRY,
                minExpires=300,
            ).minExpires,
            300,
        )
        self.assertEqual(
            grantExpires(None, package, PUBLISH_EXPIRY, defaultExpires=700), 700
        )

    def test_rfc6665_4_2_1_1_subscribeHourRule(self) -> None:
        """
        A SUBSCRIBE for an hour or more is granted as asked even below the
        minimum; a PUBLISH below the minimum is answered 423 whatever its
        length (RFC 3903 section 6, step 4).
        """
        package = self.package
        self.assertEqual(
            grantExpires(3600, package, SUBSCRIBE_EXPIRY, minExpires=7200), 3600
        )
        self.assertRaises(
            IntervalTooBrief,
            grantExpires,
            3600,
            package,
            PUBLISH_EXPIRY,
            minExpires=7200,
        )

    def test_rfc3903_6_publishDefaultAtLeastMinimum(self) -> None:
        """
        A PUBLISH without Expires gets the default raised to the minimum; a
        SUBSCRIBE gets the default as it is.
        """
        package = self.package
        self.assertEqual(
            grantExpires(
                None, package, PUBLISH_EXPIRY, minExpires=900, defaultExpires=600
            ),
            900,
        )
        self.assertEqual(
            grantExpires(
                None, package, SUBSCRIBE_EXPIRY, minExpires=900, maxExpires=5000
            ),
            min(package.defaultExpires, 5000),
        )

    def test_zeroAlwaysGranted(self) -> None:
        """
        Zero (an unsubscribe, a fetch, a removal) is never answered 423.
        """
        for rule in (SUBSCRIBE_EXPIRY, PUBLISH_EXPIRY):
            self.assertEqual(grantExpires(0, self.package, rule, minExpires=60), 0)
