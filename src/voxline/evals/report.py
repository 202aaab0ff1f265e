"""The eval report: pass rate, failures by check, latency; as JSON and as Markdown."""

from __future__ import annotations

import collections
import json
import statistics
from pathlib import Path
from typing import Any

from voxline.evals.checks import TurnOutcome
from voxline.evals.run import ScenarioResult


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[index], 1)


def summarize(results: list[ScenarioResult], meta: dict[str, Any]) -> dict[str, Any]:
    ran = [r for r in results if not r.skipped]
    passed = [r for r in ran if r.passed]
    by_check: collections.Counter[str] = collections.Counter()
    scenarios_by_check: dict[str, set[str]] = collections.defaultdict(set)
    for r in ran:
        for c in [*r.checks, *r.judged]:
            if not c.passed:
                by_check[c.name] += 1
                scenarios_by_check[c.name].add(r.id)
    latencies = [t.latency_ms for r in ran for t in r.outcome.turns if t.latency_ms is not None]
    tags: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for r in ran:
        for tag in r.tags:
            tags[tag][0] += r.passed
            tags[tag][1] += 1
    mode = ran[0].mode if ran else (results[0].mode if results else "text")
    runs: dict[str, list[bool]] = collections.defaultdict(list)
    for r in ran:
        runs[r.id].append(r.passed)
    unstable = {i: f"{sum(p)}/{len(p)}" for i, p in runs.items() if len(p) > 1 and 0 < sum(p) < len(p)}
    return {
        **meta,
        "mode": mode,
        "scenarios": len(ran),
        "skipped": len(results) - len(ran),
        "passed": len(passed),
        "pass_rate": round(len(passed) / len(ran), 3) if ran else None,
        "failures_by_check": {
            name: {"failures": n, "scenarios": len(scenarios_by_check[name])}
            for name, n in by_check.most_common()
        },
        "unstable": unstable,
        "by_tag": {tag: {"passed": p, "scenarios": n} for tag, (p, n) in sorted(tags.items())},
        "latency_ms": {
            "what": "first sentence from the model" if mode == "text" else "caller voice-to-voice",
            "turns": len(latencies),
            "p50": _percentile(latencies, 0.5),
            "p90": _percentile(latencies, 0.9),
            "mean": round(statistics.fmean(latencies), 1) if latencies else None,
        },
        **({"stages_ms": stage_breakdown(ran)} if mode == "voice" else {}),
        "results": [r.as_dict() for r in results],
    }


_STAGE_COLUMNS = (
    ("endpointing_ms", "end-of-speech wait"),
    ("stt_ms", "STT"),
    ("llm_first_token_ms", "LLM first token"),
    ("llm_first_sentence_ms", "LLM first sentence"),
    ("tts_first_audio_ms", "TTS first audio"),
    ("answer_head_start_ms", "answer begun early by"),
)


def stage_breakdown(ran: list[ScenarioResult]) -> dict[str, dict[str, Any]]:
    """Voice mode: p50 of each stage and of voice-to-voice (caller side), for the turns a route
    answered (no model), those the model answered, and all; where the time of a turn goes."""
    groups: dict[str, list[TurnOutcome]] = {"all": [], "routed": [], "model": []}
    for r in ran:
        for t in r.outcome.turns:
            if not t.stages:
                continue
            groups["all"].append(t)
            if t.route:
                groups["routed"].append(t)
            elif t.stages.get("llm_first_token_ms") is not None:
                groups["model"].append(t)
    out: dict[str, dict[str, Any]] = {}
    for name, turns in groups.items():
        v2v = [t.latency_ms for t in turns if t.latency_ms is not None]
        row: dict[str, Any] = {
            "turns": len(turns),
            "p50": _percentile(v2v, 0.5),
            "p90": _percentile(v2v, 0.9),
        }
        for key, _ in _STAGE_COLUMNS:
            values = [v for t in turns if (v := t.stages.get(key)) is not None]
            row[key] = _percentile(values, 0.5)
        out[name] = row
    return out


def to_markdown(summary: dict[str, Any]) -> str:
    rate = summary["pass_rate"]
    lat = summary["latency_ms"]
    lines = [
        f"# voxline eval: {summary.get('agent', '')}",
        "",
        f"- mode: {summary['mode']}; model: {summary.get('model', '?')}",
        f"- passed: **{summary['passed']}/{summary['scenarios']}**"
        + (f" ({rate:.0%})" if rate is not None else "")
        + (f"; {summary['skipped']} skipped" if summary["skipped"] else ""),
        f"- latency ({lat['what']}, {lat['turns']} turns): p50 {lat['p50']} ms, p90 {lat['p90']} ms",
    ]
    if summary.get("stages_ms"):
        heads = " | ".join(label for _, label in _STAGE_COLUMNS)
        lines += ["", f"| turns | n | voice-to-voice p50 / p90 | {heads} (p50, ms) |"]
        lines.append("|---|---:|---|" + "---:|" * len(_STAGE_COLUMNS))
        for name, row in summary["stages_ms"].items():
            cells = " | ".join(str(row[key]) for key, _ in _STAGE_COLUMNS)
            lines.append(f"| {name} | {row['turns']} | {row['p50']} / {row['p90']} | {cells} |")
        lines.append("")
    if summary.get("command"):
        lines.append(f"- command: `{summary['command']}`")
    if summary.get("repeat", 1) > 1:
        lines.append(f"- each scenario run {summary['repeat']} times; counts are over runs")
    if summary.get("unstable"):
        lines += ["", "## Passed in some runs only", ""]
        lines += [f"- `{i}`: {n}" for i, n in summary["unstable"].items()]
    if summary["failures_by_check"]:
        lines += ["", "## Failures by check", "", "| check | failures | scenarios |", "|---|---:|---:|"]
        lines += [
            f"| {name} | {v['failures']} | {v['scenarios']} |"
            for name, v in summary["failures_by_check"].items()
        ]
    if summary["by_tag"]:
        lines += ["", "## By tag", "", "| tag | passed |", "|---|---:|"]
        lines += [f"| {tag} | {v['passed']}/{v['scenarios']} |" for tag, v in summary["by_tag"].items()]
    lines += ["", "## Scenarios", ""]
    for r in summary["results"]:
        mark = "skipped" if r["skipped"] else ("PASS" if r["passed"] else "FAIL")
        lines.append(f"### {mark} `{r['id']}`" + (f" ({r['skipped']})" if r["skipped"] else ""))
        if r["skipped"]:
            continue
        for f in r["failed"]:
            where = f"turn {f['turn']}" if f["turn"] else "call"
            lines.append(f"- **{f['name']}** ({where}): {_one_line(f['detail'])}")
        for i, t in enumerate(r["turns"], start=1):
            tools = " ".join(f"`{c['name']}{c['arguments'] or ''}`" for c in t["tools"])
            lines.append(f"  {i}. caller: {_one_line(t['caller'])}")
            lines.append(f"     agent: {_one_line(t['agent']) or '(silence)'} {tools}".rstrip())
        if r["end_reason"]:
            lines.append(
                f"  - end: {r['end_reason']}" + (f" → {r['transferred_to']}" if r["transferred_to"] else "")
            )
        lines.append("")
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def write_report(summary: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "eval.json"
    md_path = out_dir / "eval.md"
    json_path.write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    md_path.write_text(to_markdown(summary), encoding="utf-8")
    return json_path, md_path
