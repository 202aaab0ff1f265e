"""`voxline bench --echo-workers`: where the echo sweep's agent runs, and the process-mode node's settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from voxline.agent.config import load_agent
from voxline.bench.runner import BenchOptions, echo_agent_file, echo_node_args
from voxline.cli import _echo_workers, app


def test_echo_workers_take_inline_and_or_process() -> None:
    assert _echo_workers("inline") == ("inline",)
    assert _echo_workers("process, inline,process") == ("process", "inline")
    assert BenchOptions().echo_workers == ("inline",)  # unchanged unless asked


@pytest.mark.parametrize("text", ["", "thread", "inline,gpu"])
def test_other_echo_workers_are_refused_before_anything_runs(text: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["bench", "--scenarios", "echo_sweep", "--echo-workers", text, "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "--echo-workers takes inline and/or process" in result.output
    assert not (tmp_path / "results.json").exists()


def test_the_process_node_keeps_a_warm_job_per_call_up_to_the_pool_bound() -> None:
    assert echo_node_args(10) == ["--workers", "process", "--idle-processes", "10", "--max-calls", "50"]
    assert echo_node_args(150) == ["--workers", "process", "--idle-processes", "64", "--max-calls", "300"]


def test_the_echo_agent_file_is_media_only(tmp_path: Path) -> None:
    agent = load_agent(echo_agent_file(tmp_path))
    assert agent.media_only and agent.name == "echo"
