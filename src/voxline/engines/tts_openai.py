"""Text-to-speech over an OpenAI-compatible `/audio/speech` endpoint (Kokoro-FastAPI, speaches,
OpenAI), streamed: raw 16-bit PCM is yielded as it arrives; WAV has its header stripped first."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal

import httpx
import numpy as np

from voxline.audio.pcm import AudioChunk
from voxline.engines._http import openai_client
from voxline.engines.base import EngineError
from voxline.engines.tts_espeak import parse_wav_header


class OpenAITTS:
    def __init__(
        self,
        base_url: str,
        model: str = "tts-1",
        *,
        voice: str = "alloy",
        api_key: str | None = None,
        speed: float = 1.0,
        response_format: Literal["pcm", "wav"] = "pcm",
        sample_rate: int = 24000,  # OpenAI's "pcm" is 24 kHz s16le mono
        timeout_s: float = 30.0,
    ) -> None:
        self.name = f"openai-tts:{model}"
        self.voice = voice
        self.sample_rate = sample_rate
        self._model = model
        self._speed = speed
        self._format = response_format
        self._client = openai_client(base_url, api_key, timeout_s)

    async def aclose(self) -> None:
        await self._client.aclose()

    def stream(self, text: str, voice: str | None = None) -> AsyncIterator[AudioChunk]:
        return self._stream(text, voice or self.voice)

    async def _stream(self, text: str, voice: str) -> AsyncIterator[AudioChunk]:
        body = {
            "model": self._model,
            "input": text,
            "voice": voice,
            "response_format": self._format,
            "speed": self._speed,
        }
        rate = self.sample_rate
        header_done = self._format == "pcm"
        buffer = b""
        try:
            async with self._client.stream("POST", "/audio/speech", json=body) as response:
                if response.status_code >= 400:
                    detail = (await response.aread()).decode("utf-8", "replace")[:300]
                    raise EngineError(f"TTS server answered {response.status_code}: {detail}")
                async for block in response.aiter_bytes():
                    buffer += block
                    if not header_done:
                        header = parse_wav_header(buffer)
                        if header is None:
                            continue
                        rate, data_at = header
                        buffer, header_done = buffer[data_at:], True
                    usable = len(buffer) - len(buffer) % 2
                    if usable:
                        yield AudioChunk(np.frombuffer(buffer[:usable], dtype="<i2").astype(np.int16), rate)
                        buffer = buffer[usable:]
        except httpx.HTTPError as exc:
            raise EngineError(f"TTS server request failed: {exc!r}") from exc

    async def warm_up(self) -> None:
        async for _ in self.stream("Hello."):
            pass
