from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence

import pytest

from voxline.engines.base import LLMDelta, Message, ToolSpec
from voxline.engines.catalog import ModelCatalog
from voxline.engines.chatml import render_prompt, render_system_prefix

pytestmark = pytest.mark.slow

SYSTEM = (
    "You are Maya, a phone support agent at Northwind Bank. Speak in one or two short sentences. "
    "If the caller wants to end the call or says goodbye, call end_call."
)
TOOLS = [ToolSpec("end_call", "End the phone call when the caller wants to hang up or says goodbye.")]


@pytest.fixture(scope="module")
def llm():  # type: ignore[no-untyped-def]
    pytest.importorskip("llama_cpp")
    from voxline.engines.llm_llamacpp import LlamaCppLLM

    return LlamaCppLLM(
        ModelCatalog().resolve("qwen2.5-0.5b", "llm"), n_ctx=2048, n_threads=2, temperature=0.0
    )


async def collect(stream: AsyncIterator[LLMDelta]) -> tuple[list[LLMDelta], float]:
    started, first, out = time.perf_counter(), 0.0, []
    async for delta in stream:
        if not out:
            first = time.perf_counter() - started
        out.append(delta)
    return out, first


def count_evaluations(llm: object, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Spy on llama.cpp's eval: one entry per call, the number of tokens it evaluated (a prompt
    evaluation has many; each generated token is one)."""
    llama = llm._llama  # type: ignore[attr-defined]
    evaluated: list[int] = []
    real_eval = llama.eval

    def counting_eval(tokens: Sequence[int]) -> None:
        evaluated.append(len(tokens))
        real_eval(tokens)

    monkeypatch.setattr(llama, "eval", counting_eval)
    return evaluated


async def test_streams_answer_then_warm_prefix_and_tool_call(llm, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    evaluated = count_evaluations(llm, monkeypatch)
    ask = [Message("system", SYSTEM), Message("user", "What are your branch opening hours?")]
    cold, cold_ttft = await collect(llm.stream(ask, TOOLS, max_tokens=48))
    text = "".join(d.text for d in cold)
    assert text.strip() and "<tool_call>" not in text and "<|im_end|>" not in text
    assert cold[-1].finish_reason in ("stop", "length")
    assert sum(1 for d in cold if d.text) > 1  # really streamed, piece by piece

    await llm.warm_up(SYSTEM, TOOLS)
    prefix_tokens = llm.count_tokens(render_system_prefix(SYSTEM, TOOLS))
    second = [Message("system", SYSTEM), Message("user", "I lost my card. What should I do?")]
    prompt_tokens = llm.count_tokens(render_prompt(second, TOOLS))
    evaluated.clear()
    started = time.perf_counter()
    warm, warm_ttft = await collect(llm.stream(second, TOOLS, max_tokens=48))
    elapsed = time.perf_counter() - started
    # The warm prefix: the system prompt and tools were already in the KV cache, so llama.cpp
    # evaluated only the tokens after them (not the whole prompt) before the first answer token.
    assert prefix_tokens > 100 and evaluated, evaluated
    assert evaluated[0] <= prompt_tokens - prefix_tokens + 1, (evaluated[:3], prompt_tokens, prefix_tokens)
    assert all(n == 1 for n in evaluated[1:])  # then one token at a time
    tokens = llm.count_tokens("".join(d.text for d in warm))
    print(
        f"\nllama 0.5B: TTFT cold {cold_ttft * 1000:.0f} ms, warm prefix {warm_ttft * 1000:.0f} ms "
        f"({evaluated[0]} of {prompt_tokens} prompt tokens evaluated), "
        f"{tokens / max(elapsed - warm_ttft, 1e-3):.0f} tok/s after first"
    )

    hang_up, _ = await collect(
        llm.stream([Message("system", SYSTEM), Message("user", "Thanks, that's all. Please hang up.")], TOOLS)
    )
    calls = [d.tool_call for d in hang_up if d.tool_call]
    print("hang-up reply:", "".join(d.text for d in hang_up), calls)
    assert [c.name for c in calls] == ["end_call"]
    assert hang_up[-1].finish_reason == "tool_calls"
    assert "end_call" not in "".join(d.text for d in hang_up)


async def test_max_tokens_gives_length_and_close_stops_promptly(llm, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    ask = [
        Message("system", SYSTEM),
        Message("user", "Please describe all kinds of bank accounts in detail."),
    ]
    out, _ = await collect(llm.stream(ask, max_tokens=8))
    assert out[-1].finish_reason == "length"
    assert llm.count_tokens("".join(d.text for d in out)) <= 9

    evaluated = count_evaluations(llm, monkeypatch)
    stream = llm.stream(ask, max_tokens=400)
    got = 0
    async for delta in stream:
        got += bool(delta.text)
        if got == 3:
            break
    generated_before_close = len(evaluated)
    started = time.perf_counter()
    await stream.aclose()  # type: ignore[attr-defined]
    # Promptly, counted in tokens rather than time: the model thread checks the stop flag at each piece
    # of text, so it finishes the token under way and at most one more (llama-cpp-python holds back a
    # token that could begin a stop string) instead of running on towards max_tokens=400.
    assert len(evaluated) - generated_before_close <= 2, evaluated
    assert not llm.busy  # the generation is over when aclose returns, not merely abandoned
    # the lock is free again right away: a new generation can start and finish
    after, _ = await collect(llm.stream(ask, max_tokens=4))
    assert after[-1].finish_reason == "length"
    print(f"\nclose + next 4-token generation: {(time.perf_counter() - started) * 1000:.0f} ms")
    assert llm.count_tokens("hello world") == 2


DEPARTMENTS = [
    ToolSpec("end_call", "End the phone call after saying goodbye."),
    ToolSpec(
        "transfer_call",
        "Transfer the caller. Departments: cards, loans.",
        {
            "type": "object",
            "properties": {"department": {"type": "string", "enum": ["cards", "loans"]}},
            "required": ["department"],
        },
    ),
]


async def test_a_tool_call_is_written_under_the_tools_grammar(llm) -> None:  # type: ignore[no-untyped-def]
    ask = [
        Message("system", "You are Maya at a bank. For the card team, call transfer_call."),
        Message("user", "My card was stolen, transfer me to the card team."),
    ]
    out, _ = await collect(llm.stream(ask, DEPARTMENTS, max_tokens=64))
    calls = [d.tool_call for d in out if d.tool_call]
    assert [(c.name, c.arguments) for c in calls] == [("transfer_call", {"department": "cards"})]
    assert out[-1].finish_reason == "tool_calls"
    assert "<tool_call>" not in "".join(d.text for d in out)
