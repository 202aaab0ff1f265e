"""`voxline doctor`: proves this machine can run the given agents by speaking with every voice.

Finding a model's files is not enough: a festival voice whose language package is missing resolves
fine and fails only when it first speaks (festival loads the phone set then). So each voice an agent
uses is loaded and made to say one short line, and each model it names is resolved. A failure names
what to install. Setup runs this after the models are assembled, so a machine that lacks something
fails there, with that message, instead of deep inside a test or at a call's warm-up.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from voxline.agent.config import AgentConfig, VoiceConfig
from voxline.audio.levels import speech_end_s, speech_start_s
from voxline.audio.pcm import AudioChunk
from voxline.engines.base import EngineError, ModelNotInstalledError
from voxline.engines.catalog import Kind, ModelCatalog
from voxline.engines.voices import build_tts
from voxline.language import registry

MIN_SPEECH_S = 0.3
"""Shorter than any language's `sample_line` takes to say: less means the voice produced noise or
nothing."""


def sample_line(language: str) -> str:
    """The short sentence a voice for `language` is checked with ("" for a language with none)."""
    known = registry.find(language)
    return known.sample_line if known is not None else ""


@dataclass(frozen=True, slots=True)
class VoiceToCheck:
    label: str  # where it was asked for, e.g. "bank.yaml: voices.hi"
    config: VoiceConfig
    language: str


@dataclass(frozen=True, slots=True)
class Check:
    label: str
    ok: bool
    detail: str
    seconds: float


def agent_voices(agent: AgentConfig, source: str) -> list[VoiceToCheck]:
    """Every voice an agent can speak with: its own, one per language, and the fallback."""
    voices = [VoiceToCheck(f"{source}: voice", agent.voice, agent.language)]
    voices += [VoiceToCheck(f"{source}: voices.{lang}", cfg, lang) for lang, cfg in agent.voices.items()]
    voices.append(VoiceToCheck(f"{source}: fallback_voice", agent.fallback_voice, agent.language))
    return voices


def parse_voice(spec: str) -> VoiceToCheck:
    """`ENGINE:VOICE[:LANG]`, e.g. `festival:mr` or `kokoro:jf_gongitsune:hi`."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"voice {spec!r}: expected ENGINE:VOICE or ENGINE:VOICE:LANG")
    engine, voice = parts[0], parts[1]
    lang = parts[2] if len(parts) == 3 else None
    config = VoiceConfig.model_validate({"engine": engine, "voice": voice, "lang": lang})
    language = (lang or voice if engine == "festival" else lang or "en").split("-")[0]
    return VoiceToCheck(spec, config, language if sample_line(language) else "en")


def distinct(voices: Iterable[VoiceToCheck]) -> list[VoiceToCheck]:
    """One check per distinct voice: the example agents share most of theirs."""
    seen: dict[str, VoiceToCheck] = {}
    for item in voices:
        seen.setdefault(item.config.model_dump_json() + item.language, item)
    return list(seen.values())


async def speak(item: VoiceToCheck, catalog: ModelCatalog) -> Check:
    start = time.monotonic()
    line = sample_line(item.language)
    try:
        tts = build_tts(item.config, catalog, item.label.split(": ")[-1])
        chunks = [chunk async for chunk in tts.stream(line)]
    except (EngineError, OSError) as exc:  # ModelNotInstalledError is an EngineError
        return Check(item.label, False, str(exc), time.monotonic() - start)
    seconds = time.monotonic() - start
    name = tts.name
    if not chunks:
        return Check(item.label, False, f"{name} returned no audio for {line!r}", seconds)
    audio = AudioChunk.concat(chunks)
    start_s, end_s = speech_start_s(audio), speech_end_s(audio)
    spoken = end_s - start_s if start_s is not None and end_s is not None else 0.0
    if spoken < MIN_SPEECH_S:
        return Check(item.label, False, f"{name} gave {spoken:.2f} s of sound for {line!r}", seconds)
    return Check(item.label, True, f"{name} spoke {audio.duration_s:.1f} s", seconds)


def resolve_models(agent: AgentConfig, source: str, catalog: ModelCatalog) -> list[Check]:
    """The agent's local STT and LLM models and the VAD resolve to files (loading them is warm-up's job)."""
    wanted: list[tuple[str, str, Kind]] = [("vad", "silero-vad", "vad")]
    if agent.stt.engine == "whisper":
        wanted.append(("stt.model", agent.stt.model, "stt"))
    if agent.llm.engine == "llama_cpp":
        wanted.append(("llm.model", agent.llm.model, "llm"))
    checks = []
    for field, name, kind in wanted:
        start = time.monotonic()
        try:
            if kind == "llm":
                path = catalog.resolve_reference(name, "llm")
            elif catalog.find(name, kind) is None:
                path = name  # a whisper size or hub id: faster-whisper's business, not the catalog's
            else:
                path = catalog.resolve(name, kind)
            checks.append(Check(f"{source}: {field}", True, str(path), time.monotonic() - start))
        except ModelNotInstalledError as exc:
            checks.append(Check(f"{source}: {field}", False, str(exc), time.monotonic() - start))
    return checks


async def run_checks(
    agents: Sequence[tuple[str, AgentConfig]], extra_voices: Sequence[VoiceToCheck], catalog: ModelCatalog
) -> list[Check]:
    checks: list[Check] = []
    for source, agent in agents:
        checks += resolve_models(agent, source, catalog)
    wanted = [v for source, agent in agents for v in agent_voices(agent, source)]
    voices = distinct([*wanted, *extra_voices])
    for item in voices:
        checks.append(await speak(item, catalog))
    return checks
