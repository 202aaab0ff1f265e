"""Every language voxline speaks, each described once (`Language`), and the registry they are in.

A language's knowledge lives in one module under `voxline.language.languages` (its names, how a
caller asks for it, its script, its default voices, its fixed lines, its speech normaliser); the
call's language policy, the request matcher, the script filter, whisper's priming, the voice
defaults and the normaliser all read it from here. Adding a language is one new module plus one
line in `voxline/language/languages/__init__.py` (or `register()` from outside the package).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # the normaliser package reads the registry; the registry only names its type
    from voxline.language.normalize.lexicon import Lexicon

Script = str
"""'latin' | 'devanagari' | 'arabic' (what `voxline.language.script.script_of` tells apart)."""

LineKind = Literal["greeting", "reprompt", "goodbye", "switched", "fallback", "tool_filler", "tool_failure"]
"""The fixed lines a language may bring: said when the agent file gives none of that kind in it."""


@dataclass(frozen=True)
class Language:
    code: str
    """ISO 639-1 (or 639-3 where there is none), as the agent file and the STT write it."""
    english_name: str
    native_name: str
    script: Script
    names: tuple[str, ...] = ()
    """Every spelling of the language's name a transcript may hold, lower case, in any script
    (STT forced to another language writes it oddly: "inglish", "इंग्लिश")."""
    names_meaning_in: tuple[str, ...] = ()
    """Those of `names` that alone mean "in <language>" (Marathi's locative "मराठीत")."""
    request_cues: tuple[str, ...] = ()
    """Words in this language (as STT writes them) that turn a language's name into a request for it
    ("speak", "mein", "बोला"). Cues are pooled: a request may mix languages."""
    request_phrases: Mapping[str, str] = field(default_factory=dict)
    """How a caller asks, in this language, for a language (by code): primes the STT."""
    lines: Mapping[LineKind, str] = field(default_factory=dict)
    sample_line: str = ""
    """A short sentence `voxline doctor` has a voice say to check that it speaks this language."""
    warm_up_line: str = ""
    """A word or two a voice says once at start-up, so the first call's first sentence is not slow."""
    default_voices: Mapping[str, str] = field(default_factory=dict)
    """TTS engine → the voice (festival) or style (kokoro) that speaks this language when the agent
    file names only the language."""
    stt_prompt: str | None = None
    """Whisper's decoder prompt for this language: an everyday line in the script wanted back."""
    lexicon: Lexicon | None = None
    """Numbers, dates and abbreviations as words before TTS; None: text is spoken as written."""
    marker_words: frozenset[str] = frozenset()
    """Words this language uses all the time and the others written in its script do not: what tells
    a Hindi reply from a Marathi one (the evals' language check)."""
    same_speech: tuple[str, ...] = ()
    """Languages spoken the same that only the script tells apart (Hindi and Urdu): a language
    identifier's share for them counts for this one when the agent does not speak them."""


_REGISTERED: dict[str, Language] = {}
_BUILT_IN_LOADED = False


def _languages() -> dict[str, Language]:
    global _BUILT_IN_LOADED
    if not _BUILT_IN_LOADED:
        _BUILT_IN_LOADED = True
        from voxline.language.languages import BUILT_IN

        for language in BUILT_IN:
            _REGISTERED.setdefault(language.code, language)
    return _REGISTERED


def register(language: Language) -> None:
    """Add (or replace) a language; every table below sees it at once."""
    _languages()[language.code] = language


def unregister(code: str) -> None:
    _languages().pop(code, None)


def find(code: str | None) -> Language | None:
    """The language with this exact code, or None."""
    return _languages().get(code) if code else None


def get(code: str) -> Language:
    language = find(code)
    if language is None:
        raise KeyError(f"no language {code!r}; known: {', '.join(codes())}")
    return language


def codes() -> tuple[str, ...]:
    return tuple(_languages())


def all_languages() -> tuple[Language, ...]:
    return tuple(_languages().values())


def default_stt_prompts() -> dict[str, str]:
    """Language → its whisper steering prompt, for the languages that have one."""
    return {language.code: language.stt_prompt for language in all_languages() if language.stt_prompt}


def warm_up_line(code: str | None, default: str) -> str:
    language = find(code)
    return (language.warm_up_line if language is not None else "") or default


def find_named(english_name: str) -> Language | None:
    """The language called `english_name` in English, in any case ("hindi" → Hindi)."""
    wanted = english_name.lower()
    return next((lang for lang in all_languages() if lang.english_name.lower() == wanted), None)


def same_speech(code: str) -> tuple[str, ...]:
    """The languages spoken like `code` that only the script tells apart ("hi" → ("ur",))."""
    language = find(code)
    return language.same_speech if language is not None else ()


def base_code(language: str) -> str:
    """'hi-IN' / 'en_US' / 'HI' → 'hi' / 'en' / 'hi'."""
    return language.replace("_", "-").split("-", 1)[0].lower()


class LineTable(Mapping[str, str]):
    """Language code → its built-in line of one kind, read live from the registry (a language
    registered later is in it too)."""

    def __init__(self, kind: LineKind) -> None:
        self.kind = kind

    def __getitem__(self, code: str) -> str:
        language = find(code)
        if language is None or self.kind not in language.lines:
            raise KeyError(code)
        return language.lines[self.kind]

    def __iter__(self) -> Iterator[str]:
        return (language.code for language in all_languages() if self.kind in language.lines)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def language_of_words(text_words: Collection[str], script: Script) -> str | None:
    """Of the languages written in `script`, the one whose marker words `text_words` holds most,
    or None when the words give no sign (or two tie)."""
    votes = {
        language.code: sum(1 for w in text_words if w in language.marker_words)
        for language in all_languages()
        if language.script == script and language.marker_words
    }
    if not votes:
        return None
    best = max(votes, key=lambda code: votes[code])
    others = [v for code, v in votes.items() if code != best]
    if votes[best] == 0 or (others and votes[best] <= max(others)):
        return None
    return best
