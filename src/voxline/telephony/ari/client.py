"""A small async client for the Asterisk REST Interface: the handful of calls a Stasis app needs.

Only the resources voxline drives are wrapped (channels, external media, bridges, redirect and
continue). Every failure comes out as an `AriError` carrying the HTTP status and Asterisk's own
`message`, so the controller can end one call cleanly instead of guessing what went wrong.
"""

from __future__ import annotations

import base64
import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 5.0


class AriError(Exception):
    """An ARI request failed. `status` is the HTTP status, or None when Asterisk was not reached."""

    def __init__(self, method: str, path: str, status: int | None, message: str) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.message = message
        where = f"HTTP {status}" if status is not None else "no response"
        super().__init__(f"ARI {method} {path}: {where}: {message}")


class AriAuthError(AriError):
    """Asterisk refused our credentials (401/403): check ari.conf and telephony.ari in the agent file."""


def basic_auth_header(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def events_url(base_url: str, app: str) -> str:
    """The events WebSocket address for `app` (http→ws, https→wss), subscribing to our app only."""
    parts = urlsplit(base_url.rstrip("/"))
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    query = httpx.QueryParams({"app": app, "subscribeAll": "false"})
    return urlunsplit((scheme, parts.netloc, parts.path + "/events", str(query), ""))


class AriClient:
    """REST calls against one Asterisk. Paths are relative to the ARI base URL (…/ari)."""

    def __init__(
        self, base_url: str, username: str, password: str, *, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth_header = basic_auth_header(username, password)
        # trust_env off: ARI is a local control link, a proxy from the environment would only break it
        self._http = httpx.AsyncClient(
            base_url=self.base_url + "/",
            headers={"Authorization": self.auth_header},
            timeout=timeout_s,
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(
        self, method: str, path: str, params: dict[str, str] | None = None, body: Any = None
    ) -> Any:
        """Send one request; the decoded JSON body, or None for 204. Raises AriError otherwise."""
        try:
            response = await self._http.request(method, path.lstrip("/"), params=params, json=body)
        except httpx.HTTPError as exc:
            raise AriError(method, path, None, f"{type(exc).__name__}: {exc}") from exc
        if response.status_code in (401, 403):
            raise AriAuthError(method, path, response.status_code, _error_message(response))
        if response.status_code >= 300:
            raise AriError(method, path, response.status_code, _error_message(response))
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise AriError(method, path, response.status_code, "response is not JSON") from exc

    # -- resources
    async def asterisk_info(self) -> dict[str, Any]:
        return _as_dict(await self.request("GET", "asterisk/info"), "asterisk/info")

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"channels/{channel_id}/answer")

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self.request("DELETE", f"channels/{channel_id}", params={"reason": reason})

    async def external_media(
        self,
        *,
        app: str,
        external_host: str,
        format: str,
        channel_id: str,
        encapsulation: str = "rtp",
        transport: str = "udp",
        direction: str = "both",
    ) -> dict[str, Any]:
        params = {
            "app": app,
            "channelId": channel_id,
            "external_host": external_host,
            "format": format,
            "encapsulation": encapsulation,
            "transport": transport,
            "connection_type": "client",
            "direction": direction,
        }
        return _as_dict(await self.request("POST", "channels/externalMedia", params=params), "externalMedia")

    async def get_variable(self, channel_id: str, variable: str) -> str:
        reply = _as_dict(
            await self.request("GET", f"channels/{channel_id}/variable", params={"variable": variable}),
            "variable",
        )
        value = reply.get("value")
        if not isinstance(value, str):
            raise AriError("GET", f"channels/{channel_id}/variable", 200, f"no string value for {variable}")
        return value

    async def create_bridge(self, bridge_id: str, name: str, bridge_type: str = "mixing") -> dict[str, Any]:
        params = {"type": bridge_type, "bridgeId": bridge_id, "name": name}
        return _as_dict(await self.request("POST", "bridges", params=params), "bridges")

    async def add_channels(self, bridge_id: str, channel_ids: list[str]) -> None:
        await self.request(
            "POST", f"bridges/{bridge_id}/addChannel", params={"channel": ",".join(channel_ids)}
        )

    async def delete_bridge(self, bridge_id: str) -> None:
        await self.request("DELETE", f"bridges/{bridge_id}")

    async def redirect(self, channel_id: str, endpoint: str) -> None:
        await self.request("POST", f"channels/{channel_id}/redirect", params={"endpoint": endpoint})

    async def continue_in_dialplan(
        self, channel_id: str, *, context: str | None, extension: str, priority: int = 1
    ) -> None:
        params = {"extension": extension, "priority": str(priority)}
        if context:
            params["context"] = context
        await self.request("POST", f"channels/{channel_id}/continue", params=params)


def _error_message(response: httpx.Response) -> str:
    """Asterisk answers errors as {"message": "..."}; fall back to the reason phrase."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return response.reason_phrase or "error"


def _as_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise AriError("?", what, 200, f"expected a JSON object, got {type(value).__name__}")
    return value
