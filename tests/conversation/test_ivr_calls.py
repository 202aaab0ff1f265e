"""IVR menus in a whole call (fake engines, real clock): keys drive the menu, speech goes to the model."""

from __future__ import annotations

from typing import Any

from conversation.test_conversation import Harness, conversation, make_agent

IVR: dict[str, Any] = {
    "start": "main",
    "main": {
        "prompt": "Main.",
        "options": {
            "1": {"say": "Balances.", "then": "menu:balance"},
            "2": {"action": "transfer", "target": "sip:cards@pbx"},
            "3": {"say": "We open at nine."},
            "4": {"action": "llm", "note": "The caller chose loans."},
            "5": {"action": "collect", "note": "Account lookup.", "collect": {"max_digits": 3}},
            "9": {"action": "repeat"},
            "#": {"action": "hangup"},
        },
        "invalid": "Not an option.",
    },
    "balance": {"prompt": "Balance menu.", "options": {"*": {"action": "back"}}},
}


def ivr_agent(**ivr: Any) -> Any:
    return make_agent(ivr=IVR | ivr)


def spoken_after_greeting(h: Harness) -> list[str]:
    return h.tts.spoken[2:]


async def press_when_listening(h: Harness, keys: str, after: int) -> None:
    await h.until_listening(after=after)
    for key in keys:
        h.call.press(key)


async def test_start_menu_follows_the_greeting_and_keys_walk_the_tree() -> None:
    async with conversation(agent=ivr_agent()) as h:
        await press_when_listening(h, "1", after=0)  # say + sub-menu
        await press_when_listening(h, "*", after=1)  # back
        await press_when_listening(h, "9", after=2)  # repeat
        await press_when_listening(h, "7", after=3)  # invalid
        await press_when_listening(h, "3", after=4)  # say, stay in the menu
        await h.until_listening(after=5)
        await h.call.caller_hangs_up()
        report = await h.report()
    assert h.tts.spoken[:2] == ["Hello.", "Main."]
    assert spoken_after_greeting(h) == [
        "Balances.",
        "Balance menu.",
        "Main.",
        "Main.",
        "Not an option.",
        "Main.",
        "We open at nine.",
    ]
    assert [t.dtmf for t in report.turns] == ["", "1", "*", "9", "7", "3"]
    assert h.llm.requests == []  # the menu never needed the model
    assert h.conversation.floor.keypad.ivr.active == "main"


async def test_a_key_barges_in_on_the_menu_prompt() -> None:
    long_prompt = "Main. " + "For this press that. " * 8
    async with conversation(agent=ivr_agent(main=IVR["main"] | {"prompt": long_prompt})) as h:
        await h.until(lambda: "For this press that." in h.tts.spoken and h.call.sink.is_playing)
        await h.sleep(0.3)
        h.call.press("3")
        await h.until_listening(after=1)
        await h.call.caller_hangs_up()
        report = await h.report()
    assert report.turns[0].interrupted
    assert h.tts.spoken[-1] == "We open at nine."
    full_s = sum(h.tts.duration_s(s) for s in h.tts.spoken)
    assert h.call.sink.emitted_s < full_s - 1.0


async def test_transfer_key_transfers_and_reports_the_target() -> None:
    async with conversation(agent=ivr_agent()) as h:
        h.call.can_transfer = True
        await press_when_listening(h, "2", after=0)
        report = await h.report()
    assert h.call.transferred_to == ["sip:cards@pbx"]
    assert report.end_reason == "transferred" and report.transferred_to == "sip:cards@pbx"


async def test_failed_transfer_says_so_and_stays_in_the_menu() -> None:
    async with conversation(agent=ivr_agent()) as h:
        await press_when_listening(h, "2", after=0)
        await press_when_listening(h, "3", after=1)
        await h.until_listening(after=2)
    assert h.call.transferred_to == ["sip:cards@pbx"]
    assert spoken_after_greeting(h) == ["Sorry, I can't transfer you right now.", "We open at nine."]


async def test_hangup_key_says_goodbye_and_hangs_up() -> None:
    async with conversation(agent=ivr_agent()) as h:
        await press_when_listening(h, "#", after=0)
        report = await h.report()
    assert report.end_reason == "agent_ended" and h.call.hung_up == "agent_ended"
    assert h.tts.spoken[-1] == "Goodbye then."


async def test_llm_key_hands_the_turn_to_the_model_with_the_note() -> None:
    async with conversation(["Loans, sure."], agent=ivr_agent()) as h:
        await press_when_listening(h, "4", after=0)
        await h.until_listening(after=1)
        h.call.press("1")  # outside the menu now: a key run for the model
        await h.until_listening(after=2, within_s=8)
    assert h.llm.requests[0][-1].content == "(The caller chose loans.)"
    assert h.llm.requests[1][-1].content == "(caller pressed 1)"
    assert h.conversation.floor.keypad.ivr.active is None


async def test_collect_option_hands_the_digits_to_the_model() -> None:
    async with conversation(["Found it."], agent=ivr_agent()) as h:
        await press_when_listening(h, "5", after=0)
        await h.until(lambda: h.conversation.floor.keypad.collecting)
        for key in "123":
            h.call.press(key)
        await h.until_listening(after=1)
    assert h.llm.requests[0][-1].content == "(Account lookup. The caller entered 123.)"


async def test_speech_leaves_the_menu_and_the_model_knows_where_the_caller_was() -> None:
    async with conversation(["I can help with that."], ["I lost my card"], ivr_agent()) as h:
        await h.until_listening(after=0)
        h.call.talk(0.4)
        await h.until_listening(after=1)
    last = h.llm.requests[0][-1]
    assert (
        last.role == "user"
        and 'keypad menu "main"' in last.content
        and last.content.endswith("I lost my card")
    )
    assert h.conversation.floor.keypad.ivr.active is None


async def test_silence_at_a_menu_repeats_its_prompt() -> None:
    agent = make_agent(
        ivr=IVR | {"main": IVR["main"] | {"timeout_s": 0.3}},
        limits={"silence_reprompt_s": 30, "max_reprompts": 1},
    )
    async with conversation(agent=agent) as h:
        report = await h.report(within_s=8)
    assert h.tts.spoken == ["Hello.", "Main.", "Main.", "Goodbye then."]
    assert report.end_reason == "silence"
