"""The audio of fixed lines, rendered once and kept for every call.

A fixed line (the greeting, a keypad menu's prompt) sounds the same on every call, so synthesising it
again is pure latency: on a CPU the first words of a Kokoro greeting take one to three seconds,
during which a caller who has just been answered hears nothing. The lines are rendered at start-up,
sentence by sentence exactly as a reply would send them to the voice, and a reply that speaks one of
them replays the kept audio instead.

Keyed by the voice object itself (each language has its own), the voice name and the exact text the
voice would read, so a changed line or another voice never replays the wrong audio.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

from voxline.audio.pcm import AudioChunk

if TYPE_CHECKING:  # base.py's Engines holds a LineAudio
    from voxline.engines.base import TTS

log = logging.getLogger(__name__)

MAX_LINES = 64
"""Sentences kept (least recently used go first): an agent's fixed lines are a handful; this bounds
memory (~10 s of 24 kHz audio is ~0.5 MB) if lines were ever made per call."""


class LineAudio:
    def __init__(self, max_lines: int = MAX_LINES) -> None:
        self.max_lines = max_lines
        self._kept: OrderedDict[tuple[int, str | None, str], tuple[TTS, list[AudioChunk]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._kept)

    def get(self, tts: TTS, text: str, voice: str | None = None) -> list[AudioChunk] | None:
        """The kept audio of `text` as `tts` (with `voice`) says it, or None."""
        key = (id(tts), voice, text)
        found = self._kept.get(key)
        if found is None or found[0] is not tts:  # an id reused by a newer object is not a match
            return None
        self._kept.move_to_end(key)
        return found[1]

    def put(self, tts: TTS, text: str, chunks: Sequence[AudioChunk], voice: str | None = None) -> None:
        if not chunks:
            return
        # the voice is kept with its audio, so its id cannot be reused while the entry lives
        self._kept[(id(tts), voice, text)] = (tts, list(chunks))
        self._kept.move_to_end((id(tts), voice, text))
        while len(self._kept) > self.max_lines:
            self._kept.popitem(last=False)

    async def render(self, tts: TTS, text: str, voice: str | None = None) -> float:
        """Synthesise `text` now and keep it (unless already kept); returns its duration in seconds."""
        kept = self.get(tts, text, voice)
        if kept is None:
            stream = tts.stream(text, voice)
            try:
                kept = [chunk async for chunk in stream]
            finally:
                close = getattr(stream, "aclose", None)  # a generator's; TTS.stream is an AsyncIterator
                if close is not None:
                    await close()
            self.put(tts, text, kept, voice)
        return sum(chunk.duration_s for chunk in kept)


async def replay(chunks: Sequence[AudioChunk]) -> AsyncIterator[AudioChunk]:
    """Kept audio, shaped like a voice's stream."""
    for chunk in chunks:
        yield chunk
