# -*- test-case-name: tests.test_sipp_notifier -*-
"""
End-to-end tests of the notifier with a foreign peer: SIPp (Debian's
C{sip-tester}) subscribes, unsubscribes, polls, refreshes, lets a
subscription expire and publishes, against the real sipevents service over
loopback UDP and TCP (issue 3, "Done when").

The service runs in this process on the global reactor, built by
L{sipevents.app.tap.makeService} from the options C{twistd sipevents} takes
(C{--store memory --min-expires 2}, UDP and TCP on one free loopback port),
so trial sees anything it logs as an error and checks its cleanup. Each
SIPp scenario in C{tests/sipp/} makes its checks itself (status codes,
Expires, To tag, Contact, Subscription-State, Event, Allow-Events,
Min-Expires, SIP-ETag, the NOTIFY body) and fails the call when one does
not hold; SIPp's exit code and statistics file then say whether every call
succeeded. The scenarios were first run against Kamailio's presence server
(C{tests/kamailio/kamailio.cfg}), a notifier none of us wrote.

Without C{sipp} on C{PATH} the tests are skipped, unless the C{CI}
environment variable is set, in which case they fail: CI must run them.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.python.filepath import FilePath
from twisted.trial.unittest import TestCase

from tests.test_sipp import (
    LOOPBACK,
    SippRun,
    assertSIPpSucceeded,
    freePort,
    requireSIPp,
    startService,
    startSipp,
)

#: The service's --min-expires: expiry_uac.xml asks for 2 s, and
#: interval_too_brief_uac.xml for 1 s, which must get 423.
MIN_EXPIRES = 2


class _NotifierWithSIPp(TestCase):
    """
    Runs the service and SIPp scenarios against it over C{transport}.
    Subclasses set C{transport} (SIPp's C{-t}: C{"u1"} UDP, C{"t1"} one TCP
    connection).
    """

    transport = "u1"
    timeout = 120

    def setUp(self) -> Any:
        self.sipp = requireSIPp(self)
        self.work = FilePath(self.mktemp())
        self.work.makedirs()
        self.port = freePort()
        self.service = startService(
            self, self.port, "--store", "memory", "--min-expires", str(MIN_EXPIRES)
        )
        assert self.service.whenReady is not None
        assert self.service.whenListening is not None
        return defer.gatherResults([self.service.whenListening, self.service.whenReady])

    def user(self, name: str) -> str:
        """
        A user part unique to this test and transport, so that resources
        never mix between tests.
        """
        return f"{name}-{self.transport}"

    def runSipp(
        self, scenario: str, user: str, calls: int = 1, rate: int = 10
    ) -> SippRun:
        """
        Start SIPp with C{scenario} for C{calls} calls on resource(s) of
        C{user}.
        """
        return startSipp(
            self,
            self.sipp,
            self.work,
            scenario,
            remote=f"{LOOPBACK}:{self.port}",
            transport=self.transport,
            calls=calls,
            rate=rate,
            timeout=60,
            killAfter=90,
            name=f"{scenario.split('.')[0]}-{self.transport}",
            extra=("-s", user),
        )

    @defer.inlineCallbacks
    def scenario(self, name: str, user: str, calls: int = 3) -> Any:
        """
        Run one scenario to its end and check that every call succeeded.
        """
        run = self.runSipp(name, user, calls)
        result = yield run.ended
        assertSIPpSucceeded(self, run, result)

    def test_rfc6665_4_2_subscribeNotifyUnsubscribe(self) -> Any:
        """
        SUBSCRIBE gets a 200 with Expires, a To tag and a Contact, then a
        NOTIFY C{active}; an unSUBSCRIBE in the dialog (Expires: 0) gets a
        200 and a final NOTIFY C{terminated;reason=timeout} (RFC 6665
        sections 4.2.1.1, 4.2.1.2, 4.2.2 and 4.1.2.3); nothing is left
        behind.
        """
        user = self.user("sub")
        d = self.scenario("subscribe_uac.xml", user)
        d.addCallback(
            lambda _: self.assertEqual(self.service.notifier.subscriptions(), [])
        )
        return d

    def test_rfc6665_4_4_3_poll(self) -> Any:
        """
        An initial SUBSCRIBE with Expires: 0 gets a 200 with Expires: 0 and
        one NOTIFY C{terminated;reason=timeout}; no subscription is kept
        (RFC 6665 section 4.4.3).
        """
        d = self.scenario("poll_uac.xml", self.user("poll"))
        d.addCallback(
            lambda _: self.assertEqual(self.service.notifier.subscriptions(), [])
        )
        return d

    def test_rfc6665_4_2_1_1_badEvent489(self) -> Any:
        """
        A SUBSCRIBE for a package not served gets 489 with Allow-Events
        listing presence (RFC 6665 sections 4.2.1.1 and 8.3.1).
        """
        return self.scenario("bad_event_uac.xml", self.user("bad"))

    def test_rfc6665_4_2_1_1_intervalTooBrief423(self) -> Any:
        """
        A SUBSCRIBE asking for 1 s, under C{--min-expires 2}, gets 423 with
        Min-Expires (RFC 6665 section 4.2.1.1).
        """
        return self.scenario("interval_too_brief_uac.xml", self.user("brief"))

    def test_rfc6665_4_2_1_4_refresh(self) -> Any:
        """
        A refresh in the dialog gets a 200 whose Expires is not above what
        was asked, and a NOTIFY; then the unSUBSCRIBE ends it (RFC 6665
        sections 4.1.2.2 and 4.2.1.4).
        """
        return self.scenario("refresh_uac.xml", self.user("refresh"))

    def test_rfc6665_4_2_2_expiry(self) -> Any:
        """
        A subscription that is not refreshed ends on its own with a NOTIFY
        C{terminated;reason=timeout} (RFC 6665 sections 4.1.3 and 4.2.2).
        """
        d = self.scenario("expiry_uac.xml", self.user("expiry"))
        d.addCallback(
            lambda _: self.assertEqual(self.service.notifier.subscriptions(), [])
        )
        return d

    @defer.inlineCallbacks
    def test_rfc3903_4_publishThenNotify(self) -> Any:
        """
        A watcher subscribes; a publisher PUBLISHes a PIDF document and gets
        a 200 with SIP-ETag and Expires, then refreshes it with
        SIP-If-Match and no body (RFC 3903 sections 4.1, 4.2 and 6); the
        watcher gets a NOTIFY whose body carries the published tuple (RFC
        6665 section 4.2.2, RFC 3856 section 6.8), then unsubscribes.
        """
        user = self.user("alice")
        resource = f"sip:{user}@{LOOPBACK}"
        watcher = self.runSipp("publish_notify_uac.xml", user)
        clock: IReactorTime = reactor  # type: ignore[assignment]
        for _ in range(100):
            if self.service.notifier.subscriptions(resource=resource):
                break
            if watcher.ended.called:
                break
            yield deferLater(clock, 0.1, lambda: None)
        else:
            self.fail(f"SIPp's subscription to {resource} never arrived")
        yield self.scenario("publish_uac.xml", user, calls=1)
        result = yield watcher.ended
        assertSIPpSucceeded(self, watcher, result)


class NotifierOverUDPTests(_NotifierWithSIPp):
    """
    The scenarios over UDP: SIPp's retransmissions from T1 = 500 ms, our
    NOTIFYs sent to the Contact of the SUBSCRIBE (RFC 3261 section 18.1.1).
    """

    transport = "u1"


class NotifierOverTCPTests(_NotifierWithSIPp):
    """
    The scenarios over one TCP connection from SIPp: responses and NOTIFYs
    go back on it (RFC 3261 section 18.2.2; the notifier reuses the flow a
    SUBSCRIBE came on).
    """

    transport = "t1"


del _NotifierWithSIPp
