"""Who may use the HTTP server: API keys, signed tokens, allowed Host names and Origins, limits.

Everything here comes from the environment (or a key file it names), never from the agent YAML, so
an agent file can be shared without sharing credentials. See docs/security.md for every knob.

The default (no keys, bound to loopback) stays friction-free for a developer: no credential is asked
for, but the Host and Origin checks still stop a web page from reaching the server by DNS rebinding.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from voxline.server.tokens import MIN_SECRET_CHARS, TokenClaims, TokenError, looks_like_token, verify_token

MIN_KEY_CHARS = 16
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
DEFAULT_WS_MAX_MESSAGE_BYTES = 64 * 1024
DEFAULT_WS_CONNECTS_PER_MINUTE = 30
DEFAULT_MAX_CALLS = 50

ENV_HELP = (
    "set VOXLINE_API_KEYS=<a long random key> (or VOXLINE_API_KEYS_FILE=/path/to/keys, one key a line; "
    "`python -c 'import secrets; print(secrets.token_urlsafe(32))'` makes one), "
    "and VOXLINE_TOKEN_SECRET to mint browser tokens; see docs/security.md. "
    "`--insecure` serves without authentication anyway (never on a network you do not control)"
)


class SecurityConfigError(ValueError):
    """The environment's security settings are unusable (a short key, a missing key file...)."""


def is_loopback_host(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`: an address only this machine can reach."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_name(host_header: str) -> str:
    """The name part of a Host header (`[::1]:8000` → `::1`, `Example.COM:80` → `example.com`)."""
    text = host_header.strip().lower()
    if text.startswith("["):
        return text[1 : text.find("]")] if "]" in text else text
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


@dataclass(frozen=True)
class Credential:
    """Who a request is: an API key holder (every scope) or a token's bearer (its scopes)."""

    kind: str  # "key" or "token"
    scopes: frozenset[str]
    subject: str | None = None


@dataclass
class SecuritySettings:
    """The HTTP server's access rules. Build with `from_env` (the CLI) or `local()` (tests, embedding)."""

    bind_host: str = "127.0.0.1"
    api_key_digests: tuple[bytes, ...] = ()
    token_secret: bytes | None = None
    token_secret_from_env: bool = False
    allowed_hosts: frozenset[str] = frozenset()
    allowed_origins: frozenset[str] = frozenset()
    protect_health: bool = False
    protect_metrics: bool = True
    insecure: bool = False
    ws_max_message_bytes: int = DEFAULT_WS_MAX_MESSAGE_BYTES
    ws_connects_per_minute: int = DEFAULT_WS_CONNECTS_PER_MINUTE
    max_calls: int = DEFAULT_MAX_CALLS
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def local(cls, **overrides: object) -> SecuritySettings:
        """Loopback, no keys: what `create_app` uses when given nothing."""
        return cls(**overrides)  # type: ignore[arg-type]

    @classmethod
    def from_env(
        cls,
        bind_host: str,
        *,
        env: Mapping[str, str] | None = None,
        api_keys_file: Path | None = None,
        insecure: bool = False,
        max_calls: int | None = None,
    ) -> SecuritySettings:
        env = os.environ if env is None else env
        keys = [k.strip() for k in env.get("VOXLINE_API_KEYS", "").split(",") if k.strip()]
        key_file = api_keys_file or (
            Path(env["VOXLINE_API_KEYS_FILE"]) if env.get("VOXLINE_API_KEYS_FILE") else None
        )
        if key_file is not None:
            keys += _read_key_file(key_file)
        short = [k for k in keys if len(k) < MIN_KEY_CHARS]
        if short:
            raise SecurityConfigError(
                f"{len(short)} API key(s) shorter than {MIN_KEY_CHARS} characters; use long random keys"
            )
        secret_text = env.get("VOXLINE_TOKEN_SECRET", "")
        if secret_text and len(secret_text) < MIN_SECRET_CHARS:
            raise SecurityConfigError(f"VOXLINE_TOKEN_SECRET must be at least {MIN_SECRET_CHARS} characters")
        secret = secret_text.encode() if secret_text else None
        settings = cls(
            bind_host=bind_host,
            api_key_digests=tuple(_digest(k) for k in dict.fromkeys(keys)),
            # With keys but no secret, tokens minted by POST /tokens still work, until a restart.
            token_secret=secret or (secrets.token_bytes(32) if keys else None),
            token_secret_from_env=secret is not None,
            allowed_hosts=_csv_set(env.get("VOXLINE_ALLOWED_HOSTS", "")),
            allowed_origins=frozenset(
                o.rstrip("/") for o in _csv_set(env.get("VOXLINE_ALLOWED_ORIGINS", ""))
            ),
            protect_health=_flag(env.get("VOXLINE_PROTECT_HEALTH"), default=False),
            protect_metrics=_flag(env.get("VOXLINE_PROTECT_METRICS"), default=True),
            insecure=insecure,
            ws_max_message_bytes=_int(
                env, "VOXLINE_WS_MAX_MESSAGE_BYTES", DEFAULT_WS_MAX_MESSAGE_BYTES, 1024
            ),
            ws_connects_per_minute=_int(
                env, "VOXLINE_WS_CONNECTS_PER_MINUTE", DEFAULT_WS_CONNECTS_PER_MINUTE, 1
            ),
            max_calls=max_calls
            if max_calls is not None
            else _int(env, "VOXLINE_MAX_CALLS", DEFAULT_MAX_CALLS, 1),
        )
        if insecure:
            settings.warnings.append(
                "INSECURE: started with --insecure; anyone who reaches this port can read every call "
                "record and start calls"
            )
        if not settings.loopback and not settings.allowed_hosts:
            settings.warnings.append(
                "VOXLINE_ALLOWED_HOSTS is not set: the Host header is not checked (set it to the names "
                "clients use, e.g. voice.example.com)"
            )
        return settings

    @property
    def loopback(self) -> bool:
        return is_loopback_host(self.bind_host)

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_key_digests) or self.token_secret_from_env

    @property
    def start_refusal(self) -> str | None:
        """Why the server must not start (non-loopback, no auth, not --insecure), else None."""
        if self.loopback or self.auth_enabled or self.insecure:
            return None
        return (
            f"refusing to serve on {self.bind_host} without authentication: anyone who reaches it could "
            f"read every call transcript and start calls. To allow clients in, {ENV_HELP}"
        )

    def host_allowed(self, host_header: str | None) -> bool:
        """DNS-rebinding guard: the Host must be a name this server answers to."""
        if not host_header:
            return False
        name = host_name(host_header)
        if name in self.allowed_hosts or any(
            a.startswith("*.") and name.endswith(a[1:]) for a in self.allowed_hosts
        ):
            return True
        if self.loopback:
            return name in LOOPBACK_NAMES or name.endswith(".localhost") or is_loopback_host(name)
        if self.allowed_hosts:
            return name == self.bind_host.lower() and self.bind_host not in {"0.0.0.0", "::"}
        return True  # bound to a network address with no names configured: see the start warning

    def origin_allowed(self, origin: str | None, host_header: str | None) -> bool:
        """A browser's Origin must be this server itself or one of VOXLINE_ALLOWED_ORIGINS."""
        if origin is None:
            return True  # not a browser (curl, a backend): credentials decide
        origin = origin.rstrip("/")
        if origin in self.allowed_origins:
            return True
        scheme, sep, netloc = origin.partition("://")
        if not sep or scheme not in {"http", "https"} or not host_header:
            return False
        return netloc.lower() == host_header.strip().lower() and self.host_allowed(netloc)

    def authenticate(self, presented: str | None) -> Credential | TokenError | None:
        """The credential `presented` proves, TokenError if it is a bad token, None if nothing valid."""
        if not presented:
            return None
        if looks_like_token(presented):
            if self.token_secret is None:
                return TokenError("tokens are not enabled on this server")
            try:
                claims: TokenClaims = verify_token(self.token_secret, presented)
            except TokenError as exc:
                return exc
            return Credential("token", claims.scopes, claims.subject)
        candidate = _digest(presented)
        matched = False
        for digest in self.api_key_digests:  # no early exit: time does not tell which key was close
            matched |= hmac.compare_digest(candidate, digest)
        return Credential("key", frozenset({"call", "read", "mint"})) if matched else None

    def describe(self) -> dict[str, object]:
        """For /health: how the server is protected (never the keys themselves)."""
        return {
            "auth": "insecure"
            if self.insecure and not self.auth_enabled
            else ("required" if self.auth_enabled else "loopback-only"),
            "tokens": self.token_secret is not None,
            "max_calls": self.max_calls,
        }


def _read_key_file(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SecurityConfigError(f"cannot read the API key file {path}: {exc.strerror or exc}") from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _csv_set(text: str) -> frozenset[str]:
    return frozenset(part.strip().lower() for part in text.split(",") if part.strip())


def _flag(value: str | None, *, default: bool) -> bool:
    if value is None or not value.strip():
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise SecurityConfigError(f"{name} must be a whole number, got {text!r}") from None
    if value < minimum:
        raise SecurityConfigError(f"{name} must be at least {minimum}, got {value}")
    return value
