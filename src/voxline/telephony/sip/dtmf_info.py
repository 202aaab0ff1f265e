"""DTMF carried in SIP INFO bodies: application/dtmf-relay ("Signal=5\\r\\nDuration=160") and
application/dtmf ("5"). Phones and PBXs that cannot send RFC 4733 events use these."""

from __future__ import annotations

from voxline.transports.base import Dtmf

DTMF_RELAY = "application/dtmf-relay"
DTMF_PLAIN = "application/dtmf"
DTMF_CONTENT_TYPES = frozenset({DTMF_RELAY, DTMF_PLAIN})
_DIGITS = frozenset("0123456789*#ABCD")
_EVENT_CODES = {"10": "*", "11": "#", "12": "A", "13": "B", "14": "C", "15": "D"}
"""Some senders give the RFC 4733 event number instead of the key."""
DEFAULT_DURATION_MS = 100


def _digit(text: str) -> str:
    text = text.strip().upper()
    text = _EVENT_CODES.get(text, text)
    if text not in _DIGITS:
        raise ValueError(f"not a DTMF key: {text[:20]!r}")
    return text


def _duration(text: str) -> int:
    text = text.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 6:
        raise ValueError(f"bad DTMF duration: {text[:20]!r}")
    return int(text)


def parse_dtmf_info(content_type: str, body: bytes) -> Dtmf:
    """The key press in an INFO body. Raises ValueError for anything else (answer 400)."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    text = body.decode("ascii", "replace")
    if media_type == DTMF_PLAIN:
        return Dtmf(_digit(text), DEFAULT_DURATION_MS)
    if media_type != DTMF_RELAY:
        raise ValueError(f"not a DTMF content type: {media_type[:60]!r}")
    fields: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            fields[name.strip().lower()] = value
    if "signal" not in fields:
        raise ValueError("dtmf-relay body has no Signal=")
    duration = _duration(fields["duration"]) if "duration" in fields else DEFAULT_DURATION_MS
    return Dtmf(_digit(fields["signal"]), duration)
