"""`voxline bench --peer pipecat`: voxline and a peer framework, side by side, in one run.

Both run on this machine at once, on the same local models, and the same caller (the bench's
WebSocket caller on voxline's `/ws/call` protocol) calls them in turn: a voxline call, a peer call,
a voxline call, … so that whatever else loads the machine falls on both alike. Every call speaks
the same recorded prompts, and both are timed and judged by the same code:

- voice-to-voice: the caller's rule (the last speech sample on the wire → the first reply sound).
- split turn: one caller turn that the agent took as two or more user turns (two `user_text` events
  in its window), or took before the caller's last word (a `user_text` arriving earlier).
- wrong turn ending: a split turn, or a transcript with under 60 % of the words (an answer to a
  cut-short sentence, or a mishearing).
- heard mid-turn: agent sound reached the caller while they spoke (reported, not a split by itself).

The per-turn rows are the bench's own (`turn_rows`), built from the `user_text`/`agent_text` events
each side sends on the socket rather than from voxline's call records, which the peer does not have.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from voxline.agent.config import AgentConfig, load_agent
from voxline.bench import meta
from voxline.bench.calls import CallSettings, PlacedCall, place_calls
from voxline.bench.processes import AgentTarget, voxline_server
from voxline.bench.rows import PARTIAL_RECALL, agent_turns_in, call_row, turn_rows
from voxline.bench.runner import progress, results_meta, write_report_if_available
from voxline.bench.utterances import Utterance, caller_utterances

log = logging.getLogger(__name__)

SCHEMA = "voxline-bench/1"
PEERS = ("pipecat",)
VOXLINE = "voxline"
TargetFactory = Callable[[AgentConfig, Path], AbstractAsyncContextManager[AgentTarget]]


@dataclass
class PeerOptions:
    peer: str = "pipecat"
    calls: int = 3
    """Calls per system."""
    turns: int = 10
    """Recorded prompts per call (the first `turns` of the bench's list), the same in every call."""
    agent_file: Path | None = None
    llm_threads: int | None = None
    """Override the agent's LLM threads on both sides (None: the agent's own setting)."""
    out: Path = Path("out/bench-peer")
    command: str = field(default_factory=lambda: " ".join(["voxline", *sys.argv[1:]]))


def with_llm_threads(agent: AgentConfig, threads: int, out: Path) -> Path:
    """An agent file like `agent` whose LLM runs on `threads` threads (for both systems)."""
    llm = agent.llm.model_copy(update={"threads": threads})
    path = out / "bench-agent.yaml"
    path.write_text(yaml.safe_dump(agent.model_copy(update={"llm": llm}).model_dump(mode="json")))
    return path


def record_from_events(events: Sequence[tuple[float, dict[str, Any]]]) -> dict[str, Any]:
    """A call record (the shape `turn_rows` reads) made from the socket's events: one turn per
    `user_text`, placed at its arrival time, with the `agent_text` that followed it."""
    turns: list[dict[str, Any]] = []
    for at, event in events:
        kind = event.get("type")
        if kind == "user_text" and str(event.get("text") or "").strip():
            turns.append({"user_text": str(event["text"]).strip(), "started_at": at,
                          "agent_text": "", "metrics": {}})  # fmt: skip
        elif kind == "agent_text" and turns and not turns[-1]["agent_text"]:
            turns[-1]["agent_text"] = str(event.get("text") or "")
    return {"turns": turns}


def peer_rows(call: PlacedCall) -> list[dict[str, Any]]:
    """The bench's turn rows for one call, judged from its socket events.

    A turn is split when the agent took it as two or more user turns, or took it (its `user_text`
    arrived) before the caller's last word. Agent sound heard while the caller spoke is counted too
    (`heard_mid_turn`), but it is not a split by itself: on a loaded machine it is mostly the late
    rest of the previous reply, still coming after the caller's 1 s of quiet."""
    call.record = record_from_events(call.events)
    rows = turn_rows(call, scenario="peer")
    turns = call.caller.result.turns
    starts = [call.epoch_offset + t.speech_start_wire_s for t in turns]
    for i, (row, turn) in enumerate(zip(rows, turns, strict=True)):
        end = starts[i + 1] if i + 1 < len(turns) else float("inf")
        taken = [t["started_at"] for t in agent_turns_in(call.record, starts[i], end)]
        speech_end = None if turn.speech_end_wire_s is None else call.epoch_offset + turn.speech_end_wire_s
        row["heard_mid_turn"] = turn.sound_during_speech
        row["taken_early"] = speech_end is not None and any(at < speech_end for at in taken)
        row["split"] = row["taken_early"] or row["agent_user_turns"] > 1
        recall = row["recall"]
        row["wrong_turn_ending"] = row["split"] or (recall is not None and recall < PARTIAL_RECALL)
    return rows


def _percentile(values: Sequence[float], q: int) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def system_summary(run: dict[str, Any]) -> dict[str, Any]:
    turns = run["turns"]
    v2v = [t["voice_to_voice_ms"] for t in turns if t["voice_to_voice_ms"] is not None]
    return {
        "turns": len(turns),
        "voice_to_voice_n": len(v2v),
        "p50_ms": _percentile(v2v, 50),
        "p95_ms": _percentile(v2v, 95),
        "split_turns": sum(bool(t.get("split")) for t in turns),
        "heard_mid_turn": sum(bool(t.get("heard_mid_turn")) for t in turns),
        "wrong_turn_endings": sum(t.get("wrong_turn_ending") is True for t in turns),
        "no_reply": len(turns) - len(v2v),
        "calls": len(run["calls"]),
        "calls_completed": sum(c["completed"] for c in run["calls"]),
    }


def comparison(peer: str, runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Both systems' figures and the peer's voice-to-voice over voxline's (above 1: voxline is faster)."""
    systems = {name: system_summary(run) for name, run in runs.items()}
    ratio: dict[str, float | None] = {}
    for q in ("p50_ms", "p95_ms"):
        ours, theirs = systems[VOXLINE][q], systems[peer][q]
        ratio[q.removesuffix("_ms")] = round(theirs / ours, 2) if ours and theirs else None
    return {"peer": peer, "systems": systems, "ratio": ratio}


async def alternate_calls(
    targets: dict[str, AgentTarget], script: Sequence[Utterance], calls: int, settings: CallSettings
) -> dict[str, list[PlacedCall]]:
    """`calls` calls to each target, one at a time, taking the targets in turn."""
    placed: dict[str, list[PlacedCall]] = {name: [] for name in targets}
    for index in range(calls):
        for name, target in targets.items():
            progress(f"call {index + 1}/{calls} to {name}")
            (call,) = await place_calls(target, "websocket", [script], settings)
            call.index = index
            placed[name].append(call)
    return placed


def _peer_target(peer: str) -> TargetFactory:
    if peer != "pipecat":
        raise RuntimeError(f"unknown peer {peer!r}; choose from {', '.join(PEERS)}")
    from voxline.bench.peers.pipecat_target import pipecat_target

    return pipecat_target


def _peer_version(peer: str) -> str | None:
    if peer == "pipecat":
        from voxline.bench.peers.pipecat_env import PIPECAT_VERSION

        return PIPECAT_VERSION
    return None


async def run_peer_bench(options: PeerOptions, peer_target: TargetFactory | None = None) -> dict[str, Any]:
    """Run the side-by-side calls; write results.json and summary.md to options.out."""
    options.out.mkdir(parents=True, exist_ok=True)
    agent_file = options.agent_file
    agent = load_agent(agent_file)
    if options.llm_threads is not None:
        agent_file = with_llm_threads(agent, options.llm_threads, options.out)
        agent = load_agent(agent_file)
    make_peer = peer_target or _peer_target(options.peer)
    script = caller_utterances(options.turns)
    results: dict[str, Any] = {
        "schema": SCHEMA,
        "meta": results_meta(agent, options.command, None),
        "runs": [],
    }
    results["meta"]["versions"][options.peer] = _peer_version(options.peer)
    results["meta"]["llm_threads"] = agent.llm.threads or 2
    progress(f"starting the {options.peer} bot (its own environment, the agent's models)")
    async with (
        make_peer(agent, options.out) as peer,
        voxline_server(options.out, agent_file, "serve") as ours,
    ):
        progress(f"both ready: {options.calls} calls each of {len(script)} prompts, alternating")
        placed = await alternate_calls(
            {VOXLINE: ours, options.peer: peer}, script, options.calls, CallSettings()
        )
    runs: dict[str, dict[str, Any]] = {}
    for name, calls in placed.items():
        run: dict[str, Any] = {
            "name": f"peer-{name}", "scenario": "peer", "system": name, "transport": "websocket",
            "concurrency": 1, "turns": [], "calls": [], "floor": [],
        }  # fmt: skip
        for call in calls:
            run["turns"] += peer_rows(call)
            run["calls"].append(call_row(call))
        runs[name] = run
        results["runs"].append(run)
    results["peer"] = comparison(options.peer, runs)
    results["meta"]["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["meta"]["machine"]["load_avg_end"] = meta.load_avg()
    path = options.out / "results.json"
    path.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    progress(f"wrote {path}")
    write_report_if_available(results, options.out)
    return results
