"""Check the test fixtures that come from Debian packages, and build derived ones into .cache/fixtures.

Run by `make test`'s setup. Nothing generated here is committed.

Multilingual caller turns (tests/data/multilingual_turns.txt) are rendered with the local voices:
Hindi by Kokoro (lang "hi"), Marathi by festival (marathi_NSK_diphone), English by Piper. Each WAV
is written at its voice's own rate to .cache/fixtures/multilingual/<id>.wav, and index.json records
language, text and voice; a turn whose WAV and index entry are current is not rendered again.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))

from speech import caller_turns, transcripts  # noqa: E402
from voxline.agent.config import VoiceConfig  # noqa: E402
from voxline.audio.pcm import AudioChunk  # noqa: E402
from voxline.audio.wav import write_wav  # noqa: E402
from voxline.engines.base import TTS, EngineError  # noqa: E402
from voxline.engines.catalog import ModelCatalog  # noqa: E402
from voxline.engines.voices import build_tts  # noqa: E402

TURNS_FILE = ROOT / "tests" / "data" / "multilingual_turns.txt"
FIXTURES = Path(os.environ.get("VOXLINE_FIXTURES_DIR", ROOT / ".cache" / "fixtures"))
MULTILINGUAL = FIXTURES / "multilingual"
INDEX = "index.json"

SPEAKERS: dict[str, VoiceConfig] = {
    "hi": VoiceConfig(engine="kokoro", voice="jf_gongitsune", lang="hi"),
    "mr": VoiceConfig(engine="festival", voice="mr"),
    "en": VoiceConfig(engine="piper", voice="en_US-joe-medium"),
}
"""Who speaks each language's caller turns (whisper understands Kokoro's Hindi; festival's Marathi is
the only offline Marathi voice)."""


@dataclass(frozen=True, slots=True)
class Turn:
    id: str
    language: str
    text: str


@dataclass(frozen=True, slots=True)
class RenderedTurn:
    id: str
    language: str
    text: str
    voice: str
    path: str  # the file name in the index, the full path from load_multilingual()
    duration_s: float


def read_turns(path: Path = TURNS_FILE) -> list[Turn]:
    turns = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        turn_id, language, text = line.split("\t")
        turns.append(Turn(turn_id, language, text.strip()))
    return turns


def load_multilingual(folder: Path = MULTILINGUAL) -> list[RenderedTurn]:
    """The rendered turns (after this script ran), in the order of the turns file."""
    index = json.loads((folder / INDEX).read_text(encoding="utf-8"))
    return [RenderedTurn(**{**entry, "path": str(folder / entry["path"])}) for entry in index.values()]


def _voice_key(config: VoiceConfig) -> str:
    return f"{config.engine}:{config.voice}:{config.lang or ''}"


async def _speak(tts: TTS, text: str) -> AudioChunk:
    chunks = [chunk async for chunk in tts.stream(text)]
    if not chunks:
        raise EngineError(f"{tts.name} produced no audio for {text!r}")
    return AudioChunk.concat(chunks)


def render_multilingual(folder: Path = MULTILINGUAL, catalog: ModelCatalog | None = None) -> int:
    """Render every turn that is not current; returns how many were rendered."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        old: dict[str, dict[str, object]] = json.loads((folder / INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        old = {}
    catalog = catalog or ModelCatalog()
    voices: dict[str, TTS] = {}  # built lazily: a warm run loads no model at all
    index: dict[str, dict[str, object]] = {}
    rendered = 0
    for turn in read_turns():
        config = SPEAKERS[turn.language]
        wav = folder / f"{turn.id}.wav"
        entry = old.get(turn.id)
        current = (
            entry is not None
            and entry.get("text") == turn.text
            and entry.get("voice") == _voice_key(config)
            and wav.exists()
        )
        if not current:
            if turn.language not in voices:
                voices[turn.language] = build_tts(config, catalog, f"fixtures.{turn.language}")
            audio = asyncio.run(_speak(voices[turn.language], turn.text))
            write_wav(wav, audio)
            entry = asdict(
                RenderedTurn(
                    turn.id,
                    turn.language,
                    turn.text,
                    _voice_key(config),
                    str(wav),
                    round(audio.duration_s, 3),
                )
            )
            rendered += 1
        assert entry is not None
        index[turn.id] = entry
    tmp = folder / f".{INDEX}.tmp"
    tmp.write_text(json.dumps(index, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(folder / INDEX)
    return rendered


def main() -> int:
    try:
        turns = caller_turns()
    except (FileNotFoundError, KeyError) as exc:
        print(f"[fixtures] missing test speech: {exc}", file=sys.stderr)
        return 1
    print(f"[fixtures] {len(turns)} caller turns of recorded speech, {len(transcripts())} transcripts")
    started = time.perf_counter()
    try:
        rendered = render_multilingual()
    except EngineError as exc:  # ModelNotInstalledError included: the message says what to install
        print(f"[fixtures] cannot render the multilingual turns: {exc}", file=sys.stderr)
        return 1
    print(
        f"[fixtures] {len(read_turns())} multilingual caller turns in {MULTILINGUAL} "
        f"({rendered} rendered, {time.perf_counter() - started:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
