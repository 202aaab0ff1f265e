"""`voxline serve --node` and `voxline drain` with bad input: a short error and status 2, before any
model loads."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from voxline.cli import app


@pytest.fixture(autouse=True)
def _no_models(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("models would be loaded")

    monkeypatch.setattr("voxline.runtime.load_engines", refuse)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_a_bad_node_file_is_refused_before_anything_loads(tmp_path: Path) -> None:
    node = tmp_path / "node.yaml"
    node.write_text("load:\n  threshold: 1.5\n")
    code, out = run("serve", "--node", str(node), "--port", "1")
    assert code == 2 and "node file" in out and "threshold" in out
    node.write_text("load:\n  load_fnc: no.such.module.fn\n")
    code, out = run("serve", "--node", str(node), "--port", "1")
    assert code == 2 and "cannot be imported" in out
    code, out = run("serve", "--node", str(tmp_path / "missing.yaml"), "--port", "1")
    assert code == 2 and "node file not found" in out


def test_drain_needs_a_live_server_it_may_signal(tmp_path: Path) -> None:
    code, out = run("drain")
    assert code == 2 and "--pid or its --pid-file" in out
    code, out = run("drain", "--pid-file", str(tmp_path / "none.pid"))
    assert code == 2 and "cannot read a pid" in out
    code, out = run("drain", "--pid", "1")
    assert code == 2 and "refusing to signal pid 1" in out
    code, out = run("drain", "--pid", "999999999")
    assert code == 2 and "no process 999999999" in out
