# -*- test-case-name: tests.test_notifier -*-
"""
The notifier (RFC 6665 section 4.2): answers SUBSCRIBE, keeps the
subscriptions, and sends every NOTIFY.

L{Notifier} is the L{IRequestHandler} for SUBSCRIBE (installed with
L{Notifier.install}) and the application's L{INotifier}. The publication
manager tells it when a resource's state changes
(L{Notifier.stateChanged}); it renders NOTIFY bodies with the event
package and sends them through the user agent.

An authenticated SUBSCRIBE (one whose context has an identity, see
L{sipevents.sip.useragent.UserAgent.requireAuthentication}) whose From is
not the authenticated user's address of record is answered 403 before
anything else (RFC 3856 section 6.6.1, RFC 6665 section 6.1: access
control by subscriber identity needs the identity to be the subscriber's),
and so is one inside a dialog whose subscriber is someone else: a refresh
or an unsubscription is the subscriber's own business.

Processing a SUBSCRIBE outside a dialog (RFC 6665 section 4.2.1.1), in
order:

  1. the Event header names a package (and template) we serve, else 489
     with Allow-Events (L{IPackageRegistry.resolve}); a SUBSCRIBE
     without Event gets 489 too: PINT (section 4.2.3) is not supported;
  2. exactly one SIP or SIPS Contact we can route to, else 400 (RFC 3261
     section 8.1.1.8 and 12.1.1);
  3. the duration (L{sipevents.notifier.expiry.grantExpires}): the
     package default when absent, shortened to the maximum, 423 with
     Min-Expires when below the minimum (and above zero, below an hour);
  4. a body type the subscriber accepts, else 406
     (L{sipevents.notifier.states.chooseContentType});
  5. the resource exists (L{IResourcePolicy}), else 404;
  6. the authorizer (L{ISubscriptionAuthorizer}): an immediate reject is
     a 403; a L{Deferred} that has not fired makes the subscription
     pending;
  7. 200 (202 for a pending one with C{rfc3265Compat}) with Expires, our
     To tag, a Contact and the request's Record-Route; the dialog per RFC
     3261 section 12.1.1; and at once a NOTIFY with the current state, or
     neutral state while pending (RFC 6665 section 4.2.1.2). With
     C{Expires: 0} it is a fetch (section 4.4.3): the same answer, one
     NOTIFY C{terminated;reason=timeout} with the state, and nothing kept.

Inside a dialog (a To tag): no subscription in the dialog is 481; a CSeq
lower than the last one is 500 (RFC 3261 section 12.2.2); then the
subscription with the same event type and C{id} (RFC 6665 section 8.2.1)
is refreshed (section 4.2.1.4: a new duration, never longer than asked;
200; a NOTIFY) or, with C{Expires: 0}, ended (200, then a final NOTIFY
C{terminated;reason=timeout} with the state). An event type or C{id} not
yet in the dialog creates a new subscription in it: dialog sharing
(section 4.5.2) is implemented, since old clients put several
subscriptions in one dialog and answering 403 would leave them without
state; the subscriptions share the dialog's route set and CSeq space and
expire independently.

NOTIFY generation (section 4.2.2): Event echoing the subscription's type
and C{id}; Subscription-State C{active} or C{pending} with C{expires=} the
seconds remaining, or C{terminated} with C{reason=} and C{retry-after=};
Content-Type and body from the package; our Contact; Max-Forwards 70; a
CSeq that increases in each dialog; sent through the route set to the
remote target (L{sipevents.sip.dialog}). A NOTIFY answered 404, 405, 410, 416,
480 to 485, 489, 501 or 604, or timing out (Timer F), removes the
subscription without a further NOTIFY; other failures are logged and the
subscription kept. State changes are coalesced per the package's
C{minNotifyInterval} (section 5.4.10): a change within the interval after
a NOTIFY is sent when the interval has passed, with the state of that
moment, so the latest state always arrives and no change is lost; the
NOTIFY that follows a SUBSCRIBE, a refresh or an authorization decision is
never delayed.

Design decisions:

  - The store is the working set. Look-ups are synchronous; writes return
    L{Deferred}s that the notifier does not wait for (write-behind),
    except for the CSeq reservation below. Records are immutable: every
    change is C{record.evolve(...)} and C{store.putSubscription}, always
    from the record the store holds at that moment.
  - Runtime state beside the store is small: one queue of expiry
    deadlines (L{LookupTimerQueue}: a single C{IDelayedCall}, no timer
    object per subscription, 16 bytes per deadline and no index of its
    own, since the records hold the deadlines), one L{TimerQueue} of
    coalescing intervals holding only subscriptions NOTIFYed within their
    interval, the set of those with a change waiting, the next CSeq of
    each dialog that has sent a NOTIFY since start-up, and the authorizer
    decisions still awaited.
  - NOTIFY CSeqs: C{record.localCSeq} is a high-water mark, reserved ahead
    of use in blocks of C{cseqBlock} and persisted (for every subscription
    of the dialog) before any CSeq at or above the last persisted mark is
    used: when half a block is left, the next block is reserved while the
    rest of the current one is used, and a NOTIFY that would go past a
    reservation still being written waits for the write
    (C{ISubscriptionStore.reserveCSeq}); if the write fails, that NOTIFY is
    not sent, since after a crash its CSeq could be used again. After a
    restart each dialog goes on from its stored mark, so a crash can never
    make a CSeq go back.
  - Restart (L{start}): subscriptions that expired while the notifier was
    down are removed without a NOTIFY; the others get their expiry
    deadlines back. A subscription still pending has lost its authorizer
    L{Deferred}; the authorizer is asked again when it is refreshed.
  - The resource of a subscription is
    L{sipevents.records.canonicalResource} of the Request-URI; a new
    subscription in an existing dialog is about the dialog's resource (the
    Request-URI of an in-dialog request is our Contact).
  - The key of a subscription is the dialog's local tag (our To tag, a
    64-bit keyed hash unique to the dialog), so it costs no memory of its
    own; further subscriptions in the same dialog get the local tag, event
    type and C{id}.
  - SUBSCRIBE bodies are ignored: no package we serve defines them (RFC
    6665 section 5.4.3).
  - A final NOTIFY for a reason other than C{timeout} has no body (see
    L{sipevents.notifier.states}).
  - Lifecycle events (created, refreshed, terminated) are logged at debug
    level, and only when L{Notifier.logLifecycle} is set: a busy server has
    thousands a second, and C{twistd} writes every event to its log file
    whatever its level (formatting, time-stamping and writing three lines
    per subscription cost more CPU than the rest of the NOTIFY path's
    bookkeeping). NOTIFY failures that end a subscription are logged at
    info, others at warn, always.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from sipevents.errors import BadEvent, CallDoesNotExist, Forbidden, NotFound, SIPError
from sipevents.interfaces import (
    IEventPackage,
    IEventStateCompositor,
    INotifier,
    IPackageRegistry,
    IRequestContext,
    IRequestHandler,
    IResourcePolicy,
    ISubscriptionAuthorizer,
    ISubscriptionStore,
    IUserAgent,
)
from sipevents.notifier.authorization import (
    ACCEPT,
    REJECT,
    AcceptAll,
    AllResourcesKnown,
    identityOwns,
)
from sipevents.notifier.expiry import SUBSCRIBE_EXPIRY, grantExpires
from sipevents.notifier.states import (
    NotifyKind,
    SubscriptionInput,
    Transition,
    chooseContentType,
    formatSubscriptionState,
    transition,
)
from sipevents.records import ACTIVE, PENDING, SubscriptionRecord, canonicalResource
from sipevents.sip.dialog import (
    SUBSCRIPTION_ENDING_CODES,
    WILDCARD_HOSTS,
    buildRequest,
    checkRemoteCSeq,
    contactURI,
    dialogFromRequest,
    listeningContact,
    nextHop,
    remoteTargetOf,
    secureRequest,
)
from sipevents.sip.dialogstate import Dialog
from sipevents.sip.headers import Event
from sipevents.sip.timers import LookupTimerQueue, TimerQueue
from sipevents.sip.uri import SIPURI, formatURI

if TYPE_CHECKING:
    from collections.abc import Hashable

    from sipevents.sip.addresses import Source, Target
    from sipevents.sip.message import Request, Response

__all__ = [
    "Notifier",
]

#: CSeqs reserved at a time (see the module docstring).
DEFAULT_CSEQ_BLOCK = 100


#: Shared one-type tuples for C{SubscriptionRecord.accept}, so that a
#: hundred thousand subscriptions share a handful of tuples.
_acceptTuples: dict[str, tuple[str, ...]] = {}


def _acceptTuple(contentType: str, package: IEventPackage) -> tuple[str, ...]:
    """
    The C{accept} of a subscription to C{package} whose NOTIFYs carry
    C{contentType}: empty for the package's first (default) type, else a
    shared one-type tuple.
    """
    if contentType == package.contentTypes[0]:
        return ()
    shared = _acceptTuples.get(contentType)
    if shared is None:
        if len(_acceptTuples) > 256:
            _acceptTuples.clear()
        shared = _acceptTuples[contentType] = (sys.intern(contentType),)
    return shared


#: The Event value of NOTIFYs, by event type, C{id} and parameters (see
#: L{Notifier._eventValue}); bounded, cleared when full.
_eventValues: dict[tuple[str, str | None, tuple[tuple[str, str | None], ...]], str] = {}


def _logFailure(failure: Failure, log: Logger, what: str) -> None:
    log.failure("Store write failed: {what}", failure, what=what)


@dataclass(slots=True)
class _Admission:
    """
    A SUBSCRIBE that will create a subscription, between its checks.
    """

    request: Request
    context: IRequestContext
    package: IEventPackage
    event: Event
    dialog: Dialog
    #: The dialog's secure flag (RFC 3261 section 12.1.1).
    secure: bool
    resource: str
    eventType: str
    expires: int
    contentType: str
    key: str
    #: The subscriber (From URI), as text.
    watcher: str
    #: The dialog's CSeq high-water mark when it exists already (dialog
    #: sharing), else C{None}.
    highWater: int | None


@implementer(INotifier, IRequestHandler)
class Notifier:
    """
    The RFC 6665 notifier; see the module docstring.

    @ivar clock: the time source.
    @ivar userAgent: the L{IUserAgent} that receives SUBSCRIBE and sends
        NOTIFY.
    @ivar store: the L{ISubscriptionStore}.
    @ivar registry: the event packages served (L{IPackageRegistry}).
    @ivar publications: where resource state comes from
        (L{IEventStateCompositor}).
    @ivar authorizer: the L{ISubscriptionAuthorizer}.
    @ivar resourcePolicy: the L{IResourcePolicy}.
    @ivar rfc3265Compat: answer 202, not 200, for pending subscriptions, as
        RFC 3265 did.
    @ivar minExpires: overrides every package's C{minExpires} when set.
    @ivar maxExpires: overrides every package's C{maxExpires} when set.
    @ivar cseqBlock: how many NOTIFY CSeqs are reserved at a time.
    """

    log = Logger()

    #: SUBSCRIBE bodies are not checked by the user agent (see the module
    #: docstring).
    accept: Sequence[str] | None = None

    #: Whether subscription lifecycle events (created, refreshed,
    #: unsubscribed, expired, terminated ...) are logged, at debug level;
    #: off by default, see the module docstring.
    logLifecycle: bool = False

    def __init__(
        self,
        clock: IReactorTime,
        userAgent: IUserAgent,
        store: ISubscriptionStore,
        registry: IPackageRegistry,
        publications: IEventStateCompositor,
        authorizer: ISubscriptionAuthorizer | None = None,
        resourcePolicy: IResourcePolicy | None = None,
        rfc3265Compat: bool = False,
        minExpires: int | None = None,
        maxExpires: int | None = None,
        cseqBlock: int = DEFAULT_CSEQ_BLOCK,
    ) -> None:
        if cseqBlock < 2:
            raise ValueError("cseqBlock must be at least 2")
        self.clock = clock
        self.userAgent = userAgent
        self.store = store
        self.registry = registry
        self.publications = publications
        self.authorizer: ISubscriptionAuthorizer = (
            AcceptAll() if authorizer is None else authorizer
        )
        self.resourcePolicy: IResourcePolicy = (
            AllResourcesKnown() if resourcePolicy is None else resourcePolicy
        )
        self.rfc3265Compat = rfc3265Compat
        self.minExpires = minExpires
        self.maxExpires = maxExpires
        self.cseqBlock = cseqBlock
        # Expiry deadlines live in the records (expiresAt); the queue asks
        # the store for them rather than keeping a key index of its own.
        self._expiry = LookupTimerQueue(clock, self._expired, self._deadlineOf)
        self._throttle = TimerQueue(clock, self._throttleEnded)
        self._dirty: set[str] = set()
        self._nextCSeq: dict[str, int] = {}
        # Per dialog: the CSeq high-water mark durable before the
        # reservation being written, and who waits for it (or why it
        # failed).
        self._reserving: dict[str, tuple[int, list[Deferred[None]] | Failure]] = {}
        self._decisions: dict[str, Deferred[Any]] = {}
        self._contacts: dict[tuple[str, bool], str] = {}

    def __repr__(self) -> str:
        return f"<Notifier {len(self._expiry)} subscriptions>"

    # Life cycle

    def install(self) -> None:
        """
        Serve SUBSCRIBE on the user agent, and list our event packages in
        its Allow-Events (RFC 6665 section 4.4.4).
        """
        self.userAgent.registerMethod("SUBSCRIBE", self)
        self.userAgent.eventTypes = self.registry.eventTypes

    def start(self) -> Deferred[int]:
        """
        Take up the subscriptions of the loaded store: those that expired
        while we were down are removed without a NOTIFY; the others get
        their expiry deadlines, and their dialogs go on with the CSeq after
        their stored high-water mark (see the module docstring). A
        subscription whose event package is no longer served is ended with
        C{terminated;reason=noresource}.

        Call it once the store is loaded (C{IStore.load}), and before the
        publication manager's C{start}.

        @return: a L{Deferred} firing with how many subscriptions were
            restored.
        """
        return succeed(self._restore())

    def _restore(self) -> int:
        now = self.clock.seconds()
        restored = 0
        expired = 0
        packages: dict[str, IEventPackage | None] = {}
        for record in self.store.allSubscriptions():
            if record.expiresAt <= now:
                expired += 1
                self._write(self.store.removeSubscription(record.key), record.key)
                continue
            eventType = record.eventType
            if eventType not in packages:
                packages[eventType] = self._package(eventType)
            if packages[eventType] is None:
                # The package is no longer served: tell the watcher.
                self.log.warn(
                    "Subscription {key} to {resource}: event package "
                    "{eventType} no longer served",
                    key=record.key,
                    resource=record.resource,
                    eventType=record.eventType,
                )
                self._end(record, "noresource", None)
                continue
            restored += 1
            self._expiry.schedule(record.expiresAt, record.key)
        self.log.info(
            "Restored {restored} subscriptions; dropped {expired} that expired "
            "while stopped",
            restored=restored,
            expired=expired,
        )
        return restored

    def stop(self) -> Deferred[None]:
        """
        Stop every timer and forget awaited authorizer decisions. The
        subscriptions stay in the store for the next L{start}.
        """
        self._expiry.clear()
        self._throttle.clear()
        self._dirty.clear()
        decisions = list(self._decisions.values())
        self._decisions.clear()
        for decision in decisions:
            decision.cancel()
        return succeed(None)

    # IRequestHandler

    def handleRequest(
        self, request: Request, context: IRequestContext
    ) -> Response | Deferred[Response | None] | None:
        """
        Process a SUBSCRIBE (see the module docstring).
        """
        fromAddr = request.fromAddr
        callId = request.callId
        if fromAddr is None or callId is None:
            raise SIPError("Missing From or Call-ID", 400)
        identity = context.identity
        if identity is not None and not identityOwns(identity, fromAddr.uri):
            raise Forbidden("From is not the authenticated user")
        remoteTag = fromAddr.tag or ""
        if context.inDialog:
            toAddr = request.toAddr
            localTag = toAddr.tag if toAddr is not None else None
            records = self.store.subscriptionsByDialog(
                callId, localTag or "", remoteTag
            )
            if not records:
                raise CallDoesNotExist()
            return self._inDialog(request, context, records)
        # A new request whose dialog exists already: the same transaction
        # identity, so the same To tag, sent again after its transaction
        # ended; it is that dialog's.
        records = self.store.subscriptionsByDialog(callId, context.toTag, remoteTag)
        if records:
            return self._inDialog(request, context, records)
        return self._initial(request, context)

    def _initial(
        self, request: Request, context: IRequestContext
    ) -> Deferred[Response | None] | None:
        package = self.registry.resolve(request.event)
        event = cast(Event, request.event)
        dialog = dialogFromRequest(request, context.toTag, context.source)
        admission = self._admission(
            request,
            context,
            package,
            event,
            dialog,
            secureRequest(request, context.source),
            canonicalResource(request.uri),
            dialog.localTag,
            None,
        )
        return self._checkResource(admission)

    def _inDialog(
        self,
        request: Request,
        context: IRequestContext,
        records: list[SubscriptionRecord],
    ) -> Deferred[Response | None] | None:
        identity = context.identity
        if identity is not None and not identityOwns(identity, records[0].watcher):
            raise Forbidden("Not the subscriber of this dialog")
        cseq = checkRemoteCSeq(max(r.remoteCSeq for r in records), request)
        package = self.registry.resolve(request.event)
        event = cast(Event, request.event)
        eventType = event.eventType
        for record in records:
            # RFC 6665 section 8.2.1: the event type and id, byte by byte.
            if record.eventType == eventType and record.eventId == event.id:
                self._refresh(request, context, package, record, cseq)
                return None
        # Dialog sharing (RFC 6665 section 4.5.2).
        first = records[0]
        remoteTarget = remoteTargetOf(request) or first.remoteTarget
        source = context.source
        dialog = Dialog(
            callId=first.callId,
            localTag=first.localTag,
            remoteTag=first.remoteTag,
            localUri=first.localUri,
            remoteUri=first.remoteUri,
            remoteTarget=remoteTarget,
            routeSet=first.routeSet,
            remoteCSeq=cseq,
            flowTransport=source.transport.upper(),
            flowHost=source.host,
            flowPort=source.port,
        )
        key = f"{first.localTag} {eventType} {event.id or ''}"
        admission = self._admission(
            request,
            context,
            package,
            event,
            dialog,
            first.remoteTarget.startswith("sips:"),
            first.resource,
            key,
            max(r.localCSeq for r in records),
        )
        return self._checkResource(admission)

    def _expires(self, request: Request, package: IEventPackage) -> int:
        """
        The duration granted to C{request} (step 3 of the module
        docstring): C{package}'s default, minimum and maximum, with the
        operator's C{minExpires} and C{maxExpires} overriding the package's.

        @raise IntervalTooBrief: 423 below the minimum.
        """
        return grantExpires(
            request.expires,
            package,
            SUBSCRIBE_EXPIRY,
            self.minExpires,
            self.maxExpires,
        )

    def _admission(
        self,
        request: Request,
        context: IRequestContext,
        package: IEventPackage,
        event: Event,
        dialog: Dialog,
        secure: bool,
        resource: str,
        key: str,
        highWater: int | None,
    ) -> _Admission:
        """
        Steps 3 and 4 of the module docstring: the duration (423) and the
        body type (406).
        """
        expires = self._expires(request, package)
        contentType = chooseContentType(
            request.accept if "Accept" in request.headers else None,
            package.contentTypes,
        )
        fromAddr = request.fromAddr
        watcher = formatURI(fromAddr.uri) if fromAddr is not None else ""
        return _Admission(
            request,
            context,
            package,
            event,
            dialog,
            secure,
            # Not interned: most resources are watched by a few
            # subscriptions, and an interned string costs an entry in the
            # interpreter's table (about 40 bytes) for as long as it lives;
            # the store shares the resource among its subscriptions.
            resource,
            sys.intern(event.eventType),
            expires,
            contentType,
            key,
            watcher,
            highWater,
        )

    def _checkResource(self, admission: _Admission) -> Deferred[Response | None] | None:
        """
        Step 5: the resource policy (404).
        """
        known = self.resourcePolicy.isKnown(admission.resource, admission.eventType)
        if isinstance(known, Deferred):
            return known.addCallback(self._resourceChecked, admission)
        self._resourceChecked(known, admission)
        return None

    def _resourceChecked(self, known: bool, admission: _Admission) -> None:
        if not known:
            raise NotFound()
        self._authorize(admission)

    def _authorize(self, admission: _Admission) -> None:
        """
        Step 6: the authorizer, then step 7.
        """
        decision, awaited = self._askAuthorizer(
            admission.key,
            admission.watcher,
            admission.resource,
            admission.eventType,
            admission.request,
        )
        self._admit(admission, decision, awaited)

    def _askAuthorizer(
        self, key: str, watcher: str, resource: str, eventType: str, request: Request
    ) -> tuple[str | None, Deferred[Any] | None]:
        """
        Ask the authorizer about subscription C{key} (RFC 6665 section
        4.2.1.3). An answer given at once (a value, or a L{Deferred} that
        has fired) is returned; a L{Deferred} that has not fired is
        returned instead, and its answer goes to L{_lateDecision} when it
        comes (the caller keeps it in C{_decisions} meanwhile).

        @return: C{(decision, None)} or C{(None, deferred)}.
        @raise ValueError: for an immediate answer that is neither
            L{ACCEPT} nor L{REJECT}; an immediate failure is raised as is.
        """
        result = self.authorizer.authorize(watcher, resource, eventType, request)
        if not isinstance(result, Deferred):
            return self._checkDecision(result), None
        immediate: list[object] = []
        waiting = False

        def decided(value: object) -> None:
            if waiting:
                self._lateDecision(key, value)
            else:
                immediate.append(value)

        result.addBoth(decided)
        if immediate:
            value = immediate[0]
            if isinstance(value, Failure):
                value.raiseException()
            return self._checkDecision(value), None
        waiting = True
        return None, result

    @staticmethod
    def _checkDecision(value: object) -> str:
        if value == ACCEPT or value == REJECT:
            return str(value)
        raise ValueError(f"The authorizer answered {value!r}, not accept or reject")

    def _admit(
        self,
        admission: _Admission,
        decision: str | None,
        awaited: Deferred[Any] | None,
    ) -> None:
        """
        Step 7: answer, keep the subscription (unless it is a fetch), and
        send the first NOTIFY.

        @param decision: L{ACCEPT} or L{REJECT}, or C{None} while the
            authorizer has not decided.
        @param awaited: the authorizer's L{Deferred} when C{decision} is
            C{None}.
        """
        if decision == REJECT:
            transition("init", SubscriptionInput.REJECTED)
            raise Forbidden()
        poll = admission.expires == 0
        pending = decision is None
        if poll:
            step = transition(
                "init",
                SubscriptionInput.POLLED_PENDING
                if pending
                else SubscriptionInput.POLLED,
            )
        else:
            step = transition(
                "init",
                SubscriptionInput.AUTHORIZATION_PENDING
                if pending
                else SubscriptionInput.AUTHORIZED,
            )
        now = self.clock.seconds()
        dialog = admission.dialog
        newDialog = admission.highWater is None
        watcher = admission.watcher
        if watcher == dialog.remoteUri:
            # One string for both (see sipevents.sip.dialog._withoutTag).
            watcher = dialog.remoteUri
        highWater = admission.highWater
        if highWater is not None:
            # The dialog may have sent NOTIFYs since the request arrived.
            for sibling in self.store.subscriptionsByDialog(
                dialog.callId, dialog.localTag, dialog.remoteTag
            ):
                highWater = max(highWater, sibling.localCSeq)
        record = SubscriptionRecord(
            key=admission.key,
            resource=admission.resource,
            eventType=admission.eventType,
            eventId=admission.event.id,
            eventParams=admission.event.params,
            state=PENDING if pending else ACTIVE,
            expiresAt=now + admission.expires,
            watcher=watcher,
            accept=_acceptTuple(admission.contentType, admission.package),
            callId=dialog.callId,
            localTag=dialog.localTag,
            remoteTag=dialog.remoteTag,
            # Our URI is usually the resource as written: one string for
            # both (the store shares it among the resource's subscriptions).
            localUri=(
                admission.resource
                if dialog.localUri == admission.resource
                else dialog.localUri
            ),
            remoteUri=dialog.remoteUri,
            remoteTarget=dialog.remoteTarget,
            routeSet=dialog.routeSet,
            localCSeq=1 + self.cseqBlock if highWater is None else highWater,
            remoteCSeq=dialog.remoteCSeq,
            flowTransport=sys.intern(dialog.flowTransport),
            flowHost=dialog.flowHost,
            flowPort=dialog.flowPort,
        )
        self._respond(admission.context, pending, admission.expires, admission.secure)
        if poll:
            if awaited is not None:
                awaited.cancel()
            if self.logLifecycle:
                self.log.debug(
                    "Fetch of {eventType} state of {resource} by {watcher}",
                    eventType=record.eventType,
                    resource=record.resource,
                    watcher=record.watcher,
                )
            # Nothing is kept; a fetch in a new dialog uses CSeq 1.
            self._notify(record, step, cseq=1 if newDialog else None)
            return
        self._write(self.store.putSubscription(record), record.key)
        if newDialog:
            self._nextCSeq[record.localTag] = 1
        self._expiry.schedule(record.expiresAt, record.key)
        if awaited is not None:
            self._decisions[record.key] = awaited
        if self.logLifecycle:
            self.log.debug(
                "Subscription {key} created: {eventType} of {resource} for "
                "{watcher}, {state}, {expires}s",
                key=record.key,
                eventType=record.eventType,
                resource=record.resource,
                watcher=record.watcher,
                state=record.state,
                expires=admission.expires,
            )
        self._notify(record, step)

    def _respond(
        self, context: IRequestContext, pending: bool, expires: int, secure: bool
    ) -> None:
        """
        Answer a SUBSCRIBE that was accepted (RFC 6665 section 4.2.1.1,
        RFC 3261 section 12.1.1): 200, or 202 for a pending subscription in
        RFC 3265 compatibility mode; Expires; our Contact; the request's
        Record-Route values in order.
        """
        code = 202 if pending and self.rfc3265Compat else 200
        headers = [("Expires", str(expires))]
        contact = self._contactFor(context.source, secure)
        if contact is not None:
            headers.append(("Contact", f"<{contact}>"))
        request = context.request
        for value in request.headers.getAll("Record-Route"):
            headers.append(("Record-Route", value))
        context.respond(code, headers=headers)

    def _contactFor(self, source: Source, secure: bool) -> str | None:
        """
        Our Contact URI for a dialog created by a request from C{source}:
        the address and port of the connection (or socket) it came on, with
        the transport; for a socket bound to every interface, the address
        the transport layer writes in Via sent-by. Remembered per transport
        and address family for the NOTIFYs.
        """
        connection = source.connection
        transport = source.transport.upper()
        host: str = connection.localHost
        port: int = connection.localPort
        transportLayer = self.userAgent.transportLayer
        if transportLayer is not None and (
            host in WILDCARD_HOSTS or transportLayer.advertisedHost
        ):
            host = transportLayer.sentBy(transport, source.host)[0]
        if host in WILDCARD_HOSTS:
            return None
        contact = contactURI(transport, host, port, secure)
        if not secure:
            self._contacts[(transport, ":" in source.host)] = contact
        return contact

    def _notifyContact(self, record: SubscriptionRecord) -> str | None:
        """
        Our Contact URI for NOTIFYs in the dialog of C{record}: the one we
        gave for dialogs on its transport, or (after a restart) the one the
        transport layer would write in Via.
        """
        transport = record.flowTransport
        secure = record.remoteTarget.startswith("sips:")
        if not secure:
            contact = self._contacts.get((transport, ":" in record.flowHost))
            if contact is not None:
                return contact
        found = listeningContact(
            self.userAgent.transportLayer, transport, record.flowHost, secure
        )
        return None if found is None else found[0]

    def _refresh(
        self,
        request: Request,
        context: IRequestContext,
        package: IEventPackage,
        record: SubscriptionRecord,
        cseq: int,
    ) -> None:
        """
        A SUBSCRIBE for an existing subscription (RFC 6665 section
        4.2.1.4): a refresh, or with C{Expires: 0} an unsubscribe.
        """
        remoteTarget = remoteTargetOf(request)
        expires = self._expires(request, package)
        accept = record.accept
        if "Accept" in request.headers:
            accept = _acceptTuple(
                chooseContentType(request.accept, package.contentTypes), package
            )
        source = context.source
        now = self.clock.seconds()
        changes: dict[str, object] = {
            "remoteCSeq": cseq,
            "expiresAt": now + expires,
            "accept": accept,
            "flowTransport": sys.intern(source.transport.upper()),
            "flowHost": source.host,
            "flowPort": source.port,
        }
        if remoteTarget is not None and remoteTarget != record.remoteTarget:
            changes["remoteTarget"] = remoteTarget
            self._retarget(record, remoteTarget)
        record = record.evolve(**changes)
        if expires == 0:
            step = transition(record.state, SubscriptionInput.UNSUBSCRIBED)
            self._respond(
                context,
                record.state == PENDING,
                0,
                record.remoteTarget.startswith("sips:"),
            )
            if self.logLifecycle:
                self.log.debug(
                    "Subscription {key} unsubscribed",
                    key=record.key,
                    resource=record.resource,
                )
            self._finish(record, step, step.reason, None)
            return
        decision = None
        if record.state == PENDING and record.key not in self._decisions:
            # Its authorizer Deferred was lost in a restart: ask again.
            decision, awaited = self._askAuthorizer(
                record.key, record.watcher, record.resource, record.eventType, request
            )
            if awaited is not None:
                self._decisions[record.key] = awaited
            elif decision == ACCEPT:
                record = record.evolve(
                    state=transition(
                        record.state, SubscriptionInput.AUTHORIZED
                    ).state.value
                )
        pending = record.state == PENDING
        self._write(self.store.putSubscription(record), record.key)
        self._expiry.schedule(record.expiresAt, record.key)
        self._respond(
            context, pending, expires, record.remoteTarget.startswith("sips:")
        )
        if decision == REJECT:
            if self.logLifecycle:
                self.log.debug("Subscription {key} rejected", key=record.key)
            self._finish(
                record, transition(record.state, SubscriptionInput.REJECTED), None, None
            )
            return
        if self.logLifecycle:
            self.log.debug(
                "Subscription {key} refreshed: {expires}s",
                key=record.key,
                resource=record.resource,
                expires=expires,
            )
        self._notify(record, transition(record.state, SubscriptionInput.REFRESHED))

    def _retarget(self, record: SubscriptionRecord, remoteTarget: str) -> None:
        """
        A target refresh (RFC 3261 section 12.2.2): the remote target is the
        dialog's, so every other subscription in it gets it too.
        """
        for other in self.store.subscriptionsByDialog(
            record.callId, record.localTag, record.remoteTag
        ):
            if other.key != record.key:
                self._write(
                    self.store.putSubscription(other.evolve(remoteTarget=remoteTarget)),
                    other.key,
                )

    def _lateDecision(self, key: str, value: object) -> None:
        """
        The authorizer decided about a pending subscription (RFC 6665
        section 4.2.1.3): it becomes active, with a NOTIFY of the state, or
        is terminated with C{reason=rejected}. A failure terminates it with
        C{reason=giveup}.
        """
        if self._decisions.pop(key, None) is None:
            if isinstance(value, Failure) and not isinstance(
                value.value, CancelledError
            ):
                self.log.failure("Authorizer failed for {key}", value, key=key)
            return
        record = self.store.getSubscription(key)
        if isinstance(value, Failure):
            if isinstance(value.value, CancelledError) or record is None:
                return
            self.log.failure("Authorizer failed for subscription {key}", value, key=key)
            self._end(record, "giveup", None)
            return
        if record is None or record.state != PENDING:
            return
        if value == ACCEPT:
            step = transition(record.state, SubscriptionInput.AUTHORIZED)
            record = record.evolve(state=step.state.value)
            self._write(self.store.putSubscription(record), key)
            if self.logLifecycle:
                self.log.debug("Subscription {key} authorized", key=key)
            self._notify(record, step)
        elif value == REJECT:
            step = transition(record.state, SubscriptionInput.REJECTED)
            if self.logLifecycle:
                self.log.debug("Subscription {key} rejected", key=key)
            self._finish(record, step, step.reason, None)
        else:
            self.log.error(
                "Authorizer answered {value!r} for {key}, not accept or reject",
                value=value,
                key=key,
            )
            self._end(record, "giveup", None)

    # NOTIFY

    def _package(self, eventType: str) -> IEventPackage | None:
        """
        The package serving C{eventType}, or C{None} when none does.
        """
        try:
            return self.registry.resolveEventType(eventType)
        except SIPError:
            return None

    def _notify(
        self,
        record: SubscriptionRecord,
        step: Transition,
        reason: str | None = None,
        retryAfter: int | None = None,
        cseq: int | None = None,
        package: IEventPackage | None = None,
    ) -> None:
        """
        Send the NOTIFY C{step} calls for (RFC 6665 section 4.2.2).

        @param reason: the reason of a final NOTIFY when the step does not
            give one.
        @param cseq: the CSeq to use, for a fetch outside any stored
            dialog; otherwise the dialog's next one.
        @param package: the package serving the subscription, when the
            caller has it; looked up otherwise.
        """
        kind = step.notify
        if kind is NotifyKind.NONE:
            return
        if package is None:
            package = self._package(record.eventType)
        headers: list[tuple[str, str]] = [
            ("Event", self._eventValue(record)),
        ]
        final = kind in (
            NotifyKind.FINAL_STATE,
            NotifyKind.FINAL_NEUTRAL,
            NotifyKind.FINAL_EMPTY,
        )
        if final:
            substate = formatSubscriptionState(
                "terminated", reason=step.reason or reason, retryAfter=retryAfter
            )
        else:
            remaining = max(0, int(record.expiresAt - self.clock.seconds()))
            substate = formatSubscriptionState(step.state, remaining)
        headers.append(("Subscription-State", substate))
        contact = self._notifyContact(record)
        if contact is not None:
            headers.append(("Contact", f"<{contact}>"))
        body = b""
        if kind is not NotifyKind.FINAL_EMPTY and package is not None:
            contentType = record.accept[0] if record.accept else package.contentTypes[0]
            state = (
                self.publications.currentState(record.resource, record.eventType)
                if kind in (NotifyKind.STATE, NotifyKind.FINAL_STATE)
                else None
            )
            body = package.renderState(state, contentType, record)
            headers.append(("Content-Type", contentType))
        if cseq is None:
            cseq, wait = self._takeCSeq(record)
        else:
            wait = None
        request = buildRequest(record, "NOTIFY", cseq, headers, body)
        target = nextHop(record)
        if wait is None:
            self._send(request, target, record.key, final)
        else:
            wait.addCallbacks(
                lambda _: self._send(request, target, record.key, final),
                self._notSent,
                errbackArgs=(record.key, cseq),
            )
        if not final and package is not None:
            self._notified(record.key, package.minNotifyInterval)

    @staticmethod
    def _eventValue(record: SubscriptionRecord) -> str:
        """
        The Event of a NOTIFY: the subscription's event type and C{id}
        (RFC 6665 section 8.2.1 and 4.5.2), with its other parameters.
        """
        key = (record.eventType, record.eventId, record.eventParams)
        value = _eventValues.get(key)
        if value is None:
            # Most subscriptions share a handful of these: format each once.
            if len(_eventValues) >= 256:
                _eventValues.clear()
            value = _eventValues[key] = str(
                Event(record.eventType, (), record.eventId, record.eventParams)
            )
        return value

    def _send(self, request: Request, target: Target, key: str, final: bool) -> None:
        d = self.userAgent.sendRequest(request, target)
        d.addCallbacks(
            self._notifyAnswered,
            self._notifyFailed,
            callbackArgs=(key, final),
            errbackArgs=(key, final),
        )

    def _takeCSeq(
        self, record: SubscriptionRecord
    ) -> tuple[int, Deferred[None] | None]:
        """
        The next CSeq of the dialog of C{record}, reserving more ahead of
        use (see the module docstring).

        @return: the CSeq, and a L{Deferred} to wait for before using it
            when it is not yet covered by a durable reservation; it fails
            when the reservation did.
        """
        tag = record.localTag
        highWater = record.localCSeq
        # The caller's record may predate a reservation made for another
        # subscription of the dialog.
        current = self.store.getSubscription(record.key)
        if current is not None and current.localCSeq > highWater:
            highWater = current.localCSeq
        cseq = self._nextCSeq.get(tag, highWater)
        self._nextCSeq[tag] = cseq + 1
        reserving = self._reserving.get(tag)
        if cseq + self.cseqBlock // 2 >= highWater or (
            # The last reservation failed: CSeqs above the durable mark
            # need a new one.
            reserving is not None
            and isinstance(reserving[1], Failure)
            and cseq >= reserving[0]
        ):
            # Half a block or less left: reserve the next one now.
            self._reserve(record, max(highWater, cseq + 1) + self.cseqBlock)
            reserving = self._reserving.get(tag)
        if reserving is None or cseq < reserving[0]:
            return cseq, None
        if isinstance(reserving[1], Failure):
            return cseq, fail(reserving[1])
        wait: Deferred[None] = Deferred()
        reserving[1].append(wait)
        return cseq, wait

    def _reserve(self, record: SubscriptionRecord, highWater: int) -> None:
        """
        Persist C{highWater} as the CSeq high-water mark of every
        subscription in the dialog of C{record}. Until it is durable, the
        NOTIFYs of the dialog at or above the mark that was durable before
        wait in C{_reserving}; if it fails, they are not sent, and the
        failure stays there until a new reservation is durable.
        """
        tag = record.localTag
        previous = self._reserving.get(tag)
        # Writes are durable in order: until this one is, only CSeqs below
        # the mark before the first write still in flight are safe.
        durable = record.localCSeq if previous is None else previous[0]
        waiters: list[Deferred[None]] = []
        entry: tuple[int, list[Deferred[None]] | Failure] = (durable, waiters)
        self._reserving[tag] = entry

        def finished(result: None | Failure) -> None:
            if isinstance(result, Failure):
                self.log.failure(
                    "CSeq reservation of dialog {tag} failed: NOTIFYs waiting "
                    "for it are not sent",
                    result,
                    tag=tag,
                )
                if self._reserving.get(tag) is entry:
                    self._reserving[tag] = (durable, result)
                for wait in waiters:
                    wait.errback(result)
            else:
                if self._reserving.get(tag) is entry:
                    del self._reserving[tag]
                for wait in waiters:
                    wait.callback(None)

        self.store.reserveCSeq(record.callId, tag, record.remoteTag, highWater).addBoth(
            finished
        )

    def _notSent(self, failure: Failure, key: str, cseq: int) -> None:
        """
        The CSeq of a NOTIFY could not be reserved: sending it could reuse
        that CSeq after a restart (RFC 3261 section 12.2.1.1), so it is
        dropped; the reservation's failure is logged already.
        """
        self.log.warn(
            "NOTIFY of {key} with CSeq {cseq} not sent: the CSeq could not be reserved",
            key=key,
            cseq=cseq,
        )

    def _notified(self, key: str, interval: float) -> None:
        """
        A NOTIFY carrying the latest state went out: changes from now on
        wait for C{interval} (RFC 6665 section 5.4.10).
        """
        self._dirty.discard(key)
        if interval > 0:
            self._throttle.schedule(self.clock.seconds() + interval, key)

    def _throttleEnded(self, key: Hashable) -> None:
        """
        The coalescing interval of a subscription has passed: if its
        resource changed meanwhile, send the state as it is now.
        """
        key = cast(str, key)
        if key not in self._dirty:
            return
        self._dirty.discard(key)
        record = self.store.getSubscription(key)
        if record is None:
            return
        self._notify(record, transition(record.state, SubscriptionInput.STATE_CHANGED))

    def _notifyAnswered(self, response: Response, key: str, final: bool) -> None:
        code = response.code
        if code < 300:
            if code >= 200 and not final and "Contact" in response.headers:
                self._targetRefreshed(response, key)
            return
        if code in SUBSCRIPTION_ENDING_CODES:
            self._removeAfterNotifyFailure(
                key, final, f"answered {code}", code=code, reason=response.reason
            )
            return
        self.log.warn(
            "NOTIFY for subscription {key} answered {code} {reason}",
            key=key,
            code=code,
            reason=response.reason,
            final=final,
        )

    def _removeAfterNotifyFailure(
        self, key: str, final: bool, why: str, **fields: object
    ) -> None:
        """
        A NOTIFY failed in a way that ends its subscription (RFC 6665
        section 4.2.2): remove it without sending another NOTIFY.
        """
        record = None if final else self.store.getSubscription(key)
        self.log.info(
            "NOTIFY for subscription {key} {why}: subscription removed",
            key=key,
            why=why,
            final=final,
            **fields,
        )
        if record is not None:
            self._finish(
                record,
                transition(record.state, SubscriptionInput.NOTIFY_FAILED),
                None,
                None,
            )

    def _targetRefreshed(self, response: Response, key: str) -> None:
        """
        A 2xx to a NOTIFY (a target refresh request, RFC 6665 section 3.2)
        with a Contact replaces the dialog's remote target (RFC 3261
        section 12.2.1.2).
        """
        record = self.store.getSubscription(key)
        if record is None:
            return
        try:
            contacts = response.contacts
        except SIPError:
            return
        if len(contacts) != 1 or not isinstance(contacts[0].uri, SIPURI):
            return
        remoteTarget = formatURI(contacts[0].uri)
        if remoteTarget == record.remoteTarget:
            return
        self._retarget(record, remoteTarget)
        self._write(
            self.store.putSubscription(record.evolve(remoteTarget=remoteTarget)), key
        )

    def _notifyFailed(self, failure: Failure, key: str, final: bool) -> None:
        from sipevents.errors import TransactionTimeout

        if isinstance(failure.value, CancelledError):
            return
        if isinstance(failure.value, TransactionTimeout):
            self._removeAfterNotifyFailure(key, final, "timed out")
            return
        self.log.warn(
            "NOTIFY for subscription {key} failed: {error}",
            key=key,
            error=failure.getErrorMessage(),
            final=final,
        )

    # Ending subscriptions

    def _deadlineOf(self, key: Hashable) -> object:
        """
        The live expiry deadline of subscription C{key}: its record's
        C{expiresAt} object, or C{None} when it has gone.
        """
        record = self.store.getSubscription(cast(str, key))
        return None if record is None else record.expiresAt

    def _expired(self, key: Hashable) -> None:
        """
        A subscription was not refreshed in time (RFC 6665 section
        4.2.1.4): C{terminated;reason=timeout} and removal.
        """
        record = self.store.getSubscription(cast(str, key))
        if record is None:
            return
        if record.expiresAt > self.clock.seconds():
            # Refreshed through the store by someone else: keep watching.
            self._expiry.schedule(record.expiresAt, record.key)
            return
        if self.logLifecycle:
            self.log.debug(
                "Subscription {key} expired", key=record.key, resource=record.resource
            )
        self._finish(
            record, transition(record.state, SubscriptionInput.EXPIRED), None, None
        )

    def _end(
        self, record: SubscriptionRecord, reason: str, retryAfter: int | None
    ) -> None:
        """
        Terminate C{record} by local policy with C{reason}.
        """
        self._finish(
            record,
            transition(record.state, SubscriptionInput.TERMINATED),
            reason,
            retryAfter,
        )

    def _finish(
        self,
        record: SubscriptionRecord,
        step: Transition,
        reason: str | None,
        retryAfter: int | None,
    ) -> None:
        """
        Send the final NOTIFY of C{step}, if any, and forget the
        subscription.
        """
        self._notify(record, step, reason, retryAfter)
        key = record.key
        # Removing the record from the store is what cancels its expiry
        # deadline (see LookupTimerQueue).
        self._write(self.store.removeSubscription(key), key)
        self._throttle.cancel(key)
        self._dirty.discard(key)
        decision = self._decisions.pop(key, None)
        if decision is not None:
            decision.cancel()
        if not self.store.subscriptionsByDialog(
            record.callId, record.localTag, record.remoteTag
        ):
            self._nextCSeq.pop(record.localTag, None)
            self._reserving.pop(record.localTag, None)
        if self.logLifecycle:
            self.log.debug(
                "Subscription {key} terminated: {reason}",
                key=key,
                resource=record.resource,
                eventType=record.eventType,
                reason=step.reason or reason or "notify-failure",
            )

    def _write(self, d: Deferred[None], key: str) -> None:
        if d.called and not d.paused and not isinstance(d.result, Failure):
            # Written already (the memory store): nothing can fail any more,
            # and an errback would be Deferred machinery for nothing.
            return
        d.addErrback(_logFailure, self.log, key)

    # State changes

    def stateChanged(self, resource: str, eventType: str) -> None:
        """
        The state of C{resource} for C{eventType} changed: NOTIFY every
        active subscription to it, coalesced per the package's
        C{minNotifyInterval} (RFC 6665 section 4.2.2 and 5.4.10).

        Called by the publication manager (and by L{setState} through it).
        """
        records = self.store.subscriptionsByResource(resource, eventType)
        if not records:
            return
        package = self._package(eventType)
        if package is None:
            return
        interval = package.minNotifyInterval
        throttle = self._throttle
        dirty = self._dirty
        for record in records:
            step = transition(record.state, SubscriptionInput.STATE_CHANGED)
            if step.notify is NotifyKind.NONE:
                continue
            if interval > 0 and record.key in throttle:
                dirty.add(record.key)
                continue
            self._notify(record, step, package=package)

    # INotifier

    def setState(
        self, eventType: str, resource: str, contentType: str, body: bytes
    ) -> Deferred[None]:
        """
        See L{INotifier.setState}: stored through the publication manager,
        which calls L{stateChanged}.
        """
        if self._package(eventType) is None:
            raise BadEvent(self.registry.eventTypes())
        return self.publications.setApplicationState(
            eventType, resource, contentType, body
        )

    def clearState(self, eventType: str, resource: str) -> Deferred[None]:
        """
        See L{INotifier.clearState}.
        """
        return self.publications.clearApplicationState(eventType, resource)

    def terminate(
        self,
        resource: str | None = None,
        eventType: str | None = None,
        key: str | None = None,
        reason: str = "deactivated",
        retryAfter: int | None = None,
    ) -> int:
        """
        See L{INotifier.terminate}.

        @raise ValueError: for a C{reason} that is not a token or a negative
            C{retryAfter}.
        """
        formatSubscriptionState("terminated", reason=reason, retryAfter=retryAfter)
        records = self.subscriptions(resource, eventType)
        if key is not None:
            records = [record for record in records if record.key == key]
        for record in records:
            if self.logLifecycle:
                self.log.debug(
                    "Subscription {key} terminated by the application: {reason}",
                    key=record.key,
                    reason=reason,
                )
            self._end(record, reason, retryAfter)
        return len(records)

    def subscriptions(
        self, resource: str | None = None, eventType: str | None = None
    ) -> list[SubscriptionRecord]:
        """
        See L{INotifier.subscriptions}.
        """
        if resource is not None:
            return self.store.subscriptionsByResource(resource, eventType)
        records = self.store.allSubscriptions()
        if eventType is not None:
            records = [record for record in records if record.eventType == eventType]
        return records
