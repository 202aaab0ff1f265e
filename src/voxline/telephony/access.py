"""Who may reach a telephony listener: a source allow-list of CIDR networks.

`allow_from` unset means loopback only (127.0.0.0/8 and ::1): a listener bound to a public address
takes nothing from the network until the operator names the PBX or trunk addresses, the way
Asterisk's `permit`/`deny` or a LiveKit trunk's `allowed_addresses` do. `["0.0.0.0/0", "::/0"]`
opens it to everyone, explicitly.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Iterable, Sequence

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.0/8", "::1/128")
REFUSAL_LOG_INTERVAL_S = 10.0
MAX_REMEMBERED = 4096
"""Verdicts cached per source string (a flood repeats one source; parsing it each time costs 6 µs)."""

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: Iterable[str]) -> list[Network]:
    """CIDRs (or bare addresses) as networks. Raises ValueError naming the bad entry."""
    networks: list[Network] = []
    for text in cidrs:
        try:
            networks.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an IP network or address: {text!r} (e.g. 192.0.2.0/24)") from None
    return networks


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def is_loopback_bind(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


class SourceAllowList:
    """`allows(host)`: is a packet or connection from `host` let in? Refusals are counted and logged
    at most once per source every 10 s (a scan must not flood the log)."""

    def __init__(self, cidrs: Sequence[str] | None, *, what: str) -> None:
        self.what = what
        self.explicit = cidrs is not None
        self.networks = parse_networks(LOOPBACK if cidrs is None else cidrs)
        self.refused = 0
        self._logged: dict[str, float] = {}
        self._verdicts: dict[str, bool] = {}

    def allows(self, host: str) -> bool:
        verdict = self._verdicts.get(host)
        if verdict is None:
            verdict = self._decide(host)
            if len(self._verdicts) >= MAX_REMEMBERED:
                self._verdicts.clear()
            self._verdicts[host] = verdict
        if not verdict:
            self.refused += 1
            self._log_refusal(host)
        return verdict

    def _decide(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            address = None
        if address is not None:
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                address = address.ipv4_mapped
            return any(address in network for network in self.networks)
        return False

    def _log_refusal(self, host: str) -> None:
        now = time.monotonic()
        if now - self._logged.get(host, -REFUSAL_LOG_INTERVAL_S) < REFUSAL_LOG_INTERVAL_S:
            return
        if len(self._logged) > 1024:
            self._logged.clear()
        self._logged[host] = now
        hint = "" if self.explicit else " (allow_from is unset: loopback only)"
        log.warning("%s: refused a source outside allow_from: %s%s", self.what, host, hint)

    def warn_if_open(self, bind_host: str) -> None:
        """Say so at start when a listener on a public address is open to the whole network."""
        if is_loopback_bind(bind_host):
            return
        if not self.explicit:
            log.warning(
                "%s listens on %s but allow_from is unset: only loopback sources are accepted; "
                "list your PBX/trunk networks in allow_from (docs/security.md)",
                self.what,
                bind_host,
            )
        elif any(network.prefixlen == 0 for network in self.networks):
            log.warning("%s listens on %s and allow_from admits every address", self.what, bind_host)

    def describe(self) -> dict[str, object]:
        return {"allow_from": [str(n) for n in self.networks], "refused": self.refused}
