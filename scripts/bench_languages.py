"""Per-language figures for English, Hindi and Marathi on this machine's CPU models.

- STT word error rate on the test turns, through an 8 kHz phone line: Hindi (Kokoro-rendered),
  Marathi (festival-rendered), English (recorded Asterisk prompts), whisper base forced to the language
  (and tiny.en for English, the English default).
- Language identification among [en, hi, mr]: accuracy per language, and its cost per turn when it
  shares the transcription's encoder pass vs. a separate detection pass.
- TTS first audio and real-time factor per voice: Piper (en), Kokoro (hi), festival (hi, mr), espeak-ng.
- Voice-to-voice p50 for a Hindi call (examples/agents/hindi.yaml) vs. an English call (bank.yaml).

    .venv/bin/python scripts/bench_languages.py --out out/languages     # about 10 minutes
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from voxline.agent.config import VoiceConfig, default_agent, load_agent
from voxline.audio.pcm import AudioChunk
from voxline.audio.resample import resample
from voxline.audio.wav import read_wav
from voxline.engines._threaded import run_model
from voxline.engines.base import TTS
from voxline.engines.catalog import ModelCatalog, resolve
from voxline.engines.stt_whisper import WhisperSTT
from voxline.engines.voices import build_tts
from voxline.logs import configure_logging
from voxline.runtime import load_engines, simulate_call, warm_engines

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import load_multilingual

from speech import caller_turns

ROOT = Path(__file__).resolve().parents[1]

CANDIDATES = ["en", "hi", "mr"]
TTS_SENTENCES = {
    "en": ["Your card has been blocked.", "I can help you with that today.", "The branch opens at nine."],
    "hi": ["आपका कार्ड बंद कर दिया गया है।", "मैं आज इसमें आपकी मदद कर सकती हूँ।", "शाखा नौ बजे खुलती है।"],
    "mr": ["तुमचे कार्ड बंद केले आहे.", "मी आज तुम्हाला मदत करू शकते.", "शाखा नऊ वाजता उघडते."],
}
VOICES = {
    "piper en": ("en", VoiceConfig(engine="piper", voice="en_US-joe-medium")),
    "kokoro hi": ("hi", VoiceConfig(engine="kokoro", voice="jf_gongitsune", lang="hi")),
    "festival hi": ("hi", VoiceConfig(engine="festival", voice="hi")),
    "festival mr": ("mr", VoiceConfig(engine="festival", voice="mr")),
    "espeak hi": ("hi", VoiceConfig(engine="espeak", voice="hi")),
    "espeak mr": ("mr", VoiceConfig(engine="espeak", voice="mr")),
}


def words(text: str) -> list[str]:
    return re.sub(r"[^\w\s\u0900-\u097f]|[।॥]", " ", text.lower()).split()


def edit_distance(a: list[str], b: list[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def phone_line(audio: AudioChunk) -> AudioChunk:
    return resample(resample(audio, 8000), 16000)


def test_turns() -> list[tuple[str, str, AudioChunk]]:
    """(language, exact text, audio) for every turn, through an 8 kHz line."""
    turns = [(t.language, t.text, phone_line(read_wav(t.path))) for t in load_multilingual()]
    turns += [("en", text, phone_line(read_wav(path))) for path, text in caller_turns()]
    return turns


async def stt_and_lid(turns: list[tuple[str, str, AudioChunk]]) -> dict[str, Any]:
    base = WhisperSTT(resolve("base", "stt"), name="base")
    tiny = WhisperSTT(resolve("tiny.en", "stt"), name="tiny.en")
    await base.warm_up()
    await tiny.warm_up()
    rows: list[dict[str, Any]] = []

    def forget_encoding() -> None:
        # WhisperSTT keeps the last encoder output so identify-then-transcribe encodes once; each
        # timing below must pay for its own encoder pass, as it would on a fresh turn.
        base._last_window = None

    for language, text, audio in turns:
        forget_encoding()
        t0 = time.perf_counter()
        forced = await base.transcribe(audio, language)
        forced_ms = (time.perf_counter() - t0) * 1000
        forget_encoding()
        t0 = time.perf_counter()
        _, guess = await base.transcribe_with_language(audio, CANDIDATES, None)
        shared_ms = (time.perf_counter() - t0) * 1000
        forget_encoding()
        t0 = time.perf_counter()
        await base.identify_language(audio, CANDIDATES)  # what a separate LID pass costs
        separate_ms = (time.perf_counter() - t0) * 1000
        row = {
            "language": language,
            "text": text,
            "base_forced": forced.text,
            "base_errors": edit_distance(words(text), words(forced.text)),
            "ref_words": len(words(text)),
            "base_char_errors": edit_distance(list("".join(words(text))), list("".join(words(forced.text)))),
            "ref_chars": len("".join(words(text))),
            "lid": guess.language,
            "lid_probability": round(guess.probability, 3),
            "lid_ms_shared": round(guess.compute_ms, 1),
            "transcribe_forced_ms": round(forced_ms, 1),
            "transcribe_with_lid_ms": round(shared_ms, 1),
            "lid_separate_pass_ms": round(separate_ms, 1),
        }
        if language == "en":
            tiny_text = (await tiny.transcribe(audio, "en")).text
            row["tiny_en"] = tiny_text
            row["tiny_errors"] = edit_distance(words(text), words(tiny_text))
        rows.append(row)
    summary: dict[str, Any] = {}
    for language in CANDIDATES:
        mine = [r for r in rows if r["language"] == language]
        if not mine:
            continue
        ref = sum(r["ref_words"] for r in mine)
        entry = {
            "turns": len(mine),
            "wer_base_forced": round(sum(r["base_errors"] for r in mine) / ref, 3),
            "cer_base_forced": round(
                sum(r["base_char_errors"] for r in mine) / sum(r["ref_chars"] for r in mine), 3
            ),
            "lid_accuracy": round(sum(r["lid"] == language for r in mine) / len(mine), 3),
            "lid_ms_shared_p50": round(statistics.median(r["lid_ms_shared"] for r in mine), 1),
            "lid_separate_pass_ms_p50": round(statistics.median(r["lid_separate_pass_ms"] for r in mine), 1),
            "transcribe_forced_ms_p50": round(statistics.median(r["transcribe_forced_ms"] for r in mine), 1),
            "transcribe_with_lid_ms_p50": round(
                statistics.median(r["transcribe_with_lid_ms"] for r in mine), 1
            ),
        }
        if language == "en":
            entry["wer_tiny_en"] = round(sum(r["tiny_errors"] for r in mine) / ref, 3)
        summary[language] = entry
    return {"summary": summary, "rows": rows}


async def voices() -> dict[str, Any]:
    catalog = ModelCatalog()
    out: dict[str, Any] = {}
    for name, (language, config) in VOICES.items():
        try:
            tts: TTS = await run_model(build_tts, config, catalog)
        except Exception as exc:  # a voice not installed here is reported, not fatal
            out[name] = {"error": str(exc)}
            continue
        await tts.warm_up()
        firsts, rtfs = [], []
        for sentence in TTS_SENTENCES[language]:
            t0 = time.perf_counter()
            first = None
            audio_s = 0.0
            async for chunk in tts.stream(sentence):
                first = first if first is not None else time.perf_counter() - t0
                audio_s += chunk.duration_s
            total = time.perf_counter() - t0
            firsts.append((first or total) * 1000)
            rtfs.append(total / audio_s if audio_s else float("nan"))
        out[name] = {
            "first_audio_ms_p50": round(statistics.median(firsts), 1),
            "rtf_p50": round(statistics.median(rtfs), 3),
        }
    return out


async def calls(out: Path) -> dict[str, Any]:
    hindi = [t for t in load_multilingual() if t.language == "hi"][:6]
    english = [path for path, _ in caller_turns()[:6]]
    result: dict[str, Any] = {}
    for name, agent, files in (
        ("english (bank.yaml)", default_agent(), english),
        (
            "hindi (hindi.yaml)",
            load_agent(ROOT / "examples" / "agents" / "hindi.yaml"),
            [Path(t.path) for t in hindi],
        ),
    ):
        engines = await run_model(load_engines, agent)
        await warm_engines(agent, engines)
        report = await simulate_call(agent, files, pause_s=1.0, tail_s=15.0, engines=engines)
        (out / f"call-{name.split()[0]}.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
        user = [t for t in report["turns"] if t["user_text"]]
        metrics = {
            key: [t["metrics"][key] for t in user if t["metrics"][key] is not None]
            for key in (
                "voice_to_voice_ms",
                "stt_ms",
                "llm_first_token_ms",
                "llm_first_sentence_ms",
                "tts_first_audio_ms",
            )
        }
        result[name] = {
            "turns": len(user),
            **{f"{k}_p50": round(statistics.median(v), 1) if v else None for k, v in metrics.items()},
        }
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("out/languages"))
    parser.add_argument("--only", choices=["stt", "tts", "calls"], help="run one part")
    args = parser.parse_args()
    configure_logging("warning", False)
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    if args.only in (None, "stt"):
        results["stt_lid"] = await stt_and_lid(test_turns())
        print(json.dumps(results["stt_lid"]["summary"], indent=1), flush=True)
    if args.only in (None, "tts"):
        results["tts"] = await voices()
        print(json.dumps(results["tts"], indent=1), flush=True)
    if args.only in (None, "calls"):
        results["calls"] = await calls(args.out)
        print(json.dumps(results["calls"], indent=1, ensure_ascii=False), flush=True)
    name = f"languages-{args.only}.json" if args.only else "languages.json"
    (args.out / name).write_text(json.dumps(results, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    asyncio.run(main())
