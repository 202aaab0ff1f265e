"""What the signalling and a call use of one call's RTP, wherever its packets are handled.

Two things fit: `RtpSession`, which sends and receives on its own socket in this process, and
`JobRtpSession` (voxline.telephony.rtp.handoff), the supervisor's side of a session whose socket was
handed to a job process. SIP offer/answer, ARI set-up and `RtpCall` work on either alike.
"""

from __future__ import annotations

from typing import Protocol

from voxline.audio.pcm import AudioChunk
from voxline.telephony.rtp.codecs import Codec
from voxline.telephony.rtp.stats import RtpStats
from voxline.transports.base import Dtmf, PacedSink

__all__ = ["RtpMedia"]


class RtpMedia(Protocol):
    call_id: str
    local_host: str
    local_port: int
    codec: Codec
    dtmf_payload_type: int | None
    sink: PacedSink
    stats: RtpStats
    learn_sources: bool
    """False: only the signalled address is ever heard (ARI: Asterisk announces it)."""
    inband_dtmf: bool
    """Look for keypad tones in the audio (no telephone-event was negotiated)."""
    confirmed: bool

    @property
    def remote(self) -> tuple[str, int] | None: ...

    def set_remote(self, host: str, port: int) -> None: ...

    def set_codec(self, codec: Codec, dtmf_payload_type: int | None) -> None: ...

    def set_hold(self, on_hold: bool) -> None: ...

    def await_confirmation(self) -> None: ...

    def media_confirmed(self) -> None: ...

    def end_input(self) -> None: ...

    def inject(self, item: Dtmf) -> None: ...

    async def receive(self) -> AudioChunk | Dtmf | None: ...

    async def send_dtmf(self, digits: str, duration_ms: int = 100) -> None: ...

    async def aclose(self) -> None: ...
