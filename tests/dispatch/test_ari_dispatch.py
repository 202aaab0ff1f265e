"""ARI: the Stasis arguments pick the agent (`Stasis(voxline,agent=hindi)`), the caller id and
dialplan extension become the call's metadata, and a caller for no agent is hung up unanswered."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import numpy as np
import pytest

from telephony.ari.ari_double import AriDouble
from voxline.agent.config import AriConfig
from voxline.audio.pcm import AudioChunk
from voxline.dispatch.metadata import CallMetadata
from voxline.dispatch.rules import Dispatcher
from voxline.node.config import DispatchConfig
from voxline.telephony.ari.controller import AriController
from voxline.transports.base import CallIO

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def ari() -> AsyncIterator[AriDouble]:
    async with AriDouble() as double:
        yield double


async def test_stasis_arguments_pick_the_agent_and_an_unknown_one_is_hung_up(ari: AriDouble) -> None:
    rules = Dispatcher.of(["bank", "hindi"], DispatchConfig())  # no default
    seen: list[CallMetadata | None] = []

    async def handler(call: CallIO) -> None:
        seen.append(call.metadata)

    config = AriConfig(url=ari.url, username="asterisk", password="secret")
    controller = AriController(config, handler, rtp_port_min=0, rtp_port_max=0, route=rules.route)
    await controller.start()
    try:
        audio = AudioChunk(np.zeros(1600, dtype=np.int16), 8000)
        await ari.incoming_call(audio, caller_number="5551234", args=["agent=hindi", "campaign=renewal"])
        await _until(lambda: len(seen) == 1 and controller.active_calls == 0)
        meta = seen[0]
        assert meta is not None and meta.transport == "ari" and meta.agent == "hindi"
        assert meta.caller_number == "5551234" and meta.dialled_number == "100"
        assert meta.variables == {"campaign": "renewal"}
        refused = await ari.incoming_call(audio, args=["agent=collections"])
        await _until(lambda: refused in ari.deleted_channels)
        nameless = await ari.incoming_call(audio)
        await _until(lambda: nameless in ari.deleted_channels)
        assert len(seen) == 1 and ari.bridges == {}
        answered = [r.path for r in ari.requests if r.path.endswith("/answer")]
        assert not any(refused in path or nameless in path for path in answered) and len(answered) == 1
    finally:
        await controller.stop()


async def _until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)
