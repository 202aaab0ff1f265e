"""Routes: requests answered with the agent's own words, matched on the caller's, never the model's."""

from __future__ import annotations

import pytest

from voxline.agent.config import AgentConfig, Route
from voxline.conversation.chat import TextSession
from voxline.conversation.fixed_lines import lines_to_render
from voxline.conversation.routes import Routes, stem
from voxline.evals.checks import fixed_lines

from .fakes import FakeLLM

LOST = "I'm sorry to hear that, a colleague can freeze your card. Shall I put you through?"
ACCOUNT = "I can't see account details, but a colleague can. Shall I put you through?"


def bank(**fields: object) -> AgentConfig:
    config: dict[str, object] = {
        "persona": "You are Maya at Northwind Bank. Branches open 9 am to 5 pm.",
        "tools": [{"name": "end_call"}, {"name": "transfer_call", "target": "sip:agents@127.0.0.1"}],
        "routes": [
            {"name": "lost-card", "when": ["lost card", "stolen"], "say": LOST},
            {"name": "account", "when": ["balance", "payment due", "change address"], "say": ACCOUNT},
        ],
        **fields,
    }
    return AgentConfig.model_validate(config)


def test_a_phrase_matches_every_form_and_order_of_its_words() -> None:
    routes = Routes(bank().routes, "en")
    assert stem("declined") == stem("declines") == stem("decline")
    assert stem("addresses") == stem("address")
    for said in ("I've lost my cards", "My card, I think I lost it", "Someone has STOLEN my wallet"):
        route = routes.match(said, "en")
        assert route is not None and route.name == "lost-card", said
    account = routes.match("When is my credit card payment due?", "en")
    assert account is not None and account.name == "account"
    # every word of a phrase, not some of them
    assert routes.match("I lost my way to the branch", "en") is None
    assert routes.match("What's the address of your branch?", "en") is None
    assert routes.match("What time do you open on Saturday?", "en") is None


def test_a_route_applies_to_its_language_only() -> None:
    hindi = Route(name="hi", when=["कार्ड खो"], say="मैं आपको एक सहकर्मी से जोड़ सकती हूँ।", language="hi")
    routes = Routes([*bank().routes, hindi], "en")
    assert routes.match("I lost my card", "hi") is None
    matched = routes.match("मेरा कार्ड खो गया", "hi")
    assert matched is not None and matched.name == "hi"
    assert routes.match("मेरा कार्ड खो गया", "en") is None


def test_a_route_needs_a_phrase_and_a_line() -> None:
    with pytest.raises(ValueError):
        Route(name="x", when=[], say="Hello.")
    with pytest.raises(ValueError):
        Route(name="x", when=["card"], say="")


async def test_a_routed_turn_is_answered_without_the_model_and_a_yes_transfers() -> None:
    llm = FakeLLM(["Our branches open at 9 am."])
    async with TextSession(bank(), llm) as session:
        await session.start()
        routed = await session.say("Hi, I think I lost my card yesterday.")
        assert llm.requests == []
        assert routed.text == LOST
        hours = await session.say("And when do you open?")
    assert hours.text == "Our branches open at 9 am."
    # the model read the route's line in the call's history, as if it had said it
    assert [m.content for m in llm.requests[0] if m.role == "assistant"][-1] == LOST
    async with TextSession(bank(), FakeLLM()) as session:
        await session.start()
        await session.say("What's my balance?")
        accepted = await session.say("Yes please.")
    assert accepted.transferred_to == "sip:agents@127.0.0.1"


def test_route_lines_are_rendered_at_start_up_and_count_as_fixed_lines() -> None:
    agent = bank()
    assert ("en", LOST) in lines_to_render(agent)
    assert ("en", ACCOUNT) in lines_to_render(agent)
    assert LOST in fixed_lines(agent)


def test_devanagari_words_are_matched_whole() -> None:
    """Python's \\w leaves out Devanagari vowel signs: split there, "खुलती" became fragments ("ख",
    "ल") that every Hindi turn holds, and any phrase matched anything."""
    hindi = [Route(name="hours", when=["शाखा खुलती"], say="शाखाएँ सुबह नौ बजे खुलती हैं।")]
    routes = Routes(hindi, "hi")
    assert routes.match("सोमवार को शाखा कितने बजे खुलती है?", "hi") is not None
    assert routes.match("मेरा कार्ड खो गया है।", "hi") is None
    branch = Routes([Route(name="hours", when=["शाखा"], say="शाखाएँ सुबह नौ बजे खुलती हैं।")], "hi")
    # split at the vowel signs, "शाखा" was {"श", "ख"}, which "खाते" and "शुक्रिया" hold
    assert branch.match("मुझे अपने खाते का बैलेंस जानना है, शुक्रिया।", "hi") is None
    assert routes.match("खुलती", "hi") is None  # both words of the phrase, not a fragment of one
    assert routes.match("शाखा खुलती है।", "hi") is not None  # the danda is punctuation
