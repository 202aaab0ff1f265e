"""SIP dialogs (RFC 3261 §12): the state two user agents share, and the requests sent within it."""

from __future__ import annotations

from dataclasses import dataclass, field

from voxline.telephony.sip.message import (
    Headers,
    SipRequest,
    SipResponse,
    new_branch,
    parse_cseq,
    parse_name_addr,
    parse_uri,
)
from voxline.telephony.sip.transport import Peer

ALLOWED_METHODS = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "NOTIFY")
"""What we answer (the Allow header); REFER we only send."""

DialogKey = tuple[str, str, str]
"""(Call-ID, local tag, remote tag)."""


def _contact_uri(message: SipRequest | SipResponse) -> str | None:
    contact = message.headers.get("Contact")
    if not contact:
        return None
    try:
        return parse_name_addr(contact).uri
    except ValueError:
        return None


@dataclass
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_party: str  # our From/To header value, with our tag
    remote_party: str  # theirs, with their tag
    remote_target: str  # their Contact URI: the Request-URI of our in-dialog requests
    route_set: list[str] = field(default_factory=list)
    local_seq: int = 1
    remote_seq: int | None = None
    peer: Peer | None = None
    """Where in-dialog requests go when no route set says otherwise (a TCP dialog reuses its connection)."""

    @property
    def key(self) -> DialogKey:
        return self.call_id, self.local_tag, self.remote_tag

    @classmethod
    def as_uas(cls, invite: SipRequest, local_tag: str, peer: Peer) -> Dialog:
        """The dialog an incoming INVITE creates when we answer it (§12.1.1)."""
        remote = invite.headers.get("From") or ""
        to = parse_name_addr(invite.headers.get("To") or "")
        seq, _ = parse_cseq(invite.headers.get("CSeq") or "")
        return cls(
            call_id=invite.headers.get("Call-ID") or "",
            local_tag=local_tag,
            remote_tag=parse_name_addr(remote).tag or "",
            local_party=str(to.with_tag(local_tag)),
            remote_party=remote,
            remote_target=_contact_uri(invite) or parse_name_addr(remote).uri,
            route_set=invite.headers.get_all("Record-Route"),
            local_seq=0,
            remote_seq=seq,
            peer=peer,
        )

    @classmethod
    def as_uac(cls, invite: SipRequest, response: SipResponse, peer: Peer) -> Dialog:
        """The dialog a 2xx to our INVITE creates (§12.1.2): the route set is Record-Route reversed."""
        local = invite.headers.get("From") or ""
        remote = response.headers.get("To") or ""
        seq, _ = parse_cseq(invite.headers.get("CSeq") or "")
        return cls(
            call_id=invite.headers.get("Call-ID") or "",
            local_tag=parse_name_addr(local).tag or "",
            remote_tag=parse_name_addr(remote).tag or "",
            local_party=local,
            remote_party=remote,
            remote_target=_contact_uri(response) or invite.uri,
            route_set=list(reversed(response.headers.get_all("Record-Route"))),
            local_seq=seq,
            peer=peer,
        )

    def accepts_remote_seq(self, request: SipRequest) -> bool:
        """§12.2.2: a CSeq lower than the last one is out of order (500); ACK/CANCEL reuse theirs."""
        seq, _ = parse_cseq(request.headers.get("CSeq") or "")
        if request.method in ("ACK", "CANCEL"):
            return True
        if self.remote_seq is not None and seq < self.remote_seq:
            return False
        self.remote_seq = seq
        return True

    def update_target(self, request: SipRequest) -> None:
        """A target-refresh request (re-INVITE) may move the remote's Contact."""
        uri = _contact_uri(request)
        if uri:
            self.remote_target = uri

    def destination(self) -> Peer:
        """Where the next in-dialog request goes: the first route (loose routing), else the target."""
        connection = self.peer.connection if self.peer is not None else None
        if self.peer is not None and connection is not None and not connection.closed:
            return self.peer
        first = parse_name_addr(self.route_set[0]).uri if self.route_set else self.remote_target
        uri = parse_uri(first)
        transport = (uri.params.get("transport") or (self.peer.transport if self.peer else "udp")).lower()
        default_port = 5061 if uri.scheme == "sips" else 5060
        return Peer(transport, uri.host, uri.port or default_port)

    def request(
        self,
        method: str,
        via: str,
        contact: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra: list[tuple[str, str]] | None = None,
        seq: int | None = None,
    ) -> SipRequest:
        """A new in-dialog request (§12.2.1.1). ACK passes the INVITE's `seq`; others take the next one."""
        if seq is None:
            self.local_seq += 1
            seq = self.local_seq
        headers = Headers()
        headers.add("Via", f"{via};branch={new_branch()};rport")
        for route in self.route_set:
            headers.add("Route", route)
        headers.add("Max-Forwards", "70")
        headers.add("From", self.local_party)
        headers.add("To", self.remote_party)
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{seq} {method}")
        headers.add("Contact", contact)
        for name, value in extra or []:
            headers.add(name, value)
        if content_type is not None:
            headers.add("Content-Type", content_type)
        return SipRequest(method, self.remote_target, headers, body)


def incoming_key(request: SipRequest) -> DialogKey:
    """The key of the dialog an incoming request belongs to (our tag is in To, theirs in From)."""
    local = parse_name_addr(request.headers.get("To") or "").tag or ""
    remote = parse_name_addr(request.headers.get("From") or "").tag or ""
    return request.headers.get("Call-ID") or "", local, remote
