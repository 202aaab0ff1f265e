"""Speech-to-text over an OpenAI-compatible `/audio/transcriptions` endpoint
(faster-whisper-server / speaches, vLLM, OpenAI itself)."""

from __future__ import annotations

import io
import time
import wave

import httpx

from voxline.audio.pcm import AudioChunk
from voxline.engines._http import openai_client
from voxline.engines.base import EngineError, Transcript


def to_wav_bytes(audio: AudioChunk) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(audio.sample_rate)
        wav.writeframes(audio.to_bytes())
    return out.getvalue()


class OpenAISTT:
    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        multilingual: bool = True,
        timeout_s: float = 30.0,
    ) -> None:
        self.name = f"openai-stt:{model}"
        self.multilingual = multilingual
        self._model = model
        self._client = openai_client(base_url, api_key, timeout_s)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def transcribe(self, audio: AudioChunk, language: str | None = None) -> Transcript:
        started = time.perf_counter()
        data = {"model": self._model, "response_format": "verbose_json", "temperature": "0"}
        if language:
            data["language"] = language
        try:
            response = await self._client.post(
                "/audio/transcriptions",
                data=data,
                files={"file": ("audio.wav", to_wav_bytes(audio), "audio/wav")},
            )
        except httpx.HTTPError as exc:
            raise EngineError(f"STT server request failed: {exc!r}") from exc
        if response.status_code >= 400:
            raise EngineError(f"STT server answered {response.status_code}: {response.text[:300]}")
        body = response.json()
        detected = str(body.get("language") or language or "en")
        return Transcript(
            text=str(body.get("text", "")).strip(),
            language=_to_code(detected),
            language_probability=float(body.get("language_probability", 1.0)),
            compute_ms=(time.perf_counter() - started) * 1000.0,
        )

    async def warm_up(self) -> None:
        await self.transcribe(AudioChunk.silence(0.5, 16000), language="en")


# verbose_json reports OpenAI-style language names ("english"); the rest of voxline uses codes.
_NAMES = {"english": "en", "hindi": "hi", "marathi": "mr", "spanish": "es", "french": "fr", "german": "de"}


def _to_code(language: str) -> str:
    return _NAMES.get(language.lower(), language.lower())
