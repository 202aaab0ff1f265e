"""`voxline eval` on the real CPU stack: a few scenarios in text mode, one in voice mode.

These check the harness on the real models (the loop ran, the checks were judged, the numbers were
measured), not how good the model is: that is what the suites' pass rates report. The keypad
scenarios are the exception: the menu decides them, so they must pass whatever the model says.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from voxline.cli import app
from voxline.evals.suite import EvalOptions, run_evals

SUITES = Path(__file__).parents[2] / "examples" / "evals"

pytestmark = pytest.mark.slow


async def test_text_mode_runs_the_call_loop_on_the_real_model(tmp_path: Path) -> None:
    options = EvalOptions(
        paths=[SUITES / "bank", SUITES / "bank-ivr"],
        only=["cards/lost-debit-card", "service/goodbye", "menu/keys-operator", "menu/keys-lost-card"],
        out=tmp_path,
    )
    summary = await run_evals(options)
    results = {r["id"]: r for r in summary["results"]}
    assert set(results) == {
        "cards/lost-debit-card",
        "service/goodbye",
        "menu/keys-operator",
        "menu/keys-lost-card",
    }
    assert summary["scenarios"] == 4 and summary["mode"] == "text"
    for result in results.values():
        assert not result["error"], result
        assert all(t["agent"].strip() for t in result["turns"]), result  # never silence
    # the menu decides these two: the caller pressed keys, the call went to a colleague
    assert results["menu/keys-operator"]["passed"], results["menu/keys-operator"]
    assert results["menu/keys-operator"]["transferred_to"] == "200"
    assert results["menu/keys-lost-card"]["passed"], results["menu/keys-lost-card"]
    # the model answered the two spoken scenarios, and its first sentence was timed
    spoken = [t for r in ("cards/lost-debit-card", "service/goodbye") for t in results[r]["turns"]]
    assert all(t["latency_ms"] and t["latency_ms"] > 0 for t in spoken)
    assert summary["latency_ms"]["turns"] == 2 and summary["latency_ms"]["p50"] > 0
    written = json.loads((tmp_path / "eval.json").read_text())
    assert written["passed"] == summary["passed"]
    markdown = (tmp_path / "eval.md").read_text()
    assert "cards/lost-debit-card" in markdown and "caller: Hi, I've lost my debit card" in markdown


async def test_voice_mode_plays_a_rendered_caller_through_simulate(tmp_path: Path) -> None:
    options = EvalOptions(paths=[SUITES / "bank"], only=["service/goodbye"], mode="voice", out=tmp_path)
    summary = await run_evals(options)
    (result,) = summary["results"]
    assert not result["skipped"] and not result["error"], result
    (turn,) = result["turns"]
    heard = turn["caller"].lower()
    assert "thanks" in heard or "goodbye" in heard, heard  # the agent's STT heard the rendered caller
    assert turn["agent"].strip()
    assert turn["latency_ms"] is not None and 0 < turn["latency_ms"] < 10_000  # caller-side voice-to-voice
    assert summary["latency_ms"]["what"] == "caller voice-to-voice"
    assert list((tmp_path / "caller-audio").glob("*.wav")), "the caller turn was rendered"
    assert (tmp_path / "calls" / "service__goodbye.wav").exists()  # the stereo recording of the call


def test_the_cli_prints_the_pass_rate_and_fails_below_the_minimum(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "eval",
            str(SUITES / "bank-ivr"),
            "--only",
            "menu/keys-operator",
            "--out",
            str(tmp_path),
            "--min-pass-rate",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "pass menu/keys-operator" in result.output
    assert "1/1 passed (100%)" in result.output
    assert (tmp_path / "eval.md").exists()
