"""Registering with a PBX as an extension (RFC 3261 §10), refreshed before it expires."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from voxline.agent.config import SipRegistrationConfig
from voxline.telephony.sip.auth import credentials_header
from voxline.telephony.sip.message import (
    Headers,
    SipRequest,
    SipResponse,
    new_branch,
    new_call_id,
    new_tag,
    parse_name_addr,
    parse_uri,
)
from voxline.telephony.sip.transport import Peer

if TYPE_CHECKING:
    from voxline.telephony.sip.endpoint import SipEndpoint

log = logging.getLogger(__name__)


def refresh_delay(granted_s: int) -> float:
    """When to re-register: well before expiry (RFC 3261 suggests no later than the last minute)."""
    return max(1.0, granted_s - 30.0 if granted_s > 120 else granted_s * 0.5)


def granted_expiry(response: SipResponse, requested: int) -> int:
    for value in response.headers.get_all("Contact"):
        with contextlib.suppress(ValueError):
            expires = parse_name_addr(value).params.get("expires")
            if expires and expires.isdigit():
                return int(expires)
    header = response.headers.get("Expires")
    return int(header) if header and header.strip().isdigit() else requested


class Registration:
    """Keeps one binding alive: REGISTER, answer the digest challenge, refresh, unregister on stop."""

    retry_s = 30.0
    """Wait after a failed attempt (the registrar may be restarting)."""

    def __init__(self, endpoint: SipEndpoint, config: SipRegistrationConfig) -> None:
        self.endpoint = endpoint
        self.config = config
        registrar = parse_uri(config.registrar)
        self.registrar_uri = f"{registrar.scheme}:{registrar.host}" + (
            f":{registrar.port}" if registrar.port else ""
        )
        transport = (registrar.params.get("transport") or "udp").lower()
        self.peer = Peer(transport, registrar.host, registrar.port or 5060)
        domain = config.domain or registrar.host
        self.aor = f"sip:{config.username}@{domain}"
        self.call_id = new_call_id(endpoint.config.public_host or endpoint.config.host)
        self.tag = new_tag()
        self.seq = 0
        self.registered = False
        self.last_status: int | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = self.endpoint.spawn(self._run(), "sip-register")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.registered:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.register(0), 2.0)

    async def _run(self) -> None:
        while True:
            granted = await self.register(self.config.expires_s)
            await asyncio.sleep(refresh_delay(granted) if granted else self.retry_s)

    async def register(self, expires: int) -> int:
        """One REGISTER (with one digest retry); the granted expiry in seconds, 0 on failure."""
        request = self._request(expires, None)
        response = await self.endpoint.send_request(request, self.peer)
        if response.status in (401, 407):
            answer = credentials_header(request, response, self.config.username, self.config.password)
            if answer is not None:
                request = self._request(expires, answer)
                response = await self.endpoint.send_request(request, self.peer)
        self.last_status = response.status
        if 200 <= response.status < 300:
            granted = granted_expiry(response, expires) if expires else 0
            self.registered = expires > 0
            if expires:
                log.info("registered as %s for %d s", self.aor, granted)
            else:
                log.info("unregistered %s", self.aor)
            return granted
        self.registered = False
        log.warning("REGISTER to %s failed: %d %s", self.registrar_uri, response.status, response.reason)
        return 0

    def _request(self, expires: int, auth: tuple[str, str] | None) -> SipRequest:
        self.seq += 1
        transport = self.peer.transport
        headers = Headers()
        headers.add("Via", f"{self.endpoint.via(transport)};branch={new_branch()};rport")
        headers.add("Max-Forwards", "70")
        headers.add("From", f"<{self.aor}>;tag={self.tag}")
        headers.add("To", f"<{self.aor}>")
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{self.seq} REGISTER")
        headers.add("Contact", self.endpoint.contact(transport))
        headers.add("Expires", str(expires))
        if auth is not None:
            headers.add(*auth)
        return SipRequest("REGISTER", self.registrar_uri, headers)
