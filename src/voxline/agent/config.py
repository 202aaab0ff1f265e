"""The agent YAML schema. Every field has a sane default, so an empty file is a working agent."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from voxline.agent.secrets import MissingEnvironment, expand_env


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
        120,
        ge=0,
        le=3000,
        description="caller pause after which the answer is prepared (STT, then LLM and TTS, held until "
        "the turn ends; dropped if the caller goes on); 0: off",
    )
    early_end_silence_ms: int = Field(
        250,
        ge=0,
        le=3000,
        description="silence that ends a turn when the draft transcript taken at the pause already reads "
        "as a finished request (a matched route, or a whole sentence that does not trail off on 'and', "
        "'the', 'to', 'um'...); capped by end_of_turn_silence_ms; 0: off",
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
    window: Literal["auto", "fit", "full"] = Field(
        "auto",
        description="whisper's encoder window: 'fit' encodes the turn padded to 10 s or 3x the turn (3x "
        "faster on CPU, but more likely to drop a sentence after a full stop), 'full' the whole 30 s as "
        "whisper was trained (multilingual models need it to identify the language); 'auto': full",
    )


class LLMConfig(_Strict):
    engine: Literal["llama_cpp", "llama_server", "openai"] = Field(
        "llama_cpp",
        description="llama_cpp: in process, one call at a time; llama_server: llama.cpp's server, started "
        "by voxline, one slot per concurrent call; openai: any OpenAI-compatible server at base_url",
    )
    model: str = Field("qwen2.5-0.5b", description="catalog name, a .gguf path, or the server's model id")
    base_url: str | None = Field(None, description="OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1")
    api_key: str | None = None
    max_tokens: int = Field(64, ge=8, le=2048)
    temperature: float = Field(0.3, ge=0.0, le=2.0)
    context_tokens: int = Field(2048, ge=512, le=131072)
    history_tokens: int = Field(768, ge=64, description="budget for the conversation after the system prompt")
    threads: int | None = Field(None, ge=1, le=256)
    slots: int = Field(
        2, ge=1, le=64, description="llama_server: parallel slots, each keeping one call's prompt cached"
    )
    constrain_tool_calls: bool = Field(
        True, description="llama_cpp: write a tool call the model opens under a grammar of the tools' schemas"
    )


class VoiceConfig(_Strict):
    engine: Literal["piper", "espeak", "openai", "kokoro", "festival"] = "piper"
    voice: str = Field("en_US-joe-medium", description="voice name or model path for the engine")
    lang: str | None = Field(None, description="the engine's language code, e.g. kokoro 'hi' or 'en-us'")
    speed: float = Field(1.0, gt=0.25, le=4.0)
    base_url: str | None = None
    api_key: str | None = None


DTMF_KEYS = "0123456789*#ABCD"


class CollectDigitsConfig(_Strict):
    """How one run of collect_digits gathers keys (the model may override each per call)."""

    prompt: str = ""
    min_digits: int = Field(1, ge=0, le=64)
    max_digits: int = Field(16, ge=1, le=64)
    terminator: str = Field("#", description="key that ends the entry early ('' for none)")
    inter_digit_timeout_s: float = Field(3.0, gt=0, le=60)
    first_digit_timeout_s: float = Field(8.0, gt=0, le=120)

    @field_validator("terminator")
    @classmethod
    def _one_key(cls, value: str) -> str:
        if value and (len(value) != 1 or value not in DTMF_KEYS):
            raise ValueError(f"terminator must be one DTMF key ({DTMF_KEYS}) or empty")
        return value


_EXPANDED_WHEN_USED = re.compile(r"tools\[\d+\]\.(http|url)|webhook")
"""HTTP tool endpoints and the webhook read their ${NAME}s when a request is made (voxline.agent.env):
an unset variable fails that request, not the agent's start, and the loaded config never holds the
value (so `agent check` cannot print it)."""
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SECRET_HEADER = re.compile(r"authorization|api[-_]?key|token|secret|password|cookie", re.I)


class HttpToolConfig(_Strict):
    """An HTTP endpoint behind a tool. The model's arguments go out as the query string (GET, DELETE)
    or as a JSON object body; the response body goes back to the model."""

    url: str = Field(
        description="${NAME} or ${NAME:-default} is read from the environment when the tool runs; "
        "{argument} is replaced by that argument (URL-quoted)"
    )
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="sent with each request; secrets as ${ENV_NAME}, expanded from the environment "
        "only when the request is made (never stored, logged or printed)",
    )
    timeout_s: float = Field(4.0, gt=0, le=30, description="the whole request, connect to last byte")
    filler_after_s: float = Field(
        0.7, ge=0, le=10, description="no answer by then: the tool's filler line is spoken while it waits"
    )
    max_response_bytes: int = Field(16384, ge=256, le=1048576, description="longer responses are cut")
    arguments: dict[str, str] = Field(
        default_factory=dict,
        description="sent with every request besides the model's own (which cannot override them); "
        "{name} in a value is filled from the call's context (`context:`, caller_number, "
        "dialled_number), e.g. {account_id: '{account}'}",
    )

    @field_validator("headers")
    @classmethod
    def _secrets_from_environment(cls, value: dict[str, str]) -> dict[str, str]:
        for name, header in value.items():
            if _SECRET_HEADER.search(name) and not _ENV_REFERENCE.search(header):
                raise ValueError(
                    f"header {name!r} carries a secret: put it in an environment variable and write "
                    f"${{NAME}} here (e.g. 'Bearer ${{BANK_API_TOKEN}}')"
                )
        return value


class ToolConfig(_Strict):
    name: str
    description: str | None = None
    target: str | None = Field(None, description="for transfer_call: the SIP URI or extension")
    targets: dict[str, str] | None = Field(
        None, description="for transfer_call: named targets (department -> URI); the model picks one"
    )
    digits: CollectDigitsConfig | None = Field(None, description="for collect_digits: the default settings")
    url: str | None = Field(None, description="shorthand for http: {url: ..., method: POST}")
    http: HttpToolConfig | None = Field(None, description="the tool calls this HTTP endpoint")
    filler: str | None = Field(
        None,
        description="said when an HTTP tool has not answered after http.filler_after_s (in the agent's "
        "language; other languages use a built-in line); default 'One moment while I check that.'",
    )
    failure_line: str | None = Field(
        None,
        description="said when an HTTP tool fails (timeout, 5xx, unreachable); the call goes on",
    )
    parameters: dict[str, Any] | None = Field(None, description="JSON schema of the model's arguments")

    @property
    def endpoint(self) -> HttpToolConfig | None:
        """The HTTP endpoint this tool calls, if any (`url` alone is a POST with the defaults)."""
        if self.http is not None:
            return self.http
        return HttpToolConfig(url=self.url) if self.url else None


class WebhookConfig(_Strict):
    """Where the record of each finished call is POSTed, signed, in the background."""

    url: str = Field(description="${NAME} or ${NAME:-default} is read from the environment")
    secret_env: str | None = Field(
        None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="environment variable holding the HMAC-SHA256 key; the body is signed in the "
        "X-Voxline-Signature header ('t=<unix time>,v1=<hex of HMAC(key, '<t>.<body>')>')",
    )
    timeout_s: float = Field(5.0, gt=0, le=60, description="one attempt")
    max_attempts: int = Field(5, ge=1, le=10)
    backoff_s: float = Field(1.0, ge=0, le=60, description="wait before the second attempt; doubles after")
    max_backoff_s: float = Field(60.0, ge=0, le=3600)


CONTEXT_NAME = re.compile(r"[a-z_][a-z0-9_]{0,31}")
CONTEXT_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]{0,31})\}")
BUILT_IN_CONTEXT = ("caller_number", "dialled_number")
"""Context fields every agent has (voxline.dispatch.context)."""
CONTEXT_SOURCE = re.compile(
    r"caller_number|dialled_number|agent|audiosocket_uuid|(header|variable|field):[A-Za-z0-9_.:-]{1,64}"
)


class ContextField(_Strict):
    """One piece of the call's metadata the agent uses as `{name}` in its persona, rules and HTTP
    tool arguments. The value comes from the caller's side, so it is only used when it matches
    `pattern` in full (and holds no braces, angle brackets, quotes or backticks); otherwise `default`
    is used. Keep the pattern as narrow as the value: a pattern is what keeps a header from
    writing instructions into the prompt."""

    source: str = Field(
        description="caller_number, dialled_number, agent, audiosocket_uuid, header:X-Name (SIP), "
        "variable:NAME (ARI channel variable or Stasis name=value argument), field:name (WebSocket "
        "start frame metadata)"
    )
    pattern: str = Field(r"[\w .,'+@-]{1,64}", description="a regular expression the whole value must match")
    default: str = Field("unknown", max_length=64, description="used when the call has no valid value")

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        if not CONTEXT_SOURCE.fullmatch(value):
            raise ValueError(
                "source is one of caller_number, dialled_number, agent, audiosocket_uuid, "
                "header:X-Name, variable:NAME, field:name"
            )
        return value

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"pattern does not compile: {exc}") from None
        return value


class LimitsConfig(_Strict):
    max_call_s: float = Field(900.0, gt=0)
    silence_reprompt_s: float = Field(8.0, gt=0, description="caller silence before a reprompt")
    max_reprompts: int = Field(1, ge=0, le=10)
    max_turns: int = Field(200, ge=1)


class SipRegistrationConfig(_Strict):
    registrar: str = Field(description="the PBX to register with, e.g. sip:pbx.example.com:5060")
    username: str
    password: str = Field("", description="write it as ${SIP_PASSWORD}: read from the environment")
    domain: str | None = Field(None, description="the AOR domain; default: the registrar's host")
    expires_s: int = Field(300, ge=30, le=86400)


def _check_cidrs(cidrs: list[str] | None) -> list[str] | None:
    from voxline.telephony.access import parse_networks  # the telephony stack stays lazily loaded

    if cidrs is not None:
        parse_networks(cidrs)
    return cidrs


AllowFrom = Annotated[list[str] | None, AfterValidator(_check_cidrs)]
"""Source networks a telephony listener takes traffic from (CIDR); unset: loopback only."""


class SipInboundAuthConfig(_Strict):
    username: str
    password: str = Field(description="write it as ${VOXLINE_SIP_AUTH_PASSWORD}: read from the environment")
    realm: str = Field("voxline", description="the digest realm in our 401 challenge")


SipTransport = Literal["udp", "tcp"]
SipCodec = Literal["G722", "PCMU", "PCMA"]


class SipConfig(_Strict):
    enabled: bool = True
    host: str = Field("127.0.0.1", description="address SIP listens on")
    port: int = Field(5060, ge=0, le=65535, description="0 picks a free port")
    transports: list[SipTransport] = Field(default_factory=lambda: list[SipTransport](["udp", "tcp"]))
    public_host: str | None = Field(None, description="address put in Contact/SDP; default: host")
    user: str = Field("agent", description="the user part of our SIP URI")
    rtp_port_min: int = Field(20000, ge=0, le=65535, description="RTP ports (even); 0 and 0: any free port")
    rtp_port_max: int = Field(20999, ge=0, le=65535)
    codecs: list[SipCodec] = Field(
        default_factory=lambda: list[SipCodec](["G722", "PCMU", "PCMA"]),
        description="offered/accepted in this order (G722 is wideband: 16 kHz audio)",
    )
    jitter_buffer_ms: int = Field(60, ge=0, le=1000)
    max_calls: int = Field(50, ge=1, description="more concurrent calls get 503 and OPTIONS answers 503")
    registration: SipRegistrationConfig | None = Field(
        None, description="register with a PBX as an extension"
    )
    allow_from: AllowFrom = Field(None, description="source CIDRs requests are taken from; unset: loopback")
    auth: SipInboundAuthConfig | None = Field(None, description="digest-challenge every new INVITE")
    requests_per_source_per_s: float = Field(100.0, gt=0, description="more from one address are dropped")
    max_transactions: int = Field(1000, ge=1, description="live server transactions; more get 503")
    tcp_idle_timeout_s: float = Field(120.0, gt=0, description="close a TCP connection silent this long")
    dns_timeout_s: float = Field(2.0, gt=0, le=30, description="resolving a Contact/Route/registrar name")


class AudioSocketConfig(_Strict):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(9092, ge=0, le=65535)
    allow_from: AllowFrom = Field(
        None, description="source CIDRs connections are taken from; unset: loopback"
    )
    max_calls: int = Field(
        50, ge=1, description="concurrent AudioSocket calls (the server budget applies too)"
    )
    idle_timeout_s: float = Field(120.0, gt=0, description="hang up when the peer sends nothing this long")


class AriConfig(_Strict):
    url: str = Field(description="Asterisk's ARI base URL, e.g. http://127.0.0.1:8088/ari")
    username: str
    password: str = Field(description="write it as ${ARI_PASSWORD}: read from the environment")
    app: str = Field("voxline", description="the Stasis application name")
    media_host: str = Field("127.0.0.1", description="where Asterisk sends external-media RTP to us")
    format: Literal["ulaw", "alaw", "slin16"] = "ulaw"
    allow_from: AllowFrom = Field(
        None, description="networks Asterisk's external-media RTP may come from; unset: what ARI announces"
    )


class TelephonyConfig(_Strict):
    sip: SipConfig = SipConfig()
    audiosocket: AudioSocketConfig = AudioSocketConfig()
    ari: AriConfig | None = None


IvrActionName = Literal["say", "menu", "transfer", "hangup", "repeat", "back", "llm", "collect"]


class IvrOption(_Strict):
    """What one key does in a menu: optionally `say` something, then an action.

    `action: menu:billing` (or `then: menu:billing` after a `say`) enters a sub-menu; `transfer`
    needs `target`; `llm` hands the turn to the model with `note`; `collect` gathers digits with
    `collect` settings and hands them to the model."""

    say: str | None = None
    action: str | None = None
    then: str | None = Field(None, description="the action after `say` (same forms as `action`)")
    target: str | None = None
    note: str | None = Field(None, description="for llm/collect: what the model is told the caller chose")
    collect: CollectDigitsConfig | None = None

    @model_validator(mode="after")
    def _coherent(self) -> IvrOption:
        if self.action not in (None, "say") and self.then is not None:
            raise ValueError("give either `action` or `say` + `then`, not both")
        kind, menu = self.next_step()
        if kind == "say" and not self.say:
            raise ValueError("a say option needs `say` text")
        if kind == "menu" and not menu:
            raise ValueError("write a sub-menu as menu:<name>")
        if kind == "transfer" and not self.target:
            raise ValueError("a transfer option needs `target`")
        return self

    def next_step(self) -> tuple[str, str]:
        """(action kind, sub-menu name or ''): what happens after `say`."""
        raw = (self.then if self.action in (None, "say") else self.action) or self.action or "say"
        kind, _, menu = raw.partition(":")
        kind, menu = kind.strip(), menu.strip()
        if kind not in get_args(IvrActionName):
            raise ValueError(f"unknown IVR action {raw!r}")
        return kind, menu


class IvrMenu(_Strict):
    prompt: str
    options: dict[str, IvrOption] = Field(default_factory=dict)
    timeout_s: float = Field(6.0, gt=0, le=120, description="silence before the prompt is repeated")
    invalid: str = "Sorry, that is not an option."

    @field_validator("options", mode="before")
    @classmethod
    def _keys_are_dtmf(cls, value: Any) -> Any:
        if isinstance(value, dict):
            value = {str(k): v for k, v in value.items()}  # YAML reads an unquoted 1 as an int
            bad = [k for k in value if len(k) != 1 or k not in DTMF_KEYS]
            if bad:
                raise ValueError(f"option keys must be single DTMF keys ({DTMF_KEYS}), got {bad}")
        return value


class IvrConfig(_Strict):
    """Keypad menus. Written flat in YAML: each key is a menu name, besides the reserved `start`
    and `inter_digit_timeout_s`."""

    start: str | None = Field(None, description="the menu active when the call starts")
    menus: dict[str, IvrMenu] = Field(default_factory=dict)
    inter_digit_timeout_s: float = Field(
        2.0, gt=0, le=30, description="keys pressed outside menus within this gap form one caller turn"
    )

    @model_validator(mode="before")
    @classmethod
    def _flat_menus(cls, value: Any) -> Any:
        if isinstance(value, dict) and "menus" not in value:
            reserved = {"start", "inter_digit_timeout_s"}
            menus = {k: v for k, v in value.items() if k not in reserved}
            value = {k: v for k, v in value.items() if k in reserved} | {"menus": menus}
        return value

    @model_validator(mode="after")
    def _menus_exist(self) -> IvrConfig:
        if self.start is not None and self.start not in self.menus:
            raise ValueError(f"start menu {self.start!r} is not defined")
        for name, menu in self.menus.items():
            for key, option in menu.options.items():
                kind, target = option.next_step()
                if kind == "menu" and target not in self.menus:
                    raise ValueError(f"menu {name!r} key {key!r} goes to undefined menu {target!r}")
        return self


_LANGUAGE_CODE = re.compile(r"[a-z]{2,3}")


class LanguagesConfig(_Strict):
    mode: Literal["fixed", "auto", "on_request"] = Field(
        "fixed",
        description="fixed: one language all call; auto: follow the language the caller speaks; "
        "on_request: switch when the caller asks for another language",
    )
    allowed: list[str] = Field(
        default_factory=list, description="languages the agent speaks (ISO 639-1); empty: only `language`"
    )
    switch_after_turns: int = Field(
        2, ge=1, le=5, description="auto: caller turns in a row in another language before the call follows"
    )
    min_confidence: float = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="auto: a turn counts towards a switch above this LID probability",
    )

    @field_validator("allowed")
    @classmethod
    def _language_codes(cls, value: list[str]) -> list[str]:
        bad = [code for code in value if not _LANGUAGE_CODE.fullmatch(code)]
        if bad:
            raise ValueError(f"use ISO 639-1 codes such as en, hi, mr; got {bad}")
        return list(dict.fromkeys(value))


class LanguageTexts(_Strict):
    """The agent's fixed lines in one language (the top-level ones are in `language`)."""

    greeting: str | None = None
    reprompt: str | None = None
    goodbye: str | None = None
    switched: str | None = Field(None, description="said when the call switches to this language")
    fallback: str | None = Field(
        None, description="said when the model answers in the wrong language or script and cannot be used"
    )


class FaqEntry(_Strict):
    """One question the line often hears, with the answer the agent may give."""

    question: str = Field(min_length=1, description="how a caller might ask it (words to match on)")
    answer: str = Field(min_length=1, description="the facts the agent may say")


class KnowledgeConfig(_Strict):
    """What the agent knows beyond its persona. Searched per caller turn (SQLite FTS5, BM25); the best
    matches go to the model after the cached prompt, so a long FAQ costs no prefill on other turns."""

    faq: list[FaqEntry] = Field(default_factory=list)
    documents: list[str] = Field(
        default_factory=list,
        description="text or markdown files (relative to the agent file), searched paragraph by paragraph",
    )
    top_k: int = Field(2, ge=1, le=8, description="passages given to the model per turn")
    max_chars: int = Field(600, ge=50, le=4000, description="cap on the passages' total length per turn")


class ExampleExchange(_Strict):
    """A caller line and how the agent answers it: shown to the model in its (cached) system prompt."""

    caller: str = Field(min_length=1)
    agent: str = Field("", description="what the agent says")
    tool: str | None = Field(None, description="a tool the agent calls after saying it (e.g. transfer_call)")
    arguments: dict[str, Any] = Field(default_factory=dict, description="the tool call's arguments")

    @model_validator(mode="after")
    def _does_something(self) -> ExampleExchange:
        if not self.agent.strip() and not self.tool:
            raise ValueError("an example needs what the agent says, a tool, or both")
        return self


class Route(_Strict):
    """A request the agent answers with its own approved words, without asking the model: what a
    small model gets wrong and a contact centre wants said one way (a lost card, an account question
    it cannot see). Matched on the caller's words, so it costs no model time and its line is rendered
    at start-up."""

    name: str = Field(min_length=1, description="named in the call's log and record")
    when: list[str] = Field(
        min_length=1,
        description="phrases; a caller turn matches when it holds every word of one of them, in any "
        'order and any form ("lost card" matches "I\'ve lost my cards")',
    )
    say: str = Field(min_length=1, description="said instead of the model's answer")
    language: str | None = Field(None, description="the reply language it applies to (default: the agent's)")


class GuardConfig(_Strict):
    """The last check before speech: a refusal or internal text (notes, menu names, tool names,
    instructions) in a reply is never spoken; the handover line and offer are said instead."""

    enabled: bool = True
    handover: str = Field(
        "I can't do that myself, but a colleague can help you with it. Shall I put you through?",
        description="said instead of a refusal or a leak; ends with the offer of a transfer",
    )
    handover_again: str = Field(
        "As I said, a colleague can sort that out for you. Would you like me to transfer you?",
        description="said instead of `handover` once the caller has heard it in this call",
    )
    off_topic: str | None = Field(
        None,
        description="when set, a sentence whose words are mostly in nothing the agent was told (persona, "
        "knowledge, the call) is about something else (the weather) and this is said instead; "
        "for agents whose persona and knowledge cover what they talk about",
    )
    colleague_only: list[str] = Field(
        default_factory=list,
        description="actions only a colleague takes (e.g. block, freeze): the agent never says it does them",
    )
    transfer_on_yes: bool = Field(
        True,
        description="a caller who says yes to an offer of a colleague is transferred (needs transfer_call)",
    )
    transfer_on_request: bool = Field(
        True, description="a caller who asks for a person is transferred at once (needs transfer_call)"
    )


class AgentConfig(_Strict):
    name: str = "voxline assistant"
    mode: Literal["conversation", "echo"] = Field(
        "conversation",
        description="conversation: the agent talks (its models); echo: a media-only agent that plays "
        "the caller's audio straight back and loads no model (to test a line, or measure the media path)",
    )
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
    languages: LanguagesConfig = LanguagesConfig()
    voices: dict[str, VoiceConfig] = Field(
        default_factory=dict, description="language → voice; `voice` speaks the default language"
    )
    texts: dict[str, LanguageTexts] = Field(
        default_factory=dict, description="language → greeting/reprompt/goodbye/switched lines"
    )
    ivr: IvrConfig = IvrConfig()
    webhook: WebhookConfig | None = Field(None, description="POST each finished call's record here")
    knowledge: KnowledgeConfig = KnowledgeConfig()
    examples: list[ExampleExchange] = Field(
        default_factory=list, description="example exchanges the model sees in its system prompt"
    )
    guard: GuardConfig = GuardConfig()
    routes: list[Route] = Field(
        default_factory=list,
        description="requests answered with fixed words before the model is asked; the first match wins",
    )
    context: dict[str, ContextField] = Field(
        default_factory=dict,
        description="the call's metadata as {name} placeholders in persona, rules and HTTP tool "
        "arguments; {caller_number} and {dialled_number} are always there (digits and + * # only)",
    )

    @field_validator("context")
    @classmethod
    def _context_names(cls, value: dict[str, ContextField]) -> dict[str, ContextField]:
        bad = [name for name in value if not CONTEXT_NAME.fullmatch(name)]
        if bad:
            raise ValueError(f"context names are lower-case identifiers (a-z, 0-9, _), got {bad}")
        return value

    @model_validator(mode="after")
    def _tool_arguments_name_context(self) -> AgentConfig:
        known = self.context_names
        for tool in self.tools:
            endpoint = tool.endpoint
            for argument, value in (endpoint.arguments if endpoint else {}).items():
                unknown = [n for n in CONTEXT_PLACEHOLDER.findall(value) if n not in known]
                if unknown:
                    raise ValueError(
                        f"tool {tool.name}: argument {argument} uses {{{unknown[0]}}}, which is not a "
                        f"context field (have: {', '.join(known)})"
                    )
        return self

    @property
    def context_names(self) -> tuple[str, ...]:
        """The `{names}` the call's context fills: the built-in ones and `context:`'s."""
        return tuple(dict.fromkeys([*BUILT_IN_CONTEXT, *self.context]))

    def unfilled_placeholders(self) -> list[str]:
        """`{name}`s in the persona and rules that no context field fills: they stay as written (a
        typo, or text meant literally)."""
        known = set(self.context_names)
        texts = [self.persona, *self.rules]
        return sorted({n for t in texts for n in CONTEXT_PLACEHOLDER.findall(t) if n not in known})

    @model_validator(mode="after")
    def _languages_agree(self) -> AgentConfig:
        allowed = self.languages.allowed
        if allowed and self.language not in allowed:
            raise ValueError(f"language {self.language!r} must be one of languages.allowed {allowed}")
        speaks = set(self.spoken_languages)
        if self.languages.mode != "fixed" and len(speaks) < 2:
            raise ValueError(f"languages.mode {self.languages.mode} needs two or more languages.allowed")
        for section in ("voices", "texts"):
            unknown = sorted(set(getattr(self, section)) - speaks)
            if unknown:
                raise ValueError(f"{section} for {unknown}: not languages this agent speaks {sorted(speaks)}")
        return self

    @property
    def spoken_languages(self) -> tuple[str, ...]:
        """Every language this agent speaks, its own `language` first, then `languages.allowed` in
        order: the one place the agent's languages are worked out (a `fixed` call still keeps to
        `language`; see LanguagePolicy)."""
        return tuple(dict.fromkeys([self.language, *self.languages.allowed]))

    def tool(self, name: str) -> ToolConfig | None:
        return next((t for t in self.tools if t.name == name), None)

    @property
    def media_only(self) -> bool:
        """An agent whose calls use no model (`mode: echo`): nothing is loaded, warmed or served for it."""
        return self.mode == "echo"


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
        # secrets are written as ${NAME}, never into the file
        raw = expand_env(raw, keep=lambda where: _EXPANDED_WHEN_USED.fullmatch(where) is not None)
    except MissingEnvironment as exc:
        raise AgentConfigError(f"{file}: {exc.args[0]}") from None
    try:
        return AgentConfig.model_validate(_documents_beside(raw, file.resolve().parent))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            what = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"  {where}: {what}")
        raise AgentConfigError(f"{file}: invalid agent definition\n" + "\n".join(problems)) from exc


def _documents_beside(raw: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Knowledge documents named relative to the agent file, as absolute paths."""
    knowledge = raw.get("knowledge")
    if not isinstance(knowledge, dict) or not isinstance(knowledge.get("documents"), list):
        return raw
    documents = [str(folder / d) if isinstance(d, str) else d for d in knowledge["documents"]]
    return {**raw, "knowledge": {**knowledge, "documents": documents}}


DEFAULT_AGENT_FILE = Path(__file__).parent / "defaults" / "bank.yaml"


def default_agent() -> AgentConfig:
    return load_agent(DEFAULT_AGENT_FILE)
