"""Which models an agent needs from the speech server, named by a key both sides compute.

The node's supervisor gives the server the specs of every agent it serves; a job computes the same
keys from its own agent and asks for them by key. A spec holds only what loading the model needs
(no secrets), so it can travel to the server in a file. Agents whose STT or voice has the same spec
share one loaded model.

Only engines that load a model into memory go to the server: whisper, Piper and Kokoro. espeak-ng and
festival are a process per sentence with nothing to share, and the OpenAI-compatible engines are
already remote, so a job runs those itself; that also keeps the default fallback voice (espeak-ng)
speaking when the speech server has crashed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from voxline.agent.config import AgentConfig, VoiceConfig
from voxline.engines.base import STT, TTS
from voxline.engines.catalog import ModelCatalog

ModelKind = Literal["stt", "tts"]

SERVED_VOICE_ENGINES = ("piper", "kokoro")


@dataclass(frozen=True, slots=True)
class ModelSpec:
    kind: ModelKind
    config: dict[str, Any]

    @property
    def key(self) -> str:
        canonical = json.dumps([self.kind, self.config], sort_keys=True, separators=(",", ":"))
        return f"{self.kind}-{hashlib.sha256(canonical.encode()).hexdigest()[:16]}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "config": self.config}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        kind = data["kind"]
        if kind not in ("stt", "tts"):
            raise ValueError(f"unknown model kind {kind!r}")
        return cls(kind, dict(data["config"]))


def stt_spec(agent: AgentConfig) -> ModelSpec | None:
    """The agent's whisper, with everything that shapes its transcripts; None for a remote STT."""
    if agent.stt.engine != "whisper":
        return None
    from voxline.engines.factory import whisper_prompts

    return ModelSpec(
        "stt",
        {
            "model": agent.stt.model,
            "beam_size": agent.stt.beam_size,
            "window": agent.stt.window,
            "prompts": whisper_prompts(agent),
        },
    )


def voice_spec(voice: VoiceConfig) -> ModelSpec | None:
    """A voice that loads a model (Piper, Kokoro); None for the ones a job runs itself."""
    if voice.engine not in SERVED_VOICE_ENGINES:
        return None
    return ModelSpec("tts", voice.model_dump(mode="json", exclude={"base_url", "api_key"}))


def agent_specs(agent: AgentConfig) -> list[ModelSpec]:
    """Every model of `agent` the server loads, without duplicates."""
    found = [stt_spec(agent), voice_spec(agent.voice), voice_spec(agent.fallback_voice)]
    found += [voice_spec(v) for v in agent.voices.values()]
    return unique_specs(s for s in found if s is not None)


def unique_specs(specs: Any) -> list[ModelSpec]:
    seen: dict[str, ModelSpec] = {}
    for spec in specs:
        seen.setdefault(spec.key, spec)
    return list(seen.values())


def node_specs(agents: Sequence[AgentConfig]) -> list[ModelSpec]:
    return unique_specs(spec for agent in agents for spec in agent_specs(agent))


def load_model(spec: ModelSpec, catalog: ModelCatalog | None = None) -> STT | TTS:
    """Load one model (blocking: seconds for whisper or Kokoro). Runs in the server process only."""
    catalog = catalog or ModelCatalog()
    if spec.kind == "stt":
        from voxline.agent.config import STTConfig
        from voxline.engines.factory import _stt_model
        from voxline.engines.stt_whisper import WhisperSTT

        cfg = spec.config
        model = _stt_model(catalog, STTConfig(model=cfg["model"]))
        return WhisperSTT(
            model,
            beam_size=int(cfg["beam_size"]),
            name=str(cfg["model"]),
            prompts=cfg["prompts"],
            window=str(cfg["window"]),
        )
    from voxline.engines.voices import build_tts

    return build_tts(VoiceConfig.model_validate(spec.config), catalog, "voice")
