"""The RTP state that crosses to a job, and the supervisor's stand-in session that forwards it."""

from __future__ import annotations

from typing import Any

import pytest

from voxline.telephony.ari.media import L16_16K
from voxline.telephony.rtp.codecs import PCMA
from voxline.telephony.rtp.handoff import JobRtpSession
from voxline.telephony.rtp.media_state import RtpMediaState, apply_state, open_session_from_state
from voxline.transports.base import Dtmf


class Link:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, body: dict[str, Any]) -> None:
        self.sent.append(body)


def test_state_round_trips_and_refuses_nonsense() -> None:
    state = RtpMediaState("PCMA", 8, 101, ("127.0.0.1", 4000), on_hold=True, learn_sources=False)
    assert RtpMediaState.from_json(state.to_json()) == state
    for bad in (
        {**state.to_json(), "codec": "OPUS"},
        {**state.to_json(), "payload_type": 300},
        {**state.to_json(), "remote": ["example.com", 4000]},
        {**state.to_json(), "remote": ["127.0.0.1", 0]},
        {"payload_type": 8},
    ):
        with pytest.raises(ValueError):
            RtpMediaState.from_json(bad)


async def test_changes_before_the_hand_off_are_kept_and_after_it_forwarded() -> None:
    session = JobRtpSession.open("127.0.0.1", 0, 0, call_id="c1")
    session.await_confirmation()
    session.set_codec(PCMA, 101)
    session.set_remote("127.0.0.1", 4000)
    session.inject(Dtmf("5", 100))  # SIP INFO before the job exists: delivered at the hand-off
    session.media_confirmed()
    link = Link()
    sock = session.hand_off(link, lambda: "caller_hangup")
    assert sock.getsockname()[1] == session.local_port
    assert link.sent == [{"type": "dtmf", "digit": "5", "duration_ms": 100}]
    assert session.state() == RtpMediaState("PCMA", 8, 101, ("127.0.0.1", 4000))

    job_session = await open_session_from_state(sock, session.state(), call_id="c1")
    try:
        assert job_session.codec.name == "PCMA" and job_session.remote == ("127.0.0.1", 4000)
        session.set_hold(True)  # a re-INVITE with a=sendonly
        session.set_remote("127.0.0.1", 4002)
        update = link.sent[-1]
        assert update["type"] == "rtp_media" and update["on_hold"] and update["remote"] == ["127.0.0.1", 4002]
        apply_state(job_session, RtpMediaState.from_json(update))
        assert job_session.remote == ("127.0.0.1", 4002)
        assert job_session._sender.on_hold
        with pytest.raises(ValueError):
            session.set_codec(L16_16K, 101)  # the RTP clock cannot change mid-call, here as in a session
        session.end_input()
        assert link.sent[-1] == {"type": "remote_hangup", "reason": "caller_hangup"}
        session.job_gone()
        session.inject(Dtmf("1"))  # nothing goes to a job that is gone
        assert link.sent[-1]["type"] == "remote_hangup"
    finally:
        await job_session.aclose()
        await session.aclose()
