"""`voxline serve --node` and `voxline call --node --agent-name`: a wrong node file or agent name fails
at once, with the file and the names, before any model loads."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from voxline.cli import app

NODE = Path(__file__).resolve().parents[2] / "examples" / "node.yaml"


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_call_with_an_agent_the_node_does_not_have_fails_naming_its_agents() -> None:
    code, out = invoke("call", "sip:x@127.0.0.1:5999", "--node", str(NODE), "--agent-name", "collections")
    assert code == 2 and "no agent 'collections'" in out and "bank, hindi, bank-ivr" in out


def test_agent_name_needs_a_node_and_node_excludes_agent(tmp_path: Path) -> None:
    code, out = invoke("call", "sip:x@127.0.0.1:5999", "--agent-name", "hindi")
    assert code == 2 and "--node" in out
    code, out = invoke("serve", "--node", str(NODE), "--agent", str(NODE))
    assert code == 2 and "not both" in out


def test_serve_with_a_bad_node_file_fails_before_loading_models(tmp_path: Path) -> None:
    node = tmp_path / "node.yaml"
    node.write_text("agents:\n  bank: nowhere.yaml\n")
    code, out = invoke("serve", "--node", str(node), "--port", "1")
    assert code == 2 and "agent 'bank'" in out and "nowhere.yaml" in out
    node.write_text("agents: {bank: nowhere.yaml}\ndispatch: {default: hindi}\n")
    code, out = invoke("serve", "--node", str(node), "--port", "1")
    assert code == 2 and "dispatch.default" in out
