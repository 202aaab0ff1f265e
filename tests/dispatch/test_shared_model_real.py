"""Two agents of one node that differ only in temperature run on one loaded llama.cpp model: both
answer, each at its own temperature, one at a time on the shared lock."""

from __future__ import annotations

import asyncio

import pytest

from voxline.engines.base import Message
from voxline.engines.catalog import ModelCatalog

pytestmark = pytest.mark.slow


async def test_a_temperature_view_shares_the_model_and_its_lock() -> None:
    from voxline.engines.llm_llamacpp import LlamaCppLLM

    greedy = LlamaCppLLM(ModelCatalog().resolve("qwen2.5-0.5b", "llm"), n_ctx=1024, temperature=0.0)
    warm = greedy.with_temperature(0.7)
    assert warm._llama is greedy._llama and warm._lock is greedy._lock  # one model, one at a time
    assert (greedy._temperature, warm._temperature) == (0.0, 0.7)

    async def answer(llm: LlamaCppLLM, question: str) -> str:
        messages = [Message("system", "You answer in one short sentence."), Message("user", question)]
        return "".join([d.text async for d in llm.stream(messages, max_tokens=16) if d.text])

    first, second = await asyncio.gather(answer(greedy, "Say hello."), answer(warm, "Say goodbye."))
    assert first.strip() and second.strip()
    assert await answer(greedy, "Say hello.") == first  # greedy stays greedy after the other ran
