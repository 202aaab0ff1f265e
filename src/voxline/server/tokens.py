"""Short-lived signed access tokens a backend mints for a browser (HMAC-SHA256, LiveKit-style).

A token is ``vxt1.<payload>.<signature>``, both parts base64url without padding; the payload is JSON
``{"iat": ..., "exp": ..., "scope": [...], "sub": ...}``. The server checks the signature with
``VOXLINE_TOKEN_SECRET`` (constant-time), the expiry, and that the token never lived longer than
MAX_TTL_S, so a leaked secret-holder cannot mint tokens that outlive a rotation by much.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

PREFIX = "vxt1"
SCOPES = frozenset({"call", "read"})
DEFAULT_TTL_S = 300
MAX_TTL_S = 3600
MIN_SECRET_CHARS = 32
MAX_TOKEN_CHARS = 2048


class TokenError(ValueError):
    """The token is malformed, forged, expired or does not grant what was asked."""


@dataclass(frozen=True)
class TokenClaims:
    issued_at: int
    expires_at: int
    scopes: frozenset[str]
    subject: str | None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, signed_part: str) -> str:
    return _b64(hmac.new(secret, signed_part.encode("ascii"), hashlib.sha256).digest())


def mint_token(
    secret: bytes,
    *,
    ttl_s: int = DEFAULT_TTL_S,
    scopes: frozenset[str] = frozenset({"call"}),
    subject: str | None = None,
    now: float | None = None,
) -> str:
    """A token granting `scopes` for `ttl_s` seconds (1..MAX_TTL_S)."""
    if not 1 <= ttl_s <= MAX_TTL_S:
        raise ValueError(f"ttl must be 1 to {MAX_TTL_S} seconds, got {ttl_s}")
    unknown = set(scopes) - SCOPES
    if unknown or not scopes:
        raise ValueError(f"scopes must be some of {sorted(SCOPES)}, got {sorted(scopes)}")
    issued = int(time.time() if now is None else now)
    payload = {"iat": issued, "exp": issued + ttl_s, "scope": sorted(scopes), "sub": subject}
    body = f"{PREFIX}.{_b64(json.dumps(payload, separators=(',', ':')).encode())}"
    return f"{body}.{_sign(secret, body)}"


def looks_like_token(text: str) -> bool:
    return text.startswith(PREFIX + ".")


def verify_token(secret: bytes, token: str, *, now: float | None = None) -> TokenClaims:
    """The token's claims, or TokenError saying why it is refused."""
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenError("token too long")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise TokenError("not a voxline token")
    body = f"{parts[0]}.{parts[1]}"
    try:
        expected = _sign(secret, body)
    except UnicodeEncodeError:
        raise TokenError("not a voxline token") from None
    if not hmac.compare_digest(expected.encode(), parts[2].encode("ascii", "replace")):
        raise TokenError("bad token signature")
    try:
        payload = json.loads(_unb64(parts[1]))
        issued, expires = int(payload["iat"]), int(payload["exp"])
        scopes = frozenset(str(s) for s in payload["scope"])
        subject = payload.get("sub")
    except (ValueError, KeyError, TypeError):
        raise TokenError("malformed token payload") from None
    current = time.time() if now is None else now
    if expires <= current:
        raise TokenError("token expired")
    if expires - issued > MAX_TTL_S or issued > current + 60:
        raise TokenError("token lifetime out of bounds")
    return TokenClaims(issued, expires, scopes, subject if isinstance(subject, str) else None)
