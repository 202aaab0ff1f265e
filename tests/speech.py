"""Recorded human speech for tests: Debian's asterisk-core-sounds-en (see shared TESTDATA.md)."""

from __future__ import annotations

import gzip
import re
from functools import cache
from pathlib import Path

ALLISON = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
CALLER_TURNS = Path(__file__).parent / "data" / "caller_turns.txt"


@cache
def transcripts() -> dict[str, str]:
    out: dict[str, str] = {}
    with gzip.open(TRANSCRIPTS, "rt", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            name, sep, text = line.partition(":")
            if sep and not line.startswith("["):
                out[name.strip()] = text.strip()
    return out


def prompt(name: str) -> Path:
    path = ALLISON / f"{name}.wav"
    if not path.exists():
        raise FileNotFoundError(f"{path} missing: run `make setup-test` (apt asterisk-core-sounds-en-wav)")
    return path


def caller_turns() -> list[tuple[Path, str]]:
    names = [
        line.strip() for line in CALLER_TURNS.read_text().splitlines() if line.strip() and line[0] != "#"
    ]
    return [(prompt(n), transcripts()[n]) for n in names]


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def word_recall(expected: str, got: str) -> float:
    """Share of the expected words found in the transcript (order-free; robust to punctuation)."""
    want = words(expected)
    have = set(words(got))
    return sum(w in have for w in want) / max(1, len(want))
