"""Speech-to-text with faster-whisper (CTranslate2), run in a worker thread.

Tuned for phone turns, not for files: greedy decoding at temperature 0 only (no fallback re-decodes),
no timestamps, no conditioning on earlier text, our own VAD already cut the turn, and a hard cap on
generated tokens so bad audio cannot make whisper loop for a minute.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from voxline.audio.pcm import AudioChunk
from voxline.audio.resample import resample
from voxline.engines._threaded import run_model
from voxline.engines.base import ModelNotInstalledError, Transcript

WHISPER_RATE = 16000
MAX_NEW_TOKENS = 96


class WhisperSTT:
    """faster-whisper behind the STT protocol. `model` is a local CT2 folder or, for online users,
    a faster-whisper size/hub id."""

    def __init__(
        self,
        model: Path | str,
        *,
        device: str = "cpu",
        compute_type: str = "int8",
        cpu_threads: int = 2,
        beam_size: int = 1,
        max_new_tokens: int = MAX_NEW_TOKENS,
        name: str | None = None,
    ) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise ModelNotInstalledError("whisper needs faster-whisper: pip install 'voxline[stt]'") from exc
        self.name = f"whisper:{name or Path(str(model)).name}"
        self._model: Any = WhisperModel(
            str(model), device=device, compute_type=compute_type, cpu_threads=cpu_threads
        )
        self.multilingual: bool = bool(self._model.model.is_multilingual)
        self._beam_size = beam_size
        self._max_new_tokens = max_new_tokens
        # CTranslate2 can run requests in parallel, but on a small CPU two at once only makes both
        # slow; serialising keeps each turn's latency predictable.
        self._lock = threading.Lock()

    async def transcribe(self, audio: AudioChunk, language: str | None = None) -> Transcript:
        if not self.multilingual:
            language = "en"
        samples = resample(audio, WHISPER_RATE).to_float32()
        return await run_model(self._transcribe_blocking, samples, language)

    def _transcribe_blocking(self, samples: np.ndarray[Any, Any], language: str | None) -> Transcript:
        started = time.perf_counter()
        with self._lock:
            segments, info = self._model.transcribe(
                samples,
                language=language,
                beam_size=self._beam_size,
                temperature=0.0,
                without_timestamps=True,
                condition_on_previous_text=False,
                vad_filter=False,
                max_new_tokens=self._max_new_tokens,
            )
            # segments is lazy: the decoding happens while we iterate, so keep it inside the lock.
            text = " ".join(seg.text.strip() for seg in segments).strip()
        return Transcript(
            text=text,
            language=str(info.language or language or "en"),
            language_probability=float(info.language_probability if language is None else 1.0),
            compute_ms=(time.perf_counter() - started) * 1000.0,
        )

    async def warm_up(self) -> None:
        await self.transcribe(
            AudioChunk.silence(1.0, WHISPER_RATE), language=None if self.multilingual else "en"
        )
