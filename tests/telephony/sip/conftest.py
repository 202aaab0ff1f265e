"""Fixtures: a SipEndpoint on free loopback ports running the echo agent, and a sipp runner."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from telephony.peers.ports import free_port
from voxline.agent.config import SipConfig
from voxline.telephony.echo import EchoAgent
from voxline.telephony.sip.endpoint import SipEndpoint
from voxline.telephony.sip.transaction import Timers

SIPP = shutil.which("sipp")
SCENARIOS = Path(__file__).parent.parent / "sipp"
PCAPS = Path("/usr/share/sip-tester")
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


@dataclass
class SippResult:
    returncode: int
    stdout: str
    stderr: str
    workdir: Path

    def log(self, suffix: str) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.workdir.glob(f"*{suffix}"))


def _prepare(workdir: Path, with_pcaps: bool) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    if with_pcaps:  # sipp's scenarios look for ./pcap/ beside where they run
        (workdir / "pcap").mkdir(exist_ok=True)
        for pcap in PCAPS.glob("*.pcap"):
            shutil.copy(pcap, workdir / "pcap" / pcap.name)


async def run_sipp(
    workdir: Path,
    target: str | None,
    *args: str,
    timeout_s: float = 30.0,
    with_pcaps: bool = False,
    port: int | None = None,
) -> SippResult:
    """Run sipp headless (against `target`, or as a server on `port`), in `workdir` (where its logs
    land), bounded by a timeout."""
    assert SIPP is not None
    await asyncio.to_thread(_prepare, workdir, with_pcaps)
    command = [
        SIPP, *([target] if target else []), "-nostdin", "-i", "127.0.0.1", "-p", str(port or free_port()),
        "-mp", str(free_port(even=True)), "-m", "1", "-timeout", f"{int(timeout_s)}s",
        "-timeout_error", "-trace_err", "-trace_msg", *args,
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *command, cwd=workdir, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout_s + 10)
    except TimeoutError:
        process.kill()
        out, err = await process.communicate()
    assert process.returncode is not None
    return SippResult(process.returncode, out.decode(errors="replace"), err.decode(errors="replace"), workdir)
