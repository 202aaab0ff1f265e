"""The state of a call's RTP as the signalling agreed it, in plain values that cross to a job.

`RtpMediaState` is what the supervisor's `JobRtpSession` hands to the job with the socket (and sends
again after every re-INVITE); `open_session_from_state` builds the job's real `RtpSession` from it and
`apply_state` brings that session up to date.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

from voxline.telephony.rtp.codecs import CODECS, Codec
from voxline.telephony.rtp.session import RtpSession

__all__ = ["RtpMediaState", "apply_state", "codec_named", "open_session_from_state"]


def codec_named(name: str, payload_type: int) -> Codec:
    """The codec a state names, with the payload type the peer agreed on."""
    base = CODECS.get(name)
    if name == "L16":  # ARI's slin16 (imported here: the ARI package brings its HTTP client along)
        from voxline.telephony.ari.media import L16_16K

        base = L16_16K
    if base is None:
        raise ValueError(f"unknown RTP codec {name[:40]!r}")
    if not 0 <= payload_type <= 127:
        raise ValueError(f"RTP payload type {payload_type} out of range")
    return dataclasses.replace(base, payload_type=payload_type)


@dataclass(frozen=True, slots=True)
class RtpMediaState:
    """Everything a job needs to run a call's RTP as the supervisor negotiated it (plain values)."""

    codec: str
    payload_type: int
    dtmf_payload_type: int | None = 101
    remote: tuple[str, int] | None = None
    on_hold: bool = False
    inband_dtmf: bool = False
    learn_sources: bool = True
    confirmed: bool = True
    jitter_ms: int = 60

    def to_json(self) -> dict[str, Any]:
        body = dataclasses.asdict(self)
        body["remote"] = list(self.remote) if self.remote is not None else None
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> RtpMediaState:
        """Read a state sent by the supervisor; a malformed one raises ValueError."""
        try:
            remote = body.get("remote")
            dtmf = body.get("dtmf_payload_type")
            state = cls(
                codec=str(body["codec"]),
                payload_type=int(body["payload_type"]),
                dtmf_payload_type=None if dtmf is None else int(dtmf),
                remote=None if remote is None else (str(ipaddress.ip_address(remote[0])), int(remote[1])),
                on_hold=bool(body.get("on_hold", False)),
                inband_dtmf=bool(body.get("inband_dtmf", False)),
                learn_sources=bool(body.get("learn_sources", True)),
                confirmed=bool(body.get("confirmed", True)),
                jitter_ms=int(body.get("jitter_ms", 60)),
            )
        except (KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"malformed RTP media state: {exc}") from exc
        codec_named(state.codec, state.payload_type)  # raises if unknown
        if state.remote is not None and not 0 < state.remote[1] < 65536:
            raise ValueError(f"RTP remote port {state.remote[1]} out of range")
        if not 0 <= state.jitter_ms <= 1000:
            raise ValueError(f"jitter buffer of {state.jitter_ms} ms out of range")
        return state


def apply_state(session: RtpSession, state: RtpMediaState) -> None:
    """Bring a job's session to the state the supervisor's signalling agreed on (idempotent)."""
    codec = codec_named(state.codec, state.payload_type)
    if codec != session.codec or state.dtmf_payload_type != session.dtmf_payload_type:
        session.set_codec(codec, state.dtmf_payload_type)
    session.inband_dtmf = state.inband_dtmf
    session.learn_sources = state.learn_sources
    if state.remote is not None:
        session.set_remote(*state.remote)  # the same address again keeps what was learned
    session.set_hold(state.on_hold)
    if state.confirmed and not session.confirmed:
        session.media_confirmed()
    elif not state.confirmed and session.confirmed:
        session.await_confirmation()


async def open_session_from_state(
    sock: socket.socket, state: RtpMediaState, *, call_id: str = ""
) -> RtpSession:
    """The job's side: the real session, on the socket the supervisor bound, as it negotiated."""
    session = await RtpSession.on_socket(
        sock,
        codec=codec_named(state.codec, state.payload_type),
        dtmf_payload_type=state.dtmf_payload_type,
        jitter_ms=state.jitter_ms,
        call_id=call_id,
    )
    apply_state(session, state)
    return session
