"""The REST client against the ARI double: the documented paths, parameters and error statuses."""

from __future__ import annotations

import httpx
import pytest

from telephony.ari.ari_double import AriDouble
from voxline.audio.pcm import AudioChunk
from voxline.telephony.ari.client import AriAuthError, AriClient, AriError, events_url


async def test_bad_credentials_are_an_auth_error() -> None:
    async with AriDouble() as ari:
        client = AriClient(ari.url, "asterisk", "wrong")
        with pytest.raises(AriAuthError) as err:
            await client.asterisk_info()
        assert err.value.status == 401
        assert "Authentication required" in str(err.value)
        await client.aclose()


async def test_api_key_is_accepted_like_basic_auth() -> None:
    async with AriDouble() as ari:
        async with httpx.AsyncClient(trust_env=False) as http:
            ok = await http.get(f"{ari.url}/asterisk/info", params={"api_key": "asterisk:secret"})
            bad = await http.get(f"{ari.url}/asterisk/info", params={"api_key": "asterisk:nope"})
        assert ok.status_code == 200 and ok.json()["system"]["version"]
        assert bad.status_code == 401


async def test_unreachable_asterisk_is_an_error_without_status() -> None:
    client = AriClient("http://127.0.0.1:9/ari", "a", "b", timeout_s=1.0)
    with pytest.raises(AriError) as err:
        await client.answer("x")
    assert err.value.status is None
    await client.aclose()


async def test_external_media_bridge_and_errors() -> None:
    async with AriDouble() as ari:
        client = AriClient(ari.url, "asterisk", "secret")
        caller = await ari.incoming_call(AudioChunk.silence(0.1, 8000))
        await client.answer(caller)
        channel = await client.external_media(
            app="voxline", external_host="127.0.0.1:40000", format="ulaw", channel_id="em-1"
        )
        assert channel["id"] == "em-1" and channel["name"].startswith("UnicastRTP/")
        port = int(await client.get_variable("em-1", "UNICASTRTP_LOCAL_PORT"))
        assert 0 < port < 65536
        assert await client.get_variable("em-1", "UNICASTRTP_LOCAL_ADDRESS") == "127.0.0.1"
        bridge = await client.create_bridge("b-1", name="test")
        assert bridge["bridge_type"] == "mixing"
        await client.add_channels("b-1", [caller, "em-1"])
        assert ari.bridges["b-1"].channels == [caller, "em-1"]
        request = ari.calls_to("POST", "/channels/externalMedia")[0]
        assert request.params["encapsulation"] == "rtp" and request.params["transport"] == "udp"
        assert request.params["direction"] == "both" and request.params["external_host"] == "127.0.0.1:40000"

        with pytest.raises(AriError) as err:
            await client.answer("no-such-channel")
        assert err.value.status == 404 and err.value.message == "Channel not found"
        with pytest.raises(AriError) as err:
            await client.add_channels("b-1", ["ghost"])
        assert err.value.status == 400
        with pytest.raises(AriError) as err:
            await client.external_media(app="voxline", external_host="127.0.0.1:1", format="ulaw",
                                        channel_id="em-1")  # fmt: skip
        assert err.value.status == 409
        with pytest.raises(AriError) as err:
            await client.get_variable("em-1", "NOPE")
        assert err.value.status == 404

        await client.delete_bridge("b-1")
        await client.hangup("em-1")
        assert "em-1" in ari.deleted_channels and "b-1" in ari.deleted_bridges
        await client.aclose()


def test_events_url_subscribes_to_our_app_only() -> None:
    assert events_url("http://pbx:8088/ari/", "voxline") == (
        "ws://pbx:8088/ari/events?app=voxline&subscribeAll=false"
    )
    assert events_url("https://pbx/ari", "my app").startswith("wss://pbx/ari/events?app=my+app")
