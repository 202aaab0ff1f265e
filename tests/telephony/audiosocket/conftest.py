from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from telephony.audiosocket.helpers import RecordingHandler
from voxline.telephony.audiosocket import AudioSocketServer
from voxline.telephony.echo import EchoAgent


@pytest.fixture
def echo() -> EchoAgent:
    return EchoAgent(hang_up_on="#")


@pytest.fixture
async def echo_server(echo: EchoAgent) -> AsyncIterator[tuple[AudioSocketServer, RecordingHandler]]:
    handler = RecordingHandler(echo)
    server = AudioSocketServer("127.0.0.1", 0, handler, first_frame_timeout_s=0.5)
    await server.start()
    try:
        yield server, handler
    finally:
        await server.stop()
