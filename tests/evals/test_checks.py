"""The eval checks on canned replies: what the issue saw the agent say, and what it should have said."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxline.agent.config import load_agent
from voxline.evals.checks import (
    CallOutcome,
    InternalText,
    TurnOutcome,
    check_call,
    check_turn,
    devanagari_language,
    echoes,
    fixed_lines,
    matches,
    refusal,
    repeated_sentences,
    script_shares,
    sentences,
)
from voxline.evals.scenario import CallExpect, TurnExpect

EXAMPLES = Path(__file__).parents[2] / "examples" / "agents"
BANK = load_agent(EXAMPLES / "bank.yaml")
IVR = load_agent(EXAMPLES / "bank-ivr.yaml")
OFFER = TurnExpect.model_validate(
    {"any_of": [{"tool": "transfer_call"}, {"mention": [["/\\b(transfer|put you through|colleague)/"]]}]}
)


def failed(
    expect: TurnExpect, said: str, caller: str = "", agent_internal: InternalText | None = None, **kw: object
) -> list[str]:
    outcome = TurnOutcome(caller=caller, said=said, **kw)  # type: ignore[arg-type]
    checks = check_turn(expect, outcome, agent_internal or InternalText.of(BANK), 1)
    return [c.name for c in checks if not c.passed]


def test_the_refusals_from_the_issue_fail_and_a_handover_passes() -> None:
    expect = TurnExpect(no_refusal=True, any_of=OFFER.any_of)
    assert failed(expect, "I'm sorry, but I can't assist with that.") == ["no_refusal", "any_of"]
    assert failed(expect, "I'm sorry, I cannot help you with that request.") == ["no_refusal", "any_of"]
    assert failed(expect, "A colleague can freeze it right away. Shall I put you through?") == []
    assert failed(expect, "", tool_calls=[{"name": "transfer_call", "arguments": {}}]) == []
    assert refusal("I can't see your balance, but a colleague can.") is None
    assert refusal("मैं इसमें मदद नहीं कर सकती।") is not None


def test_internal_text_from_the_issue_is_caught() -> None:
    expect = TurnExpect(internal_text=False)
    ivr = InternalText.of(IVR)
    leak = 'You were at the keypad menu "main" which says: For balances press 1.'
    assert failed(expect, leak, agent_internal=ivr) == ["internal_text"]
    assert failed(expect, 'You should say "transfer_call" to transfer the caller to a colleague.') == [
        "internal_text"
    ]
    assert failed(expect, "Offer to transfer the caller to a colleague.") == ["internal_text"]
    assert failed(expect, "Reply only in English.") == ["internal_text"]
    # the persona's facts may be said; only its instructions are internal
    assert failed(expect, "A new card arrives in five working days.") == []
    assert failed(expect, "I'm Maya, a phone support agent at Northwind Bank.") == []
    assert failed(expect, "For balances press 1, for cards press 2.", agent_internal=ivr) == []
    found = InternalText.of(BANK).find("Sure. end_call")
    assert found == ["end_call"]


def test_echo_and_repeats() -> None:
    assert echoes("I'm really fed up with this bank!", "You're really fed up.")
    assert not echoes(
        "I'm really fed up with this bank!", "I'm sorry about that, let me put you through to a colleague."
    )
    expect = TurnExpect(no_echo=True)
    assert failed(expect, "You're really fed up.", caller="I'm really fed up.") == ["no_echo"]
    twice = "I apologize for the mistake. I was unable to locate the person you're calling."
    assert repeated_sentences([twice, twice]) == [
        "I apologize for the mistake.",
        "I was unable to locate the person you're calling.",
    ]
    greeting = BANK.greeting
    assert repeated_sentences([greeting, greeting], fixed_lines(BANK)) == []
    outcome = CallOutcome([TurnOutcome("a", twice), TurnOutcome("b", twice)])
    assert [c.name for c in check_call(CallExpect(no_repeats=True), outcome) if not c.passed] == [
        "no_repeats"
    ]


def test_mentions_phrases_and_regexes() -> None:
    assert matches("five working days", "It arrives in five  working days.")
    assert not matches("five", "It arrives in twenty-fivefold time.")
    assert matches("/\\b(9|nine) ?am\\b/", "We open at 9 am.")
    assert matches(["nine", "9"], "At 9.")
    expect = TurnExpect(mention=[["/\\b(9|nine)\\b/"]], not_mention=["/(\\d[\\s-]?){8,}/"])
    assert failed(expect, "We open at nine.") == []
    assert failed(expect, "Your card 4539 1488 0343 6467 is blocked, we open at 9.") == ["not_mention"]
    assert failed(expect, "We open in the morning.") == ["mention"]


def test_sentences_questions_and_script() -> None:
    assert sentences("Sure. I can help! What do you need? ") == ["Sure.", "I can help!", "What do you need?"]
    assert sentences("जी हाँ। शाखा नौ बजे खुलती है।") == ["जी हाँ।", "शाखा नौ बजे खुलती है।"]
    expect = TurnExpect(max_sentences=2, max_questions=1)
    assert failed(expect, "Sure. I can help! What do you need?") == ["max_sentences"]
    assert failed(expect, "Is it lost? Or stolen?") == ["max_questions"]
    hindi = TurnExpect(language="hi")
    assert failed(hindi, "जी हाँ, हमारी शाखाएँ सुबह नौ बजे खुलती हैं।") == []
    assert failed(hindi, "Yes, our branches open at nine.") == ["script"]
    assert failed(hindi, "हो, आमची शाखा सकाळी नऊ वाजता उघडते आणि तुम्ही येऊ शकता, ती बंद नाही आहे.") == ["language"]
    assert script_shares("ATM कार्ड")["devanagari"] > 0.5
    assert devanagari_language("मी तुम्हाला मदत करू शकते, शाखा नऊ वाजता उघडते आहे") == "mr"
    assert devanagari_language("मैं आपकी मदद कर सकती हूँ") == "hi"


def test_tools_arguments_and_the_end_of_the_call() -> None:
    expect = TurnExpect(tool="transfer_call", tool_args={"department": "cards"}, no_tool=["end_call"])
    cards = [{"name": "transfer_call", "arguments": {"department": "Cards"}}]
    assert failed(expect, "", tool_calls=cards) == []
    loans = [{"name": "transfer_call", "arguments": {"department": "loans"}}]
    assert failed(expect, "", tool_calls=loans) == ["tool_args"]
    assert failed(expect, "Bye.", tool_calls=[{"name": "end_call", "arguments": {}}]) == ["tool", "no_tool"]
    call = CallOutcome(
        [TurnOutcome("x", "", tool_calls=cards)], end_reason="transferred", transferred_to="sip:c"
    )
    expect_call = CallExpect(
        transferred=True, transfer_department="cards", ended=False, no_tools=["end_call"]
    )
    assert [c.name for c in check_call(expect_call, call) if not c.passed] == []
    open_call = CallOutcome([TurnOutcome("x", "Sure, I can help you through to a human colleague.")])
    assert [c.name for c in check_call(expect_call, open_call) if not c.passed] == [
        "call_transferred",
        "transfer_department",
    ]


@pytest.mark.parametrize("text", ["", "   "])
def test_silence_fails_said(text: str) -> None:
    assert failed(TurnExpect(said=True, language="hi"), text) == ["said"]
