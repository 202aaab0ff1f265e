"""The node's capacity comes from what `voxline bench --scenarios capacity` measured on this machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from voxline.agent.config import AgentConfig, LLMConfig
from voxline.node.config import LoadConfig
from voxline.node.load import NodeLoad, default_capacity_calls
from voxline.node.measured import capacity_file, measured_capacity, record_capacity


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VOXLINE_CAPACITY_FILE", str(tmp_path / "capacity.json"))
    return tmp_path


def test_a_recorded_verdict_sets_the_capacity_for_that_agent_and_mode() -> None:
    agent = AgentConfig()
    assert measured_capacity(agent, "process") is None  # never measured
    record_capacity(agent, "process", 3, {"setup": "after"})
    record_capacity(agent, "inline", 0, {"setup": "before"})
    assert measured_capacity(agent, "process") == 3
    assert measured_capacity(agent, "inline") == 1  # held none within the target: one call at a time
    other_model = AgentConfig(llm=LLMConfig(model="qwen2.5-1.5b"))
    assert measured_capacity(other_model, "process") is None  # another model was not measured
    entries = json.loads(capacity_file().read_text())
    assert sorted(e["setup"] for e in entries.values()) == ["after", "before"]


def test_the_node_uses_the_measured_figure_unless_its_file_sets_one() -> None:
    assert NodeLoad.from_config(LoadConfig(), measured_calls=1).capacity_calls == 1
    assert NodeLoad.from_config(LoadConfig(capacity_calls=5), measured_calls=1).capacity_calls == 5
    assert NodeLoad.from_config(LoadConfig()).capacity_calls == default_capacity_calls()


def test_a_broken_file_is_not_a_measurement() -> None:
    capacity_file().write_text("{not json")
    assert measured_capacity(AgentConfig(), "process") is None
    record_capacity(AgentConfig(), "process", 2, {})  # and is replaced by the next verdict
    assert measured_capacity(AgentConfig(), "process") == 2
