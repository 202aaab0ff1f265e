"""The phone-network ways in, run beside the HTTP server: SIP, Asterisk AudioSocket and ARI.

Each listener hands its calls to the same conversation runner as the web page, so a call behaves
the same whichever way it came in. They start only once the models are warm (the app's lifespan),
so a PBX probing us with OPTIONS sees 503 until we can really take a call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from voxline.agent.config import AgentConfig
from voxline.server.app import call_handler

if TYPE_CHECKING:
    from fastapi import FastAPI

    from voxline.telephony.ari.controller import AriController
    from voxline.telephony.audiosocket.server import AudioSocketServer
    from voxline.telephony.sip.endpoint import SipEndpoint

log = logging.getLogger(__name__)


@dataclass
class TelephonyOptions:
    """Command-line overrides of the agent file's `telephony` section (None: keep the file's value)."""

    sip: bool | None = None
    sip_host: str | None = None
    sip_port: int | None = None
    audiosocket: bool | None = None
    audiosocket_port: int | None = None
    ari: bool | None = None


class TelephonyService:
    """Starts and stops the agent's SIP endpoint, AudioSocket server and ARI controller."""

    def __init__(self, agent: AgentConfig, options: TelephonyOptions | None = None) -> None:
        self.agent = agent
        self.options = options or TelephonyOptions()
        # the listeners import lazily: a server without telephony never loads the SIP stack
        self.sip: SipEndpoint | None = None
        self.audiosocket: AudioSocketServer | None = None
        self.ari: AriController | None = None
        self.agent_ports: list[AudioSocketServer] = []
        """AudioSocket listeners for `dispatch.audiosocket.ports` (one per port, its agent's)."""

    async def start(self, app: FastAPI) -> None:
        config = self.agent.telephony
        opts = self.options
        node = app.state.voxline.node
        route = node.route if node is not None else None
        # `workers.mode: process`: each call's RTP socket / AudioSocket connection goes to its job
        state = app.state.voxline
        in_jobs = state.workers is not None and not state.media_on_supervisor
        sip_config = config.sip.model_copy(
            update={k: v for k, v in {"host": opts.sip_host, "port": opts.sip_port}.items() if v is not None}
        )
        if _enabled(opts.sip, sip_config.enabled):
            from voxline.telephony.sip.endpoint import SipEndpoint

            self.sip = SipEndpoint(
                sip_config, call_handler(app, "sip"), capacity=app.state.voxline.capacity, route=route
            )
            self.sip.media_in_jobs = in_jobs
            await self.sip.start()
            app.state.sip_dialer = self.sip  # explicit dispatch: POST /calls/outbound places calls on it
            log.info("SIP listening on %s:%s", sip_config.host, self.sip.local_port("udp"))
        audiosocket = config.audiosocket
        if _enabled(opts.audiosocket, audiosocket.enabled):
            from voxline.telephony.audiosocket.server import AudioSocketServer

            port = opts.audiosocket_port if opts.audiosocket_port is not None else audiosocket.port
            self.audiosocket = AudioSocketServer(
                audiosocket.host,
                port,
                call_handler(app, "audiosocket"),
                capacity=app.state.voxline.capacity,
                max_calls=audiosocket.max_calls,
                allow_from=audiosocket.allow_from,
                idle_timeout_s=audiosocket.idle_timeout_s,
                route=route,
            )
            self.audiosocket.media_in_jobs = in_jobs
            await self.audiosocket.start()
            log.info("AudioSocket listening on %s:%s", audiosocket.host, self.audiosocket.port)
            for port, agent_name in node.config.dispatch.audiosocket.ports.items() if node else ():
                server = AudioSocketServer(
                    audiosocket.host, port, call_handler(app, "audiosocket"),
                    capacity=app.state.voxline.capacity, max_calls=audiosocket.max_calls,
                    allow_from=audiosocket.allow_from, idle_timeout_s=audiosocket.idle_timeout_s, route=route,
                )  # fmt: skip
                server.media_in_jobs = in_jobs
                await server.start()
                self.agent_ports.append(server)
                log.info(
                    "AudioSocket for agent %s listening on %s:%s", agent_name, audiosocket.host, server.port
                )
        if config.ari is not None and _enabled(opts.ari, True):
            from voxline.telephony.ari.controller import AriController

            self.ari = AriController(
                config.ari,
                call_handler(app, "ari"),
                rtp_port_min=sip_config.rtp_port_min,
                rtp_port_max=sip_config.rtp_port_max,
                route=route,
            )
            self.ari.media_in_jobs = in_jobs
            await self.ari.start()
            log.info("ARI controller connected to %s (app %s)", config.ari.url, config.ari.app)

    async def stop(self) -> None:
        if self.ari is not None:
            await self.ari.stop()
            self.ari = None
        for server in self.agent_ports:
            await server.stop()
        self.agent_ports = []
        if self.audiosocket is not None:
            await self.audiosocket.stop()
            self.audiosocket = None
        if self.sip is not None:
            await self.sip.stop()
            self.sip = None

    def describe(self) -> dict[str, Any]:
        """Where each way in listens (for /health and the startup log)."""
        info: dict[str, Any] = {}
        if self.sip is not None:
            info["sip"] = {
                "host": self.agent.telephony.sip.host,
                "udp": self.sip.local_port("udp"),
                "accepting": self.sip.accepting,
                "active_calls": self.sip.active_calls,
                "admission": self.sip.admission.describe(),
            }
        if self.audiosocket is not None:
            info["audiosocket"] = {
                "port": self.audiosocket.port,
                "active_calls": self.audiosocket.active_calls,
                "refused_sources": self.audiosocket.allow_list.refused,
            }
            if self.agent_ports:
                info["audiosocket"]["agent_ports"] = [server.port for server in self.agent_ports]
        if self.ari is not None:
            info["ari"] = {"active_calls": self.ari.active_calls}
        return info


def _enabled(override: bool | None, configured: bool) -> bool:
    return configured if override is None else override
