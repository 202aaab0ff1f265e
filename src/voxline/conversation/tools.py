"""Tools the model may call: built-ins (end_call, transfer_call, collect_digits, send_dtmf, and
switch_language in on_request language mode) and your own Python functions.

A handler never touches the audio: it returns a ToolOutcome saying what to speak, what to tell the
model, and which call action (hang up, transfer) the conversation should take after the audio.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from voxline.agent.config import AgentConfig, CollectDigitsConfig, HttpToolConfig, ToolConfig
from voxline.conversation.digits import valid_keys
from voxline.conversation.http_tools import (
    FAILURE_LINES,
    FILLER_LINES,
    call_endpoint,
    check_arguments,
    tool_line,
)
from voxline.engines.base import ToolCall, ToolSpec
from voxline.transports.base import CallIO

log = logging.getLogger(__name__)


class ToolAction(enum.Enum):
    NONE = "none"
    HANG_UP = "hang_up"
    """Hang up once everything queued (the goodbye) has been played."""
    TRANSFER = "transfer"
    """Play `spoken`, then `CallIO.transfer(target)`."""
    COLLECT_DIGITS = "collect_digits"
    """Speak `collect.prompt`, gather keys; the digits become the tool's result."""
    SWITCH_LANGUAGE = "switch_language"
    """Switch the call to `language` (its voice, STT and replies)."""


@dataclass(slots=True)
class ToolOutcome:
    spoken: str = ""
    """Said to the caller (after the model's own words for this reply)."""
    result: str | None = None
    """Sent back to the model as the tool's result; None means the model need not answer it."""
    action: ToolAction = ToolAction.NONE
    target: str | None = None
    collect: CollectDigitsConfig | None = None
    language: str | None = None
    final: bool = False
    """`spoken` answers the caller: `result` is recorded for the model, which is not asked to speak."""


@dataclass(slots=True)
class ToolContext:
    call: CallIO
    agent: AgentConfig
    said: str = ""
    """What the model already said in the reply that called the tool."""
    goodbye: str = ""
    """The goodbye line in the call's current language (default: the agent's own)."""
    language: str = ""
    """The call's current language (default: the agent's own)."""
    heard: str = ""
    """Everything the caller said or keyed in this call: a number in a tool's arguments must be in it."""
    extra: dict[str, Any] = field(default_factory=dict)


ToolHandler = Callable[[ToolCall, ToolContext], Awaitable[ToolOutcome]]

_GOODBYE = re.compile(
    r"\b(good\s*-?\s*bye|bye|farewell|have a (nice|good|great|lovely) (day|evening|night|one))\b", re.I
)


def says_goodbye(text: str) -> bool:
    return bool(_GOODBYE.search(text))


DEFAULT_FILLER_AFTER_S = 0.7
"""A caller who hears nothing for longer than this after asking wonders if the line dropped."""

HANDOVER_LINE = "One moment please, I'm transferring you to a colleague."
HANDOVER_LINES = {
    "en": HANDOVER_LINE,
    "hi": "एक पल रुकिए, मैं आपको एक सहकर्मी से जोड़ रही हूँ।",
    "mr": "एक क्षण थांबा, मी तुम्हाला एका सहकाऱ्याशी जोडते.",
}
"""Said by a transfer the model did not announce, in the call's language (an English line in a Hindi
call failed the Hindi suite's script check)."""


async def end_call(call: ToolCall, ctx: ToolContext) -> ToolOutcome:
    spoken = "" if ctx.said.strip() else (ctx.goodbye or ctx.agent.goodbye)
    return ToolOutcome(spoken=spoken, action=ToolAction.HANG_UP)


async def transfer_call(call: ToolCall, ctx: ToolContext) -> ToolOutcome:
    config = ctx.agent.tool("transfer_call")
    targets = (config.targets if config else None) or {}
    department = str(call.arguments.get("department") or "").strip()
    if department and targets:
        by_name = {name.lower(): uri for name, uri in targets.items()}
        target = by_name.get(department.lower())
        if target is None:
            known = ", ".join(targets)
            return ToolOutcome(result=f"There is no department {department!r}. Choose one of: {known}.")
    else:
        default = next(iter(targets.values())) if len(targets) == 1 else None
        target = (config.target if config else None) or default
    if not target:
        if targets:
            return ToolOutcome(result=f"Ask which department the caller wants: {', '.join(targets)}.")
        return ToolOutcome(result="Transfer is not available on this line. Tell the caller.")
    return ToolOutcome(
        spoken="" if ctx.said.strip() else HANDOVER_LINES.get(ctx.language, HANDOVER_LINE),
        action=ToolAction.TRANSFER,
        target=target,
    )


async def collect_digits(call: ToolCall, ctx: ToolContext) -> ToolOutcome:
    config = ctx.agent.tool("collect_digits")
    defaults = (config.digits if config else None) or CollectDigitsConfig()
    asked = {k: v for k, v in call.arguments.items() if k in CollectDigitsConfig.model_fields}
    try:
        settings = CollectDigitsConfig.model_validate(defaults.model_dump() | asked)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return ToolOutcome(result=f"collect_digits was called with bad arguments ({problems}).")
    if settings.min_digits > settings.max_digits:
        settings = settings.model_copy(update={"min_digits": settings.max_digits})
    return ToolOutcome(action=ToolAction.COLLECT_DIGITS, collect=settings)


async def send_dtmf(call: ToolCall, ctx: ToolContext) -> ToolOutcome:
    keys = "".join(str(call.arguments.get("digits", "")).upper().split()).replace(",", "")
    if not valid_keys(keys):
        return ToolOutcome(result=f"Cannot send {keys!r}: use only the keys 0-9, *, # and A-D.")
    if await ctx.call.send_dtmf(keys):
        return ToolOutcome(result=f"Sent the keys {keys}.")
    return ToolOutcome(result="Sending keys failed: this line cannot send DTMF.")


async def switch_language(call: ToolCall, ctx: ToolContext) -> ToolOutcome:
    language = str(call.arguments.get("language") or "").strip().lower()
    allowed = _switchable(ctx.agent)
    if language not in allowed:
        return ToolOutcome(result=f"Cannot switch to {language!r}: choose one of {', '.join(allowed)}.")
    return ToolOutcome(action=ToolAction.SWITCH_LANGUAGE, language=language)


_DIGIT_WORDS = {
    w: str(i) for i, w in enumerate(re.findall(r"\w+", "zero one two three four five six seven eight nine"))
} | {"oh": "0", "o": "0"}


def spoken_digits(text: str) -> str:
    """The digits in `text` in the order said, digit words too ("four 4 one seven" -> "4417")."""
    pieces = re.findall(r"\d|[a-z]+", text.lower())
    return "".join(p if p.isdigit() else _DIGIT_WORDS.get(p, "") for p in pieces)


def unheard_numbers(arguments: dict[str, Any], heard: str) -> list[str]:
    """Argument values with two or more digits that the caller never said, in that order."""
    said = spoken_digits(heard)
    invented = []
    for value in arguments.values():
        if isinstance(value, bool) or not isinstance(value, str | int):
            continue
        digits = re.sub(r"\D", "", str(value))
        if len(digits) >= 2 and digits not in said:
            invented.append(str(value))
    return invented


def http_tool(config: ToolConfig, endpoint: HttpToolConfig) -> ToolHandler:
    """The handler of a tool that calls `endpoint` (see http_tools)."""

    async def call_http(call: ToolCall, ctx: ToolContext) -> ToolOutcome:
        arguments, problems = check_arguments(config.parameters, call.arguments)
        if problems:
            return ToolOutcome(result=f"{call.name} was not run: {'; '.join(problems)}. Ask the caller.")
        invented = unheard_numbers(arguments, ctx.heard)
        if invented:
            # a small model fills a required number from its examples ("4532") rather than ask
            log.warning("%s not run: the caller never said %s", call.name, ", ".join(invented))
            unsaid = ", ".join(invented)
            return ToolOutcome(
                result=f"{call.name} was not run: the caller never said {unsaid}. Ask the caller."
            )
        # the agent's own arguments (filled from the call's context) go too; the model cannot set them
        arguments = {**arguments, **endpoint.arguments}
        result = await call_endpoint(endpoint, arguments, call.name)
        if result.outcome != "failure":
            return ToolOutcome(result=result.text)
        language = ctx.language or ctx.agent.language
        line = tool_line(FAILURE_LINES, config.failure_line, language, ctx.agent.language)
        note = f"{call.name} failed: {result.text}. The caller was told: {line}"
        return ToolOutcome(spoken=line, result=note, final=True)

    return call_http


def _switchable(agent: AgentConfig) -> list[str]:
    return list(agent.spoken_languages)


def switch_language_spec(agent: AgentConfig) -> ToolSpec:
    """switch_language with the agent's languages as an enum, so the model can only pick one of them."""
    languages = _switchable(agent)
    parameters = {
        "type": "object",
        "properties": {
            "language": {"type": "string", "enum": languages, "description": "ISO 639-1 code"},
        },
        "required": ["language"],
    }
    return ToolSpec(
        "switch_language",
        "Switch the call to another language when the caller asks to speak it.",
        parameters,
    )


_COLLECT_PARAMS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "prompt": {
            "type": "string",
            "description": "What to say first, e.g. 'Please enter your account number, then the pound key.'",
        },
        "max_digits": {"type": "integer", "minimum": 1, "maximum": 64},
        "min_digits": {"type": "integer", "minimum": 0, "maximum": 64},
        "terminator": {"type": "string", "description": "key that ends the entry", "default": "#"},
        "inter_digit_timeout_s": {"type": "number", "default": 3},
        "first_digit_timeout_s": {"type": "number", "default": 8},
    },
    "required": ["prompt"],
}
_SEND_DTMF_PARAMS: dict[str, Any] = {
    "type": "object",
    "properties": {"digits": {"type": "string", "description": "keys to press: 0-9, *, #"}},
    "required": ["digits"],
}

_BUILTIN: dict[str, tuple[ToolSpec, ToolHandler]] = {
    "end_call": (
        ToolSpec("end_call", "End the phone call after saying goodbye."),
        end_call,
    ),
    "transfer_call": (
        ToolSpec("transfer_call", "Transfer the caller to a human colleague."),
        transfer_call,
    ),
    "collect_digits": (
        ToolSpec(
            "collect_digits",
            "Ask the caller to type a number on their keypad and wait for it; returns the digits.",
            _COLLECT_PARAMS,
        ),
        collect_digits,
    ),
    "send_dtmf": (
        ToolSpec(
            "send_dtmf", "Press keys on the line (e.g. to navigate another phone menu).", _SEND_DTMF_PARAMS
        ),
        send_dtmf,
    ),
}


class ToolRegistry:
    """The tools one agent offers the model. Built-ins are enabled by naming them in the agent file;
    `register()` adds your own (enabled as soon as registered)."""

    def __init__(self, agent: AgentConfig) -> None:
        self.agent = agent
        self._tools: dict[str, tuple[ToolSpec, ToolHandler]] = {}
        for config in agent.tools:
            builtin = _BUILTIN.get(config.name)
            endpoint = config.endpoint
            if builtin is None and endpoint is not None:
                parameters = config.parameters or {"type": "object", "properties": {}}
                spec = ToolSpec(config.name, config.description or f"Run {config.name}.", parameters)
                self._tools[config.name] = (spec, http_tool(config, endpoint))
                continue
            if builtin is None:
                log.info("tool %s has no handler yet; register() it to enable it", config.name)
                continue
            spec = _with_departments(builtin[0], config) if config.targets else builtin[0]
            self._tools[config.name] = (_apply_config(spec, config), builtin[1])
        if agent.languages.mode == "on_request" and len(_switchable(agent)) > 1:
            # offered only in this mode: in auto mode the caller's speech decides, in fixed nothing does
            spec = _apply_config(switch_language_spec(agent), agent.tool("switch_language"))
            self._tools["switch_language"] = (spec, switch_language)

    def register(self, name: str, spec: ToolSpec, handler: ToolHandler) -> None:
        config = self.agent.tool(name)
        self._tools[name] = (_apply_config(spec, config) if config else spec, handler)

    def tool(
        self, description: str, parameters: dict[str, Any] | None = None, name: str | None = None
    ) -> Callable[[ToolHandler], ToolHandler]:
        """Decorator form of register(): `@registry.tool("Look up branch hours")`."""

        def decorate(handler: ToolHandler) -> ToolHandler:
            tool_name = name or handler.__name__
            params = parameters or {"type": "object", "properties": {}}
            self.register(tool_name, ToolSpec(tool_name, description, params), handler)
            return handler

        return decorate

    def filler(self, name: str, language: str) -> tuple[float, str] | None:
        """(after how many seconds, what) to say while tool `name` runs: HTTP tools, and any tool
        with a `filler` line in the agent file. None: the tool is quick, nothing is said."""
        config = self.agent.tool(name)
        if config is None or (config.endpoint is None and not config.filler):
            return None
        after = config.endpoint.filler_after_s if config.endpoint else DEFAULT_FILLER_AFTER_S
        return after, tool_line(FILLER_LINES, config.filler, language, self.agent.language)

    def specs(self) -> list[ToolSpec]:
        return [spec for spec, _ in self._tools.values()]

    def __contains__(self, name: str) -> bool:
        return name in self._tools

    async def execute(self, call: ToolCall, ctx: ToolContext) -> ToolOutcome:
        """Run one tool call. Failures become a result the model can recover from, never a crash."""
        entry = self._tools.get(call.name)
        if entry is None:
            log.warning("model called unknown tool %s", call.name)
            return ToolOutcome(result=f"There is no tool named {call.name}.")
        try:
            outcome = await entry[1](call, ctx)
        except Exception as exc:
            log.exception("tool %s failed", call.name)
            return ToolOutcome(result=f"The tool {call.name} failed: {exc}")
        log.info("tool %s -> %s", call.name, outcome.action.value, extra={"tool": call.name})
        return outcome


def _apply_config(spec: ToolSpec, config: ToolConfig | None) -> ToolSpec:
    if config is None:
        return spec
    return ToolSpec(
        spec.name,
        config.description or spec.description,
        config.parameters if config.parameters is not None else spec.parameters,
    )


def _with_departments(spec: ToolSpec, config: ToolConfig) -> ToolSpec:
    """transfer_call with named targets: the model picks one by its name."""
    names = list(config.targets or {})
    parameters = {
        "type": "object",
        "properties": {"department": {"type": "string", "enum": names, "description": "who to transfer to"}},
        "required": ["department"],
    }
    return ToolSpec(spec.name, f"{spec.description} Departments: {', '.join(names)}.", parameters)
