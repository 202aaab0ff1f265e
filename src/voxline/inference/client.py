"""Engines that run on the node's speech server: what a job process speaks and listens with.

`remote_engines(agent, endpoint, vad=..., llm=...)` builds a job's `Engines`: the agent's whisper,
Piper and Kokoro voices become clients of the speech server; espeak-ng, festival and the
OpenAI-compatible engines run in the job as they would in process (see models.py for why).

Each request opens its own connection to the server's Unix socket. When the server dies, a request
in flight fails at once with EngineError (the conversation says its fallback line, in the local
espeak-ng fallback voice when the agent has the default one), and a later request waits for the
restarted server to accept connections again: STT up to 15 s, a voice up to 1 s (see
TTS_RESTART_WAIT_S).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from voxline.agent.config import AgentConfig, VoiceConfig
from voxline.audio.pcm import AudioChunk
from voxline.engines.base import (
    LLM,
    STT,
    TTS,
    VAD,
    EngineError,
    Engines,
    LanguageGuess,
    LanguageIdentifier,
    Transcript,
)
from voxline.engines.catalog import ModelCatalog
from voxline.inference import protocol as p
from voxline.inference.models import ModelSpec, stt_spec, voice_spec

RESTART_WAIT_S = 15.0
"""How long an STT request waits for a restarting server before it fails (as llama-server's client):
nothing in the job can hear the caller instead."""
TTS_RESTART_WAIT_S = 1.0
"""A voice waits much less: the job's fallback voice (espeak-ng by default) can say the sentence now,
and every second spent waiting for the restart is silence on the line."""
REQUEST_TIMEOUT_S = 30.0
"""A whole STT request, or the gap between two audio frames of a synthesis."""


class SpeechServerBusy(EngineError):
    """The model's queue on the server is full: a clear refusal, not a wait."""


class RemoteSpeech:
    """The connection side shared by the clients: one request per connection."""

    def __init__(
        self,
        endpoint: p.SpeechEndpoint,
        *,
        restart_wait_s: float = RESTART_WAIT_S,
        timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        self.endpoint = endpoint
        self.restart_wait_s = restart_wait_s
        self.timeout_s = timeout_s

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        deadline = time.monotonic() + self.restart_wait_s
        delay = 0.05
        while True:
            try:
                return await asyncio.open_unix_connection(self.endpoint.path)
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                # no socket, or nobody listening on it: the server is (re)starting
                if time.monotonic() + delay > deadline:
                    raise EngineError(
                        f"the speech server is not accepting requests (waited {self.restart_wait_s:.0f} s): "
                        f"{exc}"
                    ) from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)

    async def open(
        self, header: dict[str, Any], body: bytes = b""
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        data = p.request_frame({**header, "key": self.endpoint.key}, body)
        if len(data) - 5 > p.MAX_REQUEST_BYTES:
            raise EngineError(
                f"speech request of {len(data)} bytes is over the limit of {p.MAX_REQUEST_BYTES}"
            )
        reader, writer = await self._connect()
        try:
            writer.write(data)
            await writer.drain()
        except (ConnectionError, OSError) as exc:
            writer.close()
            raise EngineError(f"the speech server dropped the request: {exc!r}") from exc
        return reader, writer

    async def next_frame(self, reader: asyncio.StreamReader) -> tuple[int, bytes]:
        try:
            kind, payload = await asyncio.wait_for(
                p.read_frame(reader, p.MAX_REPLY_FRAME_BYTES), self.timeout_s
            )
        except asyncio.IncompleteReadError as exc:
            raise EngineError("the speech server closed the connection mid-request (crashed?)") from exc
        except (ConnectionError, OSError) as exc:
            raise EngineError(f"the speech server connection failed: {exc!r}") from exc
        except TimeoutError as exc:
            raise EngineError(f"the speech server did not answer in {self.timeout_s:.0f} s") from exc
        except p.ProtocolError as exc:
            raise EngineError(f"the speech server broke the protocol: {exc}") from exc
        if kind == p.ERROR:
            raise _error(payload)
        return kind, payload

    async def call(self, header: dict[str, Any], body: bytes = b"") -> dict[str, Any]:
        reader, writer = await self.open(header, body)
        try:
            kind, payload = await self.next_frame(reader)
        finally:
            writer.close()
        if kind != p.RESULT:
            raise EngineError(f"the speech server answered with frame kind {kind}")
        value = json.loads(payload)
        if not isinstance(value, dict):
            raise EngineError("the speech server sent a malformed answer")
        return value

    async def describe(self) -> dict[str, Any]:
        return await self.call({"op": "describe"})


def _error(payload: bytes) -> EngineError:
    try:
        info = json.loads(payload)
        code, message = str(info.get("code")), str(info.get("message"))
    except (ValueError, AttributeError):
        code, message = p.FAILED, payload[:200].decode("utf-8", "replace")
    if code == p.BUSY:
        return SpeechServerBusy(message)
    return EngineError(f"speech server refused the request ({code}): {message}")


def _transcript(data: dict[str, Any]) -> Transcript:
    return Transcript(
        text=str(data["text"]),
        language=str(data["language"]),
        language_probability=float(data["language_probability"]),
        compute_ms=float(data["compute_ms"]),
    )


def _guess(data: dict[str, Any]) -> LanguageGuess:
    return LanguageGuess(
        language=str(data["language"]),
        probability=float(data["probability"]),
        probabilities={str(k): float(v) for k, v in dict(data["probabilities"]).items()},
        compute_ms=float(data["compute_ms"]),
    )


class RemoteSTT:
    """The STT and LanguageSTT protocols on a whisper the speech server holds."""

    def __init__(self, speech: RemoteSpeech, key: str, *, name: str, multilingual: bool) -> None:
        self.name = f"remote:{name}"
        self.multilingual = multilingual
        self.key = key
        self._speech = speech

    async def _stt(self, op: str, audio: AudioChunk, **fields: Any) -> dict[str, Any]:
        header = {"op": op, "model": self.key, "sample_rate": audio.sample_rate, **fields}
        return await self._speech.call(header, audio.to_bytes())

    async def transcribe(self, audio: AudioChunk, language: str | None = None) -> Transcript:
        return _transcript((await self._stt("transcribe", audio, language=language))["transcript"])

    async def transcribe_with_language(
        self, audio: AudioChunk, candidates: Sequence[str] | None, forced: str | None = None
    ) -> tuple[Transcript, LanguageGuess]:
        found = await self._stt(
            "transcribe_with_language",
            audio,
            candidates=list(candidates) if candidates is not None else None,
            forced=forced,
        )
        return _transcript(found["transcript"]), _guess(found["guess"])

    async def identify_language(self, audio: AudioChunk, candidates: Sequence[str] | None) -> LanguageGuess:
        found = await self._stt(
            "identify", audio, candidates=list(candidates) if candidates is not None else None
        )
        return _guess(found["guess"])

    async def warm_up(self) -> None:
        """The server warmed the model when it loaded it; this only checks it is there."""
        await self._speech.call({"op": "ping"})


class RemoteLanguageIdentifier:
    """Whisper's language detector on the server (LanguageIdentifier protocol)."""

    def __init__(self, stt: RemoteSTT, candidates: Sequence[str] | None = None) -> None:
        self.name = f"lid:{stt.name}"
        self._stt = stt
        self._candidates = list(candidates) if candidates else None

    async def identify(self, audio: AudioChunk, candidates: Sequence[str] | None = None) -> LanguageGuess:
        return await self._stt.identify_language(audio, candidates or self._candidates)


class RemoteTTS:
    """The TTS protocol on a voice the speech server holds: audio streamed as the server makes it.
    Closing the stream early closes the connection, which stops the server's synthesis."""

    def __init__(self, speech: RemoteSpeech, key: str, *, name: str, sample_rate: int) -> None:
        self.name = f"remote:{name}"
        self.sample_rate = sample_rate
        self.key = key
        self._speech = speech

    def stream(self, text: str, voice: str | None = None) -> AsyncIterator[AudioChunk]:
        return self._stream(text, voice)

    async def _stream(self, text: str, voice: str | None) -> AsyncIterator[AudioChunk]:
        if len(text) > p.MAX_TEXT_CHARS:
            raise EngineError(f"text of {len(text)} characters is over the limit of {p.MAX_TEXT_CHARS}")
        reader, writer = await self._speech.open(
            {"op": "synthesize", "model": self.key, "text": text, "voice": voice}
        )
        try:
            while True:
                kind, payload = await self._speech.next_frame(reader)
                if kind == p.END:
                    return
                if kind != p.AUDIO:
                    raise EngineError(f"the speech server sent frame kind {kind} in a synthesis")
                try:
                    yield p.parse_audio(payload)
                except p.ProtocolError as exc:
                    raise EngineError(f"the speech server sent bad audio: {exc}") from exc
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def warm_up(self) -> None:
        """The server warmed the voice when it loaded it; this only checks it is there."""
        await self._speech.call({"op": "ping"})


async def remote_engines(
    agent: AgentConfig,
    endpoint: p.SpeechEndpoint,
    *,
    vad: VAD,
    llm: LLM,
    catalog: ModelCatalog | None = None,
    restart_wait_s: float = RESTART_WAIT_S,
    tts_restart_wait_s: float = TTS_RESTART_WAIT_S,
) -> Engines:
    """The agent's `Engines` for a job process: STT and model voices on the node's speech server,
    `vad` and `llm` as given (the job loads its VAD; the LLM is the node's llama-server client).
    While the server restarts, STT waits up to `restart_wait_s` for it and a voice `tts_restart_wait_s`
    (then the fallback voice speaks).

    Asks the server once which models it holds (waiting up to `restart_wait_s` if it is restarting),
    and fails with EngineError if it does not serve one this agent needs."""
    from voxline.engines.factory import _check_stt_languages, _need_url
    from voxline.engines.voices import build_tts

    _check_stt_languages(agent)
    catalog = catalog or ModelCatalog()
    speech = RemoteSpeech(endpoint, restart_wait_s=restart_wait_s)
    speaking = RemoteSpeech(endpoint, restart_wait_s=tts_restart_wait_s)
    served: dict[str, Any] = (await speech.describe())["models"]

    def info(spec: ModelSpec, what: str) -> dict[str, Any]:
        found = served.get(spec.key)
        if found is None:
            raise EngineError(
                f"agent {agent.name!r}: the speech server does not serve its {what} ({spec.key}); "
                "start the node's SpeechServer with this agent"
            )
        return dict(found)

    def voice(cfg: VoiceConfig, what: str) -> TTS:
        spec = voice_spec(cfg)
        if spec is None:  # espeak-ng, festival, an OpenAI-compatible server: run here
            return build_tts(cfg, catalog, what)
        found = info(spec, what)
        return RemoteTTS(speaking, spec.key, name=str(found["name"]), sample_rate=int(found["sample_rate"]))

    stt: STT
    lid: LanguageIdentifier | None = None
    spec = stt_spec(agent)
    if spec is None:
        from voxline.engines.stt_openai import OpenAISTT

        stt = OpenAISTT(_need_url("stt", agent.stt.base_url), agent.stt.model, api_key=agent.stt.api_key)
    else:
        found = info(spec, "stt")
        multilingual = bool(found["multilingual"])
        remote = RemoteSTT(speech, spec.key, name=str(found["name"]), multilingual=multilingual)
        if agent.languages.mode == "auto" and remote.multilingual:
            lid = RemoteLanguageIdentifier(remote, list(agent.spoken_languages))
        stt = remote

    fallback: TTS | None
    try:
        fallback = voice(agent.fallback_voice, "fallback_voice")
    except EngineError:
        fallback = None  # a fallback voice is a nicety, as in build_engines
    return Engines(
        vad=vad,
        stt=stt,
        llm=llm,
        tts=voice(agent.voice, "voice"),
        fallback_tts=fallback,
        voices={lang: voice(cfg, f"voices.{lang}") for lang, cfg in agent.voices.items()},
        lid=lid,
    )
