"""The server with the real default stack: a call over a real WebSocket, and the web page in headless
Chromium with a recorded question as its microphone; in both, a full turn is heard back."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soxr
import websockets

from browser import CHROMIUM, chromium_args
from speech import prompt, transcripts, word_recall

sys.path.insert(0, str(Path(__file__).parent.parent / "server"))
from ws_harness import LiveServer

from voxline.agent.config import AgentConfig
from voxline.audio.pcm import AudioChunk
from voxline.audio.wav import read_wav
from voxline.engines.base import Engines
from voxline.records import SqliteCallRecorder
from voxline.server.app import create_app

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
QUESTION = "followme/pls-hold-while-try"


@pytest.fixture
def live(bank_agent: AgentConfig, real_engines: Engines, tmp_path: Path) -> Iterator[tuple[LiveServer, Path]]:
    db = tmp_path / "calls.sqlite3"
    recorder = SqliteCallRecorder(db)
    app = create_app(bank_agent, engines=real_engines, recorder=recorder)
    with LiveServer(app) as server:
        yield server, db
    recorder.close()


async def test_websocket_call_with_real_models(live: tuple[LiveServer, Path], transcriber: object) -> None:
    server, db = live
    question = read_wav(prompt(QUESTION))  # 8 kHz, like a phone line
    events: list[dict[str, object]] = []
    agent_audio: list[bytes] = []
    async with websockets.connect(f"{server.ws}/ws/call") as ws:
        await ws.send(json.dumps({"type": "start", "sample_rate": 8000, "format": "s16le"}))

        async def pump_in() -> None:
            # greeting first (listen 6 s), then the question in real time, then silence
            frames = [AudioChunk.silence(0.02, 8000)] * 300
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
            await asyncio.wait_for(pump_out(), timeout=60)
        finally:
            sender.cancel()
    kinds = [e["type"] for e in events]
    assert kinds[0] == "ready"
    user = next(e for e in events if e["type"] == "user_text")
    assert word_recall(transcripts()[QUESTION], str(user["text"])) >= 0.6, user
    reply = [e for e in events if e["type"] == "agent_text"][-1]
    assert str(reply["text"]).strip()
    audio = AudioChunk.from_bytes(b"".join(agent_audio), 8000)
    assert audio.duration_s > 2.0 and audio.rms_dbfs() > -45
    heard = await transcriber.transcribe(audio, "en")  # type: ignore[attr-defined]
    assert word_recall(str(reply["text"]), heard.text) >= 0.4, (reply, heard.text)
    # the call is in the SQLite record, with the caller's turn
    ready = next(e for e in events if e["type"] == "ready")
    recorder = SqliteCallRecorder(db)
    for _ in range(50):
        record = recorder.get_call(str(ready["call_id"]))
        if record and any(t["user_text"] for t in record["turns"]):
            break
        await asyncio.sleep(0.1)
    recorder.close()
    assert record is not None
    assert any(word_recall(transcripts()[QUESTION], t["user_text"]) >= 0.6 for t in record["turns"]), record


def _fake_mic(path: Path) -> Path:
    """Chromium loops its fake-mic file: greeting-length silence, the question, then long silence."""
    q = read_wav(prompt(QUESTION))
    up = np.asarray(soxr.resample(q.samples, q.sample_rate, 48000), dtype=np.int16)
    pcm = np.concatenate([np.zeros(48000 * 6, np.int16), up, np.zeros(48000 * 20, np.int16)])
    with wave.open(str(path), "wb") as dst:
        dst.setnchannels(1)
        dst.setsampwidth(2)
        dst.setframerate(48000)
        dst.writeframes(pcm.astype("<i2").tobytes())
    return path


@pytest.mark.browser
async def test_web_page_full_turn_with_real_models(live: tuple[LiveServer, Path], tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    server, _ = live
    wav = _fake_mic(tmp_path / "mic.wav")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=chromium_args(wav),
        )
        try:
            page = await browser.new_page()
            await page.goto(f"{server.http}/")
            await page.click("#call")
            # the caller's question transcribed, then an agent answer played back
            await page.wait_for_selector(".bubble.caller", timeout=40000)
            await page.wait_for_function(
                "document.querySelectorAll('.bubble.agent').length >= 2", timeout=40000
            )
            await page.wait_for_function("window.voxlineStats.playedSamples > 48000", timeout=20000)
            caller_text = await page.text_content(".bubble.caller .text")
            # the answered turn's latency label, from the real conversation's metrics event
            await page.wait_for_function(
                "[...document.querySelectorAll('.bubble.agent .latency')]"
                ".some(n => n.textContent.includes('voice-to-voice'))",
                timeout=20000,
            )
            labels = await page.eval_on_selector_all(
                ".bubble.agent .latency", "nodes => nodes.map(n => n.textContent)"
            )
            await page.screenshot(path=str(tmp_path / "page.png"))
            await page.click("#call")
        finally:
            await browser.close()
    assert caller_text is not None
    assert word_recall(transcripts()[QUESTION], caller_text) >= 0.6, caller_text
    answered = [label for label in labels if "voice-to-voice" in label]
    assert answered, labels
    timings = {name: int(ms) for name, ms in re.findall(r"([a-z-]+(?: stop)?) (\d+) ms", answered[0])}
    assert {"voice-to-voice", "stt", "tts"} <= timings.keys(), answered[0]
    # voice-to-voice spans the whole reply path, so it exceeds each stage it contains; the STT wait is
    # 0 when the turn was transcribed (and its answer prepared) during the end-of-turn silence
    assert 0 <= timings["stt"] < timings["voice-to-voice"] < 30000, answered[0]
