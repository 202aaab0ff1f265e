"""Turns a `voxline bench` results.json into summary.json, summary.md and PNG plots.

The results come from a long, expensive run, so nothing here raises on missing pieces: an absent
scenario, an empty run or a null number is skipped (and logged where a table or plot is dropped).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

SUMMARY_SCHEMA = "voxline-bench-summary/1"
STAGES = (
    "speech_end_lag_ms",
    "endpointing_ms",
    "stt_ms",
    "llm_first_token_ms",
    "llm_first_sentence_ms",
    "tts_first_audio_ms",
    "answer_head_start_ms",
)
"""speech_end_lag_ms: the caller's end of speech (source audio, on the wire) → the end of speech as the
agent's VAD placed it: the inbound path plus the VAD's hangover; it and endpointing_ms make the whole
wait for the turn to be confirmed. answer_head_start_ms: how long the answer (LLM, TTS), begun on the
caller's pause, had run when the turn was confirmed: that much of llm_first_sentence +
tts_first_audio overlapped endpointing."""
CRITICAL_PATH = (
    "speech_end_lag_ms",
    "endpointing_ms",
    "stt_ms",
    "llm_first_sentence_ms",
    "tts_first_audio_ms",
    "overhead_ms",
)
"""What a caller waits for, in order; llm_first_token_ms lies inside llm_first_sentence_ms."""
V2V = ("voice_to_voice_ms", "agent_voice_to_voice_ms")
BARGE_IN = ("barge_in_stop_ms", "agent_barge_in_stop_ms")
TURN_METRICS = (*V2V, *STAGES, "overhead_ms", "overhead_vs_floor_ms", *BARGE_IN, "echo_delay_ms")
CALL_METRICS = ("greeting_ms", "jitter_p99_ms")
"""greeting_ms: the call answered → the greeting's first sound at the caller."""
FLOOR_COLUMNS = ("stt_ms", "llm_first_token_ms", "llm_first_chunk_ms", "tts_first_audio_ms", "total_ms")
SCENARIO_TITLES = {
    "call": "Calls",
    "pauses": "Caller pauses mid-sentence",
    "barge_in": "Barge-in",
    "sweep": "Concurrency sweep (real models)",
    "echo_sweep": "Concurrency sweep (media-only echo agent)",
    "floor": "Floor: the engines alone, back to back",
    "capacity": "Capacity: calls one node holds, per node setup",
    "peer": "Side by side with a peer framework (alternating WebSocket calls)",
}
NONE = "–"


def label(metric: str) -> str:
    """A metric's name for people: "llm_first_token_ms" is "llm first token"; sides named where two exist."""
    text = (
        metric.removesuffix("_ms")
        .removeprefix("agent_")
        .replace("_", " ")
        .replace("voice to voice", "voice-to-voice")
    )
    text = text.replace("barge in", "barge-in")
    if metric in V2V or metric in BARGE_IN:
        return f"{text} ({'agent' if metric.startswith('agent_') else 'caller'})"
    return f"{text} (per call)" if metric in CALL_METRICS else text


def mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def number(value: object) -> float | None:
    """A finite float, or None for null, NaN, bools and anything else that is not a measurement."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def runs_of(results: Mapping[str, Any], *scenarios: str) -> list[Mapping[str, Any]]:
    """The well-formed runs, optionally only those of the given scenarios."""
    value = results.get("runs")
    found = [run for run in value if isinstance(run, Mapping)] if isinstance(value, list) else []
    return [run for run in found if not scenarios or run.get("scenario") in scenarios]


def records(run: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    """A run's "turns", "calls" or "floor" list, minus anything malformed."""
    value = run.get(key)
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def turn_metric(turn: Mapping[str, Any], metric: str) -> float | None:
    if metric in STAGES:
        stages = turn.get("stages")
        return number(stages.get(metric)) if isinstance(stages, Mapping) else None
    return number(turn.get(metric))


def metric_values(run: Mapping[str, Any], metric: str) -> list[float]:
    """Every non-null value of a metric in a run (jitter comes from its calls, the rest from its turns)."""
    if metric in CALL_METRICS:
        return _present(records(run, "calls"), metric)
    found = (turn_metric(turn, metric) for turn in records(run, "turns"))
    return [value for value in found if value is not None]


def percentiles(
    values: Sequence[float], qs: Sequence[int] = (50, 95, 99), with_max: bool = True
) -> dict[str, Any]:
    """n and the percentiles (numpy's linear interpolation); None for each when there is no value."""
    stats: dict[str, Any] = {"n": len(values)}
    for q in qs:
        stats[f"p{q}"] = float(np.percentile(values, q)) if values else None
    if with_max:
        stats["max"] = max(values) if values else None
    return stats


def wrong_turn_endings(turns: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    flags = [turn["wrong_turn_ending"] for turn in turns if isinstance(turn.get("wrong_turn_ending"), bool)]
    count = sum(flags)
    return {"count": count, "n": len(flags), "rate": count / len(flags) if flags else None}


def _wrong_turn_summary(turns: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    paused = [turn for turn in turns if turn.get("paused") is True]
    return {"paused": wrong_turn_endings(paused), "all": wrong_turn_endings(turns)}


def summarize_run(run: Mapping[str, Any]) -> dict[str, Any]:
    turns, calls, floor = records(run, "turns"), records(run, "calls"), records(run, "floor")
    concurrency = number(run.get("concurrency"))
    return {
        "name": str(run.get("name") or run.get("scenario") or "?"),
        "scenario": run.get("scenario"),
        "transport": run.get("transport"),
        "concurrency": None if concurrency is None else int(concurrency),
        "turns": len(turns),
        "latency": {
            metric: percentiles(metric_values(run, metric)) for metric in (*TURN_METRICS, *CALL_METRICS)
        },
        "wrong_turn_endings": _wrong_turn_summary(turns),
        "calls": {
            "n": len(calls),
            "completed": sum(call.get("completed") is True for call in calls),
            "packets_lost": int(sum(number(call.get("packets_lost")) or 0 for call in calls)),
        },
        "floor": {
            column: percentiles(_present(floor, column), (50, 95), with_max=False) for column in FLOOR_COLUMNS
        },
        **{
            key: run[key]
            for key in ("setup", "beyond", "capacity", "workers", "node_send_lateness_ms")
            if key in run
        },
    }


def _present(rows: Sequence[Mapping[str, Any]], key: str) -> list[float]:
    found = (number(row.get(key)) for row in rows)
    return [value for value in found if value is not None]


def summarize(results: Mapping[str, Any]) -> dict[str, Any]:
    """Per-run statistics of every latency, wrong-turn endings, completed calls and the floor."""
    every_turn = [turn for run in runs_of(results) for turn in records(run, "turns")]
    return {
        "schema": SUMMARY_SCHEMA,
        "source_schema": results.get("schema"),
        "runs": [summarize_run(run) for run in runs_of(results)],
        "wrong_turn_endings": _wrong_turn_summary(every_turn),
    }


# Markdown ------------------------------------------------------------------------------------------


def ms(value: object) -> str:
    found = number(value)
    return NONE if found is None else f"{found:.0f}"


def share(part: object, whole: object) -> str:
    part_ms, whole_ms = number(part), number(whole)
    return f"{100 * part_ms / whole_ms:.0f}%" if part_ms is not None and whole_ms else NONE


def rate_text(stats: Mapping[str, Any]) -> str:
    rate = number(stats.get("rate"))
    return NONE if rate is None else f"{stats.get('count')}/{stats.get('n')} ({100 * rate:.1f}%)"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A GitHub table, padded so that it lines up in a terminal too."""
    cells = [[str(cell).replace("|", "\\|") for cell in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    # Right-align a column of numbers (so magnitudes line up), left-align one of text.
    numeric = [all(row[i][:1] in "0123456789" + NONE for row in cells[1:]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        padded = (
            c.rjust(w) if right else c.ljust(w) for c, w, right in zip(row, widths, numeric, strict=True)
        )
        return "| " + " | ".join(padded) + " |"

    rules = (
        "-" * (w + 1) + ":" if right else "-" * (w + 2) for w, right in zip(widths, numeric, strict=True)
    )
    rule = "|" + "|".join(rules) + "|"
    return [line(cells[0]), rule, *(line(row) for row in cells[1:]), ""]


def _meta_lines(results: Mapping[str, Any]) -> list[str]:
    meta = mapping(results.get("meta"))
    models, machine, versions = (mapping(meta.get(key)) for key in ("models", "machine", "versions"))
    loads = [
        " ".join(f"{v:.2f}" for v in map(number, machine.get(key) or []) if v is not None) or NONE
        for key in ("load_avg_start", "load_avg_end")
    ]
    ram = number(machine.get("ram_gib"))
    ram_text = NONE if ram is None else f"{ram:.1f}"
    hardware = f"{machine.get('cpu') or NONE}, {machine.get('cores') or NONE} cores, {ram_text} GiB RAM"
    rows = [
        ["command", f"`{meta['command']}`" if meta.get("command") else NONE],
        ["started → finished", f"{meta.get('started_at') or NONE} → {meta.get('finished_at') or NONE}"],
        ["agent", str(meta.get("agent") or NONE)],
        *([role.upper(), str(models.get(role) or NONE)] for role in ("stt", "llm", "tts")),
        ["machine", hardware],
        ["load average", " → ".join(loads)],
        ["versions", ", ".join(f"{name} {version}" for name, version in versions.items()) or NONE],
        ["git", str(meta.get("git") or NONE)],
    ]
    return table(["", ""], rows)


def _latency_table(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    rows = []
    for run in runs:
        filled = [(metric, stats) for metric, stats in run["latency"].items() if stats["n"]]
        for index, (metric, stats) in enumerate(filled):
            quantiles = [ms(stats[key]) for key in ("p50", "p95", "p99", "max")]
            rows.append(["" if index else run["name"], label(metric), str(stats["n"]), *quantiles])
        if not filled:
            rows.append([run["name"], "no data", "0", *[NONE] * 4])
    return table(["run", "ms", "n", "p50", "p95", "p99", "max"], rows)


def _stage_table(every: Sequence[Mapping[str, Any]]) -> list[str]:
    runs = [run for run in every if any(run["latency"][metric]["n"] for metric in (*V2V, *STAGES))]
    if not runs:
        return []
    order = (
        *CRITICAL_PATH[:4],
        "llm_first_token_ms",
        *CRITICAL_PATH[4:],
        "answer_head_start_ms",
        *reversed(V2V),
    )
    rows = []
    for metric in order:
        name = f"  ↳ of which {label(metric)}" if metric == "llm_first_token_ms" else label(metric)
        medians = [(run["latency"][metric]["p50"], run["latency"][V2V[0]]["p50"]) for run in runs]
        rows.append([name, *(f"{ms(part)} ({share(part, whole)})" for part, whole in medians)])
    header = ["median ms (share of caller v2v)", *(run["name"] for run in runs)]
    return [*table(header, rows), "Medians of the parts need not add up to the median of the whole.", ""]


def _concurrency_table(runs: Sequence[Mapping[str, Any]], metric: str, short: str) -> list[str]:
    """One row per run by concurrency; a `workers` column when the runs say where the agent ran
    (the echo sweep inline and in process mode), and the node's own send timing where known."""
    by_workers = any("workers" in run for run in runs)
    node_timing = any("node_send_lateness_ms" in run for run in runs)
    rows = []
    for run in sorted(runs, key=lambda found: (str(found.get("workers", "")), found["concurrency"] or 0)):
        stats, jitter, calls = run["latency"][metric], run["latency"]["jitter_p99_ms"], run["calls"]
        quantiles = [ms(stats[key]) for key in ("p50", "p95", "p99", "max")]
        counts = [str(run["concurrency"] or NONE), f"{calls['completed']}/{calls['n']}", str(stats["n"])]
        row = [str(run.get("workers") or NONE)] if by_workers else []
        row += [*counts, *quantiles, ms(jitter["p50"]), ms(jitter["max"]), str(calls["packets_lost"])]
        if node_timing:
            sent = mapping(run.get("node_send_lateness_ms"))
            row += [ms(number(sent.get("p99_ms"))), ms(number(sent.get("max_ms")))]
        rows.append(row)
    header = ["workers"] if by_workers else []
    header += ["concurrent calls", "completed", "n", f"{short} p50", "p95", "p99", "max"]
    header += ["jitter p99 (median call)", "(worst call)", "packets lost"]
    if node_timing:
        header += ["node send lateness p99", "max"]
    return table(header, rows)


def _capacity_table(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    rows = []
    for run in runs:
        step = mapping(run.get("capacity"))
        beyond = " (one beyond)" if run.get("beyond") else ""
        rows.append([
            f"{run.get('setup') or NONE}{beyond}", str(run.get("concurrency") or NONE),
            f"{step.get('completed', NONE)}/{step.get('calls', NONE)}", str(step.get("refused", NONE)),
            str(step.get("n", NONE)), ms(step.get("p50_ms")), ms(step.get("p95_ms")),
            ms(step.get("first_turns_p50_ms")), ms(step.get("last_turns_p50_ms")),
        ])  # fmt: skip
    header = ["setup", "calls", "completed", "refused", "turns", "v2v p50", "p95"]
    header += ["first 3 turns p50", "last 3 turns p50"]
    return table(header, rows)


def _floor_table(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    rows = [
        [run["name"] if q == "p50" else "", q, *(ms(run["floor"][column][q]) for column in FLOOR_COLUMNS)]
        for run in runs
        if any(run["floor"][column]["n"] for column in FLOOR_COLUMNS)
        for q in ("p50", "p95")
    ]
    return table(["run", "ms", *map(label, FLOOR_COLUMNS)], rows) if rows else []


def _wrong_turn_table(runs: Sequence[Mapping[str, Any]], overall: Mapping[str, Any]) -> list[str]:
    counted = [
        (run["name"], run["wrong_turn_endings"]) for run in runs if run["wrong_turn_endings"]["all"]["n"]
    ]
    if not counted:
        return []
    rows = [[name, rate_text(wrong["paused"]), rate_text(wrong["all"])] for name, wrong in counted]
    rows.append(["all runs", rate_text(overall["paused"]), rate_text(overall["all"])])
    return table(["run", "turns with a pause", "all turns"], rows)


def _scenario_section(scenario: str, runs: Sequence[Mapping[str, Any]]) -> list[str]:
    builders: dict[str, Callable[[], list[str]]] = {
        "sweep": lambda: _concurrency_table(runs, "voice_to_voice_ms", "caller v2v"),
        "echo_sweep": lambda: _concurrency_table(runs, "echo_delay_ms", "echo delay"),
        "floor": lambda: _floor_table(runs),
        "capacity": lambda: _capacity_table(runs),
    }
    body = builders.get(scenario, lambda: _latency_table(runs))()
    stages = _stage_table(runs) if scenario == "call" else []
    if stages:
        body += ["### Where the time goes", "", *stages]
    if not body:
        log.info("no data for the %s scenario, its table is skipped", scenario)
        body = ["No data.", ""]
    return [f"## {SCENARIO_TITLES.get(scenario, scenario)}", "", *body]


def markdown(results: Mapping[str, Any], summary: Mapping[str, Any], plots: Sequence[str] = ()) -> str:
    """The report as Markdown; `plots` are the PNG file names (next to summary.md) to link."""
    lines = ["# voxline bench", "", *_meta_lines(results)]
    lines += ["Times in ms; percentiles interpolate linearly; nulls are left out and n counts the rest.", ""]
    lines += _peer_lines(mapping(results.get("peer")))
    runs: list[Mapping[str, Any]] = list(summary.get("runs") or [])
    for scenario in dict.fromkeys([*SCENARIO_TITLES, *(str(run["scenario"]) for run in runs)]):
        selected = [run for run in runs if str(run["scenario"]) == scenario]
        if selected:
            lines += _scenario_section(scenario, selected)
    wrong = _wrong_turn_table(runs, mapping(summary.get("wrong_turn_endings")))
    if wrong:
        lines += ["## Wrong turn endings", "", "The agent took the turn before the caller had finished.", ""]
        lines += wrong
    lines += _agent_process_lines(results)
    if not runs:
        lines += ["No runs in the results.", ""]
    if plots:
        lines += ["## Plots", "", *(f"![{Path(name).stem}]({name})\n" for name in plots)]
    return "\n".join(lines).rstrip() + "\n"


def _peer_lines(peer: Mapping[str, Any]) -> list[str]:
    """voxline and a peer, called in turn by the same caller: the comparison in one table."""
    systems = mapping(peer.get("systems"))
    if not systems:
        return []
    rows = []
    for name, stats in systems.items():
        found = mapping(stats)
        turns = found.get("turns")
        keys = ("split_turns", "heard_mid_turn", "wrong_turn_endings")
        counts = [f"{found.get(key)}/{turns}" for key in keys]
        rows.append([
            str(name), ms(found.get("p50_ms")), ms(found.get("p95_ms")), str(found.get("voice_to_voice_n")),
            *counts, f"{found.get('calls_completed')}/{found.get('calls')}",
        ])  # fmt: skip
    header = [
        "system",
        "v2v p50 ms",
        "p95 ms",
        "n",
        "split turns",
        "heard mid-turn",
        "wrong endings",
        "calls",
    ]
    ratio = mapping(peer.get("ratio"))
    ratios = [f"{key} {number(value):.2f}×" for key, value in ratio.items() if number(value) is not None]
    return [
        f"## voxline and {peer.get('peer')}, side by side",
        "",
        *table(header, rows),
        f"{peer.get('peer')} voice-to-voice over voxline's: {', '.join(ratios) or NONE}. A split turn was "
        "taken as two or more user turns, or taken before the caller's last word.",
        "",
    ]


def _one_decimal(value: float | None) -> str:
    return NONE if value is None else f"{value:.1f}"


def _agent_process_lines(results: Mapping[str, Any]) -> list[str]:
    """The agent process after each run: its event loop's lateness (it paces every call's audio)
    over the last minute, and its memory."""
    rows = []
    for run in records(results, "runs"):
        lag, memory = mapping(run.get("server_loop_lag_ms")), mapping(run.get("server_memory_mib"))
        if not lag and not memory:
            continue
        rows.append([
            str(run.get("name", "?")),
            *(_one_decimal(number(lag.get(key))) for key in ("p50_ms", "p99_ms", "max_ms")),
            *(ms(number(memory.get(key))) for key in ("rss_mib", "peak_rss_mib")),
        ])  # fmt: skip
    if not rows:
        return []
    header = ["after run", "loop lag p50", "p99", "max (ms, last minute)", "RSS MiB", "peak RSS MiB"]
    note = (
        "Loop lag: the server's event loop. Memory: its whole process tree (a process-mode node's "
        "jobs, speech server and llama-server included; shared pages count once per process)."
    )
    return ["## The agent process", "", note, "", *table(header, rows)]


def write_report(results: Mapping[str, Any], out_dir: Path) -> None:
    """Write summary.json, the plots that have data, and summary.md into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(results)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    written = _write_plots(results, out_dir)
    (out_dir / "summary.md").write_text(markdown(results, summary, [path.name for path in written]))


def _write_plots(results: Mapping[str, Any], out_dir: Path) -> list[Path]:
    try:
        from voxline.bench import plots  # matplotlib is the optional "bench" extra
    except ImportError as error:
        log.warning("no plots: %s (pip install 'voxline[bench]')", error)
        return []
    written = []
    for name, draw in plots.PLOTS.items():
        # A plotting bug must not cost the summary of a bench that took an hour to run.
        try:
            path = draw(results, out_dir / name)
        except Exception:
            log.exception("plot %s failed", name)
            continue
        if path is not None:
            written.append(path)
    return written
