# -*- test-case-name: tests.test_service -*-
"""
The C{twistd sipevents} service: a L{TransportLayer} listening on every
configured description, delivering to one L{UserAgent}.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.interfaces import IListeningPort, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from sipevents.config import DEFAULT_LIMITS, DEFAULT_TIMERS, Limits, TimerConfig
from sipevents.endpoints import describeListener, parseListenDescription
from sipevents.transport import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    TransportLayer,
)
from sipevents.uas import UserAgent

__all__ = ["DEFAULT_IDLE_TIMEOUT", "DEFAULT_MAX_CONNECTIONS", "SIPEventsService"]


class SIPEventsService(MultiService):
    """
    Listens on each description and hands what arrives to a L{UserAgent}.

    Further services (stores, notifier) are added as children; they start
    before the listeners open and stop after they close.

    @ivar reactor: the reactor listened with.
    @ivar descriptions: the listening descriptions (see
        L{sipevents.endpoints.parseListenDescription}).
    @ivar userAgent: the L{UserAgent}; register method handlers on it.
    @ivar transportLayer: the L{TransportLayer}.
    @ivar ports: the listening ports, once listening.
    @ivar whenListening: while running, a L{Deferred} that fires with
        L{ports} once every listener is up.
    """

    log = Logger()

    def __init__(
        self,
        descriptions: Sequence[str],
        reactor: Any = None,
        clock: IReactorTime | None = None,
        timers: TimerConfig = DEFAULT_TIMERS,
        limits: Limits = DEFAULT_LIMITS,
        maxConnections: int = DEFAULT_MAX_CONNECTIONS,
        idleTimeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        """
        @param descriptions: where to listen.
        @param reactor: the reactor to listen with; the global one when
            C{None}.
        @param clock: where transaction and handler timers run; C{reactor}
            when C{None}.
        @param timers: the transaction timer values (RFC 3261 section 17).
        @param limits: message size limits.
        @param maxConnections: the most stream connections open at once.
        @param idleTimeout: seconds an idle stream connection stays open.
        @raise ValueError: when a description cannot be parsed.
        """
        super().__init__()  # type: ignore[no-untyped-call]
        if reactor is None:
            from twisted.internet import reactor
        for description in descriptions:
            parseListenDescription(description)
        self.reactor = reactor
        self.descriptions = list(descriptions)
        self.userAgent = UserAgent(reactor if clock is None else clock, None, timers)
        self.transportLayer = TransportLayer(
            reactor,
            self.userAgent,
            limits=limits,
            maxConnections=maxConnections,
            idleTimeout=idleTimeout,
        )
        self.userAgent.transportLayer = self.transportLayer
        self.ports: list[IListeningPort] = []
        self.whenListening: Deferred[list[IListeningPort]] | None = None

    def startService(self) -> None:
        """
        Start the children, then listen on every description.

        @raise Exception: the first error when a listener fails at once (a
            port in use, typically), after closing the others: C{twistd}
            then stops with that error instead of running deaf.
        """
        super().startService()  # type: ignore[no-untyped-call]
        results: list[Deferred[IListeningPort]] = []
        failures: list[Failure] = []
        for description in self.descriptions:
            listening = self.transportLayer.listen(description)
            listening.addCallback(self._listening, description)
            listening.addErrback(self._notListening, description, failures)
            results.append(listening)
        if failures:
            self.transportLayer.stopListening()
            self.ports = []
            MultiService.stopService(self)  # type: ignore[no-untyped-call]
            failures[0].raiseException()
        self.whenListening = DeferredList(results).addCallback(
            lambda _: list(self.ports)
        )

    def _listening(self, port: IListeningPort, description: str) -> IListeningPort:
        transport = parseListenDescription(description).transport
        self.ports.append(port)
        self.log.info(
            "Listening on {description} ({address})",
            description=description,
            address=describeListener(transport, port),
        )
        return port

    def _notListening(
        self, failure: Failure, description: str, failures: list[Failure]
    ) -> None:
        failures.append(failure)
        self.log.failure(
            "Cannot listen on {description}", failure, description=description
        )

    def stopService(self) -> Deferred[None]:
        """
        Close every listener and connection, cancel the user agent's timers,
        then stop the children.
        """
        self.userAgent.stop()
        self.ports = []
        self.whenListening = None
        stopped = maybeDeferred(self.transportLayer.stopListening)

        def stopChildren(_: object) -> Deferred[None] | None:
            return MultiService.stopService(self)  # type: ignore[no-untyped-call,no-any-return]

        return stopped.addCallback(stopChildren)
