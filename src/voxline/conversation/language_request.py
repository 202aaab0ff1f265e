"""Did the caller ask to speak another language? A small keyword matcher for English, Hindi (in
Devanagari and romanised) and Marathi.

"can we speak in Marathi", "in English please", "Hindi mein baat kijiye", "हिंदी में बात कीजिए",
"मराठीत बोला": a request names a language *and* carries a request cue (speak, in, mein, बात, बोला,
...) or the Marathi locative ("मराठीत" = in Marathi). A language name alone ("my Hindi teacher
said...") in a long sentence is not a request. STT forced to one language writes the other ones
oddly ("Hindi main baat ki jiye", "इन इंग्लिश प्लीज"), so the word lists include those spellings.
The names and cues are each language's (`names`, `names_meaning_in`, `request_cues` in
voxline.language.languages); cues are pooled, since a request may mix languages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from voxline.language import registry

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
    languages = registry.all_languages()
    allowed = set(allowed)
    named = [
        (lang, word) for word in words for lang in languages if lang.code in allowed and word in lang.names
    ]
    if len({lang.code for lang, _ in named}) != 1:
        return None  # no language named, or several ("Hindi or English?"): not a clear request
    cues = {cue for lang in languages for cue in lang.request_cues}
    language = named[0][0]
    in_language = any(word in lang.names_meaning_in for lang, word in named)
    if len(words) <= 2 or in_language or any(w in cues for w in words):
        return language.code  # a bare "Hindi" answers "which language?"; otherwise it needs a cue
    return None
