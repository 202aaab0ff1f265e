"""The agent YAML schema. Every field has a sane default, so an empty file is a working agent."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class AgentConfigError(ValueError):
    """The agent file is unreadable or invalid; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VADConfig(_Strict):
    engine: Literal["silero"] = "silero"
    threshold: float = Field(0.5, ge=0.05, le=0.95, description="speech probability that starts speech")
    speech_pad_ms: int = Field(200, ge=0, le=1000, description="audio kept before speech onset")


class TurnConfig(_Strict):
    end_of_turn_silence_ms: int = Field(500, ge=100, le=3000, description="silence that ends a turn")
    speculative_pause_ms: int = Field(
        200, ge=0, le=3000, description="caller pause after which STT starts speculatively (0: off)"
    )
    min_speech_ms: int = Field(150, ge=30, le=2000, description="shorter bursts are noise")
    barge_in_min_speech_ms: int = Field(
        250, ge=40, le=3000, description="caller speech during agent speech this long pauses the agent"
    )
    backchannels: list[str] = Field(
        default_factory=lambda: [
            "mm-hm",
            "mhm",
            "mm",
            "uh-huh",
            "okay",
            "ok",
            "yeah",
            "yes",
            "right",
            "sure",
            "i see",
            "hmm",
        ],
        description="words that acknowledge without taking the turn; the agent resumes after them",
    )


class STTConfig(_Strict):
    engine: Literal["whisper", "openai"] = "whisper"
    model: str = Field("tiny.en", description="catalog name (tiny.en, base), a local path or a hub id")
    base_url: str | None = None
    api_key: str | None = None
    beam_size: int = Field(1, ge=1, le=10)


class LLMConfig(_Strict):
    engine: Literal["llama_cpp", "openai"] = "llama_cpp"
    model: str = Field("qwen2.5-0.5b", description="catalog name, a .gguf path, or the server's model id")
    base_url: str | None = Field(None, description="OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1")
    api_key: str | None = None
    max_tokens: int = Field(64, ge=8, le=2048)
    temperature: float = Field(0.3, ge=0.0, le=2.0)
    context_tokens: int = Field(2048, ge=512, le=131072)
    history_tokens: int = Field(768, ge=64, description="budget for the conversation after the system prompt")
    threads: int | None = Field(None, ge=1, le=256)


class VoiceConfig(_Strict):
    engine: Literal["piper", "espeak", "openai"] = "piper"
    voice: str = Field("en_US-joe-medium", description="voice name or model path for the engine")
    speed: float = Field(1.0, gt=0.25, le=4.0)
    base_url: str | None = None
    api_key: str | None = None


class ToolConfig(_Strict):
    name: str
    description: str | None = None
    target: str | None = Field(None, description="for transfer_call: the SIP URI or extension")
    url: str | None = Field(None, description="for webhook tools: where the arguments are POSTed")
    parameters: dict[str, Any] | None = None


class LimitsConfig(_Strict):
    max_call_s: float = Field(900.0, gt=0)
    silence_reprompt_s: float = Field(8.0, gt=0, description="caller silence before a reprompt")
    max_reprompts: int = Field(1, ge=0, le=10)
    max_turns: int = Field(200, ge=1)


class SipRegistrationConfig(_Strict):
    registrar: str = Field(description="the PBX to register with, e.g. sip:pbx.example.com:5060")
    username: str
    password: str = ""
    domain: str | None = Field(None, description="the AOR domain; default: the registrar's host")
    expires_s: int = Field(300, ge=30, le=86400)


class SipConfig(_Strict):
    enabled: bool = True
    host: str = Field("127.0.0.1", description="address SIP listens on")
    port: int = Field(5060, ge=0, le=65535, description="0 picks a free port")
    transports: list[Literal["udp", "tcp"]] = Field(default_factory=lambda: ["udp", "tcp"])
    public_host: str | None = Field(None, description="address put in Contact/SDP; default: host")
    user: str = Field("agent", description="the user part of our SIP URI")
    rtp_port_min: int = Field(20000, ge=1024, le=65535)
    rtp_port_max: int = Field(20999, ge=1024, le=65535)
    codecs: list[Literal["PCMU", "PCMA"]] = Field(
        default_factory=lambda: ["PCMU", "PCMA"], description="offered/accepted in this order"
    )
    jitter_buffer_ms: int = Field(60, ge=0, le=1000)
    max_calls: int = Field(50, ge=1, description="more concurrent calls get 503 and OPTIONS answers 503")
    registration: SipRegistrationConfig | None = Field(None, description="register with a PBX as an extension")


class AudioSocketConfig(_Strict):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(9092, ge=0, le=65535)


class AriConfig(_Strict):
    url: str = Field(description="Asterisk's ARI base URL, e.g. http://127.0.0.1:8088/ari")
    username: str
    password: str
    app: str = Field("voxline", description="the Stasis application name")
    media_host: str = Field("127.0.0.1", description="where Asterisk sends external-media RTP to us")
    format: Literal["ulaw", "alaw", "slin16"] = "ulaw"


class TelephonyConfig(_Strict):
    sip: SipConfig = SipConfig()
    audiosocket: AudioSocketConfig = AudioSocketConfig()
    ari: AriConfig | None = None


class AgentConfig(_Strict):
    name: str = "voxline assistant"
    persona: str = "You are a friendly, efficient phone agent. You help callers quickly and politely."
    rules: list[str] = Field(default_factory=list)
    language: str = "en"
    greeting: str = "Hello, thanks for calling. How can I help you today?"
    reprompt: str = "Are you still there? How can I help you?"
    goodbye: str = "Thank you for calling. Goodbye."
    vad: VADConfig = VADConfig()
    turn: TurnConfig = TurnConfig()
    stt: STTConfig = STTConfig()
    llm: LLMConfig = LLMConfig()
    voice: VoiceConfig = VoiceConfig()
    fallback_voice: VoiceConfig = VoiceConfig(engine="espeak", voice="en-us")
    tools: list[ToolConfig] = Field(default_factory=lambda: [ToolConfig(name="end_call")])
    limits: LimitsConfig = LimitsConfig()
    telephony: TelephonyConfig = TelephonyConfig()

    def tool(self, name: str) -> ToolConfig | None:
        return next((t for t in self.tools if t.name == name), None)


def load_agent(path: str | Path | None) -> AgentConfig:
    """Load and validate an agent file. None gives the built-in default agent."""
    if path is None:
        return default_agent()
    file = Path(path)
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise AgentConfigError(f"agent file not found: {file}") from exc
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise AgentConfigError(f"cannot read agent file {file}: {exc}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise AgentConfigError(f"{file}: the top level must be a mapping of fields, got {type(raw).__name__}")
    try:
        return AgentConfig.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            what = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"  {where}: {what}")
        raise AgentConfigError(f"{file}: invalid agent definition\n" + "\n".join(problems)) from exc


DEFAULT_AGENT_FILE = Path(__file__).parent / "defaults" / "bank.yaml"


def default_agent() -> AgentConfig:
    return load_agent(DEFAULT_AGENT_FILE)
