# -*- test-case-name: tests.test_client -*-
"""
The Twisted wiring of the subscriber side for applications: one call,
L{startSubscriber}, gives a running L{SubscriberClient} with a
L{Subscriber} ready to C{subscribe} and C{fetch} (RFC 6665 section 4.1).

It is the subscriber's counterpart of L{sipevents.app.service.SIPEventsService}:
a L{TransportLayer} listening on each description and delivering to one
L{UserAgent}, on which the L{Subscriber} registers itself for NOTIFY.

Where to listen: a subscriber needs a socket that the NOTIFY requests can
reach (RFC 6665 section 4.1.2.1: our Contact is where the notifier sends
them). The default, C{udp:0:interface=127.0.0.1}, is a free UDP port on
loopback: enough for tests and for notifiers on the same machine, and
never reachable from the network by accident. To watch a remote notifier,
listen on an address it can reach (C{"udp:0"} binds every IPv4 interface,
and the Via and Contact then carry the local address that routes to the
target). TCP and TLS targets are reached over connections the transport
layer opens itself, and the notifier may send its NOTIFYs back over the
same connection, so no stream listener is required; give one
(C{tcp:0:interface=127.0.0.1}) when the notifier opens its own connection
to our Contact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, fail, maybeDeferred
from twisted.internet.interfaces import IListeningPort
from twisted.logger import Logger
from twisted.python.failure import Failure

from sipevents.config import DEFAULT_TIMERS, TimerConfig
from sipevents.sip.endpoints import describeListener, parseListenDescription
from sipevents.sip.transport import TransportLayer
from sipevents.sip.useragent import UserAgent
from sipevents.subscriber.subscriber import Subscriber

if TYPE_CHECKING:
    from twisted.internet._sslverify import IOpenSSLTrustRoot

__all__ = ["DEFAULT_LISTEN", "SubscriberClient", "startSubscriber"]

#: What L{startSubscriber} listens on by default: a free UDP port on
#: loopback only (see the module docstring).
DEFAULT_LISTEN: tuple[str, ...] = ("udp:0:interface=127.0.0.1",)


class SubscriberClient:
    """
    A running subscriber: what L{startSubscriber} gives.

    @ivar reactor: the reactor listened with; also the clock of every timer.
    @ivar userAgent: the L{UserAgent} (RFC 3261 section 8 UAC and UAS core).
    @ivar transportLayer: the L{TransportLayer} it sends and receives with.
    @ivar subscriber: the L{Subscriber}: C{subscribe}, C{fetch}.
    @ivar ports: the listening ports, in the order of the descriptions.
    """

    log = Logger()

    def __init__(
        self,
        reactor: Any,
        userAgent: UserAgent,
        transportLayer: TransportLayer,
        subscriber: Subscriber,
        ports: Sequence[IListeningPort] = (),
    ) -> None:
        self.reactor = reactor
        self.userAgent = userAgent
        self.transportLayer = transportLayer
        self.subscriber = subscriber
        self.ports: list[IListeningPort] = list(ports)
        self._stopping: Deferred[None] | None = None

    def __repr__(self) -> str:
        listening = ", ".join(
            describeListener(transport, port)
            for transport, port in self.transportLayer.listeners
        )
        return f"<SubscriberClient listening on {listening or 'nothing'}>"

    def stop(self) -> Deferred[None]:
        """
        End every subscription, then stop: L{Subscriber.stop} (each live
        subscription is unsubscribed, RFC 6665 section 4.1.2.3, which is
        bounded by Timer N), then the user agent's timers and transactions
        are cancelled, then every listener and connection is closed.

        The user agent stops before the sockets close (as in
        L{sipevents.app.service.SIPEventsService.stopService}), so that no
        retransmission timer fires in between and tries a closed socket.
        Calling it again gives a L{Deferred} that fires when the first call
        is done.

        @return: a L{Deferred} that fires with C{None} once everything is
            closed; it never fails (errors are logged).
        """
        if self._stopping is not None:
            return self._wait(self._stopping)

        def unsubscribeFailed(failure: Failure) -> None:
            self.log.failure("Unsubscribing on stop failed", failure)

        def closeDown(_: object) -> Deferred[None]:
            self.userAgent.stop()
            self.ports = []
            return self.transportLayer.stopListening()

        def closeFailed(failure: Failure) -> None:
            self.log.failure("Closing the subscriber's sockets failed", failure)

        stopping: Deferred[None] = maybeDeferred(self.subscriber.stop)
        stopping.addErrback(unsubscribeFailed)
        stopping.addCallback(closeDown)
        stopping.addErrback(closeFailed)
        self._stopping = stopping
        return self._wait(stopping)

    @staticmethod
    def _wait(stopping: Deferred[None]) -> Deferred[None]:
        """
        A L{Deferred} firing when C{stopping} does, without taking its
        result, so that several callers can wait on it.
        """
        waiting: Deferred[None] = Deferred()

        def done(result: object) -> object:
            waiting.callback(None)
            return result

        stopping.addBoth(done)
        return waiting


def startSubscriber(
    reactor: Any,
    listen: Sequence[str] = DEFAULT_LISTEN,
    timers: TimerConfig = DEFAULT_TIMERS,
    trustRoot: IOpenSSLTrustRoot | None = None,
    localUri: str | None = None,
) -> Deferred[SubscriberClient]:
    """
    Start a subscriber: listen on every description in C{listen}, and
    return a L{SubscriberClient} whose L{Subscriber} sends SUBSCRIBE and
    takes NOTIFY (RFC 6665 section 4.1).

    @param reactor: provides C{IReactorTime}, C{IReactorUDP} and
        C{IReactorTCP} (and C{IReactorPluggableNameResolver} to reach host
        names); also the clock of every timer.
    @param listen: descriptions as the server takes them
        (C{udp:PORT[:interface=HOST]}, C{tcp:...}, C{tls:...}; see
        L{sipevents.sip.endpoints.parseListenDescription}); see the module
        docstring for choosing them.
    @param timers: the transaction timers; Timer N, which bounds waiting
        for a NOTIFY, is 64*T1 (RFC 6665 section 4.1.2.4).
    @param trustRoot: the certificate authorities a TLS notifier or proxy
        must chain to; the platform's when C{None}.
    @param localUri: our From URI; the L{Subscriber}'s default when C{None}.
    @return: a L{Deferred} firing with the L{SubscriberClient} once every
        listener is up, or failing with the first listening error (a bad
        description is a C{ValueError}) after closing the others.
    """
    try:
        for description in listen:
            parseListenDescription(description)
    except ValueError:
        return fail()
    userAgent = UserAgent(reactor, None, timers)
    transportLayer = TransportLayer(reactor, userAgent, trustRoot=trustRoot)
    userAgent.transportLayer = transportLayer
    # Created before any socket opens: it registers for NOTIFY, which must
    # be in place before anything can arrive.
    subscriber = Subscriber(userAgent, clock=reactor, timers=timers, localUri=localUri)
    return Deferred.fromCoroutine(
        _listen(reactor, userAgent, transportLayer, subscriber, listen)
    )


async def _listen(
    reactor: Any,
    userAgent: UserAgent,
    transportLayer: TransportLayer,
    subscriber: Subscriber,
    listen: Sequence[str],
) -> SubscriberClient:
    """
    Listen on each description in turn; on the first failure close what
    was opened and raise it.
    """
    ports: list[IListeningPort] = []
    try:
        for description in listen:
            ports.append(await transportLayer.listen(description))
    except BaseException:
        userAgent.stop()
        await transportLayer.stopListening()
        raise
    return SubscriberClient(reactor, userAgent, transportLayer, subscriber, ports)
