"""The last check before a sentence is spoken: no refusals, no internal text.

A small model refuses in-scope requests ("I'm sorry, but I can't assist with that.") and reads out
what it was told rather than what it should say (a menu's name and prompt, a tool's name, its own
rules, "the caller"). Either sentence is replaced by the agent's handover line, which offers a
colleague: the caller always hears a way forward. The checks are plain patterns and word overlaps,
run per sentence as it streams, so they cost microseconds and no extra latency.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from voxline.agent.config import AgentConfig

_REFUSAL = re.compile(
    r"\b(?:i|we)\s*(?:can(?:no|')?t|cannot|am\s+unable|'m\s+unable|am\s+not\s+able|'m\s+not\s+able|"
    r"won't\s+be\s+able|am\s+not\s+allowed|'m\s+not\s+allowed|do\s+not\s+have\s+the\s+ability)\s+"
    r"(?:to\s+)?(?:assist|help|provide|answer|discuss|support|comply|do\s+that|fulfil)"
    r"|\bsorry,?\s+but\s+(?:i|we)\s*(?:can(?:no|')?t|cannot|am\s+unable|'m\s+unable)\b"
    r"|\bas\s+an?\s+(?:ai|artificial|language\s+model|assistant)\b"
    r"|\blanguage\s+model\b"
    r"|\bnot\s+able\s+to\s+(?:assist|help)\b"
    r"|\bunable\s+to\s+(?:assist|help)\b",
    re.IGNORECASE,
)

_INTERNAL = re.compile(
    r"\b(?:the|a)\s+(?:caller|user)\b"  # the model talking about the person it is talking to
    r"|\bkeypad\s+menu\b|\bmenu\s+\"|\bsystem\s+prompt\b|\bmy\s+(?:instructions|rules|prompt)\b"
    r"|\byou\s+should\s+say\b|\btool_call\b|\bfunction\s+call|\btool\s+(?:named|called)\b"
    r"|\b[a-z]+_[a-z_]+\b",  # snake_case names: tools and their arguments
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_MONEY_OR_RATE = re.compile(r"[$€£₹%]|\bpercent\b|\bdollars?\b", re.IGNORECASE)
OVERLAP_WORDS = 6
"""A run of this many words copied from the instructions or a menu prompt is a leak."""

_WORDS = re.compile(r"[\w']+")


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORDS.findall(text)]


def _ngrams(words: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


@dataclass(frozen=True, slots=True)
class Flag:
    kind: str
    """'refusal' or 'leak'."""
    text: str


class ReplyGuard:
    """Flags a sentence the caller must not hear. `internal` is text the model is told but must not
    repeat word for word: how it must behave, the tool instructions, the notes behind menu options."""

    def __init__(
        self, internal: Iterable[str] = (), tool_names: Iterable[str] = (), colleague_only: Iterable[str] = ()
    ) -> None:
        grams: set[tuple[str, ...]] = set()
        for text in internal:
            grams |= _ngrams(_words(text), OVERLAP_WORDS)
        self._internal = grams
        verbs = sorted({v.strip().lower() for v in colleague_only if v.strip()})
        self._overreach = (
            re.compile(
                r"\b(?:i|we)\s*(?:can|will|'ll|am\s+going\s+to|'m\s+going\s+to|have|'ve|just)\s+"
                r"(?:now\s+|just\s+|go\s+ahead\s+and\s+)?(?:"
                + "|".join(re.escape(v) for v in verbs)
                + r")\w*",
                re.IGNORECASE,
            )
            if verbs
            else None
        )
        names = sorted(n for n in set(tool_names) if n)
        self._names = (
            re.compile(r"\b(?:" + "|".join(re.escape(n).replace("_", "[_ ]") for n in names) + r")\b", re.I)
            if names
            else None
        )

    @classmethod
    def for_agent(
        cls, agent: AgentConfig, instructions: Iterable[str], tool_names: Iterable[str]
    ) -> ReplyGuard:
        """`instructions`: the prompt's behaviour rules (`prompt.internal_texts`)."""
        menus = agent.ivr.menus
        # a menu's prompt is a line callers hear anyway (repeating the options is fine); the framing
        # around it ("the keypad menu "main" which says") and the notes behind options are not. A menu
        # called "main" or "cards" is a word callers use too: only a quoted name is a leak.
        internal = [*instructions, *(o.note for m in menus.values() for o in m.options.values() if o.note)]
        return cls(internal, tool_names=tool_names, colleague_only=agent.guard.colleague_only)

    def check(
        self,
        sentence: str,
        grounds: str | None = None,
        caller: str = "",
        *,
        strays: bool = False,
        scope: str | None = None,
    ) -> Flag | None:
        """`grounds`: everything the model was told for this reply (prompt, knowledge, the call so
        far). A number, amount or rate that appears nowhere in it was invented. With `strays`, a
        sentence whose words are mostly not in `scope` (default: `grounds`) is off topic: `scope` is
        what the agent itself was told and said, without the caller's words, so a wrong-number
        caller's pizza order does not make "Yes, a large pepperoni pizza." sound like the agent's
        business. `caller`: the caller's last words; a long run of their digits (a card number) is
        never read back."""
        if _REFUSAL.search(sentence):
            return Flag("refusal", sentence)
        if caller and _reads_back_digits(sentence, caller):
            return Flag("digits", sentence)
        # before the echo test: a wrong-number caller's words handed back get the off-topic line
        about = scope if scope is not None else grounds
        if strays and about is not None and off_topic(sentence, about):
            return Flag("off_topic", sentence)
        if caller and echoes(caller, sentence):
            return Flag("echo", sentence)
        if self._overreach is not None and self._overreach.search(sentence):
            return Flag("overreach", sentence)
        if grounds is not None and _invents_numbers(sentence, grounds):
            return Flag("invented", sentence)
        if _INTERNAL.search(sentence) or (self._names is not None and self._names.search(sentence)):
            return Flag("leak", sentence)
        if self._internal and _ngrams(_words(sentence), OVERLAP_WORDS) & self._internal:
            return Flag("leak", sentence)
        return None


_SMALL_NUMBERS = """zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen
fifteen sixteen seventeen eighteen nineteen twenty"""
_NUMBER_WORDS = {w: str(i) for i, w in enumerate(re.findall(r"\S+", _SMALL_NUMBERS))} | {
    "thirty": "30",
    "forty": "40",
    "fifty": "50",
    "sixty": "60",
    "ninety": "90",
    "hundred": "100",
}
READ_BACK_DIGITS = 6
"""This many of the caller's digits in a row, said back, is a card or account number read aloud."""


def _numbers(text: str, *, words: bool = False) -> set[str]:
    """The figures in `text` written in digits (and with `words`, "five" as 5 too)."""
    text = re.sub(r":00\b", "", text)  # "9:00 am" is the 9 the prompt says
    found = {n.replace(",", "") for n in _NUMBER.findall(text)}
    if words:
        found |= {_NUMBER_WORDS[w] for w in _WORDS.findall(text.lower()) if w in _NUMBER_WORDS}
    return found


def _digit_runs(text: str) -> set[str]:
    """Digit sequences, spaces and dashes between digits ignored ("4 5 3 2-7788" → "45327788")."""
    return {re.sub(r"\D", "", m) for m in re.findall(r"\d(?:[\s-]?\d)+", text)}


def _reads_back_digits(sentence: str, caller: str) -> bool:
    said = [r for r in _digit_runs(sentence) if len(r) >= READ_BACK_DIGITS]
    heard = "".join(sorted(_digit_runs(caller)))
    return any(r in heard for r in said)


def _invents_numbers(sentence: str, grounds: str) -> bool:
    """Amounts, rates and figures the model was never given ("a balance of at least $10,000")."""
    # only digits count as figures in the reply ("one moment" is not a number); the grounds may
    # spell them out ("five working days" grounds "5 days")
    numbers = _numbers(sentence)
    if numbers - _numbers(grounds, words=True):
        return True
    return bool(_MONEY_OR_RATE.search(sentence)) and not _MONEY_OR_RATE.search(grounds)


_FILLER = frozenset(
    re.findall(
        r"\S+",
        "i i'm me my you you're your we our it it's is am are a an the to and of so oh sorry i mean well "
        "just that this please ok okay",
    )
)
_ANSWERS = re.compile(r"^\W*(?:yes|no|yeah|sure|of course|certainly)\b", re.IGNORECASE)


def echoes(caller: str, sentence: str) -> bool:
    """The sentence hands the caller's own words back ("Sorry, I mean the team that handles stolen
    cards." after the caller said just that): at least three content words, all of them the caller's."""
    said = [w for w in _words(sentence) if w not in _FILLER]
    heard = set(_words(caller))
    if len(said) < 3 or _ANSWERS.search(sentence):
        return False
    return all(w in heard for w in said)


def split_sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]


STRAY_MIN_WORDS = 4
STRAY_MAX_GROUNDED = 0.4
_COMMON = frozenset(
    re.findall(
        r"\S+",
        """a an and are as at be been but by can could do does did for from get got had has have how i i'd
        i'm i'll i've if in into is it it's its just me my no not of on or our please so than that the their
        them then there they this to too up us was we what when where which who why will with would yes you
        your you're yeah okay ok sure well also here today now one more some any all very much many like
        make made need want help know see tell say said look going go come take give let sorry thanks thank
        good great nice right there's that's can't don't won't about after before again other same""",
    )
)


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def off_topic(sentence: str, grounds: str) -> bool:
    """Most of the sentence's content words appear nowhere in what the model was told (prompt,
    knowledge, the call so far): it is talking about something else (tomorrow's weather, a recipe)."""
    content = [_stem(w) for w in _words(sentence) if w not in _COMMON and not w.isdigit()]
    if len(content) < STRAY_MIN_WORDS:
        return False
    known = {_stem(w) for w in _words(grounds)}
    return sum(1 for w in content if w in known) / len(content) < STRAY_MAX_GROUNDED


def sentence_key(text: str) -> str:
    """A sentence reduced to its words, for noticing it was said before."""
    return " ".join(_words(text))


# ---------------------------------------------------------------- transfers the model forgets

_ANNOUNCES_TRANSFER = re.compile(
    r"\b(?:i'?ll|i\s+will|i'?m|i\s+am|let\s+me|going\s+to|now)\s+(?:now\s+)?"
    r"(?:transfer(?:ring)?|connect(?:ing)?|put(?:ting)?\s+you\s+through|pass(?:ing)?\s+you)"
    r"|^\s*(?:transferring|connecting)\s+you\b|\bputting\s+you\s+through\b",
    re.IGNORECASE,
)
_AFFIRMATIVE = re.compile(
    r"^\s*(?:yes|yeah|yep|yup|sure|okay|ok|please|go\s+ahead|that\s+would\s+be\s+(?:great|good)|"
    r"yes\s+please|please\s+do|alright|all\s+right|of\s+course|definitely|do\s+it)\b",
    re.IGNORECASE,
)
_OFFERS_TRANSFER = re.compile(
    r"\b(?:transfer|put\s+you\s+through|connect\s+you|colleague|someone|a\s+person|an\s+agent)\b", re.I
)
_NEGATIVE = re.compile(r"\b(?:no|not|don't|do\s+not|never|nope|wait|later)\b", re.IGNORECASE)


_ASKS_FOR_PERSON = re.compile(
    r"\b(?:speak|talk|chat)\s+(?:to|with)\s+(?:a\s+|an\s+|the\s+|some\s*one\b|somebody\b)?(?:real\s+|actual\s+|live\s+)?"
    r"(?:person|human|agent|operator|representative|colleague|advisor|adviser|someone|somebody|manager|staff)"
    r"|\b(?:get|put)\s+me\s+(?:through\s+)?to\s+(?:a\s+|an\s+)?(?:person|human|agent|operator|representative)\b"
    r"|\b(?:put\s+me\s+through|transfer\s+me|connect\s+me)\b"
    r"|^\W*(?:agent|operator|representative|human|a\s+person|a\s+human)\W*(?:please)?\W*$"
    # Hindi "किसी इंसान से बात करनी है" (talk to a person), Marathi "माणसाशी बोलायचं आहे"
    r"|(?:इंसान|व्यक्ति|आदमी|एजेंट|सहकर्मी|कर्मचारी)\s+से\s+बात|(?:माणसाशी|व्यक्तीशी|एजंटशी)\s+बोल",
    re.IGNORECASE,
)


def asks_for_person(text: str) -> bool:
    """The caller asks for a human ("can I speak to a real person?", "operator!")."""
    return bool(_ASKS_FOR_PERSON.search(text))


_GENERAL_DEPARTMENTS = ("support", "general", "agents", "operator", "customer service", "service")


def pick_department(departments: Iterable[str], *texts: str) -> str | None:
    """The department a transfer the conversation makes should go to: the first one named (or named
    in the singular: "card" for "cards") in `texts`, most recent first; else a general one."""
    names = list(departments)
    for text in texts:
        words = set(_words(text))
        for name in names:
            stem = name.lower().rstrip("s")
            if name.lower() in words or stem in words or f"{stem}s" in words:
                return name
    return next((n for n in names if n.lower() in _GENERAL_DEPARTMENTS), None)


def announces_transfer(text: str) -> bool:
    """Does the reply say the caller is being transferred now (not merely offer it)?"""
    statements = [s for s in split_sentences(text) if not s.rstrip().endswith("?")]
    return any(_ANNOUNCES_TRANSFER.search(s) for s in statements)


def offers_transfer(text: str) -> bool:
    """Does the reply end by offering a colleague ("Shall I put you through?")?"""
    sentences = split_sentences(text)
    return (
        bool(sentences)
        and sentences[-1].rstrip().endswith("?")
        and bool(_OFFERS_TRANSFER.search(sentences[-1]))
    )


def accepts_offer(caller_text: str) -> bool:
    """A plain yes ("yes please", "sure, go ahead"): not one with a 'no' or a 'wait' in it."""
    return bool(_AFFIRMATIVE.search(caller_text)) and not _NEGATIVE.search(caller_text)
