"""The shared normalisation passes: regexes (compiled once per language) that find phone numbers,
amounts, dates, times, digit strings, percentages, ordinals, ranges and plain numbers, in that
order (the specific before the general), and replace each with the language's words."""

from __future__ import annotations

import re
from collections.abc import Callable

from voxline.language.normalize.lexicon import MULTIPLIER_PATTERN, Lexicon, multiplier_key
from voxline.language.normalize.numbers import (
    DIGIT_WORDS,
    cardinal,
    decimal_words,
    digit_words,
    quarter_words,
)

DEVANAGARI_DIGITS = str.maketrans("०१२३४५६७८९", "0123456789")
_DEVANAGARI_LETTER = "\u0900-\u097f"

# A number as written in an amount: Indian (1,50,000) or Western (150,000) grouping, or plain.
_AMOUNT = r"(?:[0-9]{1,3}(?:,[0-9]{2,3})*,[0-9]{3}|[0-9]+)(?:\.[0-9]+)?"
_INDIAN_GROUP = re.compile(r",[0-9]{2}(?=,)")

_PHONE = re.compile(
    r"(?<![0-9+])(?:(?P<plus>\+|00)91[\s-]?|0)?[6-9][0-9]{4}[\s-]?[0-9]{5}(?![0-9])"
    r"|(?<![0-9])1800[\s-]?[0-9]{3}[\s-]?[0-9]{3,4}(?![0-9])"
    r"|(?P<plus_other>\+)[1-9][0-9]{0,3}(?:[\s-]?[0-9]{2,5}){2,4}(?![0-9])"
)
_CURRENCY = re.compile(
    r"(?:(?P<cur>₹|(?<![A-Za-z])(?:Rs\.?|INR|USD)|रु\.?|रू\.?|\$)\s*)?"
    rf"(?<![0-9.,])(?P<num>{_AMOUNT})(?![0-9])"
    rf"(?:\s*(?P<mult>{MULTIPLIER_PATTERN})(?![A-Za-z{_DEVANAGARI_LETTER}]))?"
    r"(?:\s*/-)?"
    rf"(?P<tail>\s*(?:rupees?|Rs\.?|रुपये|रुपए|रुपया)(?![A-Za-z{_DEVANAGARI_LETTER}]))?"
    # an inflected rupee word ("रुपयांचे") follows: do not add our own
    r"(?=(?P<word_after>\s*(?:rupee|रुप|रू))?)",
    re.IGNORECASE,
)
_DATE = re.compile(
    r"(?<![0-9/.:-])(?P<d>[0-9]{1,2})(?P<sep>[/.-])(?P<m>[0-9]{1,2})"
    r"(?:(?P=sep)(?P<y>[0-9]{4}|[0-9]{2}))?(?![0-9]|[/.:-][0-9])"
)
_MERIDIEM = r"(?P<mer>[AaPp])\.?\s?[Mm]\.?(?![A-Za-z])"
_TIME_COLON = rf"(?<![0-9:.])(?P<h>[0-9]{{1,2}}):(?P<min>[0-9]{{2}})(?![0-9:])(?:\s*{_MERIDIEM})?"
_TIME_MERIDIEM = rf"(?<![0-9:.])(?P<h>[0-9]{{1,2}})(?:[:.](?P<min>[0-9]{{2}}))?\s*{_MERIDIEM}"
_DIGIT_KEYWORDS = (
    r"(?:(?<![A-Za-z])(?:account|a/c|acct|card|otp|pin|cvv|reference|ref|ticket|complaint|policy|"
    r"customer\s+id|id|transaction|txn|utr|mobile|phone|number|no\.|ending|pin\s?code|folio|"
    r"registration|application|request|order|booking|pnr|code)(?![A-Za-z])"
    r"|खाता|खाते|कार्ड|ओटीपी|पिन|नंबर|नम्बर|संख्या|क्रमांक|मोबाइल|मोबाईल|फ़ोन|फोन|संदर्भ|शिकायत|आईडी|कोड)"
)
_KEYWORD_DIGITS = re.compile(
    _DIGIT_KEYWORDS + r"(?P<gap>[^0-9₹$\n]{0,25}?)(?P<num>[0-9](?:[ -]?[0-9]){2,})(?![0-9]|[.,][0-9])",
    re.IGNORECASE,
)
_DIGIT_GROUPS = re.compile(r"(?<![0-9.,])[0-9]{2,}(?:[ -][0-9]{2,})+(?![0-9]|[.,][0-9])")
_PERCENT = re.compile(r"(?<![0-9.])(?P<num>[0-9]+(?:\.[0-9]+)?)\s*(?:%|percent(?![A-Za-z])|प्रतिशत|टक्के)")
_LATIN_ORDINAL = re.compile(r"(?<![0-9])(?P<num>[0-9]+)(?P<suf>st|nd|rd|th)(?![A-Za-z])", re.IGNORECASE)
_DEVANAGARI_ORDINAL = re.compile(
    rf"(?<![0-9])(?P<num>[0-9]+)(?P<suf>\s?(?:वाँ|वां|वीं|वें|वा|वी|वे)|ला|ली|ले|रा|री|रे|था|थी|थे)"
    rf"(?![{_DEVANAGARI_LETTER}])"
)
_RANGE = re.compile(r"(?<![0-9.,/:-])(?P<a>[0-9]{1,4})\s?[-–]\s?(?P<b>[0-9]{1,4})(?![0-9]|[.,/:-][0-9])")
_DECIMAL = re.compile(r"(?<![0-9.])(?P<whole>[0-9]+)\.(?P<frac>[0-9]+)(?![0-9]|\.[0-9])")
_INTEGER = re.compile(r"(?<![0-9])(?:[0-9]{1,3}(?:,[0-9]{2,3})*,[0-9]{3}|[0-9]+)(?![0-9])")
_ANY_DIGIT = re.compile(r"[0-9]")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.!?;:।॥])")
_SPACES = re.compile(r"[ \t]{2,}")
_DOUBLE_DOT_AFTER_ACRONYM = re.compile(r"(?<=[A-Z])\.\.")

_QUARTERS = {"25": 1, "5": 2, "75": 3}
_ACRONYM = re.compile(r"(?<![A-Za-z])[A-Z]{2,6}(?![A-Za-z])")


def _spaced(words: str) -> str:
    """Replacement text padded with spaces, so '5वां' or 'Rs500' never glue words together."""
    return f" {words} "


def _kept_full_stop(m: re.Match[str]) -> str:
    """A pattern that ends in an abbreviation's dot ("p.m.", "p.a.") at the end of the sentence
    also swallowed the full stop; give it back so the voice still hears the sentence end."""
    at_end = not m.string[m.end() :].strip()
    return "." if at_end and m.group().endswith(".") else ""


def read_digits(written: str, lang: str) -> str:
    """Digit-by-digit reading in breath groups: keep the writer's groups; split a 10-digit mobile
    5+5, 6 digits 3+3, longer runs into fours. Groups are separated by commas (a pause)."""
    groups: list[str] = []
    for group in re.split(r"[\s-]+", written):
        digits = "".join(c for c in group if c.isdigit())
        if not digits:
            continue
        if len(digits) <= 5:
            groups.append(digits)
        elif len(digits) == 6:
            groups += [digits[:3], digits[3:]]
        elif len(digits) == 10:
            groups += [digits[:5], digits[5:]]
        else:
            groups += [digits[i : i + 4] for i in range(0, len(digits), 4)]
    return ", ".join(digit_words(g, lang) for g in groups)


class Normalizer:
    """All passes for one language. Build once; `normalize` is pure and thread-safe."""

    def __init__(self, lex: Lexicon) -> None:
        self.lex = lex
        self._time_tail = rf"(?:\s*(?:{lex.time_tail}))?" if lex.time_tail else ""
        self._time_colon = re.compile(_TIME_COLON + self._time_tail)
        self._time_meridiem = re.compile(_TIME_MERIDIEM + self._time_tail)
        self._abbreviations = [(pattern, self._literal(spoken)) for pattern, spoken in lex.abbreviations]
        self._number_passes: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
            (_PHONE, self._phone),
            *lex.extra_passes,
            (_CURRENCY, self._currency),
            (_DATE, self._date),
            (self._time_meridiem, self._time),
            (self._time_colon, self._time),
            (_KEYWORD_DIGITS, self._keyword_digits),
            (_DIGIT_GROUPS, self._digit_groups),
            (_PERCENT, self._percent),
            (_DEVANAGARI_ORDINAL, self._ordinal),
            (_LATIN_ORDINAL, self._ordinal),
            (_RANGE, self._range),
            (_DECIMAL, self._decimal),
            (_INTEGER, self._integer),
        ]

    def normalize(self, text: str) -> str:
        text = text.translate(DEVANAGARI_DIGITS)
        for pattern, replace in self._abbreviations:
            text = pattern.sub(replace, text)
        # most sentences hold no number at all: skip the number passes for them
        if _ANY_DIGIT.search(text):
            for pattern, replace in self._number_passes:
                text = pattern.sub(replace, text)
        text = _ACRONYM.sub(self._acronym, text)
        text = self._symbols(text)
        # a last guard: whatever pattern missed, no digit reaches the voice as a symbol
        text = _ANY_DIGIT.sub(lambda m: _spaced(DIGIT_WORDS[self.lex.code][int(m.group())]), text)
        text = _DOUBLE_DOT_AFTER_ACRONYM.sub(".", _SPACES.sub(" ", text))
        return _SPACE_BEFORE_PUNCT.sub(r"\1", text).strip()

    @staticmethod
    def _literal(spoken: str) -> Callable[[re.Match[str]], str]:
        return lambda m: spoken + _kept_full_stop(m)

    def _symbols(self, text: str) -> str:
        lex = self.lex
        return (
            text.replace("/-", "")
            .replace("₹", _spaced(lex.rupee[1]))
            .replace("%", _spaced(lex.percent))
            .replace(" & ", _spaced(lex.and_word))
        )

    def _number(self, written: str, indian: bool | None = None) -> str:
        if indian is None:
            indian = self.lex.indian_by_default or bool(_INDIAN_GROUP.search(written))
        whole, _, frac = written.replace(",", "").partition(".")
        if frac:
            return decimal_words(whole, frac, self.lex.code, self.lex.point, indian)
        return cardinal(int(whole), self.lex.code, indian)

    def _phone(self, m: re.Match[str]) -> str:
        written = m.group()
        body = read_digits(written.lstrip("+"), self.lex.code)
        return _spaced(f"{self.lex.plus} {body}" if written.startswith("+") else body)

    def _currency(self, m: re.Match[str]) -> str:
        cur, num, mult = m.group("cur"), m.group("num"), m.group("mult")
        tail, word_after = m.group("tail"), m.group("word_after")
        if not (cur or tail or mult):
            return m.group()
        lex = self.lex
        dollars = bool(cur) and cur.upper() in ("$", "USD")
        indian = not dollars or lex.indian_by_default
        whole, _, frac = num.replace(",", "").partition(".")
        if mult:
            key = multiplier_key(mult)
            quantity = self._scaled_quantity(whole, frac, indian)
            words = f"{quantity} {lex.multipliers[key]}"
            if cur or tail:
                words += " " + (lex.dollar[1] if dollars else lex.rupee[1])
            return _spaced(words)
        units = int(whole)
        minor = int((frac + "0")[:2]) if frac else 0
        if word_after and not tail:  # the sentence says "रुपयांचे" itself
            return _spaced(self._number(num, indian))
        unit_word = lex.dollar_word(units) if dollars else lex.rupee_word(units)
        minor_word = lex.cent if dollars else lex.paise
        parts = []
        if units or not minor:
            parts.append(f"{cardinal(units, lex.code, indian)} {unit_word}")
        if minor:
            minor_words = f"{cardinal(minor, lex.code)} {minor_word}"
            parts.append(f"{lex.amount_join} {minor_words}".strip() if parts else minor_words)
        return _spaced(" ".join(parts))

    def _scaled_quantity(self, whole: str, frac: str, indian: bool) -> str:
        """'1.5' before 'lakh': Hindi/Marathi say डेढ़ / दीड; otherwise 'one point five'."""
        quarters = _QUARTERS.get(frac.rstrip("0")) if frac else None
        if quarters is not None:
            spoken = quarter_words(int(whole or "0"), quarters, self.lex.code, amount=True)
            if spoken:
                return spoken
        if frac:
            return decimal_words(whole, frac, self.lex.code, self.lex.point, indian)
        return cardinal(int(whole), self.lex.code, indian)

    def _date(self, m: re.Match[str]) -> str:
        day, month, year = int(m.group("d")), int(m.group("m")), m.group("y")
        if not (1 <= day <= 31 and 1 <= month <= 12) or (m.group("sep") != "/" and not year):
            return m.group()
        full_year = None if year is None else int(year) + (2000 if len(year) == 2 else 0)
        return _spaced(self.lex.format_date(day, month, full_year))

    def _time(self, m: re.Match[str]) -> str:
        hour, minute = int(m.group("h")), int(m.group("min") or 0)
        meridiem = m.group("mer")
        if meridiem:
            if not 1 <= hour <= 12 or minute > 59:
                return m.group()
            return _spaced(self.lex.format_time(hour, minute, meridiem.lower() + "m")) + _kept_full_stop(m)
        if hour > 23 or minute > 59:
            return m.group()
        return _spaced(self.lex.format_time(hour, minute, None))

    def _keyword_digits(self, m: re.Match[str]) -> str:
        num = m.group("num")
        head = m.group()[: m.start("num") - m.start()]
        return head + _spaced(read_digits(num, self.lex.code))

    def _digit_groups(self, m: re.Match[str]) -> str:
        written = m.group()
        if sum(c.isdigit() for c in written) < 8:
            return written
        return _spaced(read_digits(written, self.lex.code))

    def _percent(self, m: re.Match[str]) -> str:
        return _spaced(f"{self._number(m.group('num'))} {self.lex.percent}")

    def _ordinal(self, m: re.Match[str]) -> str:
        num = m.group("num")
        if len(num) > 6:
            return m.group()
        return _spaced(self.lex.ordinal(int(num), m.group("suf").strip()))

    def _range(self, m: re.Match[str]) -> str:
        a, b = m.group("a"), m.group("b")
        return _spaced(f"{self._plain(a)} {self.lex.range_word} {self._plain(b)}")

    def _decimal(self, m: re.Match[str]) -> str:
        return _spaced(decimal_words(m.group("whole"), m.group("frac"), self.lex.code, self.lex.point))

    def _plain(self, written: str) -> str:
        """A bare integer: ids (leading zero, seven or more digits) digit by digit, else a quantity."""
        if (len(written) > 1 and written[0] == "0") or ("," not in written and len(written) >= 7):
            return read_digits(written, self.lex.code)
        return self._number(written)

    def _integer(self, m: re.Match[str]) -> str:
        return _spaced(self._plain(m.group()))

    def _acronym(self, m: re.Match[str]) -> str:
        return self.lex.spell_acronym(m.group())
