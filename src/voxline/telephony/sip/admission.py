"""Who gets to talk to the SIP endpoint, and how much: the source allow-list, a per-source request
rate, digest authentication of new INVITEs and the call-capacity budget shared with the other ways in.

The source checks run in the transport before a request is parsed, so traffic from a refused
address costs a dictionary lookup, never a response (which a spoofed flood would reflect).
"""

from __future__ import annotations

import logging
import time

from voxline.agent.config import SipConfig
from voxline.capacity import CallCapacity
from voxline.server.metrics import TELEPHONY_REFUSALS, TelephonyRefusals
from voxline.server.ratelimit import SourceRateLimiter
from voxline.telephony.access import SourceAllowList
from voxline.telephony.sip.inbound_auth import InviteAuthenticator

log = logging.getLogger(__name__)

LOG_INTERVAL_S = 10.0


class SipAdmission:
    def __init__(
        self,
        config: SipConfig,
        capacity: CallCapacity | None = None,
        refusals: TelephonyRefusals = TELEPHONY_REFUSALS,
    ) -> None:
        self.refusals = refusals
        """Where refusals are counted for /metrics, by reason."""
        self.allow_list = SourceAllowList(config.allow_from, what="SIP")
        per_s = config.requests_per_source_per_s
        self.limiter = SourceRateLimiter(max(1, round(per_s * 60)), burst=max(1, round(per_s * 2)))
        self.capacity = capacity if capacity is not None else CallCapacity(config.max_calls)
        """The process's call budget (the server passes its own; standalone: SIP's max_calls)."""
        self.authenticator = InviteAuthenticator(config.auth) if config.auth is not None else None
        self.rate_limited = 0
        self.admitted = 0
        self._logged_at = -LOG_INTERVAL_S

    def admit(self, host: str) -> bool:
        """May a request from `host` be parsed? (allow-list, then its request rate)"""
        if not self.allow_list.allows(host):
            self.refusals.count("sip", "allow_list")
            return False
        if self.limiter.allow(host):
            self.admitted += 1
            return True
        self.rate_limited += 1
        self.refusals.count("sip", "rate")
        now = time.monotonic()
        if now - self._logged_at >= LOG_INTERVAL_S:
            self._logged_at = now
            log.warning(
                "SIP requests from %s over the per-source rate: dropped (%d so far)", host, self.rate_limited
            )
        return False

    def describe(self) -> dict[str, object]:
        return {
            **self.allow_list.describe(),
            "rate_limited": self.rate_limited,
            "auth": self.authenticator is not None,
            "auth_failures": self.authenticator.failures if self.authenticator is not None else 0,
        }
