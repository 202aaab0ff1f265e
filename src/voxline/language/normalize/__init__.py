"""Text normalisation before TTS: numbers, amounts, dates, times, digit strings and abbreviations
written out as words in the call's language, so a voice says "₹1,50,000 due on 05/12" right.

`normalize_for_speech` runs on every sentence just before synthesis: regexes are compiled at
import, a sentence takes tens of microseconds, and it never raises (a bug falls back to reading
digits one by one rather than dropping the sentence).
"""

from __future__ import annotations

import logging

from voxline.language.normalize import en, hi, mr
from voxline.language.normalize.numbers import DIGIT_WORDS
from voxline.language.normalize.passes import DEVANAGARI_DIGITS, Normalizer

__all__ = ["SUPPORTED_LANGUAGES", "normalize_for_speech"]

log = logging.getLogger(__name__)

_NORMALIZERS = {lex.code: Normalizer(lex) for lex in (en.LEXICON, hi.LEXICON, mr.LEXICON)}
SUPPORTED_LANGUAGES = frozenset(_NORMALIZERS)


def base_language(language: str) -> str:
    """'hi-IN' / 'en_US' / 'HI' → 'hi' / 'en' / 'hi'."""
    return language.replace("_", "-").split("-", 1)[0].lower()


def normalize_for_speech(text: str, language: str) -> str:
    """`text` with numbers and abbreviations written as words in `language` ("en", "hi", "mr", or a
    regional tag like "hi-IN"); text in any other language comes back unchanged."""
    normalizer = _NORMALIZERS.get(base_language(language))
    if normalizer is None or not text:
        return text
    try:
        return normalizer.normalize(text)
    except Exception:
        log.exception("normalisation failed; reading digits one by one: %r", text)
        return _digits_only(text, normalizer.lex.code)


def _digits_only(text: str, lang: str) -> str:
    words = DIGIT_WORDS[lang]
    text = text.translate(DEVANAGARI_DIGITS)
    return "".join(f" {words[ord(c) - 48]} " if "0" <= c <= "9" else c for c in text)
