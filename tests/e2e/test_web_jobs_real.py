"""`workers.mode: process` with the real default stack: a WebSocket call whose conversation runs in a
job process (STT and TTS on the node's speech server, the LLM on the node's llama-server through the
job's slot client), a full turn heard back, and the record written by the supervisor."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
import websockets

from speech import prompt, transcripts, word_recall

sys.path.insert(0, str(Path(__file__).parent.parent / "server"))
from ws_harness import LiveServer

from voxline.agent.config import AgentConfig
from voxline.audio.pcm import AudioChunk
from voxline.audio.wav import read_wav
from voxline.inference.client import RemoteSpeech
from voxline.node.config import WorkersConfig
from voxline.records import SqliteCallRecorder
from voxline.server.app import create_app
from voxline.workers.pool import WorkerPool

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]
QUESTION = "followme/pls-hold-while-try"


async def test_websocket_call_in_a_job_with_real_models(
    bank_agent: AgentConfig, transcriber: object, tmp_path: Path
) -> None:
    agent = bank_agent.model_copy(
        update={"llm": bank_agent.llm.model_copy(update={"engine": "llama_server"})}
    )
    pool = WorkerPool(WorkersConfig(mode="process", idle_processes=1, spawn_timeout_s=300), preload=agent)
    recorder = SqliteCallRecorder(tmp_path / "calls.sqlite3")
    question = read_wav(prompt(QUESTION))  # 8 kHz, like a phone line
    events: list[dict[str, object]] = []
    agent_audio: list[bytes] = []
    app = create_app(agent, recorder=recorder, workers=pool)
    with LiveServer(app, start_timeout_s=330) as server:
        assert pool.idle == 1  # the app is up only once a job is warm with the agent's engines
        async with websockets.connect(f"{server.ws}/ws/call") as ws:
            await ws.send(json.dumps({"type": "start", "sample_rate": 8000, "format": "s16le"}))

            async def pump_in() -> None:
                frames = [AudioChunk.silence(0.02, 8000)] * 300  # the greeting
                q = question.samples
                frames += [AudioChunk(q[i : i + 160], 8000) for i in range(0, len(q) - 159, 160)]
                frames += [AudioChunk.silence(0.02, 8000)] * 500
                for frame in frames:
                    await ws.send(frame.to_bytes())
                    await asyncio.sleep(0.02)

            async def pump_out() -> None:
                async for message in ws:
                    if isinstance(message, bytes):
                        agent_audio.append(message)
                    else:
                        events.append(json.loads(message))
                        if events[-1].get("type") == "agent_text" and any(
                            e.get("type") == "user_text" for e in events
                        ):
                            return

            sender = asyncio.create_task(pump_in())
            try:
                await asyncio.wait_for(pump_out(), timeout=120)
            finally:
                sender.cancel()
            call_id = str(events[0]["call_id"])
            assert pool.pid_of(call_id) is not None  # running in a job, not the server
        services = pool.services.describe()["llama_servers"]
        assert len(services) == 1 and services[0]["ready"]
        # the job heard and spoke through the node's speech server: its whisper transcribed the
        # caller's turn, its Piper voice said the reply (the job itself loaded neither)
        assert pool.services.speech is not None
        models = (await RemoteSpeech(pool.services.speech.endpoint).describe())["models"]
        stt = next(m for key, m in models.items() if key.startswith("stt-"))
        voice = next(m for key, m in models.items() if key.startswith("tts-"))
        assert stt["served"] >= 1 and voice["served"] >= 1, models
        speech_pid = pool.services.speech.pid
        assert speech_pid is not None
    assert pool.services.speech is None  # stopped with the node
    with pytest.raises(ProcessLookupError):
        os.kill(speech_pid, 0)
    user = next(e for e in events if e["type"] == "user_text")
    assert word_recall(transcripts()[QUESTION], str(user["text"])) >= 0.6, user
    reply = [e for e in events if e["type"] == "agent_text"][-1]
    audio = AudioChunk.from_bytes(b"".join(agent_audio), 8000)
    assert audio.duration_s > 2.0 and audio.rms_dbfs() > -45
    heard = await transcriber.transcribe(audio, "en")  # type: ignore[attr-defined]
    assert word_recall(str(reply["text"]), heard.text) >= 0.4, (reply, heard.text)
    recorder.flush(10)
    record = recorder.get_call(call_id)
    recorder.close()
    assert record is not None and record["end_reason"] == "caller_hangup"  # as inline
    assert any(word_recall(transcripts()[QUESTION], t["user_text"]) >= 0.6 for t in record["turns"]), record
