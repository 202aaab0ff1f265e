"""Speech through the node's speech server against the same engines in process: what the server adds
to a caller's STT turn and to TTS time to first audio, and what two STT requests at once cost
(queued on the server, and what batching them in CTranslate2 would give).

    PYTHONPATH=src .venv/bin/python scripts/bench_speech_server.py --runs 20

Runs alternate in process / server, so machine load falls on both alike; the load average is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np

from voxline.agent.config import AgentConfig, STTConfig
from voxline.audio.pcm import AudioChunk
from voxline.audio.wav import read_wav
from voxline.bench.utterances import ALLISON
from voxline.engines.base import STT, TTS, Engines
from voxline.engines.catalog import ModelCatalog
from voxline.engines.factory import whisper_prompts
from voxline.engines.stt_whisper import WhisperSTT
from voxline.engines.tts_piper import PiperTTS
from voxline.engines.vad_silero import SileroVAD
from voxline.inference.client import remote_engines
from voxline.inference.supervisor import SpeechServer

UTTERANCE = "cannot-complete-as-dialed"  # 2.6 s, "Your call cannot be completed as dialed."
SECOND = "check-number-dial-again"  # 2.2 s
SENTENCE = "Thanks for calling Northwind Bank. How can I help you today?"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def show(label: str, values: list[float]) -> None:
    p50, p95 = statistics.median(values), pct(values, 0.95)
    print(f"  {label:<34} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   (n={len(values)})")


def variant(audio: AudioChunk, run: int) -> AudioChunk:
    """The same turn with one sample nudged: WhisperSTT keeps the last window's encoder output
    (keyed by the audio), and a benchmark that sent identical audio would time only the decoder."""
    samples = audio.samples.copy()
    samples[-1 - run % len(samples)] ^= 1
    return AudioChunk(samples, audio.sample_rate)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def timed(work: Callable[[], Awaitable[Any]], outside: list[float] | None = None) -> float:
    """Wall time of `work`; with `outside`, also appends the part spent outside the model (the wall
    time less the transcript's compute_ms: thread hand-offs, and on the server the socket)."""
    started = time.perf_counter()
    result = await work()
    wall = (time.perf_counter() - started) * 1000.0
    if outside is not None:
        outside.append(wall - result.compute_ms)
    return wall


async def first_audio_ms(tts: TTS, text: str) -> float:
    started = time.perf_counter()
    stream = tts.stream(text)
    first = 0.0
    async for _ in stream:
        if not first:
            first = (time.perf_counter() - started) * 1000.0
    return first


class _NoLLM:
    name = "none"
    busy = False

    def stream(self, *args: object, **kwargs: object) -> Any:
        raise NotImplementedError

    async def warm_up(self, *args: object, **kwargs: object) -> None:
        return None

    def count_tokens(self, text: str) -> int:
        return 0


async def bench(agent: AgentConfig, runs: int) -> None:
    catalog = ModelCatalog()
    audio = read_wav(ALLISON / f"{UTTERANCE}.wav")
    second = read_wav(ALLISON / f"{SECOND}.wav")
    print(f"load average at start: {load()}  (cores: {os.cpu_count()})")

    started = time.perf_counter()
    server = SpeechServer([agent])
    await asyncio.to_thread(server.start)
    print(f"speech server started in {time.perf_counter() - started:.1f} s (models loaded and warmed)")
    try:
        vad = SileroVAD(catalog.resolve("silero-vad", "vad"))
        remote: Engines = await remote_engines(agent, server.endpoint, vad=vad, llm=_NoLLM())  # type: ignore[arg-type]
        local_stt: STT = WhisperSTT(
            catalog.resolve(agent.stt.model, "stt"), name=agent.stt.model, prompts=whisper_prompts(agent)
        )
        local_tts: TTS = PiperTTS(catalog.resolve(agent.voice.voice, "tts"))
        await local_stt.warm_up()
        await local_tts.warm_up()

        stt_local, stt_remote, tts_local, tts_remote = [], [], [], []
        outside_local: list[float] = []
        outside_remote: list[float] = []
        pings = [await timed(lambda: remote.stt.warm_up()) for _ in range(runs)]  # one round trip each
        for run in range(runs):
            turn = variant(audio, run)
            stt_local.append(await timed(lambda: local_stt.transcribe(turn, "en"), outside_local))  # noqa: B023
            stt_remote.append(await timed(lambda: remote.stt.transcribe(turn, "en"), outside_remote))  # noqa: B023
            # a new sentence each run: the server replays a sentence it has already said
            sentence = f"{SENTENCE} You are caller number {run + 1}."
            tts_local.append(await first_audio_ms(local_tts, sentence))
            tts_remote.append(await first_audio_ms(remote.tts, sentence))
        replayed = [await first_audio_ms(remote.tts, SENTENCE) for _ in range(runs + 1)][1:]
        print(f"\nSTT, {audio.duration_s:.1f} s utterance ({agent.stt.model}), {runs} runs each:")
        show("in process", stt_local)
        show("speech server", stt_remote)
        show("added (paired run difference)", [r - loc for r, loc in zip(stt_remote, stt_local, strict=True)])
        show("outside the model, in process", outside_local)
        show("outside the model, speech server", outside_remote)
        show("a bare round trip (ping)", pings)
        print(f"\nTTS time to first audio (Piper {agent.voice.voice}), {runs} runs each:")
        show("in process", tts_local)
        show("speech server", tts_remote)
        show("added (paired run difference)", [r - loc for r, loc in zip(tts_remote, tts_local, strict=True)])
        show("a sentence said before (cache)", replayed)

        rounds = max(5, runs // 2)
        first_done, second_done = [], []
        for run in range(rounds):
            started = time.perf_counter()
            done: list[float] = []

            async def one(chunk: AudioChunk) -> None:
                await remote.stt.transcribe(chunk, "en")
                done.append((time.perf_counter() - started) * 1000.0)  # noqa: B023

            await asyncio.gather(one(variant(audio, run)), one(variant(second, run)))
            first_done.append(min(done))
            second_done.append(max(done))
        print(f"\n2 STT requests at once on the server (queued, one at a time), {rounds} rounds:")
        show("first answered", first_done)
        show("second answered", second_done)
        show("mean of the two", [(a + b) / 2 for a, b in zip(first_done, second_done, strict=True)])
    finally:
        await asyncio.to_thread(server.stop)

    batch = await asyncio.to_thread(ctranslate2_batching, agent, audio, second, rounds)
    print(f"\nthe same two turns batched in CTranslate2 (encode + greedy decode), {rounds} rounds:")
    show("one after the other: first done", batch["serial_first"])
    show("one after the other: both done", batch["serial_both"])
    show("batched: both done", batch["batched"])
    print(f"\nload average at the end: {load()}")


def ctranslate2_batching(
    agent: AgentConfig, first: AudioChunk, second: AudioChunk, rounds: int
) -> dict[str, list[float]]:
    """Whisper's encoder and decoder on a batch of two windows against two single runs: what the
    server would gain by batching pending requests (same model, threads and window as WhisperSTT)."""
    import ctranslate2
    from faster_whisper import WhisperModel
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.tokenizer import Tokenizer

    model = WhisperModel(
        str(ModelCatalog().resolve(agent.stt.model, "stt")), device="cpu", compute_type="int8", cpu_threads=2
    )
    extractor = model.feature_extractor

    def features(audio: AudioChunk) -> np.ndarray[Any, Any]:
        f = extractor(audio.to_float32() if audio.sample_rate == 16000 else _16k(audio))
        return pad_or_trim(f[:, : min(f.shape[-1] - 1, extractor.nb_max_frames)], extractor.nb_max_frames)

    a, b = features(first), features(second)
    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language="en")
    prompt = model.get_prompt(tokenizer, [], without_timestamps=True)

    def run(batch: list[np.ndarray[Any, Any]]) -> Any:
        encoded = model.model.encode(ctranslate2.StorageView.from_array(np.stack(batch)), to_cpu=False)
        return model.model.generate(encoded, [prompt] * len(batch), beam_size=1, max_length=len(prompt) + 96)

    run([a])
    out: dict[str, list[float]] = {"serial_first": [], "serial_both": [], "batched": []}
    for _ in range(rounds):
        started = time.perf_counter()
        one = run([a])
        out["serial_first"].append((time.perf_counter() - started) * 1000.0)
        two = run([b])
        out["serial_both"].append((time.perf_counter() - started) * 1000.0)
        started = time.perf_counter()
        both = run([a, b])
        out["batched"].append((time.perf_counter() - started) * 1000.0)
        assert both[0].sequences_ids == one[0].sequences_ids and both[1].sequences_ids == two[0].sequences_ids
    return out


def _16k(audio: AudioChunk) -> np.ndarray[Any, Any]:
    from voxline.audio.resample import resample

    return resample(audio, 16000).to_float32()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--stt-model", default="tiny.en", help="whisper catalog name (tiny.en, base)")
    args = parser.parse_args()
    if not Path(ALLISON).exists():
        print(f"{ALLISON} missing: apt-get install asterisk-core-sounds-en-wav", file=sys.stderr)
        return 1
    asyncio.run(bench(AgentConfig(stt=STTConfig(model=args.stt_model)), args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
