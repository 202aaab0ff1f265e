"""Parsing Asterisk's event JSON (fuzzed), and the events socket's auth failure and reconnects."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from telephony.ari.ari_double import AriDouble
from voxline.telephony.ari.client import AriAuthError, basic_auth_header, events_url
from voxline.telephony.ari.events import AriEvent, AriEventStream, AriProtocolError, parse_event


def test_parses_the_documented_event_shapes() -> None:
    dtmf = parse_event(json.dumps({
        "type": "ChannelDtmfReceived", "timestamp": "2025-01-01T00:00:00.000+0000", "digit": "5",
        "duration_ms": 120, "channel": {"id": "1700.1", "name": "PJSIP/1000-00000001"},
        "application": "voxline",
    }))  # fmt: skip
    assert (dtmf.type, dtmf.channel_id, dtmf.digit, dtmf.duration_ms) == (
        "ChannelDtmfReceived", "1700.1", "5", 120,
    )  # fmt: skip
    start = parse_event(json.dumps({"type": "StasisStart", "args": ["a", "b"], "channel": {"id": "c"}}))
    assert start.args == ("a", "b")
    destroyed = parse_event(json.dumps({"type": "ChannelDestroyed", "cause": 16, "channel": {"id": "c"}}))
    assert destroyed.cause == 16
    assert parse_event(b'{"type": "BridgeDestroyed", "bridge": {}}').channel_id is None


@pytest.mark.parametrize(
    "frame",
    ["", "not json", "[]", "42", '{"no": "type"}', '{"type": 5}', '{"type": "X", "channel": "c"}',
     '{"type": "X", "channel": {"id": 1}}', '{"type": "X", "args": "a"}', '{"type": "X", "digit": 5}',
     b"\xff\xfe"],
)  # fmt: skip
def test_malformed_frames_are_protocol_errors(frame: str | bytes) -> None:
    with pytest.raises(AriProtocolError):
        parse_event(frame)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
event_like = st.fixed_dictionaries(
    {},
    optional={
        "type": json_values | st.sampled_from(["StasisStart", "ChannelDtmfReceived", "StasisEnd"]),
        "channel": json_values | st.fixed_dictionaries({"id": json_values}),
        "args": json_values, "digit": json_values, "duration_ms": json_values, "cause": json_values,
    },
)  # fmt: skip


@given(st.one_of(st.binary(max_size=64), st.text(max_size=64), event_like.map(json.dumps)))
def test_parse_event_never_fails_other_than_protocol_error(frame: str | bytes) -> None:
    try:
        event = parse_event(frame)
    except AriProtocolError:
        return
    assert isinstance(event.type, str) and event.type
    assert event.channel_id is None or isinstance(event.channel_id, str)
    assert all(isinstance(a, str) for a in event.args)
    assert isinstance(event.duration_ms, int)


async def test_bad_credentials_on_the_events_socket() -> None:
    async with AriDouble() as ari:
        stream = AriEventStream(events_url(ari.url, "voxline"), basic_auth_header("asterisk", "bad"), _ignore)
        with pytest.raises(AriAuthError) as err:
            await stream.connect_once()
        assert err.value.status == 401
        assert ari.event_connections == 0


async def test_reconnects_after_the_socket_drops_and_survives_garbage() -> None:
    seen: list[AriEvent] = []

    async def collect(event: AriEvent) -> None:
        seen.append(event)

    async with AriDouble() as ari:
        stream = AriEventStream(
            events_url(ari.url, "voxline"), basic_auth_header("asterisk", "secret"), collect
        )
        await stream.connect_once()
        await ari.wait_for(lambda: len(ari.sockets) == 1)
        await ari.send_raw("{garbage")
        await ari.send_raw(json.dumps({"type": "Ping"}))
        await ari.wait_for(lambda: len(seen) == 1)
        await ari.drop_event_sockets()
        await ari.wait_for(lambda: ari.event_connections == 2 and len(ari.sockets) == 1)
        await ari.send_raw(json.dumps({"type": "AfterReconnect"}))
        await ari.wait_for(lambda: len(seen) == 2)
        assert [e.type for e in seen] == ["Ping", "AfterReconnect"]
        assert stream.connections == 2
        await stream.aclose()


async def _ignore(event: AriEvent) -> None:
    await asyncio.sleep(0)
