"""The system prompt. Short on purpose: on a 2-core CPU every prompt token costs prefill time."""

from __future__ import annotations

from collections.abc import Sequence

from voxline.agent.config import AgentConfig
from voxline.conversation.language import language_name, reply_instruction
from voxline.engines.base import ToolSpec

STYLE_RULES = (
    "You are speaking on a phone call; everything you write is read aloud.",
    "Answer in one or two short, plain spoken sentences.",
    "Ask at most one question at a time.",
    "Never use emoji, markdown, lists, headings or stage directions like (laughs).",
)
CALLER_LANGUAGE_RULE = "Reply in the caller's language."


def language_rule(agent: AgentConfig) -> str:
    """Fixed to one language other than English: say which, in the (cached) prompt. Several
    languages: the per-turn note at the end of the messages names the one for each reply."""
    if agent.languages.mode != "fixed":
        names = ", ".join(language_name(a) for a in dict.fromkeys([agent.language, *agent.languages.allowed]))
        return f"You speak {names}. Reply in the language the last note names."
    if agent.language != "en":
        return reply_instruction(agent.language)
    return CALLER_LANGUAGE_RULE


def build_system_prompt(agent: AgentConfig, tools: Sequence[ToolSpec] = ()) -> str:
    lines = [agent.persona.strip(), "", "Rules:"]
    rules = [*STYLE_RULES, language_rule(agent)]
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
        if "switch_language" in names:
            lines.append("- If the caller asks to speak another language, call switch_language.")
        if names - {"end_call", "transfer_call", "collect_digits", "switch_language"}:
            lines.append("- Use the other tools when they help; never invent their results.")
    return "\n".join(lines)
