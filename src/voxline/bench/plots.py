"""PNG plots of a `voxline bench` results dict.

Figures are built with matplotlib's object API and rendered by Agg straight to a file: no pyplot, so
no display is ever needed, no global figure state is touched and nothing leaks between plots.
Each function returns the path it wrote, or None (logged) when the results hold nothing to draw.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from voxline.bench.report import CRITICAL_PATH, label, metric_values, number, records, runs_of, turn_metric

log = logging.getLogger(__name__)

V2V_TARGET_MS = 1000.0
V2V_P95_TARGET_MS = 1500.0
BARGE_IN_TARGET_MS = 150.0
WATERFALL_MAX_ROWS = 40
COLOURS = ("#a6cee3", "#8da0cb", "#66c2a5", "#fc8d62", "#e78ac3", "#b3b3b3")
SEGMENTS = tuple(zip(CRITICAL_PATH, COLOURS, strict=True))

Results = Mapping[str, Any]


def _save(figure: Figure, path: Path) -> Path:
    FigureCanvasAgg(figure)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path


def _run_label(run: Mapping[str, Any]) -> str:
    return str(run.get("name") or run.get("scenario") or "?")


def _skip(plot: str, why: str) -> None:
    log.info("%s skipped: %s", plot, why)


def _label_axes(axes: Axes, title: str, xlabel: str) -> None:
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("ms")
    axes.set_ylim(bottom=0)
    axes.legend(fontsize=8)


def waterfall(results: Results, path: Path) -> Path | None:
    """One row per call-run turn: the agent's critical path stacked, the caller-side v2v marked."""
    rows: list[tuple[str, list[float | None], float | None, float | None]] = []
    for run in runs_of(results, "call"):
        for turn in records(run, "turns"):
            segments = [turn_metric(turn, key) for key, _ in SEGMENTS]
            v2v = number(turn.get("voice_to_voice_ms"))
            if v2v is not None or any(s is not None for s in segments):
                name = f"{_run_label(run)} c{turn.get('call', '?')} t{turn.get('turn', '?')}"
                rows.append((name, segments, v2v, turn_metric(turn, "answer_head_start_ms")))
    if not rows:
        _skip("waterfall", "no call-run turn has a stage or voice-to-voice time")
        return None
    total = len(rows)
    rows = rows[:WATERFALL_MAX_ROWS]
    figure = Figure(figsize=(11, 2.0 + 0.28 * len(rows)))
    axes = figure.add_subplot()
    y = np.arange(len(rows))
    # A timeline, not a plain stack: an answer begun on the caller's pause (answer_head_start_ms)
    # starts its LLM and TTS bars that much before the turn was confirmed, over the endpointing bar.
    starts = np.zeros((len(rows), len(SEGMENTS)))  # ms after the caller's end of speech
    widths = np.zeros((len(rows), len(SEGMENTS)))
    for i, (_, segments, v2v, head_start) in enumerate(rows):
        lag, wait, stt, llm, tts, _overhead = (s or 0.0 for s in segments)
        confirmed = lag + wait + stt
        answer_at = confirmed - (head_start or 0.0)
        starts[i, :5] = (0.0, lag, lag + wait, answer_at, answer_at + llm)
        widths[i, :5] = (lag, wait, stt, llm, tts)
        audio_ready = max(confirmed, answer_at + llm + tts)
        starts[i, 5], widths[i, 5] = audio_ready, max(0.0, (v2v or audio_ready) - audio_ready)
    for index, (key, colour) in enumerate(SEGMENTS):
        # Two lanes per turn, since the answer may overlap the wait: the wait for the turn to be
        # confirmed on top, the answer's LLM and TTS below; the overhead after both spans the row.
        lane = {3: 0.18, 4: 0.18, 5: 0.0}.get(index, -0.18)
        height = 0.7 if index == 5 else 0.36
        axes.barh(
            y + lane, widths[:, index], left=starts[:, index], color=colour, label=label(key), height=height
        )
    marked = [(i, row[2]) for i, row in enumerate(rows) if row[2] is not None]
    if marked:
        axes.scatter(
            [v for _, v in marked],
            [i for i, _ in marked],
            marker="D",
            s=22,
            color="black",
            zorder=3,
            label="voice-to-voice (caller)",
        )
    axes.axvline(
        V2V_TARGET_MS, color="red", linestyle="--", linewidth=1, label=f"target {V2V_TARGET_MS:.0f} ms"
    )
    axes.set_yticks(y, [row[0] for row in rows], fontsize=7)
    axes.invert_yaxis()
    axes.set_xlabel("ms after the caller stopped speaking")
    shown = f" (first {len(rows)} of {total})" if total > len(rows) else ""
    axes.set_title(f"Per-turn latency, agent critical path{shown}")
    # Beside the axes, where it cannot hide the longest bars.
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(figure, path)


def v2v_cdf(results: Results, path: Path) -> Path | None:
    """Empirical CDF of caller-side voice-to-voice, one line per call, pauses or sweep run."""
    lines = [
        (_run_label(run), sorted(metric_values(run, "voice_to_voice_ms")))
        for run in runs_of(results, "call", "pauses", "sweep")
    ]
    lines = [(name, values) for name, values in lines if values]
    if not lines:
        _skip("v2v_cdf", "no call, pauses or sweep run has a voice-to-voice time")
        return None
    figure = Figure(figsize=(8, 5))
    axes = figure.add_subplot()
    for name, values in lines:
        # Starting at 0 draws the first step too, so even a one-turn run shows up.
        fraction = [0.0, *(np.arange(1, len(values) + 1) / len(values))]
        axes.step([values[0], *values], fraction, where="post", label=f"{name} (n={len(values)})")
    axes.axvline(V2V_TARGET_MS, color="red", linestyle="--", linewidth=1, label="p50 target")
    axes.axvline(V2V_P95_TARGET_MS, color="darkred", linestyle=":", linewidth=1, label="p95 target")
    for level in (0.5, 0.95):
        axes.axhline(level, color="grey", linewidth=0.5)
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("voice-to-voice, caller side (ms)")
    axes.set_ylabel("fraction of turns")
    axes.set_title("Voice-to-voice CDF")
    axes.legend(fontsize=7, loc="lower right")
    return _save(figure, path)


def _by_concurrency(runs: Sequence[Mapping[str, Any]], metric: str) -> dict[int, list[float]]:
    """Values of a metric pooled over the runs at each concurrency."""
    pooled: dict[int, list[float]] = {}
    for run in runs:
        level = run.get("concurrency")
        if isinstance(level, int) and not isinstance(level, bool) and level > 0:
            pooled.setdefault(level, []).extend(metric_values(run, metric))
    return {level: values for level, values in sorted(pooled.items()) if values}


def _percentile_lines(axes: Axes, pooled: Mapping[int, list[float]], lines: Mapping[int, str]) -> None:
    """One line per percentile (key) with its legend label (value), and a tick at each concurrency."""
    levels = list(pooled)
    for q, name in lines.items():
        axes.plot(levels, [float(np.percentile(pooled[c], q)) for c in levels], marker="o", label=name)
    axes.set_xticks(levels, [str(level) for level in levels])
    axes.minorticks_off()


def _no_data(axes: Axes, title: str) -> None:
    axes.set_title(title)
    axes.text(0.5, 0.5, "no data", ha="center", va="center", transform=axes.transAxes, color="grey")


def concurrency(results: Results, path: Path) -> Path | None:
    """Left: real-model sweep v2v vs calls. Right: echo sweep echo delay and jitter vs calls (log x)."""
    sweep = _by_concurrency(runs_of(results, "sweep"), "voice_to_voice_ms")
    echo_runs = runs_of(results, "echo_sweep")
    echo = _by_concurrency(echo_runs, "echo_delay_ms")
    jitter = _by_concurrency(echo_runs, "jitter_p99_ms")
    if not (sweep or echo or jitter):
        _skip("concurrency", "no sweep or echo_sweep run has data")
        return None
    figure = Figure(figsize=(12, 4.5))
    left, right = figure.subplots(1, 2)
    if sweep:
        _percentile_lines(left, sweep, {50: "v2v p50", 95: "v2v p95"})
        left.axhline(V2V_TARGET_MS, color="red", linestyle="--", linewidth=1, label="target")
        _label_axes(left, "Real models: voice-to-voice vs concurrent calls", "concurrent calls")
    else:
        _no_data(left, "Real models: voice-to-voice")
    if echo or jitter:
        if echo:
            _percentile_lines(right, echo, {50: "echo delay p50", 99: "echo delay p99"})
        if jitter:
            # Each call reports its own p99; the median call shows the typical one.
            _percentile_lines(right, jitter, {50: "jitter p99 (median call)"})
        right.set_xscale("log")
        levels = sorted({*echo, *jitter})
        right.set_xticks(levels, [str(level) for level in levels])
        right.minorticks_off()
        _label_axes(right, "Echo agent: media path vs concurrent calls", "concurrent calls (log)")
    else:
        _no_data(right, "Echo agent: media path")
    return _save(figure, path)


def barge_in(results: Results, path: Path) -> Path | None:
    """Histogram of how long the agent kept talking after the caller cut in, per side."""
    every = runs_of(results)
    caller = [v for run in every for v in metric_values(run, "barge_in_stop_ms")]
    agent = [v for run in every for v in metric_values(run, "agent_barge_in_stop_ms")]
    if not caller and not agent:
        _skip("barge_in", "no turn has a barge-in stop time")
        return None
    figure = Figure(figsize=(8, 4.5))
    axes = figure.add_subplot()
    top = max([*caller, *agent, BARGE_IN_TARGET_MS]) * 1.05
    bins = [float(edge) for edge in np.linspace(0, top, 30)]
    for values, key in ((caller, "barge_in_stop_ms"), (agent, "agent_barge_in_stop_ms")):
        if values:
            axes.hist(values, bins=bins, alpha=0.6, label=f"{label(key)} (n={len(values)})")
    axes.axvline(
        BARGE_IN_TARGET_MS,
        color="red",
        linestyle="--",
        linewidth=1,
        label=f"target {BARGE_IN_TARGET_MS:.0f} ms",
    )
    axes.set_xlabel("caller speech onset → agent audio stops (ms)")
    axes.set_ylabel("barge-ins")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title("Barge-in stop time")
    axes.legend(fontsize=8)
    return _save(figure, path)


PLOTS: dict[str, Callable[[Results, Path], Path | None]] = {
    "waterfall.png": waterfall,
    "v2v_cdf.png": v2v_cdf,
    "concurrency.png": concurrency,
    "barge_in.png": barge_in,
}
"""Every plot by the file name write_report gives it."""
