"""Tools the model may call: built-ins (end_call, transfer_call) and your own Python functions.

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

from voxline.agent.config import AgentConfig, ToolConfig
from voxline.engines.base import ToolCall, ToolSpec
from voxline.transports.base import CallIO

log = logging.getLogger(__name__)


class ToolAction(enum.Enum):
    NONE = "none"
    HANG_UP = "hang_up"
    """Hang up once everything queued (the goodbye) has been played."""
    TRANSFER = "transfer"
    """Play `spoken`, then `CallIO.transfer(target)`."""


@dataclass(slots=True)
class ToolOutcome:
    spoken: str = ""
    """Said to the caller (after the model's own words for this reply)."""
    result: str | None = None
    """Sent back to the model as the tool's result; None means the model need not answer it."""
    action: ToolAction = ToolAction.NONE
    target: str | None = None


@dataclass(slots=True)
class ToolContext:
    call: CallIO
    agent: AgentConfig
    said: str = ""
    """What the model already said in the reply that called the tool."""
    extra: dict[str, Any] = field(default_factory=dict)


ToolHandler = Callable[[ToolCall, ToolContext], Awaitable[ToolOutcome]]

_GOODBYE = re.compile(
    r"\b(good\s*-?\s*bye|bye|farewell|have a (nice|good|great|lovely) (day|evening|night|one))\b", re.I
)


def says_goodbye(text: str) -> bool:
    return bool(_GOODBYE.search(text))


HANDOVER_LINE = "One moment please, I'm transferring you to a colleague."


async def end_call(call: ToolCall, ctx: ToolContext) -> ToolOutcome:
    spoken = "" if ctx.said.strip() else ctx.agent.goodbye
    return ToolOutcome(spoken=spoken, action=ToolAction.HANG_UP)


async def transfer_call(call: ToolCall, ctx: ToolContext) -> ToolOutcome:
    config = ctx.agent.tool("transfer_call")
    target = config.target if config else None
    if not target:
        return ToolOutcome(result="Transfer is not available on this line. Tell the caller.")
    return ToolOutcome(
        spoken="" if ctx.said.strip() else HANDOVER_LINE, action=ToolAction.TRANSFER, target=target
    )


_BUILTIN: dict[str, tuple[ToolSpec, ToolHandler]] = {
    "end_call": (
        ToolSpec("end_call", "End the phone call after saying goodbye."),
        end_call,
    ),
    "transfer_call": (
        ToolSpec("transfer_call", "Transfer the caller to a human colleague."),
        transfer_call,
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
            if builtin is None:
                log.info("tool %s has no handler yet; register() it to enable it", config.name)
                continue
            self._tools[config.name] = (_apply_config(builtin[0], config), builtin[1])

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
