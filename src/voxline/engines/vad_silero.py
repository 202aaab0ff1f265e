"""Silero VAD v6 run with onnxruntime directly (no torch).

The model takes 512 new samples at 16 kHz, prefixed with the last 64 samples of the previous frame
(its "context"), plus a recurrent state of shape (2, 1, 128). Both must be carried between frames,
or the probabilities drift. One InferenceSession is shared by all calls (it is thread-safe and costs
~2 MB); each call gets its own stream with its own state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from voxline.audio.pcm import Float32Array
from voxline.engines.base import ModelNotInstalledError

SAMPLE_RATE = 16000
FRAME_SAMPLES = 512
CONTEXT_SAMPLES = 64


def _load_session(path: Path) -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise ModelNotInstalledError("Silero VAD needs onnxruntime: pip install 'voxline[vad]'") from exc
    options = onnxruntime.SessionOptions()
    # One frame is tiny; more threads only add synchronisation cost and steal cores from STT/LLM.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


class SileroVADStream:
    """Per-call Silero state: the RNN state and the 64-sample context."""

    sample_rate = SAMPLE_RATE
    frame_samples = FRAME_SAMPLES

    def __init__(self, session: Any) -> None:
        self._session = session
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros((1, CONTEXT_SAMPLES), dtype=np.float32)

    def probability(self, frame: Float32Array) -> float:
        if frame.shape != (FRAME_SAMPLES,):
            raise ValueError(f"Silero needs {FRAME_SAMPLES} samples at {SAMPLE_RATE} Hz, got {frame.shape}")
        window = np.concatenate([self._context, frame.astype(np.float32, copy=False)[np.newaxis, :]], axis=1)
        out, state = self._session.run(None, {"input": window, "state": self._state, "sr": self._sr})
        self._state = state
        self._context = window[:, -CONTEXT_SAMPLES:]
        return float(out[0][0])


class SileroVAD:
    """Holds the shared model; `new_stream()` per call."""

    name = "silero"

    def __init__(self, model_path: Path) -> None:
        self.model_path = model_path
        self._session = _load_session(model_path)

    def new_stream(self) -> SileroVADStream:
        return SileroVADStream(self._session)
