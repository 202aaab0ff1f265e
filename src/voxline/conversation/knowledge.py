"""The agent's knowledge (FAQ entries, documents), searched per caller turn with SQLite FTS5 / BM25.

The passages that match a turn go to the model as a note just before that turn, never into the
system prompt: the prompt prefix (system prompt and history) stays byte-identical, so its KV cache
stays warm, and a long FAQ costs prefill only for the two or three passages a turn needs.
FTS5 ships inside Python's sqlite3; the index lives in memory, a lookup takes well under a millisecond.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from voxline.agent.config import KnowledgeConfig
from voxline.engines.base import Message

log = logging.getLogger(__name__)

NOTE_HEADER = "Facts:"

# Words that match nearly every passage; a query of only these finds nothing.
_STOPWORDS = frozenset(
    re.findall(
        r"\S+",
        """
    a an and are as at be been but by can could do does did for from get got had has have hello hi how i
    i'd i'm i've if in into is it it's its just me my no not of on or our please so than that the their
    them then there they this to too up us was we what when where which who why will with would yes you
    your yeah okay ok hey um uh like want need know tell thanks thank about some any
    """,
    )
)
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


def _paragraphs(text: str) -> list[str]:
    """A document's paragraphs (blank-line separated), markdown headings folded into the next one."""
    out: list[str] = []
    heading = ""
    for block in re.split(r"\n\s*\n", text):
        block = " ".join(line.strip() for line in block.strip().splitlines())
        if not block:
            continue
        if block.startswith("#") and len(block) < 120:
            heading = block.lstrip("# ").strip()
            continue
        out.append(f"{heading}: {block}" if heading else block)
    return out


def query_terms(text: str) -> list[str]:
    """The words of a caller turn worth searching for (lower case, no stopwords, each once)."""
    words = (w.lower() for w in _WORD.findall(text))
    return list(dict.fromkeys(w for w in words if w not in _STOPWORDS and (len(w) > 2 or w.isdigit())))


@dataclass(frozen=True, slots=True)
class Passage:
    text: str
    score: float
    """BM25 as SQLite reports it: more negative is a better match."""


_BUILT: dict[str, Knowledge | None] = {}


class Knowledge:
    """An in-memory FTS5 index over passages. `search()` returns the best `top_k` for a caller turn."""

    def __init__(self, passages: Iterable[str], *, top_k: int = 2, max_chars: int = 600) -> None:
        self.top_k = top_k
        self.max_chars = max_chars
        # one connection per agent, read from the event loop's thread only after it is built here
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.execute("CREATE VIRTUAL TABLE passages USING fts5(body, tokenize='porter unicode61')")
        rows = [(p.strip(),) for p in passages if p.strip()]
        self._db.executemany("INSERT INTO passages(body) VALUES (?)", rows)
        self.size = len(rows)

    @classmethod
    def from_config(cls, config: KnowledgeConfig) -> Knowledge | None:
        """The agent's index, or None if it knows nothing beyond its persona."""
        passages = [f"{entry.question.strip()} {entry.answer.strip()}" for entry in config.faq]
        for name in config.documents:
            try:
                passages += _paragraphs(Path(name).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError) as exc:
                log.warning("knowledge document %s unreadable, skipped: %s", name, exc)
        if not passages:
            return None
        return cls(passages, top_k=config.top_k, max_chars=config.max_chars)

    @classmethod
    def for_agent(cls, config: KnowledgeConfig) -> Knowledge | None:
        """`from_config`, built once per distinct configuration (calls of one agent share the index)."""
        key = config.model_dump_json()
        if key not in _BUILT:
            _BUILT[key] = cls.from_config(config)
        return _BUILT[key]

    def search(self, text: str, top_k: int | None = None) -> list[Passage]:
        terms = query_terms(text)
        if not terms:
            return []
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        rows = self._db.execute(
            "SELECT body, bm25(passages) AS score FROM passages"
            " WHERE passages MATCH ? ORDER BY score LIMIT ?",
            (match, top_k or self.top_k),
        ).fetchall()
        return [Passage(str(body), float(score)) for body, score in rows]

    def note_for(self, text: str) -> str:
        """The note the model reads for this caller turn ('' when nothing matches)."""
        kept: list[str] = []
        used = 0
        for passage in self.search(text):
            if kept and used + len(passage.text) > self.max_chars:
                break
            kept.append(passage.text[: self.max_chars])
            used += len(kept[-1])
        if not kept:
            return ""
        return NOTE_HEADER + "\n" + "\n".join(f"- {p}" for p in kept)


def last_caller_text(messages: Sequence[Message]) -> str:
    """The caller's latest words (tool results and notes skipped)."""
    return next((m.content for m in reversed(messages) if m.role == "user"), "")


def with_knowledge(messages: list[Message], knowledge: Knowledge | None) -> list[Message]:
    """`messages` with the passages matching the last caller turn as a note just before that turn.

    Everything before the note is unchanged (the cached prefix). Before the turn rather than after
    it: a small model reads a note that comes last as the start of a new conversation (measured:
    it answered with the greeting) or reads it aloud; this way the caller's words come last."""
    if knowledge is None:
        return messages
    last = next((i for i in range(len(messages) - 1, -1, -1) if messages[i].role == "user"), None)
    if last is None:
        return messages
    note = knowledge.note_for(messages[last].content)
    if not note:
        return messages
    return [*messages[:last], Message("system", note), *messages[last:]]
