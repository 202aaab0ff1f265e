"""Marathi: amounts in रुपये/पैसे with लाख/कोटी, day-first dates with Marathi month names, clock
times as people say them ("संध्याकाळी साडे पाच वाजता"), ordinals (पहिला, दुसरा, पाचवा),
acronyms in Devanagari."""

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
    "जानेवारी",
    "फेब्रुवारी",
    "मार्च",
    "एप्रिल",
    "मे",
    "जून",
    "जुलै",
    "ऑगस्ट",
    "सप्टेंबर",
    "ऑक्टोबर",
    "नोव्हेंबर",
    "डिसेंबर",
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
            "एफ",
            "जी",
            "एच",
            "आय",
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
            "व्ही",
            "डब्ल्यू",
            "एक्स",
            "वाय",
            "झेड",
        ],
        strict=True,
    )
)
WORD_ACRONYMS = {"PIN": "पिन", "PAN": "पॅन", "NEFT": "नेफ्ट", "CIBIL": "सिबिल", "OK": "ओके"}


def year_words(year: int) -> str:
    """1995 → 'एकोणीसशे पंचाण्णव'; 2025 → 'दोन हजार पंचवीस'."""
    century, rest = divmod(year, 100)
    if 11 <= century <= 19:
        return f"{cardinal(century, 'mr')}शे" + (f" {cardinal(rest, 'mr')}" if rest else "")
    return cardinal(year, "mr")


def format_date(day: int, month: int, year: int | None) -> str:
    said = f"{cardinal(day, 'mr')} {MONTHS[month - 1]}"
    return said if year is None else f"{said} {year_words(year)}"


LEXICON = Lexicon(
    code="mr",
    rupee=("रुपया", "रुपये"),
    paise="पैसे",
    dollar=("डॉलर", "डॉलर"),
    cent="सेंट",
    amount_join="",
    point="पूर्णांक",
    percent="टक्के",
    plus="प्लस",
    range_word="ते",
    and_word="आणि",
    multipliers={
        "lakh": "लाख",
        "crore": "कोटी",
        "thousand": "हजार",
        "million": "दशलक्ष",
        "billion": "अब्ज",
    },
    months=MONTHS,
    format_date=format_date,
    format_time=make_time_formatter(
        ClockWords(
            lang="mr",
            on_the_hour="वाजता",
            past_hour="वाजून",
            minutes="मिनिटे",
            quarter_to="पावणे",
            morning="सकाळी",
            afternoon="दुपारी",
            evening="संध्याकाळी",
            night="रात्री",
        )
    ),
    ordinal=make_ordinal(
        OrdinalWords(
            lang="mr",
            irregular_stems={1: "पहिल", 2: "दुसर", 3: "तिसर", 4: "चौथ"},
            regular_endings={"ा": "वा", "ी": "वी", "े": "वे"},
        )
    ),
    spell_acronym=make_acronym_speller(LETTERS, WORD_ACRONYMS),
    abbreviations=compile_abbreviations(
        {
            "डॉ.": "डॉक्टर",
            "Dr.": "डॉक्टर",
            "Mr.": "मिस्टर",
            "Mrs.": "मिसेस",
            "A/c": "खाते",
            "a/c": "खाते",
            "कि.मी.": "किलोमीटर",
        }
    ),
    time_tail="वाजता|वाजून",
)
