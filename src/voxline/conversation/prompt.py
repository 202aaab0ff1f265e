"""The system prompt. Short on purpose: on a 2-core CPU every prompt token costs prefill time."""

from __future__ import annotations

from collections.abc import Sequence

from voxline.agent.config import AgentConfig
from voxline.engines.base import ToolSpec

STYLE_RULES = (
    "You are speaking on a phone call; everything you write is read aloud.",
    "Answer in one or two short, plain spoken sentences.",
    "Ask at most one question at a time.",
    "Never use emoji, markdown, lists, headings or stage directions like (laughs).",
    "Reply in the caller's language.",
)


def build_system_prompt(agent: AgentConfig, tools: Sequence[ToolSpec] = ()) -> str:
    lines = [agent.persona.strip(), "", "Rules:"]
    rules = list(STYLE_RULES)
    rules += [r.strip() for r in agent.rules if r.strip() and r.strip() not in rules]
    lines += [f"- {rule}" for rule in rules]
    names = {t.name for t in tools}
    if names:
        lines += ["", "Tools:"]
        if "end_call" in names:
            lines.append("- When the caller is done or says goodbye, say a short goodbye and call end_call.")
        if "transfer_call" in names:
            lines.append("- If the caller asks for a person, call transfer_call.")
        if "collect_digits" in names:
            lines.append("- To get a number the caller types on their keypad, call collect_digits.")
        if names - {"end_call", "transfer_call", "collect_digits"}:
            lines.append("- Use the other tools when they help; never invent their results.")
    return "\n".join(lines)
