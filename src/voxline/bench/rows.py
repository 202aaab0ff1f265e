"""Per-turn and per-call result rows: the caller's measurements joined with the server's records.

Server records come from `GET /calls` and `GET /calls/{id}`. A WebSocket call is found by the call
id the bench gave it; SIP calls are matched by start order. Within a call, a caller turn owns the
agent's user turns that started (server epoch time) between its own start and the next turn's, so a
turn the agent split in two shows up as two agent turns in one caller turn's window.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import httpx

from voxline.bench.caller import CallerTurn
from voxline.bench.calls import PlacedCall
from voxline.bench.report import CRITICAL_PATH as REPORT_PATH
from voxline.bench.report import STAGES
from voxline.bench.utterances import word_recall
from voxline.bench.ws_client import auth_headers

log = logging.getLogger(__name__)

CRITICAL_PATH = tuple(stage for stage in REPORT_PATH if stage != "overhead_ms")
PARTIAL_RECALL = 0.6
"""A user_text with fewer of the expected words than this was cut short (or badly misheard)."""
WINDOW_SLACK_S = 0.5
RECORD_WAIT_S = 1.0
"""Records are written by the server's background writer: give the last ones time to land."""


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


async def fetch_records(http_url: str | None, calls: Sequence[PlacedCall], since_epoch: float) -> None:
    """Fill each call's `call_id` (SIP: by start order) and attach its server record as `.record`."""
    if http_url is None or not calls:
        return
    await asyncio.sleep(RECORD_WAIT_S)
    async with httpx.AsyncClient(base_url=http_url, timeout=10, headers=auth_headers()) as client:
        listed = (await client.get("/calls", params={"limit": 1000})).json()
        fresh = sorted(
            (c for c in listed if c["started_at"] >= since_epoch - 1.0 and c["transport"] == "sip"),
            key=lambda c: c["started_at"],
        )
        sip_calls = sorted((c for c in calls if c.transport == "sip"), key=lambda c: c.started_epoch)
        if sip_calls and len(fresh) != len(sip_calls):
            log.warning("%d SIP calls placed but %d new server records", len(sip_calls), len(fresh))
        for call, listed_call in zip(sip_calls, fresh, strict=False):
            call.call_id = listed_call["call_id"]
        for call in calls:
            if call.call_id is None:
                continue
            response = await client.get(f"/calls/{call.call_id}")
            if response.status_code == 200:
                call.record = response.json()


def _agent_turns_in(record: dict[str, Any] | None, start: float, end: float) -> list[dict[str, Any]]:
    if record is None:
        return []
    return [
        t
        for t in record["turns"]
        if t["user_text"] and start - WINDOW_SLACK_S <= t["started_at"] < end - WINDOW_SLACK_S
    ]


def overhead_ms(v2v: float | None, stages: dict[str, float | None]) -> float | None:
    """Caller voice-to-voice minus the measured stages on its critical path (the speech-end lag too).

    An answer prepared on the caller's pause (`answer_head_start_ms`) ran its LLM and TTS during the
    endpointing wait: only the part of them still left when the turn was confirmed is on the path."""
    parts = [stages.get(k) for k in CRITICAL_PATH[1:]]
    if v2v is None or any(p is None for p in parts):
        return None
    wait, stt, llm, tts = (p or 0.0 for p in parts)
    lag = stages.get("speech_end_lag_ms") or 0.0
    head_start = stages.get("answer_head_start_ms") or 0.0
    return round(v2v - lag - wait - stt - max(0.0, llm + tts - head_start), 1)


def turn_rows(call: PlacedCall, *, scenario: str) -> list[dict[str, Any]]:
    """One row per caller turn spoken in `call` (the JSON's `turns` entries)."""
    turns: list[CallerTurn] = call.caller.result.turns
    epoch = [call.epoch_offset + t.speech_start_wire_s for t in turns]
    windows = [
        _agent_turns_in(call.record, epoch[i], epoch[i + 1] if i + 1 < len(turns) else float("inf"))
        for i in range(len(turns))
    ]
    rows = []
    for i, turn in enumerate(turns):
        utterance = call.utterances[turn.index]
        agent = windows[i]
        last = agent[-1] if agent else None
        metrics: dict[str, Any] = last["metrics"] if last else {}
        stages = {k: metrics.get(k) for k in STAGES}
        stages["speech_end_lag_ms"] = _speech_end_lag_ms(call, turn, last)
        user_text = " ".join(t["user_text"] for t in agent)
        v2v = _round(turn.voice_to_voice_ms)
        barge_before = [t["metrics"].get("barge_in_stop_ms") for t in windows[i - 1]] if i else []
        row: dict[str, Any] = {
            "call": call.index,
            "turn": i,
            "utterance": utterance.name,
            "expected_text": utterance.text,
            "paused": utterance.paused,
            "pause_ms": utterance.pause_ms,
            "voice_to_voice_ms": v2v if scenario != "echo_sweep" else None,
            "agent_voice_to_voice_ms": metrics.get("voice_to_voice_ms"),
            "stages": stages,
            "overhead_ms": overhead_ms(v2v, stages),
            "overhead_vs_floor_ms": None,
            "barge_in_stop_ms": _round(turn.barge_in_stop_ms),
            "agent_barge_in_stop_ms": next((b for b in reversed(barge_before) if b is not None), None)
            if turn.barged_in
            else None,
            "wrong_turn_ending": None,
            "user_text": user_text,
            "agent_text": last["agent_text"] if last else "",
            "echo_delay_ms": _round(turn.echo_delay_ms) if scenario == "echo_sweep" else None,
            "barged_in": turn.barged_in,
            "agent_user_turns": len(agent),
            "recall": round(word_recall(utterance.text, user_text), 2) if call.record else None,
        }
        if scenario != "echo_sweep" and not turn.barged_in:
            row["wrong_turn_ending"] = _wrong_turn_ending(turn, row, has_record=call.record is not None)
        rows.append(row)
    return rows


def _speech_end_lag_ms(call: PlacedCall, turn: CallerTurn, agent_turn: dict[str, Any] | None) -> float | None:
    """The caller's end of speech (on the wire) → where the agent's VAD put it (the record's epoch
    time; both processes read the same system clock)."""
    heard_end = agent_turn.get("user_speech_end_at") if agent_turn else None
    if heard_end is None or turn.speech_end_wire_s is None:
        return None
    return round((float(heard_end) - (call.epoch_offset + turn.speech_end_wire_s)) * 1000, 1)


def _wrong_turn_ending(turn: CallerTurn, row: dict[str, Any], *, has_record: bool) -> bool:
    """The agent answered before the caller had finished: heard by the caller (its sound arrived
    mid-turn), or seen in the agent's record (the turn split in two, or cut short)."""
    if turn.sound_during_speech:
        return True
    if not has_record:
        return False
    return row["agent_user_turns"] > 1 or (row["recall"] is not None and row["recall"] < PARTIAL_RECALL)


def call_row(call: PlacedCall) -> dict[str, Any]:
    return {
        "call_id": call.call_id,
        "end_reason": call.end_reason,
        "completed": call.completed,
        "greeting_ms": _round(call.caller.result.greeting_ms),
        "jitter_p99_ms": call.jitter_p99_ms(),
        "packets_lost": call.packets_lost,
        "error": call.error,
    }


def add_floor_overhead(runs: Sequence[dict[str, Any]], floor: Sequence[dict[str, Any]]) -> None:
    """Fill overhead_vs_floor_ms = caller v2v − endpointing − floor(utterance), where all are known."""
    totals = {row["utterance"]: row["total_ms"] for row in floor if row.get("total_ms") is not None}
    for run in runs:
        for row in run["turns"]:
            v2v, wait = row["voice_to_voice_ms"], row["stages"].get("endpointing_ms")
            total = totals.get(row["utterance"])
            if v2v is not None and wait is not None and total is not None:
                row["overhead_vs_floor_ms"] = round(v2v - wait - total, 1)
