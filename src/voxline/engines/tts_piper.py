"""Piper TTS (piper-tts 1.8, ONNX) in a worker thread, yielding audio sentence by sentence."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from voxline.audio.pcm import AudioChunk
from voxline.engines._threaded import iterate_in_thread
from voxline.engines.base import ModelNotInstalledError


class PiperTTS:
    def __init__(
        self, model_path: Path, *, speed: float = 1.0, threads: int = 1, varied: bool = True
    ) -> None:
        try:
            import onnxruntime
            from piper import PiperVoice, SynthesisConfig
            from piper.config import PiperConfig
        except ImportError as exc:
            raise ModelNotInstalledError(
                "the piper engine needs piper-tts: pip install 'voxline[tts]'"
            ) from exc
        config_path = Path(f"{model_path}.json")
        if not model_path.exists() or not config_path.exists():
            raise ModelNotInstalledError(f"Piper voice needs {model_path} and {config_path}")
        options = onnxruntime.SessionOptions()
        # Piper's own loader uses every core; on a shared box one or two keep STT/LLM responsive.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
        self._voice: Any = PiperVoice(session=session, config=config)
        # Piper's speed knob is the phoneme length: 2x speed = half the length.
        self._syn_config: Any = SynthesisConfig(length_scale=config.length_scale / speed)
        if not varied:
            # VITS samples noise on every call, so the same line never sounds quite the same twice;
            # fixtures and evals that must hear identical audio on every machine turn it off.
            self._syn_config.noise_scale = 0.0
            self._syn_config.noise_w_scale = 0.0
        self.sample_rate: int = int(config.sample_rate)
        self.name = f"piper:{model_path.stem}"

    def stream(self, text: str, voice: str | None = None) -> AsyncIterator[AudioChunk]:
        # `voice` selects a speaker only on multi-speaker models; joe is single-speaker.
        return iterate_in_thread(lambda stop: self._synthesize(text, stop))

    def _synthesize(self, text: str, stop: threading.Event) -> Iterator[AudioChunk]:
        # Piper makes each sentence when asked for it: check the stop flag before asking, so a closed
        # stream finishes at most the sentence under way instead of making one more for nobody.
        pieces = iter(self._voice.synthesize(text, self._syn_config))
        while not stop.is_set():
            piece = next(pieces, None)
            if piece is None:
                return
            yield AudioChunk(piece.audio_int16_array.reshape(-1), int(piece.sample_rate))

    async def warm_up(self) -> None:
        async for _ in self.stream("Hello."):
            pass
