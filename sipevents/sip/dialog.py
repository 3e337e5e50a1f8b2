# -*- test-case-name: tests.test_dialog -*-
"""
The dialog a subscription lives in, seen from the notifier (the UAS that
answered the SUBSCRIBE): its creation from the request (RFC 3261 section
12.1.1), the checks on requests inside it (section 12.2.2), and the
requests we send in it (section 12.2.1.1), with where they go (section
8.1.2).

Pure functions over values: nothing here sends or stores anything. The
dialog state itself is the value L{sipevents.sip.dialogstate.Dialog}, which
every L{sipevents.records.SubscriptionRecord} is, so requests are built
from a record as from a dialog about to be created.

Choices made where the RFCs leave one:

  - A dialog-creating SUBSCRIBE must carry exactly one Contact with a SIP
    or SIPS URI (RFC 3261 section 8.1.1.8); otherwise it is answered 400,
    since no NOTIFY could reach the subscriber. A Contact or Record-Route
    we could not route to (an unsupported transport) is refused the same
    way, before any state is created.
  - Requests go to the first route of the route set, or to the remote
    target when there is none (RFC 3261 section 8.1.2, without an outbound
    proxy). When the route set is empty and the SUBSCRIBE came over a
    reliable transport (TCP, TLS), the requests go back to the address the
    SUBSCRIBE came from, on that transport, so the transport layer reuses
    the subscriber's connection: a client behind NAT can be reached no
    other way, which is what RFC 5626 makes normative for outbound flows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from sipevents.errors import SIPError
from sipevents.sip.addresses import RELIABLE, Target
from sipevents.sip.dialogstate import Dialog
from sipevents.sip.headers import NameAddr, parseNameAddr
from sipevents.sip.message import Request
from sipevents.sip.routing import targetFromURI
from sipevents.sip.uri import SIPURI, URI, formatURI, parseURI

if TYPE_CHECKING:
    from sipevents.interfaces import ITransportLayer
    from sipevents.sip.addresses import Source

__all__ = [
    "addressField",
    "OutOfOrder",
    "SUBSCRIPTION_ENDING_CODES",
    "buildRequest",
    "checkRemoteCSeq",
    "contactURI",
    "WILDCARD_HOSTS",
    "listeningContact",
    "dialogFromRequest",
    "nextHop",
    "remoteTargetOf",
    "requestURIAndRoutes",
    "secureRequest",
]

#: Responses that end a subscription, whichever side receives them: the
#: subscriber when they answer a refreshing SUBSCRIBE (RFC 6665 section
#: 4.1.2.2: "404, 405, 410, 416, 480-485, 489, 501, or 604 ... MUST
#: consider the subscription terminated"), the notifier when they answer a
#: NOTIFY (section 4.2.2: "the notifier MUST remove the corresponding
#: subscription"). RFC 5057 explains them as the responses that end a
#: dialog usage.
SUBSCRIPTION_ENDING_CODES = frozenset(
    {404, 405, 410, 416, 480, 481, 482, 483, 484, 485, 489, 501, 604}
)

#: The Max-Forwards of requests we originate (RFC 3261 section 8.1.1.6).
MAX_FORWARDS = "70"


class OutOfOrder(SIPError):
    """
    500: a request inside a dialog whose CSeq is lower than the last one
    seen (RFC 3261 section 12.2.2).
    """

    status = 500
    defaultReason = "Server Internal Error (CSeq Out of Order)"


def _withoutTag(address: NameAddr) -> str:
    """
    C{address} as header text without its tag.

    A plain address (no display name, no parameters but the tag, a URI
    without C{;}, C{,} or C{?}) is kept as the bare URI text, which is the
    very string a subscription keeps as its watcher, so one object serves
    both; L{addressField} puts it back in angle brackets when a request is
    built. Any other address keeps its URI in angle brackets, so that a tag
    appended later is a header parameter whatever the URI holds (RFC 3261
    section 20.10).
    """
    params = tuple((k, v) for k, v in address.params if k.lower() != "tag")
    if address.displayName is None and not params:
        text = formatURI(address.uri)
        if not any(c in text for c in ";,?<"):
            return text
    return str(NameAddr(address.displayName, address.uri, params, True))


def addressField(address: str, tag: str) -> str:
    """
    The From or To value of a request in a dialog: C{address} (a local or
    remote URI of the dialog, as L{Dialog} keeps it) in angle brackets,
    with C{;tag=TAG} unless C{tag} is empty (RFC 3261 section 12.2.1.1).
    """
    if "<" not in address:
        address = f"<{address}>"
    return f"{address};tag={tag}" if tag else address


def remoteTargetOf(request: Request) -> str | None:
    """
    The remote target a request sets: the URI of its Contact (RFC 3261
    section 12.1.1, and 12.2.2 for target refresh requests such as
    SUBSCRIBE, RFC 6665 section 3.1), as text, or C{None} when it has no
    Contact.

    @raise SIPError: 400 when there are several Contact values, a wildcard,
        or a URI other than SIP or SIPS (RFC 3261 section 8.1.1.8).
    @raise sipevents.errors.ParseError: 400 for a malformed Contact.
    """
    contacts = request.contacts
    if not contacts:
        return None
    if len(contacts) > 1:
        raise SIPError("Several Contact Values", 400)
    uri = contacts[0].uri
    if not isinstance(uri, SIPURI):
        raise SIPError("Contact Must Be a SIP or SIPS URI", 400)
    return formatURI(uri)


def dialogFromRequest(request: Request, localTag: str, source: Source) -> Dialog:
    """
    The dialog a 2xx to C{request} creates (RFC 3261 section 12.1.1): route
    set from Record-Route in order, remote target from Contact, remote
    sequence number from CSeq, local tag C{localTag}, remote tag from the
    From tag, local and remote URIs from To and From.

    @param localTag: the To tag of our response (the request context's
        C{toTag}).
    @param source: where the request came from (the flow).
    @raise SIPError: 400 when the request has no usable Contact, or when
        we could not send a request to its Contact or first Record-Route.
    @raise sipevents.errors.ParseError: 400 for a malformed From, To,
        Contact or Record-Route.
    """
    fromAddr = request.fromAddr
    toAddr = request.toAddr
    cseq = request.cseq
    callId = request.callId
    if fromAddr is None or toAddr is None or cseq is None or callId is None:
        # The parser refuses these; requests built in memory may lack them.
        raise SIPError("Missing From, To, Call-ID or CSeq", 400)
    remoteTarget = remoteTargetOf(request)
    if remoteTarget is None:
        raise SIPError("Missing Contact", 400)
    routeSet = tuple(str(route) for route in request.recordRoutes)
    dialog = Dialog(
        callId=callId,
        localTag=localTag,
        remoteTag=fromAddr.tag or "",
        localUri=_withoutTag(toAddr),
        remoteUri=_withoutTag(fromAddr),
        remoteTarget=remoteTarget,
        routeSet=routeSet,
        remoteCSeq=cseq.number,
        flowTransport=source.transport.upper(),
        flowHost=source.host,
        flowPort=source.port,
    )
    try:
        nextHop(dialog)
    except ValueError as e:
        raise SIPError(f"Cannot Route to Subscriber ({e})", 400) from None
    return dialog


def secureRequest(request: Request, source: Source) -> bool:
    """
    The secure flag of the dialog a 2xx to C{request} creates (RFC 3261
    section 12.1.1): set when the request came over TLS with a SIPS
    Request-URI; our Contact must then be a SIPS URI too.

    @param source: where the request came from.
    """
    uri = request.uri
    return (
        source.transport.upper() == "TLS"
        and isinstance(uri, SIPURI)
        and uri.scheme == "sips"
    )


def checkRemoteCSeq(remoteCSeq: int, request: Request) -> int:
    """
    Check the CSeq of a request inside a dialog (RFC 3261 section 12.2.2):
    one lower than the remote sequence number is out of order. A higher
    one, even by more than one, is in order; an equal one is taken as a
    repetition and accepted (the server transaction has already absorbed
    true retransmissions).

    @param remoteCSeq: the dialog's remote sequence number, or
        L{NO_CSEQ} when it is empty.
    @return: the request's CSeq number, the new remote sequence number.
    @raise OutOfOrder: 500 for a lower CSeq.
    """
    cseq = request.cseq
    if cseq is None:
        raise SIPError("Missing CSeq", 400)
    if cseq.number < remoteCSeq:
        raise OutOfOrder()
    return cseq.number


def _routeURI(route: str) -> URI:
    return parseNameAddr(route, "Route").uri


def requestURIAndRoutes(dialog: Dialog) -> tuple[URI, list[str]]:
    """
    The Request-URI and Route values of a request in C{dialog} (RFC 3261
    section 12.2.1.1): the remote target and the route set when the route
    set is empty or its first URI has C{lr} (loose routing); otherwise
    (strict routing) the first route's URI, without the parameters a
    Request-URI may not carry, and the rest of the route set followed by
    the remote target.
    """
    remoteTarget = parseURI(dialog.remoteTarget)
    routeSet = dialog.routeSet
    if not routeSet:
        return remoteTarget, []
    first = _routeURI(routeSet[0])
    if isinstance(first, SIPURI) and first.hasParam("lr"):
        return remoteTarget, list(routeSet)
    if isinstance(first, SIPURI):
        # RFC 3261 section 19.1.1, table 1: "method" and headers are not
        # allowed in a Request-URI.
        first = replace(first.withoutParam("method"), headers=())
    return first, [*routeSet[1:], f"<{dialog.remoteTarget}>"]


def nextHop(dialog: Dialog) -> Target:
    """
    Where a request in C{dialog} goes (RFC 3261 section 8.1.2 and 12.2.1.1):
    the first URI of the route set, else the remote target; but back on the
    subscriber's own connection when the route set is empty and the
    dialog's flow is reliable (see the module docstring).

    @raise ValueError: when the URI cannot be routed to (not SIP or SIPS,
        or an unsupported transport; L{sipevents.sip.routing.targetFromURI}).
    """
    routeSet = dialog.routeSet
    if routeSet:
        return targetFromURI(_routeURI(routeSet[0]))
    if dialog.flowTransport in RELIABLE:
        return Target(dialog.flowTransport, dialog.flowHost, dialog.flowPort)
    return targetFromURI(parseURI(dialog.remoteTarget))


def contactURI(transport: str, host: str, port: int, secure: bool = False) -> str:
    """
    The Contact URI we give for a dialog whose requests reach us on
    C{transport} at C{host}:C{port} (RFC 3261 section 12.1.1): a SIP URI,
    with a C{transport} parameter for TCP and TLS, or a SIPS URI when the
    dialog is secure.
    """
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    transport = transport.upper()
    if secure:
        return f"sips:{host}:{port}"
    if transport == "UDP":
        return f"sip:{host}:{port}"
    return f"sip:{host}:{port};transport={transport.lower()}"


#: Hosts a socket bound to every interface reports: no address a peer
#: could send to.
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})


def listeningContact(
    transportLayer: ITransportLayer | None,
    transport: str,
    peerHost: str,
    secure: bool = False,
) -> tuple[str, str] | None:
    """
    Our Contact URI for a dialog whose peer at C{peerHost} reaches us over
    C{transport} (RFC 3261 section 8.1.1.8 and 12.1.1): where the transport
    layer says we listen, as it writes in Via sent-by
    (L{ITransportLayer.sentBy}, preferring an advertised host), with the
    host alone.

    @param transportLayer: the user agent's transport layer, C{None} when
        it has none yet.
    @return: C{(contact, host)}, or C{None} when there is no transport
        layer or we listen on every interface with no advertised host, so
        there is no address to give.
    """
    if transportLayer is None:
        return None
    host, port = transportLayer.sentBy(transport, peerHost)
    if host in WILDCARD_HOSTS:
        return None
    return contactURI(transport, host, port, secure), host


def buildRequest(
    dialog: Dialog,
    method: str,
    cseq: int,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> Request:
    """
    A request inside C{dialog} (RFC 3261 section 12.2.1.1): Request-URI and
    Route from L{requestURIAndRoutes}, To from the remote URI and tag, From
    from the local URI and tag, the dialog's Call-ID, C{cseq} with
    C{method}, and Max-Forwards 70 (section 8.1.1.6). The user agent adds
    the Via when it sends it.

    @param cseq: the local sequence number to use; the caller keeps it
        increasing.
    @param headers: further fields (Contact, Event, Subscription-State,
        Content-Type ...), appended in order.
    """
    uri, routes = requestURIAndRoutes(dialog)
    fields: list[tuple[str, str]] = [
        ("Max-Forwards", MAX_FORWARDS),
        ("To", addressField(dialog.remoteUri, dialog.remoteTag)),
        ("From", addressField(dialog.localUri, dialog.localTag)),
        ("Call-ID", dialog.callId),
        ("CSeq", f"{cseq} {method}"),
    ]
    if routes:
        fields.append(("Route", ", ".join(routes)))
    fields.extend(headers)
    return Request(method, uri, fields, body)
