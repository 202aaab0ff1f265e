"""The ARI events WebSocket: parsing Asterisk's event JSON, and a connection that reconnects.

Asterisk pushes one JSON object per text frame (`{"type": "StasisStart", "channel": {...}, ...}`).
Only the fields voxline acts on are lifted into `AriEvent`; everything else is ignored. A frame
that is not a JSON object with a string `type` is reported as `AriProtocolError` and skipped by the
caller: one bad frame must not take the other calls down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus, WebSocketException

from voxline.telephony.ari.client import AriAuthError, AriError

log = logging.getLogger(__name__)

MAX_EVENT_BYTES = 1 << 20
BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 5.0


class AriProtocolError(ValueError):
    """An events frame that is not a well-formed ARI event."""


@dataclass(frozen=True, slots=True)
class AriEvent:
    type: str
    channel_id: str | None = None
    channel_name: str = ""
    args: tuple[str, ...] = ()
    digit: str | None = None
    duration_ms: int = 0
    cause: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def parse_event(frame: str | bytes) -> AriEvent:
    """One events frame → AriEvent. Raises AriProtocolError on anything malformed."""
    try:
        data = json.loads(frame)
    except (ValueError, UnicodeDecodeError) as exc:
        raise AriProtocolError(f"event is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise AriProtocolError(f"event is not a JSON object but {type(data).__name__}")
    kind = data.get("type")
    if not isinstance(kind, str) or not kind:
        raise AriProtocolError("event has no string 'type'")
    channel = data.get("channel")
    channel_id: str | None = None
    channel_name = ""
    if channel is not None:
        if not isinstance(channel, dict) or not isinstance(channel.get("id"), str):
            raise AriProtocolError(f"{kind}: 'channel' must be an object with a string 'id'")
        channel_id = channel["id"]
        name = channel.get("name", "")
        channel_name = name if isinstance(name, str) else ""
    raw_args = data.get("args", [])
    if not isinstance(raw_args, list) or not all(isinstance(a, str) for a in raw_args):
        raise AriProtocolError(f"{kind}: 'args' must be a list of strings")
    digit = data.get("digit")
    if digit is not None and not isinstance(digit, str):
        raise AriProtocolError(f"{kind}: 'digit' must be a string")
    duration = data.get("duration_ms", 0)
    cause = data.get("cause")
    return AriEvent(
        type=kind,
        channel_id=channel_id,
        channel_name=channel_name,
        args=tuple(raw_args),
        digit=digit,
        duration_ms=duration if isinstance(duration, int) and not isinstance(duration, bool) else 0,
        cause=cause if isinstance(cause, int) and not isinstance(cause, bool) else None,
        raw=data,
    )


EventHandler = Callable[[AriEvent], Awaitable[None]]


class AriEventStream:
    """Keeps the events WebSocket up: connects, hands each event to `on_event`, reconnects with backoff.

    `connect_once()` makes the first connection and raises (AriAuthError on 401/403, AriError when
    Asterisk cannot be reached) so a misconfigured server fails at start, loudly. After that,
    drops are logged and retried forever with exponential backoff until `aclose()`.
    """

    def __init__(self, url: str, auth_header: str, on_event: EventHandler) -> None:
        self.url = url
        self._headers = {"Authorization": auth_header}
        self._on_event = on_event
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.connections = 0
        """How many times the socket has been opened (reconnects included)."""
        self.connected = asyncio.Event()

    async def connect_once(self) -> None:
        ws = await self._open()
        self._task = asyncio.get_running_loop().create_task(self._run(ws), name="ari-events")

    async def aclose(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _open(self) -> ClientConnection:
        try:
            ws = await connect(
                self.url, additional_headers=self._headers, proxy=None, max_size=MAX_EVENT_BYTES
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise AriAuthError("GET", "events", status, "Asterisk refused the ARI credentials") from exc
            raise AriError("GET", "events", status, "events WebSocket refused") from exc
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            raise AriError("GET", "events", None, f"cannot open events WebSocket: {exc}") from exc
        self.connections += 1
        self.connected.set()
        log.info("ARI events connected (%s)", self.url.split("?")[0])
        return ws

    async def _run(self, ws: ClientConnection | None) -> None:
        backoff = BACKOFF_FIRST_S
        while not self._closing:
            if ws is None:
                try:
                    ws = await self._open()
                except AriError as exc:
                    log.warning("ARI events reconnect failed: %s; retrying in %.1f s", exc, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX_S)
                    continue
                backoff = BACKOFF_FIRST_S
            try:
                async for frame in ws:
                    await self._dispatch(frame)
            except WebSocketException as exc:
                log.warning("ARI events connection lost: %s", exc)
            finally:
                self.connected.clear()
                with contextlib.suppress(Exception):
                    await ws.close()
            ws = None
            if not self._closing:
                log.warning("ARI events closed; reconnecting in %.1f s", backoff)
                await asyncio.sleep(backoff)

    async def _dispatch(self, frame: str | bytes) -> None:
        try:
            event = parse_event(frame)
        except AriProtocolError as exc:
            log.warning("ignoring malformed ARI event: %s", exc)
            return
        try:
            await self._on_event(event)
        except Exception:  # a bug handling one event must not stop the stream for every call
            log.exception("ARI event handler failed on %s", event.type)
