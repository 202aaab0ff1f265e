"""Scenario files: every example suite is valid, and the schema says clearly what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxline.agent.config import load_agent
from voxline.evals.scenario import ScenarioError, load_scenarios, load_suite

ROOT = Path(__file__).parents[2]
SUITES = ROOT / "examples" / "evals"


def test_every_example_agent_has_a_valid_suite() -> None:
    agents = sorted(p.stem for p in (ROOT / "examples" / "agents").glob("*.yaml"))
    assert sorted(p.name for p in SUITES.iterdir() if p.is_dir()) == agents
    for name in agents:
        scenarios = load_scenarios([SUITES / name])
        assert scenarios, name
        for s in scenarios:
            assert (
                s.agent_file is not None
                and s.agent_file.resolve() == (ROOT / "examples" / "agents" / f"{name}.yaml").resolve()
            )
            load_agent(s.agent_file)


def test_the_bank_suite_covers_what_a_bank_line_hears() -> None:
    scenarios = load_scenarios([SUITES / "bank"])
    assert len(scenarios) >= 40
    tags = {t for s in scenarios for t in s.scenario.tags}
    wanted = {"lost-card", "delivery", "balance", "payments", "dispute", "open-account", "hours", "transfer",
              "angry", "off-topic", "wrong-number", "card-number", "goodbye", "repeat"}  # fmt: skip
    assert wanted <= tags, wanted - tags


def test_hindi_and_marathi_callers_for_the_multilingual_agents() -> None:
    for name in ("hindi", "bilingual"):
        scenarios = load_scenarios([SUITES / name])
        languages = {t.language for s in scenarios for t in s.scenario.turns}
        assert {"mr"} <= languages, name
        assert any(
            "\u0900" <= c <= "\u097f" for s in scenarios for t in s.scenario.turns for c in t.say or ""
        )


def test_suite_defaults_apply_and_lists_add_up(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        """
x-offer: &offer {any_of: [{tool: transfer_call}]}
defaults: {max_sentences: 2, not_mention: [PIN]}
scenarios:
  - name: one
    turns:
      - say: hi
        expect: {max_sentences: 3, not_mention: [password], <<: *offer}
      - keys: "1"
        expect: {max_sentences: null}
"""
    )
    first, keys = load_suite(path)[0].scenario.turns
    assert first.expect.max_sentences == 3
    assert first.expect.not_mention == ["PIN", "password"]
    assert first.expect.any_of[0].tool == "transfer_call"
    assert keys.expect.max_sentences is None and keys.keys == "1"


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("scenarios: [{name: a, turns: [{expect: {}}]}]", "a turn is `say`"),
        ("scenarios: [{name: a, turns: [{say: hi, expect: {mentions: [x]}}]}]", "mentions"),
        ("scenarios: [{name: a, turns: [{say: hi}]}, {name: a, turns: [{say: hi}]}]", "used twice"),
        ("scenarios: [{name: Bad Name, turns: [{say: hi}]}]", "name"),
    ],
)
def test_invalid_files_name_the_problem(tmp_path: Path, text: str, complaint: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=complaint):
        load_suite(path)
