# -*- test-case-name: tests.test_uas -*-
"""
The user agent core: what a UAS does with a request before and after a method
handler sees it (RFC 3261 section 8.2), and the UAC side of sending requests
through client transactions (RFC 3261 section 8.1 and 17.1).

L{UserAgent} is the L{IMessageReceiver} the transport layer delivers parsed
messages to. For each request it:

  1. hands retransmissions to their server transaction, which re-sends the
     last response (RFC 3261 section 17.2.3); an ACK for one of our INVITE
     server transactions ends its retransmissions, any other ACK is dropped;
  2. answers CANCEL itself: 200 when it matches a transaction, else 481
     (RFC 3261 section 9.2);
  3. checks, in the order of RFC 3261 section 8.2, the SIP version (505), the
     method (405 with Allow for a method we know but do not serve, 501 for
     one we do not know), the Request-URI scheme (416), merged requests
     (482), Require (420 with Unsupported) and body content (415);
  4. when L{UserAgent.requireAuthentication} was called, authenticates
     SUBSCRIBE and PUBLISH (or the methods it names) through the
     L{IRequestAuthenticator} (RFC 3261 section 22): a failure is answered
     with its status and headers (401 with C{WWW-Authenticate}), a success
     sets L{RequestContext.identity};
  5. dispatches to the L{IRequestHandler} registered for the method with
     L{UserAgent.registerMethod}; OPTIONS is answered by a built-in handler
     (RFC 3261 section 11.2) that later packages extend through the registry,
     L{UserAgent.eventTypes} and L{UserAgent.registerExtension}.

Every final response to a request without a To tag gets one (RFC 3261
section 8.2.6.2) and every response a C{Server} header.

Responses are routed to their client transaction; others are dropped and
logged (RFC 3261 section 17.1.3 and 18.1.2). L{UserAgent.sendRequest} sends a
request through a new client transaction and returns a L{Deferred} that fires
with its final response.

Choices made where the RFCs leave one:

  - The checks run in the order RFC 3261 section 8.2 gives, method before
    Request-URI, so a REGISTER to C{isbn:...} (RFC 4475 section 3.3.8) is
    answered 405, not 416.
  - C{tel} Request-URIs (RFC 3966) are accepted along with C{sip} and
    C{sips}: presence and message-summary resources may be telephone
    numbers, and the handler answers 404 for one it does not know.
  - OPTIONS is answered 200 although an INVITE would get 405 (RFC 3261
    section 11.2 asks for the same code): see L{OptionsHandler}.
  - To tags are a keyed hash of the request's transaction identity (see
    L{UserAgent.toTagFor}), so retransmissions and a CANCEL get the same tag
    without any state kept for it.
  - A handler L{Deferred} that has not fired after Timer F is answered 408,
    so a stuck handler cannot hold its server transaction forever; so is
    an authentication that has not finished.
  - Authentication comes after every section 8.2 check but content
    processing's, so a request we would refuse anyway (405, 416, 420 ...)
    is refused without a challenge, and before the handler, which sees
    only authenticated requests. OPTIONS, NOTIFY, ACK and CANCEL are never
    challenged: OPTIONS is how peers find out what we serve, an ACK or
    CANCEL cannot be resubmitted with credentials (RFC 3261 section
    22.1), and a NOTIFY comes from the notifier our subscription chose.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from functools import partial

from twisted.internet.defer import CancelledError, Deferred, fail
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from sipevents import __version__
from sipevents.config import DEFAULT_TIMERS, TimerConfig
from sipevents.errors import ParseError, SIPError
from sipevents.interfaces import (
    IMessageReceiver,
    IRequestAuthenticator,
    IRequestContext,
    IRequestHandler,
    IRetransmission,
    IRetransmittingSender,
    ISIPIdentity,
    ITransportLayer,
    IUserAgent,
)
from sipevents.sip.addresses import RELIABLE, Source, Target
from sipevents.sip.headers import isToken
from sipevents.sip.message import Message, Request, Response, makeResponse, reasonPhrase
from sipevents.sip.timers import FixedDelayQueue, TimerHandle
from sipevents.sip.transaction import (
    InviteServerTransaction,
    ServerTransaction,
    TransactionManager,
)
from sipevents.sip.uri import SIPURI, TelURI

#: What we put in C{Server} and C{User-Agent} (RFC 3261 section 20.35 and
#: 20.41).
PRODUCT = f"sipevents/{__version__}"

#: Methods we recognize (RFC 3261 section 27.4 and the RFCs that define the
#: others): a request for one of these that has no handler is answered 405,
#: any other method 501 (RFC 3261 section 8.2.1 and 21.5.2).
KNOWN_METHODS = frozenset(
    {
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "REGISTER",
        "OPTIONS",
        "PRACK",  # RFC 3262
        "UPDATE",  # RFC 3311
        "INFO",  # RFC 6086
        "MESSAGE",  # RFC 3428
        "REFER",  # RFC 3515
        "PUBLISH",  # RFC 3903
        "SUBSCRIBE",  # RFC 6665
        "NOTIFY",  # RFC 6665
    }
)

#: Methods the core handles itself and that cannot have a handler: an ACK is
#: never answered and a CANCEL only ever answered by the core (RFC 3261
#: section 9.2 and 17.2.3).
CORE_METHODS = frozenset({"ACK", "CANCEL"})

#: Methods L{UserAgent.requireAuthentication} authenticates unless told
#: otherwise: those that create or change state (RFC 3856 section 6.6.1,
#: RFC 3903 section 14.1).
AUTHENTICATED_METHODS = ("SUBSCRIBE", "PUBLISH")

#: Methods never challenged (see the module docstring).
NEVER_AUTHENTICATED = frozenset({"OPTIONS", "NOTIFY", "ACK", "CANCEL"})

#: Methods whose out-of-dialog requests create dialogs, whose responses carry
#: our Allow-Events (RFC 6665 section 4.4.4).
DIALOG_CREATING = frozenset({"INVITE", "SUBSCRIBE", "REFER"})

#: Request-URI schemes we accept (RFC 3261 section 8.2.2.1); any other is
#: answered 416.
URI_SCHEMES = frozenset({"sip", "sips", "tel"})


class AlreadyResponded(Exception):
    """
    A handler tried to send a second final response to one request
    (RFC 3261 section 17.2.2: a server transaction sends one final
    response).
    """


def _mimeMatches(pattern: str, mimeType: str) -> bool:
    """
    Whether C{mimeType} (C{"type/subtype"}, lower case) is matched by
    C{pattern}, which may be C{"*/*"} or C{"type/*"} (RFC 3261 section 20.1).
    """
    pattern = pattern.strip().lower()
    if pattern == "*/*" or pattern == mimeType:
        return True
    if pattern.endswith("/*"):
        return mimeType.split("/", 1)[0] == pattern[:-2]
    return False


@implementer(IRequestHandler)
class FunctionHandler:
    """
    An L{IRequestHandler} made of a function, for small handlers and tests.

    @ivar function: called as C{function(request, context)}; returns what
        L{IRequestHandler.handleRequest} returns.
    @ivar accept: see L{IRequestHandler.accept}.
    """

    __slots__ = ("function", "accept")

    def __init__(
        self,
        function: Callable[
            [Request, IRequestContext], Response | Deferred[Response | None] | None
        ],
        accept: Sequence[str] | None = None,
    ) -> None:
        self.function = function
        self.accept = accept

    def handleRequest(
        self, request: Request, context: IRequestContext
    ) -> Response | Deferred[Response | None] | None:
        return self.function(request, context)


@implementer(IRequestHandler)
class OptionsHandler:
    """
    Answers OPTIONS with the user agent's capabilities (RFC 3261 section 11.2):
    200 with C{Allow} (the methods with handlers), C{Accept} (the union of
    the handlers' body types), C{Allow-Events} (the event packages we are a
    notifier for, RFC 6665 section 4.4.4) and C{Supported} (our option
    tags).

    C{Accept} is always present, empty when no handler takes a body: an
    absent C{Accept} would mean C{application/sdp} (RFC 3261 section 20.1),
    which we never take. C{Allow-Events} and C{Supported} are left out when
    empty, which means the same as an empty list. C{Accept-Encoding} and
    C{Accept-Language} are left out: their defaults, C{identity} and any
    language, are what we take (RFC 3261 section 20.2 and 20.3).

    RFC 3261 section 11.2 asks for the code an INVITE would get; a UA that
    does not do sessions at all answers 200 anyway, as every event server
    does: OPTIONS is how peers find out what it serves (RFC 6665 section
    4.1.1).

    @ivar userAgent: the L{UserAgent} whose capabilities are listed.
    """

    accept: Sequence[str] | None = None

    def __init__(self, userAgent: UserAgent) -> None:
        self.userAgent = userAgent

    def handleRequest(self, request: Request, context: IRequestContext) -> None:
        ua = self.userAgent
        headers = [
            ("Allow", ", ".join(ua.allowedMethods())),
            ("Accept", ", ".join(ua.acceptedTypes())),
        ]
        events = ua.allowEvents()
        if events:
            headers.append(("Allow-Events", ", ".join(events)))
        if ua.extensions:
            headers.append(("Supported", ", ".join(ua.extensions)))
        context.respond(200, headers=headers)


class MergedRequests:
    """
    A bounded, time-limited memory of the transactions of requests without a
    To tag, to detect merged requests: the same request arriving again over
    another path, with the same From tag, Call-ID and CSeq but a different
    transaction (RFC 3261 section 8.2.2.2).

    Entries live for Timer J (64*T1), as long as a non-INVITE server
    transaction can, and the oldest are forgotten first when the memory is
    full, which only means a late merged copy gets processed.

    Over UDP there is an entry for every request of the last 32 seconds, so
    an entry keeps 64-bit hashes (Python's keyed SipHash) of the request
    identity and of the transaction identity rather than the four strings
    they are made of, which the entry would otherwise keep alive: about 150
    bytes instead of 450. Two different requests would have to collide in
    64 bits, with a key no peer knows, for one to be taken for a merged
    copy of the other.

    @ivar clock: the time source.
    @ivar lifetime: how long an entry is remembered, in seconds.
    @ivar maxEntries: how many entries are remembered at most.
    """

    __slots__ = ("clock", "lifetime", "maxEntries", "_entries")

    def __init__(self, clock: IReactorTime, lifetime: float, maxEntries: int) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.maxEntries = maxEntries
        self._entries: OrderedDict[int, tuple[float, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def isMerged(self, request: Request) -> bool:
        """
        Whether C{request} is a merged copy of a request seen within the
        lifetime; if it is not, remember it.

        Only requests without a To tag are checked (RFC 3261 section
        8.2.2.2); the identity compared is the top Via's branch and sent-by,
        which is how section 17.2.3 matches transactions.
        """
        fromAddr = request.fromAddr
        toAddr = request.toAddr
        cseq = request.cseq
        callId = request.callId
        via = request.topVia
        if (
            fromAddr is None
            or toAddr is None
            or toAddr.tag is not None
            or cseq is None
            or callId is None
            or via is None
        ):
            return False
        now = self.clock.seconds()
        entries = self._entries
        # Insertion order is time order, so the expired entries are in front.
        while entries:
            oldest = next(iter(entries.values()))
            if oldest[0] > now:
                break
            entries.popitem(last=False)
        key = hash((callId, fromAddr.tag or "", cseq.number, cseq.method))
        identity = hash((via.branch, via.sentBy))
        seen = entries.get(key)
        if seen is not None:
            return seen[1] != identity
        entries[key] = (now + self.lifetime, identity)
        if len(entries) > self.maxEntries:
            entries.popitem(last=False)
        return False


@implementer(IRequestContext)
class RequestContext:
    """
    The L{IRequestContext} of one request: answers go through its server
    transaction, completed by the user agent (To tag, C{Server}).

    @ivar userAgent: the L{UserAgent} that received the request.
    @ivar request: the request.
    @ivar source: where it came from.
    @ivar toTag: the To tag of our responses (RFC 3261 section 8.2.6.2).
    @ivar inDialog: whether the request had a To tag.
    @ivar transaction: the server transaction.
    @ivar finalResponse: the final response once sent, else C{None}.
    @ivar identity: the L{ISIPIdentity} that authenticated the request, or
        C{None}.
    """

    __slots__ = (
        "userAgent",
        "request",
        "source",
        "_toTag",
        "inDialog",
        "transaction",
        "finalResponse",
        "identity",
        "_timeout",
        "_timedOut",
    )

    def __init__(
        self,
        userAgent: UserAgent,
        request: Request,
        source: Source,
        toTag: str | None,
        inDialog: bool,
        transaction: ServerTransaction | InviteServerTransaction,
    ) -> None:
        """
        @param toTag: the To tag of our responses; C{None} to compute it
            (L{UserAgent.toTagFor}) when first asked for, which a request
            inside a dialog, whose To has its tag already, usually never is.
        """
        self.userAgent = userAgent
        self.request = request
        self.source = source
        self._toTag = toTag
        self.inDialog = inDialog
        self.transaction = transaction
        self.finalResponse: Response | None = None
        self.identity: ISIPIdentity | None = None
        self._timeout: TimerHandle | None = None
        self._timedOut = False

    @property
    def toTag(self) -> str:
        toTag = self._toTag
        if toTag is None:
            toTag = self._toTag = self.userAgent.toTagFor(self.request)
        return toTag

    def __repr__(self) -> str:
        return f"<RequestContext {self.request.method} from {self.source.host}>"

    def respond(
        self,
        code: int,
        reason: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> Response:
        if self.finalResponse is not None:
            raise AlreadyResponded(self.finalResponse.code)
        # In a dialog the request's To has a tag, which makeResponse keeps.
        response = makeResponse(
            self.request,
            code,
            reason,
            toTag=None if self.inDialog else self.toTag,
            headers=headers,
            body=body,
        )
        self.sendResponse(response)
        return response

    def sendResponse(self, response: Response) -> None:
        if self.finalResponse is not None:
            raise AlreadyResponded(self.finalResponse.code)
        self.userAgent.completeResponse(self, response)
        _shareVias(self.request, response)
        if response.code >= 200:
            self.finalResponse = response
            if self._timeout is not None:
                self._timeout.cancel()
            self._timeout = None
        self.transaction.respond(response)


@implementer(IRetransmittingSender)
class _ResponseSender:
    """
    The C{send} of one server transaction: hands its responses to the user
    agent's transport layer for the request's source (RFC 3261 section
    18.2.2). A final response sent over an unreliable transport goes
    through L{ITransportLayer.sendFinalResponse}, and the wire form that
    returns is kept for the transaction to take in place of the messages.

    One small object per transaction, where a C{functools.partial} of a
    bound method would be three.
    """

    __slots__ = ("userAgent", "source", "_sent", "_retransmission")

    def __init__(self, userAgent: UserAgent, source: Source) -> None:
        self.userAgent = userAgent
        self.source = source
        self._sent: Response | None = None
        self._retransmission: IRetransmission | None = None

    def __call__(self, response: Response) -> None:
        userAgent = self.userAgent
        transportLayer = userAgent.transportLayer
        source = self.source
        if transportLayer is None:
            userAgent.log.error(
                "No transport layer: dropped {code} response to {host}:{port}",
                code=response.code,
                host=source.host,
                port=source.port,
            )
            return
        if response.code >= 200 and not source.reliable:
            self._retransmission = transportLayer.sendFinalResponse(response, source)
            self._sent = response
            return
        transportLayer.sendResponse(response, source)

    def retransmission(self, response: Response) -> IRetransmission | None:
        """
        The wire form of C{response} if it is the final response this
        sender sent last and the transport layer gave one; handed over
        once.
        """
        retransmission = self._retransmission
        sent = self._sent
        self._retransmission = self._sent = None
        return retransmission if sent is response else None


def _reject(
    code: int, reason: str | None = None, headers: Iterable[tuple[str, str]] = ()
) -> SIPError:
    """
    The error that answers a request with C{code}, the default reason phrase
    for it unless C{reason} is given, and C{headers}.
    """
    return SIPError(
        reasonPhrase(code) if reason is None else reason, code, list(headers)
    )


def _shareVias(request: Request, response: Response) -> None:
    """
    Give C{response}, whose Via fields were copied from C{request}
    (RFC 3261 section 8.2.6.2), the request's parsed Via view, so that the
    transport layer routing it (section 18.2.2) does not parse them again.
    Via values are immutable, so sharing them is safe; the view is only
    taken when the fields are the same text, and never parsed here.
    """
    if response.headers.getAll("via") != request.headers.getAll("via"):
        return
    try:
        vias = list(request.vias)
    except ParseError:
        return
    response.headers.parsed("via", lambda values: vias)


def _describe(message: Message) -> str:
    """
    A short description of a message for log events.
    """
    if isinstance(message, Request):
        return message.method
    if isinstance(message, Response):
        return f"{message.code} {message.reason}"
    return type(message).__name__


@implementer(IMessageReceiver, IUserAgent)
class UserAgent:
    """
    The UAS and UAC core (RFC 3261 section 8): transaction matching, the
    section 8.2 checks, method dispatch to registered L{IRequestHandler}s,
    and requests sent through client transactions.

    Usable without sockets: give it a L{twisted.internet.task.Clock} and any
    L{ITransportLayer} (a fake that records, or a real
    L{sipevents.sip.transport.TransportLayer} on
    L{sipevents.testing.MemoryUDPReactor}).

    @ivar clock: the time source of every timer.
    @ivar transportLayer: where responses and requests go; may be set after
        construction, since the transport layer needs its receiver first.
    @ivar transactions: the L{TransactionManager}.
    @ivar eventTypes: a callable returning the event types (C{"presence"},
        C{"message-summary"}) we act as a notifier for, listed in
        Allow-Events (RFC 6665 section 4.4.4); the notifier sets it.
    @ivar extensions: the option tags we support (RFC 3261 section 8.2.2.3
        and 20.37), in order; see L{registerExtension}.
    @ivar merged: the memory of recent requests for merged-request detection.
    @ivar authenticator: the L{IRequestAuthenticator} of
        L{requireAuthentication}, or C{None}.
    @ivar authenticatedMethods: the methods it authenticates.
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        transportLayer: ITransportLayer | None = None,
        timers: TimerConfig = DEFAULT_TIMERS,
        transactions: TransactionManager | None = None,
        eventTypes: Callable[[], Iterable[str]] | None = None,
        maxMergedEntries: int = 65536,
    ) -> None:
        """
        @param clock: the time source (C{callLater}, C{seconds}).
        @param transportLayer: the transport layer, or C{None} to set
            L{transportLayer} later.
        @param timers: the transaction timer values.
        @param transactions: a transaction manager to use; a new one on
            C{clock} and C{timers} by default.
        @param eventTypes: see L{eventTypes}; none by default.
        @param maxMergedEntries: the most requests remembered for
            merged-request detection (RFC 3261 section 8.2.2.2).
        """
        self.clock = clock
        self.transportLayer = transportLayer
        self.timers = timers
        self.transactions = (
            TransactionManager(clock, timers) if transactions is None else transactions
        )
        self.eventTypes: Callable[[], Iterable[str]] = (
            eventTypes if eventTypes is not None else tuple
        )
        self.extensions: list[str] = []
        self.merged = MergedRequests(clock, timers.timerJ, maxMergedEntries)
        # Every pending handler waits the same Timer F: one queue, one
        # delayed call.
        self._handlerTimeouts = FixedDelayQueue(
            clock, timers.timerF, self._handlerTimedOut
        )
        self._handlers: dict[str, IRequestHandler] = {}
        self._tagSecret = secrets.token_bytes(16)
        self._pending: set[RequestContext] = set()
        self.authenticator: IRequestAuthenticator | None = None
        self.authenticatedMethods: frozenset[str] = frozenset()
        self.registerMethod("OPTIONS", OptionsHandler(self))

    def requireAuthentication(
        self,
        authenticator: IRequestAuthenticator,
        methods: Iterable[str] = AUTHENTICATED_METHODS,
    ) -> None:
        """
        Authenticate every request of C{methods} through C{authenticator}
        before its handler sees it (RFC 3261 section 22.1): a request that
        fails is answered with the error's status and headers (401 with
        C{WWW-Authenticate} challenges, 400 for a malformed Authorization),
        one that passes reaches its handler with the identity in
        L{RequestContext.identity}. Requests inside a dialog are
        authenticated too: a refresh or an unsubscription changes state
        as much as the initial request.

        @param methods: the methods to authenticate; SUBSCRIBE and PUBLISH
            by default.
        @raise ValueError: for OPTIONS, NOTIFY, ACK or CANCEL, which are
            never challenged (see the module docstring).
        """
        chosen = frozenset(methods)
        refused = sorted(chosen & NEVER_AUTHENTICATED)
        if refused:
            raise ValueError(f"{', '.join(refused)} cannot be authenticated")
        self.authenticator = authenticator
        self.authenticatedMethods = chosen

    # Registry

    def registerMethod(self, method: str, handler: IRequestHandler) -> None:
        """
        Serve requests of C{method} with C{handler} from now on, replacing
        any earlier handler of that method (the built-in OPTIONS one
        included). C{method} is then listed in C{Allow}.

        @param method: the method, case-sensitive (RFC 3261 section 7.1),
            for example C{"SUBSCRIBE"}; also one we do not know of.
        @raise ValueError: for ACK and CANCEL, which the core handles
            (RFC 3261 section 9.2 and 17.2.3), or a method that is not a
            token.
        """
        if method in CORE_METHODS:
            raise ValueError(f"{method} is handled by the user agent core")
        if not isToken(method):
            raise ValueError(f"Not a method name: {method!r}")
        self._handlers[method] = handler

    def unregisterMethod(self, method: str) -> None:
        """
        Stop serving C{method}: its requests get 405 (or 501 for a method
        we do not know) again.

        @raise KeyError: when no handler is registered for C{method}.
        """
        del self._handlers[method]

    def handlerFor(self, method: str) -> IRequestHandler | None:
        """
        The handler registered for C{method}, or C{None}.
        """
        return self._handlers.get(method)

    def registerExtension(self, optionTag: str) -> None:
        """
        Announce support for the extension C{optionTag} (for example
        C{"eventlist"}, RFC 4662): it is listed in C{Supported} and no
        longer answered 420 when a request requires it (RFC 3261 section
        8.2.2.3).
        """
        if optionTag not in self.extensions:
            self.extensions.append(optionTag)

    def allowedMethods(self) -> list[str]:
        """
        The methods listed in C{Allow} (RFC 3261 section 20.5): those with a
        handler, in the order registered.

        CANCEL and ACK are not listed: they only make sense with INVITE
        (RFC 3261 section 9.1), which we do not serve, even though a CANCEL
        is still answered (section 9.2).
        """
        return list(self._handlers)

    def acceptedTypes(self) -> list[str]:
        """
        The union of the body types the handlers accept, in order: the
        C{Accept} of our answer to OPTIONS (RFC 3261 section 11.2).
        """
        types: dict[str, None] = {}
        for handler in self._handlers.values():
            accept = handler.accept
            if accept:
                for mimeType in accept:
                    types[mimeType] = None
        return list(types)

    def allowEvents(self) -> list[str]:
        """
        The event types for C{Allow-Events} (RFC 6665 section 4.4.4), from
        L{eventTypes}.
        """
        return list(self.eventTypes())

    # IMessageReceiver

    def messageReceived(self, message: Message, source: Source) -> None:
        """
        Process a request or response from the transport layer. Never
        raises: unexpected errors are logged.
        """
        try:
            if isinstance(message, Request):
                self._requestReceived(message, source)
            elif isinstance(message, Response):
                self._responseReceived(message, source)
        except Exception:
            self.log.failure(
                "Unexpected error processing {message} from {host}:{port}",
                message=_describe(message),
                host=source.host,
                port=source.port,
            )

    def parseErrorReceived(self, error: ParseError, source: Source) -> None:
        """
        The transport layer answered or dropped unparsable bytes; note it.
        """
        self.log.debug(
            "Unparsable message from {host}:{port}: {status} {reason}",
            host=source.host,
            port=source.port,
            status=error.status,
            reason=error.reason,
        )

    # UAS

    def toTagFor(self, request: Request) -> str:
        """
        The To tag of our responses to C{request} (RFC 3261 section 8.2.6.2
        and 19.3): 64 bits of a keyed hash of the request's transaction
        identity (Call-ID, From tag, CSeq number, top Via branch and
        sent-by), so it is unguessable without the key, the same for
        every response to the request and for a CANCEL of it (section 9.2
        asks the 200 to a CANCEL to carry the tag of the responses to the
        cancelled request), with no state to keep.
        """
        fromAddr = request.fromAddr
        via = request.topVia
        cseq = request.cseq
        identity = "\0".join(
            (
                request.callId or "",
                (fromAddr.tag if fromAddr is not None else None) or "",
                str(cseq.number) if cseq is not None else "",
                (via.branch if via is not None else None) or "",
                via.sentBy if via is not None else "",
            )
        )
        # Keyed BLAKE2b is a MAC in one C call (RFC 7693 section 2.9);
        # hmac.new builds two SHA-256 objects in Python for each request.
        return hashlib.blake2b(
            identity.encode("utf-8", "surrogateescape"),
            key=self._tagSecret,
            digest_size=8,
        ).hexdigest()

    def completeResponse(self, context: RequestContext, response: Response) -> None:
        """
        Add what every response of ours needs before it is sent: a To tag
        when the request had none (RFC 3261 section 8.2.6.2, not for 100),
        a C{Server} header (section 20.35), and C{Allow-Events} on responses
        to requests that create dialogs (RFC 6665 section 4.4.4).
        """
        headers = response.headers
        if not context.inDialog and response.code > 100:
            # The request's To had no tag: a response still carrying it
            # unchanged needs ours (a cheap test, parsing nothing).
            to = headers.get("To")
            if to is not None and to == context.request.headers.get("To"):
                headers.set("To", f"{to};tag={context.toTag}")
        if "Server" not in headers:
            headers.add("Server", PRODUCT)
        if (
            not context.inDialog
            and context.request.method in DIALOG_CREATING
            and "Allow-Events" not in headers
        ):
            events = self.allowEvents()
            if events:
                headers.add("Allow-Events", ", ".join(events))

    def _requestReceived(self, request: Request, source: Source) -> None:
        # RFC 3261 section 17.2.3: a retransmission, or the ACK of a non-2xx
        # final response to one of our INVITE transactions (section 17.2.1).
        if self.transactions.absorbRequest(request):
            return
        if request.method == "ACK":
            # An ACK that matches no transaction would be for a 2xx to an
            # INVITE, which belongs to a dialog (RFC 3261 section 13.3.1.4);
            # we never send one, so nothing can use it.
            self.log.debug(
                "Dropped ACK matching no transaction from {host}:{port}",
                host=source.host,
                port=source.port,
            )
            return
        toAddr = request.toAddr
        inDialog = toAddr is not None and toAddr.tag is not None
        transaction = self.transactions.createServerTransaction(
            request, _ResponseSender(self, source), source.reliable
        )
        context = RequestContext(
            self,
            request,
            source,
            None if inDialog else self.toTagFor(request),
            inDialog,
            transaction,
        )
        try:
            self._processRequest(context)
        except SIPError as error:
            self.log.debug(
                "Rejected {method} from {host}:{port}: {status} {reason}",
                method=request.method,
                host=source.host,
                port=source.port,
                status=error.status,
                reason=error.reason,
            )
            self._answerError(context, error)
        except Exception:
            self.log.failure(
                "Unexpected error processing {method} from {host}:{port}",
                method=request.method,
                host=source.host,
                port=source.port,
            )
            self._answer(context, 500)

    def _answer(
        self,
        context: RequestContext,
        code: int,
        reason: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        """
        Answer C{context}'s request unless it has a final response already.
        """
        if context.finalResponse is None:
            context.respond(code, reason, headers)

    def _answerError(self, context: RequestContext, error: SIPError) -> None:
        """
        Answer with the status, reason and headers of C{error}.
        """
        if context.finalResponse is not None:
            self.log.warn(
                "Ignored {status} {reason} raised after answering {method}",
                status=error.status,
                reason=error.reason,
                method=context.request.method,
            )
            return
        context.respond(error.status, error.reason, error.headers)

    def _processRequest(self, context: RequestContext) -> None:
        """
        The checks of RFC 3261 section 8.2, in its order, then dispatch.

        @raise SIPError: to answer with its status; typed views of the
            request raise L{sipevents.errors.ParseError} (400) for a
            malformed header we need.
        """
        request = context.request
        method = request.method
        # RFC 3261 section 8.1.1.1 and 21.5.6; the parser answers these
        # already, this covers requests built in memory.
        if request.version != "SIP/2.0":
            raise _reject(505)
        if method == "CANCEL":
            self._cancelReceived(context)
            return
        # RFC 3261 section 8.2.1: method inspection.
        handler = self._handlers.get(method)
        if handler is None:
            raise _reject(
                405 if method in KNOWN_METHODS else 501,
                headers=[("Allow", ", ".join(self.allowedMethods()))],
            )
        # RFC 3261 section 8.2.2.1: the Request-URI scheme.
        uri = request.uri
        if not isinstance(uri, (SIPURI, TelURI)) or uri.scheme not in URI_SCHEMES:
            raise _reject(416)
        # RFC 3261 section 8.2.2.2: merged requests.
        if not context.inDialog and self.merged.isMerged(request):
            raise _reject(482, "Loop Detected (Merged Request)")
        # RFC 3261 section 8.2.2.3: Require.
        required = request.require
        if required:
            unsupported = [tag for tag in required if tag not in self.extensions]
            if unsupported:
                raise _reject(420, headers=[("Unsupported", ", ".join(unsupported))])
        # RFC 3261 section 8.2.3: content processing.
        if handler.accept is not None and request.body:
            self._checkContent(request, handler.accept)
        authenticator = self.authenticator
        if authenticator is not None and method in self.authenticatedMethods:
            self._authenticate(authenticator, handler, context)
            return
        self._dispatch(handler, context)

    def _authenticate(
        self,
        authenticator: IRequestAuthenticator,
        handler: IRequestHandler,
        context: RequestContext,
    ) -> None:
        """
        Authenticate C{context}'s request, then dispatch it to C{handler}
        (or to the handler registered for its method by then); an
        authentication that takes longer than Timer F is answered 408 like
        a slow handler.
        """
        try:
            result = authenticator.authenticate(context.request)
        except SIPError as error:
            self._answerError(context, error)
            return
        self._pending.add(context)
        result.addCallbacks(
            self._authenticated,
            self._notAuthenticated,
            callbackArgs=(context, handler),
            errbackArgs=(context,),
        ).addErrback(self._answerFailed, context)
        if context in self._pending and context.finalResponse is None:
            context._timeout = self._handlerTimeouts.schedule((context, result))

    def _authenticated(
        self, identity: ISIPIdentity, context: RequestContext, handler: IRequestHandler
    ) -> None:
        self._finished(context)
        if context.finalResponse is not None:
            return
        context.identity = identity
        current = self._handlers.get(context.request.method, handler)
        self._dispatch(current, context)

    def _notAuthenticated(self, failure: Failure, context: RequestContext) -> None:
        self._finished(context)
        error = failure.value
        if isinstance(error, SIPError):
            self.log.debug(
                "Not authenticated: {method} from {host}:{port}: {status} {reason}",
                method=context.request.method,
                host=context.source.host,
                port=context.source.port,
                status=error.status,
                reason=error.reason,
            )
            self._answerError(context, error)
            return
        if context._timedOut and isinstance(error, CancelledError):
            return
        self.log.failure(
            "Authenticating {method} from {host}:{port} failed",
            failure,
            method=context.request.method,
            host=context.source.host,
            port=context.source.port,
        )
        self._answer(context, 500)

    def _checkContent(self, request: Request, accept: Sequence[str]) -> None:
        """
        Check a request body against the types a handler takes (RFC 3261
        section 8.2.3); we take no content encoding but C{identity}.

        @raise SIPError: 415 with C{Accept} or C{Accept-Encoding}, or 400
            when C{Content-Type} is missing (RFC 3261 section 20.15).
        """
        encodings = [
            coding.lower()
            for coding in request.headers.getList("Content-Encoding")
            if coding.lower() != "identity"
        ]
        if encodings:
            raise _reject(
                415, "Unsupported Content-Encoding", [("Accept-Encoding", "identity")]
            )
        contentType = request.contentType
        if contentType is None:
            raise _reject(400, "Missing Content-Type")
        mimeType = contentType.mimeType
        if not any(_mimeMatches(pattern, mimeType) for pattern in accept):
            raise _reject(415, headers=[("Accept", ", ".join(accept))])

    def _cancelReceived(self, context: RequestContext) -> None:
        """
        Answer a CANCEL (RFC 3261 section 9.2): 200 when it matches a
        transaction, otherwise 481. The INVITEs we receive are all answered
        405 at once, so there is never a pending one to end with 487.
        """
        target = self.transactions.findCancelTarget(context.request, anyMethod=True)
        if target is None:
            context.respond(481)
        else:
            context.respond(200)

    def _dispatch(self, handler: IRequestHandler, context: RequestContext) -> None:
        """
        Call C{handler} and answer with what it returns or raises.
        """
        try:
            result = handler.handleRequest(context.request, context)
        except SIPError as error:
            self._answerError(context, error)
            return
        except Exception:
            self._handlerCrashed(None, context, handler)
            return
        if isinstance(result, Deferred):
            self._pending.add(context)
            result.addCallbacks(
                self._handlerReturned,
                self._handlerFailed,
                callbackArgs=(context, handler),
                errbackArgs=(context, handler),
            ).addErrback(self._answerFailed, context)
            if context in self._pending and context.finalResponse is None:
                context._timeout = self._handlerTimeouts.schedule((context, result))
        else:
            self._handlerReturned(result, context, handler)

    def _handlerReturned(
        self, result: object, context: RequestContext, handler: IRequestHandler
    ) -> None:
        self._finished(context)
        if isinstance(result, Response):
            if context.finalResponse is None:
                context.sendResponse(result)
            else:
                self.log.warn(
                    "{handler!r} returned a {code} after answering {method} "
                    "with {final}; ignored",
                    handler=handler,
                    code=result.code,
                    method=context.request.method,
                    final=context.finalResponse.code,
                )
            return
        if context.finalResponse is None:
            self.log.error(
                "{handler!r} returned {result!r} without answering {method}",
                handler=handler,
                result=result,
                method=context.request.method,
            )
            context.respond(500)

    def _handlerFailed(
        self, failure: Failure, context: RequestContext, handler: IRequestHandler
    ) -> None:
        self._finished(context)
        error = failure.value
        if isinstance(error, SIPError):
            self._answerError(context, error)
            return
        if context._timedOut and isinstance(error, CancelledError):
            return
        self._handlerCrashed(failure, context, handler)

    def _handlerCrashed(
        self,
        failure: Failure | None,
        context: RequestContext,
        handler: IRequestHandler,
    ) -> None:
        """
        Log an unexpected handler error (C{failure}, or the exception being
        handled when C{None}) and answer 500.
        """
        self.log.failure(
            "{handler!r} failed on {method} from {host}:{port}",
            failure,
            handler=handler,
            method=context.request.method,
            host=context.source.host,
            port=context.source.port,
        )
        self._answer(context, 500)

    def _answerFailed(self, failure: Failure, context: RequestContext) -> None:
        """
        Sending the answer a handler's L{Deferred} gave failed; log it, so
        that it does not end as an unhandled error in the L{Deferred}.
        """
        self.log.failure(
            "Could not answer {method} from {host}:{port}",
            failure,
            method=context.request.method,
            host=context.source.host,
            port=context.source.port,
        )

    def _finished(self, context: RequestContext) -> None:
        """
        A handler's result is in: forget the pending context.
        """
        self._pending.discard(context)
        timeout = context._timeout
        if timeout is not None:
            timeout.cancel()
        context._timeout = None

    @property
    def handlerTimeout(self) -> float:
        """
        Seconds a handler's L{Deferred} may take before the request is
        answered 408 and the L{Deferred} cancelled: Timer F.
        """
        return self._handlerTimeouts.delay

    def _handlerTimedOut(
        self, pending: tuple[RequestContext, Deferred[Response | None]]
    ) -> None:
        context, result = pending
        context._timeout = None
        context._timedOut = True
        self.log.warn(
            "No answer to {method} from {host}:{port} after {seconds} seconds",
            method=context.request.method,
            host=context.source.host,
            port=context.source.port,
            seconds=self.handlerTimeout,
        )
        self._answer(context, 408)
        result.cancel()

    # Responses and UAC

    def _responseReceived(self, response: Response, source: Source) -> None:
        if not self.transactions.matchResponse(response):
            # RFC 3261 section 17.1.3 and 18.1.2: a response that matches
            # no client transaction (a late retransmission, or not ours).
            self.log.debug(
                "Dropped {code} response matching no transaction from {host}:{port}",
                code=response.code,
                host=source.host,
                port=source.port,
                callId=response.headers.get("Call-ID"),
            )

    def sendRequest(self, request: Request, target: Target) -> Deferred[Response]:
        """
        Send C{request} to C{target} through a new client transaction
        (RFC 3261 section 8.1.2 and 17.1): the transport layer adds our top
        Via with a fresh branch (section 8.1.1.7) and the transaction
        retransmits as section 17.1.2.2 says.

        The caller builds the rest of the request (RFC 3261 section 8.1.1;
        in a dialog, section 12.2.1.1); a C{User-Agent} header is added when
        there is none.

        @return: a L{Deferred} that fires with the final response (whatever
            its code), or fails with the transaction's timeout (Timer F) or
            transport error.
        """
        transportLayer = self.transportLayer
        if transportLayer is None:
            return fail(RuntimeError("UserAgent has no transport layer"))
        if "User-Agent" not in request.headers:
            request.headers.add("User-Agent", PRODUCT)
        branch = self.transactions.newBranch()
        transportLayer.prepareRequest(request, target, branch)
        reliable = target.transport.upper() in RELIABLE
        # A failed send makes the transaction fail with TransportFailure
        # (RFC 3261 section 17.1.4). The branch is handed over as written,
        # so that the new top Via is not parsed back.
        transaction = self.transactions.createClientTransaction(
            request,
            partial(transportLayer.sendRequest, request, target),
            reliable,
            branch=branch,
        )
        return transaction.deferred

    def stop(self) -> None:
        """
        Cancel every timer, ours (handler timeouts) and the transactions'
        (pending L{sendRequest} L{Deferred}s fail with C{CancelledError});
        for an orderly shutdown.
        """
        for context in list(self._pending):
            self._finished(context)
        self.transactions.stop()
