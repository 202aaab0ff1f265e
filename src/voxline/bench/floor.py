"""The compute floor: what the engines alone need for each caller turn, back to back, no framework.

For every utterance: STT of the whole recording; the LLM on the same system prompt, greeting and
transcript until its first token and until the first chunk the agent's SentenceChunker would hand
to TTS; then TTS of that chunk until its first audio. Nothing overlaps and nothing waits on audio
pacing, so voice-to-voice − endpointing wait − this floor is what the framework itself costs (or,
when negative, what its speculative work gained by overlapping the wait).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from voxline.agent.config import AgentConfig
from voxline.audio.levels import is_silent
from voxline.audio.pcm import AudioChunk
from voxline.bench.utterances import Utterance
from voxline.conversation.chunker import SentenceChunker
from voxline.conversation.history import History
from voxline.conversation.language import LanguagePolicy
from voxline.conversation.prompt import build_system_prompt
from voxline.conversation.tools import ToolRegistry
from voxline.engines._threaded import run_model
from voxline.engines.base import Engines, LLMDelta
from voxline.language.normalize import normalize_for_speech
from voxline.runtime import load_engines, warm_engines

FIRST_CLAUSE_WORDS = 2
"""As the conversation's replies: the first chunk may end at a clause break after two words."""


def _ms_since(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 1)


async def _aclose(stream: AsyncIterator[Any]) -> None:
    close = getattr(stream, "aclose", None)  # an async generator has it; an AsyncIterator need not
    if close is not None:
        with contextlib.suppress(Exception):
            await close()


async def _first_chunk(
    engines: Engines, agent: AgentConfig, transcript: str
) -> tuple[str, float | None, float | None]:
    """(first chunk, ms to first token, ms to that chunk), asking the LLM as a call's first turn does."""
    tools = ToolRegistry(agent).specs()
    language = LanguagePolicy(agent)
    history = History(build_system_prompt(agent, tools))
    history.add_assistant(language.line("greeting"))
    history.add_user(transcript)
    messages = history.messages_for_llm(agent.llm.history_tokens, engines.llm.count_tokens)
    messages = language.with_reply_note(messages)
    chunker = SentenceChunker(FIRST_CLAUSE_WORDS)
    t0 = time.perf_counter()
    first_token: float | None = None
    stream: AsyncIterator[LLMDelta] = engines.llm.stream(messages, tools, agent.llm.max_tokens)
    try:
        async for delta in stream:
            first_token = first_token if first_token is not None else _ms_since(t0)
            pieces = chunker.feed(delta.text) if delta.text else []
            if pieces:
                return pieces[0], first_token, _ms_since(t0)
    finally:
        await _aclose(stream)
    return chunker.finish(), first_token, _ms_since(t0)


async def _first_audio_ms(engines: Engines, agent: AgentConfig, text: str) -> float | None:
    tts = engines.tts_for(agent.language)
    t0 = time.perf_counter()
    stream: AsyncIterator[AudioChunk] = tts.stream(normalize_for_speech(text, agent.language))
    try:
        async for chunk in stream:
            if chunk.num_samples and not is_silent(chunk):
                return _ms_since(t0)
    finally:
        await _aclose(stream)
    return None


async def floor_row(engines: Engines, agent: AgentConfig, utterance: Utterance) -> dict[str, Any]:
    t0 = time.perf_counter()
    transcript = await engines.stt.transcribe(utterance.audio, agent.language)
    stt_ms = _ms_since(t0)
    chunk, first_token_ms, first_chunk_ms = await _first_chunk(engines, agent, transcript.text)
    tts_ms = await _first_audio_ms(engines, agent, chunk) if chunk else None
    total = None if first_chunk_ms is None or tts_ms is None else round(stt_ms + first_chunk_ms + tts_ms, 1)
    return {
        "utterance": utterance.name,
        "stt_ms": stt_ms,
        "llm_first_token_ms": first_token_ms,
        "llm_first_chunk_ms": first_chunk_ms,
        "tts_first_audio_ms": tts_ms,
        "total_ms": total,
        "transcript": transcript.text,
        "first_chunk": chunk,
    }


async def compute_floor(agent: AgentConfig, utterances: Sequence[Utterance]) -> list[dict[str, Any]]:
    """Load and warm the agent's engines in this process, then measure each utterance in turn."""
    engines = await run_model(load_engines, agent)
    await warm_engines(agent, engines)
    if utterances:  # one untimed pass, so the first row pays no first-call costs the others do not
        await floor_row(engines, agent, utterances[0])
    return [await floor_row(engines, agent, u) for u in utterances]
