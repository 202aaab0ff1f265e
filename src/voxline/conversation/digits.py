"""Keypad input: collecting a number (collect_digits), debouncing free key presses, and digits
spoken aloud ("one two three" → "123") for callers who talk instead of pressing keys.

Timeouts run on the conversation's Clock: the deadline is a clock time, waited for with
`Clock.sleep_until` (see `waiting`), like the call's own timers.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Literal

from voxline.agent.config import DTMF_KEYS, CollectDigitsConfig
from voxline.audio.clock import Clock
from voxline.conversation.waiting import next_before

EndReason = Literal["terminator", "max_digits", "timeout", "no_input", "speech"]

_WORD_KEYS = {
    "zero": "0",
    "nought": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "star": "*",
    "asterisk": "*",
    "pound": "#",
    "hash": "#",
    "hashtag": "#",
}
_REPEATS = {"double": 2, "triple": 3}
_ZERO_LETTERS = {"oh", "o"}
"""Read as 0 only beside other digits: "oh" alone is an interjection."""
_TOKEN = re.compile(r"[a-z]+|\d|[*#]")


@dataclass(frozen=True, slots=True)
class SpokenKeys:
    keys: str
    """The keys the words name, in order ("" if none)."""
    other_words: list[str] = field(default_factory=list)
    """Words that are not keys (fillers like "my number is" included)."""


def spoken_keys(text: str) -> SpokenKeys:
    """The keypad keys named in a transcript: digits, number words, "star", "pound", "double 5"."""
    tokens = _TOKEN.findall(text.lower())
    is_key = [t in _WORD_KEYS or t.isdigit() or t in "*#" for t in tokens]
    keys: list[str] = []
    other: list[str] = []
    repeat = 1
    for i, token in enumerate(tokens):
        if token in _REPEATS and i + 1 < len(tokens) and (is_key[i + 1] or tokens[i + 1] in _ZERO_LETTERS):
            repeat = _REPEATS[token]
            continue
        key = _WORD_KEYS.get(token) or (token if is_key[i] else None)
        if key is not None and key.isdigit():
            key = str(int(key))  # a digit in any script ("४" in a Hindi transcript) is that key
        if key is None and token in _ZERO_LETTERS:
            beside_digit = (i > 0 and is_key[i - 1]) or (i + 1 < len(tokens) and is_key[i + 1])
            key = "0" if beside_digit or repeat > 1 else None
        if key is None:
            other.append(token)
        else:
            keys.append(key * repeat)
        repeat = 1
    return SpokenKeys("".join(keys), other)


def valid_keys(keys: str) -> bool:
    return bool(keys) and all(k in DTMF_KEYS for k in keys)


@dataclass(frozen=True, slots=True)
class CollectResult:
    digits: str
    reason: EndReason
    speech: str = ""
    """What the caller said instead of entering digits (reason "speech")."""

    def for_model(self, settings: CollectDigitsConfig) -> str:
        """The tool result the model reads."""
        if self.reason == "speech":
            entered = f" after entering {self.digits}" if self.digits else ""
            return f"The caller stopped entering digits{entered} and said: {self.speech}"
        if not self.digits:
            return "The caller entered no digits."
        if len(self.digits) < settings.min_digits:
            return f"The caller entered only {self.digits} (at least {settings.min_digits} digits expected)."
        return f"The caller entered {self.digits}."


class DigitCollector:
    """One collect_digits run. Keys and speech are fed in by the conversation's event loop; the
    agent turn awaits `collect()`. Keys fed before `collect()` (over the prompt) count."""

    def __init__(self, settings: CollectDigitsConfig, clock: Clock) -> None:
        self.settings = settings
        self._clock = clock
        self._inbox: asyncio.Queue[str | SpokenKeys] = asyncio.Queue()
        self.got_input = asyncio.Event()
        """Set by the first key or words: the cue to stop speaking the prompt."""

    def press(self, keys: str) -> None:
        self._inbox.put_nowait(keys)
        self.got_input.set()

    def said_instead(self, text: str) -> None:
        """The caller said something that is not digits: the collection ends with their words."""
        self._inbox.put_nowait(SpokenKeys("", text.split()))
        self.got_input.set()

    async def collect(self) -> CollectResult:
        s = self.settings
        digits = ""
        deadline = self._clock.now() + s.first_digit_timeout_s
        while True:
            item = await next_before(self._inbox, self._clock, deadline)
            if item is None:
                return CollectResult(digits, "timeout" if digits else "no_input")
            if isinstance(item, SpokenKeys):
                return CollectResult(digits, "speech", " ".join(item.other_words))
            for key in item:
                if s.terminator and key == s.terminator:
                    return CollectResult(digits, "terminator")
                digits += key
                if len(digits) >= s.max_digits:
                    return CollectResult(digits, "max_digits")
            deadline = self._clock.now() + s.inter_digit_timeout_s


class KeyRun:
    """Keys pressed outside any menu or collection, gathered until the caller pauses: "1", "2", "3"
    within the gap become one caller turn "(caller pressed 1 2 3)" instead of three."""

    def __init__(self, gap_s: float) -> None:
        self.gap_s = gap_s
        self._keys = ""
        self.deadline: float | None = None
        """Clock time at which the run is complete (None: no keys pending)."""

    def add(self, key: str, now: float) -> None:
        self._keys += key
        self.deadline = now + self.gap_s

    def take(self) -> str:
        keys, self._keys, self.deadline = self._keys, "", None
        return keys

    @staticmethod
    def as_text(keys: str) -> str:
        return f"(caller pressed {' '.join(keys)})"
