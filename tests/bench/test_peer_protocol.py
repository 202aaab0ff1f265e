"""The peer bench's pieces that need no peer installed: the protocol module the Pipecat bot uses
(it must accept and refuse exactly what voxline's own WebSocket transport does), the call records
made from socket events, split-turn judging, and the comparison and its report table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from voxline.agent.config import load_agent
from voxline.audio.pcm import AudioChunk
from voxline.bench.caller import CallerTurn, ScriptedCaller
from voxline.bench.calls import PlacedCall
from voxline.bench.peers import caller_protocol as protocol
from voxline.bench.peers import pipecat_env
from voxline.bench.peers.compare import (
    comparison,
    peer_rows,
    record_from_events,
    system_summary,
    with_llm_threads,
)
from voxline.bench.peers.pipecat_target import PeerModels, peer_system_prompt
from voxline.bench.report import markdown, summarize
from voxline.bench.utterances import Utterance
from voxline.cli import app
from voxline.conversation.prompt import build_system_prompt
from voxline.transports.websocket import parse_start

STARTS = [
    '{"type": "start", "sample_rate": 16000, "format": "s16le"}',
    '{"type": "start", "sample_rate": 8000, "call_id": "bench-1"}',
    '{"type": "start", "sample_rate": 48000, "format": "s16le", "call_id": "x"}',
    '{"type": "start", "sample_rate": 7999}',
    '{"type": "start", "sample_rate": 48001}',
    '{"type": "start", "sample_rate": true}',
    '{"type": "start", "sample_rate": 16000.0}',
    '{"type": "start", "sample_rate": 16000, "format": "f32le"}',
    '{"type": "start", "sample_rate": 16000, "call_id": ""}',
    '{"type": "start", "sample_rate": 16000, "call_id": 5}',
    '{"type": "start", "sample_rate": 16000, "call_id": "' + "a" * 65 + '"}',
    '{"type": "hello", "sample_rate": 16000}',
    "[1, 2]",
    "not json",
]


def voxline_verdict(text: str) -> tuple[int, str | None] | str:
    try:
        return parse_start(text)
    except ValueError as exc:
        return str(exc)


def peer_verdict(text: str) -> tuple[int, str | None] | str:
    try:
        start = protocol.parse_start(text)
    except ValueError as exc:
        return str(exc)
    return start.sample_rate, start.call_id


@pytest.mark.parametrize("text", STARTS)
def test_start_frames_are_judged_as_voxline_judges_them(text: str) -> None:
    assert peer_verdict(text) == voxline_verdict(text)


def test_a_binary_first_frame_is_refused() -> None:
    with pytest.raises(ValueError, match="not binary"):
        protocol.parse_start(b"\x00\x01")


def test_inbound_frames() -> None:
    pcm = np.arange(160, dtype="<i2").tobytes()
    assert protocol.parse_inbound(pcm) == protocol.Audio(pcm)
    assert protocol.parse_inbound(b"") is None
    assert isinstance(protocol.parse_inbound(b"\x00\x01\x02"), protocol.Refused)
    assert protocol.parse_inbound('{"type": "hangup"}') == protocol.Hangup()
    assert protocol.parse_inbound('{"type": "dtmf", "digit": "a"}') == protocol.Digit("A")
    for bad in ('{"type": "dtmf", "digit": "55"}', '{"type": "nope"}', "{", "[]"):
        assert isinstance(protocol.parse_inbound(bad), protocol.Refused), bad


def test_events_are_the_json_the_caller_reads() -> None:
    assert json.loads(protocol.event("ready", call_id="c1", sample_rate=16000)) == {
        "type": "ready", "call_id": "c1", "sample_rate": 16000,
    }  # fmt: skip
    assert json.loads(protocol.event("user_text", text="¿qué?")) == {"type": "user_text", "text": "¿qué?"}


def test_records_from_events_pair_each_user_turn_with_the_reply_after_it() -> None:
    events = [
        (10.0, {"type": "ready"}),
        (11.0, {"type": "agent_text", "text": "greeting, before any user turn"}),
        (12.0, {"type": "user_text", "text": " my card "}),
        (12.5, {"type": "agent_text", "text": "I can help."}),
        (12.6, {"type": "agent_text", "text": "a second reply is not the first"}),
        (14.0, {"type": "user_text", "text": "   "}),
        (15.0, {"type": "user_text", "text": "thanks"}),
    ]
    record = record_from_events(events)
    assert [(t["user_text"], t["started_at"], t["agent_text"]) for t in record["turns"]] == [
        ("my card", 12.0, "I can help."),
        ("thanks", 15.0, ""),
    ]


def _utterance(name: str, text: str) -> Utterance:
    return Utterance(name=name, audio=AudioChunk(np.zeros(800, np.int16), 8000), text=text)


def _call(events: list[tuple[float, dict[str, Any]]], turns: list[CallerTurn]) -> PlacedCall:
    utterances = [_utterance("a", "I lost my card"), _utterance("b", "what are your opening hours")]
    caller = ScriptedCaller([u.audio for u in utterances])
    caller.result.turns = turns
    call = PlacedCall(0, utterances, caller, "websocket", events=events)
    call.epoch_offset = 1000.0  # caller clock 0 s = epoch 1000 s
    return call


def test_split_turns_are_judged_from_the_socket_events() -> None:
    turns = [
        # the tail of an earlier reply sounds while the caller talks (1.5 < 2.0), but the agent takes
        # the turn once, after its end: heard mid-turn, not split
        CallerTurn(0, speech_start_wire_s=1.0, speech_end_wire_s=2.0, reply_onset_s=2.9,
                   speech_onset_wire_s=1.1, first_sound_after_onset_s=1.5),
        # taken before the last word (user_text at 7.0 < 7.7), and as two user turns
        CallerTurn(1, speech_start_wire_s=6.5, speech_end_wire_s=7.7, reply_onset_s=7.8,
                   speech_onset_wire_s=6.6, first_sound_after_onset_s=7.1),
    ]  # fmt: skip
    events = [  # a user_text arrives once the agent has taken the turn (caller clock + 1000 s)
        (1002.6, {"type": "user_text", "text": "I lost my card."}),
        (1007.0, {"type": "user_text", "text": "What are your"}),
        (1008.1, {"type": "user_text", "text": "opening hours?"}),
    ]
    rows = peer_rows(_call(events, turns))
    assert [r["agent_user_turns"] for r in rows] == [1, 2]
    assert [r["heard_mid_turn"] for r in rows] == [True, True]
    assert [r["taken_early"] for r in rows] == [False, True]
    assert [r["split"] for r in rows] == [False, True]
    assert [r["wrong_turn_ending"] for r in rows] == [False, True]
    assert rows[0]["recall"] == 1.0 and rows[1]["user_text"] == "What are your opening hours?"
    assert [r["voice_to_voice_ms"] for r in rows] == [pytest.approx(900.0), pytest.approx(100.0)]


def test_a_turn_taken_once_but_misheard_is_a_wrong_ending_not_a_split() -> None:
    turns = [CallerTurn(0, speech_start_wire_s=1.0, speech_end_wire_s=2.0, reply_onset_s=2.9)]
    rows = peer_rows(_call([(1002.6, {"type": "user_text", "text": "I lost"})], turns))
    assert rows[0]["split"] is False and rows[0]["recall"] == 0.5 and rows[0]["wrong_turn_ending"] is True


def _run(name: str, v2v: list[float | None], split: list[bool]) -> dict[str, Any]:
    turns = [
        {"voice_to_voice_ms": v, "split": s, "heard_mid_turn": False, "wrong_turn_ending": s,
         "stages": {}, "paused": False}
        for v, s in zip(v2v, split, strict=True)
    ]  # fmt: skip
    calls = [{"completed": True, "greeting_ms": 20.0, "jitter_p99_ms": 1.0}]
    return {"name": f"peer-{name}", "scenario": "peer", "transport": "websocket", "concurrency": 1,
            "turns": turns, "calls": calls, "floor": []}  # fmt: skip


def test_comparison_and_its_report_table(tmp_path: Path) -> None:
    ours = _run("voxline", [900.0, 1000.0, 1100.0], [False, False, False])
    theirs = _run("pipecat", [1800.0, 2000.0, None], [True, False, False])
    summary = system_summary(theirs)
    assert summary["p50_ms"] == 1900.0 and summary["no_reply"] == 1 and summary["split_turns"] == 1
    result = comparison("pipecat", {"voxline": ours, "pipecat": theirs})
    assert result["ratio"]["p50"] == pytest.approx(1900 / 1000, abs=0.01)
    results = {"schema": "voxline-bench/1", "meta": {}, "runs": [ours, theirs], "peer": result}
    text = markdown(results, summarize(results))
    assert "## voxline and pipecat, side by side" in text
    table_rows = [line for line in text.splitlines() if line.startswith("| pipecat")]
    assert table_rows and "1900" in table_rows[0] and "1/3" in table_rows[0]
    assert "p50 1.90×" in text


def test_the_peer_environment_is_made_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def fake_run(args: list[str]) -> None:
        calls.append(args)
        if args[1:3] == ["-m", "venv"]:
            python = Path(args[3]) / "bin" / "python"
            python.parent.mkdir(parents=True)
            python.touch()

    monkeypatch.setattr(pipecat_env, "_run", fake_run)
    env = pipecat_env.PipecatEnv(tmp_path / "pipecat")
    assert not env.is_current()
    assert env.ensure() == env.python
    assert [args[1:3] for args in calls] == [["-m", "venv"], ["-m", "pip"]]
    assert all(req in calls[1] for req in pipecat_env.REQUIREMENTS)
    assert "pipecat-ai[whisper,piper,websocket]==1.14.0" in pipecat_env.REQUIREMENTS
    assert env.is_current()
    env.ensure()  # current: nothing runs
    assert len(calls) == 2
    # a stamp from other requirements means a reinstall into the same venv
    (env.venv / pipecat_env.STAMP).write_text('{"requirements": ["pipecat-ai==0.0.1"]}')
    env.ensure()
    assert [args[1:3] for args in calls[2:]] == [["-m", "pip"]]


def test_the_peer_environment_lives_outside_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VOXLINE_PEERS_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere/cache")
    assert pipecat_env.PipecatEnv.default().venv == Path("/somewhere/cache/voxline/peers/pipecat/venv")
    monkeypatch.setenv("VOXLINE_PEERS_DIR", "/elsewhere")
    assert pipecat_env.peers_dir() == Path("/elsewhere")


def test_llm_threads_override_goes_to_both_sides(tmp_path: Path) -> None:
    agent = load_agent(None)
    path = with_llm_threads(agent, 1, tmp_path)
    changed = load_agent(path)
    assert changed.llm.threads == 1
    assert changed.model_copy(update={"llm": agent.llm}) == agent
    assert peer_system_prompt(changed) == build_system_prompt(agent, ())


def test_an_unknown_peer_is_a_short_error() -> None:
    result = CliRunner().invoke(app, ["bench", "--peer", "rasa", "--calls", "1"])
    assert result.exit_code == 2
    assert "unknown peer 'rasa'; choose from pipecat" in result.output


def test_the_peer_needs_the_local_engines(tmp_path: Path) -> None:
    agent = load_agent(None)
    remote = agent.model_copy(update={"llm": agent.llm.model_copy(update={"engine": "openai"})})
    with pytest.raises(RuntimeError, match=r"whisper, llama\.cpp and Piper locally"):
        PeerModels.of(remote)
