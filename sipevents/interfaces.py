# -*- test-case-name: tests.test_interfaces -*-
"""
Every interface of sipevents, in one place.

Implementations declare C{@implementer(...)}; tests check them with
C{verifyObject}. A value type of L{sipevents.events} that provides an
interface is declared here with C{classImplements}, since value modules do
not import this one at run time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zope.interface import Attribute, Interface, classImplements

from sipevents.events import SIPUser

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence

    from twisted.internet.defer import Deferred

    from sipevents.errors import ParseError
    from sipevents.events import Credentials, Notification, Termination
    from sipevents.records import PublicationRecord, SubscriptionRecord
    from sipevents.sip.addresses import Source, Target
    from sipevents.sip.headers import Event
    from sipevents.sip.message import Message, Request, Response
    from sipevents.sip.uri import URI


class ISIPConnection(Interface):
    """
    One way of sending SIP messages to peers: a UDP socket, or one TCP or TLS
    connection. Provided by the Twisted protocols in L{sipevents.sip.transport};
    the core sees only this.
    """

    transportName = Attribute(
        'L{str}: the transport as written in a Via: C{"UDP"}, C{"TCP"} or C{"TLS"}.'
    )
    reliable = Attribute(
        "L{bool}: C{True} for stream transports, which need no retransmissions "
        "(RFC 3261 section 17.1.1.2)."
    )
    connected = Attribute(
        "L{bool}: C{False} once a stream connection has closed; a datagram "
        "socket stays connected while it listens."
    )
    localHost = Attribute("L{str}: the local IP address, used in Via sent-by.")
    localPort = Attribute("L{int}: the local port, used in Via sent-by.")

    def sendMessage(message: Message, host: str, port: int) -> None:
        """
        Serialize C{message} and send it. A datagram socket sends to C{host}
        and C{port}; a stream connection ignores them and writes to its peer.

        Called by the transport layer. Never raises for network conditions:
        failures are logged.
        """


class IMessageReceiver(Interface):
    """
    What the transports deliver parsed messages to: the UAS/UAC core.
    """

    def messageReceived(message: Message, source: Source) -> None:
        """
        A well-formed request or response arrived. Requests already carry
        C{received} and C{rport} in their top Via (RFC 3261 section 18.2.1,
        RFC 3581 section 4).

        Called by the transport layer; returns nothing; must not raise.
        """

    def parseErrorReceived(error: ParseError, source: Source) -> None:
        """
        Bytes arrived that did not parse. The transport layer has already
        answered (or dropped) them; this is for logging and statistics.

        Called by the transport layer; returns nothing; must not raise.
        """


class IRetransmission(Interface):
    """
    A final response kept as it went on the wire, to send it again without
    keeping the L{sipevents.sip.message.Response} (and its parsed views)
    alive: what a non-INVITE server transaction holds in "Completed" over
    an unreliable transport (RFC 3261 section 17.2.2).

    Made by L{ITransportLayer.sendFinalResponse}; called by the server
    transaction for each retransmission of the request.
    """

    response = Attribute(
        "L{sipevents.sip.message.Response}: the response, parsed again from "
        "the kept octets (an equal message, not the same object)."
    )

    def __call__() -> object:
        """
        Send the same octets to the same destination again.

        @return: anything; like a transaction's C{send}, it may raise or
            return a failing L{Deferred} to report a transport error (RFC
            3261 section 17.2.4).
        """


class IRetransmittingSender(Interface):
    """
    The C{send} of a server transaction that can also hand over the final
    response it has just sent in wire form (L{IRetransmission}), so that
    the completed transaction keeps only those octets (RFC 3261 section
    17.2.2).

    Provided by the user agent's per-transaction sender; the server
    transactions of L{sipevents.sip.transaction} take any callable as
    C{send} and ask one that provides this interface for the wire form when
    they enter "Completed".
    """

    def __call__(response: Response) -> object:
        """
        Send C{response} (RFC 3261 section 18.2.2).

        Called by the server transaction for every response it sends.

        @return: anything; a raised exception or failing L{Deferred}
            reports a transport error (RFC 3261 section 17.2.4).
        """

    def retransmission(response: Response) -> IRetransmission | None:
        """
        Called by the server transaction once, on entering "Completed".

        @param response: the final response this sender has just sent.
        @return: C{response} as an L{IRetransmission}, or C{None} when it
            cannot be kept that way (it went over a stream, or to a host
            name that had to be resolved); the transaction then keeps the
            messages.
        """


class ITransportLayer(Interface):
    """
    What the user agent core sends through: the sockets and connections of
    every transport, and the choice among them (RFC 3261 section 18).

    Provided by L{sipevents.sip.transport.TransportLayer}, and in tests by
    L{sipevents.testing.RecordingTransportLayer}; the user agent
    (L{IUserAgent.transportLayer}) calls it for every message it sends, and
    the roles ask it where we listen for their Contact.
    """

    advertisedHost = Attribute(
        "L{str} or C{None}: the host written in Via sent-by and Contact in "
        "place of the address we listen on (a public address or name in "
        "front of NAT), when the operator set one."
    )

    def sendResponse(response: Response, source: Source) -> None:
        """
        Send C{response} to a request that came from C{source}, where RFC
        3261 section 18.2.2 says (the same connection, the C{received} and
        C{rport} of the top Via ...).

        Called by the user agent for provisional responses and for those
        over reliable transports. Failures are logged, never raised.
        """

    def sendFinalResponse(response: Response, source: Source) -> IRetransmission | None:
        """
        Send C{response} as L{sendResponse} does.

        Called by the user agent for final responses to requests that came
        over an unreliable transport. Failures are logged, never raised.

        @return: an L{IRetransmission} sending the same octets to the same
            place again, when the response went out at once in one
            datagram to an IP address; otherwise C{None}.
        """

    def prepareRequest(request: Request, target: Target, branch: str) -> None:
        """
        Add our top Via to C{request}, to be sent to C{target}:
        C{SIP/2.0/<transport> <sent-by>;branch=<branch>;rport} (RFC 3261
        section 8.1.1.7 and 18.1.1, RFC 3581 section 3).

        Called by the user agent before the client transaction sends it.
        """

    def sendRequest(request: Request, target: Target) -> Deferred[None]:
        """
        Put C{request} on the wire towards C{target}, resolving its host and
        opening a connection if need be (RFC 3261 section 18.1.1, RFC 3263).

        Called by the client transaction, once per (re)transmission.

        @return: a L{Deferred} that fires once it is sent, or fails with
            L{sipevents.errors.TransportFailure} (RFC 3261 section 17.1.4).
        """

    def sentBy(transport: str, targetHost: str) -> tuple[str, int]:
        """
        Where we listen for C{transport} and the address family of
        C{targetHost}: the host (L{advertisedHost} when set) and port
        written in Via sent-by (RFC 3261 section 18.1.1).

        Called by L{prepareRequest}, and by the roles for the Contact of
        their dialogs (RFC 3261 section 8.1.1.8). The host may be a
        wildcard (C{"0.0.0.0"}, C{"::"}) when we listen on every interface
        and cannot tell which one reaches C{targetHost}.
        """


class IUserAgent(Interface):
    """
    The user agent core as the roles see it (RFC 3261 section 8): where
    they register request handlers and send requests.

    Provided by L{sipevents.sip.useragent.UserAgent}; used by the notifier,
    the publication manager and the subscriber.
    """

    clock = Attribute(
        "L{twisted.internet.interfaces.IReactorTime}: the time source of "
        "every timer of the user agent and its transactions."
    )
    timers = Attribute(
        "L{sipevents.config.TimerConfig}: T1, T2, T4 and the timers made of "
        "them (RFC 3261 section 17); the subscriber takes Timer N from it."
    )
    transportLayer = Attribute(
        "The L{ITransportLayer} messages go through, or C{None} before it "
        "is set (the transport layer needs its receiver first)."
    )
    eventTypes = Attribute(
        "A callable returning the L{str} event types we are a notifier for "
        '(C{"presence"} ...), listed in Allow-Events (RFC 6665 section '
        "4.4.4); the notifier sets it to its package registry's."
    )

    def registerMethod(method: str, handler: IRequestHandler) -> None:
        """
        Serve requests of C{method} (C{"SUBSCRIBE"}) with C{handler} from
        now on, replacing any earlier handler of that method.

        Called by the roles when they are installed.

        @raise ValueError: for ACK and CANCEL, which the core handles, or a
            method that is not a token.
        """

    def sendRequest(request: Request, target: Target) -> Deferred[Response]:
        """
        Send C{request} to C{target} through a new client transaction (RFC
        3261 section 8.1 and 17.1.2), adding our Via.

        Called by the notifier for NOTIFYs and by the subscriber for
        SUBSCRIBEs.

        @return: a L{Deferred} firing with the final response, or failing
            with L{sipevents.errors.TransactionTimeout} (Timer F) or
            L{sipevents.errors.TransportFailure}.
        """


class IRequestContext(Interface):
    """
    How a request handler answers one request: the UAS core's view of a
    server transaction (RFC 3261 section 8.2.6 and 17.2).

    Created by the user agent for each new request it dispatches and passed
    to L{IRequestHandler.handleRequest}. The handler (or whatever it hands the
    context on to) answers through it, at once or later, and may then send
    further requests through C{userAgent}: a SUBSCRIBE handler answers 200 or
    202 with L{respond} and sends its first NOTIFY right after (RFC 6665
    section 4.2.1.1).
    """

    request = Attribute("L{sipevents.sip.message.Request}: the request being answered.")
    source = Attribute(
        "L{sipevents.sip.addresses.Source}: where the request came from (its "
        "connection, host and port)."
    )
    userAgent = Attribute(
        "The L{IUserAgent} that received the request; its "
        "C{sendRequest(request, target)} sends requests such as NOTIFY."
    )
    toTag = Attribute(
        "L{str}: the tag the user agent adds to the To field of every "
        "response to a request that has no To tag (RFC 3261 section "
        "8.2.6.2); when a response creates a dialog, this is its local tag "
        "(RFC 3261 section 12.1.1). It is the same for every response to the "
        "request, retransmissions and a CANCEL of it included."
    )
    inDialog = Attribute(
        "L{bool}: C{True} when the request's To field already carries a tag "
        "(RFC 3261 section 12.2)."
    )
    finalResponse = Attribute(
        "L{sipevents.sip.message.Response} or C{None}: the final response sent, "
        "once there is one."
    )
    identity = Attribute(
        "The L{ISIPIdentity} that authenticated the request (RFC 3261 section "
        "22), or C{None} when the user agent did not authenticate it (see "
        "L{sipevents.sip.useragent.UserAgent.requireAuthentication})."
    )

    def respond(
        code: int,
        reason: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> Response:
        """
        Build a response to the request (RFC 3261 section 8.2.6.2: Via,
        From, To, Call-ID and CSeq copied, C{toTag} added when the request
        had none, a C{Server} header) and send it through the server
        transaction, which retransmits it as RFC 3261 section 17.2 requires.

        Called by request handlers, at most once with a final (2xx to 6xx)
        code; provisional codes may come first.

        @param reason: the reason phrase; the default one for C{code} when
            C{None}.
        @param headers: further header fields, in order.
        @return: the response sent.
        @raise sipevents.sip.useragent.AlreadyResponded: when a final response was
            already sent.
        """

    def sendResponse(response: Response) -> None:
        """
        Send a response the handler built itself; the user agent completes
        it like L{respond} does (To tag, C{Server}) before sending.

        @raise sipevents.sip.useragent.AlreadyResponded: when a final response was
            already sent.
        """


class IRequestHandler(Interface):
    """
    Answers the requests of one method for the user agent core (RFC 3261
    section 8.2.5); the notifier registers handlers for SUBSCRIBE and
    PUBLISH, the subscriber one for NOTIFY.

    Registered with C{UserAgent.registerMethod(method, handler)}. The user
    agent calls L{handleRequest} once per new request of that method, after
    its own checks in the order of RFC 3261 section 8.2: method (405/501),
    Request-URI scheme (416), merged requests (482), Require (420) and, when
    L{accept} is not C{None}, body content (415). Retransmissions never
    reach the handler: the server transaction absorbs them.
    """

    accept = Attribute(
        'A sequence of L{str} MIME types (C{"application/pidf+xml"}) the '
        "handler understands in request bodies, or C{None} when it checks "
        "bodies itself. With a sequence, the user agent answers a request "
        "whose non-empty body has another Content-Type with 415 and an "
        "Accept header (RFC 3261 section 8.2.3); the union of all handlers' "
        "types is the Accept header of the answer to OPTIONS (section 11.2)."
    )

    def handleRequest(
        request: Request, context: IRequestContext
    ) -> Response | Deferred[Response | None] | None:
        """
        Process C{request} and answer it in one of three ways:

          - return a L{sipevents.sip.message.Response} (built with
            C{sipevents.sip.message.makeResponse(request, code,
            toTag=context.toTag)} or not: the user agent adds a missing To
            tag and C{Server} header);
          - answer through C{context} (L{IRequestContext.respond}) and return
            C{None}; this is the way to do more after answering, such as
            sending the first NOTIFY right after the 200 to a SUBSCRIBE;
          - return a L{Deferred} that fires with a response, or with C{None}
            once the handler has answered through C{context}.

        Raising (or failing the L{Deferred} with) a
        L{sipevents.errors.SIPError} answers with its status, reason and
        header fields (for example a 489 with C{Allow-Events}, or a 423 with
        C{Min-Expires}). Any other exception is logged and answered with
        500. A handler that returns (or whose L{Deferred} fires) without
        answering is answered 500; one whose L{Deferred} has not fired
        after Timer F (64*T1, RFC 3261 section 17.1.2.2, when the client
        gives up) is answered 408 and the L{Deferred} cancelled.

        @param request: the request; its C{received} and C{rport} Via
            parameters are already stamped (RFC 3261 section 18.2.1).
        @param context: how to answer, and the user agent to send further
            requests through.
        """


class ISIPIdentity(Interface):
    """
    Who sent a request, as Digest authentication proved it (RFC 3261
    section 22): the avatar a C{twisted.cred} portal hands out for this
    interface. L{sipevents.events.SIPUser} provides it.
    """

    username = Attribute("The authenticated Digest username, as L{str}.")
    realm = Attribute("The realm (L{str}) the user authenticated in.")
    addressOfRecord = Attribute(
        "The user's address of record, C{sip:username@realm}, as L{str}."
    )

    def owns(uri: URI) -> bool:
        """
        Whether C{uri} is this user's address of record: a SIP or SIPS URI
        with the username as user part and the realm as host.
        """


class IRequestAuthenticator(Interface):
    """
    Authenticates the sender of a request (RFC 3261 section 22.2): a UAS
    asks it before handling a request that creates or changes state.
    """

    def authenticate(request: Request) -> Deferred[ISIPIdentity]:
        """
        @return: a L{Deferred} firing with the identity the request's
            credentials prove, or failing with a
            L{sipevents.errors.SIPError} to answer with: a
            L{sipevents.errors.Unauthorized} (401, carrying fresh
            C{WWW-Authenticate} challenges) when credentials are missing,
            wrong, for another realm, replayed or stale; a 400 when they
            are malformed.
        """


classImplements(SIPUser, ISIPIdentity)


class IEventPackage(Interface):
    """
    An event package (RFC 6665 section 5.4): what a notifier needs to serve
    one Event type, such as C{presence} (RFC 3856) or C{message-summary}
    (RFC 3842).

    Provided by built-in packages in L{sipevents.packages} and by third-party
    ones, found as Twisted plugins (C{getPlugins(IEventPackage)} over
    C{twisted.plugins}). The notifier and the PUBLISH handler call it; its
    methods are synchronous and must be fast: they run on the reactor
    thread for every NOTIFY.
    """

    name = Attribute(
        'L{str}: the package name as it appears in an Event header, C{"presence"}.'
    )
    templates = Attribute(
        "A tuple of L{str}: the template-packages (RFC 6665 section 5.2) "
        'this package also serves, e.g. C{("winfo",)} for C{presence.winfo}; '
        "a SUBSCRIBE for a template not listed gets 489."
    )
    contentTypes = Attribute(
        "A tuple of L{str} MIME types the package can put in NOTIFY bodies, "
        "preferred first; a SUBSCRIBE whose Accept allows none of them gets "
        "406 (RFC 6665 section 4.2.1.1, RFC 3261 section 21.4.7)."
    )
    publishContentTypes = Attribute(
        "A tuple of L{str} MIME types accepted in PUBLISH bodies (RFC 3903 "
        "section 4); empty when the package takes no PUBLISH."
    )
    defaultExpires = Attribute(
        "L{int}: seconds a subscription lasts when the SUBSCRIBE has no "
        "Expires (RFC 6665 section 5.4.4)."
    )
    minExpires = Attribute(
        "L{int}: the shortest subscription accepted; a shorter non-zero "
        "request below one hour gets 423 with Min-Expires (RFC 6665 section "
        "4.2.1.1)."
    )
    maxExpires = Attribute(
        "L{int}: the longest subscription granted; longer requests are "
        "shortened (RFC 6665 section 4.2.1.1)."
    )
    minNotifyInterval = Attribute(
        "L{float}: the least number of seconds between two NOTIFYs of one "
        "subscription (RFC 6665 section 5.4.10); changes within it are "
        "coalesced and the latest state is sent when it has passed."
    )

    def parsePublication(contentType: str, body: bytes) -> object:
        """
        Check and parse a PUBLISH body (RFC 3903 section 6, step 5).

        Called by the PUBLISH handler, and on start-up for every stored
        publication.

        @param contentType: the lower-cased MIME type, one of
            L{publishContentTypes}.
        @return: a parsed document, opaque to the caller, later given to
            L{composeState}.
        @raise sipevents.errors.SIPError: 400 for a malformed document (the
            reason phrase saying what is wrong), 413 for one too large,
            415 for a type it cannot take.
        """

    def composeState(resource: str, documents: Sequence[object]) -> object:
        """
        Compose the state of C{resource} from all its live publications
        (RFC 3903 section 4.3, RFC 6665 section 5.4.11).

        Called by the publication manager (on demand, when the notifier asks
        for the current state) after a publication of the resource was
        added, modified or removed.

        @param documents: the results of L{parsePublication}, oldest
            first; never empty.
        @return: a state object, opaque to the caller, later given to
            L{renderState}.
        """

    def renderState(
        state: object | None, contentType: str, subscription: SubscriptionRecord
    ) -> bytes:
        """
        Build the body of a NOTIFY for C{subscription}: full state (RFC 6665
        section 5.3.1), or neutral state (section 5.4.7, RFC 3856 section
        6.6.2) when C{state} is C{None}: no publication exists, or the
        subscription is pending.

        Called by the notifier for every NOTIFY it sends.

        @param contentType: the type chosen from L{contentTypes} and the
            subscriber's Accept.
        @return: the body octets (may be empty).
        """


class IPackageRegistry(Interface):
    """
    The event packages a notifier serves, by name (RFC 6665 section 5.4.1),
    in the order registered.

    Provided by L{sipevents.packages.PackageRegistry}. The notifier resolves
    the Event header of every SUBSCRIBE through it, the publication manager
    that of every PUBLISH, and both list its L{eventTypes} in Allow-Events
    (RFC 6665 section 4.4.4).
    """

    def __iter__() -> Iterator[IEventPackage]:
        """
        @return: an iterator over the packages, in the order registered.
        """

    def get(name: str) -> IEventPackage | None:
        """
        Called by the publication manager for the package of a PUBLISH.

        @param name: a package name (C{"presence"}), no template.
        @return: the package called C{name}, or C{None}.
        """

    def resolve(event: Event | None) -> IEventPackage:
        """
        The package serving the event type of an Event header (RFC 6665
        section 4.2.1.1, RFC 3903 section 6 step 2).

        Called by the notifier for every SUBSCRIBE.

        @param event: the request's Event header, or C{None} when it has
            none.
        @return: the package.
        @raise sipevents.errors.BadEvent: 489 with Allow-Events, when the
            header is missing or names a package or template not served.
        """

    def resolveEventType(eventType: str) -> IEventPackage:
        """
        The package serving C{eventType} (C{"presence.winfo"}), as
        L{resolve} does for an Event header, without parsing one.

        Called by the notifier for every NOTIFY and by the publication
        manager.

        @return: the package.
        @raise sipevents.errors.BadEvent: as L{resolve} does.
        """

    def eventTypes() -> list[str]:
        """
        Called by the user agent for Allow-Events (RFC 6665 section 4.4.4)
        and by the notifier for the Allow-Events of a 489.

        @return: every event type served: each package name followed by
            C{name.template} for each of its templates.
        """

    def publishContentTypes() -> tuple[str, ...]:
        """
        Called by the publication manager, whose C{accept} it is (RFC 3261
        section 8.2.3).

        @return: the union of the packages' PUBLISH body types, in order.
        """


class IEventStateCompositor(Interface):
    """
    Where the notifier takes the state of resources from: the event state
    compositor of RFC 3903 section 2, which composes every publication of
    a resource (PUBLISHed, or set by the application) into its state.

    Provided by L{sipevents.notifier.publication.PublicationManager}; called
    by the notifier, which it tells of every change.
    """

    def currentState(resource: str, eventType: str) -> object | None:
        """
        Called by the notifier for the body of every NOTIFY that carries
        state (RFC 6665 section 4.2.2).

        @return: the composed state of C{resource} for C{eventType}
            (L{IEventPackage.composeState}), or C{None} when nothing is
            published (neutral state).
        """

    def setApplicationState(
        eventType: str, resource: str, contentType: str, body: bytes
    ) -> Deferred[None]:
        """
        Keep the application's own contribution to the state of C{resource}
        as a publication that never expires (see L{INotifier.setState},
        which calls it).

        @raise sipevents.errors.SIPError: as
            L{IEventPackage.parsePublication} does for a bad body.
        @return: a L{Deferred} that fires once it is stored.
        """

    def clearApplicationState(eventType: str, resource: str) -> Deferred[None]:
        """
        Remove the application's contribution set by L{setApplicationState}
        (see L{INotifier.clearState}, which calls it).

        @return: a L{Deferred} that fires once the removal is stored.
        """


class ISubscriptionAuthorizer(Interface):
    """
    Decides whether a subscriber may watch a resource (RFC 6665 section
    4.2.1.3).

    Called by the notifier once for each new subscription, after the
    package, Expires and Accept checks.
    """

    def authorize(
        watcher: str, resource: str, eventType: str, request: Request
    ) -> str | Deferred[str]:
        """
        @param watcher: the subscriber's From URI as text.
        @param resource: the resource key
            (L{sipevents.records.canonicalResource}).
        @param eventType: C{"presence"}, C{"presence.winfo"} ...
        @param request: the SUBSCRIBE.
        @return: C{"accept"} or C{"reject"} (C{sipevents.notifier.authorization.
            ACCEPT}/C{REJECT}), or a L{Deferred} firing with one. An
            immediate C{"reject"} answers 403. A L{Deferred} that has not
            fired yet makes the subscription pending (200, or 202 in RFC
            3265 compatibility mode, and a pending NOTIFY with neutral
            state); when it fires the subscription becomes active, or is
            terminated with C{reason=rejected}.
        """


class IPublishAuthorizer(Interface):
    """
    Decides whether a publisher may publish a resource's state (RFC 3903
    section 14.1: "the ESC should have the ability to selectively accept
    publications from authorized sources only, based on the identity of
    the EPA").

    Asked by the publication manager for every PUBLISH, after it has
    checked that an authenticated publisher publishes only its own address
    of record; an application that wants a third party to publish for
    others (a PBX publishing everyone's dialog state) cannot widen that
    check, only narrow what it lets through.
    """

    def authorizePublish(
        identity: ISIPIdentity | None, resource: str, eventType: str, request: Request
    ) -> bool:
        """
        @param identity: who authenticated the PUBLISH, or C{None} when
            authentication is off.
        @param resource: the resource key
            (L{sipevents.records.canonicalResource}).
        @param eventType: C{"presence"} ...
        @param request: the PUBLISH.
        @return: C{False} to answer 403.
        """


class IResourcePolicy(Interface):
    """
    Says which resources exist (RFC 6665 section 4.2.1.1: "the subscription
    pertains to a known resource").

    Called by the notifier for each new subscription and by the PUBLISH
    handler for each initial publication. The default policy knows every
    resource, so an operator need not provision presentities.
    """

    def isKnown(resource: str, eventType: str) -> bool | Deferred[bool]:
        """
        @return: C{True} when C{resource} exists; C{False} answers 404.
        """


class ISubscriptionStore(Interface):
    """
    Where the notifier keeps its subscriptions (DESIGN: "persistence is a
    store"). The working set is in memory, so look-ups are synchronous and
    return values; writes return L{Deferred}s that fire once the change is
    durable, so the notifier never waits on disk or network.

    Provided, with L{IPublicationStore}, by every L{IStore}.
    """

    def putSubscription(record: SubscriptionRecord) -> Deferred[None]:
        """
        Create or replace (by C{record.key}) a subscription; look-ups see
        it at once.

        @return: fires once the change is durable; fails if it could not
            be made so (the store keeps trying, and the log says so).
        """

    def removeSubscription(key: str) -> Deferred[None]:
        """
        Remove a subscription; removing an unknown key does nothing.

        @return: as L{putSubscription}.
        """

    def reserveCSeq(
        callId: str, localTag: str, remoteTag: str, highWater: int
    ) -> Deferred[None]:
        """
        Raise the CSeq high-water mark (C{localCSeq}) of every subscription
        in one dialog to C{highWater}, so that after a restart the dialog
        goes on above every CSeq used before it (RFC 3261 section 12.2.1.1:
        the CSeqs of a dialog only increase). The notifier reserves ahead of use and
        sends a NOTIFY whose CSeq is not below the last durable mark only
        once this has fired.

        @return: fires once the mark is durable (at once when no record was
            below it); fails, never silently, when the write did.
        """

    def getSubscription(key: str) -> SubscriptionRecord | None:
        """
        The subscription with C{key}, or C{None}.
        """

    def subscriptionsByDialog(
        callId: str, localTag: str, remoteTag: str
    ) -> list[SubscriptionRecord]:
        """
        Every subscription in one dialog (several with RFC 6665 section
        4.5.2 dialog sharing), in the order they were created.
        """

    def subscriptionsByResource(
        resource: str, eventType: str | None = None
    ) -> list[SubscriptionRecord]:
        """
        Every subscription to C{resource} (of C{eventType} when given), in
        the order they were created.
        """

    def allSubscriptions() -> list[SubscriptionRecord]:
        """
        Every subscription, for start-up and administration.
        """


class IPublicationStore(Interface):
    """
    Where the publication manager keeps publications (RFC 3903), and the
    application's own state as publications that never expire. Look-ups
    are synchronous; writes return L{Deferred}s that fire once durable (the
    200 to a PUBLISH waits for them, so an answered publication survives a
    crash).

    Provided, with L{ISubscriptionStore}, by every L{IStore}.
    """

    def putPublication(record: PublicationRecord) -> Deferred[None]:
        """
        Create or replace (by C{record.etag}) a publication; a replaced one
        keeps its age among the publications of its resource.

        @return: fires once the change is durable; fails if it could not
            be made so.
        """

    def removePublication(etag: str) -> Deferred[None]:
        """
        Remove a publication; removing an unknown entity-tag does nothing.

        @return: as L{putPublication}.
        """

    def getPublication(etag: str) -> PublicationRecord | None:
        """
        The publication with entity-tag C{etag}, or C{None}.
        """

    def publicationsByResource(
        resource: str, eventType: str
    ) -> list[PublicationRecord]:
        """
        Every publication of C{resource} for C{eventType}, oldest first
        (RFC 3903 section 4.4: the package composes them in order).
        """

    def allPublications() -> list[PublicationRecord]:
        """
        Every publication, for start-up and administration.
        """


class IStore(ISubscriptionStore, IPublicationStore):
    """
    One store of subscriptions and publications, as the service holds it:
    loaded once at start-up, closed when the service stops. The notifier
    sees it as an L{ISubscriptionStore}, the publication manager as an
    L{IPublicationStore}.

    Provided by L{sipevents.store.writebehind.WriteBehindStore} over any
    L{IStoreBackend} (L{sipevents.store.memory.MemoryStore},
    L{sipevents.store.sqlite.SQLiteStore}); chosen with C{--store memory}
    or C{--store sqlite:PATH}.
    """

    def load() -> Deferred[None]:
        """
        Read what was stored before a restart into the working set. Called
        once by the service on start-up, before the notifier and the
        publication manager start.
        """

    def flush() -> Deferred[None]:
        """
        Fires once every write made so far is durable; fails if one could
        not be made so.
        """

    def close() -> Deferred[None]:
        """
        Flush and release the store; called when the service stops. Later
        writes fail; look-ups still answer.
        """


class IStoreBackend(Interface):
    """
    Where a L{sipevents.store.writebehind.WriteBehindStore} writes behind
    its working set: a file, a database, a server. It is kept small on
    purpose (load everything, write a batch, close): batching, coalescing,
    retries with back-off and the L{Deferred}s of every write are the
    store's, so a new backend (a networked one, say) plugs in without any
    of that, and without touching any caller.

    Every method is called in the reactor thread, one batch at a time:
    L{writeBatch} is not called again before the L{Deferred} of the
    previous call has fired.

    Provided by L{sipevents.store.memory.MemoryBackend} and
    L{sipevents.store.sqlite.SQLiteBackend}.
    """

    def load() -> Deferred[tuple[list[SubscriptionRecord], list[PublicationRecord]]]:
        """
        Read everything stored; called once, at start-up.

        @return: fires with every subscription and every publication, the
            publications in the order they were first stored (their age,
            RFC 3903 section 4.4); fails if the store cannot be used.
        """

    def writeBatch(
        subscriptions: Mapping[str, SubscriptionRecord | None],
        publications: Mapping[str, PublicationRecord | None],
    ) -> Deferred[None]:
        """
        Write one batch, all of it or (on failure) preferably none of it.
        The latest change per key: a subscription by C{key}, a publication
        by C{etag}, each a record to create or replace, or C{None} to
        delete (an absent key is no error). A replaced publication keeps
        its age. A failed batch is offered again later, merged with newer
        changes, so writing one must be idempotent. The mappings are the
        backend's from now on: the store does not change them.

        @return: fires once the batch is durable; fails otherwise.
        """

    def close() -> Deferred[None]:
        """
        Release what the backend holds (files, threads, connections),
        after the last batch; nothing is called after this.
        """


class INotifier(Interface):
    """
    The application's handle on the notifier (RFC 6665 section 4.2): drive
    NOTIFYs without PUBLISH, and end subscriptions.

    Provided by L{sipevents.notifier.notifier.Notifier}; a Twisted application gets
    it from C{SIPEventsService.notifier}.
    """

    def setState(
        eventType: str, resource: str, contentType: str, body: bytes
    ) -> Deferred[None]:
        """
        Set the application's own contribution to the state of C{resource}
        for C{eventType}: it is kept as a publication that never expires
        (composed with any PUBLISHed ones by the package) and every watcher
        is NOTIFYed, coalesced per the package's C{minNotifyInterval}.

        @raise sipevents.errors.SIPError: as L{IEventPackage.parsePublication}
            does for a bad body, or 489 for an unknown event type.
        @return: a L{Deferred} that fires once the state is stored.
        """

    def clearState(eventType: str, resource: str) -> Deferred[None]:
        """
        Remove the application's contribution set by L{setState}; watchers
        are NOTIFYed of the state that remains (neutral state if none).
        """

    def terminate(
        resource: str | None = None,
        eventType: str | None = None,
        key: str | None = None,
        reason: str = "deactivated",
        retryAfter: int | None = None,
    ) -> int:
        """
        End subscriptions with a final NOTIFY C{Subscription-State:
        terminated;reason=REASON[;retry-after=N]} (RFC 6665 section 4.1.3:
        C{deactivated}, C{probation}, C{rejected}, C{timeout}, C{giveup},
        C{noresource}, C{invariant}).

        @param resource: only subscriptions to this resource key.
        @param eventType: only subscriptions of this event type.
        @param key: only the subscription with this key.
        @return: how many subscriptions were terminated.
        """

    def subscriptions(
        resource: str | None = None, eventType: str | None = None
    ) -> list[SubscriptionRecord]:
        """
        The live subscriptions, optionally filtered.
        """


class ISubscription(Interface):
    """
    One subscription of a subscriber (RFC 6665 section 4.1): a handle for
    one dialog usage, or for a fork of one (section 4.1.2.4).

    Returned by L{ISubscriber.subscribe}; the application reads its state
    and calls its methods on the reactor thread.
    """

    target = Attribute("L{str}: the URI subscribed to, as text.")
    event = Attribute('L{str}: the event type, e.g. C{"presence"}.')
    state = Attribute(
        "A L{sipevents.subscriber.states.SubscriberState}: the state of RFC "
        "6665 section 4.1.2 (init, notify_wait, pending, active, "
        "terminated), or unsubscribing (C{Expires: 0} sent, section "
        "4.1.2.3) or retry_wait (the usage ended; the same handle "
        "re-subscribes after a delay, section 4.1.3). Changed only by the "
        "table L{sipevents.subscriber.states.TRANSITIONS}."
    )
    notification = Attribute(
        "The latest L{sipevents.events.Notification}, or C{None} before the first."
    )
    expiresAt = Attribute(
        "L{float}: the clock time the subscription ends unless refreshed, or "
        "C{None} before it is granted."
    )
    forkOf = Attribute(
        "The L{ISubscription} this one forked from (RFC 6665 section "
        "4.1.2.4), or C{None}."
    )

    def whenActive() -> Deferred[Notification]:
        """
        @return: a L{Deferred} that fires with the first C{active}
            L{sipevents.events.Notification}, or fails with
            L{sipevents.events.SubscriptionFailed} if the subscription ends
            first.
        """

    def whenTerminated() -> Deferred[Termination]:
        """
        @return: a L{Deferred} that fires with the
            L{sipevents.events.Termination} once the subscription has ended
            with no re-subscription to come; it does not fail.
        """

    def refresh(expires: int | None = None) -> Deferred[None]:
        """
        Refresh now (RFC 6665 section 4.1.2.2); it happens by itself
        otherwise.

        @return: a L{Deferred} that fires on the 2xx.
        """

    def unsubscribe() -> Deferred[Termination]:
        """
        Send C{Expires: 0} (RFC 6665 section 4.1.2.3).

        @return: a L{Deferred} that fires with the
            L{sipevents.events.Termination} on the final NOTIFY, after
            Timer N without one, or at once when nothing was established.
        """


class ISubscriptionObserver(Interface):
    """
    What the application gives L{ISubscriber.subscribe} to hear about one
    subscription (RFC 6665 section 4.1): its NOTIFYs, each new dialog usage
    (forks included, section 4.1.4) and its end.

    Called by L{sipevents.subscriber.handle.Subscription} on the reactor thread;
    every method returns nothing, and an exception it raises is logged and
    changes nothing (the NOTIFY has been answered 200 already).
    L{sipevents.subscriber.subscriber.SubscriptionObserver} is a do-nothing base to
    subclass.
    """

    def notificationReceived(
        subscription: ISubscription, notification: Notification
    ) -> None:
        """
        A NOTIFY arrived and was answered 200 (RFC 6665 section 4.1.3).

        @param subscription: the L{sipevents.subscriber.handle.Subscription} (a
            fork's own handle for a forked NOTIFY).
        @param notification: the L{sipevents.events.Notification}:
            Subscription-State, Event, content type, body, the NOTIFY.
        """

    def subscriptionStarted(subscription: ISubscription) -> None:
        """
        A dialog usage began: the first C{active} or C{pending} NOTIFY of a
        SUBSCRIBE, of a re-subscription, or of a fork (whose C{forkOf} is
        the handle subscribed). Called before L{notificationReceived} for
        that NOTIFY.
        """

    def subscriptionEnded(
        subscription: ISubscription, termination: Termination
    ) -> None:
        """
        A dialog usage ended (RFC 6665 section 4.1.2): a C{terminated}
        NOTIFY (after L{notificationReceived} for it), Timer N, a failed
        SUBSCRIBE, a local expiry or an unsubscription.

        @param termination: the L{sipevents.events.Termination}; its
            C{willRetry} says whether a re-subscription is scheduled on the
            same handle.
        """


class ISubscriber(Interface):
    """
    The application's handle on the subscriber side (RFC 6665 section 4.1):
    subscribe to and poll remote resources.

    Provided by L{sipevents.subscriber.subscriber.Subscriber}, which is also the
    L{IRequestHandler} for NOTIFY on its user agent; a Twisted application
    gets one from C{sipevents.subscriber.client.startSubscriber}.
    """

    subscriptions = Attribute(
        "A list of the live subscriptions (L{ISubscription}): forks, and "
        "handles waiting to re-subscribe, included."
    )

    def subscribe(
        target: str,
        event: str,
        observer: ISubscriptionObserver | None = None,
        id: str | None = None,
        accept: Sequence[str] = (),
        expires: int | None = None,
        body: bytes = b"",
        contentType: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
        proxy: str | None = None,
        credentials: Credentials | None = None,
        fromUri: str | None = None,
    ) -> ISubscription:
        """
        Subscribe to C{event} at C{target}; the SUBSCRIBE is sent at once
        (RFC 6665 section 4.1.2.1) and refreshed, re-subscribed and
        reported as L{sipevents.subscriber.handle} describes.

        Called by applications.

        @param target: a SIP or SIPS URI as text
            (C{"sip:alice@127.0.0.1:5070"}).
        @param event: the event type (C{"presence"}).
        @param observer: told of NOTIFYs and of the subscription's start
            and end.
        @param id: the Event C{id} parameter (RFC 6665 section 8.2.1).
        @param accept: MIME types for the Accept header.
        @param expires: the duration asked for; none by default (the
            package's default applies).
        @param body: a SUBSCRIBE body, with C{contentType}.
        @param headers: further header fields, in order.
        @param proxy: an outbound proxy URI as text
            (C{"sip:127.0.0.1:5060;transport=tcp"}), sent to as a
            preloaded C{Route} with C{lr} (RFC 3261 section 8.1.2).
        @param credentials: L{sipevents.events.Credentials} to answer 401
            and 407 challenges with.
        @param fromUri: our From URI for this subscription.
        @return: an L{ISubscription} (a value, not a
            L{Deferred}); its C{whenActive} and C{whenTerminated} give
            L{Deferred}s.
        @raise ValueError: for a target or proxy that cannot be sent to.
        """

    def fetch(
        target: str,
        event: str,
        id: str | None = None,
        accept: Sequence[str] = (),
        body: bytes = b"",
        contentType: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
        proxy: str | None = None,
        credentials: Credentials | None = None,
        fromUri: str | None = None,
    ) -> Deferred[Notification]:
        """
        Poll the state of C{target} once (RFC 6665 section 4.4.3): a
        SUBSCRIBE with C{Expires: 0}.

        Called by applications; the arguments are those of L{subscribe}.

        @return: a L{Deferred} firing with the first NOTIFY's
            L{sipevents.events.Notification}, or failing with
            L{sipevents.events.SubscriptionFailed}.
        """

    def stop() -> Deferred[None]:
        """
        Unsubscribe every live subscription; called when the application
        stops.

        @return: a L{Deferred} that fires once all have ended, within Timer
            N (64*T1).
        """
