"""The speech server's queue, limits and key, with stand-in models in this process (no model weights:
what is tested is the server's behaviour around them)."""

from __future__ import annotations

import asyncio
import secrets
import struct
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import pytest

from voxline.audio.pcm import AudioChunk
from voxline.engines.base import STT, TTS, EngineError, Transcript
from voxline.inference import protocol as p
from voxline.inference.client import RemoteSpeech, RemoteSTT, RemoteTTS, SpeechServerBusy
from voxline.inference.server import SpeechInferenceServer


class GatedSTT:
    """Transcribes only when the test opens the gate, so requests pile up behind it."""

    name = "gated"
    multilingual = False

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.started = 0
        self.heard: list[float] = []

    async def transcribe(self, audio: AudioChunk, language: str | None = None) -> Transcript:
        self.started += 1
        await self.gate.wait()
        self.heard.append(audio.duration_s)
        return Transcript(f"{audio.duration_s:.1f} seconds", language or "en")

    async def warm_up(self) -> None:
        return None


class EndlessTTS:
    """Yields a 20 ms chunk every 10 ms until its stream is closed."""

    name = "endless"
    sample_rate = 16000

    def __init__(self) -> None:
        self.made = 0
        self.closed = asyncio.Event()

    def stream(self, text: str, voice: str | None = None) -> AsyncIterator[AudioChunk]:
        return self._stream()

    async def _stream(self) -> AsyncIterator[AudioChunk]:
        try:
            while True:
                await asyncio.sleep(0.01)
                self.made += 1
                yield AudioChunk(np.full(320, self.made, dtype=np.int16), 16000)
        finally:
            self.closed.set()

    async def warm_up(self) -> None:
        return None


class NoisyTTS:
    """Three chunks of fresh random noise per sentence, so a replay is told apart from a new render."""

    name = "noisy"
    sample_rate = 16000

    def __init__(self) -> None:
        self.rendered: list[str] = []
        self.rng = np.random.default_rng()

    def stream(self, text: str, voice: str | None = None) -> AsyncIterator[AudioChunk]:
        return self._stream(text)

    async def _stream(self, text: str) -> AsyncIterator[AudioChunk]:
        self.rendered.append(text)
        for _ in range(3):
            await asyncio.sleep(0.01)
            yield AudioChunk(self.rng.integers(-1000, 1000, 800).astype(np.int16), 16000)

    async def warm_up(self) -> None:
        return None


@pytest.fixture
def socket_path(tmp_path: Path) -> Path:
    return tmp_path / "speech.sock"


async def start(
    socket_path: Path, models: dict[str, STT | TTS], max_queue: int = 1
) -> tuple[SpeechInferenceServer, p.SpeechEndpoint]:
    key = secrets.token_urlsafe(16)
    server = SpeechInferenceServer(models, key, max_queue=max_queue, tts_concurrency=1)
    await server.serve(socket_path)
    return server, p.SpeechEndpoint(str(socket_path), key)


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    for _ in range(int(timeout_s / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("timed out")


def second(rate: int = 16000) -> AudioChunk:
    return AudioChunk(np.zeros(rate, dtype=np.int16), rate)


async def test_a_full_queue_refuses_at_once_and_the_waiting_one_is_still_served(socket_path: Path) -> None:
    stt = GatedSTT()
    server, endpoint = await start(socket_path, {"stt-a": stt}, max_queue=1)
    client = RemoteSTT(RemoteSpeech(endpoint), "stt-a", name="gated", multilingual=False)
    running = asyncio.ensure_future(client.transcribe(second()))
    await until(lambda: stt.started > 0)
    waiting = asyncio.ensure_future(client.transcribe(AudioChunk.concat([second(), second()])))
    await until(lambda: server.queues["stt-a"].waiting > 0)
    with pytest.raises(SpeechServerBusy, match="1 requests already waiting"):
        await client.transcribe(second())
    stt.gate.set()
    assert (await running).text == "1.0 seconds"
    assert (await waiting).text == "2.0 seconds"
    assert server.queues["stt-a"].refused == 1
    await server.close()


async def test_a_request_over_the_size_limit_is_refused_before_it_is_read(socket_path: Path) -> None:
    server, endpoint = await start(socket_path, {"stt-a": GatedSTT()})
    reader, writer = await asyncio.open_unix_connection(str(socket_path))
    # a frame that claims 100 MB: the server answers without waiting for (or buffering) its body
    writer.write(struct.pack(">IB", 100 * 1024 * 1024, p.REQUEST))
    await writer.drain()
    kind, payload = await asyncio.wait_for(p.read_frame(reader, p.MAX_REPLY_FRAME_BYTES), 5)
    assert kind == p.ERROR and b'"too_large"' in payload
    assert await reader.read() == b""  # and hangs up
    writer.close()
    # the client refuses to send one at all
    client = RemoteSTT(RemoteSpeech(endpoint), "stt-a", name="gated", multilingual=False)
    with pytest.raises(EngineError, match="over the limit"):
        await client.transcribe(AudioChunk(np.zeros(p.MAX_REQUEST_BYTES // 2 + 1, dtype=np.int16), 16000))
    await server.close()


async def test_a_wrong_key_and_an_unknown_model_are_refused(socket_path: Path) -> None:
    server, endpoint = await start(socket_path, {"stt-a": GatedSTT()})
    intruder = RemoteSTT(
        RemoteSpeech(p.SpeechEndpoint(endpoint.path, "guess")), "stt-a", name="x", multilingual=False
    )
    with pytest.raises(EngineError, match="unauthorized"):
        await intruder.transcribe(second())
    stranger = RemoteSTT(RemoteSpeech(endpoint), "stt-other", name="x", multilingual=False)
    with pytest.raises(EngineError, match="unknown_model"):
        await stranger.transcribe(second())
    assert endpoint.key not in repr(endpoint)
    await server.close()


async def test_closing_a_synthesis_early_stops_it_on_the_server(socket_path: Path) -> None:
    tts = EndlessTTS()
    server, endpoint = await start(socket_path, {"tts-a": tts})
    client = RemoteTTS(RemoteSpeech(endpoint), "tts-a", name="endless", sample_rate=16000)
    stream = client.stream("anything")
    chunks = [await anext(stream) for _ in range(3)]  # type: ignore[arg-type]
    assert [int(c.samples[0]) for c in chunks] == [1, 2, 3]
    await stream.aclose()  # type: ignore[attr-defined]
    await asyncio.wait_for(tts.closed.wait(), 5)
    made = tts.made
    await asyncio.sleep(0.1)
    assert tts.made == made  # nothing more is made for nobody
    await server.close()


async def test_a_request_whose_client_left_while_it_waited_is_skipped(socket_path: Path) -> None:
    stt = GatedSTT()
    server, endpoint = await start(socket_path, {"stt-a": stt}, max_queue=4)
    client = RemoteSTT(RemoteSpeech(endpoint), "stt-a", name="gated", multilingual=False)
    running = asyncio.ensure_future(client.transcribe(second()))
    await until(lambda: stt.started > 0)
    gone = asyncio.ensure_future(client.transcribe(second()))
    await until(lambda: server.queues["stt-a"].waiting > 0)
    gone.cancel()  # a barge-in dropped the draft transcript
    await asyncio.sleep(0.05)
    stt.gate.set()
    await running
    await asyncio.sleep(0.05)
    assert stt.started == 1  # the model never saw the abandoned request
    await server.close()


async def test_no_server_is_an_engine_error_after_the_restart_wait(tmp_path: Path) -> None:
    client = RemoteSpeech(p.SpeechEndpoint(str(tmp_path / "none.sock"), "k"), restart_wait_s=0.3)
    with pytest.raises(EngineError, match="not accepting requests"):
        await client.call({"op": "ping"})


async def test_a_sentence_said_again_is_replayed_from_the_cache(socket_path: Path) -> None:
    tts = NoisyTTS()
    server, endpoint = await start(socket_path, {"tts-a": tts})
    client = RemoteTTS(RemoteSpeech(endpoint), "tts-a", name="noisy", sample_rate=16000)

    async def say(text: str) -> bytes:
        return AudioChunk.concat([c async for c in client.stream(text)]).to_bytes()

    greeting = await say("Hello, thanks for calling.")
    assert await say("Hello, thanks for calling.") == greeting  # the next job's greeting: no render
    assert tts.rendered == ["Hello, thanks for calling."]
    assert await say("Something else.") != greeting
    # a synthesis the client left early is not kept: the next one renders it whole
    stream = client.stream("Cut short.")
    await anext(stream)  # type: ignore[call-overload]
    await stream.aclose()  # type: ignore[attr-defined]
    assert len(await say("Cut short.")) == 3 * 800 * 2
    assert tts.rendered.count("Cut short.") == 2
    assert server.describe()["tts_cache"]["hits"] == 1
    await server.close()
