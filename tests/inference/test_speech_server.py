"""The speech inference process with real models (whisper tiny.en and base, Piper), supervised like
the node supervises it, against the same engines in process."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Iterator

import pytest

from speech import prompt, transcripts, word_recall
from voxline.agent.config import AgentConfig, LanguagesConfig, STTConfig, VoiceConfig
from voxline.audio.pcm import AudioChunk
from voxline.audio.wav import read_wav
from voxline.engines.base import EngineError, Engines
from voxline.engines.catalog import ModelCatalog
from voxline.engines.stt_whisper import WhisperSTT
from voxline.engines.tts_espeak import EspeakTTS
from voxline.engines.tts_piper import PiperTTS
from voxline.engines.vad_silero import SileroVAD
from voxline.inference.client import RemoteSpeech, RemoteSTT, RemoteTTS, remote_engines
from voxline.inference.models import voice_spec
from voxline.inference.supervisor import SpeechServer

pytestmark = pytest.mark.slow

ENGLISH = AgentConfig()  # tiny.en, Piper joe, espeak-ng fallback
AUTO = AgentConfig(
    name="two languages",
    stt=STTConfig(model="base"),
    languages=LanguagesConfig(mode="auto", allowed=["en", "hi"]),
    voices={"hi": VoiceConfig(engine="espeak", voice="hi")},
)
TURNS = ["vm-sorry", "followme/pls-hold-while-try", "cannot-complete-as-dialed"]


class _NoLLM:
    """Engines needs an LLM; these tests never call it."""

    name = "none"
    busy = False

    def stream(self, *args: object, **kwargs: object) -> AsyncIterator[object]:
        raise AssertionError("not used")

    async def warm_up(self, *args: object, **kwargs: object) -> None:
        return None

    def count_tokens(self, text: str) -> int:
        return len(text.split())


@pytest.fixture(scope="module")
def server() -> Iterator[SpeechServer]:
    srv = SpeechServer([ENGLISH, AUTO])
    srv.start()
    yield srv
    srv.stop()


async def engines_for(agent: AgentConfig, server: SpeechServer) -> Engines:
    vad = SileroVAD(ModelCatalog().resolve("silero-vad", "vad"))
    return await remote_engines(agent, server.endpoint, vad=vad, llm=_NoLLM(), restart_wait_s=120.0)  # type: ignore[arg-type]


def turn(name: str) -> AudioChunk:
    return read_wav(prompt(name))


async def test_one_server_serves_both_agents_engines(server: SpeechServer) -> None:
    english, auto = await engines_for(ENGLISH, server), await engines_for(AUTO, server)
    assert isinstance(english.stt, RemoteSTT) and isinstance(english.tts, RemoteTTS)
    assert not english.stt.multilingual and auto.stt.multilingual
    assert english.tts.sample_rate == 22050
    # the cheap voices run in the job: the fallback line is still spoken while the server restarts
    assert isinstance(english.fallback_tts, EspeakTTS)
    assert isinstance(auto.voices["hi"], EspeakTTS)
    assert auto.lid is not None and english.lid is None
    # the two agents' Piper voice is one model on the server: three models, not four
    assert len(server.describe()["models"]) == 3


async def test_transcripts_equal_the_in_process_whisper(server: SpeechServer) -> None:
    remote = (await engines_for(ENGLISH, server)).stt
    local = WhisperSTT(ModelCatalog().resolve("tiny.en", "stt"), name="tiny.en")
    for name in TURNS:
        audio = turn(name)
        there, here = await remote.transcribe(audio, "en"), await local.transcribe(audio, "en")
        assert there.text == here.text
        assert word_recall(transcripts()[name], there.text) >= 0.8


async def test_language_and_transcript_equal_the_in_process_whisper(server: SpeechServer) -> None:
    engines = await engines_for(AUTO, server)
    remote = engines.stt
    assert isinstance(remote, RemoteSTT)
    from voxline.engines.factory import whisper_prompts

    local = WhisperSTT(ModelCatalog().resolve("base", "stt"), name="base", prompts=whisper_prompts(AUTO))
    audio = turn("vm-sorry")
    (there, there_guess), (here, here_guess) = (
        await remote.transcribe_with_language(audio, ["en", "hi"]),
        await local.transcribe_with_language(audio, ["en", "hi"]),
    )
    assert there.text == here.text and there.language == here.language == "en"
    assert there_guess.language == "en"
    assert there_guess.probabilities == pytest.approx(here_guess.probabilities, abs=1e-3)
    assert engines.lid is not None
    assert (await engines.lid.identify(audio)).language == "en"


async def test_synthesis_sounds_like_the_in_process_voice(server: SpeechServer) -> None:
    remote = (await engines_for(ENGLISH, server)).tts
    local = PiperTTS(ModelCatalog().resolve("en_US-joe-medium", "tts"))
    # plain words: Piper's noise makes "a new one" "anyone" and "five" "5" on some renders
    text = "Thank you for calling the bank. Your card is blocked now, and we will post you another."
    there = AudioChunk.concat([c async for c in remote.stream(text)])
    here = AudioChunk.concat([c async for c in local.stream(text)])
    assert there.sample_rate == here.sample_rate == 22050
    # Piper samples noise on every call: the same words, not the same samples
    assert there.duration_s == pytest.approx(here.duration_s, rel=0.15)
    heard = await WhisperSTT(ModelCatalog().resolve("tiny.en", "stt"), name="tiny.en").transcribe(there, "en")
    assert word_recall(text, heard.text) >= 0.8


async def test_two_clients_at_once(server: SpeechServer) -> None:
    first, second = await engines_for(ENGLISH, server), await engines_for(ENGLISH, server)
    a, b = turn(TURNS[0]), turn(TURNS[1])

    async def speak(engines: Engines, text: str) -> AudioChunk:
        return AudioChunk.concat([c async for c in engines.tts.stream(text)])

    heard_a, heard_b, said_a, said_b = await asyncio.gather(
        first.stt.transcribe(a, "en"),
        second.stt.transcribe(b, "en"),
        speak(first, "Hello, how can I help?"),
        speak(second, "Please hold the line."),
    )
    assert word_recall(transcripts()[TURNS[0]], heard_a.text) >= 0.8
    assert word_recall(transcripts()[TURNS[1]], heard_b.text) >= 0.8
    assert said_a.duration_s > 0.5 and said_b.duration_s > 0.5


async def test_a_killed_server_fails_the_request_in_flight_and_serves_the_next(server: SpeechServer) -> None:
    engines = await engines_for(ENGLISH, server)
    old_pid = server.pid
    assert old_pid is not None
    restarts = server.restarts
    long_text = " ".join(["This sentence keeps the voice busy for a while."] * 12)
    stream = engines.tts.stream(long_text)
    with pytest.raises(EngineError, match="speech server"):
        async for _ in stream:
            os.kill(old_pid, signal.SIGKILL)  # mid-synthesis: the first audio has arrived
    for _ in range(500):  # until the watchdog has seen it die (a request sent before may fail too)
        if not server.ready:
            break
        await asyncio.sleep(0.02)
    # the next request waits for the watchdog's restart and is served by the new process
    heard = await engines.stt.transcribe(turn(TURNS[0]), "en")
    assert word_recall(transcripts()[TURNS[0]], heard.text) >= 0.8
    assert server.restarts == restarts + 1 and server.pid != old_pid


async def test_a_language_voice_on_the_server_speaks_as_the_one_in_process() -> None:
    """Per-language voices (here Kokoro speaking Hindi) are served like the agent's main voice."""
    from voxline.engines.voices import build_tts

    hindi = AgentConfig(
        language="en",
        languages=LanguagesConfig(mode="on_request", allowed=["en", "hi"]),
        stt=STTConfig(model="base"),
        voices={"hi": VoiceConfig(engine="kokoro", lang="hi")},
    )
    spec = voice_spec(hindi.voices["hi"])
    assert spec is not None
    server = SpeechServer(specs=[spec])
    await asyncio.to_thread(server.start)
    try:
        # the agent's whisper and Piper are not on this server: remote_engines says so
        with pytest.raises(EngineError, match="does not serve its stt"):
            await remote_engines(hindi, server.endpoint, vad=None, llm=_NoLLM(), restart_wait_s=5)  # type: ignore[arg-type]
        remote = RemoteTTS(RemoteSpeech(server.endpoint), spec.key, name="kokoro", sample_rate=24000)
        local = build_tts(hindi.voices["hi"], ModelCatalog(), "voices.hi")
        text = "नमस्ते, मैं आपकी कैसे मदद कर सकती हूँ?"
        there = AudioChunk.concat([c async for c in remote.stream(text)])
        here = AudioChunk.concat([c async for c in local.stream(text)])
        assert there.sample_rate == here.sample_rate == 24000
        assert there.duration_s == pytest.approx(here.duration_s, rel=0.05) and there.duration_s > 1.0
    finally:
        await asyncio.to_thread(server.stop)
