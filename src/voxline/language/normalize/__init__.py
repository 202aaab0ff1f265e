"""Text normalisation before TTS: numbers, amounts, dates, times, digit strings and abbreviations
written out as words in the call's language, so a voice says "₹1,50,000 due on 05/12" right.

`normalize_for_speech` runs on every sentence just before synthesis: regexes are compiled at
import, a sentence takes tens of microseconds, and it never raises (a bug falls back to reading
digits one by one rather than dropping the sentence).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from voxline.language import registry
from voxline.language.normalize.numbers import DIGIT_WORDS
from voxline.language.normalize.passes import DEVANAGARI_DIGITS, Normalizer

__all__ = ["normalize_for_speech", "speech_normalizer"]

log = logging.getLogger(__name__)

_NORMALIZERS: dict[int, Normalizer] = {}
"""Built once per lexicon (its regexes compile then), keyed by the lexicon object."""

base_language = registry.base_code


def _normalizer(language: str) -> Normalizer | None:
    known = registry.find(base_language(language))
    if known is None or known.lexicon is None:
        return None
    normalizer = _NORMALIZERS.get(id(known.lexicon))
    if normalizer is None or normalizer.lex is not known.lexicon:
        normalizer = _NORMALIZERS[id(known.lexicon)] = Normalizer(known.lexicon)
    return normalizer


def speech_normalizer(language: str) -> Callable[[str], str]:
    """`normalize_for_speech` for one language, as a Reply's `speech_text` takes it."""
    return lambda text: normalize_for_speech(text, language)


def normalize_for_speech(text: str, language: str) -> str:
    """`text` with numbers and abbreviations written as words in `language` (a registered language
    with a lexicon: "en", "hi", "mr", or a regional tag like "hi-IN"); text in any other language
    comes back unchanged."""
    normalizer = _normalizer(language)
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
