"""`voxline eval` fails fast and clearly on bad input, before any model loads."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from voxline.cli import app


def invoke(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["eval", *(str(a) for a in args)])
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


def test_an_invalid_scenario_file_names_the_file_and_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("scenarios: [{name: a, turns: [{say: hi, expect: {max_sentence: 2}}]}]")
    code, output = invoke(bad)
    assert code == 2
    assert "bad.yaml" in output and "max_sentence" in output


def test_a_missing_path_and_an_unknown_mode_are_errors(tmp_path: Path) -> None:
    code, output = invoke(tmp_path / "nowhere")
    assert code == 2 and "nowhere" in output
    code, output = invoke(tmp_path, "--mode", "video")
    assert code == 2 and "--mode" in output


def test_a_selection_that_matches_nothing_is_an_error(tmp_path: Path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text("scenarios: [{name: a, turns: [{say: hi}]}]")
    code, output = invoke(suite, "--only", "zzz")
    assert code == 2 and "no scenario matches" in output
