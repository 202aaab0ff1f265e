"""Asterisk ARI external media: voxline as a Stasis application whose calls' media is RTP.

See docs/asterisk.md ("ARI external media") for the Asterisk side. The controller (and with it the
RTP stack) is imported on first use, so the REST/events client stays light to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from voxline.telephony.ari.client import AriAuthError, AriClient, AriError
from voxline.telephony.ari.events import AriEvent, AriProtocolError, parse_event

if TYPE_CHECKING:
    from voxline.telephony.ari.controller import AriController, parse_transfer_target

__all__ = [
    "AriAuthError",
    "AriClient",
    "AriController",
    "AriError",
    "AriEvent",
    "AriProtocolError",
    "parse_event",
    "parse_transfer_target",
]


def __getattr__(name: str) -> Any:
    if name in ("AriController", "parse_transfer_target"):
        from voxline.telephony.ari import controller

        return getattr(controller, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
