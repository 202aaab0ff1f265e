"""Ways into voxline from the phone network: SIP/RTP, Asterisk AudioSocket and ARI external media.

Every way in turns a phone call into a `CallIO` and hands it to a `CallHandler` (the runtime's
conversation runner, or an echo agent in tests). The handler owns the call until it returns; the
server that created the call then hangs up (if nobody has) and releases its resources.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from voxline.transports.base import CallIO

CallHandler = Callable[[CallIO], Awaitable[None]]

__all__ = ["CallHandler"]
