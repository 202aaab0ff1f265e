"""/metrics' telephony refusal counters: the exposition lines, and AudioSocket's capacity count."""

from __future__ import annotations

import pytest

from voxline.capacity import CallCapacity
from voxline.server.metrics import TELEPHONY_REFUSAL_REASONS, TelephonyRefusals, security_lines


def _samples(text: str) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("voxline_telephony_refused_total{")
    }


def test_every_transport_and_reason_is_exposed_even_at_zero() -> None:
    refusals = TelephonyRefusals()
    refusals.count("sip", "rate")
    refusals.count("sip", "rate")
    refusals.count("audiosocket", "allow_list")
    text = security_lines(
        records={}, capacity=CallCapacity(2).describe(), refused={}, purged=0, telephony=refusals
    )
    samples = _samples(text)
    assert len(samples) == 2 * len(TELEPHONY_REFUSAL_REASONS)
    assert samples['voxline_telephony_refused_total{transport="sip",reason="rate"}'] == 2
    assert samples['voxline_telephony_refused_total{transport="audiosocket",reason="allow_list"}'] == 1
    assert samples['voxline_telephony_refused_total{transport="sip",reason="auth"}'] == 0
    assert "# TYPE voxline_telephony_refused_total counter" in text


def test_audiosocket_capacity_refusals_come_from_the_call_budget() -> None:
    budget = CallCapacity(1)
    held = budget.try_acquire("websocket")
    assert held is not None and budget.try_acquire("audiosocket") is None
    text = security_lines(
        records={}, capacity=budget.describe(), refused={}, purged=0, telephony=TelephonyRefusals()
    )
    assert _samples(text)['voxline_telephony_refused_total{transport="audiosocket",reason="capacity"}'] == 1


def test_an_unknown_reason_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown refusal reason"):
        TelephonyRefusals().count("sip", "bored")
