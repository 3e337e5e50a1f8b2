# -*- test-case-name: tests.test_testing -*-
"""
Message factories: the SUBSCRIBE, NOTIFY, PUBLISH and OPTIONS requests of
RFC 6665 and RFC 3903, and responses to them, as a peer would send them.

Every factory writes the message as text and parses it with
L{sipevents.sip.parser.parseMessage}, so a test gets what a transport
would deliver (header values exactly as written, Content-Length checked),
not an object that never went through the parser.

The defaults describe two peers on loopback: a watcher (or publisher)
C{sip:alice@127.0.0.1} at 127.0.0.1:5070 and a notifier at 127.0.0.1:5060
serving the resource C{sip:bob@127.0.0.1}. Requests from the watcher
belong to one dialog unless told otherwise (Call-ID C{call-1@127.0.0.1},
From tag C{ft1}), so a refresh is C{subscribeRequest(toTag=...,
cseq=2)}; each request gets a fresh Via branch, so each is a new
transaction (RFC 3261 section 17.2.3) unless C{branch} says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable

from sipevents.sip.message import Message, Request, Response, makeResponse
from sipevents.sip.parser import parseMessage
from sipevents.sip.uri import formatURI, parseURI
from sipevents.testing.doubles import newBranch, newTag

__all__ = [
    "NOTIFIER_CONTACT",
    "RESOURCE",
    "WATCHER",
    "WATCHER_CONTACT",
    "notifyRequest",
    "optionsRequest",
    "publishRequest",
    "reparse",
    "responseTo",
    "sipRequest",
    "subscribeRequest",
]

#: The resource the factories address by default.
RESOURCE = "sip:bob@127.0.0.1"
#: The watcher's (and publisher's) address of record.
WATCHER = "sip:alice@127.0.0.1"
#: The watcher's Contact.
WATCHER_CONTACT = "<sip:alice@127.0.0.1:5070>"
#: The notifier's Contact, in NOTIFYs and 2xx responses to SUBSCRIBE.
NOTIFIER_CONTACT = "<sip:bob@127.0.0.1:5060>"


def reparse(message: Message) -> Message:
    """
    C{message} as the transport would deliver it: serialized and parsed.
    """
    return parseMessage(message.toBytes())


def _parseRequest(data: bytes) -> Request:
    message = parseMessage(data)
    if not isinstance(message, Request):
        raise AssertionError(f"not a request: {data!r}")
    return message


def sipRequest(
    method: str,
    uri: str = RESOURCE,
    *,
    branch: str | None = None,
    sentBy: str = "127.0.0.1:5070",
    transport: str = "UDP",
    rport: bool = False,
    viaParams: Iterable[str] = (),
    maxForwards: int = 70,
    fromURI: str = WATCHER,
    fromTag: str | None = "ft1",
    toURI: str | None = None,
    toTag: str | None = None,
    callId: str = "call-1@127.0.0.1",
    cseq: int = 1,
    cseqMethod: str | None = None,
    contact: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    contentType: str | None = None,
    parsed: bool = True,
) -> Request:
    """
    Any request, parsed from its wire form: Via, Max-Forwards, From, To,
    Call-ID, CSeq (RFC 3261 section 8.1.1), then Contact, C{headers} in
    order, Content-Type and Content-Length.

    @param uri: the Request-URI.
    @param branch: the Via branch; a fresh one by default (C{""} for none,
        as an RFC 2543 peer sends).
    @param sentBy: the Via sent-by, C{host:port}.
    @param transport: the Via transport.
    @param rport: add a valueless C{rport} (RFC 3581 section 3).
    @param viaParams: more Via parameters, as written (C{"received=..."}).
    @param fromTag: the From tag, or C{None} for none.
    @param toURI: the To URI; C{uri} by default.
    @param toTag: the To tag of an in-dialog request, or C{None}.
    @param cseqMethod: the CSeq method, when it should differ from
        C{method}.
    @param contact: the Contact value as written, or C{None}.
    @param headers: more header fields, in order.
    @param contentType: the Content-Type, or C{None}.
    @param parsed: C{False} to build the L{Request} from the same fields
        without the parser, for a request it would refuse (a CSeq method
        that is not the request's, no Max-Forwards ...), to test what lies
        behind the parser on it.
    """
    via = f"SIP/2.0/{transport} {sentBy}"
    if branch != "":
        via += f";branch={branch or newBranch()}"
    if rport:
        via += ";rport"
    for parameter in viaParams:
        via += f";{parameter}"
    sender = f"<{fromURI}>" + (f";tag={fromTag}" if fromTag is not None else "")
    to = f"<{toURI or uri}>" + (f";tag={toTag}" if toTag is not None else "")
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: {via}",
        f"Max-Forwards: {maxForwards}",
        f"From: {sender}",
        f"To: {to}",
        f"Call-ID: {callId}",
        f"CSeq: {cseq} {cseqMethod or method}",
    ]
    if contact is not None:
        lines.append(f"Contact: {contact}")
    lines.extend(f"{name}: {value}" for name, value in headers)
    if contentType is not None:
        lines.append(f"Content-Type: {contentType}")
    lines.append(f"Content-Length: {len(body)}")
    if not parsed:
        pairs = (line.split(": ", 1) for line in lines[1:])
        return Request(method, parseURI(uri), [(n, v) for n, v in pairs], body)
    return _parseRequest(("\r\n".join(lines) + "\r\n\r\n").encode() + body)


def subscribeRequest(
    uri: str = RESOURCE,
    *,
    event: str | None = "presence",
    id: str | None = None,
    expires: int | None = 600,
    accept: str | None = None,
    callId: str = "call-1@127.0.0.1",
    fromURI: str = WATCHER,
    fromTag: str = "ft1",
    toURI: str | None = None,
    toTag: str | None = None,
    cseq: int = 1,
    branch: str | None = None,
    contact: str | None = WATCHER_CONTACT,
    headers: Iterable[tuple[str, str]] = (),
    transport: str = "UDP",
    sentBy: str = "127.0.0.1:5070",
    body: bytes = b"",
    contentType: str | None = None,
) -> Request:
    """
    A SUBSCRIBE from the watcher (RFC 6665 section 4.1.2): Event (with
    C{id}), Expires, Contact and Accept as given, then C{headers}.

    An initial SUBSCRIBE by default; with C{toTag} (the notifier's tag from
    the 2xx) and a higher C{cseq}, a refresh in the same dialog, and with
    C{expires=0} too, an unsubscription (section 4.1.2.3).

    @param event: the event type, or C{None} to leave Event out.
    @param expires: the Expires value, or C{None} to leave it out.
    @param accept: the Accept value as written, or C{None}.
    @param toURI: the To URI; C{uri} by default. A refresh is sent to the
        notifier's Contact but keeps the To of the dialog, so give both.
    @see: L{sipRequest} for the other parameters.
    """
    fields: list[tuple[str, str]] = []
    if event is not None:
        fields.append(("Event", event if id is None else f"{event};id={id}"))
    if expires is not None:
        fields.append(("Expires", str(expires)))
    if contact is not None:
        fields.append(("Contact", contact))
    if accept is not None:
        fields.append(("Accept", accept))
    fields.extend(headers)
    return sipRequest(
        "SUBSCRIBE",
        uri,
        branch=branch,
        sentBy=sentBy,
        transport=transport,
        fromURI=fromURI,
        fromTag=fromTag,
        toURI=toURI,
        toTag=toTag,
        callId=callId,
        cseq=cseq,
        headers=fields,
        body=body,
        contentType=contentType,
    )


def notifyRequest(
    subscribe: Request,
    state: str | None = "active;expires=600",
    *,
    uri: str | None = None,
    fromURI: str | None = None,
    fromTag: str = "nt1",
    toTag: str | None = None,
    callId: str | None = None,
    cseq: int = 1,
    event: str | None = None,
    contact: str | None = NOTIFIER_CONTACT,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    contentType: str | None = None,
    branch: str | None = None,
    sentBy: str = "127.0.0.1:5060",
    transport: str = "UDP",
) -> Request:
    """
    A NOTIFY from the notifier in the dialog C{subscribe} made (RFC 6665
    section 4.2.2): the roles of From and To swapped, the SUBSCRIBE's
    Call-ID, its Event, and C{state} as Subscription-State.

    @param subscribe: the SUBSCRIBE the NOTIFY belongs to, as the watcher
        sent it.
    @param state: the Subscription-State value as written, or C{None} to
        leave it out.
    @param uri: the Request-URI; the SUBSCRIBE's Contact URI by default
        (the watcher's remote target, RFC 3261 section 12.1.1).
    @param fromURI: the notifier's URI; the SUBSCRIBE's To URI by default.
    @param fromTag: the notifier's tag.
    @param toTag: the watcher's tag; the SUBSCRIBE's From tag by default,
        C{""} for none (a NOTIFY outside any dialog).
    @param callId: the Call-ID; the SUBSCRIBE's by default.
    @param event: the Event value; the SUBSCRIBE's by default, C{""} for
        none (a NOTIFY a subscriber answers 400, RFC 6665 section 8.2.1).
    @see: L{sipRequest} for the other parameters.
    """
    fromAddr, toAddr = subscribe.fromAddr, subscribe.toAddr
    if fromAddr is None or toAddr is None:
        raise ValueError("the SUBSCRIBE has no From or To")
    if uri is None:
        contacts = subscribe.contacts
        uri = formatURI(contacts[0].uri) if contacts else formatURI(fromAddr.uri)
    fields: list[tuple[str, str]] = []
    if event is None:
        fields.append(("Event", subscribe.headers.get("Event") or ""))
    elif event:
        fields.append(("Event", event))
    if state is not None:
        fields.append(("Subscription-State", state))
    fields.extend(headers)
    return sipRequest(
        "NOTIFY",
        uri,
        branch=branch,
        sentBy=sentBy,
        transport=transport,
        fromURI=fromURI or formatURI(toAddr.uri),
        fromTag=fromTag,
        toURI=formatURI(fromAddr.uri),
        toTag=fromAddr.tag if toTag is None else (toTag or None),
        callId=callId or subscribe.callId or "",
        cseq=cseq,
        contact=contact,
        headers=fields,
        body=body,
        contentType=contentType,
    )


def publishRequest(
    uri: str = RESOURCE,
    *,
    event: str | None = "presence",
    body: bytes = b"",
    contentType: str | None = None,
    etag: str | None = None,
    expires: int | None = None,
    headers: Iterable[tuple[str, str]] = (),
    callId: str | None = None,
    fromTag: str | None = None,
    cseq: int = 1,
    branch: str | None = None,
    sentBy: str = "127.0.0.1:5070",
    transport: str = "UDP",
) -> Request:
    """
    A PUBLISH from the publisher (RFC 3903 section 4): Event,
    SIP-If-Match (C{etag}) and Expires as given, then C{headers}.

    An initial publication with a body and no C{etag}; a refresh with an
    C{etag} and no body; a modification with both; a removal with an
    C{etag} and C{expires=0}. Each PUBLISH is its own request outside any
    dialog, so its Call-ID and From tag are fresh unless given.

    @see: L{sipRequest} for the parameters.
    """
    fields: list[tuple[str, str]] = []
    if event is not None:
        fields.append(("Event", event))
    if etag is not None:
        fields.append(("SIP-If-Match", etag))
    if expires is not None:
        fields.append(("Expires", str(expires)))
    fields.extend(headers)
    return sipRequest(
        "PUBLISH",
        uri,
        branch=branch,
        sentBy=sentBy,
        transport=transport,
        fromTag=fromTag or newTag(),
        callId=callId or f"{newTag()}@127.0.0.1",
        cseq=cseq,
        headers=fields,
        body=body,
        contentType=contentType,
    )


def optionsRequest(uri: str = RESOURCE, **kwargs: object) -> Request:
    """
    An OPTIONS (RFC 3261 section 11), for instance to ask which event
    packages a notifier serves (C{Allow-Events}, RFC 6665 section 4.4.4).

    @param kwargs: see L{sipRequest}.
    """
    return sipRequest("OPTIONS", uri, **kwargs)  # type: ignore[arg-type]


def responseTo(
    request: Request,
    code: int,
    reason: str | None = None,
    *,
    toTag: str | None = None,
    contact: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    contentType: str | None = None,
    parsed: bool = True,
) -> Response:
    """
    A response to C{request} (RFC 3261 section 8.2.6.2), parsed from its
    wire form: Via, From, To, Call-ID and CSeq copied, C{toTag} added to a
    To without a tag (never to a 100), then Contact, C{headers} and
    Content-Type.

    @param reason: the reason phrase; the usual one for C{code} by default.
    @param toTag: the tag to add to To, or C{None} to leave To as it is.
    @param parsed: C{False} to leave the response as built, for a request
        the parser would refuse a response to (one without a Via yet, as
        a UAC core builds it before the transport layer adds one).
    """
    fields: list[tuple[str, str]] = []
    if contact is not None:
        fields.append(("Contact", contact))
    fields.extend(headers)
    if contentType is not None:
        fields.append(("Content-Type", contentType))
    response = makeResponse(request, code, reason, toTag, fields, body)
    if not parsed:
        return response
    again = reparse(response)
    assert isinstance(again, Response)
    return again
