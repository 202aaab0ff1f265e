"""The recorded caller turns the bench speaks: Allison's prompts from Debian, with exact transcripts.

The audio is asterisk-core-sounds-en-wav (8 kHz recordings of a human voice) and the transcripts
are the same package's core-sounds-en.txt.gz, so every turn has a known, exact text to check the
agent's transcript against.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from voxline.audio.pcm import AudioChunk
from voxline.audio.wav import read_wav

ALLISON = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
INSTALL_HINT = "install the Debian packages asterisk-core-sounds-en-wav and asterisk-core-sounds-en"

CALLER_TURNS: tuple[str, ...] = (
    "demo-nomatch", "vm-sorry", "followme/pls-hold-while-try", "followme/status", "vm-nonumber",
    "vm-savefolder", "cannot-complete-as-dialed", "check-number-dial-again", "all-circuits-busy-now",
    "agent-pass", "auth-incorrect", "invalid", "transfer", "priv-introsaved", "followme/sorry",
    "privacy-incorrect", "conf-placeintoconf", "conf-waitforleader", "conf-getpin", "vm-reachoper",
    "agent-newlocation", "conf-invalidpin", "conf-noempty", "hello-world",
)  # fmt: skip
"""Prompt names (relative to en_US_f_Allison/, no .wav): the same 24 turns as the end-to-end tests."""


class SpeechDataMissing(FileNotFoundError):
    """The recorded prompts or their transcripts are not installed."""


@dataclass(frozen=True)
class Utterance:
    """One caller turn: its audio, what was said, and (for pause turns) where the pause is."""

    name: str
    audio: AudioChunk
    text: str
    pause_ms: float | None = None
    """Length of the mid-sentence pause this turn was given; None for an unaltered prompt."""
    pause_at_s: float | None = None
    """Where that pause starts in `audio`."""

    @property
    def paused(self) -> bool:
        return self.pause_ms is not None


@cache
def transcripts() -> dict[str, str]:
    """Prompt name → its exact transcript."""
    if not TRANSCRIPTS.exists():
        raise SpeechDataMissing(f"{TRANSCRIPTS} missing: {INSTALL_HINT}")
    out: dict[str, str] = {}
    with gzip.open(TRANSCRIPTS, "rt", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            name, sep, text = line.partition(":")
            if sep and not line.startswith("["):
                out[name.strip()] = text.strip()
    return out


def load_utterance(name: str) -> Utterance:
    path = ALLISON / f"{name}.wav"
    if not path.exists():
        raise SpeechDataMissing(f"{path} missing: {INSTALL_HINT}")
    text = transcripts().get(name)
    if text is None:
        raise SpeechDataMissing(f"no transcript for {name!r} in {TRANSCRIPTS}")
    return Utterance(name=name, audio=read_wav(path), text=text)


def caller_utterances(limit: int | None = None) -> list[Utterance]:
    """The caller turns in their fixed order (the first `limit` of them)."""
    names = CALLER_TURNS if limit is None else CALLER_TURNS[:limit]
    return [load_utterance(name) for name in names]


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def word_recall(expected: str, got: str) -> float:
    """Share of the expected words found in `got` (order-free; robust to punctuation)."""
    want = words(expected)
    have = set(words(got))
    return sum(w in have for w in want) / max(1, len(want))
