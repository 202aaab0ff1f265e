"""Stand-ins a test pool hands its jobs by name ("job_fakes:echo_conversation"): no models, real processes.

`EchoConversation` (tests/server/ws_harness.py) echoes the caller, sends the real events and records
a turn per second of caller audio; this adds what only a job can do wrong, on more key presses:
  "7" → write a frame that breaks the protocol on the job's channel,
  "8" → grow this process's memory by 700 MiB (the memory limit's test),
  "3" → transfer the caller to "sip:desk" (relayed to the supervisor's transport) and, if the
        transport says it did, end the call "transferred",
  "4" → hang: block the job's event loop for good (a deadlock, a native call that never returns),
  "6" → play 3 s of audio whose samples carry the monotonic time each 20 ms frame was paced out
        (`pipe_probe`: the supervisor side measures the pipe's added latency per frame).
"""

from __future__ import annotations

import asyncio
import os
import struct
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent.parent / "server"))
from ws_harness import EchoConversation

from voxline.agent.config import AgentConfig
from voxline.audio.pcm import AudioChunk
from voxline.engines.base import VAD, Engines
from voxline.transports.base import Dtmf

_hog: list[np.ndarray] = []
PROBE_MAGIC = 0x7E57


def fake_engines(agent: AgentConfig, services: dict[str, Any], vad: VAD | None) -> Engines:
    """No STT/LLM/TTS: the stand-in conversation needs none (the VAD is the job's real one)."""
    return Engines(vad=vad, stt=None, llm=None, tts=None)  # type: ignore[arg-type]


def probe_frame(rate: int) -> AudioChunk:
    """20 ms whose first samples carry a marker and the time (decoded by `probe_time`)."""
    samples = np.zeros(rate // 50, dtype=np.int16)
    stamp = np.frombuffer(struct.pack("<Hd", PROBE_MAGIC, 0.0), dtype=np.int16)
    samples[: stamp.size] = stamp
    return AudioChunk(samples, rate)


def probe_time(pcm: bytes) -> float | None:
    if len(pcm) < 10:
        return None
    magic, stamp = struct.unpack_from("<Hd", pcm)
    return stamp if magic == PROBE_MAGIC and stamp > 0 else None


class JobEchoConversation(EchoConversation):
    """EchoConversation with the job faults above."""

    def __init__(self, call: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(call, *args, **kwargs)
        self._probe: asyncio.Task[None] | None = None
        sink = call.sink
        original_emit = sink._emit

        async def emit_stamped(frame: AudioChunk) -> None:
            # stamp probe frames the moment the paced sink lets them go
            if frame.samples.size >= 5 and int(frame.samples[0].view(np.uint16)) == PROBE_MAGIC:
                samples = frame.samples.copy()
                samples[1:5] = np.frombuffer(struct.pack("<d", time.monotonic()), dtype=np.int16)
                frame = AudioChunk(samples, frame.sample_rate)
            await original_emit(frame)

        sink._emit = emit_stamped

    async def run(self) -> Any:
        receive = self.call.receive
        transferred = asyncio.Event()

        async def receive_with_faults() -> Any:
            item = await receive()
            if isinstance(item, Dtmf) and item.digit == "7":
                from voxline.workers import job

                os.write(job.current_fd(), struct.pack(">IB", 0xFFFFFFF0, 1))
            elif isinstance(item, Dtmf) and item.digit == "8":
                _hog.append(np.ones(700 * 1024 * 1024 // 8, dtype=np.float64))
            elif isinstance(item, Dtmf) and item.digit == "3":
                if await self.call.transfer("sip:desk"):
                    transferred.set()
                    return None  # the conversation sees the caller gone
            elif isinstance(item, Dtmf) and item.digit == "4":
                time.sleep(3600)  # noqa: ASYNC251 - blocking the loop is the point
            elif isinstance(item, Dtmf) and item.digit == "6":
                rate = self.call.sink.output_rate
                for _ in range(150):
                    await self.call.sink.send(probe_frame(rate))
            return item

        self.call.receive = receive_with_faults
        report = await super().run()
        if transferred.is_set():
            report.end_reason = "transferred"
        return report
