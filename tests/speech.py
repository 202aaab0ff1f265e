"""Recorded human speech for tests: Debian's asterisk-core-sounds-en (see shared TESTDATA.md).

The prompt list, the transcripts and word recall are the bench's (`voxline.bench.utterances`), so the
tests and the benchmark speak the same 24 caller turns.
"""

from __future__ import annotations

from pathlib import Path

from voxline.bench.utterances import ALLISON, CALLER_TURNS, transcripts, word_recall, words

__all__ = ["caller_turns", "prompt", "transcripts", "word_recall", "words"]


def prompt(name: str) -> Path:
    path = ALLISON / f"{name}.wav"
    if not path.exists():
        raise FileNotFoundError(f"{path} missing: run `make setup-test` (apt asterisk-core-sounds-en-wav)")
    return path


def caller_turns() -> list[tuple[Path, str]]:
    """The 24 caller turns: (WAV path, exact transcript), in their fixed order."""
    return [(prompt(name), transcripts()[name]) for name in CALLER_TURNS]
