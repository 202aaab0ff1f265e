"""Cuts a streamed LLM reply into sentences the moment each one ends, so TTS can start early."""

from __future__ import annotations

import re

SENTENCE_END = ".!?…।॥"
CLOSERS = "\"'”’)]»"
CLAUSE_BREAK = re.compile(r"(?:[,;:]|\s[-–—])\s")
_INITIALISM = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")

# Words whose trailing period does not end a sentence (compared lower-case, without the period).
_ABBREVIATION_LIST = "mr mrs ms dr prof st jr sr vs etc approx dept inc ltd co corp no nr tel fig ca cf"
ABBREVIATIONS = frozenset(_ABBREVIATION_LIST.split(" "))


def _is_abbreviation(text: str, dot: int) -> bool:
    """Is the '.' at `dot` part of an abbreviation ("Dr.", "e.g.", "U.S.") or a list marker ("1.")?"""
    start = dot
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    word = text[start:dot]
    if not word:
        return False
    if word.lower().strip("(\"'") in ABBREVIATIONS:
        return True
    if _INITIALISM.fullmatch(word) or (len(word) == 1 and word.isalpha()):
        return True  # e.g. / i.e. / U.S. / a middle initial
    # "1." opening a line or a reply is a list marker, not a sentence
    return word.isdigit() and not text[:start].strip()


class SentenceChunker:
    """Feed text deltas; get complete sentences back as soon as their end is certain.

    `first_clause_words`: if > 0, the first chunk may be cut early at a clause break (comma,
    semicolon, colon, dash) once it holds that many words, so the first audio starts sooner.
    """

    def __init__(self, first_clause_words: int = 0) -> None:
        self.first_clause_words = first_clause_words
        self._buf = ""
        self._emitted = 0

    def feed(self, delta: str) -> list[str]:
        self._buf += delta
        out: list[str] = []
        while (cut := self._find_sentence_end()) is not None:
            out.append(self._take(cut))
        if not out and self._emitted == 0 and self.first_clause_words > 0:
            cut = self._find_clause_end()
            if cut is not None:
                out.append(self._take(cut))
        return out

    def finish(self, truncated: bool = False) -> str:
        """The rest of the reply. If the token limit cut it (`truncated`), its incomplete last
        sentence is dropped — unless nothing at all was said, then it keeps up to a clause break."""
        rest, self._buf = self._buf.strip(), ""
        if not truncated:
            return rest
        if self._emitted > 0:
            return ""
        last = None
        for match in CLAUSE_BREAK.finditer(rest + " "):
            last = match.end()
        return rest[:last].strip() if last else ""

    def _take(self, cut: int) -> str:
        piece, self._buf = self._buf[:cut].strip(), self._buf[cut:]
        self._emitted += 1
        return piece

    def _find_sentence_end(self) -> int | None:
        text = self._buf
        for i, ch in enumerate(text):
            if ch not in SENTENCE_END:
                continue
            end = i + 1
            while end < len(text) and (text[end] in SENTENCE_END or text[end] in CLOSERS):
                end += 1
            if end >= len(text):
                return None  # cannot tell yet: "3." may become "3.5", "..." may grow
            if not text[end].isspace():
                continue
            if ch == "." and end == i + 1 and _is_abbreviation(text, i):
                continue
            if text[:end].strip():
                return end
        return None

    def _find_clause_end(self) -> int | None:
        for match in CLAUSE_BREAK.finditer(self._buf):
            cut = match.end()
            if len(self._buf[:cut].split()) >= self.first_clause_words:
                return cut
        return None
