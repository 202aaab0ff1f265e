"""festival as a subprocess, one per sentence: the Debian Hindi and Marathi diphone voices (NSK).

The NSK voices read UTF-8 Devanagari directly. As shipped their intonation module fails, so after
selecting the voice we switch it to festival's default intonation (otherwise nothing is spoken).
Each sentence's WAV goes to a private temp file; we await the process without blocking the loop,
and the first sentence plays while later ones are still being made.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np

from voxline.audio.pcm import AudioChunk
from voxline.engines._threaded import MODEL_THREAD_NICENESS, run_model
from voxline.engines.base import EngineError, ModelNotInstalledError
from voxline.engines.tts_espeak import parse_wav_header
from voxline.language.registry import find_named, warm_up_line

FESTIVAL_LIBDIR = Path("/usr/share/festival")
VOICES_DIR = FESTIVAL_LIBDIR / "voices"
FESTIVAL_RATE = 16000  # the NSK diphone databases; the real rate is read from each WAV
_SENTENCE = re.compile(r"(?<=[.!?…।॥])\s+")
VOICE_PACKAGES = {"hindi_NSK_diphone": "festvox-hi-nsk", "marathi_NSK_diphone": "festvox-mr-nsk"}
LANGUAGE_PACKAGES = {"hindi_scm": "festival-hi", "marathi_scm": "festival-mr"}
"""The folders of festival's library that a voice loads its phone set, lexicon and tokeniser from, and
the Debian package that ships each. The voice packages only *recommend* them, so an install without
recommends has voices that cannot speak."""
_LIBDIR_FOLDER = re.compile(r'\(path-append\s+libdir\s+"([^"]+?)/?"\)')
_REQUIRE = re.compile(r"\(require\s+'([A-Za-z0-9_.-]+)\)")
_MISSING_FILE = re.compile(r"could not open file (\S+?)\.scm")


def split_sentences(text: str) -> list[str]:
    """Sentences of `text`, Latin or Devanagari (। and ॥ end a sentence), without empty ones."""
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


def installed_voices(root: Path = VOICES_DIR) -> list[str]:
    """festival voices on this machine: /usr/share/festival/voices/<language>/<voice>."""
    return sorted(p.name for p in root.glob("*/*") if p.is_dir())


def missing_modules(voice_dir: Path, libdir: Path) -> list[tuple[str, Path]]:
    """The Scheme modules a voice `require`s that festival will not find, with the library folder
    each was looked for in. Read from the voice's own definition file, so a voice package installed
    without its language package is caught before festival fails mid-call."""
    definition = voice_dir / "festvox" / f"{voice_dir.name}.scm"
    try:
        text = definition.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    folders = [libdir / name for name in _LIBDIR_FOLDER.findall(text)]
    search = [voice_dir / "festvox", *folders, libdir]
    missing = []
    for module in _REQUIRE.findall(text):
        if not any((folder / f"{module}.scm").is_file() for folder in search):
            missing.append((module, folders[0] if folders else libdir))
    return missing


def package_hint(folder: Path) -> str:
    """What to install for a missing festival library folder."""
    package = LANGUAGE_PACKAGES.get(folder.name)
    return f"apt-get install {package}" if package else f"install the festival package that provides {folder}"


def failure_hint(stderr: str) -> str:
    """festival's own complaint, with the package to install when it names a missing language file."""
    found = _MISSING_FILE.search(stderr)
    if found is None:
        return ""
    module = found.group(1)
    for folder, package in LANGUAGE_PACKAGES.items():
        if module.startswith(folder.removesuffix("_scm") + "_"):
            return f" ({module}.scm is missing: apt-get install {package})"
    return f" ({module}.scm is missing)"


def scheme_string(text: str) -> str:
    """`text` as a Scheme string literal: quotes and backslashes escaped, controls flattened."""
    flat = " ".join(text.split())
    return '"' + flat.replace("\\", "\\\\").replace('"', '\\"') + '"'


class FestivalTTS:
    def __init__(
        self,
        voice: str = "hindi_NSK_diphone",
        *,
        speed: float = 1.0,
        binary: str = "festival",
        libdir: Path | None = None,
    ) -> None:
        if libdir is None:  # the environment can point at festival's library elsewhere
            libdir = Path(os.environ.get("VOXLINE_FESTIVAL_LIBDIR", FESTIVAL_LIBDIR))
        found = shutil.which(binary)
        if found is None:
            raise ModelNotInstalledError("festival is not installed: apt-get install festival")
        voice = voice.removeprefix("voice_")
        voices_dir = libdir / "voices"
        known = installed_voices(voices_dir)
        if voices_dir.is_dir() and voice not in known:
            package = VOICE_PACKAGES.get(voice)
            hint = f"apt-get install {package}" if package else "install its voice package"
            raise ModelNotInstalledError(
                f"festival voice {voice!r} is not installed ({hint}); installed: {', '.join(known) or 'none'}"
            )
        for voice_dir in voices_dir.glob(f"*/{voice}"):
            missing = missing_modules(voice_dir, libdir)
            if missing:
                module, folder = missing[0]
                raise ModelNotInstalledError(
                    f"festival voice {voice!r} cannot load: {module}.scm is not in {folder} "
                    f"({package_hint(folder)})"
                )
        self._command = [found, "--pipe"]
        if libdir != FESTIVAL_LIBDIR:
            self._command = [found, "--libdir", str(libdir), "--pipe"]
        nice = shutil.which("nice")
        if nice and MODEL_THREAD_NICENESS > 0:  # like the model threads: the event loop comes first
            self._command = [nice, "-n", str(MODEL_THREAD_NICENESS), *self._command]
        self.voice = voice
        self._stretch = 1.0 / speed  # festival's knob is duration, not rate
        self.sample_rate = FESTIVAL_RATE
        self.name = f"festival:{voice}"

    def script(self, text: str, wav_path: Path) -> str:
        """The festival commands that speak `text` into `wav_path`."""
        return "\n".join(
            (
                f"(voice_{self.voice})",
                "(Parameter.set 'Int_Method 'Default)",
                "(Parameter.set 'Int_Target_Method 'Default)",
                f"(Parameter.set 'Duration_Stretch {self._stretch:.3f})",
                f"(set! utt (utt.synth (Utterance Text {scheme_string(text)})))",
                f"(utt.save.wave utt {scheme_string(str(wav_path))} 'riff)",
                "",
            )
        )

    async def stream(self, text: str, voice: str | None = None) -> AsyncIterator[AudioChunk]:
        # `voice` is ignored: a festival voice is chosen when the engine is built, per language.
        with tempfile.TemporaryDirectory(prefix="voxline-festival-") as folder:
            for index, sentence in enumerate(split_sentences(text)):
                chunk = await self._speak(sentence, Path(folder) / f"{index}.wav")
                if chunk is not None:
                    yield chunk

    async def _speak(self, sentence: str, wav_path: Path) -> AudioChunk | None:
        process = await asyncio.create_subprocess_exec(
            *self._command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, err = await process.communicate(self.script(sentence, wav_path).encode("utf-8"))
        finally:
            if process.returncode is None:  # cancelled (barge-in): stop synthesising at once
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        try:
            if process.returncode == 0:
                return await run_model(_read_wav, wav_path)
        except FileNotFoundError:
            pass  # festival exits 0 even when the voice failed to load: the missing WAV tells
        complaint = err.decode(errors="replace").strip()
        raise EngineError(
            f"festival failed for voice {self.voice!r}: {complaint[-300:]}{failure_hint(complaint)}"
        )

    async def warm_up(self) -> None:
        # a festival voice is named after its language ("hindi_NSK_diphone")
        language = find_named(self.voice.split("_")[0])
        async for _ in self.stream(warm_up_line(language.code if language else None, "hello.")):
            pass


def _read_wav(path: Path) -> AudioChunk | None:
    data = path.read_bytes()
    os.unlink(path)
    header = parse_wav_header(data)
    if header is None:
        raise EngineError(f"festival wrote an incomplete WAV ({len(data)} bytes)")
    rate, offset = header
    pcm = data[offset:]
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2").astype(np.int16)
    return AudioChunk(samples, rate) if samples.size else None
