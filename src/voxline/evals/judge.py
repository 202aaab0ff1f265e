"""An optional LLM judge for what rules cannot check ("did it offer a transfer politely?"), through any
OpenAI-compatible chat endpoint (llama-server, vLLM, Ollama, a hosted API). Deterministic checks
come first and always run; the judge only adds verdicts on scenarios that give `judge:` criteria.

The key comes from the environment (VOXLINE_JUDGE_API_KEY), never from a file.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

import httpx

from voxline.agent.config import AgentConfig
from voxline.evals.checks import CallOutcome, Check
from voxline.evals.scenario import LoadedScenario

API_KEY_ENV = "VOXLINE_JUDGE_API_KEY"
MAX_RESPONSE_BYTES = 256 * 1024

SYSTEM = (
    "You grade one phone call between a caller and a company's voice agent against the criteria "
    "given. Judge only what the agent said and did. Answer with one JSON object and nothing else: "
    '{"pass": true or false, "reason": "one short sentence"}'
)


@dataclass(frozen=True, slots=True)
class JudgeSettings:
    base_url: str
    model: str
    timeout_s: float = 60.0


class JudgeError(RuntimeError):
    pass


def transcript(outcome: CallOutcome) -> str:
    lines = []
    for i, turn in enumerate(outcome.turns, start=1):
        lines.append(f"[{i}] Caller: {turn.caller}")
        tools = ", ".join(f"{c['name']}({json.dumps(c.get('arguments') or {})})" for c in turn.tool_calls)
        lines.append(f"[{i}] Agent: {turn.said or '(silence)'}" + (f"  [actions: {tools}]" if tools else ""))
    if outcome.end_reason:
        lines.append(f"(call ended: {outcome.end_reason})")
    return "\n".join(lines)


def parse_verdict(content: str) -> tuple[bool, str]:
    """The judge's {"pass": ..., "reason": ...}, found even inside prose or a code fence."""
    found = re.search(r"\{.*\}", content, re.S)
    if found is None:
        raise JudgeError(f"no JSON in the judge's answer: {content[:200]!r}")
    try:
        verdict = json.loads(found.group(0))
    except json.JSONDecodeError as exc:
        raise JudgeError(f"the judge's JSON is malformed: {exc}") from exc
    if not isinstance(verdict, dict) or not isinstance(verdict.get("pass"), bool):
        raise JudgeError(f'the judge gave no boolean "pass": {found.group(0)[:200]!r}')
    return verdict["pass"], str(verdict.get("reason", ""))


class Judge:
    def __init__(self, settings: JudgeSettings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        key = os.environ.get(API_KEY_ENV)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = client or httpx.AsyncClient(
            base_url=settings.base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(settings.timeout_s, connect=5.0),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def ask(
        self, agent: AgentConfig, outcome: CallOutcome, criteria: str, turn: int | None
    ) -> tuple[bool, str]:
        """One verdict and its reason; raises JudgeError when the endpoint fails or answers nonsense."""
        where = f"Judge the agent's reply in turn [{turn}]." if turn else "Judge the whole call."
        user = (
            f"The agent's instructions:\n{agent.persona.strip()}\n"
            + "".join(f"- {r}\n" for r in agent.rules)
            + f"\nThe call:\n{transcript(outcome)}\n\n{where}\nCriteria: {criteria}"
        )
        body = {
            "model": self.settings.model,
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
            "temperature": 0,
            "max_tokens": 200,
        }
        try:
            response = await self._client.post("/chat/completions", json=body)
        except httpx.HTTPError as exc:
            raise JudgeError(f"the judge endpoint failed: {exc!r}") from exc
        if response.status_code != 200:
            raise JudgeError(f"the judge endpoint answered HTTP {response.status_code}")
        if len(response.content) > MAX_RESPONSE_BYTES:
            raise JudgeError("the judge's answer is too large")
        try:
            content = response.json()["choices"][0]["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise JudgeError(f"not an OpenAI chat completion: {response.text[:200]!r}") from exc
        return parse_verdict(content)

    async def judge(self, scenario: LoadedScenario, agent: AgentConfig, outcome: CallOutcome) -> list[Check]:
        """Verdicts on every `judge:` criterion of the scenario (per turn reached, and per call)."""
        asks: list[tuple[str, int | None]] = [
            (turn.expect.judge, i)
            for i, turn in enumerate(scenario.scenario.turns[: len(outcome.turns)], start=1)
            if turn.expect.judge
        ]
        if scenario.scenario.expect.judge:
            asks.append((scenario.scenario.expect.judge, None))
        checks = []
        for criteria, turn in asks:
            try:
                passed, reason = await self.ask(agent, outcome, criteria, turn)
                detail = f"{criteria} — judge: {reason}"
                checks.append(Check("judge", passed, "" if passed else detail, turn))
            except JudgeError as exc:
                checks.append(Check("judge_error", False, str(exc), turn))
        return checks


def count_criteria(scenarios: list[LoadedScenario]) -> int:
    return sum(
        sum(1 for t in s.scenario.turns if t.expect.judge) + (1 if s.scenario.expect.judge else 0)
        for s in scenarios
    )
