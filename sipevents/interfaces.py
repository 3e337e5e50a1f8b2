# -*- test-case-name: tests.test_interfaces -*-
"""
Every interface of sipevents, in one place.

Implementations declare C{@implementer(...)}; tests check them with
C{verifyObject}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zope.interface import Attribute, Interface

if TYPE_CHECKING:
    from collections.abc import Iterable

    from twisted.internet.defer import Deferred

    from sipevents.addresses import Source
    from sipevents.errors import ParseError
    from sipevents.message import Message, Request, Response


class ISIPConnection(Interface):
    """
    One way of sending SIP messages to peers: a UDP socket, or one TCP or TLS
    connection. Provided by the Twisted protocols in L{sipevents.transport};
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

    request = Attribute("L{sipevents.message.Request}: the request being answered.")
    source = Attribute(
        "L{sipevents.addresses.Source}: where the request came from (its "
        "connection, host and port)."
    )
    userAgent = Attribute(
        "The L{sipevents.uas.UserAgent} that received the request; its "
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
        "L{sipevents.message.Response} or C{None}: the final response sent, "
        "once there is one."
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
        @raise sipevents.uas.AlreadyResponded: when a final response was
            already sent.
        """

    def sendResponse(response: Response) -> None:
        """
        Send a response the handler built itself; the user agent completes
        it like L{respond} does (To tag, C{Server}) before sending.

        @raise sipevents.uas.AlreadyResponded: when a final response was
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

          - return a L{sipevents.message.Response} (built with
            C{sipevents.message.makeResponse(request, code,
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
