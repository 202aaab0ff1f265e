"""English (Indian call-centre English): rupee amounts and Indian-grouped numbers in lakh/crore,
other numbers in thousands/millions; dates day-first ("the fifth of December")."""

from __future__ import annotations

import re

from voxline.language.normalize.lexicon import Lexicon, compile_abbreviations
from voxline.language.normalize.numbers import cardinal

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_ORDINAL_LAST_WORD = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}


def ordinal(n: int, _suffix: str = "") -> str:
    words = cardinal(n, "en", indian=False)
    head, _, last = words.rpartition(" ")
    if last in _ORDINAL_LAST_WORD:
        last = _ORDINAL_LAST_WORD[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return f"{head} {last}" if head else last


def year_words(year: int) -> str:
    """2025 → 'twenty twenty five', 1999 → 'nineteen ninety nine', 2005 → 'two thousand five'."""
    century, rest = divmod(year, 100)
    if not 11 <= century <= 20 or 2000 <= year <= 2009:
        return cardinal(year, "en", indian=False)
    if rest == 0:
        return f"{cardinal(century, 'en')} hundred"
    if rest < 10:
        return f"{cardinal(century, 'en')} oh {cardinal(rest, 'en')}"
    return f"{cardinal(century, 'en')} {cardinal(rest, 'en')}"


def format_date(day: int, month: int, year: int | None) -> str:
    said = f"the {ordinal(day)} of {MONTHS[month - 1]}"
    return said if year is None else f"{said}, {year_words(year)}"


def format_time(hour: int, minute: int, meridiem: str | None) -> str:
    suffix = ""
    if meridiem is not None:
        suffix = " AM" if meridiem == "am" else " PM"
    elif hour == 0:
        hour, suffix = 12, " AM"
    elif hour > 12:
        hour, suffix = hour - 12, " PM"
    if minute == 0:
        said = cardinal(hour, "en") + (suffix or " o'clock")
        return said.strip()
    minutes = f"oh {cardinal(minute, 'en')}" if minute < 10 else cardinal(minute, "en")
    return f"{cardinal(hour, 'en')} {minutes}{suffix}"


# espeak-ng (Piper's and Kokoro's phonemiser) spells most all-caps acronyms by itself, but says
# OTP, IFSC and ICICI as words; the dotted form is spelled letter by letter every time.
_SPELLED_ACRONYMS = frozenset(
    [
        "OTP",
        "IFSC",
        "ICICI",
        "KYC",
        "EMI",
        "UPI",
        "ATM",
        "SMS",
        "RTGS",
        "IMPS",
        "GST",
        "SBI",
        "HDFC",
        "RBI",
        "NRI",
        "CVV",
        "FD",
        "RD",
        "ID",
        "PNR",
        "UTR",
    ]
)


def spell_acronym(acronym: str) -> str:
    if acronym in _SPELLED_ACRONYMS:
        return ".".join(acronym) + "."
    return acronym


_MONTH_NAME = (
    r"(?P<mon>Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_YEAR = r"(?:,?\s+(?P<y>(?:19|20)[0-9]{2}))?(?![0-9])"
_DAY_MONTH = re.compile(r"(?<![0-9])(?P<d>[0-9]{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTH_NAME + _YEAR)
_MONTH_DAY = re.compile(_MONTH_NAME + r"\s+(?P<d>[0-9]{1,2})(?:st|nd|rd|th)?(?![0-9A-Za-z])" + _YEAR)
_YEAR_AFTER_WORD = re.compile(
    r"(?<![A-Za-z])(?P<w>in|since|year|of|by|from|until|till|before|after)\s+(?P<y>(?:19|20)[0-9]{2})(?![0-9,])"
    r"(?!\s*(?:rupees?|rs|lakh|crore|thousand|%|percent|/-))",
    re.IGNORECASE,
)
_NUMBER_ABBREVIATION = re.compile(r"(?<![A-Za-z])No\.(?=\s*[0-9])", re.IGNORECASE)


def _month_index(name: str) -> int:
    return next(i for i, month in enumerate(MONTHS) if month.startswith(name[:3].title()))


def _named_date(m: re.Match[str]) -> str:
    day, month = int(m.group("d")), _month_index(m.group("mon"))
    if not 1 <= day <= 31:
        return m.group()
    year = m.group("y")
    said = f"the {ordinal(day)} of {MONTHS[month]}"
    return f" {said}, {year_words(int(year))} " if year else f" {said} "


def _month_first_date(m: re.Match[str]) -> str:
    day, month = int(m.group("d")), _month_index(m.group("mon"))
    if not 1 <= day <= 31:
        return m.group()
    year = m.group("y")
    said = f"{MONTHS[month]} {ordinal(day)}"
    return f" {said}, {year_words(int(year))} " if year else f" {said} "


LEXICON = Lexicon(
    code="en",
    rupee=("rupee", "rupees"),
    paise="paise",
    dollar=("dollar", "dollars"),
    cent="cents",
    amount_join="and",
    point="point",
    percent="percent",
    plus="plus",
    range_word="to",
    and_word="and",
    multipliers={
        "lakh": "lakh",
        "crore": "crore",
        "thousand": "thousand",
        "million": "million",
        "billion": "billion",
    },
    months=MONTHS,
    format_date=format_date,
    format_time=format_time,
    ordinal=ordinal,
    spell_acronym=spell_acronym,
    abbreviations=compile_abbreviations(
        {
            "Dr.": "Doctor",
            "Mr.": "Mister",
            "Mrs.": "Missus",
            "Ms.": "Miz",
            "Prof.": "Professor",
            "Smt.": "Shrimati",
            "A/c": "account",
            "a/c": "account",
            "approx.": "approximately",
            "etc.": "et cetera",
            "e.g.": "for example",
            "i.e.": "that is",
            "hrs": "hours",
            "mins": "minutes",
            "Ltd.": "Limited",
            "Pvt.": "Private",
            "Govt.": "Government",
            "Dept.": "Department",
            "p.a.": "per annum",
            "w.e.f.": "with effect from",
            "vs.": "versus",
        }
    ),
    extra_passes=(
        (_NUMBER_ABBREVIATION, lambda _m: "number"),
        (_DAY_MONTH, _named_date),
        (_MONTH_DAY, _month_first_date),
        (_YEAR_AFTER_WORD, lambda m: f"{m.group('w')} {year_words(int(m.group('y')))}"),
    ),
    indian_by_default=False,
)
