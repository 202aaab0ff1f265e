"""Running scenarios: text mode through the call's own answering loop, voice mode through `simulate`.

Text mode (`TextSession`) types each caller line into a real `Conversation` with a mute voice: fast,
and the behaviour is the phone call's (tool rounds, language switches, digit collection). Voice mode
renders each line with a caller voice the agent does not use (or plays the scenario's WAV), plays it
into the agent in real time over the file transport, and judges what the agent's STT heard it answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from voxline.agent.config import AgentConfig
from voxline.conversation.chat import TextReply, TextSession
from voxline.engines.base import LLM, Engines
from voxline.evals.checks import (
    CallOutcome,
    Check,
    InternalText,
    TurnOutcome,
    check_call,
    check_turn,
    fixed_lines,
)
from voxline.evals.scenario import LoadedScenario

log = logging.getLogger(__name__)

Mode = Literal["text", "voice"]


@dataclass(slots=True)
class ScenarioResult:
    id: str
    tags: list[str]
    mode: Mode
    checks: list[Check]
    outcome: CallOutcome
    seconds: float
    skipped: str = ""
    """Why the scenario was not run in this mode ("" when it ran)."""
    judged: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.skipped and all(c.passed for c in [*self.checks, *self.judged])

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tags": self.tags,
            "mode": self.mode,
            "passed": self.passed,
            "skipped": self.skipped,
            "seconds": round(self.seconds, 2),
            "failed": [c.as_dict() for c in [*self.checks, *self.judged] if not c.passed],
            "checks": len(self.checks) + len(self.judged),
            "end_reason": self.outcome.end_reason,
            "transferred_to": self.outcome.transferred_to,
            "error": self.outcome.error,
            "turns": [
                {
                    "caller": t.caller,
                    "agent": t.said,
                    "tools": t.tool_calls,
                    "language": t.call_language,
                    "latency_ms": None if t.latency_ms is None else round(t.latency_ms, 1),
                    **({"route": t.route} if t.route else {}),
                    **({"stages": t.stages} if t.stages else {}),
                }
                for t in self.outcome.turns
            ],
        }


def judge_scenario(scenario: LoadedScenario, outcome: CallOutcome, agent: AgentConfig) -> list[Check]:
    """The deterministic checks of one scenario's outcome."""
    internal = InternalText.of(agent)
    checks: list[Check] = []
    for i, (turn, got) in enumerate(zip(scenario.scenario.turns, outcome.turns, strict=False), start=1):
        checks += check_turn(turn.expect, got, internal, i)
    missing = len(scenario.scenario.turns) - len(outcome.turns)
    if missing > 0 and not outcome.error and not scenario.scenario.may_end_early:
        checks.append(
            Check(
                "reached",
                False,
                f"the call ended ({outcome.end_reason}) with {missing} caller turn(s) unsaid",
            )
        )
    checks += check_call(scenario.scenario.expect, outcome, fixed_lines(agent))
    return checks


# ---------------------------------------------------------------- text mode


def _turn_outcome(caller: str, reply: TextReply) -> TurnOutcome:
    return TurnOutcome(
        caller=caller,
        said=reply.text,
        tool_calls=reply.tool_calls,
        call_language=reply.language,
        ended=reply.ended,
        transferred=reply.end_reason == "transferred",
        latency_ms=reply.first_sentence_ms,
    )


async def run_text(scenario: LoadedScenario, agent: AgentConfig, llm: LLM) -> ScenarioResult:
    started = time.perf_counter()
    session = TextSession(agent, llm)
    turns: list[TurnOutcome] = []
    error = None
    try:
        await session.start()
        for turn in scenario.scenario.turns:
            if session.ended:
                break
            if turn.keys is not None:
                reply = await session.press(turn.keys)
                caller = f"(keys {turn.keys})"
            else:
                caller = turn.say or ""
                reply = await session.say(caller, turn.language, turn.language_probability)
            turns.append(_turn_outcome(caller, reply))
    except Exception as exc:  # one broken scenario must not stop the suite
        log.exception("scenario %s failed to run", scenario.id)
        error = f"{type(exc).__name__}: {exc}"
    finally:
        report = await session.close()
    outcome = CallOutcome(turns, report.end_reason, report.transferred_to, error)
    checks = judge_scenario(scenario, outcome, agent)
    tags = scenario.scenario.tags
    return ScenarioResult(scenario.id, tags, "text", checks, outcome, time.perf_counter() - started)


# ---------------------------------------------------------------- voice mode

VOICE_TAIL_S = 15.0
"""After the last caller turn, how long the caller stays on the line for the answer (simulate's 6 s
default hangs up on an agent whose model is slow to start, e.g. on a busy CPU)."""

Render = Callable[[str, str], Awaitable[Path]]
"""(text, language) → a WAV file of a caller saying it."""


def voice_skip_reason(scenario: LoadedScenario) -> str:
    if not scenario.scenario.voice:
        return "text only"
    if any(t.keys is not None for t in scenario.scenario.turns):
        return "key presses are text mode only"
    return ""


async def run_voice(
    scenario: LoadedScenario,
    agent: AgentConfig,
    engines: Engines,
    render: Render,
    out_dir: Path,
    tail_s: float = VOICE_TAIL_S,
) -> ScenarioResult:
    from voxline.runtime import simulate_call

    started = time.perf_counter()
    tags = scenario.scenario.tags
    skip = voice_skip_reason(scenario)
    if skip:
        return ScenarioResult(scenario.id, tags, "voice", [], CallOutcome([]), 0.0, skipped=skip)
    wavs: list[Path] = []
    for turn in scenario.scenario.turns:
        audio = scenario.audio_path(turn)
        language = turn.language or agent.language
        wavs.append(audio if audio is not None else await render(turn.say or "", language))
    events: list[dict[str, Any]] = []
    safe = scenario.id.replace("/", "__")
    error = None
    result: dict[str, Any] = {"turns": [], "caller_timeline": []}
    try:
        result = await simulate_call(
            agent,
            wavs,
            engines=engines,
            tail_s=tail_s,
            out=out_dir / f"{safe}.wav",
            db_path=out_dir / "calls.sqlite3",
            on_event=events.append,
        )
    except Exception as exc:
        log.exception("scenario %s failed to run", scenario.id)
        error = f"{type(exc).__name__}: {exc}"
    outcome = voice_outcome(result, events, error)
    checks = judge_scenario(scenario, outcome, agent)
    heard = len(outcome.turns)
    if heard > len(scenario.scenario.turns) and not error:
        checks.append(Check("heard", False, f"{len(scenario.scenario.turns)} caller turns heard as {heard}"))
    return ScenarioResult(scenario.id, tags, "voice", checks, outcome, time.perf_counter() - started)


STAGES = (
    "endpointing_ms",
    "stt_ms",
    "llm_first_token_ms",
    "llm_first_sentence_ms",
    "tts_first_audio_ms",
    "voice_to_voice_ms",
    "answer_head_start_ms",
)
"""The call record's per-turn timings a voice-mode report breaks latency down by."""


def voice_outcome(result: dict[str, Any], events: list[dict[str, Any]], error: str | None) -> CallOutcome:
    """Per caller turn (each report turn the STT heard words in): what the agent said and did."""
    end_reason = result.get("end_reason")
    answered = [t for t in result.get("turns", []) if t.get("user_text")]
    timeline = result.get("caller_timeline", [])
    turns = []
    for i, record in enumerate(answered):
        calls = [
            {"name": e["name"], "arguments": dict(e.get("arguments") or {})}
            for e in events
            if e.get("type") == "tool_call" and e.get("turn") == record["index"]
        ]
        last = i == len(answered) - 1
        v2v = timeline[i].get("voice_to_voice_ms") if i < len(timeline) else None
        turns.append(
            TurnOutcome(
                caller=record["user_text"],
                said=record.get("agent_text", ""),
                tool_calls=calls,
                call_language=record.get("language", ""),
                ended=last and end_reason not in (None, "caller_hangup", "cancelled"),
                transferred=last and end_reason == "transferred",
                latency_ms=v2v,
                route=record.get("route", ""),
                stages={k: v for k, v in (record.get("metrics") or {}).items() if k in STAGES},
            )
        )
    return CallOutcome(turns, end_reason, result.get("transferred_to"), error)


def cached_render(
    cache: Path, synthesize: Callable[[str, str, Path], Awaitable[None]], voice_id: str
) -> Render:
    """A renderer that keeps each (voice, language, text) WAV in `cache` and makes it once."""

    async def render(text: str, language: str) -> Path:
        digest = hashlib.sha1(f"{voice_id}\n{language}\n{text}".encode()).hexdigest()[:16]
        path = cache / f"{language}-{digest}.wav"
        if not path.exists():
            await asyncio.to_thread(cache.mkdir, parents=True, exist_ok=True)
            partial = path.with_suffix(".part.wav")
            await synthesize(text, language, partial)
            partial.replace(path)
        return path

    return render
