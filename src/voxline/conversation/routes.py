"""Routes: requests the agent answers with fixed, approved words instead of the model's.

A 0.5B model answers "When is my payment due?" with an invented date, and a contact centre wants a
lost card handled the same way every time. The agent file lists such requests as phrases; a caller
turn that holds every word of one (in any order, any inflection) gets the route's line. Matching is
word sets, not a model: it costs microseconds, never invents, and is as predictable as a keypad menu.

Measured alternatives (docs/quality.md): asking the 0.5B model for an intent label first (a
constrained "[intent] reply" turn) picked the right one for 11 of 38 bank requests; nearest
neighbours on its embeddings for 31 of 38 at 240-420 ms per turn (scripts/intent_choice/).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from voxline.agent.config import Route

# a letter, then letters or Indic combining marks: Python's \w leaves out vowel signs and the virama
# (U+093E "ा" is not alphanumeric), which would cut "खुलती" into fragments that match anything;
# the danda (U+0964, U+0965) is punctuation
_WORDS = re.compile(r"[^\W_](?:[^\W_]|[\u0900-\u0963\u0966-\u0dff])*(?:'[^\W_]+)?")
_SUFFIXES = ("ing", "ed", "es", "s", "e")


def stem(word: str) -> str:
    """A crude stem that makes "declined", "declines" and "decline" one word."""
    word = word.lower().removesuffix("'s").replace("'", "")
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: -len(suffix)]
    return word


def stems(text: str) -> frozenset[str]:
    return frozenset(stem(w) for w in _WORDS.findall(text))


@dataclass(frozen=True, slots=True)
class _Compiled:
    route: Route
    phrases: tuple[frozenset[str], ...]


class Routes:
    """The agent's routes, matched against what the caller just said."""

    def __init__(self, routes: Sequence[Route], default_language: str) -> None:
        self._default_language = default_language
        self._routes = tuple(_Compiled(r, tuple(p for p in (stems(w) for w in r.when) if p)) for r in routes)

    def __bool__(self) -> bool:
        return bool(self._routes)

    def match(self, caller_text: str, language: str) -> Route | None:
        """The first route one of whose phrases the caller's words hold, for a reply in `language`."""
        heard = stems(caller_text)
        for compiled in self._routes:
            if (compiled.route.language or self._default_language) != language:
                continue
            if any(phrase <= heard for phrase in compiled.phrases):
                return compiled.route
        return None
