"""Voice-to-voice over SIP/RTP vs. the in-process path, on the same recorded caller turns and models.

In-process: `simulate_call` (the file transport, no network). Over SIP: the agent sits behind a
SipEndpoint exactly as `voxline serve` runs it, and a second SipEndpoint in the same process places
the call with the scripted caller on it (8 kHz PCMU over loopback RTP, both sides with their jitter
buffers). Both report the agent-side figure (end of caller speech → first agent frame leaving) and
the caller-side figure (from the audio on the caller's own side of the wire), so the transport's own
cost is the difference.

    .venv/bin/python scripts/bench_sip_v2v.py --out out/sip-v2v     # about 6 minutes
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from voxline.agent.config import AgentConfig, SipConfig, default_agent
from voxline.audio.wav import read_wav
from voxline.bench.caller import ScriptedCaller
from voxline.conversation.session import Conversation
from voxline.engines._threaded import run_model
from voxline.engines.base import Engines
from voxline.logs import configure_logging
from voxline.records import SqliteCallRecorder
from voxline.runtime import load_engines, simulate_call, warm_engines
from voxline.telephony.sip.endpoint import SipEndpoint
from voxline.transports.base import CallIO

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from speech import caller_turns

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_call import stats

TURNS_PER_CALL = 6


def any_port(config: SipConfig, user: str, jitter_ms: int) -> SipConfig:
    return config.model_copy(
        update={"port": 0, "rtp_port_min": 0, "rtp_port_max": 0, "user": user, "jitter_buffer_ms": jitter_ms}
    )


async def sip_call(agent: AgentConfig, engines: Engines, turns: list[Path], db: Path) -> dict[str, Any]:
    recorder = SqliteCallRecorder(db)
    reports: list[dict[str, Any]] = []

    async def agent_side(call: CallIO) -> None:
        report = await Conversation(call, agent, engines, recorder=recorder, transport="sip").run()
        reports.append(report.as_dict())

    caller = ScriptedCaller([read_wav(p) for p in turns], pause_s=1.0)
    sip = agent.telephony.sip
    server = SipEndpoint(any_port(sip, "agent", sip.jitter_buffer_ms), agent_side)
    client = SipEndpoint(any_port(agent.telephony.sip, "caller", 40), caller)
    await server.start()
    await client.start()
    try:
        await client.call(f"sip:agent@127.0.0.1:{server.local_port('udp')}", caller, timeout_s=10)
        for _ in range(100):
            if reports:
                break
            await asyncio.sleep(0.05)
    finally:
        await client.stop()
        await server.stop()
        recorder.close()
    report = reports[0]
    report["caller_timeline"] = [
        {"voice_to_voice_ms": None if t.voice_to_voice_ms is None else round(t.voice_to_voice_ms, 1)}
        for t in caller.result.turns
    ]
    return report


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("out/sip-v2v"))
    parser.add_argument("--calls", type=int, default=2, help="calls of 6 turns per path")
    args = parser.parse_args()
    configure_logging("warning", False)
    args.out.mkdir(parents=True, exist_ok=True)
    agent = default_agent()
    engines = await run_model(load_engines, agent)
    await warm_engines(agent, engines)
    turns = [p for p, _ in caller_turns()]
    groups = [turns[i * TURNS_PER_CALL : (i + 1) * TURNS_PER_CALL] for i in range(args.calls)]
    paths: dict[str, dict[str, list[float | None]]] = {}
    for name in ("in_process", "sip"):
        agent_v2v: list[float | None] = []
        caller_v2v: list[float | None] = []
        for n, group in enumerate(groups):
            if name == "sip":
                report = await sip_call(agent, engines, group, args.out / "calls.sqlite3")
            else:
                report = await simulate_call(
                    agent, group, pause_s=1.0, db_path=args.out / "calls.sqlite3", engines=engines
                )
            (args.out / f"{name}-{n}.json").write_text(json.dumps(report, indent=1, default=str))
            agent_v2v += [t["metrics"]["voice_to_voice_ms"] for t in report["turns"] if t["user_text"]]
            caller_v2v += [t["voice_to_voice_ms"] for t in report["caller_timeline"]]
            print(f"{name} call {n}: {len(report['turns'])} turns", flush=True)
        paths[name] = {"agent_side": agent_v2v, "caller_side": caller_v2v}
    summary = {name: {side: stats(values) for side, values in sides.items()} for name, sides in paths.items()}
    (args.out / "sip_v2v.json").write_text(json.dumps({"summary": summary, "raw": paths}, indent=2))
    lines = [
        "| path | agent-side v2v p50 / p95 (ms) | caller-side v2v p50 / p95 (ms) | n |",
        "|---|---|---|---|",
    ]
    for name, s in summary.items():
        a, c = s["agent_side"], s["caller_side"]
        lines.append(f"| {name} | {a['p50']} / {a['p95']} | {c['p50']} / {c['p95']} | {c['n']} |")
    (args.out / "sip_v2v.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    asyncio.run(main())
