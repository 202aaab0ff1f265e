"""Each way in's metadata, read from what it already parsed: a SIP INVITE, an ARI StasisStart, a
WebSocket start frame, an AudioSocket connection. Everything is bounded here (see `metadata`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from voxline.dispatch.metadata import (
    MAX_ENTRIES,
    MAX_KEY_CHARS,
    MAX_NUMBER_CHARS,
    MAX_VALUE_CHARS,
    CallMetadata,
    MetadataError,
    clean_mapping,
    clean_value,
)

AGENT_ARGUMENT = "agent"
"""The Stasis argument (`Stasis(voxline,agent=hindi)`) and WebSocket start field naming the agent."""


def _uri_user(uri: str) -> str | None:
    from voxline.telephony.sip.addresses import parse_uri
    from voxline.telephony.sip.errors import SipParseError

    try:
        user = parse_uri(uri).user
    except (SipParseError, ValueError):
        return None
    return clean_value(user, MAX_NUMBER_CHARS) if user else None


def sip_metadata(
    request_uri: str, from_value: str | None, headers: Iterable[tuple[str, str]]
) -> CallMetadata:
    """An INVITE's: the request-URI user (dialled), the From user (caller) and its `X-` headers."""
    from voxline.telephony.sip.addresses import parse_name_addr
    from voxline.telephony.sip.errors import SipParseError

    caller = None
    if from_value:
        try:
            caller = _uri_user(parse_name_addr(from_value).uri)
        except (SipParseError, ValueError):
            caller = None
    extra = [(name, value) for name, value in headers if name.lower().startswith("x-")]
    return CallMetadata(
        transport="sip",
        caller_number=caller,
        dialled_number=_uri_user(request_uri),
        headers=clean_mapping(extra),
    )


def websocket_metadata(start: Mapping[str, Any]) -> CallMetadata:
    """A start frame's optional `agent` (a name) and `metadata` (an object of up to MAX_ENTRIES
    scalar fields). Raises MetadataError, which the client is told, for anything out of bounds:
    an API client should learn its mistake rather than have fields silently dropped."""
    agent = start.get(AGENT_ARGUMENT)
    if agent is not None and (not isinstance(agent, str) or not 0 < len(agent) <= MAX_KEY_CHARS):
        raise MetadataError(f"agent must be a string of 1 to {MAX_KEY_CHARS} characters")
    raw = start.get("metadata", {})
    if not isinstance(raw, dict):
        raise MetadataError("metadata must be a JSON object of strings, numbers or booleans")
    if len(raw) > MAX_ENTRIES:
        raise MetadataError(f"metadata has {len(raw)} fields; at most {MAX_ENTRIES} are taken")
    for key, value in raw.items():
        if not isinstance(key, str) or not clean_mapping([(key, "")]):
            raise MetadataError(f"metadata field names are 1-{MAX_KEY_CHARS} of A-Z a-z 0-9 _ . : -")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise MetadataError(f"metadata.{key} must be a string, number or boolean")
        if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
            raise MetadataError(f"metadata.{key} is over {MAX_VALUE_CHARS} characters")
    fields = clean_mapping((k, "" if v is None else v) for k, v in raw.items())
    return CallMetadata(transport="websocket", requested_agent=agent, fields=fields)


def ari_metadata(event: Mapping[str, Any], args: Iterable[str]) -> CallMetadata:
    """A StasisStart's caller id number, dialplan extension, channel variables (`channelvars`,
    those ari.conf asks Asterisk to send) and `name=value` Stasis arguments; `agent=<name>` names
    the agent."""
    channel = event.get("channel")
    channel = channel if isinstance(channel, dict) else {}
    caller = channel.get("caller")
    number = caller.get("number") if isinstance(caller, dict) else None
    dialplan = channel.get("dialplan")
    exten = dialplan.get("exten") if isinstance(dialplan, dict) else None
    pairs: list[tuple[object, object]] = []
    requested = None
    for arg in list(args)[:MAX_ENTRIES]:
        name, eq, value = arg.partition("=")
        if not eq:
            continue
        if name.strip() == AGENT_ARGUMENT:
            requested = clean_value(value, MAX_KEY_CHARS) or None
        else:
            pairs.append((name.strip(), value))
    variables = channel.get("channelvars")
    if isinstance(variables, dict):
        pairs += [(k, v) for k, v in variables.items() if isinstance(v, str)]
    return CallMetadata(
        transport="ari",
        requested_agent=requested,
        caller_number=clean_value(number, MAX_NUMBER_CHARS) if isinstance(number, str) and number else None,
        dialled_number=clean_value(exten, MAX_NUMBER_CHARS) if isinstance(exten, str) and exten else None,
        variables=clean_mapping(pairs),
    )


def audiosocket_metadata(call_uuid: uuid.UUID, listener_port: int) -> CallMetadata:
    return CallMetadata(transport="audiosocket", audiosocket_uuid=str(call_uuid), listener_port=listener_port)


def outbound_sip_metadata(uri: str, our_user: str, agent: str | None) -> CallMetadata:
    """A call we place: we are the caller, the URI's user is dialled; `agent` placed it."""
    return CallMetadata(
        transport="sip",
        agent=clean_value(agent, MAX_KEY_CHARS) if agent else None,
        caller_number=clean_value(our_user, MAX_NUMBER_CHARS) or None,
        dialled_number=_uri_user(uri),
    )
