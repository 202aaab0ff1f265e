"""RTP media for phone calls: RFC 3550 packets, G.711, jitter buffer, RFC 4733 DTMF, paced sending.

`RtpSession` is one call's media; `RtpCall` wraps it as a `CallIO` for the SIP and ARI servers.
"""

from voxline.telephony.rtp.call import RtpCall
from voxline.telephony.rtp.codecs import CODECS, PCMA, PCMU, Codec
from voxline.telephony.rtp.packet import RtpPacket, RtpParseError, parse_rtp
from voxline.telephony.rtp.session import RtpSession
from voxline.telephony.rtp.stats import RtpStats

__all__ = [
    "CODECS",
    "PCMA",
    "PCMU",
    "Codec",
    "RtpCall",
    "RtpPacket",
    "RtpParseError",
    "RtpSession",
    "RtpStats",
    "parse_rtp",
]
