"""Fixtures: a SipEndpoint on free loopback ports running the echo agent, and a sipp runner."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from telephony.peers.sipp import PCAPS, SCENARIOS, SIPP, SippResult, run_sipp
from voxline.agent.config import SipConfig
from voxline.telephony.echo import EchoAgent
from voxline.telephony.sip.endpoint import SipEndpoint
from voxline.telephony.sip.transaction import Timers

needs_sipp = pytest.mark.skipif(SIPP is None, reason="sipp (Debian sip-tester) is not installed")


def sip_config(**overrides: object) -> SipConfig:
    base = SipConfig(host="127.0.0.1", port=0, transports=["udp", "tcp"])
    # RtpSession takes port_min=0 as "any free port"; the schema keeps users to real ranges.
    return base.model_copy(update={"rtp_port_min": 0, "rtp_port_max": 0, **overrides})


@dataclass
class Running:
    endpoint: SipEndpoint
    agent: EchoAgent

    @property
    def port(self) -> int:
        return self.endpoint.local_port("udp")


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    agent = EchoAgent(hang_up_on="#")
    endpoint = SipEndpoint(sip_config(), agent, timers=Timers(t1=0.1, t2=0.4, t4=0.5))
    await endpoint.start()
    try:
        yield Running(endpoint, agent)
    finally:
        await endpoint.stop()


__all__ = [
    "PCAPS",
    "SCENARIOS",
    "SIPP",
    "Running",
    "SippResult",
    "needs_sipp",
    "run_sipp",
    "running",
    "sip_config",
]
