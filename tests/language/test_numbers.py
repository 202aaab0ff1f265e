"""Cardinal numbers in the three languages, including the irregular Hindi/Marathi 1–99."""

from __future__ import annotations

import pytest

from voxline.language.normalize.numbers import cardinal, digit_words, quarter_words


@pytest.mark.parametrize(
    ("n", "hindi", "marathi", "english"),
    [
        (6, "छह", "सहा", "six"),
        (19, "उन्नीस", "एकोणीस", "nineteen"),
        (49, "उनचास", "एकोणपन्नास", "forty nine"),
        (79, "उन्यासी", "एकोणऐंशी", "seventy nine"),
        (99, "निन्यानवे", "नव्याण्णव", "ninety nine"),
        (100, "एक सौ", "शंभर", "one hundred"),
        (250, "दो सौ पचास", "दोनशे पन्नास", "two hundred and fifty"),
        (6000, "छह हज़ार", "सहा हजार", "six thousand"),
        (150000, "एक लाख पचास हज़ार", "एक लाख पन्नास हजार", "one lakh fifty thousand"),
        (10**7, "एक करोड़", "एक कोटी", "one crore"),
        (250 * 10**7, "दो सौ पचास करोड़", "दोनशे पन्नास कोटी", "two hundred and fifty crore"),
        (10**9 + 5, "एक सौ करोड़ पाँच", "शंभर कोटी पाच", "one hundred crore five"),
    ],
)
def test_indian_cardinals(n: int, hindi: str, marathi: str, english: str) -> None:
    assert cardinal(n, "hi") == hindi
    assert cardinal(n, "mr") == marathi
    assert cardinal(n, "en") == english


def test_western_english() -> None:
    assert cardinal(1_500_000, "en", indian=False) == "one million five hundred thousand"
    assert cardinal(2_000_000_001, "en", indian=False) == "two billion one"


def test_digits_and_quarters() -> None:
    assert digit_words("4021", "mr") == "चार शून्य दोन एक"
    assert quarter_words(1, 2, "hi") == "डेढ़"
    assert quarter_words(2, 2, "mr") == "अडीच"
    assert quarter_words(3, 3, "hi") == "पौने चार"
    assert quarter_words(1, 1, "hi", amount=True) == "सवा"
    assert quarter_words(3, 2, "en") is None
