# -*- test-case-name: tests.test_testing -*-
"""
A notifier and a subscriber connected in memory, on one clock.

L{connectedPair} builds our L{Notifier} (with its L{PublicationManager}, a
L{MemoryStore} and the event packages given) on one L{UserAgent}, and our
L{Subscriber} on another, and joins the two user agents with a
L{MemoryWire}: whatever one sends is serialized to bytes, queued, and
parsed again on delivery to the other, as a UDP transport would do it,
without sockets and without a reactor. Nothing moves until the test says
so: L{ConnectedPair.pump} delivers what is queued, and
L{ConnectedPair.advance} moves the L{Clock} (so Timer N, refreshes,
expiry and NOTIFY throttling run) and delivers what the timers send.

This is the shape of C{twisted.test.iosim} for SIP: a test of code built
on sipevents, such as an event package or an application that calls
L{Notifier.setState}, drives a whole RFC 6665 exchange, with real bytes
on the wire, in a synchronous C{twisted.trial} test::

    pair = connectedPair(packages=[MyPackage()])
    subscription = pair.subscriber.subscribe(pair.target("bob"), "my-event")
    pair.pump()
    notification = self.successResultOf(subscription.whenActive())
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from sipevents.config import DEFAULT_TIMERS, TimerConfig
from sipevents.errors import ParseError
from sipevents.interfaces import IEventPackage
from sipevents.notifier.notifier import Notifier
from sipevents.notifier.publication import PublicationManager
from sipevents.packages import PackageRegistry
from sipevents.packages.messagesummary import MessageSummaryPackage
from sipevents.packages.presence import PresencePackage
from sipevents.sip.addresses import Source, Target
from sipevents.sip.message import Message, Request, Response
from sipevents.sip.parser import parseMessage
from sipevents.sip.useragent import UserAgent
from sipevents.store.memory import MemoryStore
from sipevents.subscriber.subscriber import Subscriber
from sipevents.testing.doubles import (
    FakeSIPConnection,
    RecordingTransportLayer,
    buildRequest,
)

__all__ = [
    "ConnectedPair",
    "MemoryWire",
    "Transmission",
    "WireTransportLayer",
    "connectedPair",
]


@dataclass(frozen=True)
class Transmission:
    """
    One message that went over a L{MemoryWire}.

    @ivar sender: the name of the end that sent it.
    @ivar receiver: the name of the end it was for.
    @ivar data: its bytes, as serialized by the sender.
    @ivar sentAt: the clock's time when it was sent.
    """

    sender: str
    receiver: str
    data: bytes
    sentAt: float

    @property
    def message(self) -> Message:
        """
        The message, parsed from L{data}.
        """
        return parseMessage(self.data)


class WireTransportLayer(RecordingTransportLayer):
    """
    The transport layer of one end of a L{MemoryWire}: it records what its
    user agent sends, as L{RecordingTransportLayer} does, and queues the
    bytes for the other end.

    @ivar name: the end's name on the wire, e.g. C{"notifier"}.
    """

    def __init__(self, wire: MemoryWire, name: str, host: str, port: int) -> None:
        super().__init__(host, port)
        self.wire = wire
        self.name = name

    def sendResponse(self, response: Response, source: Source) -> None:
        super().sendResponse(response, source)
        self.wire.send(self, response)

    def sendRequest(self, request: Request, target: Target) -> Deferred[None]:
        super().sendRequest(request, target)
        self.wire.send(self, request)
        return succeed(None)


class MemoryWire:
    """
    Two user agents joined over UDP in memory: each message is serialized
    when sent, queued, and parsed when L{pump} delivers it.

    The wire is lossless and in order unless L{drop} says otherwise; it
    never retransmits by itself (the transactions do, on the clock).

    @ivar clock: the clock of both ends.
    @ivar queue: what was sent and not delivered yet.
    @ivar transmissions: every message delivered, in order.
    @ivar dropped: every message L{drop} discarded, in order.
    @ivar unparsable: every message the receiver could not parse, in
        order: handed to its C{parseErrorReceived}, as a transport layer
        reports one (without the 400 a transport layer may answer).
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.queue: list[tuple[WireTransportLayer, Transmission]] = []
        self.transmissions: list[Transmission] = []
        self.dropped: list[Transmission] = []
        self.unparsable: list[Transmission] = []
        self._ends: dict[str, tuple[UserAgent, WireTransportLayer]] = {}
        self._drop: Callable[[Message], bool] | None = None

    def end(self, name: str, host: str, port: int, timers: TimerConfig) -> UserAgent:
        """
        A user agent on the wire's clock, listening at C{host}:C{port} on
        this wire under C{name}.
        """
        layer = WireTransportLayer(self, name, host, port)
        agent = UserAgent(self.clock, layer, timers)
        self._ends[name] = (agent, layer)
        return agent

    def _peerOf(self, name: str) -> tuple[UserAgent, WireTransportLayer]:
        [peer] = [end for other, end in self._ends.items() if other != name]
        return peer

    def send(self, sender: WireTransportLayer, message: Message) -> None:
        """
        Queue C{message} from C{sender} for the other end.
        """
        _, receiver = self._peerOf(sender.name)
        data = message.toBytes()
        transmission = Transmission(
            sender.name, receiver.name, data, self.clock.seconds()
        )
        self.queue.append((sender, transmission))

    def drop(self, predicate: Callable[[Message], bool] | None) -> None:
        """
        From now on, discard every message for which C{predicate} is true
        instead of delivering it (a lost datagram); C{None} stops dropping.
        """
        self._drop = predicate

    def pump(self) -> int:
        """
        Deliver every queued message, and those their delivery sends, until
        nothing is left.

        @return: how many messages were delivered.
        """
        delivered = 0
        while self.queue:
            sender, transmission = self.queue.pop(0)
            receiverAgent, receiver = self._peerOf(sender.name)
            source = Source(
                FakeSIPConnection("UDP", receiver.host, receiver.port),
                sender.host,
                sender.port,
            )
            try:
                message = parseMessage(transmission.data)
            except ParseError as error:
                self.unparsable.append(transmission)
                receiverAgent.parseErrorReceived(error, source)
                continue
            if self._drop is not None and self._drop(message):
                self.dropped.append(transmission)
                continue
            self.transmissions.append(transmission)
            receiverAgent.messageReceived(message, source)
            delivered += 1
        return delivered


class ConnectedPair:
    """
    Our notifier and our subscriber, connected by a L{MemoryWire} on one
    L{Clock}; made by L{connectedPair}.

    @ivar clock: the one clock of both ends.
    @ivar wire: the wire between them.
    @ivar notifier: the L{Notifier}, started, on L{notifierAgent}.
    @ivar publications: its L{PublicationManager}, which takes PUBLISH.
    @ivar store: the notifier's L{MemoryStore}.
    @ivar registry: the notifier's L{PackageRegistry}.
    @ivar notifierAgent: the notifier's L{UserAgent}, at
        C{notifierHost}:C{notifierPort}.
    @ivar subscriber: the L{Subscriber}, on L{subscriberAgent}.
    @ivar subscriberAgent: the subscriber's L{UserAgent}, at
        C{subscriberHost}:C{subscriberPort}.
    """

    notifierHost = "127.0.0.1"
    notifierPort = 5060
    subscriberHost = "127.0.0.1"
    subscriberPort = 5070

    def __init__(
        self,
        clock: Clock,
        packages: Iterable[IEventPackage],
        timers: TimerConfig,
        notifierOptions: dict[str, Any],
    ) -> None:
        self.clock = clock
        self.wire = MemoryWire(clock)
        self.notifierAgent = self.wire.end(
            "notifier", self.notifierHost, self.notifierPort, timers
        )
        self.subscriberAgent = self.wire.end(
            "subscriber", self.subscriberHost, self.subscriberPort, timers
        )
        self.store = MemoryStore()
        self.registry = PackageRegistry(packages)
        self.notifierAgent.eventTypes = self.registry.eventTypes
        self.publications = PublicationManager(clock, self.store, self.registry)
        self.publications.install(self.notifierAgent)
        self.notifier = Notifier(
            clock,
            self.notifierAgent,
            self.store,
            self.registry,
            self.publications,
            **notifierOptions,
        )
        self.notifier.install()
        self.publications.onStateChanged = self.notifier.stateChanged
        started = self.notifier.start()
        if not started.called:
            raise RuntimeError("the notifier did not start at once")
        self.subscriber = Subscriber(self.subscriberAgent)

    def target(self, user: str = "bob") -> str:
        """
        The URI the subscriber sends to for C{user}'s resource at the
        notifier, e.g. C{"sip:bob@127.0.0.1:5060"}.
        """
        return f"sip:{user}@{self.notifierHost}:{self.notifierPort}"

    def resource(self, user: str = "bob") -> str:
        """
        The notifier's name for C{user}'s resource, as
        L{Notifier.setState} takes it (L{sipevents.records.canonicalResource}
        of L{target}), e.g. C{"sip:bob@127.0.0.1"}.
        """
        return f"sip:{user}@{self.notifierHost}"

    def publish(
        self,
        body: bytes,
        contentType: str,
        user: str = "bob",
        event: str = "presence",
        etag: str | None = None,
        expires: int | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> Deferred[Response]:
        """
        Send a PUBLISH (RFC 3903 section 4) for C{user}'s resource from the
        subscriber's user agent, as a client that both watches and
        publishes would, to the notifier's L{PublicationManager}. Call
        L{pump} to deliver it.

        @param etag: the entity-tag of the publication to refresh, modify
            or remove (C{SIP-If-Match}), or C{None} for a new one.
        @param expires: the Expires value, or C{None} for the package's
            default.
        @return: a L{Deferred} firing with the final response.
        """
        fields = [("Event", event)]
        if etag is not None:
            fields.append(("SIP-If-Match", etag))
        if expires is not None:
            fields.append(("Expires", str(expires)))
        fields.extend(headers)
        request = buildRequest(
            "PUBLISH",
            self.target(user),
            via=False,
            fromURI=f"sip:{user}@{self.notifierHost}",
            toURI=f"sip:{user}@{self.notifierHost}",
            headers=fields,
            body=body,
            contentType=contentType if body else None,
        )
        target = Target("UDP", self.notifierHost, self.notifierPort)
        return self.subscriberAgent.sendRequest(request, target)

    def pump(self) -> int:
        """
        Deliver every message in flight, both ways, until the wire is
        quiet; the clock does not move.

        @return: how many messages were delivered.
        """
        return self.wire.pump()

    def advance(self, seconds: float) -> int:
        """
        Move the clock forward by C{seconds}, stopping at each timer that
        falls due to deliver what it sent before the next one runs, as a
        peer that answers at once would see it.

        @return: how many messages were delivered.
        """
        end = self.clock.seconds() + seconds
        delivered = self.pump()
        while True:
            due = [call.getTime() for call in self.clock.getDelayedCalls()]
            nextTime = min((when for when in due if when <= end), default=None)
            if nextTime is None:
                break
            self.clock.advance(max(0.0, nextTime - self.clock.seconds()))
            delivered += self.pump()
        self.clock.advance(max(0.0, end - self.clock.seconds()))
        return delivered + self.pump()

    def messages(self, method: str | None = None) -> list[Message]:
        """
        The messages delivered so far, parsed from their bytes: the
        requests of C{method} only, when given.
        """
        out = [transmission.message for transmission in self.wire.transmissions]
        if method is None:
            return out
        return [m for m in out if isinstance(m, Request) and m.method == method]

    def stop(self) -> None:
        """
        Stop both ends' timers (transactions, the notifier's), as a test's
        clean-up; the subscriptions are left as they are.
        """
        self.notifier.stop()
        self.notifierAgent.stop()
        self.subscriberAgent.stop()


def connectedPair(
    clock: Clock | None = None,
    packages: Iterable[IEventPackage] | None = None,
    timers: TimerConfig = DEFAULT_TIMERS,
    **notifierOptions: Any,
) -> ConnectedPair:
    """
    Our notifier and our subscriber, connected in memory.

    @param clock: the clock of both ends; a new L{Clock} by default.
    @param packages: the event packages the notifier serves; C{presence}
        and C{message-summary} by default.
    @param timers: the SIP timers of both user agents.
    @param notifierOptions: keyword arguments for L{Notifier} (an
        C{authorizer}, C{minExpires} ...).
    """
    return ConnectedPair(
        Clock() if clock is None else clock,
        [PresencePackage(), MessageSummaryPackage()] if packages is None else packages,
        timers,
        notifierOptions,
    )
