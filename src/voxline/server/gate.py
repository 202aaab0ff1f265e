"""The ASGI middleware in front of every route: Host, Origin, rate limit, then credentials.

It answers before any route runs, so a refused WebSocket is never accepted (with the denial
extension the client even sees the reason in an HTTP 401/403/429 body). Routes stay unaware of auth.

Which credential a path needs when auth is on (default deny: a path not listed is "read"):
  /, /static/*           open (the page holds no data)
  /health                open unless VOXLINE_PROTECT_HEALTH=1
  /metrics               "read" unless VOXLINE_PROTECT_METRICS=0
  /ws/call               "call" (an API key, or a token with the call scope, as ?token=)
  POST /tokens           an API key (a token cannot mint tokens)
  POST /calls/outbound   an API key (a token never dials out)
  everything else        "read" (/calls, /calls/{id}, /docs, /openapi.json)
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, OrderedDict
from typing import Any

from starlette.datastructures import Headers, QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from voxline.server.ratelimit import SourceRateLimiter
from voxline.server.security import SecuritySettings
from voxline.server.tokens import TokenError

log = logging.getLogger(__name__)

CALL_PATH = "/ws/call"
OPEN_PATHS = frozenset({"/", "/favicon.ico"})
LOG_EVERY_S = 10.0
"""A flood is logged once per source and status every this many seconds, with a count: the log must
not become the flood's amplifier (disk, log shipping)."""


class Refusal(Exception):
    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or {}


class SecurityGate:
    """Pure ASGI middleware; `scope["state"]["credential"]` tells routes who is calling."""

    def __init__(
        self,
        app: ASGIApp,
        settings: SecuritySettings,
        limiter: SourceRateLimiter,
        refused: Counter[int] | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.limiter = limiter
        self.refused: Counter[int] = Counter() if refused is None else refused
        self._log_state: OrderedDict[tuple[str, int], tuple[float, int]] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            self._check(scope)
        except Refusal as refusal:
            self.refused[refusal.status] += 1
            self._log(scope, refusal)
            await _refuse(scope, send, refusal)
            return
        await self.app(scope, receive, send)

    def _log(self, scope: Scope, refusal: Refusal) -> None:
        source = str((scope.get("client") or ("?", 0))[0])
        key = (source, refusal.status)
        now = time.monotonic()
        last, suppressed = self._log_state.pop(key, (-LOG_EVERY_S, 0))
        if now - last < LOG_EVERY_S:
            self._log_state[key] = (last, suppressed + 1)
        else:
            more = f" (and {suppressed} more like it)" if suppressed else ""
            log.warning(
                "refused %s %s from %s: %s%s", scope["type"], scope["path"], source, refusal.reason, more
            )
            self._log_state[key] = (now, 0)
        if len(self._log_state) > 1024:
            self._log_state.popitem(last=False)

    def _check(self, scope: Scope) -> None:
        settings = self.settings
        headers = Headers(scope=scope)
        host = headers.get("host")
        if not settings.host_allowed(host):
            raise Refusal(403, f"Host {host!r} is not a name this server answers to (VOXLINE_ALLOWED_HOSTS)")
        if not settings.origin_allowed(headers.get("origin"), host):
            raise Refusal(
                403, f"Origin {headers.get('origin')!r} may not use this server (VOXLINE_ALLOWED_ORIGINS)"
            )
        path: str = scope["path"]
        if scope["type"] == "websocket" and path == CALL_PATH:
            source = (scope.get("client") or ("unknown", 0))[0]
            if not self.limiter.allow(source):
                retry = self.limiter.retry_after_s(source)
                raise Refusal(
                    429, f"too many calls from {source}; retry in {retry} s", {"Retry-After": str(retry)}
                )
        needed = self._scope_needed(scope)
        if needed is None or not settings.auth_enabled:
            return
        credential = settings.authenticate(_presented(scope, headers))
        if isinstance(credential, TokenError):
            raise Refusal(
                401, f"token refused: {credential}", {"WWW-Authenticate": 'Bearer error="invalid_token"'}
            )
        if credential is None:
            raise Refusal(401, "authentication required: send an API key or token (docs/security.md)",
                          {"WWW-Authenticate": "Bearer"})  # fmt: skip
        if needed not in credential.scopes:
            raise Refusal(403, f"this credential does not allow {needed!r}")
        scope.setdefault("state", {})["credential"] = credential

    def _scope_needed(self, scope: Scope) -> str | None:
        path: str = scope["path"]
        if path in OPEN_PATHS or path.startswith("/static/"):
            return None
        if path == "/health":
            return "read" if self.settings.protect_health else None
        if path == "/metrics":
            return "read" if self.settings.protect_metrics else None
        if path == CALL_PATH:
            return "call"
        if path in ("/tokens", "/calls/outbound"):
            return "mint"
        return "read"


def _presented(scope: Scope, headers: Headers) -> str | None:
    """The credential: `Authorization: Bearer X`, `X-API-Key: X`, or a token as `?token=` (the
    browser's WebSocket cannot set headers; an API key is never taken from a URL, where it leaks)."""
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    if headers.get("x-api-key"):
        return headers["x-api-key"].strip()
    token = QueryParams(scope.get("query_string", b"").decode("latin-1")).get("token")
    if token and token.startswith("vxt1."):
        return token
    return None


async def _refuse(scope: Scope, send: Send, refusal: Refusal) -> None:
    body = json.dumps({"detail": refusal.reason}).encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in refusal.headers.items()),
    ]
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    extensions: dict[str, Any] = scope.get("extensions") or {}
    if "websocket.http.response" in extensions:
        await send({"type": "websocket.http.response.start", "status": refusal.status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:  # closing before accepting: the server answers the handshake with 403
        await send({"type": "websocket.close", "code": 1008, "reason": refusal.reason[:120]})
