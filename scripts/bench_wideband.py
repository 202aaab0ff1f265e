"""What a wideband line does to speech recognition: the same caller turns through G.711 (8 kHz µ-law)
and through G.722 (16 kHz SB-ADPCM, the codec voxline now offers first), transcribed by whisper.

Turn sets:
- en-allison: the 24 recorded caller turns of tests/speech.py (Asterisk's prompts, recorded at 8 kHz:
  G.722 cannot add what the recording never had, so this is the control);
- en-piper: the same 24 texts spoken by Piper (22.05 kHz, wideband), plus the English multilingual turns;
- hi: the Hindi multilingual fixtures (Kokoro, 24 kHz), rendered by scripts/make_fixtures.py.

Each turn goes through "g711" (resample to 8 kHz, µ-law, back to 16 kHz), "g722" (resample to
16 kHz, G.722 at 64 kbit/s in 20 ms frames) and "clean16k" (16 kHz, no codec: the ceiling). Reports
WER and CER per set, path and model (whisper base forced to the language; tiny.en for English).

    .venv/bin/python scripts/bench_wideband.py --out out/wideband       # ~10 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from voxline.agent.config import VoiceConfig
from voxline.audio.g711 import ulaw_decode, ulaw_encode
from voxline.audio.pcm import AudioChunk
from voxline.audio.resample import resample
from voxline.audio.wav import read_wav
from voxline.engines._threaded import run_model
from voxline.engines.catalog import ModelCatalog, resolve
from voxline.engines.stt_whisper import WhisperSTT
from voxline.engines.voices import build_tts
from voxline.telephony.rtp.codecs import G722

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_languages import edit_distance, words
from make_fixtures import load_multilingual

from speech import caller_turns

Turn = tuple[str, str, str, AudioChunk]  # (set, language, exact text, audio at its own rate)


def g711(audio: AudioChunk) -> AudioChunk:
    narrow = resample(audio, 8000)
    line = AudioChunk(np.asarray(ulaw_decode(ulaw_encode(narrow)), dtype=np.int16), 8000)
    return resample(line, 16000)


def g722(audio: AudioChunk) -> AudioChunk:
    wide = resample(audio, 16000)
    coder = G722.for_stream()
    samples = wide.samples
    pad = (-samples.size) % 320
    samples = np.concatenate([samples, np.zeros(pad, np.int16)])
    out = [
        coder.decode(coder.encode(AudioChunk(samples[i : i + 320], 16000))).samples
        for i in range(0, samples.size, 320)
    ]
    return AudioChunk(np.concatenate(out), 16000)


def clean16k(audio: AudioChunk) -> AudioChunk:
    return resample(audio, 16000)


PATHS = {"g711": g711, "g722": g722, "clean16k": clean16k}


async def piper_turns(texts: list[str]) -> list[AudioChunk]:
    tts = await run_model(build_tts, VoiceConfig(engine="piper", voice="en_US-joe-medium"), ModelCatalog())
    out = []
    for text in texts:
        chunks = [c async for c in tts.stream(text)]
        out.append(AudioChunk.concat(chunks))
    return out


async def gather_turns() -> list[Turn]:
    turns: list[Turn] = []
    allison = caller_turns()
    turns += [("en-allison", "en", text, read_wav(path)) for path, text in allison]
    texts = [text for _, text in allison]
    turns += [
        ("en-piper", "en", text, audio) for text, audio in zip(texts, await piper_turns(texts), strict=True)
    ]
    for t in load_multilingual():
        if t.language == "hi":
            turns.append(("hi", "hi", t.text, read_wav(t.path)))
        elif t.language == "en":
            turns.append(("en-piper", "en", t.text, read_wav(t.path)))
    return turns


async def measure(turns: list[Turn]) -> dict[str, Any]:
    base = WhisperSTT(resolve("base", "stt"), name="base")
    tiny = WhisperSTT(resolve("tiny.en", "stt"), name="tiny.en")
    await base.warm_up()
    await tiny.warm_up()
    rows: list[dict[str, Any]] = []
    for set_name, language, text, audio in turns:
        for path_name, path in PATHS.items():
            line = path(audio)
            models = [("base", base)] + ([("tiny.en", tiny)] if language == "en" else [])
            for model_name, model in models:
                heard = (await model.transcribe(line, language)).text
                ref_w, hyp_w = words(text), words(heard)
                ref_c, hyp_c = list("".join(ref_w)), list("".join(hyp_w))
                rows.append(
                    {
                        "set": set_name,
                        "path": path_name,
                        "model": model_name,
                        "text": text,
                        "heard": heard,
                        "word_errors": edit_distance(ref_w, hyp_w),
                        "ref_words": len(ref_w),
                        "char_errors": edit_distance(ref_c, hyp_c),
                        "ref_chars": len(ref_c),
                    }
                )
    summary: dict[str, Any] = {}
    for key in sorted({(r["set"], r["model"], r["path"]) for r in rows}):
        mine = [r for r in rows if (r["set"], r["model"], r["path"]) == key]
        summary[" ".join(key)] = {
            "turns": len(mine),
            "wer": round(sum(r["word_errors"] for r in mine) / sum(r["ref_words"] for r in mine), 3),
            "cer": round(sum(r["char_errors"] for r in mine) / sum(r["ref_chars"] for r in mine), 3),
        }
    return {"summary": summary, "rows": rows}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("out/wideband"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    result = await measure(await gather_turns())
    (args.out / "wideband.json").write_text(
        json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8"
    )
    print(f"{'set model path':40} {'turns':>5} {'WER':>6} {'CER':>6}")
    for key, entry in result["summary"].items():
        print(f"{key:40} {entry['turns']:5d} {entry['wer']:6.3f} {entry['cer']:6.3f}")


if __name__ == "__main__":
    asyncio.run(main())
