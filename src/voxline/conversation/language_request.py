"""Did the caller ask to speak another language? A small keyword matcher for English, Hindi (in
Devanagari and romanised) and Marathi.

"can we speak in Marathi", "in English please", "Hindi mein baat kijiye", "हिंदी में बात कीजिए",
"मराठीत बोला": a request names a language *and* carries a request cue (speak, in, mein, बात, बोला,
...) or the Marathi locative ("मराठीत" = in Marathi). A language name alone ("my Hindi teacher
said...") in a long sentence is not a request. STT forced to one language writes the other ones
oddly ("Hindi main baat ki jiye", "इन इंग्लिश प्लीज"), so the word lists include those spellings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Every spelling of each language's name, lower case (Latin, Devanagari, STT's variants).
_NAMES: dict[str, tuple[str, ...]] = {
    "en": ("english", "inglish", "angrezi", "angreji", "angrezee", "इंग्लिश", "अंग्रेजी", "अंग्रेज़ी", "इंग्रजी"),
    "hi": ("hindi", "hindee", "हिंदी", "हिन्दी", "हिंदीत", "हिन्दीत", "हिंदीमध्ये"),
    "mr": ("marathi", "marathee", "marati", "मराठी", "मराठीत", "मराठीमध्ये"),
}
# Forms that are themselves "in <language>" (Marathi's locative suffix -त, -मध्ये).
_LOCATIVE = frozenset({"हिंदीत", "हिन्दीत", "हिंदीमध्ये", "मराठीत", "मराठीमध्ये"})

_ENGLISH_CUES = (
    "speak speaking talk talking in please switch change continue use language prefer answer reply"
)
_ROMANISED_CUES = (
    "mein me main mai men baat bat bolo boliye bolie bolye kijiye kijiyee kijie karo kariye karein karen "
    "bhasha bhaasha madhye bola bolu boluya chalega"
)
_DEVANAGARI_CUES = (
    "में मे बात बोलो बोलिए बोलिये बोलें कीजिए कीजिये करें करो भाषा भाषेत मध्ये मधे बोला बोलूया बोल इन प्लीज स्पीक"
)
_CUES = frozenset(f"{_ENGLISH_CUES} {_ROMANISED_CUES} {_DEVANAGARI_CUES}".split(" "))
MAX_REQUEST_WORDS = 12
"""Longer turns mention a language in passing more often than they ask for one."""

_WORD = re.compile(r"[\w\u0900-\u097f]+")


def _words(text: str) -> list[str]:
    # \w already covers Devanagari letters, but not its combining vowel signs in every Python build
    return [w.lower() for w in _WORD.findall(text)]


def requested_language(text: str, allowed: Iterable[str]) -> str | None:
    """The allowed language the caller asks to speak in `text`, or None if it is not a request."""
    words = _words(text)
    if not words or len(words) > MAX_REQUEST_WORDS:
        return None
    allowed = set(allowed)
    named = [
        (code, word) for word in words for code, names in _NAMES.items() if code in allowed and word in names
    ]
    if len({code for code, _ in named}) != 1:
        return None  # no language named, or several ("Hindi or English?"): not a clear request
    code = named[0][0]
    if len(words) <= 2 or any(word in _LOCATIVE for _, word in named) or any(w in _CUES for w in words):
        return code  # a bare "Hindi" answers "which language?"; otherwise it needs a cue
    return None
