"""Numbers as words in English, Hindi and Marathi: cardinals (Indian lakh/crore grouping, or the
Western million grouping for English), digit-by-digit strings, decimals and the Hindi/Marathi
quarter words (डेढ़, ढाई, साढ़े…).

Cardinals up to 99,99,99,999 come from AI4Bharat's `indic-numtowords`, whose Hindi and Marathi
tables of the irregular words for 1–99 are the hard part; above that we compose crores ourselves
(the library falls back to reading digits there, and fails on int input).
"""

from __future__ import annotations

from indic_numtowords import num2words as _library_words

LAKH = 10**5
CRORE = 10**7
_LIBRARY_LIMIT = 10**9
# Past this many digits nobody says a number as a quantity; it is read digit by digit.
MAX_CARDINAL_DIGITS = 15

DIGIT_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    "hi": ("शून्य", "एक", "दो", "तीन", "चार", "पाँच", "छह", "सात", "आठ", "नौ"),
    "mr": ("शून्य", "एक", "दोन", "तीन", "चार", "पाच", "सहा", "सात", "आठ", "नऊ"),
}
_CRORE_WORD = {"en": "crore", "hi": "करोड़", "mr": "कोटी"}
# Spelling fixes on the library's output: "छः" (visarga) makes voices add a breath; Marathi writes
# हजार without the Hindi nukta.
_SPELLING_FIXES: dict[str, tuple[tuple[str, str], ...]] = {
    "en": (),
    "hi": (("छः", "छह"),),
    "mr": (("हज़ार", "हजार"),),
}
_WESTERN_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (10**3, "thousand"))


def _from_library(n: int, lang: str) -> str:
    words = str(_library_words(str(n), lang=lang)).strip()
    for wrong, right in _SPELLING_FIXES[lang]:
        words = words.replace(wrong, right)
    return words


def digit_words(digits: str, lang: str) -> str:
    """'4021' → 'four zero two one'. Non-digits are skipped."""
    table = DIGIT_WORDS[lang]
    return " ".join(table[ord(c) - 48] for c in digits if "0" <= c <= "9")


def indian_cardinal(n: int, lang: str) -> str:
    """150000 → 'one lakh fifty thousand' / 'एक लाख पचास हज़ार' / 'एक लाख पन्नास हजार'."""
    if n == 0:
        return DIGIT_WORDS[lang][0]
    if n >= _LIBRARY_LIMIT:
        crores, rest = divmod(n, CRORE)
        head = f"{indian_cardinal(crores, lang)} {_CRORE_WORD[lang]}"
        return head if rest == 0 else f"{head} {indian_cardinal(rest, lang)}"
    return _from_library(n, lang)


def western_cardinal(n: int) -> str:
    """English with thousand/million/billion: 1500000 → 'one million five hundred thousand'."""
    if n < 1000:
        return indian_cardinal(n, "en")
    parts: list[str] = []
    for value, name in _WESTERN_SCALES:
        if n >= value:
            count, n = divmod(n, value)
            parts.append(f"{western_cardinal(count)} {name}")
    if n:
        parts.append(indian_cardinal(n, "en"))
    return " ".join(parts)


def cardinal(n: int, lang: str, indian: bool = True) -> str:
    """The number as words; only English has a Western alternative (`indian=False`)."""
    if len(str(n)) > MAX_CARDINAL_DIGITS:
        return digit_words(str(n), lang)
    if lang == "en" and not indian:
        return western_cardinal(n)
    return indian_cardinal(n, lang)


def decimal_words(whole: str, fraction: str, lang: str, point_word: str, indian: bool = True) -> str:
    """'12', '05' → 'twelve point zero five': the fraction is read digit by digit, as people do."""
    head = cardinal(int(whole), lang, indian) if whole else DIGIT_WORDS[lang][0]
    return f"{head} {point_word} {digit_words(fraction, lang)}"


# Hindi and Marathi say 1.5 / 2.5 / 3.5 / 3.25 / 3.75 with their own words, for amounts
# ("डेढ़ लाख") and clock times ("साढ़े दस बजे") alike.
_QUARTER_WORDS = {
    "hi": {"one_half": "डेढ़", "two_half": "ढाई", "half": "साढ़े", "quarter": "सवा", "to": "पौने"},
    "mr": {"one_half": "दीड", "two_half": "अडीच", "half": "साडे", "quarter": "सव्वा", "to": "पावणे"},
}


def quarter_words(whole: int, quarters: int, lang: str, amount: bool = False) -> str | None:
    """`whole` + `quarters`/4 in Hindi/Marathi words, or None where there is no such word
    (English, zero, or not a quarter). 1,2 → 'डेढ़'; 10,2 → 'साढ़े दस'; 4,3 → 'पौने पाँच'.
    With `amount`, 1.25 is plain 'सवा' ("सवा लाख"); a clock says 'सवा एक'."""
    words = _QUARTER_WORDS.get(lang)
    if words is None or whole < 1 or quarters not in (1, 2, 3):
        return None
    if amount and whole == 1 and quarters == 1:
        return words["quarter"]
    if quarters == 2:
        if whole == 1:
            return words["one_half"]
        if whole == 2:
            return words["two_half"]
        return f"{words['half']} {cardinal(whole, lang)}"
    if quarters == 1:
        return f"{words['quarter']} {cardinal(whole, lang)}"
    return f"{words['to']} {cardinal(whole + 1, lang)}"
