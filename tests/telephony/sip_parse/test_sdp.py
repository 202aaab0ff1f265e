from __future__ import annotations

import pytest

from voxline.telephony.sip.sdp import (
    NegotiatedMedia,
    SdpError,
    SdpNegotiationError,
    answer_direction,
    build_sdp,
    negotiate,
    parse_sdp,
)

from . import samples


def test_sipp_offer() -> None:
    offer = parse_sdp(samples.SIPP_SDP)
    assert offer.connection == "127.0.0.1" and offer.origin.startswith("user1 ")
    (audio,) = offer.media
    assert (audio.media, audio.port, audio.proto, audio.formats) == ("audio", 6000, "RTP/AVP", [8, 101])
    assert audio.rtpmap == {8: ("PCMA", 8000), 101: ("TELEPHONE-EVENT", 8000)}
    assert audio.fmtp == {101: "0-11,16"} and audio.direction == "sendrecv"
    assert negotiate(offer, ["PCMU", "PCMA"]) == NegotiatedMedia(
        "PCMA", 8, 101, "127.0.0.1", 6000, "sendrecv", False
    )


def test_baresip_offer_answers_the_8k_telephone_event() -> None:
    offer = parse_sdp(samples.BARESIP_SDP.encode())
    audio = offer.media[0]
    assert audio.rtpmap[96] == ("OPUS", 48000) and audio.rtpmap[101] == ("TELEPHONE-EVENT", 48000)
    assert audio.ptime == 20
    result = negotiate(offer, ["PCMU"])
    assert (result.codec, result.payload_type, result.dtmf_payload_type) == ("PCMU", 0, 102)
    assert (result.remote_host, result.remote_port) == ("127.0.0.1", 10334)


def test_only_48k_telephone_event_means_no_dtmf_payload() -> None:
    offer = parse_sdp(samples.BARESIP_SDP.replace("a=rtpmap:102 telephone-event/8000\r\n", ""))
    assert negotiate(offer, ["PCMA"]).dtmf_payload_type is None


def test_asterisk_offer_prefers_our_order() -> None:
    offer = parse_sdp(samples.ASTERISK_SDP)
    assert offer.media[0].rtpmap[3] == ("GSM", 8000)
    assert negotiate(offer, ["PCMA", "PCMU"]).codec == "PCMA"
    assert negotiate(offer, ["pcmu"]).payload_type == 0


def test_static_payloads_are_implied() -> None:
    offer = parse_sdp("v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4 1.2.3.4\nt=0 0\nm=audio 4000 RTP/AVP 0 8\n")
    assert offer.media[0].rtpmap == {0: ("PCMU", 8000), 8: ("PCMA", 8000)}


def test_dynamic_payload_type_for_g711_is_honoured() -> None:
    body = "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4 1.2.3.4\nt=0 0\n"
    body += "m=audio 4000 RTP/AVP 110\na=rtpmap:110 pcmu/8000\n"
    assert negotiate(parse_sdp(body), ["PCMU"]).payload_type == 110


HOLD_BASE = (
    "v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 {c}\r\nt=0 0\r\n"
    "{session}m=audio {port} RTP/AVP 0\r\n{media}"
)


@pytest.mark.parametrize(
    ("c", "session", "port", "media", "direction", "on_hold"),
    [
        ("10.0.0.1", "", 4000, "a=sendonly\r\n", "sendonly", True),
        ("10.0.0.1", "", 4000, "a=inactive\r\n", "inactive", True),
        ("10.0.0.1", "a=sendonly\r\n", 4000, "", "sendonly", True),  # session-level attribute
        ("10.0.0.1", "a=sendonly\r\n", 4000, "a=sendrecv\r\n", "sendrecv", False),  # media overrides
        ("0.0.0.0", "", 4000, "", "sendrecv", True),  # RFC 2543 hold
        ("10.0.0.1", "", 0, "", "sendrecv", True),
        ("10.0.0.1", "", 4000, "a=recvonly\r\n", "recvonly", False),
    ],
)
def test_hold_forms(c: str, session: str, port: int, media: str, direction: str, on_hold: bool) -> None:
    offer = parse_sdp(HOLD_BASE.format(c=c, session=session, port=port, media=media))
    result = negotiate(offer, ["PCMU"])
    assert (result.direction, result.on_hold) == (direction, on_hold)


def test_media_level_connection_wins() -> None:
    body = samples.SIPP_SDP.replace(
        "m=audio 6000 RTP/AVP 8 101\r\n", "m=audio 6000 RTP/AVP 8 101\r\nc=IN IP6 ::1\r\n"
    )
    offer = parse_sdp(body)
    assert offer.media[0].connection == "::1" and negotiate(offer, ["PCMA"]).remote_host == "::1"


def test_video_and_srtp_streams_are_skipped() -> None:
    body = (
        "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4 1.2.3.4\nt=0 0\n"
        "m=video 5000 RTP/AVP 96\na=rtpmap:96 H264/90000\n"
        "m=audio 5002 RTP/SAVP 0\n"
        "m=audio 5004 RTP/AVP 0\n"
        "m=application 9 UDP/BFCP *\n"
    )
    offer = parse_sdp(body)
    assert [m.media for m in offer.media] == ["video", "audio", "audio", "application"]
    assert negotiate(offer, ["PCMU"]).remote_port == 5004


@pytest.mark.parametrize(
    "body",
    [
        "v=0\no=- 1 1 IN IP4 1.2.3.4\nc=IN IP4 1.2.3.4\nm=audio 4000 RTP/AVP 18\n",  # G.729 only
        "v=0\no=- 1 1 IN IP4 1.2.3.4\nc=IN IP4 1.2.3.4\nm=video 4000 RTP/AVP 96\n",
        "v=0\no=- 1 1 IN IP4 1.2.3.4\nc=IN IP4 1.2.3.4\nm=audio 4000 RTP/AVP 96\na=rtpmap:96 PCMU/16000\n",
    ],
)
def test_nothing_acceptable_is_a_negotiation_error(body: str) -> None:
    with pytest.raises(SdpNegotiationError):
        negotiate(parse_sdp(body), ["PCMU", "PCMA"])


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"o=- 1 1 IN IP4 1.2.3.4\n",
        b"v=1\no=x\n",
        b"v=0\nm=audio 4000 RTP/AVP 0\n",  # no o=
        b"v=0\no=x\nm=audio 70000 RTP/AVP 0\n",
        b"v=0\no=x\nm=audio 4000 RTP/AVP 200\n",
        b"v=0\no=x\nm=audio 4000 RTP/AVP PCMU\n",
        b"v=0\no=x\nm=audio\n",
        b"v=0\no=x\nc=IN IP4 1.2.3.4 extra\n",
        b"v=0\no=x\nc=IN IP4 not_an/address\n",
        b"v=0\no=x\nbad line\n",
        b"v=0\no=x\ns=a\x01b\n",
        b"v=0\no=\xff\n",
    ],
)
def test_malformed_sdp(body: bytes) -> None:
    with pytest.raises(SdpError):
        parse_sdp(body)


@pytest.mark.parametrize("rtpmap", ["a=rtpmap:0 PCMU", "a=rtpmap:0 PCMU/fast", "a=rtpmap:97 LPC"])
def test_an_unreadable_rtpmap_maps_nothing_and_the_offer_stands(rtpmap: str) -> None:
    """RFC 4475's INVITEs carry `a=rtpmap:31 LPC`: one bad mapping must not refuse the call."""
    offer = parse_sdp(f"v=0\no=x\nc=IN IP4 1.2.3.4\nm=audio 4000 RTP/AVP 0 97\n{rtpmap}\n")
    assert offer.media[0].rtpmap.get(0) == ("PCMU", 8000) and 97 not in offer.media[0].rtpmap
    assert negotiate(offer, ["PCMU"]).codec == "PCMU"  # static payload type 0 still means PCMU


def test_audio_without_connection_is_sdp_error() -> None:
    with pytest.raises(SdpError):
        negotiate(parse_sdp("v=0\no=x\nm=audio 4000 RTP/AVP 0\n"), ["PCMU"])


def test_build_and_reparse_answer() -> None:
    offer = parse_sdp(samples.BARESIP_SDP)
    chosen = negotiate(offer, ["PCMA", "PCMU"])
    body = build_sdp(
        "127.0.0.1",
        20000,
        codecs=[chosen.codec],
        payload_types={chosen.codec: chosen.payload_type},
        dtmf_payload_type=chosen.dtmf_payload_type,
        direction=answer_direction(chosen.direction),
        session_id=42,
        version=1,
    )
    text = body.decode()
    assert text.endswith("\r\n") and "\r\na=rtpmap:102 telephone-event/8000\r\na=fmtp:102 0-16\r\n" in text
    answer = parse_sdp(body)
    assert answer.origin == "voxline 42 1 IN IP4 127.0.0.1"
    media = answer.media[0]
    assert (media.port, media.formats, media.ptime, media.direction) == (20000, [8, 102], 20, "sendrecv")
    assert negotiate(answer, ["PCMA"]) == NegotiatedMedia(
        "PCMA", 8, 102, "127.0.0.1", 20000, "sendrecv", False
    )


def test_build_ipv6_offer_without_dtmf() -> None:
    body = build_sdp(
        "::1",
        30000,
        codecs=["PCMU", "PCMA"],
        dtmf_payload_type=None,
        direction="sendonly",
        session_id=1,
        version=2,
        ptime=30,
    )
    offer = parse_sdp(body)
    assert offer.connection == "::1" and offer.media[0].formats == [0, 8] and offer.media[0].ptime == 30
    assert offer.media[0].direction == "sendonly"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"host": "127.0.0.1\r\na=evil"},
        {"host": "example.com"},
        {"port": 70000},
        {"direction": "sendrecv\r\na=x"},
        {"codecs": ["OPUS"]},
        {"codecs": []},
        {"dtmf_payload_type": 0},
        {"payload_types": {"PCMU": 300}},
    ],
)
def test_build_refuses_bad_input(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 4000,
        "codecs": ["PCMU"],
        "session_id": 1,
        "version": 1,
    }
    args.update(kwargs)
    with pytest.raises(ValueError):
        build_sdp(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("offered", "answer"),
    [
        ("sendonly", "recvonly"),
        ("recvonly", "sendonly"),
        ("inactive", "inactive"),
        ("sendrecv", "sendrecv"),
        ("x", "sendrecv"),
    ],
)
def test_answer_direction(offered: str, answer: str) -> None:
    assert answer_direction(offered) == answer


@pytest.mark.parametrize(
    "body",
    [
        "v=0\r\no=x\r\n" + "a=x\r\n" * 1000,  # more lines than MAX_SDP_LINES
        "v=0\r\no=x\r\n" + "m=audio 4000 RTP/AVP 0\r\n" * 33,  # more streams than MAX_MEDIA
        "v=0\r\no=x\r\n" + "a=" + "x" * 70000,
    ],
)
def test_sdp_limits(body: str) -> None:
    with pytest.raises(SdpError):
        parse_sdp(body)
    with pytest.raises(SdpError):
        parse_sdp(body.encode())
