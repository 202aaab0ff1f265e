"""Hindi: amounts in रुपये/पैसे with लाख/करोड़, day-first dates with Hindi month names, clock
times as people say them ("शाम साढ़े पाँच बजे"), ordinals with gender, acronyms in Devanagari."""

from __future__ import annotations

from voxline.language.normalize.indic import (
    ClockWords,
    OrdinalWords,
    make_acronym_speller,
    make_ordinal,
    make_time_formatter,
)
from voxline.language.normalize.lexicon import Lexicon, compile_abbreviations
from voxline.language.normalize.numbers import cardinal

MONTHS = (
    "जनवरी",
    "फ़रवरी",
    "मार्च",
    "अप्रैल",
    "मई",
    "जून",
    "जुलाई",
    "अगस्त",
    "सितंबर",
    "अक्टूबर",
    "नवंबर",
    "दिसंबर",
)

LETTERS = dict(
    zip(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        [
            "ए",
            "बी",
            "सी",
            "डी",
            "ई",
            "एफ़",
            "जी",
            "एच",
            "आई",
            "जे",
            "के",
            "एल",
            "एम",
            "एन",
            "ओ",
            "पी",
            "क्यू",
            "आर",
            "एस",
            "टी",
            "यू",
            "वी",
            "डब्ल्यू",
            "एक्स",
            "वाई",
            "ज़ेड",
        ],
        strict=True,
    )
)
# Acronyms Indians say as a word, not letter by letter.
WORD_ACRONYMS = {"PIN": "पिन", "PAN": "पैन", "NEFT": "नेफ़्ट", "CIBIL": "सिबिल", "OK": "ओके"}


def year_words(year: int) -> str:
    """1995 → 'उन्नीस सौ पचानवे' (how years before 2000 are said); 2025 → 'दो हज़ार पच्चीस'."""
    century, rest = divmod(year, 100)
    if 11 <= century <= 19:
        return f"{cardinal(century, 'hi')} सौ" + (f" {cardinal(rest, 'hi')}" if rest else "")
    return cardinal(year, "hi")


def format_date(day: int, month: int, year: int | None) -> str:
    said = f"{cardinal(day, 'hi')} {MONTHS[month - 1]}"
    return said if year is None else f"{said} {year_words(year)}"


LEXICON = Lexicon(
    code="hi",
    rupee=("रुपया", "रुपये"),
    paise="पैसे",
    dollar=("डॉलर", "डॉलर"),
    cent="सेंट",
    amount_join="",
    point="दशमलव",
    percent="प्रतिशत",
    plus="प्लस",
    range_word="से",
    and_word="और",
    multipliers={
        "lakh": "लाख",
        "crore": "करोड़",
        "thousand": "हज़ार",
        "million": "मिलियन",
        "billion": "बिलियन",
    },
    months=MONTHS,
    format_date=format_date,
    format_time=make_time_formatter(
        ClockWords(
            lang="hi",
            on_the_hour="बजे",
            past_hour="बजकर",
            minutes="मिनट",
            quarter_to="पौने",
            morning="सुबह",
            afternoon="दोपहर",
            evening="शाम",
            night="रात",
        )
    ),
    ordinal=make_ordinal(
        OrdinalWords(
            lang="hi",
            irregular_stems={1: "पहल", 2: "दूसर", 3: "तीसर", 4: "चौथ", 6: "छठ"},
            regular_endings={"ा": "वाँ", "ी": "वीं", "े": "वें"},
        )
    ),
    spell_acronym=make_acronym_speller(LETTERS, WORD_ACRONYMS),
    abbreviations=compile_abbreviations(
        {
            "डॉ.": "डॉक्टर",
            "Dr.": "डॉक्टर",
            "Mr.": "मिस्टर",
            "Mrs.": "मिसेज़",
            "A/c": "खाता",
            "a/c": "खाता",
            "कि.मी.": "किलोमीटर",
        }
    ),
    time_tail="बजे|बजकर",
)
