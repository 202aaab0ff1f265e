"""Spoken language identification with whisper's own language detector.

Whisper predicts the language from its encoder output with one decoder step, so the identifier shares
the STT's loaded model (never a second copy) and, through the STT's one-window encoder cache, the
encoder pass too: identifying a turn and then transcribing it encodes the audio once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from voxline.audio.pcm import AudioChunk
from voxline.engines.base import LanguageGuess
from voxline.language.registry import same_speech

if TYPE_CHECKING:
    from voxline.engines.stt_whisper import WhisperSTT

# Spoken Hindi and Urdu are one language (Hindustani) that only the script tells apart, and whisper
# splits its guess between them; when the agent allows Hindi but not Urdu, Urdu's share is Hindi's
# (each language's module says which it is heard as: `same_speech`).


def restrict_to_candidates(
    probabilities: Mapping[str, float], candidates: Sequence[str] | None, compute_ms: float = 0.0
) -> LanguageGuess:
    """The best candidate, with probabilities renormalised over the candidates only.

    `candidates=None` keeps every language whisper knows. If the audio gives no candidate any weight
    (music, a language the agent does not speak), the candidates share it evenly rather than
    dividing by zero; the caller sees that as low confidence.
    """
    if not candidates:
        pool = dict(probabilities)
    else:
        allowed = list(dict.fromkeys(candidates))
        pool = {}
        for language in allowed:
            mass = probabilities.get(language, 0.0)
            for twin in same_speech(language):
                if twin not in allowed:
                    mass += probabilities.get(twin, 0.0)
            pool[language] = mass
    if not pool:
        raise ValueError("no languages to choose from")
    total = sum(pool.values())
    if total <= 0.0:
        share = 1.0 / len(pool)
        normalised = {language: share for language in pool}
    else:
        normalised = {language: mass / total for language, mass in pool.items()}
    best = max(normalised, key=lambda language: normalised[language])
    return LanguageGuess(
        language=best, probability=normalised[best], probabilities=normalised, compute_ms=compute_ms
    )


class WhisperLanguageIdentifier:
    """The LanguageIdentifier protocol on a loaded (multilingual) WhisperSTT."""

    def __init__(self, stt: WhisperSTT, candidates: Sequence[str] | None = None) -> None:
        if not stt.multilingual:
            raise ValueError(
                f"{stt.name} is English-only: language identification needs a multilingual model"
            )
        self.name = f"lid:{stt.name}"
        self._stt = stt
        self._candidates = list(candidates) if candidates else None

    async def identify(self, audio: AudioChunk, candidates: Sequence[str] | None = None) -> LanguageGuess:
        """Runs in the model pool. `candidates` defaults to the ones given at construction (the agent's
        allowed languages)."""
        return await self._stt.identify_language(audio, candidates or self._candidates)
