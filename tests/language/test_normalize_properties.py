"""Normalisation runs on every sentence before TTS: whatever the text, it must not raise and must
not hand the voice a digit."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxline.language.normalize import normalize_for_speech
from voxline.language.normalize.numbers import cardinal
from voxline.language.normalize.passes import Normalizer

LANGUAGES = st.sampled_from(["en", "hi", "mr"])
_ASCII_OR_DEVANAGARI_DIGIT = re.compile(r"[0-9०-९]")

# Pieces that exercise every pass, glued together in random order with random separators.
_PIECES = st.sampled_from(
    [
        "₹",
        "Rs.",
        "INR",
        "$",
        "रु.",
        "lakh",
        "करोड़",
        "k",
        "rupees",
        "रुपये",
        "/-",
        "%",
        "+91",
        "+",
        ":",
        "/",
        ".",
        ",",
        "-",
        " ",
        "pm",
        "a.m.",
        "बजे",
        "वाजता",
        "st",
        "th",
        "वाँ",
        "ला",
        "री",
        "OTP",
        "account",
        "खाता",
        "KYC",
        "Dr.",
        "No.",
        "Dec",
        "December",
        "in",
        "०",
        "५",
        "12",
        "05",
    ]
)
_NUMBERS = st.integers(min_value=0, max_value=10**20).map(str)
_MESSY_TEXT = st.lists(st.one_of(_PIECES, _NUMBERS, st.text(max_size=5)), max_size=12).map("".join)


@settings(max_examples=400, deadline=None)
@given(text=_MESSY_TEXT, language=LANGUAGES)
def test_never_raises_and_leaves_no_digit(text: str, language: str) -> None:
    spoken = normalize_for_speech(text, language)
    assert isinstance(spoken, str)
    assert not _ASCII_OR_DEVANAGARI_DIGIT.search(spoken)


@settings(max_examples=300, deadline=None)
@given(text=st.text(), language=LANGUAGES)
def test_any_unicode_text_is_safe(text: str, language: str) -> None:
    assert not _ASCII_OR_DEVANAGARI_DIGIT.search(normalize_for_speech(text, language))


_WORDS = st.lists(st.from_regex(r"[a-z]{1,8}", fullmatch=True), max_size=8).map(" ".join)


@given(text=_WORDS, language=LANGUAGES)
def test_plain_words_pass_through_untouched(text: str, language: str) -> None:
    if set(text.split()) & {"hrs", "mins"}:  # English abbreviations that do get expanded
        return
    assert normalize_for_speech(text, language) == text


@given(n=st.integers(min_value=1, max_value=10**12 - 1), language=LANGUAGES)
def test_cardinals_are_words_for_every_size(n: int, language: str) -> None:
    words = cardinal(n, language)
    assert words and not _ASCII_OR_DEVANAGARI_DIGIT.search(words)
    assert "  " not in words and words == words.strip()


@given(n=st.integers(min_value=10**5, max_value=10**9 - 1), language=LANGUAGES)
def test_grouped_amount_reads_as_the_same_number_as_plain(n: int, language: str) -> None:
    indian = f"{n:,}"  # Western grouping; the rupee sign makes every language say lakh/crore
    assert normalize_for_speech(f"₹{indian}", language) == normalize_for_speech(f"₹{n}", language)


def test_a_failing_pass_falls_back_to_reading_digits(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_self: Normalizer, _text: str) -> str:
        raise RuntimeError("bug in a pass")

    monkeypatch.setattr(Normalizer, "normalize", broken)
    assert normalize_for_speech("OTP ४82", "hi").split() == ["OTP", "चार", "आठ", "दो"]
