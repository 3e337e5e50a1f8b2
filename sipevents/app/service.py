# -*- test-case-name: tests.test_service,tests.test_service_notifier -*-
"""
The C{twistd sipevents} service: a L{TransportLayer} listening on every
configured description, delivering to one L{UserAgent}, which hands
SUBSCRIBE to the L{Notifier} and PUBLISH to the L{PublicationManager}; both
keep what they know in one L{IStore} (the notifier sees it as an
L{sipevents.interfaces.ISubscriptionStore}, the publication manager as an
L{sipevents.interfaces.IPublicationStore}).

Starting, in order (L{SIPEventsService.startService}):

  1. child services start;
  2. every listener opens, at once, so that a port already taken stops
     C{twistd} with that error instead of a server running deaf; until
     step 5, SUBSCRIBE and PUBLISH are answered C{503 Service Unavailable}
     with C{Retry-After} (RFC 3261 section 21.5.4), since the store is not
     loaded yet (OPTIONS is answered as usual);
  3. the store is loaded (C{IStore.load}), then the notifier takes up the
     stored subscriptions, dropping without a NOTIFY those that expired
     while the server was down (L{Notifier.start});
  4. the publication manager takes up the stored publications
     (L{PublicationManager.start}), from the store loaded in step 3;
  5. SUBSCRIBE and PUBLISH go to the notifier and the publication manager,
     and one log line says how many subscriptions and publications were
     restored and which event packages are served.

With an L{IRequestAuthenticator} (C{twistd sipevents --users}), every
SUBSCRIBE and PUBLISH is authenticated by the user agent before the
notifier or the publication manager sees it
(L{UserAgent.requireAuthentication}), and the default authorizer is
L{AuthenticatedWatchers} rather than L{AcceptAll}: presence for any of the
realm's users, message-summary only for the mailbox's owner (RFC 3842
section 6).

The store is loaded once (step 3), and the notifier starts before the
publication manager: nothing is sent or
answered between steps 3 and 5 that needs publication state (a NOTIFY sent
while restoring ends a subscription whose package is gone, and carries no
body).

Stopping undoes it: the notifier and publication manager stop their
timers, the user agent cancels its transactions, the listeners close, the
store is closed (the SQLite store writes what is pending first), then the
children stop. Subscriptions and publications stay in the store for the
next start.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred, succeed
from twisted.internet.interfaces import IListeningPort, IReactorCore, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from sipevents.config import DEFAULT_LIMITS, DEFAULT_TIMERS, Limits, TimerConfig
from sipevents.errors import SIPError
from sipevents.interfaces import (
    IEventPackage,
    IPublishAuthorizer,
    IRequestAuthenticator,
    IRequestContext,
    IRequestHandler,
    IResourcePolicy,
    IStore,
    ISubscriptionAuthorizer,
)
from sipevents.notifier.authorization import AuthenticatedWatchers
from sipevents.notifier.notifier import Notifier
from sipevents.notifier.publication import PublicationManager
from sipevents.packages import PackageRegistry, discoverPackages
from sipevents.sip.endpoints import describeListener, parseListenDescription
from sipevents.sip.transport import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    TransportLayer,
)
from sipevents.sip.useragent import UserAgent
from sipevents.store.memory import MemoryStore

if TYPE_CHECKING:
    from sipevents.sip.message import Request, Response

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_MAX_CONNECTIONS",
    "GC_THRESHOLDS",
    "SIPEventsService",
    "tuneGarbageCollector",
]

#: The largest PUBLISH body taken by default, in octets (RFC 3903 section
#: 6 step 5: larger ones are answered 413).
DEFAULT_MAX_BODY_SIZE = 65536

#: What a SUBSCRIBE or PUBLISH that arrives while the store is loading is
#: told, in seconds (RFC 3261 section 20.33).
STARTING_RETRY_AFTER = 1


#: The collector thresholds L{tuneGarbageCollector} sets: a young
#: collection after 10,000 net new container objects instead of 700, the
#: older generations as Python has them.
GC_THRESHOLDS = (10_000, 10, 10)


def tuneGarbageCollector(thresholds: tuple[int, int, int] = GC_THRESHOLDS) -> None:
    """
    Fit Python's cyclic garbage collector to a long-running server: collect
    once, move every object that exists now (modules, classes, Twisted's
    machinery: a few hundred thousand) to the permanent generation with
    C{gc.freeze()}, and set C{thresholds}.

    Why: a collection of the oldest generation walks every live container
    object and stops the reactor while it does. Over UDP each answered
    request keeps its transaction for Timer J (32 seconds, RFC 3261 section
    17.2.2), so at a few thousand requests a second the live set is large
    and always changing, and full collections come every few seconds; each
    one that takes longer than the socket buffer lasts drops datagrams,
    which clients then retransmit T1 later. Frozen start-up objects are
    never walked again, and the larger young threshold means the
    short-lived objects of the requests in flight are walked (and promoted
    to older generations) far less often. Reference counting still frees
    almost everything at once; only garbage in reference cycles waits for
    a collection.

    The settings are process-wide, which is why only the C{twistd} service
    applies them (see L{sipevents.app.tap.makeService}); an application that
    embeds L{SIPEventsService} decides for itself.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)


@implementer(IRequestHandler)
class _Starting:
    """
    Answers SUBSCRIBE and PUBLISH while the store loads: C{503 Service
    Unavailable} with C{Retry-After} (RFC 3261 section 21.5.4), so that
    subscribers and publishers come back shortly instead of being refused
    for good or answered from an empty store.
    """

    accept = None

    def handleRequest(self, request: Request, context: IRequestContext) -> Response:
        raise SIPError(
            "Starting up",
            503,
            headers=[("Retry-After", str(STARTING_RETRY_AFTER))],
        )


class SIPEventsService(MultiService):
    """
    A SIP event notification server (RFC 6665 notifier, RFC 3903 event
    state compositor): listens on each description, and serves SUBSCRIBE
    and PUBLISH for the event packages given; see the module docstring for
    how it starts and stops.

    Further services may be added as children; they start before the
    listeners open and stop after they close.

    @ivar reactor: the reactor listened with.
    @ivar descriptions: the listening descriptions (see
        L{sipevents.sip.endpoints.parseListenDescription}).
    @ivar userAgent: the L{UserAgent}; register further method handlers on
        it.
    @ivar transportLayer: the L{TransportLayer}.
    @ivar store: the L{IStore} of subscriptions and publications.
    @ivar registry: the L{PackageRegistry} of the event packages served.
    @ivar publications: the L{PublicationManager} (PUBLISH, and the
        composed state of every resource).
    @ivar notifier: the L{Notifier}, which provides L{INotifier}: an
        application changes a resource's state with
        C{service.notifier.setState(...)} and ends subscriptions with
        C{service.notifier.terminate(...)}.
    @ivar ports: the listening ports, once listening.
    @ivar whenListening: while running, a L{Deferred} that fires with
        L{ports} once every listener is up.
    @ivar whenReady: while running, a L{Deferred} that fires with the
        number of subscriptions restored once the store is loaded and
        SUBSCRIBE and PUBLISH are served; it fails if the store cannot be
        loaded.
    @ivar ready: whether SUBSCRIBE and PUBLISH are being served.
    @ivar tuneGC: whether starting tunes the garbage collector (see
        L{tuneGarbageCollector}).
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
        store: IStore | None = None,
        packages: Sequence[IEventPackage] | None = None,
        minExpires: int | None = None,
        maxExpires: int | None = None,
        rfc3265Compat: bool = False,
        authorizer: ISubscriptionAuthorizer | None = None,
        resourcePolicy: IResourcePolicy | None = None,
        maxBodySize: int = DEFAULT_MAX_BODY_SIZE,
        onStartFailure: Callable[[Failure], object] | None = None,
        storeDescription: str | None = None,
        tuneGC: bool = False,
        logLifecycle: bool = False,
        authenticator: IRequestAuthenticator | None = None,
        publishAuthorizer: IPublishAuthorizer | None = None,
    ) -> None:
        """
        @param descriptions: where to listen.
        @param reactor: the reactor to listen with; the global one when
            C{None}.
        @param clock: where transaction, subscription and publication
            timers run; C{reactor} when C{None}.
        @param timers: the transaction timer values (RFC 3261 section 17).
        @param limits: message size limits.
        @param maxConnections: the most stream connections open at once.
        @param idleTimeout: seconds an idle stream connection stays open.
        @param store: where subscriptions and publications are kept; a new
            L{MemoryStore} when C{None} (C{twistd sipevents} defaults to
            SQLite, see L{sipevents.app.tap}).
        @param packages: the event packages to serve; every installed one
            (L{discoverPackages}) when C{None}.
        @param minExpires: overrides every package's shortest subscription
            and publication (423 below it, RFC 6665 section 4.2.1.1, RFC
            3903 section 6).
        @param maxExpires: overrides every package's longest subscription
            and publication (longer requests are shortened).
        @param rfc3265Compat: answer 202 rather than 200 to a SUBSCRIBE
            whose authorization is pending, as RFC 3265 did.
        @param authorizer: decides who may subscribe; when C{None},
            everyone without C{authenticator}, L{AuthenticatedWatchers}
            with it.
        @param resourcePolicy: says which resources exist; all when
            C{None}.
        @param maxBodySize: the largest PUBLISH body taken, in octets.
        @param onStartFailure: called with the failure when the store
            cannot be loaded (C{twistd} stops the reactor); the failure is
            logged either way.
        @param storeDescription: how to name the store in logs (the
            C{--store} option); the store's class name when C{None}.
        @param tuneGC: whether to call L{tuneGarbageCollector} once the
            reactor runs (process-wide settings: for a process that is
            this server).
        @param logLifecycle: log every subscription's and publication's
            lifecycle events at debug level (see
            L{Notifier.logLifecycle}); off by default, since C{twistd}
            writes every event to its log file whatever its level.
        @param authenticator: authenticates every SUBSCRIBE and PUBLISH
            (RFC 3261 section 22); none are authenticated when C{None}.
        @param publishAuthorizer: may refuse a PUBLISH (403) besides the
            publisher's own address of record check; see
            L{IPublishAuthorizer}.
        @raise ValueError: when a description cannot be parsed.
        """
        super().__init__()  # type: ignore[no-untyped-call]
        if reactor is None:
            from twisted.internet import reactor
        for description in descriptions:
            parseListenDescription(description)
        self.reactor = reactor
        clock = reactor if clock is None else clock
        self.descriptions = list(descriptions)
        self.userAgent = UserAgent(clock, None, timers)
        self.transportLayer = TransportLayer(
            reactor,
            self.userAgent,
            limits=limits,
            maxConnections=maxConnections,
            idleTimeout=idleTimeout,
        )
        self.userAgent.transportLayer = self.transportLayer
        self.store: IStore = MemoryStore() if store is None else store
        self.storeDescription = (
            type(self.store).__name__ if storeDescription is None else storeDescription
        )
        self.registry = PackageRegistry(
            discoverPackages() if packages is None else packages
        )
        self.publications = PublicationManager(
            clock,
            self.store,
            self.registry,
            maxBodySize=maxBodySize,
            resourcePolicy=resourcePolicy,
            minExpires=minExpires,
            maxExpires=maxExpires,
            publishAuthorizer=publishAuthorizer,
        )
        if authenticator is not None:
            self.userAgent.requireAuthentication(authenticator)
            if authorizer is None:
                authorizer = AuthenticatedWatchers()
        self.notifier = Notifier(
            clock,
            self.userAgent,
            self.store,
            self.registry,
            self.publications,
            authorizer=authorizer,
            resourcePolicy=resourcePolicy,
            rfc3265Compat=rfc3265Compat,
            minExpires=minExpires,
            maxExpires=maxExpires,
        )
        self.publications.onStateChanged = self.notifier.stateChanged
        self.notifier.logLifecycle = logLifecycle
        self.publications.logLifecycle = logLifecycle
        self.onStartFailure = onStartFailure
        # Allow and Allow-Events list what will be served as soon as we
        # listen; the requests wait for the store (see _Starting).
        self.userAgent.eventTypes = self.registry.eventTypes
        self._installStarting()
        self.ready = False
        self.ports: list[IListeningPort] = []
        self.whenListening: Deferred[list[IListeningPort]] | None = None
        self.whenReady: Deferred[int] | None = None
        self.tuneGC = tuneGC

    def _installStarting(self) -> None:
        starting = _Starting()
        self.userAgent.registerMethod("SUBSCRIBE", starting)
        self.userAgent.registerMethod("PUBLISH", starting)

    def startService(self) -> None:
        """
        Start the children, listen on every description, then load the
        store and serve SUBSCRIBE and PUBLISH (see the module docstring).

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
        self.whenReady = self._restore()
        if self.tuneGC:
            # Once the reactor runs, so that what twistd builds after
            # starting the services is frozen too.
            if IReactorCore.providedBy(self.reactor):
                self.reactor.callWhenRunning(tuneGarbageCollector)
            else:
                tuneGarbageCollector()

    def _restore(self) -> Deferred[int]:
        """
        Steps 3 to 5 of the module docstring.
        """

        def publicationsStart(restored: int) -> Deferred[int]:
            return self.publications.start().addCallback(lambda _: restored)

        def serve(restored: int) -> int:
            if not self.running:
                # Stopped while loading: stay as stopped.
                return restored
            self.notifier.install()
            self.publications.install(self.userAgent)
            self.ready = True
            self.log.info(
                "Serving event packages {packages} from {store}: restored "
                "{subscriptions} subscriptions and {publications} publications",
                packages=", ".join(self.registry.eventTypes()) or "(none)",
                store=self.storeDescription,
                subscriptions=restored,
                publications=len(self.store.allPublications()),
            )
            return restored

        def failed(failure: Failure) -> Failure:
            self.log.failure(
                "Cannot load the store {store}: SUBSCRIBE and PUBLISH stay "
                "unavailable (503)",
                failure,
                store=self.storeDescription,
            )
            if self.onStartFailure is not None:
                self.onStartFailure(failure)
            return failure

        started: Deferred[int] = maybeDeferred(self.store.load).addCallback(
            lambda _: self.notifier.start()
        )
        started.addCallback(publicationsStart)
        started.addCallback(serve)
        started.addErrback(failed)
        return started

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
        Stop the notifier's and publication manager's timers, cancel the
        user agent's, close every listener and connection, close the store
        (which writes what is pending), then stop the children.
        """
        if self.ready:
            self._installStarting()
        self.ready = False
        whenReady, self.whenReady = self.whenReady, None
        if whenReady is not None:
            # A failed load is logged already; nobody waits for it now.
            whenReady.addErrback(lambda _: None)
        stopping: Deferred[object] = succeed(None)
        stopping.addCallback(lambda _: self.notifier.stop())
        stopping.addCallback(lambda _: self.publications.stop())

        def stopListening(_: object) -> object:
            self.userAgent.stop()
            self.ports = []
            self.whenListening = None
            return self.transportLayer.stopListening()

        def closeStore(_: object) -> Deferred[None]:
            return self.store.close()

        def stopFailed(failure: Failure) -> None:
            # Whatever failed, the children still stop.
            self.log.failure(
                "Stopping failed (store {store})", failure, store=self.storeDescription
            )

        def stopChildren(_: object) -> Deferred[None] | None:
            return MultiService.stopService(self)  # type: ignore[no-untyped-call,no-any-return]

        stopping.addCallback(stopListening)
        stopping.addCallback(closeStore)
        stopping.addErrback(stopFailed)
        stopping.addCallback(stopChildren)
        return stopping  # type: ignore[return-value]
