"""The system prompt. Short on purpose: on a 2-core CPU every prompt token costs prefill time."""

from __future__ import annotations

import json
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
        names = ", ".join(language_name(a) for a in agent.spoken_languages)
        return f"You speak {names}. Reply in the language the last note names."
    if agent.language != "en":
        return reply_instruction(agent.language)
    return CALLER_LANGUAGE_RULE


def agent_rules(agent: AgentConfig) -> list[str]:
    """The rules the prompt lists: the style rules, the language rule, then the agent's own."""
    rules = [*STYLE_RULES, language_rule(agent)]
    return rules + [r.strip() for r in agent.rules if r.strip() and r.strip() not in rules]


def tool_rules(names: set[str]) -> list[str]:
    lines = []
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
    return lines


def example_lines(agent: AgentConfig) -> list[str]:
    """The agent file's example exchanges, as a transcript with tool calls in the model's own format."""
    lines: list[str] = []
    for example in agent.examples:
        lines.append(f"Caller: {example.caller.strip()}")
        said = example.agent.strip()
        if example.tool:
            call = json.dumps({"name": example.tool, "arguments": example.arguments}, ensure_ascii=False)
            said = f"{said} <tool_call>{call}</tool_call>".strip()
        lines.append(f"You: {said}")
    return lines


def build_system_prompt(agent: AgentConfig, tools: Sequence[ToolSpec] = ()) -> str:
    lines = [agent.persona.strip(), "", "Rules:"]
    lines += [f"- {rule}" for rule in agent_rules(agent)]
    names = {t.name for t in tools}
    if names:
        lines += ["", "Tools:", *tool_rules(names)]
    if agent.examples:
        lines += ["", "Example replies:", *example_lines(agent)]
    return "\n".join(lines)


def internal_texts(agent: AgentConfig, tools: Sequence[ToolSpec] = ()) -> list[str]:
    """What the model is told but must never read out: how to behave (not the agent's own rules: a
    caller may well hear "I will never ask for your PIN") and the tool instructions."""
    return [*STYLE_RULES, language_rule(agent), *tool_rules({t.name for t in tools})]


def agent_scope(agent: AgentConfig) -> str:
    """What the agent talks about, in its own words: the persona, its rules, what its examples and
    routes say and its fixed lines. Not the examples' caller lines: "Is this Luigi's Pizza?" shows a
    wrong number, it does not make pizza the agent's business. The guard's off-topic test judges a
    reply against this (plus what was said and noted in the call), never against the caller's words."""
    parts = [agent.persona, *agent.rules, *(e.agent for e in agent.examples), *(r.say for r in agent.routes)]
    parts += [agent.greeting or "", agent.guard.off_topic or "", agent.guard.handover]
    return " ".join(p.strip() for p in parts if p and p.strip())
