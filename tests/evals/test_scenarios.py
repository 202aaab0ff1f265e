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


def test_voice_mode_reads_turns_tools_and_latency_from_the_simulated_call(tmp_path: Path) -> None:
    from voxline.evals.run import voice_outcome, voice_skip_reason

    result = {
        "end_reason": "transferred",
        "transferred_to": "sip:desk@pbx",
        "turns": [
            {"index": 0, "user_text": "", "agent_text": "Hello.", "language": "en"},
            {
                "index": 1,
                "user_text": "I lost my card.",
                "agent_text": "A colleague can help.",
                "language": "en",
            },
            {"index": 2, "user_text": "Yes please.", "agent_text": "Transferring you now.", "language": "en"},
        ],
        "caller_timeline": [{"voice_to_voice_ms": 910.0}, {"voice_to_voice_ms": 1020.5}],
    }
    events = [{"type": "tool_call", "turn": 2, "name": "transfer_call", "arguments": {"department": "cards"}}]
    outcome = voice_outcome(result, events, None)
    first, second = outcome.turns
    assert (first.caller, first.said, first.tool_calls, first.latency_ms) == (
        "I lost my card.", "A colleague can help.", [], 910.0
    )  # fmt: skip
    assert second.tool_calls == [{"name": "transfer_call", "arguments": {"department": "cards"}}]
    assert second.transferred and second.ended and not first.ended
    assert first.route == "" and first.stages == {}
    suite = tmp_path / "s.yaml"
    suite.write_text(
        "scenarios:\n"
        "  - {name: wav, turns: [{audio: rec/q.wav, say: hi}]}\n"
        "  - {name: keys, turns: [{keys: '1'}]}\n"
        "  - {name: text-only, voice: false, turns: [{say: hi}]}\n"
    )
    wav, keys, text_only = load_suite(suite)
    assert wav.audio_path(wav.scenario.turns[0]) == (tmp_path / "rec" / "q.wav").resolve()
    assert voice_skip_reason(wav) == ""
    assert voice_skip_reason(keys) and voice_skip_reason(text_only) == "text only"


def test_voice_mode_breaks_latency_down_by_stage_for_routed_and_model_turns() -> None:
    from voxline.evals.checks import CallOutcome, TurnOutcome
    from voxline.evals.report import summarize, to_markdown
    from voxline.evals.run import ScenarioResult, voice_outcome

    metrics = {
        "endpointing_ms": 400.0,
        "stt_ms": 300.0,
        "llm_first_token_ms": 250.0,
        "tts_first_audio_ms": 90.0,
    }
    result = {
        "turns": [
            {"index": 1, "user_text": "Lost card.", "agent_text": "A colleague.", "route": "lost-card",
             "metrics": {"endpointing_ms": 400.0, "stt_ms": 280.0, "tts_first_audio_ms": 5.0, "other": 1.0}},
            {"index": 2, "user_text": "Hours?", "agent_text": "Nine.", "metrics": metrics},
        ],
        "caller_timeline": [{"voice_to_voice_ms": 700.0}, {"voice_to_voice_ms": 1100.0}],
    }  # fmt: skip
    outcome = voice_outcome(result, [], None)
    routed, model = outcome.turns
    assert routed.route == "lost-card" and "other" not in routed.stages
    assert model.route == "" and model.stages["llm_first_token_ms"] == 250.0
    ran = [
        ScenarioResult("s/a", [], "voice", [], outcome, 1.0),
        ScenarioResult("s/b", [], "voice", [], CallOutcome([TurnOutcome("x", "y")]), 1.0),
    ]
    stages = summarize(ran, {})["stages_ms"]
    assert (stages["routed"]["turns"], stages["routed"]["p50"], stages["routed"]["llm_first_token_ms"]) == (
        1,
        700.0,
        None,
    )
    assert (stages["model"]["turns"], stages["model"]["p50"], stages["model"]["stt_ms"]) == (1, 1100.0, 300.0)
    assert stages["all"]["turns"] == 2  # a turn without the record's timings (text mode) is not counted
    assert "| model | 1 | 1100.0 / 1100.0 | 400.0 | 300.0 | 250.0 |" in to_markdown(summarize(ran, {}))
