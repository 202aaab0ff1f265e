"""`voxline bench`: the scenarios, run against real agent processes, into results.json (+ report).

Order matters for fairness: the model scenarios run on one `voxline serve` (the barge-in one on a
second, whose agent writes longer replies), the echo sweep on the bench's echo server, and the
compute floor last, in this process, once no server is left competing for the CPU.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from voxline.agent.config import AgentConfig, load_agent
from voxline.bench import meta
from voxline.bench.calls import CallSettings, place_calls
from voxline.bench.capacity import CapacityOptions, capacity_runs
from voxline.bench.floor import compute_floor
from voxline.bench.pauses import pause_utterances
from voxline.bench.processes import AgentTarget, echo_server, voxline_server
from voxline.bench.rows import add_floor_overhead, call_row, fetch_records, turn_rows
from voxline.bench.utterances import Utterance, caller_utterances

log = logging.getLogger(__name__)

SCENARIOS = ("call", "pauses", "barge_in", "sweep", "echo_sweep", "floor")
"""What `voxline bench` runs by default."""
EXTRA_SCENARIOS = ("capacity",)
"""Run only when asked: the capacity sweep restarts the node for each setup and takes a while."""
SCHEMA = "voxline-bench/1"
TURNS_PER_CALL = 6
BARGE_IN_MAX_TOKENS = 160
"""Long replies, so that a second into one the agent is still talking."""
BARGE_IN_AFTER_S = 1.0


@dataclass
class BenchOptions:
    scenarios: Sequence[str] = SCENARIOS
    transports: Sequence[str] = ("sip", "websocket")
    turns: int = 24
    concurrency: Sequence[int] = (1, 2, 4)
    echo_concurrency: Sequence[int] = (1, 2, 4, 8, 16, 32)
    pause_turns: int = 12
    barge_in_calls: int = 3
    """Calls of TURNS_PER_CALL turns, every turn after the first talking over the agent."""
    sweep_turns: int = 3
    echo_turns: int = 2
    long_replies: bool = True
    """Barge in on a second agent process whose replies run long; False: on the main one (quicker)."""
    floor_turns: int | None = None
    """Utterances for the compute floor (None: the same ones as the `call` scenario)."""
    agent_file: Path | None = None
    out: Path = Path("out/bench")
    target_sip: str | None = None
    target_http: str | None = None
    capacity: CapacityOptions = field(default_factory=CapacityOptions)
    command: str = field(default_factory=lambda: " ".join(["voxline", *sys.argv[1:]]))

    @classmethod
    def quick(cls, **overrides: Any) -> BenchOptions:
        """About two minutes: a few turns per scenario, small sweeps."""
        base = cls(
            turns=1, concurrency=(2,), echo_concurrency=(1, 2), pause_turns=1, barge_in_calls=1,
            sweep_turns=1, echo_turns=1, floor_turns=3, long_replies=False,
        )  # fmt: skip
        for key, value in overrides.items():
            setattr(base, key, value)
        return base


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _run(name: str, scenario: str, transport: str, concurrency: int) -> dict[str, Any]:
    return {
        "name": name, "scenario": scenario, "transport": transport, "concurrency": concurrency,
        "turns": [], "calls": [], "floor": [],
    }  # fmt: skip


def _groups(utterances: Sequence[Utterance], size: int) -> list[list[Utterance]]:
    return [list(utterances[i : i + size]) for i in range(0, len(utterances), size)]


async def _calls_run(
    run: dict[str, Any],
    target: AgentTarget,
    scripts: Sequence[Sequence[Utterance]],
    settings: CallSettings,
) -> dict[str, Any]:
    since = time.time()
    calls = await place_calls(target, run["transport"], scripts, settings, concurrency=run["concurrency"])
    await fetch_records(target.http_url, calls, since)
    for call in calls:
        run["turns"] += turn_rows(call, scenario=run["scenario"])
        run["calls"].append(call_row(call))
    health = await target.health()
    if health is not None and "event_loop_lag_ms" in health:
        # the agent's event loop paces every call's audio: its lateness over the last minute
        run["server_loop_lag_ms"] = health["event_loop_lag_ms"]
    memory = target.memory_mib()
    if memory is not None:
        run["server_memory_mib"] = memory
    v2v = [t["voice_to_voice_ms"] for t in run["turns"] if t["voice_to_voice_ms"] is not None]
    done = sum(c["completed"] for c in run["calls"])
    progress(
        f"{run['name']}: {done}/{len(calls)} calls completed, {len(run['turns'])} turns, {len(v2v)} with v2v"
    )
    return run


def long_reply_agent(agent: AgentConfig, out: Path) -> Path:
    """An agent file like `agent` whose replies may run long (for barge-ins)."""
    llm = agent.llm.model_copy(update={"max_tokens": max(agent.llm.max_tokens, BARGE_IN_MAX_TOKENS)})
    path = out / "bench-long-replies.yaml"
    path.write_text(yaml.safe_dump(agent.model_copy(update={"llm": llm}).model_dump(mode="json")))
    return path


@asynccontextmanager
async def _target(options: BenchOptions, agent_file: Path | None, name: str) -> AsyncIterator[AgentTarget]:
    if options.target_sip is not None:
        yield AgentTarget(sip_uri=options.target_sip, http_url=options.target_http)
        return
    progress(f"starting voxline serve ({name})")
    async with voxline_server(options.out, agent_file, name) as target:
        progress(f"voxline serve ready: {target.sip_uri}, {target.http_url}")
        yield target


async def _model_scenarios(options: BenchOptions, runs: list[dict[str, Any]]) -> None:
    wanted = set(options.scenarios)
    utterances = caller_utterances(options.turns)
    settings = CallSettings()
    if wanted & {"call", "pauses", "sweep"} or ("barge_in" in wanted and not options.long_replies):
        async with _target(options, options.agent_file, "serve") as target:
            if "call" in wanted:
                for transport in options.transports:
                    run = _run(f"call-{transport}", "call", transport, 1)
                    runs.append(await _calls_run(run, target, _groups(utterances, TURNS_PER_CALL), settings))
            if "pauses" in wanted:
                paused = pause_utterances(caller_utterances(), limit=options.pause_turns)
                run = _run("pauses-sip", "pauses", "sip", 1)
                runs.append(await _calls_run(run, target, _groups(paused, TURNS_PER_CALL), settings))
            if "sweep" in wanted:
                pool = caller_utterances()
                for c in options.concurrency:
                    scripts = [
                        [pool[(k * options.sweep_turns + j) % len(pool)] for j in range(options.sweep_turns)]
                        for k in range(c)
                    ]
                    runs.append(
                        await _calls_run(_run(f"sweep-{c}", "sweep", "sip", c), target, scripts, settings)
                    )
            if "barge_in" in wanted and not options.long_replies:
                await _barge_in_run(options, target, runs)
    if "barge_in" in wanted and options.long_replies:
        agent_file = (
            long_reply_agent(load_agent(options.agent_file), options.out)
            if options.target_sip is None
            else None
        )
        async with _target(options, agent_file, "serve-long-replies") as target:
            await _barge_in_run(options, target, runs)


async def _barge_in_run(options: BenchOptions, target: AgentTarget, runs: list[dict[str, Any]]) -> None:
    per_call = min(TURNS_PER_CALL, max(3, options.turns + 1))
    pool = caller_utterances()
    scripts = [
        [pool[(k * per_call + j) % len(pool)] for j in range(per_call)] for k in range(options.barge_in_calls)
    ]
    barge = CallSettings(barge_in_after_s=BARGE_IN_AFTER_S)
    runs.append(await _calls_run(_run("barge_in-sip", "barge_in", "sip", 1), target, scripts, barge))


async def _echo_sweep(options: BenchOptions, runs: list[dict[str, Any]]) -> None:
    pool = caller_utterances()
    settings = CallSettings(pause_s=0.5, wait_for_greeting=False, reply_timeout_s=5.0)
    progress("starting the echo server")
    target_cm: AbstractAsyncContextManager[AgentTarget] = echo_server(options.out)
    async with target_cm as target:
        for c in options.echo_concurrency:
            scripts = [[pool[(k + j) % len(pool)] for j in range(options.echo_turns)] for k in range(c)]
            run = _run(f"echo_sweep-{c}", "echo_sweep", "sip", c)
            runs.append(await _calls_run(run, target, scripts, settings))


async def _floor(options: BenchOptions, runs: list[dict[str, Any]]) -> None:
    count = options.floor_turns if options.floor_turns is not None else options.turns
    utterances = caller_utterances(count)
    progress(f"compute floor: loading the engines, then {len(utterances)} utterances")
    run = _run("floor", "floor", "none", 1)
    run["floor"] = await compute_floor(load_agent(options.agent_file), utterances)
    runs.append(run)


def results_meta(agent: AgentConfig, command: str, target: str | None) -> dict[str, Any]:
    """The `meta` block of results.json: what ran, on what, when."""
    return {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "agent": agent.name,
        "models": {
            "stt": f"{agent.stt.engine}:{agent.stt.model}",
            "llm": f"{agent.llm.engine}:{agent.llm.model}",
            "tts": f"{agent.voice.engine}:{agent.voice.voice}",
        },
        "machine": meta.machine(),
        "versions": meta.versions(),
        "git": meta.git_commit(),
        "target": target,
    }


async def run_bench(options: BenchOptions) -> dict[str, Any]:
    """Run the chosen scenarios; write results.json (and the report, when available) to options.out."""
    options.out.mkdir(parents=True, exist_ok=True)
    agent = load_agent(options.agent_file)
    results: dict[str, Any] = {
        "schema": SCHEMA,
        "meta": results_meta(agent, options.command, options.target_sip),
        "runs": [],
    }
    runs: list[dict[str, Any]] = results["runs"]
    await _model_scenarios(options, runs)
    if "echo_sweep" in options.scenarios:
        await _echo_sweep(options, runs)
    if "capacity" in options.scenarios:
        capacity, verdicts = await capacity_runs(options.capacity, options.out, progress)
        runs += capacity
        results["capacity"] = verdicts
    if "floor" in options.scenarios:
        await _floor(options, runs)
        add_floor_overhead(runs, next((r["floor"] for r in runs if r["scenario"] == "floor"), []))
    results["meta"]["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["meta"]["machine"]["load_avg_end"] = meta.load_avg()
    path = options.out / "results.json"
    path.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    progress(f"wrote {path}")
    write_report_if_available(results, options.out)
    return results


def write_report_if_available(results: dict[str, Any], out: Path) -> None:
    try:
        from voxline.bench.report import write_report
    except ImportError:
        log.warning("voxline.bench.report is not available: no summary.md or plots")
        progress("no report writer available: results.json only")
        return
    write_report(results, out)
    progress(f"wrote {out / 'summary.md'} and the plots")
