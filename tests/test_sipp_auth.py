# -*- test-case-name: tests.test_sipp_auth -*-
"""
End-to-end tests of Digest authentication (RFC 3261 section 22) with a
foreign peer: SIPp (Debian's C{sip-tester}) subscribes and publishes with
C{[authentication]} against the real service, started as C{twistd
sipevents --users FILE} would start it, over loopback UDP and TCP.

The users file is an htdigest file with MD5 lines, as Apache's
C{htdigest} writes them; the realm is C{127.0.0.1}, the address SIPp
reaches the server at, so that SIPp's From C{sip:alice@127.0.0.1} is
alice's address of record. The scenarios check the 401 challenge, the
200s and NOTIFYs once authenticated, and the 403 for publishing another
user's state (RFC 3903 section 14.1); SIPp's exit code and statistics say
whether every call passed.

Without C{sipp} on C{PATH} the tests are skipped, unless the C{CI}
environment variable is set, in which case they fail.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.python.filepath import FilePath
from twisted.trial.unittest import TestCase

from sipevents.testing import htdigestLine
from tests.test_sipp import (
    LOOPBACK,
    assertSIPpSucceeded,
    freePort,
    requireSIPp,
    startService,
    startSipp,
)

USER = "alice"
PASSWORD = "wonderland"


class _AuthenticatedWithSIPp(TestCase):
    """
    The service with C{--users} and SIPp scenarios against it over
    C{transport} (SIPp's C{-t}).
    """

    transport = "u1"
    timeout = 120

    def setUp(self) -> Any:
        self.sipp = requireSIPp(self)
        self.work = FilePath(self.mktemp())
        self.work.makedirs()
        users = self.work.child("users.htdigest")
        users.setContent(htdigestLine(USER, LOOPBACK, PASSWORD).encode())
        self.port = freePort()
        self.service = startService(
            self, self.port, "--store", "memory", "--users", users.path
        )
        assert self.service.whenReady is not None
        assert self.service.whenListening is not None
        return defer.gatherResults([self.service.whenListening, self.service.whenReady])

    @defer.inlineCallbacks
    def scenario(self, name: str, password: str = PASSWORD) -> Any:
        """
        Run one scenario as C{alice} with C{password}, and return its
        result.
        """
        run = startSipp(
            self,
            self.sipp,
            self.work,
            name,
            remote=f"{LOOPBACK}:{self.port}",
            transport=self.transport,
            calls=1,
            timeout=60,
            killAfter=90,
            name=f"{name.split('.')[0]}-{self.transport}",
            traceMessages=True,
            extra=("-s", USER, "-au", USER, "-ap", password),
        )
        result = yield run.ended
        return run, result

    @defer.inlineCallbacks
    def test_rfc3261_22_authenticatedSubscribe(self) -> Any:
        """
        A SUBSCRIBE without credentials gets a 401 with a Digest challenge;
        the same with SIPp's answer to it gets a 200 and a NOTIFY
        C{active}; the unSUBSCRIBE is authenticated too and ends the
        subscription (RFC 3261 section 22.2, RFC 3856 section 6.6.1).
        """
        run, result = yield self.scenario("auth_subscribe_uac.xml")
        assertSIPpSucceeded(self, run, result)
        self.assertEqual(self.service.notifier.subscriptions(), [])

    @defer.inlineCallbacks
    def test_rfc3903_14_1_authenticatedPublishOwnStateOnly(self) -> Any:
        """
        A PUBLISH is challenged, then accepted for the user's own address
        of record; a PUBLISH of another user's state, authenticated, gets
        403 (RFC 3903 section 14.1).
        """
        run, result = yield self.scenario("auth_publish_uac.xml")
        assertSIPpSucceeded(self, run, result)

    @defer.inlineCallbacks
    def test_rfc3261_22_wrongPasswordNeverAccepted(self) -> Any:
        """
        With a wrong password, SIPp's answer to the challenge is refused
        with a new 401, so the scenario (which expects a 200) fails and no
        subscription is made.
        """
        run, result = yield self.scenario("auth_subscribe_uac.xml", "not-it")
        self.assertNotEqual(result[0], 0)
        self.assertEqual(self.service.notifier.subscriptions(), [])


class AuthenticatedOverUDPTests(_AuthenticatedWithSIPp):
    """
    Over UDP.
    """

    transport = "u1"


class AuthenticatedOverTCPTests(_AuthenticatedWithSIPp):
    """
    Over one TCP connection from SIPp.
    """

    transport = "t1"
