"""The caller's side of a `/ws/call` WebSocket call, as a CallIO (protocol: transports/websocket.py).

It sends 20 ms s16le frames paced in real time, like the browser page, and hands the agent's audio
frames to whoever listens as they arrive; the server's JSON events are kept in `events`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from voxline.audio.pcm import AudioChunk
from voxline.transports.base import CallIO, Dtmf, PacedSink

log = logging.getLogger(__name__)


class _ClientSink(PacedSink):
    def __init__(self, ws: ClientConnection, rate: int) -> None:
        super().__init__(rate)
        self._ws = ws

    async def _emit(self, frame: AudioChunk) -> None:
        await self._ws.send(frame.to_bytes())


class WebSocketCallerCall(CallIO):
    """One call placed on the server's WebSocket. Use `WebSocketCallerCall.connect`."""

    def __init__(self, ws: ClientConnection, call_id: str, rate: int) -> None:
        super().__init__(call_id, rate, _ClientSink(ws, rate))
        self._ws = ws
        self.events: list[dict[str, Any]] = []
        self._ended = False

    @classmethod
    async def connect(cls, url: str, call_id: str, rate: int = 16000) -> WebSocketCallerCall:
        """Open the socket, send the start frame, and wait for the server's `ready`."""
        ws = await connect(url, max_size=None, additional_headers=auth_headers())
        # `call_id` travels as the call's label; the server names the call itself (see `ready`).
        start = {"type": "start", "sample_rate": rate, "format": "s16le", "call_id": call_id}
        await ws.send(json.dumps(start))
        call = cls(ws, call_id, rate)
        with contextlib.suppress(ConnectionClosed):
            while isinstance(message := await ws.recv(), (str, bytes)):
                if not isinstance(message, str):
                    continue
                event = json.loads(message)
                call.events.append(event)
                if event.get("type") == "ready":
                    call.call_id = str(event.get("call_id") or call_id)
                    return call
                if event.get("type") == "error":
                    await ws.close()
                    raise ConnectionError(f"the server refused the call: {event.get('message')}")
        raise ConnectionError("the server closed the socket before the call was ready")

    async def receive(self) -> AudioChunk | Dtmf | None:
        while not self._ended:
            try:
                message = await self._ws.recv()
            except ConnectionClosed:
                break
            if isinstance(message, bytes):
                return AudioChunk.from_bytes(message, self.input_rate)
            event = json.loads(message)
            self.events.append(event)
            # `clear` needs no action: frames are heard as they arrive, nothing is buffered here
            if event.get("type") == "hangup":
                self.hangup_reason = self.hangup_reason or str(event.get("reason"))
                break
        self._ended = True
        return None

    async def hangup(self, reason: str = "normal") -> None:
        if self.hangup_reason is None:
            self.hangup_reason = reason
        await self.sink.aclose()
        with contextlib.suppress(ConnectionClosed):
            await self._ws.send(json.dumps({"type": "hangup"}))
        await self._ws.close()
        self._ended = True

    async def aclose(self) -> None:
        await super().aclose()
        await self._ws.close()


def auth_headers() -> dict[str, str]:
    """The API key for a server that requires one (VOXLINE_API_KEY), as a bearer header."""
    key = os.environ.get("VOXLINE_API_KEY", "").strip()
    return {"Authorization": f"Bearer {key}"} if key else {}
