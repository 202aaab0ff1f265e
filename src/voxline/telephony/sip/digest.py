"""HTTP digest authentication as SIP uses it (RFC 2617, RFC 7616; RFC 3261 §22.4).

We are the client: a registrar or upstream proxy challenges us with 401/407, we answer with an
Authorization / Proxy-Authorization value. Only qop=auth (or no qop, RFC 2069 style) is offered:
auth-int would need the body hashed, and no SIP peer we target insists on it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

_TOKEN_RE = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")
_HASHES: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda data: hashlib.md5(data).hexdigest(),
    "SHA-256": lambda data: hashlib.sha256(data).hexdigest(),
}
if "sha512_256" in hashlib.algorithms_available:
    _HASHES["SHA-512-256"] = lambda data: hashlib.new("sha512_256", data).hexdigest()
MAX_CHALLENGE_CHARS = 8192


class DigestError(ValueError):
    """A challenge we cannot read or answer."""


@dataclass
class DigestChallenge:
    realm: str
    nonce: str
    opaque: str | None = None
    algorithm: str = "MD5"  # upper-case, e.g. MD5, MD5-SESS, SHA-256
    qop: list[str] = field(default_factory=list)  # lower-case options the server offers
    stale: bool = False


def _read_quoted(text: str, i: int) -> tuple[str, int]:
    """The unescaped content of the quoted string starting at text[i] == '"', and the index after it."""
    out: list[str] = []
    i += 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        elif ch == '"':
            return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1
    raise DigestError("unterminated quoted string in challenge")


def parse_auth_params(text: str) -> dict[str, str]:
    """`name=value, name="quoted, value"` into a dict with lower-case names; one linear scan."""
    params: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t,":
            i += 1
        if i >= n:
            break
        eq = text.find("=", i)
        if eq < 0:
            raise DigestError(f"auth-param without '=' near {text[i : i + 40]!r}")
        name = text[i:eq].strip(" \t").lower()
        if not _TOKEN_RE.fullmatch(name):
            raise DigestError(f"bad auth-param name {name[:40]!r}")
        i = eq + 1
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == '"':
            value, i = _read_quoted(text, i)
        else:
            end = i
            while end < n and text[end] not in ", \t":
                end += 1
            value, i = text[i:end], end
        params[name] = value
    return params


def parse_challenge(header_value: str) -> DigestChallenge:
    """A WWW-Authenticate / Proxy-Authenticate value. Raises DigestError (a ValueError)."""
    if len(header_value) > MAX_CHALLENGE_CHARS:
        raise DigestError("challenge too long")
    scheme, _, rest = header_value.strip(" \t").partition(" ")
    if scheme.lower() != "digest":
        raise DigestError(f"not a Digest challenge: {scheme[:20]!r}")
    params = parse_auth_params(rest)
    if "realm" not in params or not params.get("nonce"):
        raise DigestError("challenge without realm or nonce")
    return DigestChallenge(
        realm=params["realm"],
        nonce=params["nonce"],
        opaque=params.get("opaque"),
        algorithm=params.get("algorithm", "MD5").upper(),
        qop=[q.strip().lower() for q in params.get("qop", "").split(",") if q.strip()],
        stale=params.get("stale", "").lower() == "true",
    )


def _quoted(value: str) -> str:
    if any(ch in value for ch in "\r\n\x00"):
        raise DigestError("credential value contains CR, LF or NUL")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def authorization(
    challenge: DigestChallenge,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    nc: int = 1,
    cnonce: str | None = None,
) -> str:
    """The Authorization (or Proxy-Authorization) header value answering `challenge`."""
    algorithm = challenge.algorithm.upper()
    base, sess = (algorithm[:-5], True) if algorithm.endswith("-SESS") else (algorithm, False)
    if base not in _HASHES:
        raise DigestError(f"unsupported digest algorithm {challenge.algorithm!r}")
    if challenge.qop and "auth" not in challenge.qop:
        raise DigestError(f"unsupported qop {challenge.qop} (only auth)")
    if not _TOKEN_RE.fullmatch(method):
        raise DigestError(f"bad method {method!r}")
    if not 0 < nc <= 0xFFFFFFFF:
        raise DigestError(f"nonce count {nc} out of range")
    digest = _HASHES[base]

    def h(*parts: str) -> str:
        return digest(":".join(parts).encode("utf-8"))

    use_qop = "auth" in challenge.qop
    if cnonce is None and (use_qop or sess):
        cnonce = secrets.token_hex(8)
    ha1 = h(username, challenge.realm, password)
    if sess:
        ha1 = h(ha1, challenge.nonce, cnonce or "")
    ha2 = h(method, uri)
    nc_text = f"{nc:08x}"
    if use_qop:
        response = h(ha1, challenge.nonce, nc_text, cnonce or "", "auth", ha2)
    else:
        response = h(ha1, challenge.nonce, ha2)
    fields = [
        f"username={_quoted(username)}",
        f"realm={_quoted(challenge.realm)}",
        f"nonce={_quoted(challenge.nonce)}",
        f"uri={_quoted(uri)}",
        f"response={_quoted(response)}",
        f"algorithm={base}-sess" if sess else f"algorithm={base}",
    ]
    if cnonce is not None:
        fields.append(f"cnonce={_quoted(cnonce)}")
    if challenge.opaque is not None:
        fields.append(f"opaque={_quoted(challenge.opaque)}")
    if use_qop:
        fields += ["qop=auth", f"nc={nc_text}"]
    return "Digest " + ", ".join(fields)


__all__ = ["DigestChallenge", "DigestError", "authorization", "parse_auth_params", "parse_challenge"]
