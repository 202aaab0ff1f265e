"""run_evals end to end with a scripted model: the suite runs through the call loop, is judged, counted
and written as JSON and Markdown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conversation.fakes import FakeLLM  # tests/ is on sys.path (conftest.py)
from voxline.engines import factory
from voxline.engines.base import LLMDelta, ToolCall
from voxline.evals.suite import EvalOptions, run_evals

AGENT = """
name: Test bank
greeting: Hello, test bank.
guard: {enabled: false}  # the harness must see the scripted refusal, not the guard's handover
tools:
  - name: transfer_call
    target: sip:desk@pbx
  - name: end_call
"""

SUITE = """
agent: agent.yaml
defaults: {said: true, no_refusal: true, internal_text: false, max_sentences: 2}
scenarios:
  - name: person
    tags: [transfer]
    turns:
      - say: A person please.
        expect: {tool: transfer_call, transferred: true}
    expect: {transferred: true}
  - name: hours
    tags: [hours]
    turns:
      - say: When do you open?
        expect: {mention: [["/\\\\b(9|nine)\\\\b/"]]}
"""


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    (tmp_path / "agent.yaml").write_text(AGENT)
    (tmp_path / "suite.yaml").write_text(SUITE)
    return tmp_path / "suite.yaml"


def scripted(monkeypatch: pytest.MonkeyPatch, hours_answers: list[str]) -> None:
    transfer = [LLMDelta(tool_call=ToolCall("transfer_call", {}, "")), LLMDelta(finish_reason="tool_calls")]
    answers = iter(hours_answers)

    def build(_agent: object) -> FakeLLM:
        llm = FakeLLM()
        llm.by_question["A person please."] = transfer
        original = llm.stream

        def stream(messages, tools=(), max_tokens=64):  # type: ignore[no-untyped-def]
            if messages[-1].content == "When do you open?":
                llm.by_question["When do you open?"] = next(answers)
            return original(messages, tools, max_tokens)

        llm.stream = stream  # type: ignore[method-assign]
        return llm

    monkeypatch.setattr(factory, "build_llm", build)


async def test_a_suite_is_run_judged_counted_and_written(
    suite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted(monkeypatch, ["I'm sorry, but I can't assist with that."])
    seen: list[str] = []
    out = tmp_path / "out"
    summary = await run_evals(EvalOptions(paths=[suite], out=out, on_result=lambda r: seen.append(r.id)))
    assert seen == ["suite/person", "suite/hours"]
    assert (summary["scenarios"], summary["passed"], summary["pass_rate"]) == (2, 1, 0.5)
    assert summary["failures_by_check"] == {
        "no_refusal": {"failures": 1, "scenarios": 1},
        "mention": {"failures": 1, "scenarios": 1},
    }
    assert summary["by_tag"] == {
        "hours": {"passed": 0, "scenarios": 1},
        "transfer": {"passed": 1, "scenarios": 1},
    }
    person = summary["results"][0]
    assert person["end_reason"] == "transferred" and person["transferred_to"] == "sip:desk@pbx"
    assert person["turns"][0]["tools"] == [{"name": "transfer_call", "arguments": {}}]
    # the transfer was a tool call with no sentence from the model: only the hours answer is timed
    assert summary["latency_ms"]["turns"] == 1 and summary["latency_ms"]["p50"] > 0
    assert json.loads((out / "eval.json").read_text())["passed"] == 1
    markdown = (out / "eval.md").read_text()
    assert "**1/2** (50%)" in markdown and "| no_refusal | 1 | 1 |" in markdown
    assert "### FAIL `suite/hours`" in markdown and "can't assist with that" in markdown


async def test_repeated_runs_show_which_scenarios_pass_only_sometimes(
    suite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted(monkeypatch, ["We open at nine.", "We open in the morning."])
    summary = await run_evals(EvalOptions(paths=[suite], out=tmp_path, only=["hours"], repeat=2))
    assert (summary["scenarios"], summary["passed"], summary["repeat"]) == (2, 1, 2)
    assert summary["unstable"] == {"suite/hours": "1/2"}
    assert "`suite/hours`: 1/2" in (tmp_path / "eval.md").read_text()
