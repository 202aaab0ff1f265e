"""A call's record crosses from the job to the supervisor as it happens; only the supervisor writes it.

The job's `CallRunner` is given a `RelayRecorder`: each of its events (the record opened, a turn
finished, the client's label, the record closed) and the post-call webhook go over the channel at
once, so a job killed mid-call has already handed over every finished turn. The supervisor rebuilds
the dataclasses with `report_from_dict` / `turn_from_dict` and passes them to its recorder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from voxline.agent.config import WebhookConfig
from voxline.conversation.metrics import CallReport, TurnMetrics, TurnRecord

Send = Callable[[dict[str, Any]], None]

_TURN_FIELDS = {f.name for f in dataclasses.fields(TurnRecord)} - {"metrics"}
_METRIC_FIELDS = {f.name for f in dataclasses.fields(TurnMetrics)}


def turn_from_dict(data: dict[str, Any]) -> TurnRecord:
    """A `TurnRecord.as_dict()` back as a TurnRecord (unknown keys are ignored, missing ones default)."""
    metrics = data.get("metrics") or {}
    return TurnRecord(
        **{k: v for k, v in data.items() if k in _TURN_FIELDS},
        metrics=TurnMetrics(**{k: v for k, v in metrics.items() if k in _METRIC_FIELDS}),
    )


def report_from_dict(data: dict[str, Any]) -> CallReport:
    return CallReport(
        call_id=str(data["call_id"]),
        agent=str(data["agent"]),
        transport=str(data["transport"]),
        started_at=float(data["started_at"]),
        ended_at=data.get("ended_at"),
        end_reason=data.get("end_reason"),
        transferred_to=data.get("transferred_to"),
        turns=[turn_from_dict(t) for t in data.get("turns") or []],
    )


def _header(report: CallReport) -> dict[str, Any]:
    """The report without its turns (those were relayed one by one)."""
    data = report.as_dict()
    data["turns"] = []
    return data


class RelayRecorder:
    """The job's CallRecorder and LabelStore: every event goes to the supervisor's recorder."""

    def __init__(self, send: Send) -> None:
        self.send = send

    def call_started(self, report: CallReport) -> None:
        self.send({"type": "record.open", "report": _header(report)})

    def turn_finished(self, call_id: str, turn: TurnRecord) -> None:
        self.send({"type": "record.turn", "call_id": call_id, "turn": turn.as_dict()})

    def set_label(self, call_id: str, label: str) -> None:
        self.send({"type": "record.label", "call_id": call_id, "label": label})

    def call_ended(self, report: CallReport) -> None:
        self.send({"type": "record.close", "report": _header(report)})


class RelayWebhooks:
    """The job's WebhookQueue: the supervisor queues the post-call webhook (it outlives the job)."""

    def __init__(self, send: Send) -> None:
        self.send = send

    def submit(self, config: WebhookConfig, payload: dict[str, Any]) -> bool:
        self.send({"type": "webhook", "payload": payload})
        return True
