"""The capacity scenario's arithmetic: what a node "holds", growth through a call, refusals."""

from __future__ import annotations

from pathlib import Path

from voxline.bench.capacity import NodeSetup, holds, refused, scripts_for, step_summary
from voxline.bench.report import markdown, summarize


def _turns(values: list[list[float]]) -> list[dict[str, object]]:
    return [
        {"turn": index, "voice_to_voice_ms": v2v} for per_call in values for index, v2v in enumerate(per_call)
    ]


def test_node_setup_parses_label_agent_and_serve_arguments() -> None:
    setup = NodeSetup.parse("after=examples/agents/bank.yaml:--node,node.yaml")
    assert setup == NodeSetup("after", Path("examples/agents/bank.yaml"), ("--node", "node.yaml"))
    assert NodeSetup.parse("before=") == NodeSetup("before", None, ())


def test_a_node_holds_the_most_calls_before_p95_passes_the_limit() -> None:
    step = {"completed": 9, "calls": 9}
    steps = {
        1: {**step, "p95_ms": 900.0, "completed": 1},
        2: {**step, "p95_ms": 1400.0, "completed": 2},
        3: {**step, "p95_ms": 1600.0, "completed": 3},
        4: {**step, "p95_ms": 1200.0, "completed": 4},  # past the first failure: not counted
    }
    assert holds(steps) == 2
    assert holds({1: {"p95_ms": 2000.0, "completed": 1}}) == 0
    # a step that lost a call does not count, however fast the rest were
    assert holds({1: {"p95_ms": 800.0, "completed": 1}, 2: {"p95_ms": 900.0, "completed": 1}}) == 1


def test_step_summary_shows_growth_through_the_call_and_refusals() -> None:
    turns = _turns([[800, 900, 1000, 2000, 2500, 3000], [850, 950, 1050, 2100, 2600, 3100]])
    calls = [
        {"completed": True, "turns_done": 6},
        {"completed": True, "turns_done": 6},
        {"completed": False, "turns_done": 0, "end_reason": "at capacity"},
    ]
    step = step_summary(turns, calls, turns_per_call=6)
    assert step["n"] == 12
    assert step["first_turns_p50_ms"] == 925.0
    assert step["last_turns_p50_ms"] == 2550.0
    assert step["refused"] == 1 and step["completed"] == 2 and step["calls"] == 3
    assert not refused({"turns_done": 3, "end_reason": "normal"})


def test_scripts_overlap_but_start_on_different_recordings() -> None:
    pool = list(range(20))
    scripts = scripts_for(pool, 3, 10)  # type: ignore[arg-type]
    assert [len(s) for s in scripts] == [10, 10, 10]
    assert len({s[0] for s in scripts}) == 3


def test_the_report_has_a_capacity_table() -> None:
    run = {
        "name": "capacity-after-2", "scenario": "capacity", "transport": "websocket", "concurrency": 2,
        "turns": [], "calls": [], "floor": [], "setup": "after",
        "capacity": {"n": 20, "p50_ms": 700.0, "p95_ms": 1100.0, "first_turns_p50_ms": 650.0,
                     "last_turns_p50_ms": 720.0, "calls": 2, "completed": 2, "refused": 0},
    }  # fmt: skip
    results = {"meta": {}, "runs": [run]}
    text = markdown(results, summarize(results))
    assert "Capacity: calls one node holds" in text
    assert "| after " in text and "1100" in text and "720" in text
