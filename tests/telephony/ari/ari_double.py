"""A test double of Asterisk's ARI, shaped on the documented REST API and events, plus its media side.

REST (under /ari, Basic auth or ?api_key=user:pass; errors are {"message": ...}):
  GET    /asterisk/info                              200 AsteriskInfo
  GET    /events?app=A[&subscribeAll=]               WebSocket of event JSON (401 on bad credentials)
  POST   /channels/{id}/answer                       204 | 404 | 409 (not in Stasis)
  DELETE /channels/{id}[?reason=]                    204 | 404
  POST   /channels/externalMedia?app&external_host&format[&channelId&encapsulation&transport
         &connection_type&direction]                 200 Channel | 400 | 409 (id in use)
  GET    /channels/{id}/variable?variable=           200 {"value"} | 400 | 404
  POST   /channels/{id}/redirect?endpoint=           204 | 400 | 404 | 422 (other technology)
  POST   /channels/{id}/continue[?context&extension&priority&label]   204 | 404
  POST   /bridges?type=mixing[&bridgeId&name]        200 Bridge | 409
  POST   /bridges/{id}/addChannel?channel=a,b        204 | 400 (channel not found) | 404 | 422
  DELETE /bridges/{id}                               204 | 404

Media: an external-media channel opens a UDP socket (UNICASTRTP_LOCAL_ADDRESS/PORT); once it shares
a bridge with a caller, it streams that caller's audio as RTP (20 ms, paced) to external_host and
records every RTP packet it gets back.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import socket
import struct
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from voxline.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from voxline.audio.pcm import AudioChunk
from voxline.audio.resample import resample

FORMATS = {"ulaw": (0, 8000), "alaw": (8, 8000), "slin16": (118, 16000)}
FRAME_S = 0.020


@dataclass
class RtpPacket:
    payload_type: int
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes
    arrived: float


@dataclass
class FakeChannel:
    id: str
    name: str
    state: str = "Ring"
    caller_number: str = "1000"
    in_stasis: bool = True
    bridge_id: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    audio: AudioChunk | None = None  # what this caller "says" (callers only)
    media: MediaEndpoint | None = None  # external-media channels only

    def to_json(self, app: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "caller": {"name": "", "number": self.caller_number},
            "connected": {"name": "", "number": ""},
            "accountcode": "",
            "dialplan": {
                "context": "default", "exten": "100", "priority": 1, "app_name": "Stasis", "app_data": app,
            },
            "creationtime": "2025-01-01T00:00:00.000+0000",
            "language": "en",
        }  # fmt: skip


@dataclass
class FakeBridge:
    id: str
    name: str
    bridge_type: str
    channels: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "technology": "simple_bridge", "bridge_type": self.bridge_type,
            "bridge_class": "stasis", "creator": "Stasis", "name": self.name,
            "channels": list(self.channels), "creationtime": "2025-01-01T00:00:00.000+0000",
            "video_mode": "talker",
        }  # fmt: skip


class MediaEndpoint(asyncio.DatagramProtocol):
    """The UnicastRTP side of an external-media channel: sends the caller's audio, records replies."""

    def __init__(self, fmt: str, remote: tuple[str, int]) -> None:
        self.format = fmt
        self.payload_type, self.rate = FORMATS[fmt]
        self.remote = remote
        self.received: list[RtpPacket] = []
        self.packets_sent = 0
        self.transport: asyncio.DatagramTransport | None = None
        self.local: tuple[str, int] = ("127.0.0.1", 0)
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", 0))
        self.transport = transport
        self.local = transport.get_extra_info("sockname")[:2]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 12 or data[0] >> 6 != 2:
            return
        csrc = data[0] & 0x0F
        header = 12 + 4 * csrc
        _, pt, seq, ts, ssrc = struct.unpack("!BBHII", data[:12])
        self.received.append(RtpPacket(pt & 0x7F, seq, ts, ssrc, data[header:], time.monotonic()))

    def start_streaming(self, audio: AudioChunk) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._stream(audio))

    async def _stream(self, audio: AudioChunk) -> None:
        samples = resample(audio, self.rate).samples
        per_frame = round(self.rate * FRAME_S)
        ssrc = 0x5EED0001
        start = time.monotonic()
        for n, offset in enumerate(range(0, samples.size - per_frame + 1, per_frame)):
            frame = samples[offset : offset + per_frame]
            header = struct.pack("!BBHII", 0x80, self.payload_type | (0x80 if n == 0 else 0),
                                 n & 0xFFFF, (n * per_frame) & 0xFFFFFFFF, ssrc)  # fmt: skip
            if self.transport is not None:
                self.transport.sendto(header + self._encode(frame), self.remote)
                self.packets_sent += 1
            delay = start + (n + 1) * FRAME_S - time.monotonic()
            await asyncio.sleep(max(delay, 0))

    def _encode(self, frame: np.ndarray) -> bytes:
        if self.format == "ulaw":
            return ulaw_encode(frame)
        if self.format == "alaw":
            return alaw_encode(frame)
        return frame.astype(">i2").tobytes()

    def heard(self) -> AudioChunk:
        """Everything received back, decoded, in arrival order."""
        parts = []
        for packet in self.received:
            if self.format == "ulaw":
                parts.append(ulaw_decode(packet.payload))
            elif self.format == "alaw":
                parts.append(alaw_decode(packet.payload))
            else:
                parts.append(np.frombuffer(packet.payload, dtype=">i2").astype(np.int16))
        if not parts:
            return AudioChunk(np.zeros(0, dtype=np.int16), self.rate)
        return AudioChunk(np.concatenate(parts).astype(np.int16), self.rate)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.transport is not None:
            self.transport.close()


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


@dataclass
class RecordedRequest:
    method: str
    path: str
    params: dict[str, str]


class AriDouble:
    """`async with AriDouble() as ari:` serves ARI at `ari.url` on 127.0.0.1 (a free port)."""

    def __init__(self, username: str = "asterisk", password: str = "secret", app: str = "voxline") -> None:
        self.username = username
        self.password = password
        self.app = app
        self.channels: dict[str, FakeChannel] = {}
        self.bridges: dict[str, FakeBridge] = {}
        self.requests: list[RecordedRequest] = []
        self.deleted_channels: list[str] = []
        self.deleted_bridges: list[str] = []
        self.sockets: list[WebSocket] = []
        self.event_connections = 0
        self.media_endpoints: dict[str, MediaEndpoint] = {}
        self.faults: dict[tuple[str, str], int] = {}
        """(method, path suffix) -> status: the next matching request fails with it (once)."""
        self._ids = itertools.count(1)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.url = ""

    # -- lifecycle
    async def __aenter__(self) -> AriDouble:
        app = Starlette(routes=self._routes())
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off", ws="websockets-sansio")
        self._server = uvicorn.Server(config)
        self._task = asyncio.get_running_loop().create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:  # noqa: ASYNC110 - uvicorn offers no event for this
            await asyncio.sleep(0.01)
        self.url = f"http://127.0.0.1:{port}/ari"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.drop_event_sockets()
        for endpoint in self.media_endpoints.values():
            await endpoint.aclose()
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.wait_for(self._task, 10)

    # -- driving calls (what Asterisk would do when a phone rings)
    async def incoming_call(
        self, audio: AudioChunk, caller_number: str = "1000", args: Sequence[str] = ()
    ) -> str:
        """A caller enters the app: `Stasis(<app>,<args...>)`."""
        channel_id = f"1700000000.{next(self._ids)}"
        channel = FakeChannel(channel_id, f"PJSIP/{caller_number}-{next(self._ids):08x}",
                              caller_number=caller_number, audio=audio)  # fmt: skip
        self.channels[channel_id] = channel
        await self.emit("StasisStart", channel, args=list(args))
        return channel_id

    async def press(self, channel_id: str, digit: str, duration_ms: int = 120) -> None:
        await self.emit(
            "ChannelDtmfReceived", self.channels[channel_id], digit=digit, duration_ms=duration_ms
        )

    async def caller_hangup(self, channel_id: str) -> None:
        channel = self.channels[channel_id]
        await self.emit("ChannelHangupRequest", channel, cause=16)
        await self._destroy(channel, cause=16)

    async def destroy_channel(self, channel_id: str) -> None:
        """Asterisk hangs a channel up on its own (no ChannelHangupRequest first)."""
        await self._destroy(self.channels[channel_id])

    async def emit(self, kind: str, channel: FakeChannel | None = None, **fields: Any) -> None:
        event: dict[str, Any] = {"type": kind, "timestamp": "2025-01-01T00:00:00.000+0000", **fields}
        if channel is not None:
            event["channel"] = channel.to_json(self.app)
        event["asterisk_id"] = "00:11:22:33:44:55"
        event["application"] = self.app
        await self.send_raw(json.dumps(event))

    async def send_raw(self, text: str) -> None:
        for ws in list(self.sockets):
            with contextlib.suppress(Exception):
                await ws.send_text(text)

    async def drop_event_sockets(self) -> None:
        for ws in list(self.sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=1011)
        self.sockets.clear()

    async def wait_for(self, predicate: Callable[[], bool], within_s: float = 10.0) -> None:
        """Poll until `predicate()` holds; AssertionError after `within_s` seconds."""
        deadline = time.monotonic() + within_s
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            await asyncio.sleep(0.02)

    def calls_to(self, method: str, suffix: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and r.path.endswith(suffix)]

    # -- internals
    async def _destroy(self, channel: FakeChannel, cause: int = 16) -> None:
        if channel.id not in self.channels:
            return
        del self.channels[channel.id]
        self.deleted_channels.append(channel.id)
        if channel.bridge_id and channel.bridge_id in self.bridges:
            self.bridges[channel.bridge_id].channels.remove(channel.id)
        if channel.media is not None:
            await channel.media.aclose()
        if channel.in_stasis:
            await self.emit("StasisEnd", channel)
        await self.emit("ChannelDestroyed", channel, cause=cause, cause_txt="Normal Clearing")

    def _authorized(self, headers: Any, query: Any) -> bool:
        expected = f"{self.username}:{self.password}"
        auth = headers.get("authorization", "")
        if auth.startswith("Basic "):
            with contextlib.suppress(ValueError):
                return base64.b64decode(auth[6:]).decode() == expected
        return bool(query.get("api_key") == expected)

    def _routes(self) -> list[Any]:
        def rest(handler: Callable[..., Any]) -> Callable[[Request], Any]:
            async def endpoint(request: Request) -> Response:
                if not self._authorized(request.headers, request.query_params):
                    return JSONResponse(
                        {"message": "Authentication required"},
                        status_code=401,
                        headers={"WWW-Authenticate": 'Basic realm="Asterisk REST Interface"'},
                    )
                params = {k: v for k, v in request.query_params.items() if k != "api_key"}
                self.requests.append(RecordedRequest(request.method, request.url.path, params))
                for (method, suffix), status in list(self.faults.items()):
                    if request.method == method and request.url.path.endswith(suffix):
                        del self.faults[(method, suffix)]
                        return _error(status, "Injected failure")
                result: Response = await handler(request, params, **request.path_params)
                return result

            return endpoint

        return [
            Route("/ari/asterisk/info", rest(self._info), methods=["GET"]),
            WebSocketRoute("/ari/events", self._events),
            Route("/ari/channels/externalMedia", rest(self._external_media), methods=["POST"]),
            Route("/ari/channels/{channel_id}", rest(self._delete_channel), methods=["DELETE"]),
            Route("/ari/channels/{channel_id}/answer", rest(self._answer), methods=["POST"]),
            Route("/ari/channels/{channel_id}/variable", rest(self._variable), methods=["GET"]),
            Route("/ari/channels/{channel_id}/redirect", rest(self._redirect), methods=["POST"]),
            Route("/ari/channels/{channel_id}/continue", rest(self._continue), methods=["POST"]),
            Route("/ari/bridges", rest(self._create_bridge), methods=["POST"]),
            Route("/ari/bridges/{bridge_id}", rest(self._delete_bridge), methods=["DELETE"]),
            Route("/ari/bridges/{bridge_id}/addChannel", rest(self._add_channel), methods=["POST"]),
        ]

    async def _events(self, ws: WebSocket) -> None:
        if not self._authorized(ws.headers, ws.query_params):
            await ws.send_denial_response(JSONResponse({"message": "Authentication required"}, 401))
            return
        if not ws.query_params.get("app"):
            await ws.send_denial_response(_error(400, "Missing parameter app"))
            return
        await ws.accept()
        self.sockets.append(ws)
        self.event_connections += 1
        try:
            while True:
                await ws.receive_text()
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            if ws in self.sockets:
                self.sockets.remove(ws)

    async def _info(self, request: Request, params: dict[str, str]) -> Response:
        return JSONResponse({"system": {"version": "22.0.0-double", "entity_id": "00:11:22:33:44:55"},
                             "build": {"os": "Linux"}, "config": {"name": ""}, "status": {}})  # fmt: skip

    async def _answer(self, request: Request, params: dict[str, str], channel_id: str) -> Response:
        channel = self.channels.get(channel_id)
        if channel is None:
            return _error(404, "Channel not found")
        if not channel.in_stasis:
            return _error(409, "Channel not in Stasis application")
        channel.state = "Up"
        return Response(status_code=204)

    async def _delete_channel(self, request: Request, params: dict[str, str], channel_id: str) -> Response:
        channel = self.channels.get(channel_id)
        if channel is None:
            return _error(404, "Channel not found")
        if params.get("reason", "normal") not in {"normal", "busy", "congestion", "no_answer", "timeout",
                                                   "rejected", "unallocated", "normal_unspecified",
                                                   "number_incomplete", "codec_mismatch", "interworking",
                                                   "failure", "answered_elsewhere"}:  # fmt: skip
            return _error(400, "Invalid reason for hangup provided")
        await self._destroy(channel)
        return Response(status_code=204)

    async def _external_media(self, request: Request, params: dict[str, str]) -> Response:
        for required in ("app", "external_host", "format"):
            if not params.get(required):
                return _error(400, f"{required} cannot be empty")
        fmt = params["format"]
        encapsulation = params.get("encapsulation", "rtp")
        transport = params.get("transport", "udp")
        if fmt not in FORMATS or encapsulation != "rtp" or transport != "udp":
            return _error(400, "Invalid format/encapsulation/transport (this double: rtp over udp)")
        if params.get("connection_type", "client") != "client" or params.get("direction", "both") != "both":
            return _error(400, "Unsupported connection_type/direction")
        host, sep, port_text = params["external_host"].rpartition(":")
        if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            return _error(400, "external_host must be host:port")
        channel_id = params.get("channelId") or str(uuid.uuid4())
        if channel_id in self.channels:
            return _error(409, "Channel with given unique ID already exists")
        media = MediaEndpoint(fmt, (host.strip("[]"), int(port_text)))
        await media.open()
        channel = FakeChannel(channel_id, f"UnicastRTP/{params['external_host']}-0x{next(self._ids):x}",
                              state="Up", media=media)  # fmt: skip
        channel.variables = {"UNICASTRTP_LOCAL_ADDRESS": media.local[0],
                             "UNICASTRTP_LOCAL_PORT": str(media.local[1])}  # fmt: skip
        self.channels[channel_id] = channel
        self.media_endpoints[channel_id] = media
        await self.emit("StasisStart", channel, args=[])
        return JSONResponse(channel.to_json(self.app))

    async def _variable(self, request: Request, params: dict[str, str], channel_id: str) -> Response:
        if not params.get("variable"):
            return _error(400, "Variable name is required")
        channel = self.channels.get(channel_id)
        if channel is None:
            return _error(404, "Channel or variable not found")
        value = channel.variables.get(params["variable"])
        if value is None:
            return _error(404, "Provided variable was not found")
        return JSONResponse({"value": value})

    async def _redirect(self, request: Request, params: dict[str, str], channel_id: str) -> Response:
        endpoint = params.get("endpoint")
        if not endpoint:
            return _error(400, "Required parameter 'endpoint' not provided.")
        channel = self.channels.get(channel_id)
        if channel is None:
            return _error(404, "Channel not found")
        if not channel.in_stasis:
            return _error(409, "Channel not in Stasis application")
        if endpoint.split("/", 1)[0].lower() != channel.name.split("/", 1)[0].lower():
            return _error(422, "Endpoint technology does not match channel")
        await self._leave_stasis(channel)
        return Response(status_code=204)

    async def _continue(self, request: Request, params: dict[str, str], channel_id: str) -> Response:
        channel = self.channels.get(channel_id)
        if channel is None:
            return _error(404, "Channel not found")
        if not channel.in_stasis:
            return _error(409, "Channel not in a Stasis application")
        await self._leave_stasis(channel)
        return Response(status_code=204)

    async def _leave_stasis(self, channel: FakeChannel) -> None:
        if channel.bridge_id and channel.bridge_id in self.bridges:
            self.bridges[channel.bridge_id].channels.remove(channel.id)
            channel.bridge_id = None
        channel.in_stasis = False
        await self.emit("StasisEnd", channel)

    async def _create_bridge(self, request: Request, params: dict[str, str]) -> Response:
        bridge_id = params.get("bridgeId") or str(uuid.uuid4())
        if bridge_id in self.bridges:
            return _error(409, "Bridge with same ID already exists")
        bridge = FakeBridge(bridge_id, params.get("name", ""), params.get("type", "mixing"))
        self.bridges[bridge_id] = bridge
        return JSONResponse(bridge.to_json())

    async def _delete_bridge(self, request: Request, params: dict[str, str], bridge_id: str) -> Response:
        bridge = self.bridges.pop(bridge_id, None)
        if bridge is None:
            return _error(404, "Bridge not found")
        for channel_id in bridge.channels:
            if channel_id in self.channels:
                self.channels[channel_id].bridge_id = None
        self.deleted_bridges.append(bridge_id)
        return Response(status_code=204)

    async def _add_channel(self, request: Request, params: dict[str, str], bridge_id: str) -> Response:
        ids = [c for c in params.get("channel", "").split(",") if c]
        if not ids:
            return _error(400, "Missing parameter channel")
        bridge = self.bridges.get(bridge_id)
        if bridge is None:
            return _error(404, "Bridge not found")
        for channel_id in ids:
            channel = self.channels.get(channel_id)
            if channel is None:
                return _error(400, "Channel not found")
            if not channel.in_stasis:
                return _error(422, "Channel not in Stasis application")
            if channel.bridge_id not in (None, bridge_id):
                return _error(409, "Channel is already bridged")
        for channel_id in ids:
            self.channels[channel_id].bridge_id = bridge_id
            if channel_id not in bridge.channels:
                bridge.channels.append(channel_id)
        self._start_media(bridge)
        return Response(status_code=204)

    def _start_media(self, bridge: FakeBridge) -> None:
        members = [self.channels[c] for c in bridge.channels if c in self.channels]
        callers = [c for c in members if c.audio is not None]
        for channel in members:
            if channel.media is not None and callers:
                audio = callers[0].audio
                assert audio is not None
                channel.media.start_streaming(audio)

    def media_for(self, caller_id: str) -> MediaEndpoint:
        """The external-media endpoint that was bridged with this caller."""
        for request in self.calls_to("POST", "/addChannel"):
            ids = request.params.get("channel", "").split(",")
            if caller_id in ids:
                for channel_id in ids:
                    if channel_id in self.media_endpoints:
                        return self.media_endpoints[channel_id]
        raise KeyError(caller_id)
