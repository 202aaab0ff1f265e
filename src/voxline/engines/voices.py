"""Builds text-to-speech voices from their config: one per engine (piper, espeak, openai, kokoro,
festival), and the per-language voices of a multilingual agent.

Every voice's model is resolved before any is loaded, so a missing one fails in milliseconds with a
message that says what to install and which config field asked for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from voxline.agent.config import AgentConfig, VoiceConfig
from voxline.engines.base import TTS, ModelNotInstalledError
from voxline.engines.catalog import ModelCatalog
from voxline.language import registry

KOKORO_MODEL = "kokoro-82m"
KOKORO_DEFAULT_STYLE = "jf_alpha"
"""Only Japanese styles ship on PyPI; with `lang` "hi" or "en-us" they still speak intelligibly."""
# A language's own voice per engine is in its module (voxline.language.languages: `default_voices`),
# e.g. Hindi's kokoro style jf_gongitsune and festival's Debian NSK voices for Hindi and Marathi.

_DEFAULT_VOICE = VoiceConfig().voice  # piper's voice name: means "unset" for the other engines


@dataclass(frozen=True, slots=True)
class _Resolved:
    """What loading a voice needs once its model is known to be there."""

    config: VoiceConfig
    field: str
    model: Path | None = None
    name: str = ""


def build_tts(config: VoiceConfig, catalog: ModelCatalog, field: str = "voice") -> TTS:
    """One voice. `field` names the config entry in error messages (e.g. "voices.hi")."""
    return _load(_resolve(config, catalog, field))


def build_voices(agent: AgentConfig, catalog: ModelCatalog) -> dict[str, TTS]:
    """Language → voice, one per entry of `agent.voices`; all resolved before any is loaded."""
    resolved = {lang: _resolve(cfg, catalog, f"voices.{lang}") for lang, cfg in agent.voices.items()}
    return {lang: _load(item) for lang, item in resolved.items()}


def festival_voice_name(config: VoiceConfig) -> str:
    """The festival voice a config means: a language code ("hi"), a voice name with or without
    festival's `voice_` prefix, or — with the voice left unset — the voice for `lang`."""
    voice = config.voice
    if voice == _DEFAULT_VOICE and config.lang:
        voice = config.lang
    voice = default_voice("festival", voice) or voice
    return voice.removeprefix("voice_")


def kokoro_style(config: VoiceConfig) -> str:
    """The configured style, or with the voice left unset the best one for `lang`."""
    if config.voice != _DEFAULT_VOICE:
        return config.voice
    return default_voice("kokoro", config.lang) or KOKORO_DEFAULT_STYLE


def default_voice(engine: str, language: str | None) -> str | None:
    """The voice `engine` speaks `language` (a code exactly as registered: "hi") with, or None."""
    known = registry.find(language)
    return known.default_voices.get(engine) if known is not None else None


def _resolve(config: VoiceConfig, catalog: ModelCatalog, field: str) -> _Resolved:
    try:
        if config.engine == "piper":
            return _Resolved(config, field, model=catalog.resolve(config.voice, "tts"))
        if config.engine == "espeak":
            catalog.resolve("espeak-ng", "tts")  # only checks the binary is there
            return _Resolved(config, field)
        if config.engine == "kokoro":
            return _Resolved(config, field, model=catalog.resolve(KOKORO_MODEL, "tts"))
        if config.engine == "festival":
            name = festival_voice_name(config)
            # a voice the catalog knows is checked with its apt package; any other only needs festival
            catalog.resolve(name if catalog.find(name, "tts") else "festival", "tts")
            return _Resolved(config, field, name=name)
        if not config.base_url:
            raise ModelNotInstalledError(f"engine 'openai' needs {field}.base_url")
        return _Resolved(config, field)
    except ModelNotInstalledError as exc:
        raise ModelNotInstalledError(f"{field} ({config.engine}): {exc}") from exc


def _load(item: _Resolved) -> TTS:
    cfg = item.config
    if cfg.engine == "piper":
        from voxline.engines.tts_piper import PiperTTS

        assert item.model is not None
        return PiperTTS(item.model, speed=cfg.speed)
    if cfg.engine == "espeak":
        from voxline.engines.tts_espeak import EspeakTTS

        return EspeakTTS(cfg.voice, speed=cfg.speed)
    if cfg.engine == "kokoro":
        from voxline.engines.tts_kokoro import KokoroTTS

        assert item.model is not None
        return KokoroTTS.from_folder(
            item.model, voice=kokoro_style(cfg), lang=cfg.lang or "en-us", speed=cfg.speed
        )
    if cfg.engine == "festival":
        from voxline.engines.tts_festival import FestivalTTS

        return FestivalTTS(item.name, speed=cfg.speed)
    from voxline.engines.tts_openai import OpenAITTS

    assert cfg.base_url is not None
    return OpenAITTS(cfg.base_url, voice=cfg.voice, api_key=cfg.api_key, speed=cfg.speed)
