from __future__ import annotations

from voxline.engines.base import Message, ToolCall, ToolSpec
from voxline.engines.chatml import render_prompt, render_system_prefix
from voxline.engines.toolcalls import ToolCallParser, parse_tool_call


def run(pieces: list[str]) -> tuple[str, list[ToolCall]]:
    parser = ToolCallParser()
    out = [x for p in pieces for x in parser.feed(p)] + parser.finish()
    return "".join(x for x in out if isinstance(x, str)), [x for x in out if isinstance(x, ToolCall)]


def test_text_passes_through_and_tag_split_across_tokens_is_hidden() -> None:
    text, calls = run(
        [
            "Sure, ",
            "good",
            "bye! <",
            "tool_",
            'call>\n{"name": ',
            '"end_call", "arguments": {}}',
            "\n</tool",
            "_call>",
        ]
    )
    assert text == "Sure, goodbye! "
    assert [(c.name, c.arguments) for c in calls] == [("end_call", {})]
    assert calls[0].id.startswith("call_")


def test_text_is_released_as_soon_as_it_cannot_be_a_tag() -> None:
    parser = ToolCallParser()
    assert parser.feed("Hello <b") == ["Hello <b"]
    assert parser.feed(" there <tool") == [" there "]
    assert parser.feed("box") == ["<toolbox"]


def test_bare_json_and_truncated_json_become_calls() -> None:
    _, calls = run(['{"name": "end_call", "arguments": {"type": "object", "properties": {"x": "y"}}'])
    assert [(c.name, c.arguments) for c in calls] == [("end_call", {})]
    _, calls = run(['  {"name": "transfer_call", "arguments": "{\\"to\\": \\"sales\\"}"}'])
    assert calls[0].arguments == {"to": "sales"}


def test_unparseable_call_is_dropped_not_spoken() -> None:
    text, calls = run(["Okay. <tool_call>\n{not json", " at all"])
    assert text == "Okay. " and calls == []


def test_parse_tool_call_rejects_non_calls() -> None:
    assert parse_tool_call('{"foo": 1}') is None
    assert parse_tool_call("[1, 2]") is None


def test_prompt_prefix_is_stable_across_turns() -> None:
    tools = [ToolSpec("end_call", "End the call.")]
    system = Message("system", "You are Maya.")
    turn1 = render_prompt([system, Message("user", "Hi")], tools)
    history = [
        system,
        Message("user", "Hi"),
        Message("assistant", "Hello!"),
        Message("user", "Bye"),
        Message("assistant", "", tool_calls=[ToolCall("end_call", {})]),
        Message("tool", "ok", tool_call_id="call_1"),
    ]
    turn2 = render_prompt(history, tools)
    prefix = render_system_prefix("You are Maya.", tools)
    assert turn1.startswith(prefix) and turn2.startswith(prefix)
    assert turn2.startswith(turn1.removesuffix("<|im_start|>assistant\n"))
    assert "<tools>" in prefix and '"name": "end_call"' in prefix
    assert '<tool_call>\n{"name": "end_call", "arguments": {}}\n</tool_call><|im_end|>' in turn2
    assert "<|im_start|>user\n<tool_response>\nok\n</tool_response><|im_end|>" in turn2
    assert turn2.endswith("<|im_start|>assistant\n")
