"""`voxline bench --scenarios capacity`: how many calls one node holds, for each node setup, same run.

For each setup (a label, an agent file and extra `voxline serve` arguments, e.g. the in-process
LLM against llama-server and job processes), one `voxline serve` is started and loaded with 1, 2,
3 and 4 concurrent calls of `turns` caller turns each, their starts `stagger_s` apart so their
turns overlap, as callers' turns do. Per step: caller voice-to-voice p50/p95 and the median of the
first and last three turns of the calls (does a turn wait longer the longer the call runs?).

The node holds the largest count whose p95 stays within `P95_LIMIT_MS`. Then the node is started
again with `--max-calls` set to that count (at least 1) and one call more is placed: the extra call
must be refused, not served late, and the others keep their latency.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voxline.bench.calls import CallSettings, PlacedCall, place_calls
from voxline.bench.processes import AgentTarget, voxline_server
from voxline.bench.rows import call_row, fetch_records, turn_rows
from voxline.bench.utterances import Utterance, caller_utterances

P95_LIMIT_MS = 1500.0
"""A node "holds" a number of calls when their caller voice-to-voice p95 stays within this."""
EDGE_TURNS = 3


@dataclass(frozen=True)
class NodeSetup:
    """One way to run the node: `voxline serve --agent agent_file *serve_args`."""

    label: str
    agent_file: Path | None = None
    serve_args: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> NodeSetup:
        """`label=agent.yaml[:--arg,value,...]` (the agent may be empty: the default agent)."""
        label, _, rest = text.partition("=")
        agent, _, args = rest.partition(":")
        return cls(
            label.strip() or "node",
            Path(agent) if agent.strip() else None,
            tuple(a for a in args.split(",") if a),
        )


@dataclass
class CapacityOptions:
    setups: Sequence[NodeSetup] = (NodeSetup("default"),)
    calls: Sequence[int] = (1, 2, 3, 4)
    turns: int = 10
    stagger_s: float = 1.3
    pause_s: float = 0.5
    transport: str = "websocket"


def scripts_for(pool: Sequence[Utterance], calls: int, turns: int) -> list[list[Utterance]]:
    """`calls` scripts of `turns` utterances, each call starting at a different recording."""
    return [[pool[(k * 3 + j) % len(pool)] for j in range(turns)] for k in range(calls)]


def v2v_values(turns: Sequence[dict[str, Any]]) -> list[float]:
    return [float(t["voice_to_voice_ms"]) for t in turns if t.get("voice_to_voice_ms") is not None]


def quantile(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def step_summary(
    turns: Sequence[dict[str, Any]], calls: Sequence[dict[str, Any]], turns_per_call: int
) -> dict[str, Any]:
    """p50/p95 of a step, and the median of its calls' first and last turns (growth through a call)."""
    v2v = v2v_values(turns)
    first = v2v_values([t for t in turns if t["turn"] < EDGE_TURNS])
    last = v2v_values([t for t in turns if t["turn"] >= turns_per_call - EDGE_TURNS])
    return {
        "n": len(v2v),
        "p50_ms": quantile(v2v, 50),
        "p95_ms": quantile(v2v, 95),
        "first_turns_p50_ms": quantile(first, 50),
        "last_turns_p50_ms": quantile(last, 50),
        "calls": len(calls),
        "completed": sum(1 for c in calls if c.get("completed")),
        "refused": sum(1 for c in calls if refused(c)),
    }


def refused(call: dict[str, Any]) -> bool:
    """A call the node turned away: it ended (or failed) before the caller finished a single turn."""
    return bool(call.get("turns_done", 0) == 0 and (call.get("error") or call.get("end_reason")))


def holds(steps: dict[int, dict[str, Any]]) -> int:
    """The largest count of calls whose p95 stays within the limit (counting up; 0 if none)."""
    held = 0
    for count in sorted(steps):
        step = steps[count]
        if step["p95_ms"] is None or step["p95_ms"] > P95_LIMIT_MS or step["completed"] < count:
            break
        held = count
    return held


async def _step(
    target: AgentTarget, options: CapacityOptions, count: int, pool: Sequence[Utterance], name: str
) -> dict[str, Any]:
    settings = CallSettings(pause_s=options.pause_s)
    since = time.time()
    placed: list[PlacedCall] = await place_calls(
        target, options.transport, scripts_for(pool, count, options.turns), settings,
        concurrency=count, stagger_s=options.stagger_s,
    )  # fmt: skip
    await fetch_records(target.http_url, placed, since)
    turns = [row for call in placed for row in turn_rows(call, scenario="capacity")]
    calls = []
    for call in placed:
        row = call_row(call)
        row["turns_done"] = len(call.caller.result.turns)
        calls.append(row)
    run: dict[str, Any] = {
        "name": name, "scenario": "capacity", "transport": options.transport, "concurrency": count,
        "turns": turns, "calls": calls, "floor": [],
    }  # fmt: skip
    run["capacity"] = step_summary(turns, calls, options.turns)
    health = await target.health()
    if health is not None:
        run["server_health"] = {
            k: health.get(k) for k in ("calls_active", "event_loop_lag_ms", "load", "workers")
        }
    return run


def _record(setup: NodeSetup, held: int, verdict: dict[str, Any]) -> Path:
    """Keep the verdict where `voxline serve` finds it (its default `load.capacity_calls`)."""
    from voxline.agent.config import AgentConfig, load_agent
    from voxline.node.config import WorkersConfig
    from voxline.node.measured import record_capacity

    agent = load_agent(setup.agent_file) if setup.agent_file else AgentConfig()
    args = list(setup.serve_args)
    mode = args[args.index("--workers") + 1] if "--workers" in args[:-1] else WorkersConfig().mode
    return record_capacity(agent, mode, held, {"p95_limit_ms": P95_LIMIT_MS, "setup": setup.label})


async def capacity_runs(
    options: CapacityOptions, out: Path, progress: Any
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every setup's sweep and its one-call-beyond check: (runs for results.json, the verdicts)."""
    pool = caller_utterances()
    runs: list[dict[str, Any]] = []
    verdicts: dict[str, Any] = {}
    for setup in options.setups:
        steps: dict[int, dict[str, Any]] = {}
        async with voxline_server(
            out, setup.agent_file, f"capacity-{setup.label}", extra_args=setup.serve_args
        ) as target:
            for count in options.calls:
                run = await _step(target, options, count, pool, f"capacity-{setup.label}-{count}")
                run["setup"] = setup.label
                runs.append(run)
                steps[count] = run["capacity"]
                progress(f"capacity {setup.label}, {count} calls: {run['capacity']}")
        held = holds(steps)
        verdict: dict[str, Any] = {"holds": held, "p95_limit_ms": P95_LIMIT_MS, "beyond": None}
        # one call beyond what the node holds (at least one call's room, so the refusal is shown
        # even on a machine where no count meets the latency target)
        room = max(held, 1)
        args = (*setup.serve_args, "--max-calls", str(room))
        async with voxline_server(
            out, setup.agent_file, f"capacity-{setup.label}-beyond", extra_args=args
        ) as target:
            run = await _step(target, options, room + 1, pool, f"capacity-{setup.label}-beyond-{room + 1}")
            run["setup"] = setup.label
            run["beyond"] = True
            runs.append(run)
            verdict["beyond"] = run["capacity"]
            progress(f"capacity {setup.label}, {room + 1} calls with room for {room}: {run['capacity']}")
        verdicts[setup.label] = verdict
        verdict["recorded_in"] = str(_record(setup, held, verdict))
        await asyncio.sleep(1.0)  # let the node's processes go before the next setup loads
    return runs, verdicts
