"""What a language contributes to normalisation: its words for currencies, months, units and
clock times, its ordinals, abbreviations and how it spells Latin acronyms. The regex passes in
`passes.py` are shared; everything said aloud comes from here."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

# Written multipliers after an amount ("1.5 lakh", "2 करोड़", "10k") → a canonical key.
_MULTIPLIER_KEYS = {
    "lakh": "lakh",
    "lakhs": "lakh",
    "lac": "lakh",
    "lacs": "lakh",
    "लाख": "lakh",
    "crore": "crore",
    "crores": "crore",
    "cr": "crore",
    "करोड़": "crore",
    "करोड": "crore",
    "कोटी": "crore",
    "thousand": "thousand",
    "k": "thousand",
    "हज़ार": "thousand",
    "हजार": "thousand",
    "million": "million",
    "billion": "billion",
}
MULTIPLIER_PATTERN = "|".join(sorted(map(re.escape, _MULTIPLIER_KEYS), key=len, reverse=True))


def multiplier_key(written: str) -> str:
    return _MULTIPLIER_KEYS[written.lower()]


@dataclass(frozen=True)
class Lexicon:
    code: str
    rupee: tuple[str, str]  # singular, plural
    paise: str
    dollar: tuple[str, str]
    cent: str
    amount_join: str  # between rupees and paise: "and" in English, nothing in Hindi/Marathi
    point: str
    percent: str
    plus: str
    range_word: str
    and_word: str
    multipliers: dict[str, str]  # canonical key → spoken word
    months: tuple[str, ...]
    format_date: Callable[[int, int, int | None], str]
    # (hour 0–23 or 1–12, minute, "am"/"pm"/None) → spoken time
    format_time: Callable[[int, int, str | None], str]
    # (number, suffix as written: "th", "वाँ", "ला"…) → spoken ordinal
    ordinal: Callable[[int, str], str]
    spell_acronym: Callable[[str], str]
    abbreviations: tuple[tuple[re.Pattern[str], str], ...] = ()
    # words that follow a clock time and that format_time already says ("बजे", "वाजता")
    time_tail: str = ""
    # language-only passes run before the shared number passes: (pattern, replacement)
    extra_passes: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = field(default=())
    # English says Western thousands/millions unless the text uses Indian grouping or rupees
    indian_by_default: bool = True

    def rupee_word(self, amount: int) -> str:
        return self.rupee[0] if amount == 1 else self.rupee[1]

    def dollar_word(self, amount: int) -> str:
        return self.dollar[0] if amount == 1 else self.dollar[1]


def compile_abbreviations(pairs: dict[str, str]) -> tuple[tuple[re.Pattern[str], str], ...]:
    """Whole-token abbreviations ("Dr." → "Doctor"), matched case-sensitively so that "No." before
    a number is not the word "no"."""
    compiled = []
    for written, spoken in pairs.items():
        head = r"(?<![\w.])" if written[0].isalnum() else ""
        tail = r"(?![\w])" if written[-1].isalnum() else ""
        compiled.append((re.compile(head + re.escape(written) + tail), spoken))
    return tuple(compiled)
