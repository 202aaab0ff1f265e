"""The glue between SDP offer/answer (RFC 3264) and one call's RtpSession."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import secrets

from voxline.agent.config import SipConfig
from voxline.audio.clock import Clock
from voxline.telephony.access import is_ip_literal
from voxline.telephony.rtp.codecs import CODECS
from voxline.telephony.rtp.handoff import open_call_rtp
from voxline.telephony.rtp.media import RtpMedia
from voxline.telephony.sip.sdp import (
    NegotiatedMedia,
    SdpNegotiationError,
    answer_direction,
    build_sdp,
    negotiate,
    parse_sdp,
)

log = logging.getLogger(__name__)

UNSPECIFIED = "0.0.0.0"


def _family(host: str) -> int:
    """The IP version of the RTP socket bound to `host` (a name binds IPv4 here)."""
    try:
        return ipaddress.ip_address(host).version
    except ValueError:
        return 4


def _sdp_host(config: SipConfig) -> str:
    return config.public_host or config.host


async def open_session(
    config: SipConfig, call_id: str, clock: Clock | None, *, in_job: bool = False
) -> RtpMedia:
    """The call's RTP socket; `in_job`: its packets will be handled by the call's job process."""
    return await open_call_rtp(
        config.host,
        config.rtp_port_min,
        config.rtp_port_max,
        in_job=in_job,
        codec=CODECS[config.codecs[0]],
        jitter_ms=config.jitter_buffer_ms,
        call_id=call_id,
        clock=clock,
    )


class CallMedia:
    """One call's side of the offer/answer: our SDP (with its version) and what we agreed."""

    def __init__(self, config: SipConfig, session: RtpMedia) -> None:
        self.config = config
        self.session = session
        self.session_id = secrets.randbelow(2**31)
        self.version = 0
        self.negotiated: NegotiatedMedia | None = None

    def offer(self) -> bytes:
        """Our offer (outbound calls, or an INVITE that came without SDP): every codec we take."""
        self.version += 1
        return build_sdp(
            _sdp_host(self.config),
            self.session.local_port,
            codecs=list(self.config.codecs),
            dtmf_payload_type=101,
            session_id=self.session_id,
            version=self.version,
        )

    def _reachable(self, negotiated: NegotiatedMedia) -> NegotiatedMedia:
        """An IPv6 `c=` on our IPv4 RTP socket: an IPv4-mapped address is its IPv4 address (RFC 5118
        §4.9); any other cannot be sent to from here, so the media is refused (488, Warning 301)."""
        remote = ipaddress.ip_address(negotiated.remote_host)
        if remote.version == 4 or remote.is_unspecified or _family(self.config.host) == 6:
            return negotiated
        if isinstance(remote, ipaddress.IPv6Address) and remote.ipv4_mapped is not None:
            return dataclasses.replace(negotiated, remote_host=str(remote.ipv4_mapped))
        raise SdpNegotiationError(
            f"audio on IPv6 ({negotiated.remote_host}) and our RTP socket is IPv4",
            (301, "incompatible network address formats"),
        )

    def accept(self, sdp: bytes) -> NegotiatedMedia:
        """Take the remote's SDP (offer or answer) and point the session at it.

        Raises SdpError (unparsable: 400) or SdpNegotiationError (nothing in common: 488).
        """
        negotiated = negotiate(parse_sdp(sdp), list(self.config.codecs))
        if not is_ip_literal(negotiated.remote_host):
            # Sending there would resolve the name on the event loop; RFC 4566 allows names, but
            # every PBX and trunk we serve writes addresses, so refuse the media (488).
            raise SdpNegotiationError(f"c= names a host, not an IP address: {negotiated.remote_host[:80]!r}")
        negotiated = self._reachable(negotiated)
        self.negotiated = negotiated
        # Static types are the norm, but a peer may map G.711 to a dynamic number: send what it expects.
        codec = dataclasses.replace(CODECS[negotiated.codec], payload_type=negotiated.payload_type)
        self.session.set_codec(codec, negotiated.dtmf_payload_type)
        self.session.inband_dtmf = negotiated.dtmf_payload_type is None
        if negotiated.remote_host != UNSPECIFIED and negotiated.remote_port > 0:
            self.session.set_remote(negotiated.remote_host, negotiated.remote_port)
        self.session.set_hold(negotiated.on_hold)
        log.info(
            "media: %s to %s:%d, dtmf pt %s, %s",
            negotiated.codec,
            negotiated.remote_host,
            negotiated.remote_port,
            negotiated.dtmf_payload_type,
            "on hold" if negotiated.on_hold else negotiated.direction,
        )
        return negotiated

    def answer(self) -> bytes:
        """Our answer to the SDP just accepted: the one codec chosen, the direction mirrored."""
        assert self.negotiated is not None, "answer() needs accept() first"
        self.version += 1
        chosen = self.negotiated
        return build_sdp(
            _sdp_host(self.config),
            self.session.local_port,
            codecs=[chosen.codec],
            payload_types={chosen.codec: chosen.payload_type},
            dtmf_payload_type=chosen.dtmf_payload_type,
            direction=answer_direction(chosen.direction),
            session_id=self.session_id,
            version=self.version,
        )
