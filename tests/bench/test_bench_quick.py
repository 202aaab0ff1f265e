"""`voxline bench --quick` end to end: a real server process, real models, real calls.

Numbers are not asserted (they depend on the machine); the shape of the results is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from voxline.bench.runner import SCENARIOS, SCHEMA

# the bench starts a process-mode node (its speech server, llama-server and warm jobs) and the echo
# server, and places every scenario's calls: more than the suite's 300 s default on two cores
pytestmark = pytest.mark.timeout(900)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
STAGES = {
    "speech_end_lag_ms", "endpointing_ms", "stt_ms", "llm_first_token_ms", "llm_first_sentence_ms",
    "tts_first_audio_ms", "answer_head_start_ms",
}  # fmt: skip
TURN_NUMBERS = (
    "voice_to_voice_ms", "agent_voice_to_voice_ms", "overhead_ms", "overhead_vs_floor_ms",
    "barge_in_stop_ms", "agent_barge_in_stop_ms", "echo_delay_ms",
)  # fmt: skip


def number_or_null(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


@pytest.fixture(scope="module")
def bench_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, "-m", "voxline.cli", "bench", "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "[bench]" in done.stderr  # progress lines
    return out


@pytest.mark.slow
def test_results_json_is_well_formed(bench_out: Path) -> None:
    results = json.loads((bench_out / "results.json").read_text())
    assert results["schema"] == SCHEMA
    meta = results["meta"]
    assert meta["started_at"] <= meta["finished_at"]
    assert set(meta["models"]) == {"stt", "llm", "tts"}
    assert meta["machine"]["cores"] >= 1 and len(meta["machine"]["load_avg_end"]) == 3
    runs = results["runs"]
    assert {run["scenario"] for run in runs} == set(SCENARIOS)
    assert {run["transport"] for run in runs if run["scenario"] == "call"} == {"sip", "websocket"}
    for run in runs:
        assert run["transport"] in {"sip", "websocket", "none"} and run["concurrency"] >= 1
        for call in run["calls"]:
            assert call["completed"], call
            assert number_or_null(call["jitter_p99_ms"]) and number_or_null(call["greeting_ms"])
        for turn in run["turns"]:
            assert set(turn["stages"]) == STAGES
            assert all(number_or_null(turn[k]) for k in TURN_NUMBERS)
            assert all(number_or_null(v) for v in turn["stages"].values())
            assert turn["wrong_turn_ending"] in (True, False, None)


@pytest.mark.slow
def test_measurements_are_present(bench_out: Path) -> None:
    runs = json.loads((bench_out / "results.json").read_text())["runs"]
    model_turns = [t for r in runs if r["scenario"] in {"call", "pauses", "sweep"} for t in r["turns"]]
    # every call to the agent was greeted (the echo agent has no greeting)
    greeted = [c["greeting_ms"] for r in runs if r["scenario"] in {"call", "sweep"} for c in r["calls"]]
    assert greeted and all(g is not None and g > 0 for g in greeted), greeted
    with_v2v = [t for t in model_turns if t["voice_to_voice_ms"] is not None]
    assert len(with_v2v) >= 0.8 * len(model_turns) > 0
    assert sum(t["stages"]["stt_ms"] is not None for t in model_turns) >= 0.8 * len(model_turns)
    # the caller's end of speech and the agent's are on one clock: the lag between them is known
    lags = [t["stages"]["speech_end_lag_ms"] for t in model_turns]
    assert sum(lag is not None for lag in lags) >= 0.8 * len(model_turns)
    # the agent process reported its event loop's lateness and its memory after each model run
    model_runs = [r for r in runs if r["scenario"] in {"call", "pauses", "sweep", "barge_in"}]
    assert all(set(r["server_loop_lag_ms"]) == {"p50_ms", "p99_ms", "max_ms"} for r in model_runs)
    assert all(r["server_memory_mib"]["peak_rss_mib"] > 100 for r in model_runs)
    # WebSocket calls are found by their call id, SIP calls by start order: all have a server record
    assert all(c["call_id"] for r in runs if r["scenario"] != "echo_sweep" for c in r["calls"])
    assert all(t["paused"] and t["pause_ms"] for r in runs if r["scenario"] == "pauses" for t in r["turns"])
    # whether a turn really talks over the agent depends on how long the model's replies run
    barge_turns = [t for r in runs if r["scenario"] == "barge_in" for t in r["turns"]]
    assert len(barge_turns) == 3 and not barge_turns[0]["barged_in"]
    assert all(t["wrong_turn_ending"] is None for t in barge_turns if t["barged_in"])
    echo = [t for r in runs if r["scenario"] == "echo_sweep" for t in r["turns"]]
    assert echo and all(t["echo_delay_ms"] is not None for t in echo)
    floor = next(r for r in runs if r["scenario"] == "floor")["floor"]
    assert len(floor) == 3
    for row in floor:
        assert all(isinstance(row[k], float) for k in ("stt_ms", "llm_first_token_ms", "llm_first_chunk_ms"))
        assert isinstance(row["tts_first_audio_ms"], float) and isinstance(row["total_ms"], float)
    assert any(t["overhead_vs_floor_ms"] is not None for t in model_turns)


@pytest.mark.slow
def test_report_and_plots_are_written(bench_out: Path) -> None:
    import voxline.bench.report  # noqa: F401 - an import regression must fail here, not skip

    assert (bench_out / "summary.md").read_text().strip()
    pngs = list(bench_out.glob("*.png"))
    assert pngs
    assert all(p.read_bytes()[:8] == PNG_MAGIC for p in pngs)
