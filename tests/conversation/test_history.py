"""History: heard-only text after barge-in, and trimming that keeps the prompt prefix stable."""

from __future__ import annotations

from voxline.conversation.history import History
from voxline.engines.base import ToolCall


def words(text: str) -> int:
    return len(text.split())


def exchange(history: History, n: int) -> None:
    history.add_user(f"question {n} " + "word " * 8)
    history.add_assistant(f"answer {n} " + "word " * 8)


def test_interrupted_reply_keeps_only_heard_words_flagged_interrupted() -> None:
    history = History("sys")
    history.add_user("hi")
    history.add_assistant("Your card is", interrupted=True)
    assert history.messages[-1].content == "Your card is"
    assert history.messages[-1].interrupted


def test_consecutive_user_turns_are_merged() -> None:
    history = History("sys")
    history.add_user("I want to")
    history.add_user("block my card")
    assert [(m.role, m.content) for m in history.messages] == [("user", "I want to block my card")]


def test_tool_calls_and_results_are_kept() -> None:
    history = History("sys")
    history.add_user("bye")
    call = ToolCall("end_call", {}, "c1")
    history.add_assistant("Goodbye.", tool_calls=[call])
    history.add_tool_result(call, "ok")
    roles = [m.role for m in history.messages]
    assert roles == ["user", "assistant", "tool"]
    assert history.messages[1].tool_calls == [call] and history.messages[2].tool_call_id == "c1"


def test_trimming_keeps_system_prompt_and_whole_pairs() -> None:
    history = History("system prompt")
    history.add_assistant("Hello, how can I help?")  # the greeting
    for n in range(10):
        exchange(history, n)
    messages = history.messages_for_llm(100, words)
    assert messages[0].role == "system" and messages[0].content == "system prompt"
    assert messages[1].role == "user"  # starts at a whole exchange
    assert messages[-1].content.startswith("answer 9")
    assert sum(words(m.content) + 4 for m in messages[1:]) <= 100


def test_trimmed_prefix_stays_stable_across_turns() -> None:
    history = History("sys")
    for n in range(10):
        exchange(history, n)
    first_kept: list[str] = []
    for n in range(10, 16):
        exchange(history, n)
        messages = history.messages_for_llm(120, words)
        first_kept.append(messages[1].content)
    # trimmed in big blocks: the oldest kept message changes rarely, not on every turn
    assert len(set(first_kept)) <= 3
    assert first_kept[0] == first_kept[1]


def test_no_trimming_under_budget() -> None:
    history = History("sys")
    exchange(history, 0)
    assert len(history.messages_for_llm(1000, words)) == 3
