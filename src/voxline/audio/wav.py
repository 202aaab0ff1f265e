"""WAV files in and out.

`read_wav` parses the RIFF chunks itself because Python's `wave` module rejects IEEE-float and
WAVE_FORMAT_EXTENSIBLE files, which is what most editors and TTS tools write. Whatever comes in
(8/16/24/32-bit integer, 32/64-bit float, G.711, any rate, any number of channels) leaves as one
mono int16 AudioChunk, so the rest of voxline only ever sees one audio type.
"""

from __future__ import annotations

import struct
import wave
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import numpy.typing as npt

from voxline.audio.g711 import alaw_decode, ulaw_decode
from voxline.audio.pcm import AudioChunk
from voxline.audio.resample import resample

__all__ = ["AudioFormatError", "WavInfo", "read_wav", "write_stereo_wav", "write_wav"]

StrPath = str | PathLike[str]

_PCM = 0x0001
_IEEE_FLOAT = 0x0003
_ALAW = 0x0006
_MULAW = 0x0007
_EXTENSIBLE = 0xFFFE
# The last 14 bytes shared by every KSDATAFORMAT_SUBTYPE_* GUID; the first 2 hold the format tag.
_EXTENSIBLE_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")
_UNKNOWN_SIZE = 0xFFFFFFFF  # what streaming writers put in a header they could not seek back to fix
_KNOWN_NAMES = {0x0002: "MS ADPCM", 0x0011: "IMA ADPCM", 0x0031: "GSM 6.10", 0x0055: "MP3"}


class AudioFormatError(ValueError):
    """A file is not audio voxline can read; the message names the file and what to do."""


@dataclass(frozen=True, slots=True)
class WavInfo:
    """What the `fmt ` chunk says."""

    format_tag: int
    channels: int
    sample_rate: int
    bits_per_sample: int
    block_align: int


def read_wav(path: StrPath, target_rate: int | None = None) -> AudioChunk:
    """Any PCM/float/G.711 WAV as mono int16 (channels averaged), optionally resampled."""
    name = Path(path).name
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise AudioFormatError(f"{name}: cannot read ({exc.strerror or exc})") from exc
    info, payload = _parse_riff(data, name)
    chunk = AudioChunk(_to_mono_int16(info, payload), info.sample_rate)
    if target_rate is not None and target_rate != chunk.sample_rate:
        chunk = resample(chunk, target_rate)
    return chunk


def write_wav(path: StrPath, chunk: AudioChunk) -> None:
    """A plain 16-bit mono PCM WAV."""
    _write_pcm16(path, chunk.samples.reshape(-1, 1), chunk.sample_rate)


def write_stereo_wav(path: StrPath, left: AudioChunk, right: AudioChunk) -> None:
    """Two mono tracks as one stereo file: both start at t=0, the shorter is padded with silence.

    `right` is resampled to `left`'s rate when they differ, so the two stay on one timeline.
    """
    if right.sample_rate != left.sample_rate:
        right = resample(right, left.sample_rate)
    length = max(left.num_samples, right.num_samples)
    frames = np.zeros((length, 2), dtype=np.int16)
    frames[: left.num_samples, 0] = left.samples
    frames[: right.num_samples, 1] = right.samples
    _write_pcm16(path, frames, left.sample_rate)


def _write_pcm16(path: StrPath, frames: npt.NDArray[np.int16], sample_rate: int) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(frames.shape[1])
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(frames.astype("<i2").tobytes())


# ---------------------------------------------------------------- parsing


def _parse_riff(data: bytes, name: str) -> tuple[WavInfo, bytes]:
    if len(data) < 12 or data[:4] not in (b"RIFF", b"RIFX", b"RF64"):
        raise AudioFormatError(f"{name}: not a WAV file (no RIFF header)")
    if data[:4] != b"RIFF":
        raise AudioFormatError(f"{name}: {data[:4].decode()} WAV is not supported, convert with sox")
    if data[8:12] != b"WAVE":
        raise AudioFormatError(f"{name}: RIFF file but not WAVE (it is {data[8:12]!r})")
    (riff_size,) = struct.unpack_from("<I", data, 4)
    header_unfinished = riff_size in (0, _UNKNOWN_SIZE)
    info: WavInfo | None = None
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body_start = pos + 8
        if chunk_id == b"data":
            if info is None:
                raise AudioFormatError(f"{name}: corrupt WAV (data chunk before the fmt chunk)")
            available = len(data) - body_start
            if size == _UNKNOWN_SIZE or (size == 0 and header_unfinished):
                size = available  # header never finalised (streaming writer): take what is there
            if size > available:
                raise AudioFormatError(
                    f"{name}: truncated WAV (data chunk says {size} bytes, only {available} present)"
                )
            return info, data[body_start : body_start + size]
        if body_start + size > len(data):
            raise AudioFormatError(f"{name}: truncated WAV ({chunk_id!r} chunk runs past the end)")
        if chunk_id == b"fmt ":
            info = _parse_fmt(data[body_start : body_start + size], name)
        pos = body_start + size + (size & 1)  # chunks are word-aligned
    if info is None:
        raise AudioFormatError(f"{name}: corrupt or truncated WAV (no fmt chunk)")
    raise AudioFormatError(f"{name}: corrupt or truncated WAV (no data chunk)")


def _parse_fmt(body: bytes, name: str) -> WavInfo:
    if len(body) < 16:
        raise AudioFormatError(f"{name}: corrupt WAV (fmt chunk is {len(body)} bytes, needs 16)")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == _EXTENSIBLE:
        if len(body) < 40:
            raise AudioFormatError(f"{name}: corrupt WAV (extensible fmt chunk is too short)")
        guid = body[24:40]
        if guid[2:] != _EXTENSIBLE_GUID_TAIL:
            raise AudioFormatError(
                f"{name}: WAV with an unknown sub-format is not supported, convert with sox"
            )
        (tag,) = struct.unpack_from("<H", guid)
    if channels == 0 or rate == 0:
        raise AudioFormatError(f"{name}: corrupt WAV ({channels} channels at {rate} Hz)")
    info = WavInfo(tag, channels, rate, bits, block_align)
    _check_supported(info, name)
    return info


def _check_supported(info: WavInfo, name: str) -> None:
    tag, bits = info.format_tag, info.bits_per_sample
    ok = (
        (tag == _PCM and bits in (8, 16, 24, 32))
        or (tag == _IEEE_FLOAT and bits in (32, 64))
        or (tag in (_ALAW, _MULAW) and bits == 8)
    )
    if ok:
        width = bits // 8 * info.channels
        if info.block_align != width:
            raise AudioFormatError(f"{name}: corrupt WAV (block align {info.block_align}, expected {width})")
        return
    if tag in (_PCM, _IEEE_FLOAT):
        kind = "integer PCM" if tag == _PCM else "float"
        raise AudioFormatError(f"{name}: {bits}-bit {kind} WAV is not supported, convert with sox")
    label = _KNOWN_NAMES.get(tag, f"format 0x{tag:04x}")
    raise AudioFormatError(f"{name}: {label} WAV is not supported, convert with sox")


def _to_mono_int16(info: WavInfo, payload: bytes) -> npt.NDArray[np.int16]:
    usable = len(payload) - len(payload) % info.block_align  # a cut-off last frame is dropped
    raw = payload[:usable]
    tag, bits = info.format_tag, info.bits_per_sample
    if tag == _MULAW:
        samples: npt.NDArray[np.int16] | npt.NDArray[np.float64] = ulaw_decode(raw)
    elif tag == _ALAW:
        samples = alaw_decode(raw)
    elif tag == _PCM and bits == 16:
        samples = np.frombuffer(raw, dtype="<i2").astype(np.int16)
    else:
        samples = _to_unit_float(raw, tag, bits)
    if samples.dtype == np.int16:
        if info.channels == 1:
            return np.asarray(samples, dtype=np.int16).copy()
        mono = samples.reshape(-1, info.channels).astype(np.float64).mean(axis=1) / 32768.0
    else:
        mono = samples.reshape(-1, info.channels).mean(axis=1)
    # Scale by 32768 so every int16 maps back onto itself; clip the one value float allows beyond.
    return np.asarray(np.clip(np.round(mono * 32768.0), -32768, 32767), dtype=np.int16)


def _to_unit_float(raw: bytes, tag: int, bits: int) -> npt.NDArray[np.float64]:
    """Integer or float samples as float64 in [-1, 1)."""
    if tag == _IEEE_FLOAT:
        values = np.frombuffer(raw, dtype="<f4" if bits == 32 else "<f8").astype(np.float64)
        return np.nan_to_num(values, nan=0.0, posinf=1.0, neginf=-1.0)
    if bits == 8:  # 8-bit WAV is the one unsigned format
        return (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    if bits == 24:
        triples = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        packed = triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)
        signed = np.where(packed >= 1 << 23, packed - (1 << 24), packed)
        return signed.astype(np.float64) / float(1 << 23)
    return np.frombuffer(raw, dtype="<i4").astype(np.float64) / float(1 << 31)
