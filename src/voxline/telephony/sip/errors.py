"""The one error SIP parsing raises, carrying the response a UAS should send for it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voxline.telephony.sip.message import SipRequest


class SipParseError(ValueError):
    """A message we cannot accept. `status`/`reason` is the response to send if it was a request.

    `partial` is the request as far as it could be read (start line and headers), so the caller can
    address an error response with `make_response`; None when even that was impossible.
    """

    def __init__(self, reason: str, status: int = 400, *, partial: SipRequest | None = None) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.partial = partial
