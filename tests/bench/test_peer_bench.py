"""`voxline bench --peer pipecat` end to end, on a tiny setting: one call each, two prompts.

Real processes and real models on both sides: voxline serve, and Pipecat 1.14 (in its own
environment, which setup installs with `python -m voxline.bench.peers.pipecat_env`) behind
llama-cpp-python's OpenAI-compatible server. Numbers are not asserted (they depend on the
machine); that both systems were called alternately, heard the caller and answered, is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from voxline.bench.utterances import caller_utterances, word_recall

PROMPTS = 2


@pytest.fixture(scope="module")
def peer_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench-peer")
    done = subprocess.run(
        # One LLM thread each: on a busy 2-core machine two threads wait on each other for most of a
        # token, and Pipecat (which speaks whole sentences) would outlast the caller's patience.
        [sys.executable, "-m", "voxline.cli", "bench", "--peer", "pipecat", "--calls", "1",
         "--turns", str(PROMPTS), "--llm-threads", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def _results(out: Path) -> dict[str, Any]:
    results: dict[str, Any] = json.loads((out / "results.json").read_text())
    return results


@pytest.mark.slow
def test_both_systems_were_called_alternately_and_answered(peer_out: Path) -> None:
    results = _results(peer_out)
    runs = {run["system"]: run for run in results["runs"]}
    assert set(runs) == {"voxline", "pipecat"}
    assert results["meta"]["versions"]["pipecat"] == "1.14.0"
    expected = [u.name for u in caller_utterances(PROMPTS)]
    assert results["meta"]["llm_threads"] == 1
    for name, run in runs.items():
        assert [c["completed"] for c in run["calls"]] == [True], (name, run["calls"])
        assert [t["utterance"] for t in run["turns"]] == expected, name
        # the agent heard the caller (its user_text events carry the prompt's words) and answered
        heard = [t for t in run["turns"] if word_recall(t["expected_text"], t["user_text"]) >= 0.6]
        assert heard, (name, [t["user_text"] for t in run["turns"]])
        assert any(t["voice_to_voice_ms"] is not None and t["agent_text"] for t in heard), (
            name,
            run["turns"],
        )
        assert all(
            isinstance(t["split"], bool) and isinstance(t["heard_mid_turn"], bool) for t in run["turns"]
        )


@pytest.mark.slow
def test_comparison_and_summary(peer_out: Path) -> None:
    peer = _results(peer_out)["peer"]
    assert peer["peer"] == "pipecat"
    for stats in peer["systems"].values():
        assert stats["turns"] == PROMPTS and stats["p50_ms"] is not None and stats["p50_ms"] > 0
        assert stats["voice_to_voice_n"] + stats["no_reply"] == PROMPTS
    expected = peer["systems"]["pipecat"]["p50_ms"] / peer["systems"]["voxline"]["p50_ms"]
    assert peer["ratio"]["p50"] == pytest.approx(expected, abs=0.01)
    summary = (peer_out / "summary.md").read_text()
    assert "## voxline and pipecat, side by side" in summary
    assert (peer_out / "pipecat-bot.log").exists() and (peer_out / "pipecat-llm-server.log").exists()
