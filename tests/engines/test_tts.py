from __future__ import annotations

import asyncio
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from speech import word_recall
from voxline.audio.pcm import AudioChunk
from voxline.engines.catalog import ModelCatalog
from voxline.engines.tts_espeak import EspeakTTS

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="apt-get install espeak-ng")


@needs_espeak
async def test_espeak_produces_speech_audio() -> None:
    tts = EspeakTTS("en-us")
    chunks = [c async for c in tts.stream("Thank you for calling. Goodbye.")]
    audio = AudioChunk.concat(chunks)
    assert audio.sample_rate == tts.sample_rate == 22050
    assert 1.0 < audio.duration_s < 5.0
    assert audio.rms_dbfs() > -40


@needs_espeak
async def test_espeak_close_kills_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    spawned: list[asyncio.subprocess.Process] = []
    spawn = asyncio.create_subprocess_exec

    async def recording_spawn(*args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        process = await spawn(*args, **kwargs)
        spawned.append(process)
        return process

    monkeypatch.setattr(asyncio, "create_subprocess_exec", recording_spawn)
    tts = EspeakTTS("en-us")
    stream = tts.stream("This is a long sentence that keeps going. " * 40)
    async for _ in stream:
        break
    assert len(spawned) == 1 and spawned[0].returncode is None  # still speaking (~1 min of text)
    await stream.aclose()  # type: ignore[attr-defined]
    process = spawned[0]
    assert process.returncode == -signal.SIGKILL  # killed and reaped, not left to finish
    with pytest.raises(ProcessLookupError):  # gone from the process table
        os.kill(process.pid, 0)
    # nothing left over: a new synthesis works at once
    assert [c async for c in tts.stream("ok")]


@pytest.mark.slow
async def test_piper_speech_round_trips_through_whisper() -> None:
    from voxline.engines.stt_whisper import WhisperSTT
    from voxline.engines.tts_piper import PiperTTS

    catalog = ModelCatalog()
    tts = PiperTTS(catalog.resolve("en_US-joe-medium", "tts"))
    await tts.warm_up()
    text = "Thank you for calling Northwind Bank. How can I help you today?"
    started = time.perf_counter()
    first, chunks = 0.0, []
    async for chunk in tts.stream(text):
        first = first or time.perf_counter() - started
        chunks.append(chunk)
    audio = AudioChunk.concat(chunks)
    rtf = (time.perf_counter() - started) / audio.duration_s
    print(f"\npiper: first audio {first * 1000:.0f} ms, RTF {rtf:.3f}, {len(chunks)} pieces")
    assert audio.sample_rate == 22050 and len(chunks) == 2  # one piece per sentence
    stt = WhisperSTT(catalog.resolve("tiny.en", "stt"))  # the production default window
    heard = await stt.transcribe(audio)
    assert word_recall(text, heard.text) >= 0.9, heard.text


@pytest.mark.slow
async def test_piper_close_stops_after_current_sentence() -> None:
    from voxline.engines.tts_piper import PiperTTS

    tts = PiperTTS(ModelCatalog().resolve("piper-joe", "tts"))
    synthesize, synthesize_sentences = tts._synthesize, tts._voice.synthesize
    started_after_stop: list[bool] = []

    def watched(text: str, stop: threading.Event) -> Iterator[AudioChunk]:
        def sentences(*args: Any) -> Iterator[Any]:
            pieces = iter(synthesize_sentences(*args))
            while True:
                started_after_stop.append(stop.is_set())  # piper starts the next sentence here
                piece = next(pieces, None)
                if piece is None:
                    started_after_stop.pop()
                    return
                yield piece

        tts._voice.synthesize = sentences
        return synthesize(text, stop)

    tts._synthesize = watched  # type: ignore[method-assign]
    stream = tts.stream("One. Two. Three. Four. Five. Six. Seven. Eight.")
    async for _ in stream:
        break
    await stream.aclose()  # type: ignore[attr-defined]
    # aclose() waits for the worker: the sentence under way may finish, no later one begins
    assert started_after_stop.count(True) == 0, started_after_stop
    assert 1 <= len(started_after_stop) < 8
    tts._synthesize, tts._voice.synthesize = synthesize, synthesize_sentences  # type: ignore[method-assign]
    assert [c async for c in tts.stream("Yes.")]
