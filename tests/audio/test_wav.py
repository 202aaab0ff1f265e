"""read_wav/write_wav: every common PCM layout, and clear errors for everything else."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from voxline.audio.g711 import ulaw_encode
from voxline.audio.pcm import AudioChunk
from voxline.audio.wav import AudioFormatError, read_wav, write_stereo_wav, write_wav

PCM, FLOAT, MULAW, EXTENSIBLE = 1, 3, 7, 0xFFFE
SUBFORMAT_TAIL = bytes.fromhex("000000001000800000aa00389b71")


def riff(
    fmt_tag: int, channels: int, rate: int, bits: int, data: bytes, extensible_tag: int | None = None
) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, rate * block, block, bits)
    if fmt_tag == EXTENSIBLE:
        assert extensible_tag is not None
        fmt += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", extensible_tag) + SUBFORMAT_TAIL
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"LIST" + struct.pack("<I", 5) + b"odd!!" + b"\x00"  # an odd-sized chunk to skip (padded)
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


RAMP = np.array([0, 1000, -1000, 32767, -32768, 12345], dtype=np.int16)


def test_16bit_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    write_wav(path, AudioChunk(RAMP, 8000))
    chunk = read_wav(path)
    assert chunk.sample_rate == 8000
    assert chunk.samples.tolist() == RAMP.tolist()


def test_8bit_unsigned(tmp_path: Path) -> None:
    path = write(tmp_path, "u8.wav", riff(PCM, 1, 11025, 8, bytes([128, 255, 0, 192])))
    chunk = read_wav(path)
    assert chunk.sample_rate == 11025
    assert chunk.samples.tolist() == [0, 127 * 256, -32768, 64 * 256]


def test_24bit(tmp_path: Path) -> None:
    values = [0, 256 * 1000, -256 * 1000, 2**23 - 1, -(2**23)]
    data = b"".join(v.to_bytes(3, "little", signed=True) for v in values)
    chunk = read_wav(write(tmp_path, "s24.wav", riff(PCM, 1, 48000, 24, data)))
    assert chunk.samples.tolist() == [0, 1000, -1000, 32767, -32768]


def test_32bit_int(tmp_path: Path) -> None:
    data = np.array([0, 65536 * 500, -(2**31)], dtype="<i4").tobytes()
    assert read_wav(write(tmp_path, "s32.wav", riff(PCM, 1, 16000, 32, data))).samples.tolist() == [
        0,
        500,
        -32768,
    ]


@pytest.mark.parametrize("tag", [FLOAT, EXTENSIBLE])
def test_float32_plain_and_extensible(tmp_path: Path, tag: int) -> None:
    data = np.array([0.0, 0.5, -0.5, 1.5, -1.0], dtype="<f4").tobytes()
    content = riff(tag, 1, 22050, 32, data, extensible_tag=FLOAT if tag == EXTENSIBLE else None)
    chunk = read_wav(write(tmp_path, "f32.wav", content))
    assert chunk.sample_rate == 22050
    assert chunk.samples.tolist() == [0, 16384, -16384, 32767, -32768]  # 1.5 clips


def test_extensible_pcm_16(tmp_path: Path) -> None:
    content = riff(EXTENSIBLE, 1, 8000, 16, RAMP.astype("<i2").tobytes(), extensible_tag=PCM)
    assert read_wav(write(tmp_path, "ext.wav", content)).samples.tolist() == RAMP.tolist()


def test_stereo_is_mixed_down(tmp_path: Path) -> None:
    frames = np.array([[1000, 3000], [-2000, 2000], [32767, 32767]], dtype="<i2")
    chunk = read_wav(write(tmp_path, "st.wav", riff(PCM, 2, 16000, 16, frames.tobytes())))
    assert chunk.samples.tolist() == [2000, 0, 32767]


def test_mulaw_wav_is_decoded(tmp_path: Path) -> None:
    data = ulaw_encode(np.array([0, 8000, -8000], dtype=np.int16))
    chunk = read_wav(write(tmp_path, "mu.wav", riff(MULAW, 1, 8000, 8, data)))
    assert chunk.samples.tolist()[0] == 0
    assert abs(chunk.samples[1] - 8000) < 300


def test_441k_resampled_to_target_rate(tmp_path: Path) -> None:
    t = np.arange(44100) / 44100
    path = tmp_path / "cd.wav"
    write_wav(path, AudioChunk.from_float32(0.5 * np.sin(2 * np.pi * 1000 * t), 44100))
    chunk = read_wav(path, target_rate=16000)
    assert chunk.sample_rate == 16000
    assert abs(chunk.num_samples - 16000) <= 1
    spectrum = np.abs(np.fft.rfft(chunk.to_float32()))
    assert np.argmax(spectrum) * 16000 / chunk.num_samples == pytest.approx(1000, abs=2)


def test_empty_data_chunk_gives_empty_audio(tmp_path: Path) -> None:
    chunk = read_wav(write(tmp_path, "empty.wav", riff(PCM, 1, 8000, 16, b"")))
    assert chunk.num_samples == 0
    assert chunk.sample_rate == 8000


def test_unfinished_streaming_header_reads_what_is_there(tmp_path: Path) -> None:
    content = bytearray(riff(PCM, 1, 8000, 16, RAMP.astype("<i2").tobytes()))
    data_at = content.index(b"data")
    content[data_at + 4 : data_at + 8] = b"\xff\xff\xff\xff"
    assert read_wav(write(tmp_path, "stream.wav", bytes(content))).samples.tolist() == RAMP.tolist()


def test_truncated_data_chunk(tmp_path: Path) -> None:
    content = riff(PCM, 1, 8000, 16, RAMP.astype("<i2").tobytes())[:-4]
    with pytest.raises(
        AudioFormatError, match=r"trunc\.wav: truncated WAV \(data chunk says 12 bytes, only 8"
    ):
        read_wav(write(tmp_path, "trunc.wav", content))


def test_truncated_header(tmp_path: Path) -> None:
    content = riff(PCM, 1, 8000, 16, b"\x00\x00")[:30]
    with pytest.raises(AudioFormatError, match=r"h\.wav: truncated WAV"):
        read_wav(write(tmp_path, "h.wav", content))


def test_not_a_wav(tmp_path: Path) -> None:
    with pytest.raises(AudioFormatError, match=r"x\.wav: not a WAV file \(no RIFF header\)"):
        read_wav(write(tmp_path, "x.wav", b"ID3\x03\x00 this is an mp3"))
    with pytest.raises(AudioFormatError, match="not a WAV file"):
        read_wav(write(tmp_path, "tiny.wav", b"RI"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioFormatError, match=r"nope\.wav: cannot read"):
        read_wav(tmp_path / "nope.wav")


@pytest.mark.parametrize(
    ("tag", "bits", "message"),
    [
        (0x0011, 4, "IMA ADPCM WAV is not supported, convert with sox"),
        (0x1234, 16, "format 0x1234 WAV is not supported"),
        (PCM, 12, "12-bit integer PCM WAV is not supported"),
    ],
)
def test_unsupported_encodings(tmp_path: Path, tag: int, bits: int, message: str) -> None:
    content = riff(tag, 1, 8000, 8 if bits < 8 else bits, b"\x00" * 4)
    if bits == 4 or bits == 12:  # patch the bits field the helper could not express
        at = content.index(b"fmt ") + 8 + 14
        content = content[:at] + struct.pack("<H", bits) + content[at + 2 :]
    with pytest.raises(AudioFormatError, match=message):
        read_wav(write(tmp_path, "u.wav", content))


def test_write_stereo_aligns_and_pads(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    left = AudioChunk(np.array([1, 2, 3], dtype=np.int16), 8000)
    right = AudioChunk(np.array([9], dtype=np.int16), 8000)
    write_stereo_wav(path, left, right)
    raw = path.read_bytes()
    assert struct.unpack_from("<H", raw, 22)[0] == 2  # channels
    frames = np.frombuffer(raw[44:], dtype="<i2").reshape(-1, 2)
    assert frames.tolist() == [[1, 9], [2, 0], [3, 0]]
    assert read_wav(path).samples.tolist() == [5, 1, 2]  # (1+9)/2, 2/2, 3/2 rounded half to even


def test_write_stereo_resamples_right_to_left_rate(tmp_path: Path) -> None:
    path = tmp_path / "mixed.wav"
    write_stereo_wav(path, AudioChunk.silence(1.0, 16000), AudioChunk.silence(0.5, 8000))
    chunk = read_wav(path)
    assert chunk.sample_rate == 16000
    assert chunk.num_samples == 16000
