"""The measures that make a small model do the job, on a whole call: the reply guard, transfers the
conversation makes itself, and knowledge placed after the cached prompt."""

from __future__ import annotations

from voxline.agent.config import AgentConfig
from voxline.conversation.chat import TextSession
from voxline.conversation.knowledge import NOTE_HEADER
from voxline.conversation.prompt import build_system_prompt
from voxline.conversation.tools import ToolRegistry

from .fakes import FakeLLM

HANDOVER = "A colleague can help with that. Shall I put you through?"


def bank(**fields: object) -> AgentConfig:
    config: dict[str, object] = {
        "persona": "You are Maya at Northwind Bank. Branches open 9 am to 5 pm.",
        "greeting": "Northwind Bank, Maya speaking.",
        "tools": [{"name": "end_call"}, {"name": "transfer_call", "target": "sip:agents@127.0.0.1"}],
        "guard": {"handover": HANDOVER},
        **fields,
    }
    return AgentConfig.model_validate(config)


async def test_a_refusal_is_never_heard_and_a_yes_to_the_offer_transfers() -> None:
    llm = FakeLLM(["I'm sorry, but I can't assist with that."])
    async with TextSession(bank(), llm) as session:
        await session.start()
        refused = await session.say("I lost my debit card, please block it.")
        accepted = await session.say("Yes please.")
        report = await session.close()
    # the early clause "I'm sorry," is spoken at once; the refusal that follows it never is
    assert refused.text == "I'm sorry, a colleague can help with that. Shall I put you through?"
    assert report.turns[1].guarded == ["refusal: I'm sorry, but I can't assist with that."]
    assert len(llm.requests) == 1  # the yes was answered by the call itself, not the model
    assert accepted.tool_calls == [{"name": "transfer_call", "arguments": {}}]
    assert accepted.transferred_to == "sip:agents@127.0.0.1"


async def test_a_request_for_a_person_transfers_without_the_model() -> None:
    llm = FakeLLM([])
    async with TextSession(bank(), llm) as session:
        await session.start()
        reply = await session.say("Can I speak to a real person please?")
    assert llm.requests == []
    assert reply.transferred_to == "sip:agents@127.0.0.1"
    assert "transferring you" in reply.text  # the built-in handover line


async def test_a_transfer_the_model_announces_but_does_not_call_is_made() -> None:
    llm = FakeLLM(["Of course, I'll put you through to a colleague now."])
    async with TextSession(bank(), llm) as session:
        await session.start()
        reply = await session.say("I need help with a charge I don't recognise.")
    assert reply.tool_calls == [{"name": "transfer_call", "arguments": {}}]
    assert reply.transferred_to == "sip:agents@127.0.0.1"


async def test_departments_go_to_the_one_the_caller_named() -> None:
    targets = {"cards": "sip:cards@127.0.0.1", "loans": "sip:loans@127.0.0.1", "support": "200"}
    config = bank(tools=[{"name": "transfer_call", "targets": targets}])
    async with TextSession(config, FakeLLM([])) as session:
        await session.start()
        reply = await session.say("My card was stolen, put me through to the right team.")
    assert reply.tool_calls == [{"name": "transfer_call", "arguments": {"department": "cards"}}]
    assert reply.transferred_to == "sip:cards@127.0.0.1"


async def test_internal_text_and_invented_figures_are_replaced() -> None:
    llm = FakeLLM(['You were at the keypad menu "main".', "You need a balance of at least $10,000."])
    async with TextSession(bank(), llm) as session:
        await session.start()
        leak = await session.say("Hello?")
        invented = await session.say("How do I open an account?")
        report = await session.close()
    assert leak.text == HANDOVER
    assert invented.text.startswith("As I said,")  # the handover again, said differently
    assert [g.split(":")[0] for t in report.turns for g in t.guarded] == ["leak", "invented"]


async def test_knowledge_goes_before_the_callers_turn_and_the_prompt_prefix_never_changes() -> None:
    config = bank(
        knowledge={"faq": [{"question": "lost stolen card", "answer": "A colleague freezes lost cards."}]},
        examples=[{"caller": "Is this the pizza place?", "agent": "No, this is Northwind Bank."}],
    )
    llm = FakeLLM(["A colleague can freeze it. Shall I put you through?", "We open at 9 am."])
    async with TextSession(config, llm) as session:
        await session.start()
        await session.say("I lost my card.")
        await session.say("When do you open?")
    first, second = llm.requests
    system = build_system_prompt(config, ToolRegistry(config).specs())
    assert first[0].content == second[0].content == system  # examples are in the cached system prompt
    assert "Caller: Is this the pizza place?" in system
    assert first[-2].role == "system" and first[-2].content.startswith(NOTE_HEADER)
    assert first[-1].content == "I lost my card."
    assert not any(NOTE_HEADER in m.content for m in second)  # nothing matched: no note
    # the next turn's prompt starts with the last one's up to its note: the cache still holds it
    assert second[: len(first) - 2] == first[:-2]


async def test_a_wrong_numbers_request_does_not_make_its_subject_the_agents() -> None:
    """The off-topic test judges a reply against what the agent was told and said, not the caller's
    words: playing along with a pizza order is off topic even though the caller named the pizza."""
    off_topic = "This is Northwind Bank, so I can only help with banking."
    config = bank(
        guard={"handover": HANDOVER, "off_topic": off_topic},
        examples=[{"caller": "Is this Luigi's Pizza?", "agent": "No, you've reached Northwind Bank."}],
    )
    llm = FakeLLM(["Tony's Pizza is a large pepperoni pizza.", "Branches open at 9 am."])
    async with TextSession(config, llm) as session:
        await session.start()
        pizza = await session.say("Is this Tony's Pizza? I'd like a large pepperoni pizza.")
        hours = await session.say("Oh, sorry. When do your branches open?")
        report = await session.close()
    assert pizza.text == off_topic
    assert report.turns[1].guarded == ["off_topic: Tony's Pizza is a large pepperoni pizza."]
    assert hours.text == "Branches open at 9 am."  # in the agent's own words: not judged off topic


async def test_a_request_for_a_person_in_hindi_transfers_with_a_hindi_line() -> None:
    llm = FakeLLM([])
    config = bank(language="hi", languages={"mode": "fixed"})
    async with TextSession(config, llm) as session:
        await session.start()
        reply = await session.say("मुझे किसी इंसान से बात करनी है।")
    assert llm.requests == []
    assert reply.transferred_to == "sip:agents@127.0.0.1"
    assert reply.text == "एक पल रुकिए, मैं आपको एक सहकर्मी से जोड़ रही हूँ।"
