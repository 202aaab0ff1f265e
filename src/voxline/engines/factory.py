"""Builds an agent's engines from its config, resolving models through the catalog.

Every model is resolved before any is loaded, so a missing one fails in milliseconds with a message
that says what to install, not after whisper and the LLM have spent seconds loading.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from voxline.agent.config import AgentConfig, LLMConfig, STTConfig, VoiceConfig
from voxline.engines.base import LLM, STT, TTS, Engines, ModelNotInstalledError, ToolSpec
from voxline.engines.catalog import ModelCatalog, is_remote_reference

log = logging.getLogger(__name__)

# faster-whisper size names it can fetch itself (online users only; never used for catalog names).
_WHISPER_SIZES = {
    "tiny",
    "base.en",
    "small",
    "small.en",
    "medium",
    "medium.en",
    "large-v1",
    "large-v2",
    "large-v3",
    "large",
    "distil-large-v3",
    "large-v3-turbo",
    "turbo",
}


def _need_url(section: str, base_url: str | None) -> str:
    if not base_url:
        raise ModelNotInstalledError(f"{section}.engine 'openai' needs {section}.base_url")
    return base_url


def _stt_model(catalog: ModelCatalog, cfg: STTConfig) -> Path | str:
    if catalog.find(cfg.model, "stt") is None and (
        cfg.model in _WHISPER_SIZES or is_remote_reference(cfg.model)
    ):
        return cfg.model
    return catalog.resolve(cfg.model, "stt")


def _llm_model(catalog: ModelCatalog, cfg: LLMConfig) -> Path | str:
    return catalog.resolve_reference(cfg.model, "llm")


def _voice_model(catalog: ModelCatalog, cfg: VoiceConfig) -> Path | str:
    if cfg.engine == "piper":
        return catalog.resolve(cfg.voice, "tts")
    if cfg.engine == "espeak":
        catalog.resolve("espeak-ng", "tts")  # only checks the binary is there
    return cfg.voice


def _build_tts(cfg: VoiceConfig, model: Path | str, section: str) -> TTS:
    if cfg.engine == "piper":
        from voxline.engines.tts_piper import PiperTTS

        return PiperTTS(Path(model), speed=cfg.speed)
    if cfg.engine == "espeak":
        from voxline.engines.tts_espeak import EspeakTTS

        return EspeakTTS(cfg.voice, speed=cfg.speed)
    from voxline.engines.tts_openai import OpenAITTS

    return OpenAITTS(_need_url(section, cfg.base_url), voice=cfg.voice, api_key=cfg.api_key, speed=cfg.speed)


def build_engines(agent: AgentConfig, catalog: ModelCatalog | None = None) -> Engines:
    catalog = catalog or ModelCatalog()

    # 1. resolve everything (cheap), failing fast
    try:
        vad_path = catalog.resolve("silero-vad", "vad")
        stt_model = _stt_model(catalog, agent.stt) if agent.stt.engine == "whisper" else agent.stt.model
        llm_model = _llm_model(catalog, agent.llm) if agent.llm.engine == "llama_cpp" else agent.llm.model
        voice_model = _voice_model(catalog, agent.voice)
    except ModelNotInstalledError as exc:
        raise ModelNotInstalledError(f"agent {agent.name!r}: {exc}") from exc
    fallback_model: Path | str | None
    try:
        fallback_model = _voice_model(catalog, agent.fallback_voice)
    except ModelNotInstalledError as exc:  # a fallback voice is a nicety: run without it
        log.warning("fallback voice unavailable: %s", exc)
        fallback_model = None

    # 2. load
    from voxline.engines.vad_silero import SileroVAD

    stt: STT
    if agent.stt.engine == "whisper":
        from voxline.engines.stt_whisper import WhisperSTT

        stt = WhisperSTT(stt_model, beam_size=agent.stt.beam_size, name=agent.stt.model)
    else:
        from voxline.engines.stt_openai import OpenAISTT

        stt = OpenAISTT(_need_url("stt", agent.stt.base_url), agent.stt.model, api_key=agent.stt.api_key)

    llm = _load_llm(agent, llm_model)

    fallback = (
        None if fallback_model is None else _build_tts(agent.fallback_voice, fallback_model, "fallback_voice")
    )
    return Engines(
        vad=SileroVAD(vad_path),
        stt=stt,
        llm=llm,
        tts=_build_tts(agent.voice, voice_model, "voice"),
        fallback_tts=fallback,
    )


def build_llm(agent: AgentConfig, catalog: ModelCatalog | None = None) -> LLM:
    """Only the agent's LLM (for the text console)."""
    catalog = catalog or ModelCatalog()
    local = agent.llm.engine == "llama_cpp"
    return _load_llm(agent, _llm_model(catalog, agent.llm) if local else agent.llm.model)


def _load_llm(agent: AgentConfig, llm_model: Path | str) -> LLM:
    if agent.llm.engine == "llama_cpp":
        from voxline.engines.llm_llamacpp import LlamaCppLLM

        return LlamaCppLLM(
            llm_model,
            n_ctx=agent.llm.context_tokens,
            n_threads=agent.llm.threads or 2,
            temperature=agent.llm.temperature,
        )
    else:
        from voxline.engines.llm_openai import OpenAIChatLLM

        llm = OpenAIChatLLM(
            _need_url("llm", agent.llm.base_url),
            agent.llm.model,
            api_key=agent.llm.api_key,
            temperature=agent.llm.temperature,
        )

    return llm


async def warm_up(engines: Engines, system_prompt: str, tools: Sequence[ToolSpec] = ()) -> None:
    """Load everything into memory/caches before the first call: whisper's first run, the LLM's
    system prompt KV cache, and the voices. Run one after another: on a small CPU, in parallel they
    would only slow each other down."""
    await engines.stt.warm_up()
    await engines.llm.warm_up(system_prompt, tools)
    for tts in (engines.tts, engines.fallback_tts):
        if tts is not None:
            await tts.warm_up()
