"""Asterisk AudioSocket: Asterisk connects over TCP and streams slin audio; we answer in kind.

See /work/shared/TELEPHONY.md and `protocol` for the framing.
"""

from __future__ import annotations

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
