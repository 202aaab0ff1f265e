"""Digest authentication of incoming INVITEs (RFC 3261 §22.4, RFC 7616): we are the server.

Nonces are stateless: a timestamp and an HMAC of it under a key made at start, so a flood of
unanswered challenges costs no memory. A response is accepted once per (nonce, nc, cnonce): an
eavesdropper replaying an Authorization header within the nonce's lifetime is challenged again.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

from voxline.agent.config import SipInboundAuthConfig
from voxline.telephony.sip.digest import parse_auth_params
from voxline.telephony.sip.message import SipRequest

log = logging.getLogger(__name__)

NONCE_LIFETIME_S = 300.0
MAX_REMEMBERED = 4096
MAX_HEADER_CHARS = 4096
_HASHES: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda data: hashlib.md5(data).hexdigest(),
    "SHA-256": lambda data: hashlib.sha256(data).hexdigest(),
}


class InviteAuthenticator:
    """`check(request)`: None when the INVITE carries valid credentials, else the challenge to
    send (the WWW-Authenticate value of a 401)."""

    def __init__(self, config: SipInboundAuthConfig, *, clock: Callable[[], float] = time.time) -> None:
        if not config.password:
            raise ValueError("telephony.sip.auth.password is empty: set it from the environment")
        self.config = config
        self._key = secrets.token_bytes(32)
        self._clock = clock
        self._used: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self.failures = 0

    def challenge(self, *, stale: bool = False) -> str:
        stamp = f"{int(self._clock()):x}"
        nonce = f"{stamp}.{self._sign(stamp)}"
        fields = [f'realm="{self.config.realm}"', f'nonce="{nonce}"', 'qop="auth"', "algorithm=MD5"]
        if stale:
            fields.append("stale=true")
        return "Digest " + ", ".join(fields)

    def check(self, request: SipRequest) -> str | None:
        header = request.headers.get("Authorization")
        if header is None:
            return self.challenge()
        verdict = self._verify(header, request)
        if verdict == "ok":
            return None
        self.failures += 1
        log.warning("INVITE digest authentication failed: %s", verdict)
        return self.challenge(stale=verdict == "stale nonce")

    def _verify(self, header: str, request: SipRequest) -> str:
        if len(header) > MAX_HEADER_CHARS:
            return "Authorization header too long"
        scheme, _, rest = header.strip(" \t").partition(" ")
        if scheme.lower() != "digest":
            return "not a Digest credential"
        try:
            params = parse_auth_params(rest)
        except ValueError as exc:
            return f"unreadable credential: {exc}"
        algorithm = params.get("algorithm", "MD5").upper()
        digest = _HASHES.get(algorithm)
        if digest is None:
            return f"unsupported algorithm {algorithm[:20]!r}"
        nonce = params.get("nonce", "")
        if params.get("username") != self.config.username or params.get("realm") != self.config.realm:
            return "unknown username or realm"
        uri = params.get("uri", "")
        if not uri or len(uri) > 1024:
            return "credential without a digest-uri"
        freshness = self._nonce_state(nonce)
        if freshness != "ok":
            return freshness
        qop = params.get("qop")
        nc, cnonce = params.get("nc", ""), params.get("cnonce", "")
        if qop is not None and (qop.lower() != "auth" or not nc or not cnonce):
            return "qop other than auth, or no nc/cnonce"

        def h(*parts: str) -> str:
            return digest(":".join(parts).encode("utf-8"))

        ha1 = h(self.config.username, self.config.realm, self.config.password)
        # The digest covers the uri the client wrote: peers differ (sipp writes `sip:host:port`, not
        # the Request-URI), and PJSIP and Kamailio verify it as written too. Replays are stopped by
        # accepting each (nonce, nc, cnonce) once.
        ha2 = h(request.method, uri)
        expected = h(ha1, nonce, nc, cnonce, "auth", ha2) if qop is not None else h(ha1, nonce, ha2)
        if not hmac.compare_digest(expected.encode(), params.get("response", "").lower().encode()):
            return "wrong password"
        use = (nonce, nc, cnonce)
        if use in self._used:
            return "replayed credential"
        self._used[use] = None
        if len(self._used) > MAX_REMEMBERED:
            self._used.popitem(last=False)
        return "ok"

    def _nonce_state(self, nonce: str) -> str:
        stamp, dot, signature = nonce.partition(".")
        if not dot or not hmac.compare_digest(signature.encode(), self._sign(stamp).encode()):
            return "nonce not ours"
        try:
            issued = int(stamp, 16)
        except ValueError:
            return "nonce not ours"
        if not 0 <= self._clock() - issued <= NONCE_LIFETIME_S:
            return "stale nonce"
        return "ok"

    def _sign(self, stamp: str) -> str:
        return hmac.new(self._key, stamp.encode(), hashlib.sha256).hexdigest()[:32]
