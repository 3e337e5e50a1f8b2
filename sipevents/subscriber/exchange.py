# -*- test-case-name: tests.test_exchange -*-
"""
One request of a user agent client and the requests its answers call for:
a digest challenge answered (RFC 3261 section 22.2 and 22.3), a 423
answered with the Min-Expires asked for (RFC 3261 section 21.4.17, RFC 6665
section 4.1.2.1, RFC 3903 section 4.1), a redirection followed (RFC 3261
section 8.1.3.4).

L{UACExchange} knows nothing of subscriptions: the owner of the request
says how to rebuild it for a longer expiry or another target (each rebuilt
request is a new transaction with the next CSeq), and is told of every
request as it goes out. A SUBSCRIBE, a refresh and a PUBLISH go through it
alike.

Choices:

  - B{Challenges}: answered when credentials were given; a second
    challenge to an answered request only when it says C{stale=true}
    (RFC 3261 section 22.4: the credentials were fine, the nonce was old),
    and never more than L{MAX_CHALLENGES} in a row.
  - B{423}: answered once, with the Min-Expires of the response, when the
    owner can lengthen the request.
  - B{3xx}: followed once, to the first SIP or SIPS Contact, when the
    owner can redirect the request.
  - After a 423 or a redirection the request is new, so its own
    challenges are answered afresh.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from sipevents.errors import ParseError
from sipevents.events import Credentials
from sipevents.sip import digest
from sipevents.sip.addresses import Target
from sipevents.sip.message import Request, Response
from sipevents.sip.uri import SIPURI, formatURI

__all__ = ["MAX_CHALLENGES", "UACExchange"]

#: Challenges answered in a row for one request.
MAX_CHALLENGES = 3


class UACExchange:
    """
    A request and the requests that answer its challenges, 423 or 3xx.

    Create it, then L{start} it; the L{Deferred} it gives fires with the
    final response the exchange did not act on itself (a 2xx, or an error
    it could not or may not answer), or fails as the transaction does
    (L{sipevents.errors.TransactionTimeout},
    L{sipevents.errors.TransportFailure}).

    @ivar request: the request last sent.
    @ivar target: where it was sent.
    @ivar challenges: challenges answered in a row for the current request.
    @ivar lengthened: whether a 423 was answered.
    @ivar redirected: whether a redirection was followed.
    @ivar abandoned: whether L{abandon} was called.
    """

    __slots__ = (
        "request",
        "target",
        "challenges",
        "lengthened",
        "redirected",
        "abandoned",
        "_send",
        "_credentials",
        "_lengthen",
        "_redirect",
        "_onSend",
        "_deferred",
    )

    log = Logger()

    def __init__(
        self,
        send: Callable[[Request, Target], Deferred[Response]],
        request: Request,
        target: Target,
        credentials: Credentials | None = None,
        lengthen: Callable[[int], Request] | None = None,
        redirect: Callable[[str], tuple[Request, Target]] | None = None,
        onSend: Callable[[Request], None] | None = None,
    ) -> None:
        """
        @param send: sends a request through a new client transaction and
            gives its final response
            (L{sipevents.sip.useragent.UserAgent.sendRequest}).
        @param request: the first request.
        @param target: where it goes.
        @param credentials: what to answer 401 and 407 with, or C{None}.
        @param lengthen: rebuilds the request asking for the given
            expiry, for a 423; C{None} not to answer 423.
        @param redirect: rebuilds the request for the given Request-URI,
            and says where it goes, for a 3xx; it raises L{ValueError} when
            that cannot be routed to. C{None} not to follow redirections.
        @param onSend: told of every request as it goes out, before it is
            sent (for the owner's CSeq and timers).
        """
        self.request = request
        self.target = target
        self.challenges = 0
        self.lengthened = False
        self.redirected = False
        self.abandoned = False
        self._send = send
        self._credentials = credentials
        self._lengthen = lengthen
        self._redirect = redirect
        self._onSend = onSend
        self._deferred: Deferred[Response] = Deferred()

    def __repr__(self) -> str:
        return f"<UACExchange {self.request.method} to {self.request.uri}>"

    def start(self) -> Deferred[Response]:
        """
        Send the request.

        @return: a L{Deferred} for the final response (see the class).
        """
        self._transmit()
        return self._deferred

    def abandon(self) -> None:
        """
        Send nothing more: the next final response is the exchange's,
        whatever its code (for a request its owner no longer cares about).
        """
        self.abandoned = True

    def _transmit(self) -> None:
        if self._onSend is not None:
            self._onSend(self.request)
        d = self._send(self.request, self.target)
        d.addCallbacks(self._answered, self._notAnswered)

    def _answered(self, response: Response) -> None:
        if not self.abandoned:
            try:
                if self._reissue(response):
                    return
            except Exception:
                # The owner's rebuild failed: the response is the answer.
                self.log.failure(
                    "Could not send again after {code} in {exchange!r}",
                    code=response.code,
                    exchange=self,
                )
        self._deferred.callback(response)

    def _notAnswered(self, failure: Failure) -> None:
        self._deferred.errback(failure)

    def _reissue(self, response: Response) -> bool:
        """
        Send the request that C{response} calls for, if any.

        @return: whether one was sent.
        """
        code = response.code
        if code in (401, 407):
            authorized = self._authorized(response)
            if authorized is None:
                return False
            self.request = authorized
            self.challenges += 1
        elif code == 423:
            if self._lengthen is None or self.lengthened:
                return False
            try:
                minExpires = response.minExpires
            except ParseError:
                return False
            if minExpires is None:
                return False
            try:
                self.request = self._lengthen(minExpires)
            except ValueError:
                return False
            self.lengthened = True
            self.challenges = 0
        elif 300 <= code < 400:
            if self._redirect is None or self.redirected:
                return False
            uri = _firstSIPContact(response)
            if uri is None:
                return False
            try:
                self.request, self.target = self._redirect(uri)
            except ValueError:
                return False
            self.redirected = True
            self.challenges = 0
        else:
            return False
        self._transmit()
        return True

    def _authorized(self, response: Response) -> Request | None:
        """
        The request answering a 401 or 407 (RFC 3261 section 22.2), or
        C{None} when we must not answer: no credentials, no usable
        challenge, or one already answered that is not C{stale}.
        """
        credentials = self._credentials
        if credentials is None:
            return None
        if self.challenges > 0 and (
            self.challenges >= MAX_CHALLENGES or not _staleChallenge(response)
        ):
            return None
        try:
            return digest.authorize(self.request, response, credentials, 1)
        except Exception:
            self.log.failure(
                "Could not answer the challenge of {exchange!r}", exchange=self
            )
            return None


def _staleChallenge(response: Response) -> bool:
    """
    Whether a challenge of C{response} says C{stale=true} (RFC 3261
    section 22.4).
    """
    for name in ("WWW-Authenticate", "Proxy-Authenticate"):
        for value in response.headers.getAll(name):
            try:
                if digest.parseChallenge(value).stale:
                    return True
            except ValueError:
                continue
    return False


def _firstSIPContact(response: Response) -> str | None:
    """
    The first SIP or SIPS Contact URI of a 3xx, as text (RFC 3261 section
    8.1.3.4), or C{None}.
    """
    try:
        contacts = response.contacts
    except ParseError:
        return None
    for contact in contacts:
        if isinstance(contact.uri, SIPURI):
            return formatURI(contact.uri)
    return None
