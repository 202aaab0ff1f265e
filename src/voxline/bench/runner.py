"""`voxline bench`: the scenarios, run against real agent processes, into results.json (+ report).

Order matters for fairness: the model scenarios run on one `voxline serve` (the barge-in one on a
second, whose agent writes longer replies), the echo sweep on the bench's echo server, and the
compute floor last, in this process, once no server is left competing for the CPU.
"""

from __future__ import annotations

import asyncio
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
    echo_workers: Sequence[str] = ("inline",)
    """Where the echo sweep's agent runs: `inline` (the bench's echo server, one process) and/or
    `process` (`voxline serve --workers process` with a `mode: echo` agent: a job process per call,
    its RTP socket handed to the job)."""
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


ECHO_WORKERS = ("inline", "process")
ECHO_AGENT = "name: echo\nmode: echo\ntelephony:\n  sip: {max_calls: 1000}\n"
"""The echo sweep's agent: media only, its SIP listener's own limit out of the way (the node's
`--max-calls` and admission decide)."""


def echo_agent_file(out: Path) -> Path:
    """The media-only agent a process-mode node serves for the echo sweep."""
    path = out / "bench-echo-agent.yaml"
    path.write_text(ECHO_AGENT)
    return path


def echo_node_args(concurrency: int) -> list[str]:
    """`voxline serve` arguments of the echo sweep's process-mode node at `concurrency` calls: a
    job warm for every call (as many as the pool may keep), calls admitted up to twice that."""
    idle = min(concurrency, ECHO_IDLE_MAX)
    return [
        "--workers",
        "process",
        "--idle-processes",
        str(idle),
        "--max-calls",
        str(max(50, 2 * concurrency)),
    ]


ECHO_IDLE_MAX = 64
"""`workers.idle_processes` at most (the node config's bound)."""


async def _echo_sweep(options: BenchOptions, runs: list[dict[str, Any]]) -> None:
    pool = caller_utterances()
    settings = CallSettings(pause_s=0.5, wait_for_greeting=False, reply_timeout_s=5.0)

    def scripts(c: int) -> list[list[Utterance]]:
        return [[pool[(k + j) % len(pool)] for j in range(options.echo_turns)] for k in range(c)]

    if "inline" in options.echo_workers:
        progress("starting the echo server")
        target_cm: AbstractAsyncContextManager[AgentTarget] = echo_server(options.out)
        async with target_cm as target:
            for c in options.echo_concurrency:
                run = _run(f"echo_sweep-{c}", "echo_sweep", "sip", c)
                run["workers"] = "inline"
                runs.append(await _calls_run(run, target, scripts(c), settings))
    if "process" in options.echo_workers:
        agent_file = echo_agent_file(options.out)
        for c in options.echo_concurrency:
            # a fresh node per point: a full warm pool, and its send timing is this point's alone
            progress(f"starting voxline serve --workers process (echo agent, {c} calls)")
            async with voxline_server(
                options.out, agent_file, f"echo-process-{c}", echo_node_args(c)
            ) as target:
                run = _run(f"echo_sweep-process-{c}", "echo_sweep", "sip", c)
                run["workers"] = "process"
                await _wait_pool_warm(target, min(c, ECHO_IDLE_MAX))
                runs.append(await _calls_run(run, target, scripts(c), settings))
                health = await target.health()
                pool_view = (health or {}).get("pool") or {}
                if "rtp_send_lateness" in pool_view:
                    # how late the jobs' own RTP packets left against their 20 ms schedule
                    run["node_send_lateness_ms"] = pool_view["rtp_send_lateness"]
                    run["node_pool"] = {k: pool_view.get(k) for k in ("calls", "cold_starts", "warm_s_p50")}


POOL_WARM_WAIT_S = 120.0


async def _wait_pool_warm(target: AgentTarget, idle: int) -> None:
    """Until the node has `idle` jobs warm (or POOL_WARM_WAIT_S passed: the run says how many were cold)."""
    deadline = time.monotonic() + POOL_WARM_WAIT_S
    while time.monotonic() < deadline:
        health = await target.health()
        if int(((health or {}).get("pool") or {}).get("idle") or 0) >= idle:
            return
        await asyncio.sleep(0.5)


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
