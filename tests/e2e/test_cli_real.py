"""The `voxline` commands on the real default models: caller WAVs in the awkward formats people
actually have, `simulate` and `chat` as real processes, and the files they write."""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from speech import caller_turns, word_recall
from voxline.agent.config import AgentConfig
from voxline.audio.resample import resample
from voxline.audio.wav import read_wav
from voxline.engines.base import Engines
from voxline.runtime import simulate_call

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

METRIC_KEYS = (
    "endpointing_ms",
    "stt_ms",
    "llm_first_token_ms",
    "tts_first_audio_ms",
    "voice_to_voice_ms",
    "barge_in_stop_ms",
)
# Emoji and pictographs, dingbats, and the variation selector that turns a symbol into an emoji.
EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\ufe0f]")
MARKDOWN = re.compile(r"[*#`_~|]|\]\(|^\s*(?:[-+]|\d+\.)\s", re.MULTILINE)


def voxline_command() -> list[str]:
    script = Path(sys.executable).with_name("voxline")
    return [str(script)] if script.exists() else [sys.executable, "-m", "voxline.cli"]


# ---------------------------------------------------------------- awkward WAV files, written by hand


def _riff(path: Path, tag: int, channels: int, rate: int, bits: int, payload: bytes) -> Path:
    """A canonical RIFF/WAVE file; written here rather than with voxline so the reader is tested
    against an independent writer (`wave` cannot write float)."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) & 1)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def _speech_at(source: Path, rate: int) -> npt.NDArray[np.float64]:
    """The prompt as float samples in [-1, 1) at `rate`."""
    chunk = resample(read_wav(source), rate)
    return chunk.samples.astype(np.float64) / 32768.0


def stereo_44k1_int16(source: Path, out: Path) -> Path:
    mono = _speech_at(source, 44100)
    # different levels per channel, as from a real stereo recorder; both carry the caller
    frames = np.stack([mono * 0.9, mono * 0.6], axis=1)
    pcm = np.clip(np.round(frames * 32767), -32768, 32767).astype("<i2")
    return _riff(out, 1, 2, 44100, 16, pcm.tobytes())


def unsigned_8bit_11025(source: Path, out: Path) -> Path:
    mono = _speech_at(source, 11025)
    pcm = np.clip(np.round(mono * 127 + 128), 0, 255).astype(np.uint8)
    return _riff(out, 1, 1, 11025, 8, pcm.tobytes())


def float32_48k(source: Path, out: Path) -> Path:
    mono = _speech_at(source, 48000)
    return _riff(out, 3, 1, 48000, 32, mono.astype("<f4").tobytes())


FORMATS: dict[str, tuple[Callable[[Path, Path], Path], int]] = {
    # format -> (writer, index of the Allison prompt in voxline.bench.utterances.CALLER_TURNS)
    "stereo-44k1-int16": (stereo_44k1_int16, 5),
    "mono-11025-uint8": (unsigned_8bit_11025, 7),
    "mono-48k-float32": (float32_48k, 17),
}


@pytest.mark.parametrize("fmt", list(FORMATS))
async def test_simulate_transcribes_callers_in_awkward_wav_formats(
    bank_agent: AgentConfig, real_engines: Engines, tmp_path: Path, fmt: str
) -> None:
    writer, index = FORMATS[fmt]
    source, expected = caller_turns()[index]
    caller = writer(source, tmp_path / f"{fmt}.wav")
    with wave.open(str(source)) as original:
        duration_s = original.getnframes() / original.getframerate()
    assert read_wav(caller).duration_s == pytest.approx(duration_s, abs=0.01)  # the file is what we meant

    result = await simulate_call(
        bank_agent,
        [caller],
        pause_s=0.5,
        tail_s=5.0,
        db_path=tmp_path / "calls.sqlite3",
        engines=real_engines,
    )
    heard = [t for t in result["turns"] if t["user_text"]]
    assert len(heard) == 1, result["turns"]
    assert word_recall(expected, heard[0]["user_text"]) >= 0.6, (fmt, expected, heard[0]["user_text"])
    assert heard[0]["agent_text"].strip(), heard[0]


# ---------------------------------------------------------------- real processes


def test_simulate_process_writes_report_and_stereo_recording(tmp_path: Path) -> None:
    source, expected = caller_turns()[0]
    report, recording = tmp_path / "out" / "r.json", tmp_path / "out" / "call.wav"
    done = subprocess.run(
        [
            *voxline_command(),
            "simulate",
            str(source),
            "--report",
            str(report),
            "--out",
            str(recording),
            "--db",
            str(tmp_path / "calls.sqlite3"),
            "--pause",
            "0.5",
            "--tail",
            "10",  # room for a slow reply on a busy machine: a hang-up mid-reply marks it interrupted
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr

    data = json.loads(report.read_text(encoding="utf-8"))
    assert isinstance(data["call_id"], str) and data["call_id"]
    assert data["call_id"] in done.stderr  # the logs carry the same call id as the report
    turns = data["turns"]
    assert turns, data
    for turn in turns:
        for key in ("user_text", "agent_text", "language", "interrupted", "metrics"):
            assert key in turn, (key, turn)
        assert set(METRIC_KEYS) <= set(turn["metrics"]), turn["metrics"]
    caller = [t for t in turns if t["user_text"]]
    assert len(caller) == 1, turns
    assert word_recall(expected, caller[0]["user_text"]) >= 0.6, caller[0]
    assert caller[0]["interrupted"] is False
    assert caller[0]["metrics"]["voice_to_voice_ms"] > 0
    # stdout is the human summary of the same turns
    assert f"agent:  {turns[0]['agent_text']}" in done.stdout
    assert f"caller: {caller[0]['user_text']}" in done.stdout

    with wave.open(str(recording)) as w:
        assert w.getnchannels() == 2 and w.getsampwidth() == 2
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
        duration_s = w.getnframes() / w.getframerate()
    left, right = frames[:, 0].astype(np.float64), frames[:, 1].astype(np.float64)
    assert np.sqrt(np.mean(left**2)) > 30, "caller channel is silent"
    assert np.sqrt(np.mean(right**2)) > 30, "agent channel is silent"
    assert duration_s > 3.0  # greeting + turn + reply, at least


def test_chat_process_answers_in_plain_spoken_sentences(bank_agent: AgentConfig) -> None:
    done = subprocess.run(
        [*voxline_command(), "chat"],
        input="What time do your branches open on Saturday?\n",
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    replies = [
        line.removeprefix("agent: ") for line in done.stdout.splitlines() if line.startswith("agent: ")
    ]
    assert len(replies) == 2, done.stdout  # the greeting, then the one answer; EOF hangs up
    greeting, answer = replies
    assert greeting == bank_agent.greeting
    assert answer.strip(), done.stdout
    assert not EMOJI.search(answer), answer
    assert not MARKDOWN.search(answer), answer
    assert "(the agent ended the call)" not in done.stdout
