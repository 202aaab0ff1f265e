"""Builds an agent's engines from its config, resolving models through the catalog.

Every model is resolved before any is loaded, so a missing one fails in milliseconds with a message
that says what to install, not after whisper and the LLM have spent seconds loading.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from voxline.agent.config import AgentConfig, LLMConfig, STTConfig
from voxline.engines.base import (
    LLM,
    STT,
    TTS,
    EngineError,
    Engines,
    LanguageIdentifier,
    ModelNotInstalledError,
    ToolSpec,
)
from voxline.engines.catalog import ModelCatalog, is_remote_reference
from voxline.engines.voices import build_tts, build_voices

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


def _check_stt_languages(agent: AgentConfig) -> None:
    """An English-only whisper would transcribe Hindi or Marathi callers as English gibberish."""
    others = sorted(set(agent.spoken_languages) - {"en"})
    if others and agent.stt.model.lower().endswith(".en"):
        raise EngineError(
            f"agent {agent.name!r} speaks {', '.join(others)} but stt.model {agent.stt.model!r} is "
            "English-only: set `stt: {model: base}` (or a larger multilingual whisper)"
        )


def _candidates(agent: AgentConfig) -> list[str]:
    return list(agent.spoken_languages)


def _build_lid(agent: AgentConfig, stt: STT) -> LanguageIdentifier | None:
    """Only `auto` calls identify every turn. Whisper's detector shares the STT's loaded model; a
    remote STT reports the language it heard itself (see OpenAISTT.transcribe_with_language)."""
    if agent.languages.mode != "auto":
        return None
    from voxline.engines.stt_whisper import WhisperSTT

    if isinstance(stt, WhisperSTT):
        from voxline.engines.lid_whisper import WhisperLanguageIdentifier

        return WhisperLanguageIdentifier(stt, _candidates(agent))
    return None


def resolve_models(
    agent: AgentConfig, catalog: ModelCatalog | None = None
) -> tuple[Path, Path | str, Path | str]:
    """The agent's VAD, STT and LLM models, resolved without loading anything (cheap): a model that
    is missing raises ModelNotInstalledError naming the agent and what to install."""
    catalog = catalog or ModelCatalog()
    _check_stt_languages(agent)
    try:
        vad_path = catalog.resolve("silero-vad", "vad")
        stt_model = _stt_model(catalog, agent.stt) if agent.stt.engine == "whisper" else agent.stt.model
        llm_model = _llm_model(catalog, agent.llm) if _local_llm(agent.llm) else agent.llm.model
    except ModelNotInstalledError as exc:
        raise ModelNotInstalledError(f"agent {agent.name!r}: {exc}") from exc
    return vad_path, stt_model, llm_model


def build_engines(agent: AgentConfig, catalog: ModelCatalog | None = None) -> Engines:
    catalog = catalog or ModelCatalog()
    # 1. resolve the big models (cheap), failing fast
    vad_path, stt_model, llm_model = resolve_models(agent, catalog)

    # 2. voices next: they load in well under a second, so a missing one still fails before whisper
    # and the LLM spend seconds loading
    try:
        tts = build_tts(agent.voice, catalog, "voice")
        voices = build_voices(agent, catalog)
    except ModelNotInstalledError as exc:
        raise ModelNotInstalledError(f"agent {agent.name!r}: {exc}") from exc
    fallback: TTS | None
    try:
        fallback = build_tts(agent.fallback_voice, catalog, "fallback_voice")
    except ModelNotInstalledError as exc:  # a fallback voice is a nicety: run without it
        log.warning("fallback voice unavailable: %s", exc)
        fallback = None

    # 3. load
    from voxline.engines.vad_silero import SileroVAD

    stt: STT
    if agent.stt.engine == "whisper":
        from voxline.engines.stt_whisper import WhisperSTT

        stt = WhisperSTT(
            stt_model,
            beam_size=agent.stt.beam_size,
            name=agent.stt.model,
            prompts=whisper_prompts(agent),
            window=agent.stt.window,
        )
    else:
        from voxline.engines.stt_openai import OpenAISTT

        stt = OpenAISTT(_need_url("stt", agent.stt.base_url), agent.stt.model, api_key=agent.stt.api_key)

    llm = _load_llm(agent, llm_model)
    return Engines(
        vad=SileroVAD(vad_path),
        stt=stt,
        llm=llm,
        tts=tts,
        fallback_tts=fallback,
        voices=voices,
        lid=_build_lid(agent, stt),
    )


def whisper_prompts(agent: AgentConfig) -> dict[str, str] | None:
    """Whisper's decoder prompts for this agent: primed with how each language is asked for when a
    request switches the call (on_request and auto mode); None keeps whisper's built-in ones."""
    if agent.languages.mode not in ("on_request", "auto"):
        return None
    from voxline.language.registry import default_stt_prompts
    from voxline.language.requests import request_priming_prompts

    return request_priming_prompts(agent.spoken_languages, default_stt_prompts())


def build_llm(agent: AgentConfig, catalog: ModelCatalog | None = None) -> LLM:
    """Only the agent's LLM (for the text console)."""
    catalog = catalog or ModelCatalog()
    local = _local_llm(agent.llm)
    return _load_llm(agent, _llm_model(catalog, agent.llm) if local else agent.llm.model)


def _local_llm(cfg: LLMConfig) -> bool:
    """Engines that load a catalog model on this node."""
    return cfg.engine in ("llama_cpp", "llama_server")


def _load_llm(agent: AgentConfig, llm_model: Path | str) -> LLM:
    if agent.llm.engine == "llama_cpp":
        from voxline.engines.llm_llamacpp import LlamaCppLLM

        return LlamaCppLLM(
            llm_model,
            n_ctx=agent.llm.context_tokens,
            n_threads=agent.llm.threads or 2,
            temperature=agent.llm.temperature,
            constrain_tool_calls=agent.llm.constrain_tool_calls,
        )
    elif agent.llm.engine == "llama_server":
        if not isinstance(llm_model, Path):
            raise ModelNotInstalledError(f"llm.engine 'llama_server' needs a local model, not {llm_model!r}")
        from voxline.engines.llama_server import LlamaServerLLM, shared_llama_server

        server = shared_llama_server(
            llm_model,
            parallel=agent.llm.slots,
            ctx_per_slot=agent.llm.context_tokens,
            threads=agent.llm.threads or 2,
        )
        return LlamaServerLLM(server, agent.llm.model, temperature=agent.llm.temperature)
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
    for tts in (engines.tts, engines.fallback_tts, *engines.voices.values()):
        if tts is not None:
            await tts.warm_up()
