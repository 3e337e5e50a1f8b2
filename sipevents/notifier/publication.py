# -*- test-case-name: tests.test_publication -*-
"""
Event state publication (RFC 3903): the PUBLISH handler and the composed
state of every published resource.

L{PublicationManager} is the Event State Compositor (RFC 3903 section 2):
it answers PUBLISH requests for the user agent core, keeps each live
publication in the store (L{sipevents.interfaces.IPublicationStore}, as a
L{sipevents.records.PublicationRecord}), expires publications on its own,
composes each resource's state through its event package
(L{sipevents.interfaces.IEventPackage.composeState}) and tells the notifier
of every change (C{onStateChanged(resource, eventType)}), which NOTIFYs the
watchers. The application's own state (L{PublicationManager.setApplicationState})
is a publication too, one that never expires, so it composes and persists
the same way as PUBLISHed state.

Choices made where RFC 3903 leaves one:

  - Entity-tags are 96 random bits (16 URL-safe base64 characters, all
    token characters, RFC 3903 section 12). A counter would repeat after a
    restart, and section 6 step 6 wants a tag that was never assigned to
    the resource before; a random one also cannot be guessed by someone
    who would modify another's publication. Every successful PUBLISH,
    refresh and removal included, gets a new one (section 6 step 6);
    a removal's tag names nothing, so using it again gets 412.
  - The application's publication has the entity-tag C{"app"} and 32 hex
    digits of a SHA-256 of the event type and resource
    (L{applicationETag}): the same after a restart, so it replaces itself.
    A PUBLISH naming it in SIP-If-Match gets 412: it is not a publication
    a PUBLISH made.
  - Durations: a package's C{defaultExpires}, C{minExpires} and
    C{maxExpires} (unless overridden for the manager, as C{twistd
    sipevents --min-expires/--max-expires} do) apply to publications too
    (section 6 step 4): no Expires means the default, 0 < Expires < minimum
    gets 423 with Min-Expires, a longer one is shortened to the maximum.
  - An initial PUBLISH with C{Expires: 0} and a body is checked and
    answered 200 with C{Expires: 0} and a fresh entity-tag, and stores
    nothing (section 6 step 5, last bullet).
  - A refresh changes no state, so it NOTIFYs no one (section 15, M10); a
    modification with the very same body neither.
  - The Event header is examined (step 2) before the resource policy is
    asked about the resource (step 1), because the policy answers per event
    type (L{sipevents.interfaces.IResourcePolicy}); with the default
    policy, which knows every resource, the order makes no difference. The
    policy is asked for initial publications only: an entity-tag that
    matches is proof enough that the resource is known.
  - A PUBLISH for a template (C{presence.winfo}) or for a package that
    takes no PUBLISH gets 489 like an unknown package. The C{Allow-Events}
    of a 489 to PUBLISH lists the event types that take PUBLISH.
  - Who may publish (RFC 3903 section 14.1, "accept publications from
    authorized sources only, based on the identity of the EPA"): an
    authenticated PUBLISH (one whose context has an identity, see
    L{sipevents.sip.useragent.UserAgent.requireAuthentication}) is
    answered 403 unless its Request-URI is the publisher's own address of
    record (L{sipevents.notifier.authorization.identityOwns}); then the
    L{IPublishAuthorizer}, when there is one, may refuse more (403).
    Both come after the Event and SIP-If-Match checks and before the
    resource policy, for refreshes and removals too, so an entity-tag
    learnt from someone else's publication is of no use. The
    application's own state (L{PublicationManager.setApplicationState})
    is not a PUBLISH and is not checked.
  - Body checks run in this order: size (413, over C{maxBodySize}), then
    type (415 with the package's types in C{Accept}), then the package's
    parser (400 saying what is wrong). The user agent core has already
    answered 415 for a type no package takes (RFC 3261 section 8.2.3, which
    RFC 3903 section 6 says comes first), with the union of the packages'
    types in C{Accept}.
  - A change is applied to the working set at once and the watchers told;
    the 200 waits until the store says the change is durable, so a
    publication that was answered 200 survives a crash. If the store
    fails, the change is undone and the PUBLISH answered 500 (section 6
    step 5 asks for an error "such as 504"; the store is ours, not an
    upstream server).
  - PUBLISH requests for one resource are processed in the order received
    (section 6): while one waits on the store or the resource policy, later
    ones for the same resource wait behind it.
  - Every publication's expiry is a deadline in one
    L{sipevents.sip.timers.TimerQueue}, keyed by entity-tag, as the
    notifier's coalescing intervals are.
  - Documents are composed oldest (least recently modified) first, so a
    package can let the newest win (RFC 3903 section 10.3 leaves the policy
    to the package). After a restart the store's order stands in for
    modification order.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from twisted.internet.defer import Deferred, FirstError, gatherResults, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from sipevents.errors import (
    BadEvent,
    ConditionalRequestFailed,
    Forbidden,
    NotFound,
    ParseError,
    RequestEntityTooLarge,
    SIPError,
    UnsupportedMediaType,
)
from sipevents.interfaces import IEventStateCompositor, IRequestHandler
from sipevents.notifier.authorization import identityOwns
from sipevents.notifier.expiry import PUBLISH_EXPIRY, grantExpires
from sipevents.records import PublicationRecord, canonicalResource
from sipevents.sip.headers import isToken, parseContentType
from sipevents.sip.message import Response, makeResponse
from sipevents.sip.timers import TimerQueue
from sipevents.sip.uri import parseURI

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sipevents.interfaces import (
        IEventPackage,
        IPackageRegistry,
        IPublicationStore,
        IPublishAuthorizer,
        IRequestContext,
        IResourcePolicy,
        IUserAgent,
    )
    from sipevents.sip.message import Request

__all__ = ["PublicationManager", "applicationETag"]

#: Statuses that refuse a body: logged as warnings.
_BODY_STATUSES = frozenset({400, 413, 415})


def applicationETag(eventType: str, resource: str) -> str:
    """
    The entity-tag of the application's publication for C{eventType} and
    C{resource} (see the module docstring).
    """
    digest = hashlib.sha256(f"{eventType}\0{resource}".encode()).hexdigest()
    return "app" + digest[:32]


def _canonical(resource: str) -> str:
    """
    The resource key of a URI given by the application, or the text as
    given when it is not a URI we parse.
    """
    try:
        return canonicalResource(parseURI(resource))
    except ParseError:
        return resource


@dataclass(slots=True)
class _Live:
    """
    A live publication: its record (as stored), the package's parsed
    document and its place in modification order.
    """

    record: PublicationRecord
    document: object
    sequence: int


@implementer(IRequestHandler, IEventStateCompositor)
class PublicationManager:
    """
    The PUBLISH handler and event state compositor (RFC 3903 section 6);
    see the module docstring.

    Wiring: build it with the store and package registry, set
    L{onStateChanged} to the notifier's C{stateChanged}, register it with
    C{userAgent.registerMethod("PUBLISH", manager)} (L{install}), and call
    L{start} once the store is loaded. The notifier asks L{currentState}
    for the state to render into each NOTIFY.

    @ivar clock: the time source.
    @ivar store: where publications are kept.
    @ivar registry: the event packages served (L{IPackageRegistry}).
    @ivar maxBodySize: the largest PUBLISH body accepted, in octets; a
        larger one gets 413.
    @ivar onStateChanged: called as C{onStateChanged(resource, eventType)}
        whenever the composed state of a resource may have changed (a
        publication added, modified, removed or expired, or the
        application's state set or cleared); C{None} for no one.
    @ivar resourcePolicy: asked whether the resource of an initial
        publication exists (RFC 3903 section 6 step 1); C{None} knows every
        resource.
    @ivar publishAuthorizer: the L{IPublishAuthorizer} asked about every
        PUBLISH (see the module docstring), or C{None}.
    @ivar defaultExpires: overrides every package's C{defaultExpires} for
        publications when not C{None}.
    @ivar minExpires: overrides every package's C{minExpires} when not
        C{None}.
    @ivar maxExpires: overrides every package's C{maxExpires} when not
        C{None}.
    """

    log = Logger()

    #: Whether each PUBLISH (initial, refresh, modify, removal) is logged,
    #: at debug level; off by default, since C{twistd} writes every event
    #: to its log file whatever its level (see
    #: L{sipevents.notifier.notifier.Notifier.logLifecycle}).
    logLifecycle: bool = False

    def __init__(
        self,
        clock: IReactorTime,
        store: IPublicationStore,
        registry: IPackageRegistry,
        maxBodySize: int = 65536,
        onStateChanged: Callable[[str, str], object] | None = None,
        resourcePolicy: IResourcePolicy | None = None,
        defaultExpires: int | None = None,
        minExpires: int | None = None,
        maxExpires: int | None = None,
        publishAuthorizer: IPublishAuthorizer | None = None,
    ) -> None:
        self.clock = clock
        self.publishAuthorizer = publishAuthorizer
        self.store = store
        self.registry = registry
        self.maxBodySize = maxBodySize
        self.onStateChanged = onStateChanged
        self.resourcePolicy = resourcePolicy
        self.defaultExpires = defaultExpires
        self.minExpires = minExpires
        self.maxExpires = maxExpires
        self._live: dict[str, _Live] = {}
        self._expiry = TimerQueue(clock, self._expire)
        self._byResource: dict[tuple[str, str], dict[str, None]] = {}
        self._states: dict[tuple[str, str], object] = {}
        self._sequence = 0
        self._waiting: dict[str, list[Callable[[], bool]]] = {}
        self._started = False

    def __repr__(self) -> str:
        return f"<PublicationManager {len(self._live)} publications>"

    # Wiring

    @property
    def accept(self) -> tuple[str, ...]:
        """
        Every body type some package takes in PUBLISH: the user agent core
        answers 415 for any other (L{IRequestHandler.accept}).
        """
        return self.registry.publishContentTypes()

    def install(self, userAgent: IUserAgent) -> None:
        """
        Serve PUBLISH for C{userAgent}.
        """
        userAgent.registerMethod("PUBLISH", self)

    def start(self) -> Deferred[None]:
        """
        Rebuild the working set from the store (call it once the store is
        loaded): every stored publication that has not expired is parsed
        by its package again and its expiry scheduled; expired ones are
        removed without telling anyone (nobody watched them go while we
        were down, and the notifier sends each restored subscription the
        current state when it next changes). A publication whose package
        is not served now is left in the store untouched unless expired; one
        its package now refuses is removed.

        Calling it again does nothing.

        @return: a L{Deferred} that fires once the removals are durable.
        """
        if self._started:
            return succeed(None)
        self._started = True
        now = self.clock.seconds()
        removals: list[Deferred[None]] = []
        restored = dropped = 0
        for record in self.store.allPublications():
            if record.expiresAt is not None and record.expiresAt <= now:
                removals.append(self.store.removePublication(record.etag))
                dropped += 1
                continue
            try:
                package = self.registry.resolveEventType(record.eventType)
            except BadEvent:
                self.log.warn(
                    "Kept publication {etag} of {resource} for {eventType}: "
                    "no such package is served",
                    etag=record.etag,
                    resource=record.resource,
                    eventType=record.eventType,
                )
                continue
            try:
                document = package.parsePublication(record.contentType, record.body)
            except SIPError as error:
                self.log.warn(
                    "Removed stored publication {etag} of {resource} for "
                    "{eventType}: {status} {reason}",
                    etag=record.etag,
                    resource=record.resource,
                    eventType=record.eventType,
                    status=error.status,
                    reason=error.reason,
                )
                removals.append(self.store.removePublication(record.etag))
                dropped += 1
                continue
            self._add(record, document, self._nextSequence())
            restored += 1
        self.log.info(
            "Restored {restored} publications, dropped {dropped} expired or invalid",
            restored=restored,
            dropped=dropped,
        )
        return gatherResults(removals, consumeErrors=True).addCallback(lambda _: None)

    def stop(self) -> Deferred[None]:
        """
        Cancel every expiry timer (the publications stay in the store, and
        L{start} on a new manager restores them).
        """
        self._expiry.clear()
        self._started = False
        return succeed(None)

    # State

    def currentState(self, resource: str, eventType: str) -> object | None:
        """
        The composed state of C{resource} for C{eventType}
        (L{IEventPackage.composeState} of its live publications, oldest
        first), or C{None} when nothing is published: the notifier renders
        neutral state then. Composed once per change and cached.
        """
        key = (resource, eventType)
        try:
            return self._states[key]
        except KeyError:
            pass
        etags = self._byResource.get(key)
        if not etags:
            return None
        try:
            package = self.registry.resolveEventType(eventType)
        except BadEvent:
            return None
        entries = sorted(
            (self._live[etag] for etag in etags), key=lambda live: live.sequence
        )
        try:
            state = package.composeState(resource, [live.document for live in entries])
        except Exception:
            self.log.failure(
                "{package!r} could not compose the state of {resource}",
                package=package,
                resource=resource,
            )
            return None
        self._states[key] = state
        return state

    def publications(
        self, resource: str | None = None, eventType: str | None = None
    ) -> list[PublicationRecord]:
        """
        The live publications, oldest first, optionally only those of
        C{resource} and C{eventType}.
        """
        lives = sorted(self._live.values(), key=lambda live: live.sequence)
        return [
            live.record
            for live in lives
            if (resource is None or live.record.resource == resource)
            and (eventType is None or live.record.eventType == eventType)
        ]

    def setApplicationState(
        self, eventType: str, resource: str, contentType: str, body: bytes
    ) -> Deferred[None]:
        """
        Set the application's contribution to the state of C{resource}: a
        publication that never expires, with the entity-tag
        L{applicationETag}, replacing the previous one; watchers are told
        through L{onStateChanged} unless nothing changed.

        @param resource: a resource key or URI (made a key with
            L{canonicalResource}).
        @param contentType: the body's type, one of the package's
            C{publishContentTypes}; parameters are ignored.
        @raise SIPError: 489 for an event type not served (or taking no
            PUBLISH), 415 for a type the package does not take, what the
            package's parser raises (400) for a bad body.
        @return: a L{Deferred} that fires once the state is stored.
        """
        package = self.registry.resolveEventType(eventType)
        if not package.publishContentTypes:
            raise BadEvent(self._publishable())
        mimeType = parseContentType(contentType).mimeType
        if mimeType not in package.publishContentTypes:
            raise UnsupportedMediaType(
                headers=[("Accept", ", ".join(package.publishContentTypes))]
            )
        document = package.parsePublication(mimeType, body)
        resource = _canonical(resource)
        etag = applicationETag(eventType, resource)
        previous = self._live.get(etag)
        if (
            previous is not None
            and previous.record.contentType == mimeType
            and previous.record.body == body
        ):
            return succeed(None)
        if previous is not None:
            self._forget(previous)
        record = PublicationRecord(etag, resource, eventType, mimeType, body, None)
        self._add(record, document, self._nextSequence())
        written = self.store.putPublication(record)
        self._changed(resource, eventType)
        return written

    def clearApplicationState(self, eventType: str, resource: str) -> Deferred[None]:
        """
        Remove the application's contribution set by
        L{setApplicationState}; watchers are told of the state that
        remains (neutral state if none). Does nothing when there is none.

        @return: a L{Deferred} that fires once the removal is stored.
        """
        resource = _canonical(resource)
        etag = applicationETag(eventType, resource)
        previous = self._live.get(etag)
        if previous is None:
            return succeed(None)
        self._forget(previous)
        removed = self.store.removePublication(etag)
        self._changed(resource, eventType)
        return removed

    # The working set

    def _nextSequence(self) -> int:
        self._sequence += 1
        return self._sequence

    def _add(self, record: PublicationRecord, document: object, sequence: int) -> _Live:
        """
        Put a publication in the working set and schedule its expiry.
        """
        live = _Live(record, document, sequence)
        if record.expiresAt is not None:
            self._expiry.schedule(record.expiresAt, record.etag)
        self._live[record.etag] = live
        key = (record.resource, record.eventType)
        etags = self._byResource.get(key)
        if etags is None:
            etags = self._byResource[key] = {}
        etags[record.etag] = None
        return live

    def _forget(self, live: _Live) -> None:
        """
        Take a publication out of the working set and cancel its timer.
        """
        record = live.record
        self._expiry.cancel(record.etag)
        self._live.pop(record.etag, None)
        key = (record.resource, record.eventType)
        etags = self._byResource.get(key)
        if etags is not None:
            etags.pop(record.etag, None)
            if not etags:
                del self._byResource[key]

    def _isNewest(self, live: _Live) -> bool:
        """
        Whether C{live} is the most recently modified publication of its
        resource and event type.
        """
        record = live.record
        etags = self._byResource.get((record.resource, record.eventType), {})
        return all(self._live[etag].sequence <= live.sequence for etag in etags)

    def _changed(self, resource: str, eventType: str) -> None:
        """
        The state of C{resource} may have changed: drop its composed state
        and tell the notifier.
        """
        self._states.pop((resource, eventType), None)
        callback = self.onStateChanged
        if callback is None:
            return
        try:
            callback(resource, eventType)
        except Exception:
            self.log.failure(
                "State change callback failed for {resource} ({eventType})",
                resource=resource,
                eventType=eventType,
            )

    def _expire(self, key: Hashable) -> None:
        """
        A publication's lifetime is over (RFC 3903 section 4.2): remove it
        and recompose.
        """
        etag = cast(str, key)
        live = self._live.get(etag)
        if live is None:
            return
        record = live.record
        self._forget(live)
        self.log.info(
            "Publication {etag} of {resource} for {eventType} expired",
            etag=etag,
            resource=record.resource,
            eventType=record.eventType,
        )
        self.store.removePublication(etag).addErrback(self._storeFailed, etag)
        self._changed(record.resource, record.eventType)

    def _storeFailed(self, failure: Failure, etag: str) -> None:
        self.log.failure(
            "The store failed to remove publication {etag}", failure, etag=etag
        )

    # PUBLISH

    def handleRequest(
        self, request: Request, context: IRequestContext
    ) -> Response | Deferred[Response | None] | None:
        """
        Process a PUBLISH (RFC 3903 section 6), in order with the others
        for the same Request-URI.
        """
        resource = canonicalResource(request.uri)
        waiting = self._waiting.get(resource)
        if waiting is not None:
            # Cancelling (the user agent does after Timer F) cancels what
            # the request is waiting on once it runs, which undoes it.
            inner: list[Deferred[Response | None]] = []

            def cancel(done: Deferred[Response | None]) -> None:
                if inner:
                    inner[0].cancel()

            done: Deferred[Response | None] = Deferred(cancel)
            waiting.append(
                lambda: self._runQueued(request, context, resource, done, inner)
            )
            return done
        result = self._attempt(request, context, resource)
        if isinstance(result, Deferred) and not result.called:
            self._waiting[resource] = []
            result.addBoth(self._next, resource)
        return result

    def _attempt(
        self, request: Request, context: IRequestContext, resource: str
    ) -> Response | Deferred[Response | None] | None:
        """
        L{_process}, logging a refusal.
        """
        try:
            result = self._process(request, context, resource)
        except SIPError as error:
            self._logRefusal(error, request, context, resource)
            raise
        if isinstance(result, Deferred):
            result.addErrback(self._refusedLater, request, context, resource)
        return result

    def _runQueued(
        self,
        request: Request,
        context: IRequestContext,
        resource: str,
        done: Deferred[Response | None],
        inner: list[Deferred[Response | None]],
    ) -> bool:
        """
        Process a PUBLISH that waited for an earlier one, firing C{done}
        with the outcome.

        @return: whether it is itself waiting on something, so the ones
            behind it go on waiting.
        """
        if done.called:
            # The user agent gave up on it (a 408 after Timer F cancelled
            # C{done}): the client was told it failed, so it must not
            # take effect.
            return False
        try:
            result = self._attempt(request, context, resource)
        except Exception:
            done.errback(Failure())  # type: ignore[no-untyped-call]
            return False
        if isinstance(result, Deferred):
            if not result.called:
                inner.append(result)
                result.addBoth(self._next, resource)
                result.chainDeferred(done)
                return True
            result.chainDeferred(done)
            return False
        done.callback(result)
        return False

    def _next(self, result: object, resource: str) -> object:
        """
        The PUBLISH that kept C{resource} busy is done: process those that
        waited behind it, until one has to wait again.
        """
        waiting = self._waiting.get(resource)
        while waiting:
            job = waiting.pop(0)
            if job():
                return result
        self._waiting.pop(resource, None)
        return result

    def _logRefusal(
        self,
        error: SIPError,
        request: Request,
        context: IRequestContext,
        resource: str,
    ) -> None:
        """
        Log a refused PUBLISH: a bad body as a warning (RFC 3903 section
        6 step 5; someone sends us broken or hostile documents), the rest
        for information.
        """
        emit = self.log.warn if error.status in _BODY_STATUSES else self.log.info
        emit(
            "Refused PUBLISH for {resource} from {host}:{port}: {status} {reason}",
            resource=resource,
            host=context.source.host,
            port=context.source.port,
            status=error.status,
            reason=error.reason,
            event=request.headers.get("Event"),
        )

    def _refusedLater(
        self,
        failure: Failure,
        request: Request,
        context: IRequestContext,
        resource: str,
    ) -> Failure:
        if isinstance(failure.value, SIPError):
            self._logRefusal(failure.value, request, context, resource)
        return failure

    def _publishable(self) -> list[str]:
        """
        The event types that take PUBLISH, for the Allow-Events of a 489.
        """
        return [
            package.name for package in self.registry if package.publishContentTypes
        ]

    def _process(
        self, request: Request, context: IRequestContext, resource: str
    ) -> Response | Deferred[Response | None] | None:
        """
        RFC 3903 section 6, up to the resource policy (step 2, then step 1
        for initial publications; see the module docstring).

        @raise SIPError: to refuse the request.
        """
        # Step 2: the Event header.
        event = request.event
        if event is None:
            raise BadEvent(self._publishable(), "Missing Event Header")
        package = self.registry.get(event.package)
        if package is None or event.templates or not package.publishContentTypes:
            raise BadEvent(self._publishable())
        eventType = event.eventType
        # Step 3, first part: a single entity-tag, or none.
        tags = request.headers.getAll("SIP-If-Match")
        if len(tags) > 1:
            raise SIPError("Several SIP-If-Match Header Fields", 400)
        etag: str | None = None
        if tags:
            etag = tags[0].strip()
            # entity-tag = token (RFC 3903 section 12).
            if not isToken(etag):
                raise SIPError("Bad SIP-If-Match Header Field", 400)
        identity = context.identity
        if identity is not None and not identityOwns(identity, request.uri):
            raise Forbidden("Not the authenticated user's address of record")
        authorizer = self.publishAuthorizer
        if authorizer is not None and not authorizer.authorizePublish(
            identity, resource, eventType, request
        ):
            raise Forbidden("Publication not authorized")
        # Step 1, for initial publications.
        policy = self.resourcePolicy
        if etag is None and policy is not None:
            known = policy.isKnown(resource, eventType)
            if isinstance(known, Deferred):
                return known.addCallback(
                    self._policyAnswered,
                    request,
                    context,
                    resource,
                    package,
                    eventType,
                )
            if not known:
                raise NotFound()
        return self._publish(request, context, resource, package, eventType, etag)

    def _policyAnswered(
        self,
        known: bool,
        request: Request,
        context: IRequestContext,
        resource: str,
        package: IEventPackage,
        eventType: str,
    ) -> Response | Deferred[Response | None] | None:
        if not known:
            raise NotFound()
        return self._publish(request, context, resource, package, eventType, None)

    def _publish(
        self,
        request: Request,
        context: IRequestContext,
        resource: str,
        package: IEventPackage,
        eventType: str,
        etag: str | None,
    ) -> Response | Deferred[Response | None] | None:
        """
        RFC 3903 section 6, steps 3 to 6.

        @raise SIPError: to refuse the request.
        """
        now = self.clock.seconds()
        # Step 3, second part: the entity-tag must name a live publication
        # of this resource and event package.
        previous: _Live | None = None
        if etag is not None:
            previous = self._live.get(etag)
            if (
                previous is None
                or previous.record.resource != resource
                or previous.record.eventType != eventType
                or previous.record.expiresAt is None
                or previous.record.expiresAt <= now
            ):
                raise ConditionalRequestFailed()
        # Step 4: the expiration.
        expires = grantExpires(
            request.expires,
            package,
            PUBLISH_EXPIRY,
            self.minExpires,
            self.maxExpires,
            self.defaultExpires,
        )
        # Step 5: the body.
        body = request.body
        document: object = None
        mimeType = ""
        if body:
            if len(body) > self.maxBodySize:
                raise RequestEntityTooLarge(f"Body Over {self.maxBodySize} Octets")
            contentType = request.contentType
            if contentType is None:
                raise SIPError("Missing Content-Type", 400)
            mimeType = contentType.mimeType
            publishTypes: Sequence[str] = package.publishContentTypes
            if mimeType not in publishTypes:
                raise UnsupportedMediaType(
                    headers=[("Accept", ", ".join(publishTypes))]
                )
            document = package.parsePublication(mimeType, body)
        elif previous is None:
            raise SIPError("Initial PUBLISH Without Body", 400)
        # Steps 5 and 6: apply, and answer once durable.
        newETag = self._newETag()
        if expires == 0:
            if previous is None:
                # An initial publication for no time: nothing to store.
                return self._ok(request, context, newETag, 0)
            return self._remove(request, context, previous, newETag)
        if previous is None:
            record = PublicationRecord(
                newETag, resource, eventType, mimeType, body, now + expires
            )
            changed = True
        elif not body:
            record = previous.record.evolve(etag=newETag, expiresAt=now + expires)
            document = previous.document
            changed = False
        else:
            record = previous.record.evolve(
                etag=newETag, contentType=mimeType, body=body, expiresAt=now + expires
            )
            # The same body again changes nothing, unless another
            # publication was modified since: this one becomes the newest.
            changed = (mimeType, body) != (
                previous.record.contentType,
                previous.record.body,
            ) or not self._isNewest(previous)
        if previous is not None:
            self._forget(previous)
        sequence = (
            previous.sequence
            if previous is not None and not changed
            else self._nextSequence()
        )
        added = self._add(record, document, sequence)
        writes = [self.store.putPublication(record)]
        if previous is not None:
            writes.append(self.store.removePublication(previous.record.etag))
        if self.logLifecycle:
            self.log.debug(
                "PUBLISH {operation} {etag} of {resource} for {eventType}, {expires}s",
                operation="initial"
                if previous is None
                else ("modify" if body else "refresh"),
                etag=newETag,
                resource=resource,
                eventType=eventType,
                expires=expires,
            )
        return self._whenStored(
            writes, request, context, newETag, expires, added, previous, changed
        )

    def _remove(
        self,
        request: Request,
        context: IRequestContext,
        previous: _Live,
        newETag: str,
    ) -> Response | Deferred[Response | None] | None:
        """
        Remove a publication (RFC 3903 section 4.5 and 6 step 5).
        """
        record = previous.record
        self._forget(previous)
        writes = [self.store.removePublication(record.etag)]
        if self.logLifecycle:
            self.log.debug(
                "PUBLISH removed {etag} of {resource} for {eventType}",
                etag=record.etag,
                resource=record.resource,
                eventType=record.eventType,
            )
        return self._whenStored(
            writes, request, context, newETag, 0, None, previous, True
        )

    def _whenStored(
        self,
        writes: list[Deferred[None]],
        request: Request,
        context: IRequestContext,
        etag: str,
        expires: int,
        added: _Live | None,
        previous: _Live | None,
        changed: bool,
    ) -> Response | Deferred[Response | None] | None:
        """
        Answer 200 once C{writes} are durable; undo the change and answer
        500 if one fails (RFC 3903 section 6 step 5: processing is atomic).
        """
        stored: Deferred[list[None]] = gatherResults(writes, consumeErrors=True)
        answered: Deferred[Response] = stored.addCallbacks(
            lambda _: self._ok(request, context, etag, expires),
            lambda failure: self._undo(
                failure, request, context, added, previous, changed
            ),
        )
        # With a store whose writes are done at once (the memory store),
        # answer at once.
        outcome: list[Response] = []

        def keep(response: Response) -> Response:
            outcome.append(response)
            return response

        answered.addCallback(keep)
        live = added if added is not None else previous
        if outcome:
            # Answer before telling the watchers: a fan-out to thousands of
            # them must not hold the publisher's 200 past T1 and make it
            # retransmit (RFC 3261 section 17.1.2.2).
            context.sendResponse(outcome[0])
            if changed and live is not None:
                self._changed(live.record.resource, live.record.eventType)
            return None
        # With a write-behind store, watchers are told at once, as the
        # working set already holds the change; the 200 waits until it is
        # durable, and a failure undoes it (and tells them again).
        if changed and live is not None:
            self._changed(live.record.resource, live.record.eventType)
        return answered  # type: ignore[return-value]

    def _undo(
        self,
        failure: Failure,
        request: Request,
        context: IRequestContext,
        added: _Live | None,
        previous: _Live | None,
        changed: bool,
    ) -> Response:
        """
        The store failed: put the working set back as it was before the
        request, and answer 500.
        """
        if isinstance(failure.value, FirstError):
            failure = failure.value.subFailure
        self.log.failure(
            "The store failed; PUBLISH for {resource} undone",
            failure,
            resource=canonicalResource(request.uri),
        )
        if added is not None and self._live.get(added.record.etag) is added:
            self._forget(added)
            self.store.removePublication(added.record.etag).addErrback(
                self._storeFailed, added.record.etag
            )
        if previous is not None and previous.record.etag not in self._live:
            self._add(previous.record, previous.document, previous.sequence)
            self.store.putPublication(previous.record).addErrback(
                self._storeFailed, previous.record.etag
            )
        live = added if added is not None else previous
        if changed and live is not None:
            self._changed(live.record.resource, live.record.eventType)
        return makeResponse(request, 500, "Publication Not Stored", toTag=context.toTag)

    def _ok(
        self, request: Request, context: IRequestContext, etag: str, expires: int
    ) -> Response:
        """
        The 200 of RFC 3903 section 6 step 6: the new entity-tag and the
        chosen expiration.
        """
        return makeResponse(
            request,
            200,
            toTag=context.toTag,
            headers=[("SIP-ETag", etag), ("Expires", str(expires))],
        )

    def _newETag(self) -> str:
        """
        A fresh entity-tag (see the module docstring), unused by any live
        publication.
        """
        while True:
            etag = secrets.token_urlsafe(12)
            if etag not in self._live:
                return etag
