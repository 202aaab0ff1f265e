"""Pieces Hindi and Marathi share in shape but not in words: clock times with a part of the day
("शाम पाँच बजे", "संध्याकाळी पाच वाजता"), ordinals with gender endings, and Latin acronyms
spelled out with Devanagari letter names.

Why Devanagari letter names: the festival hi/mr voices only know Devanagari, and espeak-ng's Hindi
voice (Kokoro's phonemiser) reads a Latin "KYC" as an English word ("kik"), while "के वाई सी" comes
out as the letters people say. It also keeps the output in the script the output filter expects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from voxline.language.normalize.numbers import cardinal, quarter_words


@dataclass(frozen=True)
class ClockWords:
    lang: str
    on_the_hour: str  # "बजे" / "वाजता"
    past_hour: str  # "बजकर" / "वाजून"
    minutes: str  # "मिनट" / "मिनिटे"
    quarter_to: str  # "पौने" / "पावणे"
    morning: str
    afternoon: str
    evening: str
    night: str


def _day_part(hour24: int, words: ClockWords) -> str:
    if 4 <= hour24 < 12:
        return words.morning
    if 12 <= hour24 < 16:
        return words.afternoon
    if 16 <= hour24 < 20:
        return words.evening
    return words.night


def make_time_formatter(words: ClockWords) -> Callable[[int, int, str | None], str]:
    """People say 10:30 as "साढ़े दस" and 4:45 as "पौने पाँच", so quarter hours get those words;
    any other minute is "दस बजकर बीस मिनट". A day part is said only when the text gave one
    (am/pm or a 24-hour clock), because "5 बजे" alone is already clear in a conversation."""

    def format_time(hour: int, minute: int, meridiem: str | None) -> str:
        if meridiem is not None:
            hour24 = hour % 12 + (12 if meridiem == "pm" else 0)
        elif hour > 12 or hour == 0:
            hour24 = hour
        else:
            hour24 = -1  # unknown: no day part
        hour12 = hour % 12 or 12
        if minute == 0:
            spoken = f"{cardinal(hour12, words.lang)} {words.on_the_hour}"
        elif minute in (15, 30):
            spoken = f"{quarter_words(hour12, minute // 15, words.lang)} {words.on_the_hour}"
        elif minute == 45:
            # "quarter to" names the coming hour: 12:45 is "पौने एक"
            spoken = f"{words.quarter_to} {cardinal(hour12 % 12 + 1, words.lang)} {words.on_the_hour}"
        else:
            hours, minutes = cardinal(hour12, words.lang), cardinal(minute, words.lang)
            spoken = f"{hours} {words.past_hour} {minutes} {words.minutes}"
        return spoken if hour24 < 0 else f"{_day_part(hour24, words)} {spoken}"

    return format_time


@dataclass(frozen=True)
class OrdinalWords:
    lang: str
    irregular_stems: dict[int, str]  # 1 → "पहल" (+ ा/ी/े)
    regular_endings: dict[str, str]  # gender ending → suffix after the cardinal ("ाँ" → "वाँ")


def _gender_ending(suffix: str) -> str:
    """The vowel sign that carries gender in a written suffix: 'वीं' → 'ी', '5th' → 'ा'."""
    for sign in ("ी", "े", "ा"):
        if sign in suffix:
            return sign
    return "ा"


def make_ordinal(words: OrdinalWords) -> Callable[[int, str], str]:
    """'5वाँ' → 'पाँचवाँ', '1ली' → 'पहली'. A Latin '5th' in Hindi/Marathi text is a date in
    practice ("5th जनवरी"), said with the cardinal."""

    def ordinal(n: int, suffix: str) -> str:
        if suffix.lower() in ("st", "nd", "rd", "th"):
            return cardinal(n, words.lang)
        ending = _gender_ending(suffix)
        stem = words.irregular_stems.get(n)
        if stem is not None:
            return stem + ending
        if suffix[0] != "व" and n not in words.irregular_stems:
            # "5ला" is "to 5" (a postposition), not an ordinal
            return f"{cardinal(n, words.lang)}{suffix}"
        return cardinal(n, words.lang) + words.regular_endings[ending]

    return ordinal


def make_acronym_speller(letters: dict[str, str], as_words: dict[str, str]) -> Callable[[str], str]:
    def spell(acronym: str) -> str:
        word = as_words.get(acronym)
        if word is not None:
            return word
        return " ".join(letters.get(c, c) for c in acronym)

    return spell
