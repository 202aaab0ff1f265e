"""The app with the REAL Conversation over a real socket, on tiny scripted engines (no models)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import websockets
from ws_harness import LiveServer, tone

from voxline.agent.config import AgentConfig
from voxline.audio.pcm import AudioChunk, Float32Array
from voxline.engines.base import Engines, LLMDelta, Message, ToolSpec, Transcript
from voxline.records import SqliteCallRecorder
from voxline.server.app import create_app

pytestmark = pytest.mark.timeout(90)
REPLY = "We are open from nine to five."


class EnergyVADStream:
    sample_rate = 16000
    frame_samples = 512

    def probability(self, frame: Float32Array) -> float:
        return 1.0 if float(np.sqrt(np.mean(np.square(frame)))) > 0.02 else 0.0

    def reset(self) -> None:
        pass


class EnergyVAD:
    name = "energy"

    def new_stream(self) -> EnergyVADStream:
        return EnergyVADStream()


class ScriptedSTT:
    name = "scripted"
    multilingual = False

    async def transcribe(self, audio: AudioChunk, language: str | None = None) -> Transcript:
        return Transcript("what are your opening hours", "en")

    async def warm_up(self) -> None:
        pass


class ScriptedLLM:
    name = "scripted"
    busy = False

    async def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec] = (), max_tokens: int = 64
    ) -> AsyncIterator[LLMDelta]:
        for word in REPLY.split(" "):
            yield LLMDelta(text=word + " ")
        yield LLMDelta(finish_reason="stop")

    async def warm_up(self, system_prompt: str, tools: Sequence[ToolSpec] = ()) -> None:
        pass

    def count_tokens(self, text: str) -> int:
        return len(text.split())


class ToneTTS:
    name = "tone"
    sample_rate = 22050

    async def stream(self, text: str, voice: str | None = None) -> AsyncIterator[AudioChunk]:
        for _ in range(3):
            yield tone(0.1, self.sample_rate, 330.0)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[LiveServer, SqliteCallRecorder]]:
    recorder = SqliteCallRecorder(tmp_path / "calls.sqlite3")
    engines = Engines(vad=EnergyVAD(), stt=ScriptedSTT(), llm=ScriptedLLM(), tts=ToneTTS())
    agent = AgentConfig(name="hours line", greeting="Hello.")
    with LiveServer(create_app(agent, engines=engines, recorder=recorder)) as server:
        yield server, recorder
    recorder.close()


async def test_real_conversation_over_websocket(live: tuple[LiveServer, SqliteCallRecorder]) -> None:
    server, recorder = live
    events: list[dict[str, Any]] = []
    audio_bytes = 0
    async with websockets.connect(f"{server.ws}/ws/call") as ws:
        await ws.send(json.dumps({"type": "start", "sample_rate": 16000, "format": "s16le"}))

        async def read_until(kind: str) -> dict[str, Any]:
            nonlocal audio_bytes
            while True:
                msg = await asyncio.wait_for(ws.recv(), 20)
                if isinstance(msg, bytes):
                    audio_bytes += len(msg)
                    continue
                event: dict[str, Any] = json.loads(msg)
                events.append(event)
                if event["type"] == kind:
                    return event

        call_id = (await read_until("ready"))["call_id"]
        await read_until("agent_text")  # the greeting
        speech = AudioChunk.concat(
            [AudioChunk.silence(0.3, 16000), tone(1.0, 16000), AudioChunk.silence(1.2, 16000)]
        )
        raw = speech.to_bytes()
        for i in range(0, len(raw), 640):  # 20 ms frames in real time, like the page
            await ws.send(raw[i : i + 640])
            await asyncio.sleep(0.02)
        user = await read_until("user_text")
        assert user["text"] == "what are your opening hours"
        agent = await read_until("agent_text")
        assert agent["text"].strip() == REPLY
        metrics = await read_until("metrics")
        assert metrics["voice_to_voice_ms"] is not None and metrics["voice_to_voice_ms"] > 0
        await ws.send(json.dumps({"type": "hangup"}))
        await asyncio.wait_for(ws.wait_closed(), 10)

    assert audio_bytes > 16000  # greeting and reply audio reached us
    assert {"listening", "user_speaking", "thinking", "speaking"} <= {
        e["state"] for e in events if e["type"] == "state"
    }
    for _ in range(100):
        recorder.flush(5)
        record = recorder.get_call(call_id)
        if record is not None and record["ended_at"] is not None:
            break
        await asyncio.sleep(0.05)
    assert record is not None and record["end_reason"] == "caller_hangup"
    assert [t["user_text"] for t in record["turns"]] == ["", "what are your opening hours"]
    async with httpx.AsyncClient(base_url=server.http) as http:
        text = (await http.get("/metrics")).text
    assert "voxline_turn_voice_to_voice_seconds_count 1" in text
