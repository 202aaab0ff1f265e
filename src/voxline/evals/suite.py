"""`voxline eval`: load scenario suites, build each agent's models once, run, judge, report."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voxline.agent.config import AgentConfig, VoiceConfig, load_agent
from voxline.audio.pcm import AudioChunk
from voxline.engines.base import TTS
from voxline.evals.judge import Judge, JudgeSettings, count_criteria
from voxline.evals.report import summarize, write_report
from voxline.evals.run import (
    VOICE_TAIL_S,
    Mode,
    Render,
    ScenarioResult,
    cached_render,
    run_text,
    run_voice,
)
from voxline.evals.scenario import LoadedScenario, load_scenarios

log = logging.getLogger(__name__)

CALLER_VOICES: dict[str, tuple[str, str]] = {
    "en": ("en-us", "jm_kumo"),
    "hi": ("hi", "jm_kumo"),
    "mr": ("hi", "jm_kumo"),
}
"""Language → (Kokoro language, style) of the simulated caller in voice mode: a male Kokoro style,
which none of the example agents speaks with (they use Piper joe, and Kokoro jf_* for Hindi). Kokoro
has no Marathi, so a Marathi line is read with Hindi phonemes (same script; it used to fall back to
the English phonemes). The agents' whisper base hears this Hindi caller poorly ("शाखा" as "सागा");
jf_gongitsune, the fixtures' style, did no better over the phone line (0 of 5 Hindi scenarios both)."""
CALLER_PAD_S = 0.3
"""Silence around each rendered caller turn, like a breath before and after the words."""


@dataclass(slots=True)
class EvalOptions:
    paths: list[Path]
    agent_file: Path | None = None
    """Overrides every suite's `agent:`."""
    mode: Mode = "text"
    model: str | None = None
    """Overrides the agent's llm.model (e.g. to compare models on one suite)."""
    only: list[str] = field(default_factory=list)
    """Run the scenarios whose id contains any of these."""
    tags: list[str] = field(default_factory=list)
    limit: int | None = None
    repeat: int = 1
    voice_tail_s: float = VOICE_TAIL_S
    """Voice mode: how long the caller waits for the answer to its last turn."""
    """Run each scenario this many times (the model samples: a pass rate over runs is steadier)."""
    out: Path = Path("out/eval")
    judge: JudgeSettings | None = None
    command: str = ""
    on_result: Callable[[ScenarioResult], None] | None = None
    """Called as each scenario finishes (the CLI prints it)."""


def select(scenarios: list[LoadedScenario], options: EvalOptions) -> list[LoadedScenario]:
    chosen = [
        s
        for s in scenarios
        if (not options.only or any(o in s.id for o in options.only))
        and (not options.tags or set(options.tags) & set(s.scenario.tags))
    ]
    return chosen[: options.limit] if options.limit else chosen


def agent_for(scenario: LoadedScenario, options: EvalOptions) -> AgentConfig:
    agent = load_agent(options.agent_file or scenario.agent_file)
    if options.model:
        agent = agent.model_copy(update={"llm": agent.llm.model_copy(update={"model": options.model})})
    return agent


async def run_evals(options: EvalOptions) -> dict[str, Any]:
    """Run the chosen scenarios; write eval.json and eval.md under `options.out`; return the summary."""
    from voxline.conversation.prompt import build_system_prompt
    from voxline.conversation.tools import ToolRegistry
    from voxline.engines import factory
    from voxline.engines._threaded import run_model
    from voxline.runtime import load_engines, warm_engines

    scenarios = select(load_scenarios(options.paths), options)
    if not scenarios:
        raise ValueError("no scenario matches the selection")
    groups: dict[Path | None, list[LoadedScenario]] = {}
    for s in scenarios:
        groups.setdefault(options.agent_file or s.agent_file, []).append(s)
    judge = Judge(options.judge) if options.judge else None
    results: list[ScenarioResult] = []
    agents: list[str] = []
    models: list[str] = []
    started = time.perf_counter()
    try:
        for chosen in groups.values():
            group = [s for s in chosen for _ in range(max(1, options.repeat))]
            agent = agent_for(group[0], options)
            agents.append(agent.name)
            models.append(agent.llm.model)
            if options.mode == "text":
                llm = await run_model(factory.build_llm, agent)
                tools = ToolRegistry(agent).specs()
                await llm.warm_up(build_system_prompt(agent, tools), tools)
                for scenario in group:
                    results.append(await run_text(scenario, agent, llm))
                    _done(results[-1], options)
            else:
                engines = await run_model(load_engines, agent)
                await warm_engines(agent, engines)
                render = caller_renderer(options.out / "caller-audio")
                for scenario in group:
                    calls = options.out / "calls"
                    results.append(
                        await run_voice(scenario, agent, engines, render, calls, options.voice_tail_s)
                    )
                    _done(results[-1], options)
            if judge is not None:
                for result, scenario in zip(results[-len(group) :], group, strict=True):
                    if not result.skipped:
                        result.judged = await judge.judge(scenario, agent, result.outcome)
    finally:
        if judge is not None:
            await judge.aclose()
    meta = {
        "agent": ", ".join(dict.fromkeys(agents)),
        "model": ", ".join(dict.fromkeys(models)),
        "command": options.command,
        "seconds": round(time.perf_counter() - started, 1),
        "repeat": max(1, options.repeat),
        "judge": None
        if options.judge is None
        else {"model": options.judge.model, "url": options.judge.base_url},
        "judge_criteria_not_run": 0 if judge is not None else count_criteria(scenarios),
    }
    summary = summarize(results, meta)
    write_report(summary, options.out)
    return summary


def _done(result: ScenarioResult, options: EvalOptions) -> None:
    if options.on_result is not None:
        options.on_result(result)
    state = "skipped" if result.skipped else ("pass" if result.passed else "FAIL")
    failed = ", ".join(sorted({c.name for c in result.checks if not c.passed}))
    log.info("%s %s%s", state, result.id, f" ({failed})" if failed else "")


def caller_renderer(cache: Path) -> Render:
    """Caller turns spoken by Kokoro in a style no example agent uses, kept in `cache`."""
    from voxline.audio.wav import write_wav
    from voxline.engines._threaded import run_model
    from voxline.engines.catalog import default_catalog
    from voxline.engines.voices import build_tts

    voices: dict[str, TTS] = {}

    async def synthesize(text: str, language: str, path: Path) -> None:
        lang, style = CALLER_VOICES.get(language, CALLER_VOICES["en"])
        if language not in voices:
            config = VoiceConfig(engine="kokoro", voice=style, lang=lang)
            voices[language] = await run_model(build_tts, config, default_catalog())
        tts = voices[language]
        chunks = [chunk async for chunk in tts.stream(text)]
        rate = chunks[0].sample_rate if chunks else tts.sample_rate
        speech = np.concatenate([c.samples for c in chunks]) if chunks else np.zeros(0, np.int16)
        pad = np.zeros(int(CALLER_PAD_S * rate), np.int16)
        await asyncio.to_thread(write_wav, path, AudioChunk(np.concatenate([pad, speech, pad]), rate))

    voice_id = ",".join(f"{k}={v}" for k, v in sorted(CALLER_VOICES.items()))
    return cached_render(cache, synthesize, voice_id)
