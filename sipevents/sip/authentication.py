# -*- test-case-name: tests.test_authentication -*-
"""
Server-side Digest authentication for SIP (RFC 3261 section 22, RFC 7616
with C{qop=auth}, RFC 8760 for SHA-256 in SIP) through C{twisted.cred}.

The pieces, and how they fit:

  - L{DigestAuthenticator} (an L{IRequestAuthenticator}) reads a request's
    C{Authorization}, checks the nonce and its count, and asks a
    C{twisted.cred} L{Portal} to log the user in with
    L{SIPDigestCredentials}; it answers a missing or refused credential
    with L{Unauthorized} (401) carrying fresh challenges.
  - L{SIPDigestCredentials} provide both L{IUsernameDigestHash} (a checker
    that stores C{H(user:realm:password)} calls C{checkHash}) and
    L{IUsernameHashedPassword} (a checker that has the password calls
    C{checkPassword}): any C{twisted.cred} checker for either interface,
    a database's or a directory's, plugs into the portal.
  - L{HTDigestChecker} is the checker for an Apache C{htdigest} file.
  - L{SIPUserRealm} turns the checker's avatar id into a
    L{sipevents.events.SIPUser}, the L{ISIPIdentity} the request proved.

Decisions, with the RFC text behind them:

  - Challenges: one C{WWW-Authenticate} per offered algorithm, the
    preferred first (RFC 8760 section 2.4; RFC 7616 section 3.7); SHA-256
    then MD5 by default, MD5 staying for the phones that only have it.
    Every challenge has C{qop="auth"} (RFC 3261 section 22.4 item 8: a
    server MUST always send a qop). No C{opaque}: the nonce carries all the
    server needs.
  - Nonces are stateless (RFC 7616 section 3.3 suggests a time stamp and a
    hash over it with a secret): 8 bytes of issue time in milliseconds, 8
    random bytes, and the first 16 bytes of HMAC-SHA256(secret, time,
    random, realm), in hex. A nonce is verified without any table, so an
    unanswered challenge costs nothing; a forged or other realm's nonce
    fails the HMAC and gets a fresh challenge.
  - A nonce lives C{nonceLifetime} seconds. An expired nonce with an
    otherwise correct response gets a challenge with C{stale=true} (RFC
    7616 section 3.3: only then), so the client retries without asking its
    user again.
  - Replay (RFC 7616 section 3.4 and 5.x, RFC 6665 section 6.4): for each
    nonce that was used the highest C{nc} accepted is kept; a request whose
    C{nc} is not above it is refused with a fresh challenge. Without
    C{qop} (the RFC 2069 form RFC 3261 section 22.4 still requires a server
    to accept) there is no C{nc}, so the nonce is single-use. The table is
    bounded: entries go when their nonce expires, and when it is full the
    least recently used one goes and every nonce issued no later than it
    is treated as stale from then on, so that forgetting an entry can
    never let a replay in.
  - The C{uri} of the credentials need not equal the Request-URI (RFC 3261
    section 22.4 item 6: a proxy may have retargeted the request); the
    response covers the C{uri} as written.
  - A C{-sess} algorithm is accepted in credentials (RFC 7616 section
    3.4.2) but never offered.
  - Malformed credentials (unparseable, a missing parameter, a bad C{nc})
    are answered 400 with the reason (RFC 2617 section 3.2.2.5 answers a
    bad request so); Basic is not a SIP scheme (RFC 3261 section 22.4) and
    is ignored like any credential for another realm.

Brute force (RFC 6665 section 6.3, RFC 3261 section 26.1: an attacker
who can send requests can guess passwords offline only from a captured
exchange, but online from anywhere):

  - Only I{failed} authentications are counted: credentials for our realm,
    on a nonce of ours, that the checker refused (a wrong response or an
    unknown user, alike, so the count reveals nothing about which users
    exist). A request without credentials, which merely gets its
    challenge, a forged nonce, a replay and a stale nonce cost no checker
    consultation and are not counted. A success never refunds a failure:
    else an attacker with an account of their own could clear their
    address's count between guesses.
  - Two token buckets count them, a L{FailureBudget} per source address
    (the top Via's C{received}, or its sent-by when the transport found
    them equal: RFC 3261 section 18.2.1; in canonical form, and for IPv6
    the /64 network, since one site commonly holds a whole /64 and would
    otherwise have 2**64 budgets: L{sourceOf}) and one per user name. A bucket
    holds C{burst} failures and regains one every C{interval} seconds.
  - While a source's bucket is empty, every credential-bearing request from
    it is answered C{503} with C{Retry-After} (the seconds until it may
    fail once more; RFC 3261 section 21.5.4) without consulting the
    checker: the answer is cheap, says the refusal is temporary, and a
    legitimate client behind the same address (a NAT) knows when to come
    back. A 401 would make it ask its user for the password again; a 403
    would be final.
  - A user name's bucket exists against guessers spread over many
    addresses, but must not let them lock the real user out (RFC 6665
    section 6.3 asks for protection against denial of service; a hard
    per-user lock would hand every attacker that denial). So while a user
    name's bucket is empty, only requests from I{clean} sources are
    checked for it: sources with no remembered failure, none in the last
    C{burst * interval} seconds of the source budget (a minute by
    default). The others get the same C{503}. The real user, from their
    usual address, gets in with the right password during an attack,
    while each attacking address gets one guess a minute at that user
    instead of ten: a guesser with N addresses is held to N guesses a
    minute, not bounded by the user name's rate, which no limit that
    leaves a clean address alone can do. The price: a real user who
    mistyped their password from an address is refused there, while the
    user name is over budget, until a minute after the mistake.
  - Defaults: a source may fail 10 times, then once every 6 seconds (10 a
    minute: a 100,000-word dictionary takes a week per address); a user
    name may fail 20 times, then once every 30 seconds (2 a minute, over
    all unclean addresses together). A phone whose user mistypes a
    password a few times never meets either limit, and 20 failures for one
    user from several addresses is already an attack.
  - The tables are bounded (C{maxTracked} entries each): an entry goes once
    its bucket is surely full again (C{burst * interval} after its last
    failure), and when a table is full the entry whose last failure is
    oldest goes. An attacker who fills a table with fresh addresses or
    user names makes it forget the oldest counts, so the bound trades
    exactness for memory; a full table of 10,000 entries is a few
    megabytes.

Nothing of a password or a digest is logged.
"""

from __future__ import annotations

import hmac
import math
import os
import re
import secrets
import struct
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from hashlib import sha256
from ipaddress import IPv6Network
from typing import Any

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernameDigestHash, IUsernameHashedPassword
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import IRealm, Portal
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Interface, implementer

from sipevents.errors import SIPError, Unauthorized
from sipevents.events import SIPUser
from sipevents.interfaces import IRequestAuthenticator, ISIPIdentity
from sipevents.sip.digest import (
    SUPPORTED_ALGORITHMS,
    canonicalAlgorithm,
    digestHA1,
    parseAuthParams,
    quoteString,
    requestDigest,
)
from sipevents.sip.message import Request
from sipevents.sip.routing import normalizeHost

__all__ = [
    "DigestAuthenticator",
    "FailureBudget",
    "HTDigestChecker",
    "SIPDigestCredentials",
    "SIPUserRealm",
    "portalFromFile",
    "sourceOf",
]

_log = Logger()

_NC_RE = re.compile(r"[0-9a-fA-F]{8}")
_HEX_RE = re.compile(r"[0-9a-fA-F]+")

#: The nonce count recorded for a nonce used without qop: above any real
#: nc (8 hex digits), so the nonce can never be used again.
_SPENT = 1 << 32


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


@implementer(IUsernameDigestHash, IUsernameHashedPassword)
class SIPDigestCredentials:
    """
    The Digest credentials of one SIP request (RFC 2617 section 3.2.2, RFC
    7616 section 3.4, RFC 3261 section 22.4), checkable with the password
    (L{checkPassword}) or with the stored A1 digest (L{checkHash}).

    @ivar username: the username, UTF-8 encoded: C{twisted.cred} checkers
        look users up by L{bytes}.
    @ivar realm: the realm of the credentials.
    @ivar algorithm: the canonical algorithm name (C{"MD5"}, C{"SHA-256"},
        C{"MD5-sess"}, C{"SHA-256-sess"}).
    @ivar nonce: the nonce answered.
    @ivar uri: the C{uri} parameter as written.
    @ivar qop: C{"auth"}, C{"auth-int"} or C{None}.
    @ivar nc: the nonce count as written (C{""} without qop).
    @ivar cnonce: the client nonce (C{""} without qop).
    @ivar response: the request-digest the client sent, lower case.
    @ivar method: the request's method.
    @ivar body: the request's body, for C{qop=auth-int}.
    """

    def __init__(self, params: dict[str, str], method: str, body: bytes = b"") -> None:
        """
        @param params: the parsed parameters of a C{Digest} credentials
            value (L{sipevents.sip.digest.parseAuthParams}).
        @raise ValueError: when they are not complete, well-formed Digest
            credentials for an algorithm and qop we support; the message
            says what is wrong.
        """
        for name in ("username", "realm", "nonce", "uri", "response"):
            if name not in params:
                raise ValueError(f"Authorization without {name}")
        algorithm = canonicalAlgorithm(params.get("algorithm", "MD5"))
        if algorithm is None:
            raise ValueError(f"Unsupported algorithm {params['algorithm']!r}")
        qop = params.get("qop")
        if qop is not None:
            qop = qop.lower()
            if qop not in ("auth", "auth-int"):
                raise ValueError(f"Unsupported qop {qop!r}")
            if not _NC_RE.fullmatch(params.get("nc", "")):
                raise ValueError("Authorization nc is not 8 hex digits")
            if not params.get("cnonce"):
                raise ValueError("Authorization with qop but no cnonce")
        elif algorithm.endswith("-sess"):
            raise ValueError(f"{algorithm} without qop")
        if not _HEX_RE.fullmatch(params["response"]):
            raise ValueError("Authorization response is not hex digits")
        self.username = params["username"].encode("utf-8")
        self.realm = params["realm"]
        self.algorithm = algorithm
        self.nonce = params["nonce"]
        self.uri = params["uri"]
        self.qop = qop
        self.nc = params.get("nc", "") if qop else ""
        self.cnonce = params.get("cnonce", "")
        self.response = params["response"].lower()
        self.method = method
        self.body = body

    @property
    def nonceCount(self) -> int:
        """
        The nonce count as a number; L{_SPENT} without qop, when the nonce
        may be used once only.
        """
        return int(self.nc, 16) if self.qop else _SPENT

    def checkHash(self, digestHash: bytes | str) -> bool:
        """
        Whether the response was computed from C{digestHash}, the hex
        C{H(username:realm:password)} in the hash of L{algorithm}'s family
        (RFC 7616 section 3.4.2).
        """
        expected = requestDigest(
            self.algorithm,
            _text(digestHash).lower(),
            self.nonce,
            self.method,
            self.uri,
            self.qop,
            self.nc,
            self.cnonce,
            self.body,
        )
        return hmac.compare_digest(expected, self.response)

    def checkPassword(self, password: bytes | str) -> bool:
        """
        Whether the response was computed from C{password} (UTF-8 when
        L{bytes}; RFC 7616 section 4).
        """
        return self.checkHash(
            digestHA1(
                self.algorithm,
                self.username.decode("utf-8"),
                self.realm,
                _text(password),
            )
        )


@implementer(IRealm)
class SIPUserRealm:
    """
    The C{twisted.cred} realm of a SIP realm: an avatar id from a checker
    (the username, as L{bytes} or L{str}) becomes a
    L{sipevents.events.SIPUser} of C{realm}, for L{ISIPIdentity}.
    """

    def __init__(self, realm: str) -> None:
        self.realm = realm

    def requestAvatar(
        self, avatarId: bytes | tuple[()], mind: object, *interfaces: type[Interface]
    ) -> tuple[type[Interface], SIPUser, Callable[[], None]]:
        """
        @raise NotImplementedError: for another interface than
            L{ISIPIdentity}, or the anonymous avatar id: every SIP user is
            authenticated.
        """
        if ISIPIdentity not in interfaces or isinstance(avatarId, tuple):
            raise NotImplementedError("SIPUserRealm only provides ISIPIdentity")
        return ISIPIdentity, SIPUser(_text(avatarId), self.realm), lambda: None


@dataclass(frozen=True)
class _FileState:
    mtime: int
    size: int


@implementer(ICredentialsChecker)
class HTDigestChecker:
    """
    Checks L{IUsernameDigestHash} credentials against an Apache C{htdigest}
    file: one C{user:realm:HA1} line per user and realm.

    A 32-hex-digit HA1 is C{MD5(user:realm:password)}, as C{htdigest -c
    FILE REALM USER} writes it. A 64-hex-digit one is the SHA-256 of the
    same text, our extension for RFC 8760; a user may have both lines, and
    credentials computed with SHA-256 can only succeed for a user with a
    SHA-256 line. Blank lines and lines starting with C{#} are skipped;
    other lines that do not fit are logged and skipped.

    The file is read again when its modification time or size changes, so
    users can be added while the server runs.
    """

    credentialInterfaces = (IUsernameDigestHash,)

    def __init__(self, path: str) -> None:
        """
        @raise OSError: when the file cannot be read.
        """
        self.path = path
        self._state: _FileState | None = None
        self._users: dict[tuple[str, str], dict[str, str]] = {}
        self._reload()

    def _reload(self) -> None:
        info = os.stat(self.path)
        state = _FileState(info.st_mtime_ns, info.st_size)
        if state == self._state:
            return
        users: dict[tuple[str, str], dict[str, str]] = {}
        with open(self.path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                user, _, rest = line.partition(":")
                realm, _, ha1 = rest.rpartition(":")
                if not user or not _HEX_RE.fullmatch(ha1) or len(ha1) not in (32, 64):
                    _log.warn(
                        "{path} line {number} is not user:realm:HA1; skipped",
                        path=self.path,
                        number=number,
                    )
                    continue
                algorithm = "MD5" if len(ha1) == 32 else "SHA-256"
                users.setdefault((user, realm), {})[algorithm] = ha1.lower()
        self._users = users
        self._state = state

    def realms(self) -> list[str]:
        """
        The realms of the file's users, sorted.
        """
        self._reload()
        return sorted({realm for _, realm in self._users})

    def algorithms(self, realm: str) -> list[str]:
        """
        The algorithms some user of C{realm} can authenticate with,
        strongest first: what a challenge for the realm should offer.
        """
        self._reload()
        found = {
            algorithm
            for (_, r), hashes in self._users.items()
            if r == realm
            for algorithm in hashes
        }
        return [a for a in ("SHA-256", "MD5") if a in found]

    def requestAvatarId(self, credentials: Any) -> Deferred[bytes | tuple[()]]:
        """
        @return: a L{Deferred} firing with the username (L{bytes}) when the
            credentials match the file's HA1 for their user, realm and
            algorithm family, failing with L{UnauthorizedLogin} otherwise.
        """
        try:
            self._reload()
        except OSError as e:
            _log.error("cannot read {path}: {error}", path=self.path, error=e)
            return fail(UnauthorizedLogin("users file unreadable"))
        username = _text(credentials.username)
        realm = getattr(credentials, "realm", None)
        algorithm = getattr(credentials, "algorithm", "MD5").removesuffix("-sess")
        if realm is not None:
            candidates = [self._users.get((username, realm), {})]
        else:
            candidates = [
                hashes for (user, _), hashes in self._users.items() if user == username
            ]
        for hashes in candidates:
            ha1 = hashes.get(algorithm)
            if ha1 is not None and credentials.checkHash(ha1):
                return succeed(username.encode("utf-8"))
        return fail(UnauthorizedLogin())


def portalFromFile(path: str, realm: str | None) -> tuple[Portal, str]:
    """
    A portal checking the users of an C{htdigest} file, and its realm.

    @param realm: the realm to authenticate in; C{None} for the file's only
        realm.
    @raise ValueError: when C{realm} is C{None} and the file has no realm
        or several.
    @raise OSError: when the file cannot be read.
    """
    checker = HTDigestChecker(path)
    if realm is None:
        realms = checker.realms()
        if len(realms) != 1:
            raise ValueError(
                f"{path} has {len(realms)} realms ({', '.join(realms) or 'none'});"
                " name the one to use"
            )
        realm = realms[0]
    return Portal(SIPUserRealm(realm), [checker]), realm


@dataclass
class _Bucket:
    tokens: float
    at: float


class FailureBudget:
    """
    A token bucket of failed authentications per key (a source address or
    a user name), in a bounded table; see the module docstring.

    A key's bucket holds C{burst} tokens, each failure takes one, and one
    comes back every C{interval} seconds. A key that is not in the table
    has a full bucket.
    """

    def __init__(
        self, clock: IReactorTime, burst: int, interval: float, maxTracked: int
    ) -> None:
        """
        @param burst: how many failures a key may have in a row.
        @param interval: seconds for one failure to be forgiven.
        @param maxTracked: how many keys are tracked at most.
        @raise ValueError: when C{burst}, C{interval} or C{maxTracked} is
            not positive.
        """
        if burst < 1 or interval <= 0 or maxTracked < 1:
            raise ValueError("burst, interval and maxTracked must be positive")
        self.clock = clock
        self.burst = burst
        self.interval = interval
        self.maxTracked = maxTracked
        # Ordered by last failure, oldest first.
        self._buckets: OrderedDict[object, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def tokens(self, key: object) -> float:
        """
        How many failures C{key} may have now.
        """
        bucket = self._buckets.get(key)
        if bucket is None:
            return float(self.burst)
        regained = (self.clock.seconds() - bucket.at) / self.interval
        return min(float(self.burst), bucket.tokens + regained)

    def allows(self, key: object) -> bool:
        """
        Whether C{key} may fail once more now.
        """
        return self.tokens(key) >= 1

    def isClean(self, key: object) -> bool:
        """
        Whether no failure of C{key} is remembered: it never failed, or its
        last failure is C{burst * interval} seconds old, when even an empty
        bucket is full again (or its entry was dropped from a full table).
        """
        bucket = self._buckets.get(key)
        return (
            bucket is None
            or self.clock.seconds() - bucket.at >= self.burst * self.interval
        )

    def retryAfter(self, key: object) -> int:
        """
        Whole seconds until C{key} may fail once more (0 when it may now).
        """
        return max(0, math.ceil((1 - self.tokens(key)) * self.interval))

    def failed(self, key: object) -> None:
        """
        Count a failure of C{key}.
        """
        tokens = self.tokens(key)
        self._prune()
        self._buckets.pop(key, None)
        self._buckets[key] = _Bucket(max(0.0, tokens - 1), self.clock.seconds())

    def _prune(self) -> None:
        """
        Drop the entries whose bucket is surely full again, then the oldest
        ones until there is room for one more.
        """
        fullAfter = self.burst * self.interval
        now = self.clock.seconds()
        while self._buckets:
            key, oldest = next(iter(self._buckets.items()))
            if now - oldest.at < fullAfter:
                break
            del self._buckets[key]
        while len(self._buckets) >= self.maxTracked:
            self._buckets.popitem(last=False)


def sourceOf(request: Request) -> str:
    """
    Where C{request} came from, as its failures are counted: its top Via's
    C{received}, which the transport adds whenever the sent-by is not the
    source address (RFC 3261 section 18.2.1), else the sent-by host, in its
    canonical form (so that spelling one's address otherwise earns no fresh
    budget); an IPv6 address as its /64 network, which one site usually
    holds whole; C{""} without a Via.
    """
    via = request.topVia
    if via is None:
        return ""
    host = normalizeHost(via.received or via.host)
    if ":" not in host:
        return host
    try:
        return str(IPv6Network((host, 64), strict=False))
    except ValueError:
        return host


@dataclass
class _Used:
    issuedAt: float
    nc: int


@implementer(IRequestAuthenticator)
class DigestAuthenticator:
    """
    Digest authentication of requests (RFC 3261 section 22.2) against a
    C{twisted.cred} portal; see the module docstring for its rules.
    """

    def __init__(
        self,
        clock: IReactorTime,
        portal: Portal,
        realm: str,
        algorithms: Sequence[str] = ("SHA-256", "MD5"),
        nonceLifetime: float = 300.0,
        secret: bytes | None = None,
        maxNonces: int = 10000,
        sourceBurst: int = 10,
        sourceInterval: float = 6.0,
        userBurst: int = 20,
        userInterval: float = 30.0,
        maxTracked: int = 10000,
    ) -> None:
        """
        @param portal: logs users in for L{ISIPIdentity}, with
            L{SIPDigestCredentials}.
        @param realm: the realm challenged for (RFC 3261 section 22.1); the
            users' domain.
        @param algorithms: the algorithms offered, one challenge each, in
            this order (the preferred first, RFC 8760 section 2.4).
        @param nonceLifetime: seconds a nonce is accepted for.
        @param secret: the HMAC key of the nonces; a random one by default,
            so that after a restart every earlier nonce fails its HMAC and
            is answered with a fresh, not stale, challenge. Give a fixed
            secret (kept private) to keep nonces valid across restarts.
        @param maxNonces: how many used nonces' counts are kept at most.
        @param sourceBurst: how many failed authentications a source
            address may have in a row before it is answered C{503}.
        @param sourceInterval: seconds for a source to regain one.
        @param userBurst: how many failed authentications a user name may
            have in a row before only clean sources are checked for it.
        @param userInterval: seconds for a user name to regain one.
        @param maxTracked: how many sources, and how many user names, are
            tracked at most.
        @raise ValueError: for an unsupported or empty list of algorithms,
            or a budget that is not positive.
        """
        canonical = [canonicalAlgorithm(a) for a in algorithms]
        if not canonical or None in canonical:
            raise ValueError(
                f"Algorithms must be some of {', '.join(SUPPORTED_ALGORITHMS)}: "
                f"{list(algorithms)}"
            )
        self.clock = clock
        self.portal = portal
        self.realm = realm
        self.algorithms = tuple(a for a in canonical if a is not None)
        # The hash families offered: a -sess variant answers with its base's
        # HA1 (RFC 7616 section 3.4.2).
        self._families = frozenset(a.removesuffix("-sess") for a in self.algorithms)
        self.nonceLifetime = nonceLifetime
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self.maxNonces = maxNonces
        self.sources = FailureBudget(clock, sourceBurst, sourceInterval, maxTracked)
        self.users = FailureBudget(clock, userBurst, userInterval, maxTracked)
        # Keyed by user and nonce: one user's counts never block another's.
        self._used: OrderedDict[tuple[bytes, str], _Used] = OrderedDict()
        # Nonces issued no later than this, and not in _used, are stale: their
        # counts may have been forgotten.
        self._forgottenBefore = float("-inf")

    # Nonces

    def _mac(self, stamp: bytes) -> bytes:
        return hmac.new(self._secret, stamp + self.realm.encode(), sha256).digest()[:16]

    def _newNonce(self) -> str:
        stamp = struct.pack(">Q", int(self.clock.seconds() * 1000))
        stamp += secrets.token_bytes(8)
        return (stamp + self._mac(stamp)).hex()

    def _issuedAt(self, nonce: str) -> float | None:
        """
        When C{nonce} was issued, or C{None} when it is not one of ours.
        """
        if len(nonce) != 64:
            return None
        try:
            raw = bytes.fromhex(nonce)
        except ValueError:
            return None
        stamp, mac = raw[:16], raw[16:]
        if not hmac.compare_digest(mac, self._mac(stamp)):
            return None
        milliseconds: int = struct.unpack(">Q", stamp[:8])[0]
        return milliseconds / 1000

    def _expired(self, issuedAt: float) -> bool:
        return self.clock.seconds() - issuedAt > self.nonceLifetime

    def challenges(self, stale: bool = False) -> list[str]:
        """
        Fresh C{WWW-Authenticate} values, one per algorithm, sharing one
        nonce (RFC 8760 section 2.4, RFC 3261 section 22.4 item 8).
        """
        nonce = self._newNonce()
        return [
            f"Digest realm={quoteString(self.realm)}, nonce={quoteString(nonce)},"
            f' algorithm={algorithm}, qop="auth"' + (", stale=true" if stale else "")
            for algorithm in self.algorithms
        ]

    def _unauthorized(self, stale: bool = False) -> Unauthorized:
        return Unauthorized(self.challenges(stale))

    # Nonce counts

    def usedNonces(self) -> int:
        """
        How many nonces' counts are kept now (at most C{maxNonces}).
        """
        return len(self._used)

    def _prune(self) -> None:
        """
        Drop the counts of expired nonces: those nonces are refused as
        stale anyway. The least recently used ones are looked at on every
        use; all of them when the table is full, and if it still is, the
        least recently used entry is forgotten and every nonce issued no
        later than it becomes stale.
        """
        now = self.clock.seconds()
        while self._used:
            key, oldest = next(iter(self._used.items()))
            if now - oldest.issuedAt <= self.nonceLifetime:
                break
            del self._used[key]
        if len(self._used) < self.maxNonces:
            return
        for key in [
            k for k, u in self._used.items() if now - u.issuedAt > self.nonceLifetime
        ]:
            del self._used[key]
        while len(self._used) >= self.maxNonces:
            _, oldest = self._used.popitem(last=False)
            self._forgottenBefore = max(self._forgottenBefore, oldest.issuedAt)

    def _isReplay(self, credentials: SIPDigestCredentials) -> bool:
        used = self._used.get((credentials.username, credentials.nonce))
        return used is not None and credentials.nonceCount <= used.nc

    def _record(self, credentials: SIPDigestCredentials, issuedAt: float) -> None:
        key = (credentials.username, credentials.nonce)
        used = self._used.get(key)
        if used is None:
            self._prune()
            self._used[key] = _Used(issuedAt, credentials.nonceCount)
        else:
            used.nc = credentials.nonceCount
            self._used.move_to_end(key)

    def _isForgotten(self, credentials: SIPDigestCredentials, issuedAt: float) -> bool:
        return (
            issuedAt <= self._forgottenBefore
            and (credentials.username, credentials.nonce) not in self._used
        )

    # Requests

    def _credentialsIn(self, request: Request) -> SIPDigestCredentials | None:
        """
        The Digest credentials for our realm in C{request}, or C{None}.

        @raise SIPError: 400, when an C{Authorization} is malformed.
        """
        for value in request.headers.getAll("Authorization"):
            try:
                scheme, params = parseAuthParams(value)
            except ValueError:
                # The parser's message quotes the whole value: not echoed.
                raise SIPError(
                    "Malformed Authorization: not a list of auth-params", 400
                ) from None
            if scheme.lower() != "digest" or params.get("realm") != self.realm:
                continue
            try:
                return SIPDigestCredentials(params, request.method, request.body)
            except ValueError as e:
                # A reason phrase echoes a peer's value, so keep it short.
                raise SIPError(f"Malformed Authorization: {e}"[:120], 400) from None
        return None

    def authenticate(self, request: Request) -> Deferred[ISIPIdentity]:
        """
        Authenticate C{request}'s sender (RFC 3261 section 22.2).

        @return: a L{Deferred} firing with the L{SIPUser}, or failing with
            L{Unauthorized} (fresh challenges; C{stale=true} only for an
            expired nonce with an otherwise correct response) or a 400
            L{SIPError} for malformed credentials.
        """
        try:
            credentials = self._credentialsIn(request)
        except SIPError as e:
            return fail(e)
        if credentials is None:
            return fail(self._unauthorized())
        issuedAt = self._issuedAt(credentials.nonce)
        if issuedAt is None:
            _log.info(
                "{method} from {user!r}: not our nonce",
                method=request.method,
                user=credentials.username.decode(),
            )
            return fail(self._unauthorized())
        if credentials.algorithm.removesuffix("-sess") not in self._families:
            return fail(self._unauthorized())
        if self._isReplay(credentials):
            return self._replayed(request, credentials)
        source = sourceOf(request)
        throttled = self._throttled(source, credentials.username)
        if throttled is not None:
            _log.info(
                "{method} from {user!r} at {source}: too many failed"
                " authentications; not checked",
                method=request.method,
                user=credentials.username.decode(),
                source=source,
            )
            return fail(throttled)
        d = self.portal.login(credentials, None, ISIPIdentity)
        return d.addCallbacks(
            lambda result: self._loggedIn(request, credentials, issuedAt, result[1]),
            lambda failure: self._refused(request, credentials, source, failure),
        )

    def _throttled(self, source: str, username: bytes) -> SIPError | None:
        """
        The C{503} for credentials of C{username} from C{source} when their
        budgets of failures forbid checking them, else C{None}.
        """
        if not self.sources.allows(source):
            wait = self.sources.retryAfter(source)
        elif not self.users.allows(username) and not self.sources.isClean(source):
            wait = self.users.retryAfter(username)
        else:
            return None
        return SIPError(
            "Too Many Failed Authentications",
            503,
            headers=[("Retry-After", str(max(1, wait)))],
        )

    def _replayed(
        self, request: Request, credentials: SIPDigestCredentials
    ) -> Deferred[ISIPIdentity]:
        _log.info(
            "{method} from {user!r}: nonce count {nc} replayed",
            method=request.method,
            user=credentials.username.decode(),
            nc=credentials.nc or "(no qop)",
        )
        return fail(self._unauthorized())

    def _loggedIn(
        self,
        request: Request,
        credentials: SIPDigestCredentials,
        issuedAt: float,
        user: ISIPIdentity,
    ) -> ISIPIdentity | Deferred[ISIPIdentity]:
        if self._expired(issuedAt) or self._isForgotten(credentials, issuedAt):
            return fail(self._unauthorized(stale=True))
        # Checked again: another request with this nonce may have been
        # accepted while the checker was busy.
        if self._isReplay(credentials):
            return self._replayed(request, credentials)
        self._record(credentials, issuedAt)
        return user

    def _refused(
        self,
        request: Request,
        credentials: SIPDigestCredentials,
        source: str,
        failure: Failure,
    ) -> Failure:
        if isinstance(failure.value, UnauthorizedLogin):
            self.sources.failed(source)
            self.users.failed(credentials.username)
            _log.info(
                "{method} from {user!r}: credentials refused",
                method=request.method,
                user=credentials.username.decode(),
            )
            raise self._unauthorized()
        return failure
