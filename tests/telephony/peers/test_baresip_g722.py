"""G.722 with a real softphone: baresip (its g722 module) calls voxline's echo agent with G.722
offered first; the call is wideband both ways (a 5 kHz tone, which no 8 kHz line can carry, comes
back in what baresip heard)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from telephony.peers import baresip
from telephony.sip.conftest import sip_config
from voxline.audio.pcm import AudioChunk
from voxline.audio.wav import read_wav, write_wav
from voxline.telephony.echo import EchoAgent
from voxline.telephony.sip.endpoint import SipEndpoint
from voxline.transports.base import CallIO

pytestmark = [
    pytest.mark.skipif(shutil.which("baresip") is None, reason="baresip-core is not installed"),
    pytest.mark.timeout(60),
]


def band_share(audio: AudioChunk, lo: float, hi: float) -> float:
    samples = audio.to_float32()
    power = np.abs(np.fft.rfft(samples)) ** 2
    freqs = np.fft.rfftfreq(samples.size, 1 / audio.sample_rate)
    return float(power[(freqs >= lo) & (freqs < hi)].sum() / max(power.sum(), 1e-12))


async def test_baresip_g722_call_is_wideband_both_ways(tmp_path: Path) -> None:
    echo = EchoAgent()
    rates: list[int] = []
    codecs: list[str] = []

    async def echo_and_note(call: CallIO) -> None:
        codecs.append(call.session.codec.name)  # type: ignore[attr-defined]
        rates.append(call.input_rate)
        await echo(call)

    endpoint = SipEndpoint(sip_config(), echo_and_note)
    await endpoint.start()
    try:
        t = np.arange(16000 * 3) / 16000
        wave = 0.25 * np.sin(2 * np.pi * 5000 * t) + 0.1 * np.sin(2 * np.pi * 440 * t)
        mic = AudioChunk.concat(
            [AudioChunk.from_float32(wave.astype(np.float32), 16000), AudioChunk.silence(1.0, 16000)]
        )
        mic_path = tmp_path / "mic.wav"
        write_wav(mic_path, mic)
        port = endpoint.local_port("udp")
        result = await baresip.call(
            f"sip:agent@127.0.0.1:{port}", mic_path, tmp_path / "baresip", seconds=4,
            codec_modules=("g722.so", "g711.so"),
        )  # fmt: skip
    finally:
        await endpoint.stop()
    assert codecs == ["G722"], result.log[-2000:]
    assert rates == [16000]
    assert result.heard is not None, result.log[-2000:]
    heard = read_wav(result.heard)
    assert heard.sample_rate == 16000
    assert heard.duration_s > 1.5
    assert band_share(heard, 4800, 5200) > 0.5  # the 5 kHz tone came back through two G.722 legs
