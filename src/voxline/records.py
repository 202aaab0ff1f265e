"""Call records in SQLite, written as the call happens so a crash loses nothing already said.

Writes go through one background thread with its own connection: the event loop only enqueues
(microseconds), and the commit's fsync happens off the audio path. Each event is one short
transaction, so a turn is durable as soon as the writer has committed it. The database runs in WAL
mode, which also lets readers (`get_call`, `list_calls`, the HTTP API) read while a call is writing.

Call ids are always the server's own; a client's name for its call is kept in `calls.label` only, so
no client can address (or overwrite) another call's record. A write that fails (disk full, read-only
file) is counted and shown by `health()`, which the server puts on /health and /metrics.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from voxline.conversation.metrics import CallReport, TurnMetrics, TurnRecord

log = logging.getLogger(__name__)

METRIC_COLUMNS: tuple[str, ...] = tuple(TurnMetrics.__dataclass_fields__)
"""Every TurnMetrics field is also a REAL column of `turns`, so latency can be queried in SQL."""

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS calls (
    call_id    TEXT PRIMARY KEY,
    agent      TEXT NOT NULL,
    transport  TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at   REAL,
    end_reason TEXT,
    transferred_to TEXT,
    label      TEXT,
    metadata   TEXT
);
CREATE TABLE IF NOT EXISTS turns (
    call_id         TEXT NOT NULL REFERENCES calls(call_id),
    idx             INTEGER NOT NULL,
    started_at      REAL NOT NULL,
    user_text       TEXT NOT NULL,
    agent_text      TEXT NOT NULL,
    agent_full_text TEXT NOT NULL,
    language        TEXT NOT NULL,
    interrupted     INTEGER NOT NULL,
    tool_calls      TEXT NOT NULL,
    dtmf            TEXT NOT NULL DEFAULT '',
    detected_language    TEXT,
    language_probability REAL,
    language_switched    INTEGER NOT NULL DEFAULT 0,
    wrong_script_text    TEXT NOT NULL DEFAULT '',
    user_speech_end_at   REAL,
    agent_audio_start_at REAL,
    metrics         TEXT NOT NULL,
    {", ".join(f"{name} REAL" for name in METRIC_COLUMNS)},
    PRIMARY KEY (call_id, idx)
);
CREATE INDEX IF NOT EXISTS calls_by_start ON calls(started_at);
"""

_ADDED_COLUMNS = {
    "calls": {"transferred_to": "TEXT", "label": "TEXT", "metadata": "TEXT"},
    "turns": {
        "dtmf": "TEXT NOT NULL DEFAULT ''",
        "detected_language": "TEXT",
        "language_probability": "REAL",
        "language_switched": "INTEGER NOT NULL DEFAULT 0",
        "wrong_script_text": "TEXT NOT NULL DEFAULT ''",
        "answer_head_start_ms": "REAL",
        "user_speech_end_at": "REAL",
        "agent_audio_start_at": "REAL",
    },
}
"""Columns added after the first release: a database file from then is upgraded in place."""

_TURN_COLUMNS = (
    "call_id", "idx", "started_at", "user_text", "agent_text", "agent_full_text", "language",
    "interrupted", "tool_calls", "dtmf", "detected_language", "language_probability", "language_switched",
    "wrong_script_text", "user_speech_end_at", "agent_audio_start_at", "metrics", *METRIC_COLUMNS,
)  # fmt: skip
_INSERT_TURN = (
    f"INSERT OR REPLACE INTO turns ({', '.join(_TURN_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _TURN_COLUMNS)})"
)
_UPSERT_CALL = (
    "INSERT INTO calls (call_id, agent, transport, started_at, ended_at, end_reason, transferred_to, "
    "metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(call_id) DO UPDATE SET "
    "agent=excluded.agent, transport=excluded.transport, started_at=excluded.started_at, "
    "ended_at=excluded.ended_at, end_reason=excluded.end_reason, transferred_to=excluded.transferred_to, "
    "metadata=excluded.metadata"
)

_Job = Callable[[sqlite3.Connection], object]


def default_db_path() -> Path:
    return Path(os.environ.get("VOXLINE_DATA_DIR", "./var")) / "calls.sqlite3"


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=10.0, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a committed transaction survives a process crash (it is in the WAL file);
    # only an OS crash or power loss can lose the last commits. FULL would fsync every commit.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=OFF")
    # Purged transcripts are overwritten on disk, not left in free pages (personal data).
    conn.execute("PRAGMA secure_delete=ON")
    return conn


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    for table, columns in _ADDED_COLUMNS.items():
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        for name, kind in columns.items():
            if name not in have:
                log.info("upgrading call records: adding %s.%s", table, name)
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")


def _turn_row(call_id: str, turn: TurnRecord) -> tuple[Any, ...]:
    metrics = turn.metrics.as_dict()
    return (
        call_id, turn.index, turn.started_at, turn.user_text, turn.agent_text, turn.agent_full_text,
        turn.language, int(turn.interrupted), json.dumps(list(turn.tool_calls)), turn.dtmf,
        turn.detected_language, turn.language_probability, int(turn.language_switched),
        turn.wrong_script_text, turn.user_speech_end_at, turn.agent_audio_start_at,
        json.dumps(metrics),
        *(metrics[name] for name in METRIC_COLUMNS),
    )  # fmt: skip


def _json_or_none(text: object) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _call_row(report: CallReport) -> tuple[Any, ...]:
    return (
        report.call_id, report.agent, report.transport, report.started_at, report.ended_at, report.end_reason,
        report.transferred_to, None if report.metadata is None else json.dumps(report.metadata),
    )  # fmt: skip


class SqliteCallRecorder:
    """A CallRecorder that persists to SQLite, plus the read API the HTTP server uses.

    Recording methods never block on disk: they enqueue and return. `flush()` waits until everything
    enqueued so far is committed (tests, shutdown).
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write_conn = _connect(self.path)
        self._write_conn.executescript(_SCHEMA)
        _add_missing_columns(self._write_conn)
        self._read_conn = _connect(self.path)
        self._read_conn.row_factory = sqlite3.Row
        self._read_lock = threading.Lock()
        self._jobs: queue.Queue[tuple[_Job, bool] | None] = queue.Queue()
        self._closed = False
        self._health_lock = threading.Lock()
        self.write_errors = 0
        self.last_write_error: str | None = None
        self._last_write_ok = True
        self._writer = threading.Thread(target=self._write_loop, name="voxline-records", daemon=True)
        self._writer.start()

    # ------------------------------------------------------------ CallRecorder

    def call_started(self, report: CallReport) -> None:
        row = _call_row(report)
        self._submit(lambda conn: conn.execute(_UPSERT_CALL, row))

    def turn_finished(self, call_id: str, turn: TurnRecord) -> None:
        row = _turn_row(call_id, turn)
        self._submit(lambda conn: conn.execute(_INSERT_TURN, row))

    def call_ended(self, report: CallReport) -> None:
        call_row = _call_row(report)
        # The final report also carries every turn: rewrite them so a turn whose event was lost
        # (or a recorder attached mid-call) still ends up complete.
        turn_rows = [_turn_row(report.call_id, t) for t in report.turns]

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(_UPSERT_CALL, call_row)
            conn.executemany(_INSERT_TURN, turn_rows)

        self._submit(write)

    def set_label(self, call_id: str, label: str) -> None:
        """Keep a client's own name for a call (after `call_started`); never used as a key."""
        self._submit(
            lambda conn: conn.execute("UPDATE calls SET label = ? WHERE call_id = ?", (label, call_id))
        )

    # ------------------------------------------------------------ retention

    def purge_older_than(self, cutoff_epoch: float, timeout: float | None = 60.0) -> int:
        """Delete calls that started before `cutoff_epoch`, with their turns; returns how many calls.

        Runs on the writer thread (so it never races a call's writes) and blocks until done: call it
        from a thread, not the event loop.
        """
        done = threading.Event()
        result: list[int] = []

        def purge(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "DELETE FROM turns WHERE call_id IN (SELECT call_id FROM calls WHERE started_at < ?)",
                    (cutoff_epoch,),
                )
                result.append(
                    conn.execute("DELETE FROM calls WHERE started_at < ?", (cutoff_epoch,)).rowcount
                )
            finally:
                done.set()

        self._submit(purge)
        if not done.wait(timeout) or not result:
            raise RuntimeError("purging old call records failed (see the log)")
        return result[0]

    # ------------------------------------------------------------ health

    def health(self) -> dict[str, Any]:
        """`ok` is False while the last write failed (disk full, read-only database)."""
        with self._health_lock:
            return {
                "ok": self._last_write_ok,
                "write_errors": self.write_errors,
                "last_error": self.last_write_error,
                "queued": self._jobs.qsize(),
            }

    # ------------------------------------------------------------ reads

    def get_call(self, call_id: str) -> dict[str, Any] | None:
        """The call with its turns (oldest first), or None if unknown."""
        with self._read_lock:
            call = self._read_conn.execute("SELECT * FROM calls WHERE call_id = ?", (call_id,)).fetchone()
            if call is None:
                return None
            turns = self._read_conn.execute(
                "SELECT * FROM turns WHERE call_id = ? ORDER BY idx", (call_id,)
            ).fetchall()
        result = dict(call)
        result["metadata"] = _json_or_none(result.get("metadata"))
        result["turns"] = [self._turn_dict(row) for row in turns]
        return result

    def list_calls(self, limit: int = 50) -> list[dict[str, Any]]:
        """The most recent calls (newest first), each with its turn count and mean voice-to-voice."""
        with self._read_lock:
            rows = self._read_conn.execute(
                "SELECT c.*, COUNT(t.idx) AS turn_count, AVG(t.voice_to_voice_ms) AS avg_voice_to_voice_ms "
                "FROM calls c LEFT JOIN turns t ON t.call_id = c.call_id "
                "GROUP BY c.call_id ORDER BY c.started_at DESC LIMIT ?",
                (max(0, int(limit)),),
            ).fetchall()
        return [{**dict(row), "metadata": _json_or_none(row["metadata"])} for row in rows]

    @staticmethod
    def _turn_dict(row: sqlite3.Row) -> dict[str, Any]:
        return {
            "index": row["idx"],
            "started_at": row["started_at"],
            "user_text": row["user_text"],
            "agent_text": row["agent_text"],
            "agent_full_text": row["agent_full_text"],
            "language": row["language"],
            "interrupted": bool(row["interrupted"]),
            "tool_calls": json.loads(row["tool_calls"]),
            "dtmf": row["dtmf"],
            "detected_language": row["detected_language"],
            "language_probability": row["language_probability"],
            "language_switched": bool(row["language_switched"]),
            "wrong_script_text": row["wrong_script_text"],
            "user_speech_end_at": row["user_speech_end_at"],
            "agent_audio_start_at": row["agent_audio_start_at"],
            "metrics": json.loads(row["metrics"]),
        }

    # ------------------------------------------------------------ lifecycle

    def flush(self, timeout: float | None = None) -> bool:
        """Block until every event recorded so far is committed. True if it was in time."""
        done = threading.Event()
        self._submit(lambda _conn: done.set(), writes=False)
        return done.wait(timeout)

    def close(self) -> None:
        """Commit what is queued, stop the writer and close the connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._jobs.put(None)
        self._writer.join()
        self._write_conn.close()
        with self._read_lock:
            self._read_conn.close()

    def _submit(self, job: _Job, *, writes: bool = True) -> None:
        """Queue `job` for the writer; `writes` jobs decide whether records are healthy."""
        if self._closed:
            log.warning("call record dropped: recorder is closed")
            return
        self._jobs.put((job, writes))

    def _write_loop(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            job, writes = item
            try:
                # One short transaction per event: durable as soon as it returns.
                with self._write_conn:
                    self._write_conn.execute("BEGIN")
                    job(self._write_conn)
            except Exception as exc:  # a bad record must not stop recording the rest
                with self._health_lock:
                    self.write_errors += 1
                    self.last_write_error = f"{type(exc).__name__}: {exc}"
                    first_of_streak = self._last_write_ok
                    self._last_write_ok = False
                if first_of_streak:  # a full disk fails every write: one traceback, then a count
                    log.exception("writing a call record failed")
                else:
                    log.warning("writing a call record failed again (%s; %d so far)", exc, self.write_errors)
            else:
                if writes and not self._last_write_ok:
                    with self._health_lock:
                        self._last_write_ok = True
                    log.info("call records are being written again")
