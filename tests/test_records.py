"""SqliteCallRecorder: durable per-event writes, crash safety, and the read API."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from voxline.conversation.metrics import CallReport, TurnMetrics, TurnRecord
from voxline.records import SqliteCallRecorder, default_db_path


def _turn(index: int, *, v2v: float | None = 812.34, interrupted: bool = False) -> TurnRecord:
    return TurnRecord(
        index=index,
        user_text=f"question {index}",
        agent_text=f"answer {index}",
        agent_full_text=f"answer {index} in full",
        language="en",
        interrupted=interrupted,
        started_at=1_700_000_000.0 + index,
        user_speech_end_at=1_700_000_002.0 + index,
        agent_audio_start_at=1_700_000_002.8 + index,
        tool_calls=["end_call"] if index == 2 else [],
        metrics=TurnMetrics(
            stt_ms=123.0, voice_to_voice_ms=v2v, barge_in_stop_ms=40.0 if interrupted else None
        ),
    )


def test_records_a_call_and_reads_it_back(tmp_path: Path) -> None:
    rec = SqliteCallRecorder(tmp_path / "calls.sqlite3")
    report = CallReport(call_id="c1", agent="bank", transport="websocket", started_at=1_700_000_000.0)
    rec.call_started(report)
    rec.turn_finished("c1", _turn(0))
    rec.turn_finished("c1", _turn(1, interrupted=True))
    assert rec.flush(5)

    call = rec.get_call("c1")
    assert call is not None
    assert call["agent"] == "bank" and call["transport"] == "websocket"
    assert call["ended_at"] is None and call["end_reason"] is None
    assert [t["index"] for t in call["turns"]] == [0, 1]
    assert call["turns"][1]["interrupted"] is True
    assert call["turns"][1]["agent_full_text"] == "answer 1 in full"
    assert call["turns"][0]["metrics"]["voice_to_voice_ms"] == 812.3
    # the epoch times of speech end and first audio, for tools that line calls up with their own clock
    assert call["turns"][1]["user_speech_end_at"] == 1_700_000_003.0
    assert call["turns"][1]["agent_audio_start_at"] == pytest.approx(1_700_000_003.8)
    assert call["turns"][1]["metrics"]["barge_in_stop_ms"] == 40.0

    report.turns = [_turn(0), _turn(1, interrupted=True), _turn(2)]
    report.ended_at = 1_700_000_060.0
    report.end_reason = "agent_ended"
    rec.call_ended(report)
    rec.flush(5)
    call = rec.get_call("c1")
    assert call is not None
    assert call["end_reason"] == "agent_ended" and call["ended_at"] == 1_700_000_060.0
    assert [t["index"] for t in call["turns"]] == [0, 1, 2]  # the final report fills in turn 2
    assert call["turns"][2]["tool_calls"] == ["end_call"]
    assert rec.get_call("nope") is None
    rec.close()


def test_metrics_are_sql_columns(tmp_path: Path) -> None:
    db = tmp_path / "calls.sqlite3"
    rec = SqliteCallRecorder(db)
    rec.call_started(CallReport(call_id="c1", agent="a", transport="file", started_at=1.0))
    for i, v2v in enumerate([700.0, 900.0, None]):
        rec.turn_finished("c1", _turn(i, v2v=v2v))
    rec.close()
    with sqlite3.connect(db) as conn:
        avg, n = conn.execute("SELECT AVG(voice_to_voice_ms), COUNT(voice_to_voice_ms) FROM turns").fetchone()
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert (avg, n) == (800.0, 2)
    assert mode == "wal"


def test_list_calls_newest_first_with_limit(tmp_path: Path) -> None:
    rec = SqliteCallRecorder(tmp_path / "calls.sqlite3")
    for i in range(5):
        rec.call_started(CallReport(call_id=f"c{i}", agent="a", transport="websocket", started_at=100.0 + i))
    rec.turn_finished("c4", _turn(0, v2v=500.0))
    rec.turn_finished("c4", _turn(1, v2v=700.0))
    rec.flush(5)
    calls = rec.list_calls(limit=3)
    assert [c["call_id"] for c in calls] == ["c4", "c3", "c2"]
    assert calls[0]["turn_count"] == 2 and calls[0]["avg_voice_to_voice_ms"] == 600.0
    assert calls[1]["turn_count"] == 0
    rec.close()


def test_recording_does_not_wait_for_disk(tmp_path: Path) -> None:
    """The loop-facing methods only enqueue: while the writer is held up they still return."""
    rec = SqliteCallRecorder(tmp_path / "calls.sqlite3")
    gate = threading.Event()
    rec._submit(lambda _conn: gate.wait(10))  # stall the writer thread
    rec.call_started(CallReport(call_id="c1", agent="a", transport="x", started_at=1.0))
    rec.turn_finished("c1", _turn(0))
    assert rec.get_call("c1") is None  # nothing committed yet, and we were not blocked
    gate.set()
    assert rec.flush(5)
    assert rec.get_call("c1") is not None
    rec.close()


def test_bad_record_does_not_stop_the_writer(tmp_path: Path) -> None:
    rec = SqliteCallRecorder(tmp_path / "calls.sqlite3")

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO no_such_table VALUES (1)")

    rec._submit(broken)
    rec.call_started(CallReport(call_id="c1", agent="a", transport="x", started_at=1.0))
    rec.close()  # close commits what is queued
    reopened = SqliteCallRecorder(tmp_path / "calls.sqlite3")
    assert reopened.get_call("c1") is not None
    reopened.close()
    rec.turn_finished("c1", _turn(0))  # after close: dropped with a warning, no exception


def test_default_path_uses_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXLINE_DATA_DIR", str(tmp_path / "data"))
    assert default_db_path() == tmp_path / "data" / "calls.sqlite3"
    rec = SqliteCallRecorder()
    assert (tmp_path / "data" / "calls.sqlite3").exists()
    rec.close()


_CRASHING_CALL = textwrap.dedent(
    """
    import sys, time
    from voxline.conversation.metrics import CallReport, TurnMetrics, TurnRecord
    from voxline.records import SqliteCallRecorder

    rec = SqliteCallRecorder(sys.argv[1])
    rec.call_started(CallReport(call_id="crash", agent="bank", transport="sip", started_at=time.time()))
    for i in range(2):
        rec.turn_finished("crash", TurnRecord(index=i, user_text=f"u{i}", agent_text=f"a{i}", language="en",
                                              metrics=TurnMetrics(voice_to_voice_ms=900.0 + i)))
    rec.flush(10)
    print("recorded", flush=True)
    time.sleep(60)  # mid-call: the parent kills us here
    """
)


def test_sigkill_mid_call_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "calls.sqlite3"
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-c", _CRASHING_CALL, str(db)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "recorded"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    rec = SqliteCallRecorder(db)  # recovers the WAL left by the killed process
    call = rec.get_call("crash")
    assert call is not None
    assert call["ended_at"] is None and call["end_reason"] is None
    assert [t["user_text"] for t in call["turns"]] == ["u0", "u1"]
    assert [t["metrics"]["voice_to_voice_ms"] for t in call["turns"]] == [900.0, 901.0]
    rec.close()


def test_keys_language_and_transfer_target_are_recorded_and_old_files_upgrade(tmp_path: Path) -> None:
    import sqlite3

    from voxline.conversation.metrics import CallReport, TurnRecord

    path = tmp_path / "calls.sqlite3"
    old = sqlite3.connect(path)  # a file written before the dtmf/transferred_to columns existed
    old.executescript(
        "CREATE TABLE calls (call_id TEXT PRIMARY KEY, agent TEXT NOT NULL, transport TEXT NOT NULL,"
        " started_at REAL NOT NULL, ended_at REAL, end_reason TEXT);"
    )
    old.close()
    recorder = SqliteCallRecorder(path)
    report = CallReport("c1", "bank", "sip", started_at=1.0)
    recorder.call_started(report)
    turn = TurnRecord(0, "(caller pressed 1 2 3)", "धन्यवाद।", "hi", started_at=1.0, dtmf="123")
    turn.detected_language, turn.language_probability, turn.language_switched = "hi", 0.93, True
    report.turns.append(turn)
    report.ended_at, report.end_reason, report.transferred_to = 2.0, "transferred", "sip:200@pbx"
    recorder.call_ended(report)
    recorder.flush()
    record = recorder.get_call("c1")
    recorder.close()
    assert record is not None
    assert record["transferred_to"] == "sip:200@pbx"
    assert record["turns"][0]["dtmf"] == "123"
    assert record["turns"][0]["detected_language"] == "hi"
    assert record["turns"][0]["language_probability"] == 0.93
    assert record["turns"][0]["language_switched"] is True
