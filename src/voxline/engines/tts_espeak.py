"""espeak-ng as a subprocess: robotic but instant and in ~100 languages, the universal fallback.

espeak-ng writes a WAV to stdout whose header sizes are unknown (streaming), so we parse the header
ourselves and yield the PCM that follows as it arrives. Closing the iterator kills the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import struct
from collections.abc import AsyncIterator

import numpy as np

from voxline.audio.pcm import AudioChunk
from voxline.engines.base import EngineError, ModelNotInstalledError

ESPEAK_RATE = 22050
_READ = 4096


def parse_wav_header(data: bytes) -> tuple[int, int] | None:
    """(sample rate, offset of the PCM data) once the header is complete, else None."""
    if len(data) < 12:
        return None
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise EngineError("espeak-ng did not produce a WAV stream")
    pos, rate = 12, 0
    while pos + 8 <= len(data):
        chunk_id, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if chunk_id == b"data":
            return rate, pos + 8
        if pos + 8 + size > len(data):
            return None
        if chunk_id == b"fmt ":
            channels, rate = struct.unpack("<HI", data[pos + 10 : pos + 16])
            bits = struct.unpack("<H", data[pos + 22 : pos + 24])[0]
            if channels != 1 or bits != 16:
                raise EngineError(f"espeak-ng WAV is {channels} ch / {bits} bit; expected mono s16")
        pos += 8 + size + (size & 1)
    return None


class EspeakTTS:
    def __init__(self, voice: str = "en-us", *, speed: float = 1.0, binary: str = "espeak-ng") -> None:
        found = shutil.which(binary)
        if found is None:
            raise ModelNotInstalledError("espeak-ng is not installed: apt-get install espeak-ng")
        self._binary = found
        self.voice = voice
        self._words_per_minute = round(175 * speed)
        self.sample_rate = ESPEAK_RATE
        self.name = f"espeak:{voice}"

    def stream(self, text: str, voice: str | None = None) -> AsyncIterator[AudioChunk]:
        return self._stream(text, voice or self.voice)

    async def _stream(self, text: str, voice: str) -> AsyncIterator[AudioChunk]:
        process = await asyncio.create_subprocess_exec(
            self._binary,
            "-v",
            voice,
            "-s",
            str(self._words_per_minute),
            "--stdout",
            "--",
            text,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        buffer, rate, data_at = b"", 0, -1
        try:
            while block := await process.stdout.read(_READ):
                buffer += block
                if data_at < 0:
                    header = parse_wav_header(buffer)
                    if header is None:
                        continue
                    rate, data_at = header
                    buffer = buffer[data_at:]
                usable = len(buffer) - len(buffer) % 2
                if usable:
                    yield AudioChunk(np.frombuffer(buffer[:usable], dtype="<i2").astype(np.int16), rate)
                    buffer = buffer[usable:]
            if await process.wait() != 0:
                err = b"" if process.stderr is None else await process.stderr.read()
                raise EngineError(
                    f"espeak-ng failed for voice {voice!r}: {err.decode(errors='replace')[:200]}"
                )
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()

    async def warm_up(self) -> None:
        async for _ in self.stream("ok"):
            pass
