"""Best-effort error responses to requests the parser rejected (RFC 3261 §8.2: 400, 413, 505 ...).

A response needs Via, From, To, Call-ID and CSeq copied from the request. The parser refused the
message, so this scans it leniently for just those lines. Without a Via there is nothing to answer
(and never answer an ACK or a response), so the message is dropped.
"""

from __future__ import annotations

_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id"}
_COPIED = ("via", "from", "to", "call-id", "cseq")
_CANONICAL = {"via": "Via", "from": "From", "to": "To", "call-id": "Call-ID", "cseq": "CSeq"}
MAX_COPIED_LINE = 1024
"""A copied header longer than this is left out: an error must never amplify what a peer sent."""


def _safe_reason(reason: str) -> str:
    cleaned = "".join(ch for ch in reason if ch.isprintable())[:100].strip()
    return cleaned or "Bad Request"


def error_response(data: bytes, status: int, reason: str) -> bytes | None:
    """The bytes of a `status` response to the request in `data`, or None if none can be sent."""
    text = data[:65536].decode("latin-1")
    head = text.split("\r\n\r\n", 1)[0].split("\n\n", 1)[0]
    lines = head.replace("\r\n", "\n").split("\n")
    start = lines[0].split(" ")
    if len(start) < 3 or start[0].startswith("SIP/") or start[0].upper() == "ACK":
        return None
    copied: dict[str, list[str]] = {name: [] for name in _COPIED}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        key = _COMPACT.get(key, key)
        value = value.strip()
        if key in copied and 0 < len(value) <= MAX_COPIED_LINE and value.isprintable():
            copied[key].append(value)
    if not copied["via"]:
        return None
    out = [f"SIP/2.0 {status} {_safe_reason(reason)}"]
    for key in _COPIED:
        values = copied[key] if key == "via" else copied[key][:1]
        out.extend(f"{_CANONICAL[key]}: {value}" for value in values)
    out.append("Content-Length: 0")
    return ("\r\n".join(out) + "\r\n\r\n").encode("latin-1", "replace")
