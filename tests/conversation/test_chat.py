"""A call in text (`voxline chat`, text-mode evals) runs the phone call's own loop: tool rounds,
switch_language, collect_digits, transfers and goodbyes behave as on a call."""

from __future__ import annotations

import io
import sys

import pytest

from voxline.agent.config import AgentConfig, LanguagesConfig, ToolConfig
from voxline.conversation.chat import TextSession
from voxline.engines.base import LLMDelta, ToolCall

from .fakes import FakeLLM, end_call_delta


def agent(*tools: ToolConfig, **fields: object) -> AgentConfig:
    return AgentConfig.model_validate({"tools": [t.model_dump() for t in tools], **fields})


def tool_delta(name: str, **arguments: object) -> LLMDelta:
    return LLMDelta(tool_call=ToolCall(name, dict(arguments), ""), finish_reason="tool_calls")


async def test_greeting_then_an_answer_with_its_first_sentence_latency() -> None:
    llm = FakeLLM(["We open at nine. Anything else?"])
    async with TextSession(agent(greeting="Hello, bank here."), llm) as session:
        greeting = await session.start()
        reply = await session.say("When do you open?")
    assert greeting.text == "Hello, bank here."
    assert reply.text == "We open at nine. Anything else?"
    assert reply.first_sentence_ms is not None and reply.first_sentence_ms > 0
    assert llm.requests[-1][-1].content == "When do you open?"


async def test_a_tool_round_feeds_the_result_back_and_the_model_speaks_again() -> None:
    config = agent(ToolConfig(name="send_dtmf"))
    llm = FakeLLM(
        [[LLMDelta(text="Pressing it now. "), tool_delta("send_dtmf", digits="12")], "Done, I pressed 1 2."]
    )
    async with TextSession(config, llm) as session:
        await session.start()
        reply = await session.say("Press one two for me.")
    assert reply.tool_calls == [{"name": "send_dtmf", "arguments": {"digits": "12"}}]
    assert reply.text == "Pressing it now. Done, I pressed 1 2."
    assert session.call.sent_keys == "12"
    tool_results = [m for m in llm.requests[-1] if m.role == "tool"]
    assert tool_results and "Sent the keys 12" in tool_results[-1].content


async def test_switch_language_by_tool_switches_the_call_and_says_the_switch_line() -> None:
    config = agent(language="en", languages=LanguagesConfig(mode="on_request", allowed=["en", "hi"]))
    llm = FakeLLM([[tool_delta("switch_language", language="hi")]])
    async with TextSession(config, llm) as session:
        await session.start()
        reply = await session.say("Could you talk to me in my mother tongue?")
    assert reply.language == "hi"
    assert reply.tool_calls[0]["name"] == "switch_language"
    assert "हिंदी" in reply.text  # the built-in Hindi switch line


async def test_a_spoken_request_switches_without_the_model() -> None:
    config = agent(language="en", languages=LanguagesConfig(mode="on_request", allowed=["en", "hi"]))
    llm = FakeLLM([])
    async with TextSession(config, llm) as session:
        await session.start()
        reply = await session.say("Can we speak in Hindi please?")
    assert reply.language == "hi"
    assert llm.requests == []


async def test_collect_digits_takes_spoken_digits_from_the_next_line() -> None:
    config = agent(ToolConfig(name="collect_digits"))
    llm = FakeLLM(
        [
            [tool_delta("collect_digits", prompt="Please say your account number.", max_digits=6)],
            "Thanks, got it.",
        ]
    )
    async with TextSession(config, llm) as session:
        await session.start()
        asked = await session.say("I want my balance.")
        answered = await session.say("one two three four five six")
    assert "Please say your account number." in asked.text
    assert answered.text.endswith("Thanks, got it.")
    tool_results = [m.content for m in llm.requests[-1] if m.role == "tool"]
    assert any("123456" in r for r in tool_results)


async def test_transfer_and_end_call_end_the_text_call() -> None:
    config = agent(ToolConfig(name="transfer_call", target="sip:desk@pbx"), ToolConfig(name="end_call"))
    async with TextSession(config, FakeLLM([[tool_delta("transfer_call")]])) as session:
        await session.start()
        reply = await session.say("A person please.")
    assert reply.ended and reply.end_reason == "transferred" and reply.transferred_to == "sip:desk@pbx"
    assert reply.text  # the handover line, since the model said nothing
    async with TextSession(config, FakeLLM([[LLMDelta(text="Goodbye! "), end_call_delta()]])) as session:
        await session.start()
        reply = await session.say("That's all, bye.")
    assert reply.ended and reply.end_reason == "agent_ended"
    assert reply.text == "Goodbye!"


async def test_keys_reach_a_keypad_menu() -> None:
    config = AgentConfig.model_validate(
        {
            "greeting": "Hi.",
            "ivr": {
                "start": "main",
                "main": {
                    "prompt": "Press 1 for hours.",
                    "options": {"1": {"say": "We open at nine.", "then": "menu:main"}},
                },
            },
        }
    )
    async with TextSession(config, FakeLLM([])) as session:
        greeting = await session.start()
        reply = await session.press("1")
    assert greeting.text == "Hi. Press 1 for hours."
    assert reply.text.startswith("We open at nine.")


async def test_typed_lines_count_by_their_script_in_auto_mode() -> None:
    config = agent(
        language="en", languages=LanguagesConfig(mode="auto", allowed=["en", "hi"], switch_after_turns=2)
    )
    llm = FakeLLM(["जी।", "जी हाँ।", "Yes."])
    async with TextSession(config, llm) as session:
        await session.start()
        first = await session.say("मेरा कार्ड खो गया है।")
        second = await session.say("कृपया उसे बंद कर दीजिए।")
    assert first.language == "en"
    assert second.language == "hi"  # two Hindi turns in a row: the call follows the caller


async def test_the_chat_console_runs_tool_rounds(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`voxline chat` is a TextSession on a terminal: the model's transfer_call transfers the call."""
    from voxline import runtime
    from voxline.engines import factory

    # the model's own transfer_call (not the call's transfer on a request for a person)
    config = agent(
        ToolConfig(name="transfer_call", target="sip:desk@pbx"),
        greeting="Hello.",
        guard={"transfer_on_request": False},
    )
    llm = FakeLLM([[LLMDelta(text="Putting you through. "), tool_delta("transfer_call")]])
    monkeypatch.setattr(factory, "build_llm", lambda _agent: llm)
    monkeypatch.setattr(sys, "stdin", io.StringIO("A person please.\nthis line is never read\n"))
    await runtime.chat_console(config)
    out = capsys.readouterr().out
    assert "agent: Hello." in out
    assert "agent: Putting you through." in out
    assert "(tool transfer_call" in out
    assert "(the call was transferred to sip:desk@pbx)" in out
