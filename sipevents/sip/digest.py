# -*- test-case-name: tests.test_digest -*-
"""
Client-side HTTP Digest authentication for SIP (RFC 3261 section 22.2 to
22.4, RFC 2617, RFC 7616).

A UAC whose request is answered 401 (with C{WWW-Authenticate}) or 407 (with
C{Proxy-Authenticate}) sends it again carrying credentials computed from the
challenge (RFC 3261 section 22.2 and 22.3). L{authorize} does that in one
step; L{parseChallenge} and L{authorizationFor} are the pieces.

What is supported, and why:

  - Algorithms C{MD5} and C{SHA-256} (RFC 7616 section 3.2) and their
    C{-sess} variants; C{SHA-256} is preferred when a server offers both,
    as RFC 7616 section 3.7 asks a client to choose the strongest one it
    understands. C{SHA-512-256} and the 3GPP C{AKA} algorithms are not
    supported: a challenge using only them is not answered.
  - C{qop=auth}, preferred (RFC 2617 section 3.2.2: a client that sees a
    C{qop} must send one back, RFC 3261 section 22.4 item 8), then
    C{qop=auth-int} (the body is hashed; an empty body hashes as the empty
    string, RFC 3261 section 22.4 item 7), then no C{qop} at all, the RFC
    2069 form that RFC 3261 section 22.4 still requires us to speak to old
    servers. A C{-sess} algorithm without C{qop} is refused, since it needs
    a C{cnonce} that RFC 2617 forbids sending without C{qop}.
  - C{opaque} is echoed verbatim; C{algorithm} is always echoed (also when
    the challenge left it out and meant C{MD5}), because every server
    accepts it and some insist on it.
  - C{userhash} (RFC 7616 section 3.4.4): the username is sent hashed when
    the challenge asks for it.
  - The C{uri} is the Request-URI, always quoted (RFC 3261 section 22.4
    items 2 and 3).

Values are text: passwords and usernames are hashed as UTF-8 (RFC 7616
section 4, C{charset=UTF-8}; for the ASCII names SIP deployments use this is
also what RFC 2617 servers compute).

L{digestHA1} and L{requestDigest} compute the digest; the server side,
L{sipevents.sip.authentication}, uses the same two functions, so that both
sides compute it one way. L{verifyAuthorization} is a small server-side
check used by our tests to play a challenging UAS; it keeps no nonce counts:
the real one is L{sipevents.sip.authentication.DigestAuthenticator}.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sipevents.events import Credentials
from sipevents.sip.headers import _QUOTED, _unquote
from sipevents.sip.message import Headers, Request, Response
from sipevents.sip.uri import formatURI

__all__ = [
    "Challenge",
    "SUPPORTED_ALGORITHMS",
    "authorizationFor",
    "authorize",
    "canonicalAlgorithm",
    "digestHA1",
    "parseAuthParams",
    "parseChallenge",
    "quoteString",
    "requestDigest",
    "verifyAuthorization",
]

#: Hash functions by algorithm name, upper case (RFC 7616 section 3.2 and
#: 6.1). A C{-sess} variant uses the same function.
_HASHES: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda data: hashlib.md5(data).hexdigest(),
    "SHA-256": lambda data: hashlib.sha256(data).hexdigest(),
}

#: The algorithms L{authorizationFor} can answer, in their canonical
#: spelling, strongest first: the order L{authorize} prefers them in.
SUPPORTED_ALGORITHMS: tuple[str, ...] = ("SHA-256", "SHA-256-sess", "MD5", "MD5-sess")

#: The qop values we can answer, preferred first (see the module docstring).
_QOP_PREFERENCE: tuple[str, ...] = ("auth", "auth-int")

_CANONICAL_ALGORITHMS = {name.upper(): name for name in SUPPORTED_ALGORITHMS}


@dataclass(frozen=True, slots=True)
class Challenge:
    """
    A parsed C{Digest} challenge, from C{WWW-Authenticate} or
    C{Proxy-Authenticate} (RFC 2617 section 3.2.1, RFC 7616 section 3.3).

    @ivar realm: the protection domain (case-sensitive).
    @ivar nonce: the server's nonce, unquoted.
    @ivar algorithm: the algorithm in its canonical spelling when we know it
        (C{"MD5"}, C{"SHA-256"}, C{"MD5-sess"}, C{"SHA-256-sess"}), as
        written otherwise; C{"MD5"} when the challenge named none (RFC 2617
        section 3.2.1).
    @ivar qop: the offered qop values, lower case, in the server's order;
        empty for an RFC 2069 challenge.
    @ivar opaque: the opaque value to echo, or C{None}.
    @ivar stale: C{True} when the server says the previous nonce was stale
        but the credentials were right (RFC 2617 section 3.2.1): answering
        again with the new nonce is expected to work.
    @ivar userhash: C{True} when the server wants the username hashed
        (RFC 7616 section 3.4.4).
    """

    realm: str
    nonce: str
    algorithm: str
    qop: tuple[str, ...]
    opaque: str | None
    stale: bool
    userhash: bool = False

    @property
    def supported(self) -> bool:
        """
        Whether L{authorizationFor} can answer this challenge: a supported
        algorithm, a qop we speak (or none), and no C{-sess} without qop.
        """
        if self.algorithm not in _CANONICAL_ALGORITHMS.values():
            return False
        if not self.qop:
            return not self.algorithm.endswith("-sess")
        return _chooseQop(self.qop) is not None


# RFC 7230 section 3.2.6 token (a superset of RFC 3261's); the quoted-string
# and its unquoting are those of sipevents.sip.headers.
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_SCHEME_RE = re.compile(rf"[ \t\r\n,]*({_TOKEN})(?=[ \t\r\n]|\Z|,)")
_PARAM_RE = re.compile(
    # Unquoted values are taken up to the next comma or white space: some
    # servers send an unquoted base64 nonce, with "/" and "=" in it.
    rf"[ \t\r\n]*({_TOKEN})[ \t\r\n]*=[ \t\r\n]*({_QUOTED}|[^ \t\r\n,\"]*)[ \t\r\n]*",
    re.S,
)
# token68 (RFC 7235 section 2.1), the lone credential of schemes such as
# Negotiate: only skipped.
_TOKEN68_RE = re.compile(r"[ \t\r\n]*[A-Za-z0-9\-._~+/]+=*[ \t\r\n]*(?:,|\Z)")
_CRLF_RE = re.compile(r"[\r\n]+")


def _paramValue(value: str) -> str:
    """
    An auth-param value as written, unquoted when it is a quoted-string.
    """
    return _unquote(value[1:-1]) if value.startswith('"') else value


def quoteString(value: str) -> str:
    """
    A quoted-string (RFC 2617 section 1.2): C{"} and C{\\} escaped. CR and
    LF cannot be carried and become spaces, so that a hostile nonce can
    never break our header section.
    """
    value = _CRLF_RE.sub(" ", value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _parseChallenges(value: str) -> list[tuple[str, dict[str, str]]]:
    """
    Every challenge in one header field value, as C{(scheme, params)} with
    parameter names in lower case and values unquoted (RFC 7235 section
    4.1: a field may carry several challenges, one after another).

    @raise ValueError: when the value is not a list of challenges, or a
        challenge repeats a parameter (RFC 7235 section 2.2).
    """
    out: list[tuple[str, dict[str, str]]] = []
    pos = 0
    end = len(value)
    while True:
        while pos < end and value[pos] in " \t\r\n,":
            pos += 1
        if pos >= end:
            break
        scheme = _SCHEME_RE.match(value, pos)
        if scheme is None:
            raise ValueError(f"Not an authentication challenge: {value!r}")
        pos = scheme.end()
        params: dict[str, str] = {}
        token68 = _TOKEN68_RE.match(value, pos)
        if token68 is not None and not _PARAM_RE.match(value, pos):
            pos = token68.end()
        else:
            while True:
                param = _PARAM_RE.match(value, pos)
                if param is None:
                    # A name followed by white space and no "=" starts the
                    # next challenge, which the regular expression refuses.
                    break
                name = param.group(1).lower()
                if name in params:
                    raise ValueError(f"Parameter {name!r} repeated in {value!r}")
                params[name] = _paramValue(param.group(2))
                pos = param.end()
                if pos >= end or value[pos] != ",":
                    break
                # Empty list elements are allowed (RFC 7230 section 7).
                while pos < end and value[pos] in " \t\r\n,":
                    pos += 1
            if pos < end and _SCHEME_RE.match(value, pos) is None:
                raise ValueError(f"Bad authentication parameters in {value!r}")
        out.append((scheme.group(1), params))
    if not out:
        raise ValueError("Empty authentication challenge")
    return out


def parseAuthParams(value: str) -> tuple[str, dict[str, str]]:
    """
    The scheme and parameters of one challenge or credentials value
    (C{Digest realm="x", nonce="y"}), parameter names in lower case and
    values unquoted (RFC 2617 section 1.2, RFC 7235 section 2.1).

    @raise ValueError: when the value is malformed or holds several.
    """
    items = _parseChallenges(value)
    if len(items) != 1:
        raise ValueError(f"Several authentication values in {value!r}")
    return items[0]


def _challengeFrom(params: dict[str, str]) -> Challenge:
    realm = params.get("realm")
    nonce = params.get("nonce")
    if realm is None:
        raise ValueError("Digest challenge without realm")
    if not nonce:
        raise ValueError("Digest challenge without nonce")
    algorithm = params.get("algorithm", "MD5")
    algorithm = _CANONICAL_ALGORITHMS.get(algorithm.upper(), algorithm)
    qop = tuple(
        part.strip().lower()
        for part in params.get("qop", "").split(",")
        if part.strip()
    )
    return Challenge(
        realm=realm,
        nonce=nonce,
        algorithm=algorithm,
        qop=qop,
        opaque=params.get("opaque"),
        stale=params.get("stale", "").lower() == "true",
        userhash=params.get("userhash", "").lower() == "true",
    )


def parseChallenge(value: str) -> Challenge:
    """
    Parse one C{WWW-Authenticate} or C{Proxy-Authenticate} value holding a
    C{Digest} challenge (RFC 2617 section 3.2.1, RFC 7616 section 3.3;
    RFC 3261 section 25.1, C{challenge}).

    @raise ValueError: when the value is malformed, not a C{Digest}
        challenge (RFC 3261 section 22.4: SIP never uses Basic), or lacks a
        realm or a nonce.
    """
    scheme, params = parseAuthParams(value)
    if scheme.lower() != "digest":
        raise ValueError(f"Not a Digest challenge: {scheme!r}")
    return _challengeFrom(params)


def _digestChallengesIn(values: list[str]) -> list[Challenge]:
    """
    The well-formed C{Digest} challenges in C{values}, skipping anything
    else: one bad challenge must not hide a good one beside it.
    """
    out = []
    for value in values:
        try:
            items = _parseChallenges(value)
        except ValueError:
            continue
        for scheme, params in items:
            if scheme.lower() != "digest":
                continue
            try:
                out.append(_challengeFrom(params))
            except ValueError:
                continue
    return out


def _chooseQop(offered: tuple[str, ...]) -> str | None:
    for qop in _QOP_PREFERENCE:
        if qop in offered:
            return qop
    return None


def canonicalAlgorithm(name: str) -> str | None:
    """
    The canonical spelling of a supported algorithm name (C{"sha-256"} is
    C{"SHA-256"}; RFC 7616 section 3.3: algorithm names are
    case-insensitive), or C{None} for one we do not support.
    """
    return _CANONICAL_ALGORITHMS.get(name.upper())


def digestHA1(algorithm: str, username: str, realm: str, password: str) -> str:
    """
    C{H(username ":" realm ":" password)} in hex, with the hash of
    C{algorithm} (a C{-sess} variant uses its base hash): the A1 digest of
    RFC 2617 section 3.2.2.2 and RFC 7616 section 3.4.2 that a server may
    store instead of the password (Apache's C{htdigest} stores the MD5 one).
    """
    return _HASHES[algorithm.removesuffix("-sess")](
        f"{username}:{realm}:{password}".encode()
    )


def requestDigest(
    algorithm: str,
    ha1: str,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None,
    nc: str,
    cnonce: str,
    body: bytes,
) -> str:
    """
    The C{request-digest} (RFC 2617 section 3.2.2.1 to 3.2.2.3, RFC 7616
    section 3.4.1 to 3.4.3, RFC 3261 section 22.4 item 7), from the A1
    digest L{digestHA1} computes: the one computation the client
    (L{authorizationFor}) and the server
    (L{sipevents.sip.authentication.SIPDigestCredentials}) share.

    @param ha1: C{H(username:realm:password)} in lower-case hex; for a
        C{-sess} algorithm it is combined with C{nonce} and C{cnonce} here.
    @param qop: C{"auth"}, C{"auth-int"}, or C{None} for the RFC 2069 form
        (then C{nc} and C{cnonce} are not used, except C{cnonce} by
        C{-sess}).
    @param nc: the nonce count as written (8 hex digits).
    @param body: the request body, hashed for C{qop=auth-int} only.
    """
    H = _HASHES[algorithm.removesuffix("-sess")]

    def h(text: str) -> str:
        return H(text.encode("utf-8"))

    if algorithm.endswith("-sess"):
        ha1 = h(f"{ha1}:{nonce}:{cnonce}")
    if qop == "auth-int":
        ha2 = h(f"{method}:{uri}:{H(body)}")
    else:
        ha2 = h(f"{method}:{uri}")
    if qop is None:
        return h(f"{ha1}:{nonce}:{ha2}")
    return h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def authorizationFor(
    challenge: Challenge,
    credentials: Credentials,
    method: str,
    uri: str,
    body: bytes = b"",
    nc: int = 1,
    cnonce: str | None = None,
) -> str:
    """
    The C{Authorization} (or C{Proxy-Authorization}) value answering
    C{challenge} for a request (RFC 2617 section 3.2.2, RFC 7616 section
    3.4, RFC 3261 section 22.4).

    @param method: the request's method (C{"SUBSCRIBE"}).
    @param uri: the Request-URI as text (RFC 3261 section 22.4 item 3).
    @param body: the request body, hashed for C{qop=auth-int} only.
    @param nc: the nonce count: how many requests, this one included, we
        have sent with this nonce (RFC 2617 section 3.2.2); written as 8 hex
        digits.
    @param cnonce: the client nonce; a fresh random one by default. Only
        sent with a qop (RFC 3261 section 22.4 item 8).
    @raise ValueError: when the challenge is not L{Challenge.supported}, or
        C{nc} is out of range.
    """
    if not challenge.supported:
        raise ValueError(
            f"Unsupported digest challenge: algorithm={challenge.algorithm}"
            f" qop={','.join(challenge.qop) or '(none)'}"
        )
    if not 0 < nc <= 0xFFFFFFFF:
        raise ValueError(f"Nonce count out of range: {nc}")
    qop = _chooseQop(challenge.qop)
    if cnonce is None:
        cnonce = secrets.token_hex(16)
    ncValue = f"{nc:08x}"
    username = credentials.username
    response = requestDigest(
        challenge.algorithm,
        digestHA1(challenge.algorithm, username, challenge.realm, credentials.password),
        challenge.nonce,
        method,
        uri,
        qop,
        ncValue,
        cnonce,
        body,
    )
    if challenge.userhash:
        H = _HASHES[challenge.algorithm.removesuffix("-sess")]
        username = H(f"{username}:{challenge.realm}".encode())
    parts = [
        f"username={quoteString(username)}",
        f"realm={quoteString(challenge.realm)}",
        f"nonce={quoteString(challenge.nonce)}",
        f"uri={quoteString(uri)}",
        f"response={quoteString(response)}",
        f"algorithm={challenge.algorithm}",
    ]
    if qop is not None:
        # qop and nc are tokens, unquoted (RFC 2617 section 3.2.2).
        parts += [f"cnonce={quoteString(cnonce)}", f"qop={qop}", f"nc={ncValue}"]
    if challenge.opaque is not None:
        parts.append(f"opaque={quoteString(challenge.opaque)}")
    if challenge.userhash:
        parts.append("userhash=true")
    return "Digest " + ", ".join(parts)


def _strength(challenge: Challenge) -> tuple[int, int]:
    """
    How much L{authorize} likes a challenge: stronger hash first, then a
    qop over none (RFC 7616 section 3.7).
    """
    return (
        len(SUPPORTED_ALGORITHMS) - SUPPORTED_ALGORITHMS.index(challenge.algorithm),
        1 if challenge.qop else 0,
    )


def _realmOf(value: str) -> str | None:
    try:
        _, params = parseAuthParams(value)
    except ValueError:
        return None
    return params.get("realm")


def authorize(
    request: Request, response: Response, credentials: Credentials, nc: int = 1
) -> Request | None:
    """
    A copy of C{request} carrying credentials that answer C{response}'s
    challenge (RFC 3261 section 22.2 and 22.3), or C{None} when there is
    nothing we can answer.

    A 401 is answered with C{Authorization} for its C{WWW-Authenticate}
    challenges, a 407 with C{Proxy-Authorization} for its
    C{Proxy-Authenticate} ones. Of the challenges we support (see
    L{Challenge.supported}) whose realm matches C{credentials.realm} (any,
    when that is C{None}), the strongest of each realm is answered: one
    header for the usual single challenge, one per realm when forked
    proxies each challenged (RFC 3261 section 22.3). Credentials already in
    the request for those realms (from an earlier, stale answer) are
    replaced; others, for instance a proxy's beside a 401 answer, are kept.

    The copy keeps the Request-URI, Call-ID, From (and its tag), To, every
    other header and the body, has the CSeq number one higher (RFC 3261
    section 22.2: a new request, so a new transaction), and no Via: the
    user agent puts a fresh one with a new branch on it when it sends.

    @param nc: the nonce count for the answered nonce (1 for a fresh one).
    @return: the new request, or C{None} for another status code, no
        usable challenge, or only challenges from other realms.
    """
    if response.code == 401:
        challengeHeader, answerHeader = "WWW-Authenticate", "Authorization"
    elif response.code == 407:
        challengeHeader, answerHeader = "Proxy-Authenticate", "Proxy-Authorization"
    else:
        return None
    best: dict[str, Challenge] = {}
    for challenge in _digestChallengesIn(response.headers.getAll(challengeHeader)):
        if not challenge.supported:
            continue
        if credentials.realm is not None and challenge.realm != credentials.realm:
            continue
        current = best.get(challenge.realm)
        if current is None or _strength(challenge) > _strength(current):
            best[challenge.realm] = challenge
    if not best:
        return None
    cseq = request.cseq
    if cseq is None:
        return None
    uri = formatURI(request.uri)
    headers = Headers()
    for name, value in request.headers:
        lower = name.lower()
        if lower in ("via", "v"):
            continue
        if lower == answerHeader.lower() and _realmOf(value) in best:
            continue
        if lower == "cseq":
            value = f"{cseq.number + 1} {cseq.method}"
        headers.add(name, value)
    for challenge in best.values():
        headers.add(
            answerHeader,
            authorizationFor(
                challenge, credentials, request.method, uri, request.body, nc
            ),
        )
    return Request(request.method, request.uri, headers, request.body, request.version)


def verifyAuthorization(
    value: str,
    method: str,
    password: str,
    realm: str,
    nonce: str,
    body: bytes = b"",
) -> bool:
    """
    Whether an C{Authorization} or C{Proxy-Authorization} value answers a
    challenge we made with C{realm} and C{nonce} using C{password} (RFC
    2617 section 3.2.2, RFC 7616 section 3.4): the server side of
    L{authorizationFor}, for tests that play a challenging UAS.

    The username is taken from the value as written (no C{userhash}); the
    nonce count is not tracked, so replays are not detected.

    @param method: the method of the request that carried the value.
    @param body: the request body, for C{qop=auth-int}.
    """
    try:
        scheme, params = parseAuthParams(value)
    except ValueError:
        return False
    if scheme.lower() != "digest":
        return False
    if params.get("realm") != realm or params.get("nonce") != nonce:
        return False
    algorithm = canonicalAlgorithm(params.get("algorithm", "MD5"))
    username = params.get("username")
    uri = params.get("uri")
    given = params.get("response")
    if algorithm is None or username is None or uri is None or given is None:
        return False
    qop = params.get("qop")
    if qop is not None and qop not in _QOP_PREFERENCE:
        return False
    nc = params.get("nc", "")
    cnonce = params.get("cnonce", "")
    if qop is None and algorithm.endswith("-sess"):
        return False
    if qop is not None and (not re.fullmatch(r"[0-9a-fA-F]{8}", nc) or not cnonce):
        return False
    expected = requestDigest(
        algorithm,
        digestHA1(algorithm, username, realm, password),
        nonce,
        method,
        uri,
        qop,
        nc,
        cnonce,
        body,
    )
    return hmac.compare_digest(expected, given.lower())
