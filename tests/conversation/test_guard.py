"""The reply guard: refusals and internal text are never spoken; the handover line is said instead."""

from __future__ import annotations

import pytest

from voxline.agent.config import AgentConfig
from voxline.conversation.guard import (
    ReplyGuard,
    accepts_offer,
    announces_transfer,
    asks_for_person,
    offers_transfer,
    pick_department,
    sentence_key,
)
from voxline.conversation.prompt import internal_texts
from voxline.conversation.sanitize import ReplyPolicy
from voxline.engines.base import ToolSpec

HANDOVER = "A colleague can help with that. Shall I put you through?"


def bank_ivr_guard() -> ReplyGuard:
    agent = AgentConfig.model_validate(
        {
            "tools": [{"name": "end_call"}, {"name": "transfer_call", "target": "200"}],
            "ivr": {
                "start": "main",
                "main": {
                    "prompt": "For balances press 1, for cards press 2, or just tell me what you need.",
                    "options": {"1": {"action": "llm", "note": "The caller asked about recent payments."}},
                },
            },
        }
    )
    specs = [ToolSpec("end_call", ""), ToolSpec("transfer_call", "")]
    return ReplyGuard.for_agent(agent, internal_texts(agent, specs), [s.name for s in specs])


@pytest.mark.parametrize(
    "sentence",
    [
        "I'm sorry, but I can't assist with that.",
        "I cannot help you with this request.",
        "Unfortunately I am unable to assist with card requests.",
        "As an AI, I don't have access to your account.",
    ],
)
def test_refusals_are_flagged(sentence: str) -> None:
    flag = bank_ivr_guard().check(sentence)
    assert flag is not None and flag.kind == "refusal"


@pytest.mark.parametrize(
    "sentence",
    [
        'You were at the keypad menu "main" which says: For balances press 1.',
        'You should say "transfer_call" to transfer the caller to a colleague.',
        "I will call end call now.",
        "The caller wants their balance.",
        "The caller asked about recent payments.",
        "Everything you write is read aloud on this phone call.",
    ],
)
def test_internal_text_is_flagged(sentence: str) -> None:
    flag = bank_ivr_guard().check(sentence)
    assert flag is not None and flag.kind == "leak"


@pytest.mark.parametrize(
    "sentence",
    [
        "I'm sorry to hear that.",
        "I can't see account details, but a colleague can.",
        "I will never ask for your full card number, PIN or password.",
        "Our branches open Saturday from 9 am to 1 pm.",
        "You can press 1 for balances.",
        "For balances press 1, for cards press 2, or just tell me what you need.",
        "Shall I transfer you to a colleague?",
    ],
)
def test_ordinary_sentences_pass(sentence: str) -> None:
    assert bank_ivr_guard().check(sentence) is None


def test_policy_replaces_a_refusal_with_the_handover_and_ends_the_reply() -> None:
    policy = ReplyPolicy(guard=bank_ivr_guard(), handover=HANDOVER)
    assert policy.accept("I'm sorry, but I can't assist with that.") == HANDOVER
    assert policy.done
    assert policy.accept("Anything else?") is None
    assert [f.kind for f in policy.flags] == ["refusal"]


def test_an_early_apology_clause_is_spoken_and_judged_with_the_rest_of_its_sentence() -> None:
    policy = ReplyPolicy(guard=bank_ivr_guard(), handover=HANDOVER)
    assert policy.accept("I'm sorry,") == "I'm sorry,"  # the first words are not held back
    # "sorry, but I can't …"; the line runs on from the clause already said
    assert (
        policy.accept("but I can't see your PIN.")
        == "a colleague can help with that. Shall I put you through?"
    )
    assert [f.kind for f in policy.flags] == ["refusal"]

    kind = ReplyPolicy(guard=bank_ivr_guard(), handover=HANDOVER)
    assert kind.accept("I'm sorry,") == "I'm sorry,"
    assert kind.accept("that sounds stressful.") == "that sounds stressful."
    assert not kind.flags


def test_a_leak_after_a_good_sentence_keeps_the_good_one() -> None:
    policy = ReplyPolicy(max_sentences=3, guard=bank_ivr_guard(), handover=HANDOVER)
    assert policy.accept("Sure.") == "Sure."
    assert policy.accept("I will use transfer_call now.") == HANDOVER
    assert policy.done


@pytest.mark.parametrize(
    ("text", "announced"),
    [
        ("I'll transfer you to a colleague now.", True),
        ("One moment, I'm connecting you with our card team.", True),
        ("Let me put you through.", True),
        ("Transferring you now.", True),
        ("Shall I transfer you to a colleague?", False),
        ("A colleague can freeze your card.", False),
        ("Would you like me to connect you?", False),
    ],
)
def test_announces_transfer(text: str, announced: bool) -> None:
    assert announces_transfer(text) is announced


def test_offers_and_yes() -> None:
    assert offers_transfer("A colleague can block it. Shall I put you through?")
    assert offers_transfer(HANDOVER)
    assert not offers_transfer("Our branches open at nine. Anything else?")
    assert not offers_transfer("Shall I transfer you? Our branches open at nine.")
    for yes in ("Yes please.", "yeah", "Sure, go ahead.", "Okay."):
        assert accepts_offer(yes), yes
    for no in ("No thanks.", "Yes, but not now.", "What are your hours?", "Wait, one question first."):
        assert not accepts_offer(no), no


GROUNDS = "Branches open Monday to Friday 9 am to 5 pm. A new card arrives in five working days."


@pytest.mark.parametrize(
    "sentence",
    [
        "You need a balance of at least $10,000 to open an account.",
        "Your balance is 1000.",
        "Our personal loan rate is 10 percent.",
        "Branches open at 8 am.",
    ],
)
def test_figures_the_model_was_never_given_are_flagged(sentence: str) -> None:
    flag = bank_ivr_guard().check(sentence, GROUNDS)
    assert flag is not None and flag.kind == "invented"


@pytest.mark.parametrize(
    "sentence",
    [
        "Branches open from 9:00 am to 5 pm.",
        "Your new card arrives in 5 working days.",
        "It arrives in five working days.",
    ],
)
def test_figures_from_the_prompt_pass(sentence: str) -> None:
    assert bank_ivr_guard().check(sentence, GROUNDS) is None


def test_the_callers_card_number_is_never_read_back() -> None:
    caller = "My card number is 4532 7788 1234 5678."
    for sentence in ("So that is 4532 7788 1234 5678?", "Your card 4 5 3 2 7 7 8 8 is blocked."):
        flag = bank_ivr_guard().check(sentence, GROUNDS + caller, caller)
        assert flag is not None and flag.kind == "digits"
    assert bank_ivr_guard().check("Please don't share your card number.", GROUNDS + caller, caller) is None


@pytest.mark.parametrize(
    ("text", "wants"),
    [
        ("Can I speak to a real person please?", True),
        ("I want to talk to a human, not a machine.", True),
        ("Agent.", True),
        ("Operator, please!", True),
        ("Can you put me through to an agent?", True),
        ("My card was stolen, please put me through to the right team.", True),
        ("I'd like to speak with someone about my mortgage.", True),
        ("My agent at the branch said to call.", False),
        ("How do I open an account?", False),
        ("मुझे किसी इंसान से बात करनी है।", True),
        ("क्या मैं किसी सहकर्मी से बात कर सकता हूँ?", True),
        ("मला माणसाशी बोलायचं आहे.", True),
        ("मुझे अपने खाते के बारे में बात करनी है।", False),
        ("क्या हम हिंदी में बात कर सकते हैं?", False),
    ],
)
def test_asks_for_person(text: str, wants: bool) -> None:
    assert asks_for_person(text) is wants


def test_the_callers_own_words_handed_back_are_flagged() -> None:
    caller = "Sorry, I mean the team that handles stolen cards."
    flag = bank_ivr_guard().check("Sorry, I mean the team that handles stolen cards.", None, caller)
    assert flag is not None and flag.kind == "echo"
    assert bank_ivr_guard().check("Yes, the team handles stolen cards.", None, caller) is None
    assert bank_ivr_guard().check("A colleague on that team can help.", None, caller) is None


def test_a_sentence_said_before_is_recalled_once_or_dropped() -> None:
    earlier = [
        "We are open Monday to Friday from 9 am to 5 pm.",
        "I'm sorry to hear that.",
    ]
    policy = ReplyPolicy(
        max_sentences=3,
        guard=bank_ivr_guard(),
        handover=HANDOVER,
        said_before={sentence_key(s) for s in earlier},
    )
    assert policy.accept("I'm sorry to hear that.") is None  # short: dropped
    assert policy.accept("We are open Monday to Friday from 9 am to 5 pm.") == (
        "As I said, we are open Monday to Friday from 9 am to 5 pm."
    )
    assert policy.accept("Saturday is 9 am to 1 pm.") == "Saturday is 9 am to 1 pm."


def test_pick_department() -> None:
    departments = ["cards", "loans", "support"]
    assert pick_department(departments, "My card was stolen.") == "cards"
    assert pick_department(departments, "Yes please.", "A colleague in loans can help. Shall I?") == "loans"
    assert pick_department(departments, "Can I talk to a person?") == "support"
    assert pick_department(["cards", "loans"], "A person please.") is None


def test_sorry_but_i_cant_is_a_refusal_whatever_follows() -> None:
    flag = bank_ivr_guard().check("I'm sorry, but I can't see your PIN.")
    assert flag is not None and flag.kind == "refusal"


def test_actions_only_a_colleague_takes_are_never_claimed() -> None:
    guard = ReplyGuard(colleague_only=["block", "freeze"])
    for sentence in ("I can freeze your card right now.", "I've blocked it.", "I'll go ahead and block it."):
        flag = guard.check(sentence)
        assert flag is not None and flag.kind == "overreach", sentence
    assert guard.check("A colleague can freeze it right away.") is None
    assert ReplyGuard().check("I can freeze your card right now.") is None


@pytest.mark.parametrize(
    ("sentence", "strays"),
    [
        ("The weather is expected to be sunny with a mild breeze.", True),
        ("Here's a simple recipe: mash bananas, flour, sugar and butter, then bake.", True),
        ("Branches open Monday to Friday from 9 am to 5 pm.", False),
        ("A new card arrives in five working days.", False),
        ("Thank you for calling, goodbye!", False),
    ],
)
def test_sentences_about_things_the_agent_was_never_told(sentence: str, strays: bool) -> None:
    flag = bank_ivr_guard().check(sentence, GROUNDS + " What's the weather like tomorrow?", strays=True)
    assert (flag is not None and flag.kind == "off_topic") is strays
    assert bank_ivr_guard().check(sentence, GROUNDS) is None  # off unless the agent sets guard.off_topic


def test_an_off_topic_sentence_gets_the_off_topic_line() -> None:
    policy = ReplyPolicy(
        guard=bank_ivr_guard(), handover=HANDOVER, grounds=GROUNDS, off_topic="Only banking here."
    )
    assert policy.accept("The weather is expected to be sunny with a mild breeze.") == "Only banking here."
