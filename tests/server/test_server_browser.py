"""The web page in headless Chromium: fake microphone (a recorded prompt) → server → page playback."""

from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soxr
from ws_harness import EchoConversation, LiveServer, stand_in_engines

from browser import CHROMIUM, chromium_args
from speech import prompt
from voxline.agent.config import AgentConfig
from voxline.records import SqliteCallRecorder
from voxline.server.app import create_app
from voxline.server.security import SecuritySettings
from voxline.server.tokens import mint_token

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(120),
    # (tests/test_environment.py checks, without any skip, that chromium and playwright are usable)
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium"),
]


def fake_mic_wav(path: Path) -> Path:
    """An Allison prompt at 48 kHz with a little silence after it (Chromium loops the file)."""
    with wave.open(str(prompt("demo-congrats")), "rb") as src:
        rate = src.getframerate()
        pcm = np.frombuffer(src.readframes(src.getnframes()), dtype="<i2")
    up = np.asarray(soxr.resample(pcm, rate, 48000), dtype=np.int16)
    up = np.concatenate([up, np.zeros(48000 // 2, dtype=np.int16)])
    with wave.open(str(path), "wb") as dst:
        dst.setnchannels(1)
        dst.setsampwidth(2)
        dst.setframerate(48000)
        dst.writeframes(up.astype("<i2").tobytes())
    return path


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    recorder = SqliteCallRecorder(tmp_path / "calls.sqlite3")
    app = create_app(
        AgentConfig(name="Browser test agent"),
        engines=stand_in_engines(),
        recorder=recorder,
        conversation_factory=EchoConversation,
    )
    with LiveServer(app) as server:
        yield server
    recorder.close()


async def test_page_calls_streams_mic_and_plays_agent_audio(live: LiveServer, tmp_path: Path) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    wav = fake_mic_wav(tmp_path / "mic.wav")
    console: list[str] = []
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=chromium_args(wav),
        )
        try:
            page = await browser.new_page()
            page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
            page.on("pageerror", lambda err: console.append(f"pageerror: {err}"))
            await page.goto(f"{live.http}/")
            await page.wait_for_function(
                "document.getElementById('agent').textContent === 'Browser test agent'"
            )
            await page.click("#call")
            await page.wait_for_function("window.voxlineStats.callId !== null", timeout=15000)
            assert await page.text_content("#call") == "Hang up"

            # ≥ 2.5 s of microphone audio sent, and the agent's (echoed) audio played back.
            await page.wait_for_function(
                "window.voxlineStats.sentSamples > 40000 && window.voxlineStats.playedSamples > 16000",
                timeout=30000,
            )
            await page.wait_for_selector(".bubble.caller", timeout=10000)
            await page.wait_for_selector(".bubble.agent.interrupted", timeout=10000)
            caller_text = await page.text_content(".bubble.caller .text")
            assert caller_text is not None and caller_text.startswith("heard ")
            latency = await page.text_content(".bubble.agent .latency")
            assert latency is not None and "voice-to-voice 640 ms" in latency
            assert await page.get_attribute("#status", "data-state") == "speaking"

            # Barge-in: the stand-in clears its sink on DTMF 0; the page drops its playback buffer.
            await page.keyboard.press("0")
            await page.wait_for_function("window.voxlineStats.clears === 1", timeout=10000)

            await page.click("#call")  # hang up
            await page.wait_for_function("document.getElementById('call').textContent === 'Call'")
            stats = await page.evaluate("window.voxlineStats")
        finally:
            await browser.close()

    assert not [line for line in console if line.startswith(("error", "pageerror"))], console
    assert stats["errors"] == []
    assert stats["receivedSamples"] >= stats["playedSamples"] > 16000
    assert EchoConversation.instances, "the server never started a conversation"
    conversation = EchoConversation.instances[0]
    assert conversation.done.wait(10)
    assert conversation.dtmf == ["0"]
    # Real speech reached the server: many voiced 20 ms frames, at a speech-like level.
    assert conversation.voiced_frames > 50
    assert conversation.peak_dbfs > -35.0
    assert conversation.received_samples == pytest.approx(stats["sentSamples"], abs=640)


async def test_page_with_keys_configured_calls_with_a_token_and_is_refused_without(tmp_path: Path) -> None:
    """A server that requires auth: a backend links to /?token=…; the same page without one is refused."""
    playwright_api = pytest.importorskip("playwright.async_api")
    secret = "p" * 40
    security = SecuritySettings.from_env(
        "127.0.0.1", env={"VOXLINE_API_KEYS": "k" * 32, "VOXLINE_TOKEN_SECRET": secret}
    )
    recorder = SqliteCallRecorder(tmp_path / "calls.sqlite3")
    app = create_app(
        AgentConfig(name="Keyed agent"), engines=stand_in_engines(), recorder=recorder,
        conversation_factory=EchoConversation, security=security,
    )  # fmt: skip
    wav = fake_mic_wav(tmp_path / "mic.wav")
    token = mint_token(secret.encode(), ttl_s=120)
    try:
        with LiveServer(app) as server:
            async with playwright_api.async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=chromium_args(wav))
                try:
                    page = await browser.new_page()
                    await page.goto(f"{server.http}/")  # no token: the call cannot start
                    await page.click("#call")
                    await page.wait_for_function("document.getElementById('call').textContent === 'Call'")
                    assert await page.evaluate("window.voxlineStats.callId") is None
                    assert not EchoConversation.instances

                    await page.goto(f"{server.http}/?token={token}")
                    await page.wait_for_function(
                        "document.getElementById('agent').textContent === 'Keyed agent'"
                    )
                    await page.click("#call")
                    await page.wait_for_function("window.voxlineStats.callId !== null", timeout=15000)
                    await page.wait_for_function("window.voxlineStats.playedSamples > 8000", timeout=30000)
                    await page.click("#call")
                finally:
                    await browser.close()
    finally:
        recorder.close()
    assert EchoConversation.instances and EchoConversation.instances[0].received_samples > 8000
