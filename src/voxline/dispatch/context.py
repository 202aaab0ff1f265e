"""The call's metadata as the agent's typed context: `{name}` placeholders in its persona, rules and
HTTP tool arguments, filled once per call (`bind_agent`).

Caller-side text never reaches the prompt unchecked: a value is used only if it is one clean line
that matches its field's pattern in full and holds none of the characters that could open a new
instruction or markup (`{}<>"` and the backtick); otherwise the field's default is used. The
built-in `caller_number` and `dialled_number` admit only what a phone number holds.

The bound agent is fixed for the whole call, so its system prompt is built once and is byte-identical
on every turn (the LLM's prefix cache depends on it). Calls whose agent uses no placeholders get the
agent itself back, so their prompt is the one warmed at start-up.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from voxline.agent.config import AgentConfig, ContextField
from voxline.dispatch.metadata import CallMetadata, clean_value

log = logging.getLogger(__name__)

PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]{0,31})\}")
MAX_PROMPT_VALUE_CHARS = 64
_UNSAFE = re.compile(r"[{}<>\"`\\]")
BUILT_IN_FIELDS: Mapping[str, ContextField] = {  # the names of agent.config.BUILT_IN_CONTEXT
    "caller_number": ContextField(source="caller_number", pattern=r"\+?[0-9*#]{1,32}"),
    "dialled_number": ContextField(source="dialled_number", pattern=r"\+?[0-9*#]{1,32}"),
}
"""Always there; an agent's `context:` may redefine them (e.g. to admit a SIP user name)."""


def raw_value(metadata: CallMetadata, source: str) -> str | None:
    """The metadata value a field's `source` names (already bounded, not yet checked)."""
    kind, _, name = source.partition(":")
    if kind == "header":
        return metadata.header(name)
    if kind == "variable":
        return metadata.variables.get(name)
    if kind == "field":
        return metadata.fields.get(name)
    value = getattr(metadata, source, None)
    return None if value is None else str(value)


def safe_value(value: str | None, field: ContextField) -> str | None:
    """`value` if it may go into the prompt as this field, else None."""
    if value is None:
        return None
    text = clean_value(value, MAX_PROMPT_VALUE_CHARS)
    if text != value or _UNSAFE.search(text) or not re.fullmatch(field.pattern, text):
        return None
    return text


def context_fields(agent: AgentConfig) -> dict[str, ContextField]:
    return {**BUILT_IN_FIELDS, **agent.context}


def context_values(agent: AgentConfig, metadata: CallMetadata) -> dict[str, str]:
    """Every context field's value for this call (its default where the call has none or a bad one)."""
    values: dict[str, str] = {}
    for name, field in context_fields(agent).items():
        raw = raw_value(metadata, field.source)
        value = safe_value(raw, field)
        if value is None and raw is not None:
            log.warning("context %s: the call's value is not admitted (pattern %s); using the default",
                        name, field.pattern)  # fmt: skip
        values[name] = field.default if value is None else value
    return values


def fill(text: str, values: Mapping[str, str]) -> str:
    """`{name}` replaced by its value for the context's names; any other brace text is left as written."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def uses_context(agent: AgentConfig) -> bool:
    names = set(context_fields(agent))
    texts = [agent.persona, *agent.rules]
    for tool in agent.tools:
        endpoint = tool.endpoint
        if endpoint is not None:
            texts += endpoint.arguments.values()
    return any(m.group(1) in names for t in texts for m in PLACEHOLDER.finditer(t))


def bind_agent(agent: AgentConfig, metadata: CallMetadata) -> AgentConfig:
    """The agent for one call: its placeholders filled from the call's metadata. An agent with no
    placeholders is returned as it is."""
    if not uses_context(agent):
        return agent
    values = context_values(agent, metadata)
    tools = []
    for tool in agent.tools:
        endpoint = tool.endpoint
        if endpoint is not None and endpoint.arguments:
            arguments = {k: fill(v, values) for k, v in endpoint.arguments.items()}
            bound = endpoint.model_copy(update={"arguments": arguments})
            tool = tool.model_copy(update={"http": bound, "url": None})
        tools.append(tool)
    return agent.model_copy(
        update={
            "persona": fill(agent.persona, values),
            "rules": [fill(rule, values) for rule in agent.rules],
            "tools": tools,
        }
    )
