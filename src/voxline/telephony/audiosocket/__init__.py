"""Asterisk AudioSocket: Asterisk connects over TCP and streams slin audio; we answer in kind.

See /work/shared/TELEPHONY.md and `protocol` for the framing. The server (with the HTTP app's
metrics it reports to) is imported on first use: a job process that runs one call on a handed-over
connection needs only the call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from voxline.telephony.audiosocket.call import AudioSocketCall, AudioSocketSink
from voxline.telephony.audiosocket.protocol import (
    AUDIO_RATES,
    AudioSocketProtocolError,
    ErrorCode,
    Frame,
    FrameDecoder,
    Kind,
    encode_frame,
)

if TYPE_CHECKING:
    from voxline.telephony.audiosocket.server import AudioSocketServer

__all__ = [
    "AUDIO_RATES",
    "AudioSocketCall",
    "AudioSocketProtocolError",
    "AudioSocketServer",
    "AudioSocketSink",
    "ErrorCode",
    "Frame",
    "FrameDecoder",
    "Kind",
    "encode_frame",
]


def __getattr__(name: str) -> Any:
    if name == "AudioSocketServer":
        from voxline.telephony.audiosocket import server

        return server.AudioSocketServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
