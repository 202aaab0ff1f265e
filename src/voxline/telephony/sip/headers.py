"""SIP header fields (RFC 3261 §7.3, §20): names, comma-separated list values, the `Headers` container.

Compact names (`v`, `f`, `i` ...) expand to their full spelling; list headers (Via, Route, Contact ...)
may carry several values on one line, which `Headers.get_all` splits. Values with CR, LF or NUL are
refused when building, so a value taken from a peer can never inject a header line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

TOKEN_RE = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")
FORBIDDEN_CHARS = frozenset("\r\n\x00")
_FORBIDDEN_RE = re.compile(r"[\r\n]|(?<!\\)\x00")
"""CR, LF, or a NUL that is not a quoted-pair (`\\` NUL is legal in a quoted string: RFC 4475 intmeth)."""

COMPACT_FORMS = {
    "a": "accept-contact", "b": "referred-by", "c": "content-type", "d": "request-disposition",
    "e": "content-encoding", "f": "from", "i": "call-id", "j": "reject-contact", "k": "supported",
    "l": "content-length", "m": "contact", "n": "identity-info", "o": "event", "r": "refer-to",
    "s": "subject", "t": "to", "u": "allow-events", "v": "via", "x": "session-expires", "y": "identity",
}  # fmt: skip

_CANONICAL = {
    name.lower(): name
    for name in (
        "Via", "From", "To", "Call-ID", "CSeq", "Contact", "Max-Forwards", "Content-Length", "Content-Type",
        "Content-Encoding", "Content-Disposition", "Route", "Record-Route", "Allow", "Supported", "Require",
        "Proxy-Require", "Unsupported", "Expires", "Min-Expires", "User-Agent", "Server", "Subject",
        "Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Proxy-Authorization",
        "WWW-Authenticate", "Proxy-Authenticate", "Event", "Allow-Events", "Refer-To", "Referred-By",
        "Session-Expires", "Min-SE", "RSeq", "RAck", "P-Asserted-Identity", "Reason", "Timestamp",
        "Warning", "Date", "Retry-After", "Organization", "Accept-Contact", "Reject-Contact",
        "Request-Disposition", "Identity", "Identity-Info", "MIME-Version", "Subscription-State",
        "Replaces", "Path", "Service-Route", "Privacy", "Call-Info", "Alert-Info", "Error-Info",
    )
}  # fmt: skip

# Headers whose grammar is a comma-separated list: several values may share one line.
_LIST_HEADERS = frozenset(
    {
        "via", "route", "record-route", "contact", "allow", "supported", "require", "proxy-require",
        "unsupported", "accept", "accept-encoding", "accept-language", "allow-events", "content-encoding",
        "content-language", "in-reply-to", "path", "service-route", "alert-info", "call-info",
        "error-info", "warning", "reason", "p-asserted-identity", "history-info", "accept-contact",
        "reject-contact", "request-disposition",
    }
)  # fmt: skip


def _key(name: str) -> str:
    lower = name.strip().lower()
    return COMPACT_FORMS.get(lower, lower) if len(lower) == 1 else lower


def canonical_name(name: str) -> str:
    """The conventional spelling of a header name; compact forms expand (`v` → `Via`)."""
    key = _key(name)
    return _CANONICAL.get(key, name.strip() if len(name.strip()) > 1 else key.title())


def split_list(value: str, sep: str = ",", *, keep_empty: bool = False) -> list[str]:
    """Split at `sep` outside quoted strings and <...>; items stripped, empty items dropped
    (kept with `keep_empty`, for grammars where an empty item is an error)."""
    items: list[str] = []
    start = 0
    in_quote = escaped = False
    depth = 0
    for i, ch in enumerate(value):
        if in_quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_quote = False
        elif ch == '"':
            in_quote = True
        elif ch == "<":
            depth += 1
        elif ch == ">" and depth:
            depth -= 1
        elif ch == sep and not depth:
            items.append(value[start:i])
            start = i + 1
    items.append(value[start:])
    return [item.strip(" \t") for item in items if keep_empty or item.strip(" \t")]


def _check_value(name: str, value: str) -> None:
    if not TOKEN_RE.fullmatch(name):
        raise ValueError(f"invalid header name {name!r}")
    if _FORBIDDEN_RE.search(value):
        raise ValueError(f"header {name} value contains CR, LF or NUL (header injection?)")


class Headers:
    """Ordered, case-insensitive, multi-valued SIP headers. Compact names expand to full ones."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = []
        for name, value in items:
            self.add(name, value)

    def _append(self, name: str, value: str) -> None:
        """Unchecked add, for the message parser, which has already validated and trimmed the line."""
        self._items.append((canonical_name(name), value))

    def get(self, name: str) -> str | None:
        """The first value (for list headers, the first item, e.g. the topmost Via)."""
        values = self.get_all(name)
        return values[0] if values else None

    def get_all(self, name: str) -> list[str]:
        """Every value in order; comma-joined lines of list headers (Via, Route, ...) split into items."""
        key = _key(name)
        values = [v for n, v in self._items if n.lower() == key]
        if key in _LIST_HEADERS:
            return [item for v in values for item in split_list(v)]
        return values

    def add(self, name: str, value: str) -> None:
        _check_value(name, value)
        self._append(name, value.strip(" \t"))

    def set(self, name: str, value: str) -> None:
        """Replace every value of `name`, keeping the position of the first one."""
        _check_value(name, value)
        key = _key(name)
        out: list[tuple[str, str]] = []
        placed = False
        for n, v in self._items:
            if n.lower() != key:
                out.append((n, v))
            elif not placed:
                out.append((n, value.strip(" \t")))  # keep the spelling already on the wire
                placed = True
        if not placed:
            out.append((canonical_name(name), value.strip(" \t")))
        self._items = out

    def remove(self, name: str) -> None:
        key = _key(name)
        self._items = [(n, v) for n, v in self._items if n.lower() != key]

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = _key(name)
        return any(n.lower() == key for n, _ in self._items)

    def items(self) -> list[tuple[str, str]]:
        """The header lines as stored (one entry per line, list values not split)."""
        return list(self._items)

    def copy(self) -> Headers:
        other = Headers()
        other._items = list(self._items)
        return other

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"
