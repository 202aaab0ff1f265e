"""The real llama-server (built by setup) with the real 0.5B model, supervised by voxline.

No skip when the binary is missing: setup builds it, so a missing one is a failure that says so."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
from collections.abc import AsyncIterator, Iterator

import pytest

from voxline.engines.base import EngineError, LLMDelta, Message, ToolSpec
from voxline.engines.catalog import ModelCatalog
from voxline.engines.llama_server import SETUP_HINT, LlamaServer, LlamaServerLLM, default_binary

pytestmark = pytest.mark.slow

SYSTEM = (
    "You are Maya, a phone support agent at Northwind Bank. Speak in one or two short sentences. "
    "If the caller wants to end the call or says goodbye, call end_call."
)
TOOLS = [ToolSpec("end_call", "End the phone call when the caller wants to hang up or says goodbye.")]


@pytest.fixture(scope="module")
def server() -> Iterator[LlamaServer]:
    if not default_binary().is_file():
        pytest.fail(f"llama-server is not built at {default_binary()}: {SETUP_HINT}")
    srv = LlamaServer(ModelCatalog().resolve("qwen2.5-0.5b", "llm"), parallel=2, ctx_per_slot=2048, threads=2)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
async def llm(server: LlamaServer) -> AsyncIterator[LlamaServerLLM]:
    client = LlamaServerLLM(server, "qwen2.5-0.5b", temperature=0.0)
    yield client
    await client.aclose()


async def reply(llm: LlamaServerLLM, messages: list[Message], max_tokens: int = 24) -> list[LLMDelta]:
    return [d async for d in llm.stream(messages, TOOLS, max_tokens=max_tokens)]


async def test_streams_an_answer_and_a_tool_call(llm: LlamaServerLLM) -> None:
    ask = [Message("system", SYSTEM), Message("user", "What are your branch opening hours?")]
    deltas = await reply(llm, ask, max_tokens=32)
    text = "".join(d.text for d in deltas)
    assert text.strip() and "<tool_call>" not in text and "<|im_end|>" not in text
    assert sum(1 for d in deltas if d.text) > 1  # streamed in pieces, not one block
    assert deltas[-1].finish_reason in ("stop", "length")

    bye = [Message("system", SYSTEM), Message("user", "I want to end the call now, bye.")]
    calls = [d.tool_call for d in await reply(llm, bye, max_tokens=48) if d.tool_call]
    assert [c.name for c in calls] == ["end_call"]


async def test_two_overlapping_conversations_each_keep_their_own_cached_prefix(llm: LlamaServerLLM) -> None:
    histories = {
        "a": [Message("system", SYSTEM)],
        "b": [Message("system", SYSTEM)],
    }
    questions = {
        "a": ["I lost my debit card.", "Can you block it now?", "How long for a new one?"],
        "b": ["What is the savings rate?", "Is it fixed or variable?", "Can I open one online?"],
    }
    slots: dict[str, set[int]] = {"a": set(), "b": set()}
    prompt_sizes: dict[str, list[tuple[int, int]]] = {"a": [], "b": []}

    async def turn(name: str, i: int) -> None:
        history = histories[name]
        history.append(Message("user", questions[name][i]))
        deltas = await reply(llm, history)
        slot = llm.router.holding(history)
        assert slot is not None
        timings = llm.slot_timings(slot.index)
        slots[name].add(slot.index)
        prompt_sizes[name].append((int(timings["cache_n"]), int(timings["prompt_n"])))
        history.append(Message("assistant", "".join(d.text for d in deltas).strip() or "Okay."))

    for i in range(3):  # both conversations' turns overlap on the server
        await asyncio.gather(turn("a", i), turn("b", i))

    assert len(slots["a"]) == 1 and len(slots["b"]) == 1 and slots["a"] != slots["b"]
    for name in ("a", "b"):
        sizes = prompt_sizes[name]
        for (cached_before, evaluated_before), (cached, evaluated) in itertools.pairwise(sizes):
            # the whole previous prompt was found cached: only the reply and the new question are read
            assert cached >= cached_before + evaluated_before, (name, sizes)
            assert evaluated < cached, (name, sizes)


async def test_a_killed_server_fails_the_generation_in_flight_and_is_restarted(
    server: LlamaServer, llm: LlamaServerLLM
) -> None:
    pid, restarts = server.pid, server.restarts
    assert pid is not None
    ask = [
        Message("system", "You count aloud."),
        Message("user", "Count from one to three hundred in words."),
    ]
    stream = llm.stream(ask, max_tokens=600)
    first = await anext(stream)
    assert first.text  # generation has started and has a long way to go
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(EngineError):
        async for _ in stream:
            pass

    assert await asyncio.to_thread(server.wait_ready, 90.0)  # the watchdog brought it back
    assert server.pid != pid and server.restarts == restarts + 1
    deltas = await reply(
        llm, [Message("system", SYSTEM), Message("user", "What are your branch opening hours?")]
    )
    assert "".join(d.text for d in deltas).strip()


async def test_agents_on_the_same_model_share_one_server() -> None:
    from voxline.agent.config import AgentConfig
    from voxline.engines.factory import build_llm

    cfg = AgentConfig.model_validate({"name": "bank", "llm": {"engine": "llama_server", "slots": 2}})
    first, second = build_llm(cfg), build_llm(cfg)
    try:
        assert isinstance(first, LlamaServerLLM) and isinstance(second, LlamaServerLLM)
        assert first.server is second.server and first.server.ready
        deltas = await reply(
            first, [Message("system", SYSTEM), Message("user", "What are your branch opening hours?")]
        )
        assert "".join(d.text for d in deltas).strip()
    finally:
        await first.aclose()
        await second.aclose()
        first.server.stop()


def test_flash_attention_is_off_as_in_the_in_process_engine(server: LlamaServer) -> None:
    # llama-server's default ("auto") turns it on; on a small CPU it made the first token 2.5x slower
    args = server.command()
    assert args[args.index("--flash-attn") + 1] == "off"
