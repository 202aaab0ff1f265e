"""What the controller remembers about one ARI call: the Asterisk objects it made and how far it got."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voxline.dispatch.metadata import CallMetadata
    from voxline.telephony.rtp.call import RtpCall
    from voxline.telephony.rtp.media import RtpMedia


@dataclass(slots=True)
class AriLeg:
    caller_id: str
    media_id: str
    bridge_id: str | None = None
    session: RtpMedia | None = None
    call: RtpCall | None = None
    media_created: bool = False
    bridge_created: bool = False
    caller_gone: bool = False
    """Asterisk told us the caller left (hung up, or left Stasis): never DELETE it then."""
    media_gone: bool = False
    transferred: bool = False
    cleaning_up: bool = False
    ended_reason: str | None = None
    metadata: CallMetadata | None = None
    """What the StasisStart told of the call, with the agent dispatch chose."""

    def end_call(self, reason: str) -> None:
        """The far side is gone: make the handler's receive() return None (now, or once the call exists)."""
        if self.ended_reason is None:
            self.ended_reason = reason
        if self.call is not None:
            self.call.remote_hangup(reason)
