"""What is known of a call besides its audio, as plain bounded values (`CallMetadata`).

Every value here came from the far end (a SIP header, a Stasis argument, a WebSocket start frame),
so each is bounded on the way in: at most `MAX_ENTRIES` entries per mapping, keys of `MAX_KEY_CHARS`
from a small alphabet, values cut to `MAX_VALUE_CHARS` with control characters removed. That makes
it safe to log and to keep on the call's record; it is NOT yet safe to put in a prompt (see
`voxline.dispatch.context`, which admits a value to the prompt only through the agent's own pattern).

It crosses process boundaries as JSON (`as_dict` / `from_dict`): a job process gets it with its
call's assignment.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

MAX_ENTRIES = 16
"""Entries kept per mapping (headers, variables, fields); the rest are dropped."""
MAX_KEY_CHARS = 64
MAX_VALUE_CHARS = 256
MAX_NUMBER_CHARS = 64
_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


class MetadataError(ValueError):
    """Metadata a client sent that cannot be taken (a WebSocket start frame's fields)."""


def clean_value(value: object, limit: int = MAX_VALUE_CHARS) -> str:
    """`value` as one line of printable text, at most `limit` characters: control and format
    characters (newlines, bidi overrides, NUL) become spaces, runs of spaces one space."""
    text = str(value)[: limit * 4]
    out = [" " if unicodedata.category(ch)[0] in ("C", "Z") else ch for ch in text]
    return " ".join("".join(out).split())[:limit]


def clean_mapping(items: Iterable[tuple[object, object]]) -> dict[str, str]:
    """At most MAX_ENTRIES (key, value) pairs with well-formed keys; the first of a repeated key wins."""
    kept: dict[str, str] = {}
    for key, value in items:
        if len(kept) >= MAX_ENTRIES:
            break
        name = str(key)
        if not _KEY.fullmatch(name) or name in kept:
            continue
        kept[name] = clean_value(value)
    return kept


@dataclass(frozen=True, slots=True)
class CallMetadata:
    """A call's metadata. Each way in fills what it knows; `agent` is set by dispatch."""

    transport: str = ""
    agent: str | None = None
    """The agent the node chose for the call (by its name in the node's `agents:`)."""
    requested_agent: str | None = None
    """The agent the call asked for by name (a WebSocket `agent` field, a SIP header, a Stasis
    argument), before dispatch checked it; None when the call named none."""
    caller_number: str | None = None
    """Who is calling: the SIP From user, the ARI caller id number."""
    dialled_number: str | None = None
    """What they called: the SIP request-URI user, the ARI dialplan extension."""
    headers: dict[str, str] = field(default_factory=dict)
    """SIP `X-` headers (name as sent)."""
    variables: dict[str, str] = field(default_factory=dict)
    """ARI channel variables and `name=value` Stasis arguments."""
    fields: dict[str, str] = field(default_factory=dict)
    """A WebSocket start frame's `metadata` object."""
    audiosocket_uuid: str | None = None
    listener_port: int | None = None
    """The local port the call came in on (AudioSocket listeners)."""

    def with_agent(self, agent: str) -> CallMetadata:
        return replace(self, agent=agent)

    def header(self, name: str) -> str | None:
        """A SIP header's value, by its name in any case."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values, only what is set (the call's record and a job's assignment)."""
        out: dict[str, Any] = {"transport": self.transport}
        for name in ("agent", "requested_agent", "caller_number", "dialled_number", "audiosocket_uuid",
                     "listener_port"):  # fmt: skip
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        for name in ("headers", "variables", "fields"):
            value = getattr(self, name)
            if value:
                out[name] = dict(value)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CallMetadata:
        """The inverse of `as_dict`, bounding everything again (it may come from another process)."""

        def text(name: str, limit: int = MAX_VALUE_CHARS) -> str | None:
            value = data.get(name)
            return None if value is None else clean_value(value, limit)

        def mapping(name: str) -> dict[str, str]:
            value = data.get(name)
            return clean_mapping(value.items()) if isinstance(value, Mapping) else {}

        port = data.get("listener_port")
        return cls(
            transport=text("transport", 32) or "",
            agent=text("agent", MAX_KEY_CHARS),
            requested_agent=text("requested_agent", MAX_KEY_CHARS),
            caller_number=text("caller_number", MAX_NUMBER_CHARS),
            dialled_number=text("dialled_number", MAX_NUMBER_CHARS),
            headers=mapping("headers"),
            variables=mapping("variables"),
            fields=mapping("fields"),
            audiosocket_uuid=text("audiosocket_uuid", 64),
            listener_port=port if isinstance(port, int) and not isinstance(port, bool) else None,
        )
