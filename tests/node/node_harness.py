"""A node for tests: the server app with every way in (WebSocket, SIP, AudioSocket) on free loopback
ports, a stand-in conversation that echoes and can say goodbye, and a small SIP UAC.

`python node_harness.py PORT_FILE DRAIN_TIMEOUT_S HTTP_PORT` runs that node the way `voxline serve` does
(`voxline.node.drain.serve_app`: uvicorn with the drain's signal handling) and writes its ports to
PORT_FILE as JSON once it listens."""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.ws_harness import EchoConversation, stand_in_engines, tone
from voxline.agent.config import AgentConfig
from voxline.conversation.events import AgentText, to_wire
from voxline.conversation.metrics import CallReport, NullRecorder
from voxline.node.load import NodeLoad, calls_load
from voxline.server.app import create_app
from voxline.server.security import SecuritySettings
from voxline.server.telephony import TelephonyService

GOODBYE_TEXT = "Goodbye then."


class GoodbyeEcho(EchoConversation):
    """The echo stand-in, plus what the real Conversation does on `request_goodbye`: stop, say the
    goodbye line (an event and 0.3 s of tone), end the call with the reason."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.goodbye: str | None = None
        self._wake = asyncio.Event()

    def request_goodbye(self, reason: str = "node_shutdown") -> None:
        self.goodbye = self.goodbye or reason
        self._wake.set()

    async def run(self) -> CallReport:
        echo = asyncio.ensure_future(super().run())
        wake = asyncio.ensure_future(self._wake.wait())
        await asyncio.wait({echo, wake}, return_when=asyncio.FIRST_COMPLETED)
        if echo.done():
            wake.cancel()
            return echo.result()
        echo.cancel()
        await asyncio.wait([echo])
        self.on_event(to_wire(AgentText(GOODBYE_TEXT, False)))
        await self.call.sink.send(tone(0.3, 16000))
        await self.call.sink.drain()
        self.report.end_reason = self.goodbye
        return self.report


def node_agent() -> AgentConfig:
    return AgentConfig.model_validate(
        {
            "name": "node test agent",
            "telephony": {
                "sip": {"host": "127.0.0.1", "port": 0, "transports": ["udp"]},
                "audiosocket": {"host": "127.0.0.1", "port": 0},
            },
        }
    )


@dataclass
class Node:
    app: Any
    telephony: TelephonyService
    services: list[Any]
    """The app's services, in start order (a test may append one before the app starts)."""

    @property
    def state(self) -> Any:
        return self.app.state.voxline

    def ports(self) -> dict[str, int]:
        sip, audiosocket = self.telephony.sip, self.telephony.audiosocket
        assert sip is not None and audiosocket is not None
        return {"sip": sip.local_port("udp"), "audiosocket": audiosocket.port}


def node_app(capacity_calls: int = 1, threshold: float = 0.9, drain_timeout_s: float = 300.0) -> Node:
    agent = node_agent()
    telephony = TelephonyService(agent)
    services: list[Any] = [telephony]
    app = create_app(
        agent,
        engines=stand_in_engines(),
        recorder=NullRecorder(),
        conversation_factory=GoodbyeEcho,
        services=services,
        security=SecuritySettings.local(),
        load=NodeLoad(capacity_calls, threshold, load_fnc=calls_load),
        drain_timeout_s=drain_timeout_s,
    )
    return Node(app, telephony, services)


# ---------------------------------------------------------------- a small SIP UAC


def sdp(media_port: int) -> str:
    return (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {media_port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    )


class Dialog:
    """One call placed by hand: INVITE, then ACK and BYE in the same dialog."""

    def __init__(self, port: int, local_port: int) -> None:
        self.port, self.local_port = port, local_port
        self.call_id = secrets.token_hex(8)
        self.from_tag = secrets.token_hex(4)
        self.to_tag: str | None = None

    def request(self, method: str, cseq: int, body: str = "") -> bytes:
        to = f"<sip:agent@127.0.0.1:{self.port}>" + (f";tag={self.to_tag}" if self.to_tag else "")
        lines = [
            f"{method} sip:agent@127.0.0.1:{self.port} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.local_port};branch=z9hG4bK{secrets.token_hex(6)};rport",
            f"From: <sip:tester@127.0.0.1:{self.local_port}>;tag={self.from_tag}",
            f"To: {to}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {method}",
            "Max-Forwards: 70",
            f"Contact: <sip:tester@127.0.0.1:{self.local_port}>",
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

    def invite(self, media_port: int = 40000) -> bytes:
        return self.request("INVITE", 1, sdp(media_port))


def options(port: int, local_port: int) -> bytes:
    return Dialog(port, local_port).request("OPTIONS", 1)


# ---------------------------------------------------------------- run as `voxline serve` does


def main() -> None:
    import logging

    from voxline.node.drain import serve_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    port_file = Path(sys.argv[1])
    drain_timeout_s = float(sys.argv[2]) if len(sys.argv) > 2 else 300.0
    node = node_app(capacity_calls=2, drain_timeout_s=drain_timeout_s)

    class Announce:  # the last service to start: by then every listener has its port
        async def start(self, _app: Any) -> None:
            text = json.dumps(node.ports())
            await asyncio.to_thread(port_file.write_text, text)

        async def stop(self) -> None:
            pass

        def describe(self) -> dict[str, Any]:
            return {}

    node.services.append(Announce())
    serve_app(node.app, host="127.0.0.1", port=int(sys.argv[3]), pid_file=port_file.with_suffix(".pid"))


if __name__ == "__main__":
    main()
