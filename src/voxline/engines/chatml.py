"""ChatML prompts in Qwen2.5's format, built by us so they are byte-stable across turns.

llama.cpp reuses the KV cache for the longest common token prefix with the previous prompt. That
only pays off if the system prompt and tool block render to identical bytes every turn and history
is only ever appended; so everything here is deterministic (sorted-free, fixed JSON separators).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from voxline.engines.base import Message, ToolSpec

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
STOP_STRINGS = (IM_END, "<|endoftext|>")


def tools_block(tools: Sequence[ToolSpec]) -> str:
    """Qwen2.5's native tool instructions, appended to the system prompt."""
    signatures = "\n".join(
        json.dumps(
            {
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
            },
            ensure_ascii=False,
        )
        for t in tools
    )
    return (
        "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n"
        f"<tools>\n{signatures}\n</tools>\n\n"
        "For each function call, return a json object with function name and arguments within "
        "<tool_call></tool_call> XML tags:\n<tool_call>\n"
        '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
    )


def system_text(system_prompt: str, tools: Sequence[ToolSpec] = ()) -> str:
    return system_prompt + (tools_block(tools) if tools else "")


def render_tool_call_text(message: Message) -> str:
    calls = "\n".join(
        "<tool_call>\n"
        + json.dumps({"name": c.name, "arguments": c.arguments}, ensure_ascii=False)
        + "\n</tool_call>"
        for c in message.tool_calls
    )
    if message.content and calls:
        return f"{message.content}\n{calls}"
    return message.content or calls


def render_system_prefix(system_prompt: str, tools: Sequence[ToolSpec] = ()) -> str:
    """Exactly the bytes every prompt with this system prompt and these tools starts with."""
    return f"{IM_START}system\n{system_text(system_prompt, tools)}{IM_END}\n"


def render_prompt(messages: Sequence[Message], tools: Sequence[ToolSpec] = ()) -> str:
    """The whole prompt, ending with the open assistant turn the model completes."""
    parts: list[str] = []
    rest = list(messages)
    if rest and rest[0].role == "system":
        parts.append(render_system_prefix(rest.pop(0).content, tools))
    elif tools:
        parts.append(render_system_prefix("", tools))
    index = 0
    while index < len(rest):
        message = rest[index]
        if message.role == "tool":
            # Consecutive tool results share one user turn, as in Qwen's own template.
            responses = []
            while index < len(rest) and rest[index].role == "tool":
                responses.append(f"<tool_response>\n{rest[index].content}\n</tool_response>")
                index += 1
            parts.append(f"{IM_START}user\n" + "\n".join(responses) + f"{IM_END}\n")
            continue
        content = render_tool_call_text(message) if message.role == "assistant" else message.content
        parts.append(f"{IM_START}{message.role}\n{content}{IM_END}\n")
        index += 1
    parts.append(f"{IM_START}assistant\n")
    return "".join(parts)
