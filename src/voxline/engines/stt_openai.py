"""Speech-to-text over an OpenAI-compatible `/audio/transcriptions` endpoint
(faster-whisper-server / speaches, vLLM, OpenAI itself)."""

from __future__ import annotations

import io
import time
import wave
from collections.abc import Mapping, Sequence

import httpx

from voxline.audio.pcm import AudioChunk
from voxline.engines._http import openai_client
from voxline.engines.base import EngineError, LanguageGuess, Transcript
from voxline.language.registry import default_stt_prompts, same_speech


def to_wav_bytes(audio: AudioChunk) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(audio.sample_rate)
        wav.writeframes(audio.to_bytes())
    return out.getvalue()


class OpenAISTT:
    """A speech server behind the STT protocol: how a GPU box runs a bigger whisper.

    Whisper base on CPU writes Hindi poorly and Marathi barely; large-v3 (or large-v3-turbo) on a GPU
    does both well. With faster-whisper-server / speaches on the GPU machine
    (`docker run --gpus all -p 8000:8000 ghcr.io/speaches-ai/speaches:latest-cuda`, or a local
    model folder mounted into it), the swap is only the agent's config:

        stt:
          engine: openai
          base_url: http://gpu-box:8000/v1
          model: Systran/faster-whisper-large-v3   # the id (or path) the server loads

    `transcribe(audio, language)` sends the forced language. `transcribe_with_language` lets the
    server detect it (auto mode) and reads it back from `verbose_json`; Urdu heard where Hindi is
    allowed is asked again as Hindi, since spoken they are one language. For hi and mr a Devanagari
    `prompt` is sent, which steers whisper towards Devanagari as it does locally.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        multilingual: bool = True,
        timeout_s: float = 30.0,
        prompts: Mapping[str, str] | None = None,
    ) -> None:
        self.name = f"openai-stt:{model}"
        self.multilingual = multilingual
        self._model = model
        self._prompts = dict(default_stt_prompts() if prompts is None else prompts)
        self._client = openai_client(base_url, api_key, timeout_s)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def transcribe(self, audio: AudioChunk, language: str | None = None) -> Transcript:
        started = time.perf_counter()
        data = {"model": self._model, "response_format": "verbose_json", "temperature": "0"}
        if language:
            data["language"] = language
            if language in self._prompts:
                data["prompt"] = self._prompts[language]
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

    async def transcribe_with_language(
        self, audio: AudioChunk, candidates: Sequence[str] | None, forced: str | None = None
    ) -> tuple[Transcript, LanguageGuess]:
        """One request: the server detects the language unless `forced`. Servers report only the
        winner (and sometimes its probability), so the guess's probabilities hold that one language.
        A language outside `candidates` comes back as the first candidate with probability 0, so
        an auto-mode call does not follow it."""
        transcript = await self.transcribe(audio, forced)
        if forced:  # nothing was detected
            return transcript, LanguageGuess(forced, 1.0, {forced: 1.0})
        allowed = list(candidates or [])
        heard = transcript.language
        probability = transcript.language_probability
        spoken_alike = next((a for a in allowed if heard not in allowed and heard in same_speech(a)), None)
        if spoken_alike is not None:  # Urdu heard where Hindi is allowed: ask again as Hindi
            again = await self.transcribe(audio, spoken_alike)
            compute_ms = transcript.compute_ms + again.compute_ms
            transcript = Transcript(again.text, spoken_alike, probability, compute_ms)
            heard = spoken_alike
        if allowed and heard not in allowed:
            return transcript, LanguageGuess(allowed[0], 0.0, {heard: probability})
        return transcript, LanguageGuess(heard, probability, {heard: probability})

    async def warm_up(self) -> None:
        await self.transcribe(AudioChunk.silence(0.5, 16000), language="en")


# verbose_json reports OpenAI-style language names ("english"); the rest of voxline uses codes.
_NAMES = {
    "english": "en",
    "hindi": "hi",
    "marathi": "mr",
    "urdu": "ur",
    "bengali": "bn",
    "punjabi": "pa",
    "gujarati": "gu",
    "nepali": "ne",
    "sanskrit": "sa",
    "spanish": "es",
    "french": "fr",
    "german": "de",
}


def _to_code(language: str) -> str:
    return _NAMES.get(language.lower(), language.lower())
