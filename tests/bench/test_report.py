"""The bench report: summary numbers, the Markdown, and the files write_report leaves behind."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from voxline.bench import plots
from voxline.bench.report import markdown, number, summarize, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def turn(call: int, index: int, rng: np.random.Generator, **fields: Any) -> dict[str, Any]:
    stages = {
        "endpointing_ms": float(rng.uniform(180, 320)),
        "stt_ms": float(rng.uniform(90, 200)),
        "llm_first_token_ms": float(rng.uniform(120, 260)),
        "llm_first_sentence_ms": float(rng.uniform(250, 450)),
        "tts_first_audio_ms": float(rng.uniform(60, 140)),
    }
    overhead = float(rng.uniform(10, 40))
    agent_v2v = sum(v for k, v in stages.items() if k != "llm_first_token_ms") + overhead
    record: dict[str, Any] = {
        "call": call,
        "turn": index,
        "utterance": "what are your opening hours",
        "expected_text": "what are your opening hours",
        "paused": False,
        "pause_ms": None,
        "voice_to_voice_ms": agent_v2v + float(rng.uniform(30, 80)),
        "agent_voice_to_voice_ms": agent_v2v,
        "stages": stages,
        "overhead_ms": overhead,
        "overhead_vs_floor_ms": overhead - 5.0,
        "barge_in_stop_ms": None,
        "agent_barge_in_stop_ms": None,
        "wrong_turn_ending": False,
        "user_text": "what are your opening hours",
        "agent_text": "We are open nine to five.",
        "echo_delay_ms": None,
    }
    record.update(fields)
    return record


def calls(n: int, completed: int, jitter: list[float | None], lost: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "call_id": f"c{i}",
            "end_reason": "caller_hangup",
            "completed": i < completed,
            "jitter_p99_ms": jitter[i],
            "packets_lost": lost,
        }
        for i in range(n)
    ]


def run(name: str, scenario: str, turns: list[Any], **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "name": name,
        "scenario": scenario,
        "transport": "sip",
        "concurrency": 1,
        "turns": turns,
        "calls": [],
        "floor": [],
    }
    record.update(fields)
    return record


def results_with(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schema": "voxline-bench/1",
        "meta": {
            "started_at": "2025-01-01T10:00:00+00:00",
            "finished_at": "2025-01-01T10:20:00+00:00",
            "command": "voxline bench --quick",
            "agent": "examples/receptionist.yaml",
            "models": {"stt": "whisper tiny.en", "llm": "qwen2.5-0.5b", "tts": "piper amy"},
            "machine": {
                "cpu": "Test CPU",
                "cores": 2,
                "ram_gib": 7.7,
                "load_avg_start": [0.5, 0.4, 0.3],
                "load_avg_end": [1.9, 1.2, 0.8],
            },
            "versions": {"voxline": "0.1.0", "llama_cpp": "0.3.8"},
            "git": "abc1234",
        },
        "runs": runs,
    }


def synthetic_results() -> dict[str, Any]:
    """Every scenario with realistic numbers, some nulls and an empty run."""
    rng = np.random.default_rng(7)
    call_turns = [turn(c, t, rng) for c in range(2) for t in range(6)]
    call_turns[3]["voice_to_voice_ms"] = None  # the caller never heard a reply
    call_turns[5]["stages"]["stt_ms"] = None
    pause_turns = [
        turn(0, t, rng, paused=True, pause_ms=600.0, wrong_turn_ending=t in (1, 3)) for t in range(5)
    ]
    pause_turns += [turn(0, 5 + t, rng, wrong_turn_ending=t == 0) for t in range(3)]
    pause_turns.append(turn(0, 8, rng, paused=True, wrong_turn_ending=None))  # not judged
    barge_turns = [
        turn(0, t, rng, barge_in_stop_ms=v, agent_barge_in_stop_ms=v and v - 40)
        for t, v in enumerate([95.0, 130.0, None, 210.0])
    ]
    sweeps = [
        run(
            f"sweep x{c}",
            "sweep",
            [turn(i, 0, rng) for i in range(c)],
            concurrency=c,
            calls=calls(c, c, [float(rng.uniform(2, 9)) for _ in range(c)]),
        )
        for c in (1, 2, 4)
    ]
    echoes = [
        run(
            f"echo x{c}",
            "echo_sweep",
            [turn(i, 0, rng, echo_delay_ms=float(rng.uniform(40, 40 + c))) for i in range(c)],
            concurrency=c,
            transport="none",
            calls=calls(c, c - 1, [3.0] * (c - 1) + [None], lost=1),
        )
        for c in (1, 10, 50)
    ]
    floor = [
        {
            "utterance": f"u{i}",
            "stt_ms": 100.0 + i,
            "llm_first_token_ms": 150.0 + 2 * i,
            "llm_first_chunk_ms": 300.0 + i,
            "tts_first_audio_ms": 80.0,
            "total_ms": 480.0 + 3 * i,
        }
        for i in range(5)
    ]
    return results_with(
        [
            run("call sip", "call", call_turns, calls=calls(2, 1, [4.0, None])),
            run("call ws", "call", [], transport="websocket"),  # an empty run
            run("pauses", "pauses", pause_turns),
            run("barge", "barge_in", barge_turns),
            *sweeps,
            *echoes,
            run("floor", "floor", [], transport="none", floor=floor),
        ]
    )


@pytest.fixture
def results() -> dict[str, Any]:
    return synthetic_results()


def by_name(summary: dict[str, Any], name: str) -> dict[str, Any]:
    return next(found for found in summary["runs"] if found["name"] == name)


def test_percentiles_match_numpy_and_ignore_nulls(results: dict[str, Any]) -> None:
    summary = summarize(results)
    turns = results["runs"][0]["turns"]
    v2v = [t["voice_to_voice_ms"] for t in turns if t["voice_to_voice_ms"] is not None]
    stats = by_name(summary, "call sip")["latency"]["voice_to_voice_ms"]
    assert stats["n"] == 11
    for q in (50, 95, 99):
        assert stats[f"p{q}"] == pytest.approx(np.percentile(v2v, q, method="linear"))
    assert stats["max"] == max(v2v)
    stt = by_name(summary, "call sip")["latency"]["stt_ms"]
    assert stt["n"] == 11
    assert stt["p95"] == pytest.approx(
        np.percentile([t["stages"]["stt_ms"] for t in turns if t["stages"]["stt_ms"]], 95)
    )


def test_calls_jitter_barge_in_and_echo(results: dict[str, Any]) -> None:
    summary = summarize(results)
    call = by_name(summary, "call sip")
    assert call["calls"] == {"n": 2, "completed": 1, "packets_lost": 0}
    assert call["latency"]["jitter_p99_ms"] == {"n": 1, "p50": 4.0, "p95": 4.0, "p99": 4.0, "max": 4.0}
    barge = by_name(summary, "barge")["latency"]
    assert barge["barge_in_stop_ms"]["n"] == 3
    assert barge["barge_in_stop_ms"]["p50"] == 130.0
    assert barge["agent_barge_in_stop_ms"]["max"] == 170.0
    echo = by_name(summary, "echo x10")
    assert echo["calls"] == {"n": 10, "completed": 9, "packets_lost": 10}
    assert echo["latency"]["echo_delay_ms"]["n"] == 10
    assert echo["latency"]["jitter_p99_ms"]["n"] == 9


def test_wrong_turn_endings_count_paused_turns_and_all_turns(results: dict[str, Any]) -> None:
    summary = summarize(results)
    pauses = by_name(summary, "pauses")["wrong_turn_endings"]
    assert pauses["paused"] == {"count": 2, "n": 5, "rate": 0.4}
    assert pauses["all"] == {"count": 3, "n": 8, "rate": 0.375}
    overall = summary["wrong_turn_endings"]
    assert overall["paused"]["count"] == 2
    assert overall["all"]["count"] == 3
    assert overall["all"]["n"] > 8  # every judged turn of every run counts


def test_floor_and_empty_run(results: dict[str, Any]) -> None:
    summary = summarize(results)
    floor = by_name(summary, "floor")["floor"]
    assert floor["total_ms"] == {
        "n": 5,
        "p50": 486.0,
        "p95": pytest.approx(np.percentile([480, 483, 486, 489, 492], 95)),
    }
    assert floor["llm_first_token_ms"]["p50"] == 154.0
    empty = by_name(summary, "call ws")
    assert empty["turns"] == 0
    assert empty["latency"]["voice_to_voice_ms"] == {
        "n": 0,
        "p50": None,
        "p95": None,
        "p99": None,
        "max": None,
    }
    assert empty["wrong_turn_endings"]["paused"]["rate"] is None


def test_number_takes_only_finite_measurements() -> None:
    assert number(12) == 12.0
    assert number(1.5) == 1.5
    for junk in (None, True, float("nan"), float("inf"), "12", [1]):
        assert number(junk) is None


def test_markdown_has_every_table_and_the_rate(results: dict[str, Any]) -> None:
    text = markdown(results, summarize(results), ["waterfall.png"])
    for heading in (
        "# voxline bench",
        "## Calls",
        "### Where the time goes",
        "## Caller pauses mid-sentence",
        "## Barge-in",
        "## Concurrency sweep (real models)",
        "## Concurrency sweep (media-only echo agent)",
        "## Floor",
        "## Wrong turn endings",
    ):
        assert heading in text
    assert "`voxline bench --quick`" in text
    assert "qwen2.5-0.5b" in text and "llama_cpp 0.3.8" in text and "0.50 0.40 0.30 → 1.90 1.20 0.80" in text
    assert "2/5 (40.0%)" in text and "3/8 (37.5%)" in text
    assert "![waterfall](waterfall.png)" in text and "v2v_cdf.png" not in text
    # each table's rows have as many cells as its header, so GitHub renders them
    table_lines = [line for line in text.splitlines() if line.startswith("|")]
    assert len(table_lines) > 30
    blocks: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.startswith("|"):
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
    for block in filter(None, blocks):
        widths = {line.replace("\\|", "").count("|") for line in block}
        assert len(widths) == 1, block
    call_v2v = by_name(summarize(results), "call sip")["latency"]["voice_to_voice_ms"]
    assert f"{call_v2v['p50']:.0f} (100%)" in text  # caller v2v is its own whole in the stage table


def table_rows(text: str, heading: str) -> list[list[str]]:
    """The body cells of the first table under a heading."""
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")][2:]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_markdown_concurrency_rows_are_sorted_and_counted(results: dict[str, Any]) -> None:
    results["runs"].reverse()
    summary = summarize(results)
    text = markdown(results, summary)
    echo = table_rows(text, "## Concurrency sweep (media-only echo agent)")
    assert [row[:3] for row in echo] == [["1", "0/1", "1"], ["10", "9/10", "10"], ["50", "49/50", "50"]]
    assert echo[2][3] == f"{by_name(summary, 'echo x50')['latency']['echo_delay_ms']['p50']:.0f}"
    assert echo[2][-1] == "50"  # one packet lost per call
    sweep = table_rows(text, "## Concurrency sweep (real models)")
    assert [row[0] for row in sweep] == ["1", "2", "4"]


def test_markdown_names_an_empty_run_but_leaves_it_out_of_the_breakdown(results: dict[str, Any]) -> None:
    text = markdown(results, summarize(results))
    assert ["call ws", "no data", "0", "–", "–", "–", "–"] in table_rows(text, "## Calls")
    breakdown = text.split("### Where the time goes", 1)[1].split("\n## ", 1)[0]
    assert "call sip" in breakdown and "call ws" not in breakdown


def test_write_report_writes_pngs_summary_and_json(results: dict[str, Any], tmp_path: Path) -> None:
    write_report(results, tmp_path / "out")
    out = tmp_path / "out"
    for name in plots.PLOTS:
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC), name
        assert len(data) > 10_000, name
    text = (out / "summary.md").read_text()
    for name in plots.PLOTS:
        assert f"]({name})" in text
    assert json.loads((out / "summary.json").read_text()) == json.loads(json.dumps(summarize(results)))


def test_missing_scenarios_skip_their_plots(results: dict[str, Any], tmp_path: Path) -> None:
    only_calls = results_with([found for found in results["runs"] if found["scenario"] == "call"])
    write_report(only_calls, tmp_path)
    assert sorted(path.name for path in tmp_path.glob("*.png")) == ["v2v_cdf.png", "waterfall.png"]
    text = (tmp_path / "summary.md").read_text()
    assert "concurrency.png" not in text and "## Barge-in" not in text and "## Wrong turn endings" in text


@pytest.mark.parametrize(
    "empty", [{}, {"schema": "voxline-bench/1", "meta": None, "runs": []}, {"runs": "oops"}]
)
def test_no_runs_still_writes_a_summary(empty: dict[str, Any], tmp_path: Path) -> None:
    write_report(empty, tmp_path)
    assert not list(tmp_path.glob("*.png"))
    assert "No runs in the results." in (tmp_path / "summary.md").read_text()
    assert json.loads((tmp_path / "summary.json").read_text())["runs"] == []


def test_malformed_numbers_are_skipped_not_raised(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    turns = [
        turn(0, 0, rng, voice_to_voice_ms="fast", stages=None, overhead_ms=float("nan")),
        turn(0, 1, rng),
        7,
    ]
    write_report(results_with([run("odd", "call", turns, calls=[None, {"completed": "yes"}])]), tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["runs"][0]["latency"]["voice_to_voice_ms"]["n"] == 1
    assert summary["runs"][0]["calls"] == {"n": 1, "completed": 0, "packets_lost": 0}
    assert (tmp_path / "waterfall.png").read_bytes().startswith(PNG_MAGIC)


def test_a_failing_plot_costs_only_that_plot(
    results: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(results: Any, path: Path) -> Path | None:
        raise ValueError("plotting bug")

    monkeypatch.setitem(plots.PLOTS, "waterfall.png", broken)
    write_report(results, tmp_path)
    text = (tmp_path / "summary.md").read_text()
    assert "waterfall.png" not in text and "](v2v_cdf.png)" in text
    assert not (tmp_path / "waterfall.png").exists()


def test_waterfall_caps_its_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    many = results_with([run("long call", "call", [turn(0, t, rng) for t in range(200)])])
    path = plots.waterfall(many, tmp_path / "w.png")
    few = plots.waterfall(
        results_with([run("short", "call", [turn(0, t, rng) for t in range(40)])]), tmp_path / "f.png"
    )
    assert path is not None and few is not None
    # same number of rows drawn, so the same figure height
    assert png_size(path)[1] == png_size(few)[1]


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[16:24]
    return int.from_bytes(header[:4], "big"), int.from_bytes(header[4:], "big")


def test_without_matplotlib_the_summary_is_still_written(
    results: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # matplotlib is the optional "bench" extra; a None entry makes the import fail as if it were missing
    monkeypatch.setitem(sys.modules, "voxline.bench.plots", None)
    monkeypatch.delattr(sys.modules["voxline.bench"], "plots")
    write_report(results, tmp_path)
    assert not list(tmp_path.glob("*.png"))
    text = (tmp_path / "summary.md").read_text()
    assert "## Calls" in text and "## Plots" not in text


def test_agent_process_figures_are_reported(results: dict[str, Any]) -> None:
    results["runs"][0]["server_loop_lag_ms"] = {"p50_ms": 0.4, "p99_ms": 2.5, "max_ms": 9.0}
    results["runs"][0]["server_memory_mib"] = {"rss_mib": 612.0, "peak_rss_mib": 640.5}
    text = markdown(results, summarize(results))
    assert "## The agent process" in text
    row = next(
        line
        for line in text.splitlines()
        if line.startswith(f"| {results['runs'][0]['name']} ") and "612" in line
    )
    assert "2.5" in row and "0.4" in row


def test_echo_sweep_inline_and_process_rows_carry_where_the_agent_ran(results: dict[str, Any]) -> None:
    rng = np.random.default_rng(3)
    for found in results["runs"]:
        if found["scenario"] == "echo_sweep":
            found["workers"] = "inline"
    results["runs"].append(
        run(
            "echo process x10",
            "echo_sweep",
            [turn(i, 0, rng, echo_delay_ms=45.0) for i in range(10)],
            concurrency=10,
            calls=calls(10, 10, [2.0] * 10),
            workers="process",
            node_send_lateness_ms={
                "calls": 10,
                "packets": 5000,
                "p50_ms": 0.7,
                "p99_ms": 3.25,
                "max_ms": 12.5,
            },
        )
    )
    summary = summarize(results)
    assert by_name(summary, "echo process x10")["workers"] == "process"
    echo = table_rows(markdown(results, summary), "## Concurrency sweep (media-only echo agent)")
    assert [row[:2] for row in echo] == [
        ["inline", "1"],
        ["inline", "10"],
        ["inline", "50"],
        ["process", "10"],
    ]
    assert echo[3][-2:] == ["3", "12"]  # the node's own send lateness p99 and max (ms, rounded)
    assert echo[0][-2:] == ["–", "–"]  # the inline echo server reports none
