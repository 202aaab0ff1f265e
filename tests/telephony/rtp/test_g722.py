"""G.722 (wideband) as an RTP payload: the codec itself on real speech, the 8 kHz RTP clock quirk on
the wire, SDP offer/answer, and a whole SIP call between two voxline endpoints in G.722."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import numpy as np
import pytest

from speech import caller_turns
from voxline.audio.pcm import AudioChunk
from voxline.audio.resample import resample
from voxline.audio.wav import read_wav
from voxline.telephony.rtp import PCMU, RtpPacket, RtpSession
from voxline.telephony.rtp.call import RtpCall
from voxline.telephony.rtp.codecs import G722
from voxline.telephony.rtp.packet import ts_delta
from voxline.telephony.sip.sdp import build_sdp, negotiate, parse_sdp

from .udp_peer import UdpPeer

HOST = "127.0.0.1"
G722_DELAY = 22
"""Samples the encoder's and decoder's QMF filters delay the audio by (bit-exact G.722)."""


def speech_16k() -> AudioChunk:
    path, _ = caller_turns()[13]
    return resample(read_wav(path), 16000)


def tone(seconds: float, freq: float, rate: int = 16000, level: float = 0.3) -> AudioChunk:
    t = np.arange(round(seconds * rate)) / rate
    return AudioChunk.from_float32((level * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate)


def through(codec_audio: AudioChunk) -> np.ndarray:
    """Encode and decode in 20 ms frames on one stream's state, as a call does."""
    coder = G722.for_stream()
    frames = [
        coder.decode(coder.encode(AudioChunk(codec_audio.samples[i : i + 320], 16000))).samples
        for i in range(0, codec_audio.num_samples - 319, 320)
    ]
    return np.concatenate(frames)


def snr_db(reference: np.ndarray, decoded: np.ndarray) -> float:
    out = decoded[G722_DELAY:].astype(np.float64)
    ref = reference[: out.size].astype(np.float64)
    return float(10 * np.log10(np.sum(ref**2) / np.sum((ref - out) ** 2)))


def band_energy(samples: np.ndarray, rate: int, lo: float, hi: float) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(samples.size, 1 / rate)
    return float(spectrum[(freqs >= lo) & (freqs < hi)].sum())


def test_round_trip_keeps_real_speech_above_30_db_snr() -> None:
    speech = speech_16k()
    decoded = through(speech)
    assert decoded.size == speech.num_samples - speech.num_samples % 320
    assert snr_db(speech.samples, decoded) > 30


def test_it_carries_what_g711_cannot_above_4_khz() -> None:
    high = tone(0.5, 6000)
    decoded = through(high)[1600:]  # past the codec's start-up
    assert band_energy(decoded, 16000, 5800, 6200) > 0.5 * band_energy(high.samples[1600:], 16000, 5800, 6200)
    narrow = resample(AudioChunk(PCMU.decode(PCMU.encode(resample(high, 8000))).samples, 8000), 16000)
    assert band_energy(narrow.samples, 16000, 5800, 6200) < 1e-3 * band_energy(
        high.samples, 16000, 5800, 6200
    )


def test_each_stream_has_its_own_state() -> None:
    a, b = G722.for_stream(), G722.for_stream()
    speech = speech_16k()
    first = AudioChunk(speech.samples[:320], 16000)
    a.encode(first)
    # a's encoder has adapted to speech; b starts fresh, as a second call must
    assert b.encode(first) == G722.for_stream().encode(first)
    with pytest.raises(RuntimeError, match="for_stream"):
        G722.encode(first)


def test_sdp_offers_and_takes_g722_with_its_8000_clock() -> None:
    offer = build_sdp(HOST, 4000, codecs=["G722", "PCMU", "PCMA"], session_id=1, version=1).decode()
    assert "m=audio 4000 RTP/AVP 9 0 8 101\r\n" in offer
    assert "a=rtpmap:9 G722/8000\r\n" in offer
    remote = parse_sdp(offer.encode())
    assert negotiate(remote, ["G722", "PCMU"]).codec == "G722"
    assert negotiate(remote, ["PCMU", "G722"]).codec == "PCMU"  # our preference order decides
    # a peer that lists payload 9 without an rtpmap still means G.722 (RFC 3551 static type)
    bare = offer.replace("a=rtpmap:9 G722/8000\r\n", "").encode()
    chosen = negotiate(parse_sdp(bare), ["G722"])
    assert (chosen.codec, chosen.payload_type, chosen.dtmf_payload_type) == ("G722", 9, 101)


@pytest.fixture
async def g722_session() -> AsyncIterator[RtpSession]:
    session = await RtpSession.open(HOST, 0, codec=G722, call_id="g722")
    yield session
    await session.aclose()


async def test_on_the_wire_160_bytes_per_20_ms_and_timestamps_at_8_khz(g722_session: RtpSession) -> None:
    peer = await UdpPeer.open()
    try:
        g722_session.set_remote(HOST, peer.port)
        assert g722_session.sink.output_rate == 16000
        await g722_session.sink.send(speech_16k().slice_s(0.0, 1.0))
        await g722_session.sink.drain()
        await peer.wait_for(50)
        packets: list[RtpPacket] = [p for _, p in peer.packets()]
        assert {p.payload_type for p in packets} == {9}
        assert {len(p.payload) for p in packets} == {160}
        steps = {ts_delta(b.timestamp, a.timestamp) for a, b in itertools.pairwise(packets)}
        assert steps == {160}  # 20 ms of the 8 kHz RTP clock, though 320 samples went in
    finally:
        peer.close()


async def test_received_g722_comes_out_as_16_khz_audio(g722_session: RtpSession) -> None:
    sender = await RtpSession.open(HOST, 0, codec=G722, call_id="g722-sender")
    try:
        sender.set_remote(HOST, g722_session.local_port)
        g722_session.set_remote(HOST, sender.local_port)
        await sender.sink.send(tone(0.6, 6000))
        chunks: list[AudioChunk] = []

        async def collect() -> None:
            while sum(c.num_samples for c in chunks) < 16000 * 0.5:
                item = await g722_session.receive()
                if isinstance(item, AudioChunk):
                    chunks.append(item)

        await asyncio.wait_for(collect(), 5)
        assert {c.sample_rate for c in chunks} == {16000}
        heard = AudioChunk.concat(chunks).samples[3200:]
        assert band_energy(heard, 16000, 5800, 6200) > 0.5 * band_energy(heard, 16000, 0, 8000)
    finally:
        await sender.aclose()


async def test_a_call_opened_for_g722_follows_the_answer_to_g711() -> None:
    """The session opens with our first codec; the offer/answer may pick another (rate and all)."""
    session = await RtpSession.open(HOST, 0, codec=G722, call_id="switch")

    async def no_op(reason: str) -> None:
        pass

    try:
        call = RtpCall("switch", session, on_hangup=no_op)
        assert call.input_rate == session.sink.output_rate == 16000
        session.set_codec(PCMU, 101)
        assert call.input_rate == session.sink.output_rate == 8000
        assert session.sink.frame_samples == 160
    finally:
        await session.aclose()
