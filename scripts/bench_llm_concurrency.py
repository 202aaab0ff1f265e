"""Two (or more) callers whose turns overlap, each a 10-turn conversation, on one LLM engine:
per-turn time to first token, to see whether calls wait for each other and whether it grows with the
call (the symptom of evicted prompt caches). Compares the in-process llama.cpp engine with the
supervised llama-server.

    PYTHONPATH=src .venv/bin/python scripts/bench_llm_concurrency.py --engine both --callers 2 --turns 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from dataclasses import dataclass, field

from voxline.engines.base import LLM, Message, ToolSpec
from voxline.engines.catalog import ModelCatalog

SYSTEM = (
    "You are Maya, a phone support agent at Northwind Bank. You help callers with cards, accounts, "
    "payments and branch information. Speak in one or two short sentences, warmly and plainly, "
    "because your words are read aloud on a phone line. Never read out long numbers. If you do not "
    "know something, say so and offer to connect the caller to a colleague. If the caller wants to "
    "end the call or says goodbye, call end_call."
)
TOOLS = [ToolSpec("end_call", "End the phone call when the caller wants to hang up or says goodbye.")]
QUESTIONS = [
    "Hi, I think I lost my debit card.",
    "Can you block it right away?",
    "How long does a new card take to arrive?",
    "Will my direct debits still work?",
    "What about the payment I made yesterday?",
    "Can I still use online banking meanwhile?",
    "Is there a fee for the replacement?",
    "Can I pick it up at a branch instead?",
    "Which branch is open on Saturday?",
    "Great, and what time does it close?",
]


@dataclass
class Caller:
    name: str
    ttft: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    server: list[str] = field(default_factory=list)  # llama-server's cached/evaluated/generated tokens


async def run_caller(llm: LLM, caller: Caller, turns: int, start_delay: float, pause: float) -> None:
    await asyncio.sleep(start_delay)
    history = [Message("system", SYSTEM)]
    for i in range(turns):
        history.append(Message("user", f"{QUESTIONS[i % len(QUESTIONS)]} ({caller.name})"))
        started = time.perf_counter()
        first = None
        text = []
        async for delta in llm.stream(history, TOOLS, max_tokens=64):
            if first is None and (delta.text.strip() or delta.tool_call):
                first = time.perf_counter() - started
            text.append(delta.text)
        caller.ttft.append(first if first is not None else time.perf_counter() - started)
        caller.total.append(time.perf_counter() - started)
        slot = getattr(getattr(llm, "router", None), "holding", lambda _: None)(history)
        if slot is not None:
            t = slot.timings
            caller.server.append(
                f"s{slot.index}:{t.get('cache_n')}/{t.get('prompt_n')}/{t.get('predicted_n')}"
                f"@{t.get('predicted_per_second', 0):.0f}t/s"
            )
        history.append(Message("assistant", "".join(text).strip() or "Okay."))
        await asyncio.sleep(pause)  # the caller listens to the answer and speaks again


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def bench(engine: str, callers: int, turns: int, offset: float, pause: float) -> dict[str, object]:
    model = ModelCatalog().resolve("qwen2.5-0.5b", "llm")
    llm: LLM
    if engine == "llama_cpp":
        from voxline.engines.llm_llamacpp import LlamaCppLLM

        llm = LlamaCppLLM(model, n_ctx=2048, n_threads=2, temperature=0.3)
    else:
        from voxline.engines.llama_server import LlamaServerLLM, shared_llama_server

        server = await asyncio.to_thread(
            shared_llama_server, model, parallel=callers, ctx_per_slot=2048, threads=2
        )
        llm = LlamaServerLLM(server, "qwen2.5-0.5b", temperature=0.3)
    await llm.warm_up(SYSTEM, TOOLS)
    load_before = os.getloadavg()
    people = [Caller(chr(ord("A") + i)) for i in range(callers)]
    await asyncio.gather(*(run_caller(llm, c, turns, i * offset, pause) for i, c in enumerate(people)))
    load_after = os.getloadavg()
    everything = [t for c in people for t in c.ttft]
    per_turn = [statistics.median(c.ttft[i] for c in people) for i in range(turns)]
    return {
        "engine": engine,
        "callers": callers,
        "turns": turns,
        "ttft_p50_s": round(statistics.median(everything), 3),
        "ttft_p95_s": round(p95(everything), 3),
        "ttft_per_turn_median_s": [round(t, 3) for t in per_turn],
        "first3_vs_last3_s": [
            round(statistics.mean(per_turn[:3]), 3),
            round(statistics.mean(per_turn[-3:]), 3),
        ],
        "reply_total_p50_s": round(statistics.median(t for c in people for t in c.total), 3),
        "server_slot_cached/evaluated/generated": {c.name: c.server for c in people if c.server},
        "loadavg_1m_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--engine", choices=["llama_cpp", "llama_server", "both"], default="both")
    parser.add_argument("--callers", type=int, default=2)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--offset", type=float, default=1.3, help="seconds between the callers' starts")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds a caller waits between turns")
    args = parser.parse_args()
    engines = ["llama_cpp", "llama_server"] if args.engine == "both" else [args.engine]
    for engine in engines:
        result = asyncio.run(bench(engine, args.callers, args.turns, args.offset, args.pause))
        print(json.dumps(result))


if __name__ == "__main__":
    main()
