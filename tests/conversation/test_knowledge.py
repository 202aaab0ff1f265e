"""Knowledge in the agent file, searched per caller turn with SQLite FTS5 (BM25)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from pydantic import ValidationError

from voxline.agent.config import AgentConfig, KnowledgeConfig, load_agent
from voxline.conversation.knowledge import NOTE_HEADER, Knowledge, query_terms, with_knowledge
from voxline.engines.base import Message

FAQ = KnowledgeConfig.model_validate(
    {
        "faq": [
            {
                "question": "lost or stolen card, block card",
                "answer": "A colleague freezes a lost card at once.",
            },
            {"question": "branch opening hours", "answer": "Branches open Monday to Friday 9 am to 5 pm."},
            {
                "question": "open a new account",
                "answer": "Bring photo ID and proof of address to any branch.",
            },
        ],
        "top_k": 1,
    }
)


def test_sqlite_has_fts5() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(x)")


def test_query_terms_drop_filler_words() -> None:
    assert query_terms("Hi, I've lost my card and I'd like it blocked please") == ["lost", "card", "blocked"]


def test_search_finds_the_matching_entry() -> None:
    knowledge = Knowledge.from_config(FAQ)
    assert knowledge is not None
    assert "freezes a lost card" in knowledge.note_for("I lost my debit card")
    assert "photo ID" in knowledge.note_for("What do I need to open an account?")
    # stemming: "opening"/"opens" find "open"
    assert "9 am" in knowledge.note_for("When are the branches opening?")
    assert knowledge.note_for("hello, thanks") == ""
    assert knowledge.note_for('"quoted" OR NOT weird*(syntax') == ""  # never an FTS5 syntax error


def test_the_note_goes_just_before_the_callers_turn_and_leaves_the_prefix_unchanged() -> None:
    knowledge = Knowledge.from_config(FAQ)
    earlier = [Message("system", "You are Maya."), Message("assistant", "Hello."), Message("user", "Hi")]
    messages = [*earlier, Message("assistant", "How can I help?"), Message("user", "I lost my card")]
    out = with_knowledge(messages, knowledge)
    assert out[:4] == messages[:4]  # the cached prefix is untouched
    assert out[4].role == "system" and out[4].content.startswith(NOTE_HEADER)
    assert "freezes a lost card" in out[4].content
    assert out[5:] == messages[4:]  # the caller's words come last
    assert with_knowledge(messages, None) == messages
    assert with_knowledge(earlier, knowledge) == earlier  # nothing matches "Hi"


def test_no_knowledge_is_none() -> None:
    assert Knowledge.from_config(KnowledgeConfig()) is None


def test_documents_are_read_beside_the_agent_file(tmp_path: Path) -> None:
    (tmp_path / "faq.md").write_text(
        "# Fees\n\nThere is no monthly fee on the basic account.\n\n"
        "# Cards\n\nNew cards arrive in five days.\n"
    )
    agent_file = tmp_path / "agent.yaml"
    agent_file.write_text("knowledge:\n  documents: [faq.md]\n")
    agent = load_agent(agent_file)
    knowledge = Knowledge.from_config(agent.knowledge)
    assert knowledge is not None and knowledge.size == 2
    assert "Fees: There is no monthly fee" in knowledge.note_for("is there a monthly fee?")


def test_example_needs_a_reply_or_a_tool() -> None:
    AgentConfig.model_validate({"examples": [{"caller": "A person please.", "tool": "transfer_call"}]})
    with pytest.raises(ValidationError, match="needs what the agent says"):
        AgentConfig.model_validate({"examples": [{"caller": "Hi"}]})


def test_the_bank_agents_faq_document_answers_its_questions(tmp_path: Path) -> None:
    examples = Path(__file__).resolve().parents[2] / "examples" / "agents"
    agent_file = tmp_path / "bank.yaml"
    agent_file.write_text(f"knowledge: {{documents: [{examples / 'bank-faq.md'}], top_k: 1}}\n")
    knowledge = Knowledge.from_config(load_agent(agent_file).knowledge)
    assert knowledge is not None and knowledge.size == 11
    assert "five working days" in knowledge.note_for("How long until my new card arrives?")
    assert "closed on Sunday" in knowledge.note_for("Are your branches open on Sunday?")
    assert "photo ID" in knowledge.note_for("What do I need to open an account?")
