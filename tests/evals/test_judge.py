"""The optional LLM judge against a real OpenAI-compatible HTTP server on loopback (a fake model)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from voxline.agent.config import load_agent
from voxline.evals.checks import CallOutcome, TurnOutcome
from voxline.evals.judge import API_KEY_ENV, Judge, JudgeError, JudgeSettings, parse_verdict
from voxline.evals.scenario import load_suite

BANK = load_agent(Path(__file__).parents[2] / "examples" / "agents" / "bank.yaml")


class FakeOpenAI(ThreadingHTTPServer):
    """Answers /v1/chat/completions with whatever `answer(body)` returns; remembers each request."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.status = 200
        self.content = '{"pass": true, "reason": "offered a transfer"}'

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    server: FakeOpenAI

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((dict(self.headers), {"path": self.path, **body}))
        reply = {"choices": [{"message": {"role": "assistant", "content": self.server.content}}]}
        data = json.dumps(reply).encode()
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    httpd = FakeOpenAI()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


SUITE = """
agent: bank.yaml
scenarios:
  - name: lost-card
    turns:
      - say: I lost my card.
        expect: {judge: "The agent offers to transfer the caller to a colleague."}
    expect: {judge: "The agent never asks for the full card number."}
"""


def outcome() -> CallOutcome:
    said = "A colleague can freeze it now; shall I put you through?"
    return CallOutcome(
        [TurnOutcome("I lost my card.", said, tool_calls=[{"name": "transfer_call", "arguments": {}}])]
    )


async def test_the_judge_reads_the_call_and_gives_verdicts_per_criterion(
    server: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(API_KEY_ENV, "sk-test")
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE)
    scenario = load_suite(path)[0]
    judge = Judge(JudgeSettings(server.url, "big-model"))
    try:
        checks = await judge.judge(scenario, BANK, outcome())
        server.content = 'Sure! ```json\n{"pass": false, "reason": "no offer"}\n```'
        failing = await judge.judge(scenario, BANK, outcome())
    finally:
        await judge.aclose()
    assert [(c.name, c.passed, c.turn) for c in checks] == [("judge", True, 1), ("judge", True, None)]
    assert [(c.name, c.passed) for c in failing] == [("judge", False), ("judge", False)]
    assert "no offer" in failing[0].detail
    headers, body = server.requests[0]
    assert body["path"] == "/v1/chat/completions"
    assert body["model"] == "big-model"
    assert headers["Authorization"] == "Bearer sk-test"
    prompt = body["messages"][-1]["content"]
    assert "[1] Caller: I lost my card." in prompt
    assert "transfer_call" in prompt
    assert "offers to transfer the caller" in prompt
    assert BANK.persona.strip()[:40] in prompt


async def test_a_failing_or_nonsense_judge_is_a_judge_error_not_a_verdict(
    server: FakeOpenAI, tmp_path: Path
) -> None:
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE)
    scenario = load_suite(path)[0]
    judge = Judge(JudgeSettings(server.url, "m"))
    try:
        server.status = 500
        broken = await judge.judge(scenario, BANK, outcome())
        server.status, server.content = 200, "I think it was fine."
        nonsense = await judge.judge(scenario, BANK, outcome())
    finally:
        await judge.aclose()
    assert {c.name for c in broken} == {"judge_error"} and all(not c.passed for c in broken)
    assert "HTTP 500" in broken[0].detail
    assert {c.name for c in nonsense} == {"judge_error"}


async def test_an_unreachable_judge_fails_fast() -> None:
    judge = Judge(JudgeSettings("http://127.0.0.1:9/v1", "m", timeout_s=2))
    try:
        with pytest.raises(JudgeError, match="judge endpoint failed"):
            await judge.ask(BANK, outcome(), "anything", None)
    finally:
        await judge.aclose()


def test_parse_verdict() -> None:
    assert parse_verdict('{"pass": true, "reason": "ok"}') == (True, "ok")
    with pytest.raises(JudgeError, match="boolean"):
        parse_verdict('{"pass": "yes"}')
