"""Call control in a whole call (fake engines, real clock): key barge-in, key runs, collect_digits,
send_dtmf and named transfers."""

from __future__ import annotations

from typing import Any

import pytest

from conversation.fakes import Script
from conversation.test_conversation import LONG, conversation, make_agent
from voxline.engines.base import LLMDelta, ToolCall


def tool_delta(name: str, **arguments: Any) -> LLMDelta:
    return LLMDelta(tool_call=ToolCall(name, arguments, f"call_{name}"), finish_reason="tool_calls")


def keypad_agent(**overrides: Any) -> Any:
    tools = [{"name": "end_call"}, {"name": "collect_digits"}, {"name": "send_dtmf"}]
    config: dict[str, Any] = {"tools": tools, "ivr": {"inter_digit_timeout_s": 0.4}}
    return make_agent(**(config | overrides))


def tool_result(messages: list[Any]) -> str:
    return str(next(m.content for m in reversed(messages) if m.role == "tool"))


async def test_key_press_barges_in_and_a_key_run_is_one_turn() -> None:
    async with conversation(
        [LONG, "Thanks, you pressed one two three."], ["I need a card"], keypad_agent()
    ) as h:
        await h.until_listening(after=0)
        h.call.talk(0.4)
        await h.until_speaking()
        await h.sleep(0.5)
        for key in "123":
            h.call.press(key)
            await h.sleep(0.1)
        await h.until_listening(after=2, within_s=8)
        await h.call.caller_hangs_up()
        report = await h.report()
    cut = report.turns[1]
    assert cut.interrupted and cut.agent_text and cut.agent_text != LONG
    assert cut.metrics.barge_in_stop_ms is not None
    full_reply_s = h.tts.duration_s("Hello.") + sum(h.tts.duration_s(s) for s in h.tts.spoken if s in LONG)
    assert h.call.sink.emitted_s < full_reply_s - 0.5
    keyed = report.turns[2]
    assert keyed.user_text == "(caller pressed 1 2 3)" and keyed.dtmf == "123"
    assert h.llm.requests[1][-1].content == "(caller pressed 1 2 3)"
    assert report.as_dict()["turns"][2]["dtmf"] == "123"


def collect_script(**arguments: Any) -> list[Script]:
    args = {"prompt": "Enter your account number."} | arguments
    return [[LLMDelta(text="Sure."), tool_delta("collect_digits", **args)], "Thank you."]


async def test_collect_digits_ends_on_the_terminator_and_keys_stop_the_prompt() -> None:
    async with conversation(collect_script(), ["check my balance"], keypad_agent()) as h:
        await h.until_listening(after=0)
        h.call.talk(0.4)
        await h.until(lambda: "Enter your account number." in h.tts.spoken and h.call.sink.is_playing)
        await h.sleep(0.1)
        for key in "1234#":
            h.call.press(key)
        await h.until_listening(after=1, within_s=8)
        await h.call.caller_hangs_up()
        report = await h.report()
    assert tool_result(h.llm.requests[1]) == "The caller entered 1234."
    turn = report.turns[1]
    assert turn.dtmf == "1234" and turn.tool_calls == ["collect_digits"]
    assert turn.agent_text.startswith("Sure.") and turn.agent_text.endswith("Thank you.")
    prompt_s = h.tts.duration_s("Enter your account number.")
    heard_s = h.call.sink.emitted_s - sum(h.tts.duration_s(t) for t in ("Hello.", "Sure.", "Thank you."))
    assert heard_s < prompt_s - 0.1  # the first key cut the prompt short


async def test_collect_digits_stops_at_max_digits() -> None:
    script = collect_script(max_digits=3, terminator="", inter_digit_timeout_s=10, first_digit_timeout_s=10)
    async with conversation(script, ["my number"], keypad_agent()) as h:
        await h.until_listening(after=0)
        h.call.talk(0.4)
        await h.until(lambda: h.conversation.state == "listening" and h.conversation.floor.keypad.collecting)
        for key in "9876":
            h.call.press(key)
        await h.until_listening(after=1, within_s=5)  # well before the 10 s timeouts
    assert tool_result(h.llm.requests[1]) == "The caller entered 987."


async def test_collect_digits_inter_digit_timeout() -> None:
    script = collect_script(inter_digit_timeout_s=0.4, min_digits=4)
    async with conversation(script, ["my number"], keypad_agent()) as h:
        await h.until_listening(after=0)
        h.call.talk(0.4)
        await h.until(lambda: h.conversation.floor.keypad.collecting)
        h.call.press("4")
        h.call.press("2")
        await h.until_listening(after=1, within_s=8)
    assert "only 42" in tool_result(h.llm.requests[1])


async def test_collect_digits_accepts_digits_said_aloud() -> None:
    script = collect_script(inter_digit_timeout_s=0.5)
    async with conversation(script, ["my number", "one two three pound"], keypad_agent()) as h:
        await h.until_listening(after=0)
        h.call.talk(0.4)
        await h.until(lambda: h.conversation.state == "listening" and h.conversation.floor.keypad.collecting)
        h.call.talk(0.5)
        await h.until_listening(after=1, within_s=8)
    assert tool_result(h.llm.requests[1]) == "The caller entered 123."


async def test_collect_digits_ends_when_the_caller_talks_about_something_else() -> None:
    async with conversation(collect_script(), ["my number", "I don't have it"], keypad_agent()) as h:
        await h.until_listening(after=0)
        h.call.talk(0.4)
        await h.until(lambda: h.conversation.state == "listening" and h.conversation.floor.keypad.collecting)
        h.call.talk(0.5)
        await h.until_listening(after=1, within_s=8)
    assert tool_result(h.llm.requests[1]).endswith("said: I don't have it")


async def test_send_dtmf_reaches_the_call_and_failure_is_reported() -> None:
    replies: list[Script] = [
        [tool_delta("send_dtmf", digits="1 2#")],
        "Done.",
        [tool_delta("send_dtmf", digits="9")],
        "Hm.",
    ]
    async with conversation(replies, ["press one two pound", "press nine"], keypad_agent()) as h:
        await h.until_listening(after=0)
        h.call.talk(0.4)
        await h.until_listening(after=1)
        h.call.can_send_dtmf = False
        h.call.talk(0.4)
        await h.until_listening(after=2)
    assert h.call.sent_dtmf == ["12#", "9"]
    assert tool_result(h.llm.requests[1]) == "Sent the keys 12#."
    assert "failed" in tool_result(h.llm.requests[3])


async def test_transfer_to_a_named_department_is_in_the_report() -> None:
    targets = {"sales": "sip:200@pbx", "support": "201"}
    agent = make_agent(tools=[{"name": "transfer_call", "targets": targets}])
    reply = [LLMDelta(text="Putting you through."), tool_delta("transfer_call", department="Support")]
    async with conversation([reply], ["I need support"], agent) as h:
        h.call.can_transfer = True
        await h.until_listening(after=0)
        h.call.talk(0.4)
        report = await h.report()
    assert h.call.transferred_to == ["201"]
    assert report.end_reason == "transferred" and report.transferred_to == "201"
    assert report.as_dict()["transferred_to"] == "201"


@pytest.mark.parametrize("order", ["bye_first", "verdict_first"])
async def test_a_transfer_is_recorded_whichever_comes_first_the_bye_or_the_verdict(
    order: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11: Asterisk ends our leg (the caller's side "hangs up") as the transfer completes.
    Whether that comes before the transport knows the transfer worked, or just after, the call
    record says transferred."""
    agent = make_agent(tools=[{"name": "transfer_call", "target": "200"}])
    reply = [LLMDelta(text="Putting you through."), tool_delta("transfer_call")]
    async with conversation([reply], ["a human please"], agent) as h:
        call = h.call

        async def transfer(target: str) -> bool:
            call.transferred_to.append(target)
            await call.caller_hangs_up()  # the peer's BYE, or our own hang-up on success: input ends
            if order == "bye_first":
                await h.sleep(0.3)  # ... and the NOTIFY 200 comes a little later
            return True

        monkeypatch.setattr(call, "transfer", transfer)
        await h.until_listening(after=0)
        call.talk(0.4)
        report = await h.report()
    assert call.transferred_to == ["200"]
    assert (report.end_reason, report.transferred_to) == ("transferred", "200")


async def test_a_caller_who_leaves_during_a_failed_transfer_is_a_caller_hangup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    agent = make_agent(tools=[{"name": "transfer_call", "target": "200"}])
    reply = [LLMDelta(text="Putting you through."), tool_delta("transfer_call")]
    async with conversation([reply], ["a human please"], agent) as h:
        call = h.call

        async def transfer(target: str) -> bool:
            await call.caller_hangs_up()
            await h.sleep(0.2)
            return False  # NOTIFY 503: the transfer did not happen

        monkeypatch.setattr(call, "transfer", transfer)
        await h.until_listening(after=0)
        call.talk(0.4)
        report = await h.report()
    assert (report.end_reason, report.transferred_to) == ("caller_hangup", None)
