"""The output filter: only plain spoken words reach TTS.

The system prompt asks the model for plain speech; small models forget, so this enforces it:
no emoji, no markdown, no stage directions, no speaker labels, and (ReplyPolicy) no monologues and
no sentence in the wrong script (small models drift into English, or Urdu, in a Hindi call).
"""

from __future__ import annotations

import re
from collections.abc import Collection

from voxline.conversation.guard import Flag, ReplyGuard, sentence_key
from voxline.language import registry
from voxline.language.script import expected_script, script_shares

_EMOJI = re.compile(
    "["
    "\U0001f000-\U0001faff"  # pictographs, emoticons, transport, symbols & pictographs ext.
    "\U0001f1e6-\U0001f1ff"  # regional indicator (flags)
    "\u2600-\u27bf"  # misc symbols, dingbats
    "\u2b00-\u2bff"  # arrows, stars
    "\u2300-\u23ff"  # technical (⌚ ⏰)
    "\ufe0e\ufe0f\u200d\u20e3"  # variation selectors, zero-width joiner, keycap
    "\U000e0020-\U000e007f"  # tag characters (subdivision flags)
    "]+"
)
_LINK = re.compile(r"\[([^\]]+)\]\((?:[^)]*)\)")
_BRACKETED = re.compile(r"\[[^\]]*\]|<[^>]*>|\{[^}]*\}")
_PAREN = re.compile(r"\(([^()]*)\)")
_STAR_ACTION = re.compile(r"(?<![*\w])\*([^*\n]+)\*(?![*\w])")
_EMPHASIS = re.compile(r"(\*{1,3}|_{1,3})(\S(?:.*?\S)?)\1")
_HEADING = re.compile(r"^\s*#{1,6}\s*")
_LIST_MARKER = re.compile(r"^\s*(?:[-*•‣◦▪●+]|\d{1,2}[.)])\s+")
_SPEAKER = re.compile(r"^\s*(?:[A-Z][\w.'-]{0,20}(?:\s[A-Z][\w.'-]{0,20})?)\s*:\s+")
_TRAILING_DASH = re.compile(r"\s+[-–—]+\s*$")
_SPEAKABLE = re.compile(r"\w")

STAGE_DIRECTION_MAX_WORDS = 4

_ALSO_CHECKED = frozenset({"ne"})
"""Besides the registered languages: Nepali, which an STT may report for a Devanagari turn."""
MIN_SCRIPT_SHARE = 0.5
"""A Hindi sentence may hold a Latin "ATM" or "SMS"; most of its letters must still be Devanagari."""


def _drop_short_aside(match: re.Match[str]) -> str:
    """'(Alarmed)' or '*smiles*' are stage directions; a longer aside is kept, without brackets."""
    inner = match.group(1).strip()
    return "" if len(inner.split()) <= STAGE_DIRECTION_MAX_WORDS else inner


def clean_sentence(text: str) -> str:
    """Return the speakable form of one sentence, or "" if nothing in it should be spoken."""
    text = _EMOJI.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _BRACKETED.sub(" ", text)
    text = _PAREN.sub(_drop_short_aside, text)
    text = _STAR_ACTION.sub(_drop_short_aside, text)
    text = _EMPHASIS.sub(r"\2", text)
    text = text.replace("`", "").replace("*", "")
    lines = [_LIST_MARKER.sub("", _HEADING.sub("", line)) for line in text.splitlines()]
    text = " ".join(line.strip() for line in lines if line.strip())
    text = _SPEAKER.sub("", text)
    text = _TRAILING_DASH.sub(",", text)  # "Well -" → "Well," keeps the pause, drops the symbol
    text = re.sub(r"\s+([,.!?;:…])", r"\1", text)
    text = re.sub(r"\s+", " ", text).strip()
    text = text.lstrip(",;: ")
    return text if _SPEAKABLE.search(text) else ""


def ends_sentence(text: str) -> bool:
    return bool(text) and text.rstrip("\"'”’)]»")[-1:] in ".!?…।॥؟"


def is_question(text: str) -> bool:
    return text.rstrip("\"'”’)]» ").endswith(("?", "؟"))


def script_matches(text: str, language: str) -> bool:
    """Is `text` written in `language`'s script? True for languages we have no script for, and for
    text without letters (a number is fine in any language)."""
    if registry.find(language) is None and language not in _ALSO_CHECKED:
        return True
    shares = script_shares(text)
    return not shares or shares.get(expected_script(language), 0.0) >= MIN_SCRIPT_SHARE


class ReplyPolicy:
    """Across the sentences of one reply: at most `max_sentences`, stop after a question, and (with
    `language`) only sentences in that language's script; the others are kept in `rejected`.
    With a `guard`, a refusal, internal text, a figure not in `grounds` (what the model was told) or
    the caller's digits read back from `caller` is replaced by `handover` and ends the reply; the
    flagged sentences are kept in `flags`."""

    def __init__(
        self,
        max_sentences: int = 2,
        language: str | None = None,
        guard: ReplyGuard | None = None,
        handover: str = "",
        grounds: str | None = None,
        caller: str = "",
        said_before: Collection[str] = (),
        off_topic: str = "",
        scope: str | None = None,
    ) -> None:
        self.max_sentences = max_sentences
        self.language = language
        self.guard = guard
        self.handover = handover
        self.grounds = grounds
        self.caller = caller
        self.off_topic = off_topic
        self.scope = scope
        """What the off-topic test judges against (see `ReplyGuard.check`); default `grounds`."""
        """Said instead of a sentence about something the agent was never told of (else `handover`)."""
        self.said_before = said_before
        """`sentence_key`s of what the agent already said in this call: a long sentence said again
        is introduced with "As I said,", a short one, a question or a second one in a reply is dropped."""
        self._recalled = False
        self._sentences = 0
        self._clause = ""
        """The early first clause just spoken, judged again with the rest of its sentence."""
        self.done = False
        self.rejected: list[str] = []
        self.flags: list[Flag] = []

    def accept(self, chunk: str) -> str | None:
        """The cleaned chunk if it may be spoken, else None (nothing speakable, or reply is over)."""
        if self.done:
            return None
        cleaned = clean_sentence(chunk)
        opening, self._clause = self._clause, ""
        if not cleaned:
            return None
        if self.language is not None and not script_matches(cleaned, self.language):
            self.rejected.append(cleaned)
            return None
        if self.guard is not None:
            # an early first clause ("I'm sorry,") is spoken at once, so the first words are not held
            # back; the rest of its sentence is judged together with it ("… but I can't help")
            sentence = f"{opening} {cleaned}".strip()
            flag = self.guard.check(
                sentence, self.grounds, self.caller, strays=bool(self.off_topic), scope=self.scope
            )
            if flag is not None:
                self.flags.append(flag)
                self.done = True
                line = self.off_topic if flag.kind == "off_topic" and self.off_topic else self.handover
                # the early clause already spoken ("Hello Maya,") runs on into the line
                return (_lower_first(line) if opening else line) or None
            if ends_in_clause(cleaned):
                self._clause = cleaned
            if sentence_key(cleaned) in self.said_before:
                if self._recalled or len(cleaned.split()) <= REPEAT_DROP_WORDS or is_question(cleaned):
                    return None
                self._recalled = True
                cleaned = f"As I said, {_lower_first(cleaned)}"
        if ends_sentence(cleaned) or not ends_in_clause(cleaned):
            self._sentences += 1
        if self._sentences >= self.max_sentences or is_question(cleaned):
            self.done = True
        return cleaned


REPEAT_DROP_WORDS = 5
"""A repeated sentence this short ("I'm sorry to hear that.") is dropped rather than recalled."""


def _lower_first(text: str) -> str:
    first = text.split(" ", 1)[0]
    if first == "I" or first.startswith(("I'", "I’")) or first[1:2].isupper():
        return text
    return text[:1].lower() + text[1:]


def ends_in_clause(text: str) -> bool:
    """An early first chunk ends at a clause break (',' ';' ':' '-'); it is not a sentence."""
    return text[-1:] in ",;:-–—"
