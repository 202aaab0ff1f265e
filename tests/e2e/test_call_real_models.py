"""Whole calls on the real default stack (Silero, whisper tiny.en, Qwen 0.5B, Piper) with recorded
human speech as the caller, through the file transport in real time."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from speech import caller_turns, prompt, transcripts, word_recall
from voxline.agent.config import AgentConfig
from voxline.audio.levels import speech_start_s
from voxline.audio.pcm import AudioChunk
from voxline.audio.wav import read_wav, write_wav
from voxline.engines.base import Engines
from voxline.runtime import simulate_call

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def _agent_channel(path: Path) -> tuple[AudioChunk, AudioChunk]:
    import wave

    with wave.open(str(path)) as w:
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
    return AudioChunk(data[:, 0].copy(), rate), AudioChunk(data[:, 1].copy(), rate)


async def test_two_turn_call_transcribes_answers_and_speaks(
    bank_agent: AgentConfig, real_engines: Engines, transcriber: object, tmp_path: Path
) -> None:
    (q1, text1), (q2, text2) = caller_turns()[0], caller_turns()[13]
    out = tmp_path / "call.wav"
    result = await simulate_call(
        bank_agent,
        [q1, q2],
        pause_s=1.0,
        tail_s=5.0,
        out=out,
        db_path=tmp_path / "calls.sqlite3",
        engines=real_engines,
    )
    json.dumps(result)  # the report is JSON-serialisable as report.json
    turns = result["turns"]
    assert turns[0]["user_text"] == "" and turns[0]["agent_text"] == bank_agent.greeting
    caller = [t for t in turns if t["user_text"]]
    assert len(caller) == 2, turns
    for turn, expected in zip(caller, (text1, text2), strict=True):
        assert word_recall(expected, turn["user_text"]) >= 0.6, (expected, turn["user_text"])
        assert turn["language"] == "en"
        assert turn["agent_text"].strip(), turn
        assert not turn["interrupted"]
        m = turn["metrics"]
        for key in ("endpointing_ms", "llm_first_token_ms", "tts_first_audio_ms", "voice_to_voice_ms"):
            assert m[key] is not None and m[key] > 0, (key, m)
        # STT ran on the caller's pause: what is left to wait for once the turn ends may be nothing
        assert m["stt_ms"] is not None and m["stt_ms"] >= 0, m
        assert m["barge_in_stop_ms"] is None
        # voice-to-voice contains the endpointing wait and whatever of the answer was not ready by then
        assert m["voice_to_voice_ms"] >= m["endpointing_ms"] + m["stt_ms"]
        head_start = m["answer_head_start_ms"] or 0.0
        answer_left = max(0.0, m["llm_first_sentence_ms"] + m["tts_first_audio_ms"] - head_start)
        assert m["voice_to_voice_ms"] >= m["endpointing_ms"] + answer_left - 5, m
    # the caller heard an answer to each of its turns, measured in the audio itself
    assert [t["voice_to_voice_ms"] is not None for t in result["caller_timeline"]] == [True, True]
    # The reply is real speech: transcribe the agent's channel back and find the agent's words.
    _, agent_audio = _agent_channel(out)
    assert agent_audio.rms_dbfs() > -50
    heard = await transcriber.transcribe(agent_audio, "en")  # type: ignore[attr-defined]
    spoken = " ".join(t["agent_text"] for t in caller)
    assert word_recall(spoken, heard.text) >= 0.5, (spoken, heard.text)


async def test_barge_in_one_second_into_reply_stops_agent_and_keeps_heard_words(
    bank_agent: AgentConfig, real_engines: Engines, tmp_path: Path
) -> None:
    # A question whose answer takes a while, then the caller talks 1 s into the reply.
    long_agent = bank_agent.model_copy(update={"llm": bank_agent.llm.model_copy(update={"max_tokens": 96})})
    q1 = prompt("followme/status")
    q2 = prompt("vm-sorry")
    out = tmp_path / "barge.wav"
    result = await simulate_call(
        long_agent, [q1, q2], barge_in_after_s=1.0, tail_s=6.0, out=out, engines=real_engines
    )
    caller = [t for t in result["turns"] if t["user_text"]]
    first = caller[0]
    assert first["interrupted"], result["turns"]
    assert first["metrics"]["barge_in_stop_ms"] is not None
    heard, meant = first["agent_text"].split(), first["agent_full_text"].split()
    assert len(heard) < len(meant), first
    # heard words are a prefix of what was meant (the history keeps only what was played)
    assert [w.strip(".,!?…").lower() for w in heard] == [
        w.strip(".,!?…").lower() for w in meant[: len(heard)]
    ]
    # In the recording, the agent's audio stops shortly after the caller starts talking over it.
    _, agent_audio = _agent_channel(out)
    second = result["caller_timeline"][1]
    onset = second["start_s"] + (speech_start_s(read_wav(q2)) or 0.0)
    after = agent_audio.slice_s(onset + 0.35, onset + 1.2)
    before = agent_audio.slice_s(onset - 0.6, onset)
    assert before.rms_dbfs() > -45, "the agent was speaking when the caller barged in"
    assert after.rms_dbfs() < -55, "the agent kept talking over the caller"
    assert word_recall(transcripts()["vm-sorry"], caller[1]["user_text"]) >= 0.5


async def test_silent_caller_gets_reprompt_then_goodbye(
    bank_agent: AgentConfig, real_engines: Engines, tmp_path: Path
) -> None:
    quick = bank_agent.model_copy(
        update={
            "limits": bank_agent.limits.model_copy(update={"silence_reprompt_s": 2.0, "max_reprompts": 1})
        }
    )
    silence = tmp_path / "silence.wav"
    write_wav(silence, AudioChunk.silence(1.0, 8000))
    result = await simulate_call(quick, [silence], tail_s=25.0, engines=real_engines)
    texts = [t["agent_text"] for t in result["turns"]]
    assert texts[0] == quick.greeting
    assert quick.reprompt in texts
    assert texts[-1] == quick.goodbye
    assert result["end_reason"] in {"agent_ended", "silence"}, result["end_reason"]


def test_caller_audio_fixture_is_speech() -> None:
    # guards the other tests: the recorded prompt really starts with speech after a short lead-in
    audio = read_wav(prompt("followme/status"))
    assert audio.sample_rate == 8000
    assert speech_start_s(audio) is not None


async def test_caller_goodbye_ends_the_call_from_the_agent_side(
    bank_agent: AgentConfig, real_engines: Engines, tmp_path: Path
) -> None:
    # "Goodbye." from the caller: the agent says goodbye and hangs up (end_call, or the goodbye rule)
    result = await simulate_call(bank_agent, [prompt("vm-goodbye")], tail_s=15.0, engines=real_engines)
    assert result["end_reason"] == "agent_ended", result
    last = result["turns"][-1]
    assert "goodbye" in last["user_text"].lower()
    assert "bye" in last["agent_text"].lower() or last["tool_calls"] == ["end_call"], last
