"""HTTP tools from the agent file, against a real server on 127.0.0.1: arguments checked against the
JSON schema, secrets from the environment only, a filler line while a slow endpoint answers, the
result back to the model, and a failing endpoint answered by a clear line while the call goes on."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from typer.testing import CliRunner

from conversation.fakes import FakeCallIO, FakeLLM, FakeSTT, FakeTTS, FakeVAD, Script, wait_until
from conversation.local_http import Answer, LocalServer, Received, closed_port_url
from voxline.agent.config import AgentConfig, HttpToolConfig
from voxline.agent.env import MissingEnvironment, expand_env
from voxline.conversation.conversation import Conversation
from voxline.conversation.http_tools import (
    FAILURE_LINES,
    FILLER_LINES,
    build_request,
    call_endpoint,
    check_arguments,
)
from voxline.conversation.metrics import CallReport
from voxline.conversation.tools import ToolContext, ToolRegistry
from voxline.engines.base import Engines, LLMDelta, ToolCall

TOKEN = "s3cr3t-token-value"
FILLER = FILLER_LINES["en"]
FAILURE = FAILURE_LINES["en"]
DELIVERY_PARAMS = {
    "type": "object",
    "properties": {
        "last4": {"type": "string", "pattern": "^[0-9]{4}$", "description": "card's last 4 digits"}
    },
    "required": ["last4"],
}


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer().running() as running:
        yield running


@pytest.fixture(autouse=True)
def api_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANK_API_TOKEN", TOKEN)


def delivery_tool(base_url: str, timeout_s: float = 2.0, **extra: Any) -> dict[str, Any]:
    return {
        "name": "check_card_delivery",
        "description": "Check when the caller's new card will arrive.",
        "parameters": DELIVERY_PARAMS,
        "http": {
            "method": "GET",
            "url": base_url + "/cards/{last4}/delivery",
            "headers": {"Authorization": "Bearer ${BANK_API_TOKEN}"},
            "timeout_s": timeout_s,
        },
        **extra,
    }


def delivery_route(delay_s: float = 0.0, status: int = 200) -> Any:
    def route(request: Received) -> Answer:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return Answer(401, {"error": "unauthorised"})
        return Answer(status, {"status": "dispatched", "arrives": "Thursday"}, delay_s)

    return route


# ---------------------------------------------------------------- arguments and the request


def test_arguments_are_checked_and_coerced_by_the_schema() -> None:
    assert check_arguments(DELIVERY_PARAMS, {"last4": 4321, "extra": "x"}) == ({"last4": "4321"}, [])
    _, problems = check_arguments(DELIVERY_PARAMS, {"last4": "43"})
    assert problems == ["last4: must match ^[0-9]{4}$"]
    _, missing = check_arguments(DELIVERY_PARAMS, {})
    assert missing == ["last4 is required"]
    schema = {
        "type": "object",
        "properties": {
            "amount": {"type": "number", "minimum": 0},
            "count": {"type": "integer"},
            "kind": {"type": "string", "enum": ["debit", "credit"]},
            "urgent": {"type": "boolean"},
        },
    }
    good = {"amount": "12.5", "count": "3", "kind": "debit", "urgent": True}
    assert check_arguments(schema, good) == (
        {"amount": 12.5, "count": 3, "kind": "debit", "urgent": True},
        [],
    )
    _, bad = check_arguments(schema, {"amount": -1, "count": "three", "kind": "gold", "urgent": "yes"})
    assert len(bad) == 4
    assert check_arguments(None, {"anything": 1}) == ({"anything": 1}, [])


def test_the_request_reads_secrets_from_the_environment_only_when_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoint = HttpToolConfig(
        url="${BANK_API_URL:-http://127.0.0.1:9}/cards/{last4}",
        method="GET",
        headers={"Authorization": "Bearer ${BANK_API_TOKEN}"},
    )
    request = build_request(endpoint, {"last4": "12/4", "when": "today"})
    assert str(request.url) == "http://127.0.0.1:9/cards/12%2F4?when=today"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    monkeypatch.setenv("BANK_API_URL", "http://127.0.0.1:7")
    post = build_request(endpoint.model_copy(update={"method": "POST"}), {"last4": "1234", "n": 2})
    assert str(post.url) == "http://127.0.0.1:7/cards/1234" and json.loads(post.content) == {"n": 2}
    monkeypatch.delenv("BANK_API_TOKEN")
    with pytest.raises(MissingEnvironment, match="BANK_API_TOKEN is not set"):
        build_request(endpoint, {"last4": "1234"})
    assert expand_env("${HOME_X:-}/a", {}) == "/a" and expand_env("$HOME_X", {}) == "$HOME_X"


def test_a_secret_header_must_come_from_the_environment() -> None:
    with pytest.raises(ValueError, match="carries a secret"):
        HttpToolConfig(url="http://x", headers={"Authorization": "Bearer abc123"})
    with pytest.raises(ValueError, match="carries a secret"):
        HttpToolConfig(url="http://x", headers={"X-Api-Key": "abc123"})
    assert HttpToolConfig(url="http://x", headers={"X-Request-Source": "voxline"}).headers


def test_agent_check_never_prints_the_secret(tmp_path: Any) -> None:
    from voxline.cli import app

    path = tmp_path / "agent.yaml"
    path.write_text(json.dumps({"tools": [delivery_tool("http://127.0.0.1:9")]}), encoding="utf-8")
    result = CliRunner().invoke(app, ["agent", "check", str(path)], env={"BANK_API_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    assert "Bearer ${BANK_API_TOKEN}" in result.output and TOKEN not in result.output


def test_the_agent_file_keeps_endpoint_references_for_request_time(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Elsewhere in an agent file ${NAME} is expanded at load time; an HTTP tool's and the webhook's
    are not: an unset variable must not stop the agent from starting, nor the value reach the config."""
    from voxline.agent.config import default_agent, load_agent

    monkeypatch.delenv("BANK_API_TOKEN")
    monkeypatch.delenv("BANK_API_URL", raising=False)
    bank = default_agent()  # starts with neither the variable nor the server
    tool = bank.tool("check_card_delivery")
    assert tool is not None and tool.http is not None
    assert tool.http.headers["Authorization"] == "Bearer ${BANK_API_TOKEN}"
    monkeypatch.setenv("BANK_API_TOKEN", TOKEN)
    monkeypatch.setenv("HOOK_URL", "http://127.0.0.1:9/hook")
    monkeypatch.setenv("GREETING_NAME", "Maya")
    path = tmp_path / "agent.yaml"
    agent_file = {
        "greeting": "Hello, this is ${GREETING_NAME}.",
        "tools": [delivery_tool("http://127.0.0.1:9")],
        "webhook": {"url": "${HOOK_URL}", "secret_env": "HOOK_SECRET"},
    }
    path.write_text(json.dumps(agent_file), encoding="utf-8")
    agent = load_agent(path)
    assert agent.greeting == "Hello, this is Maya."  # the rest of the file is expanded at load
    assert agent.webhook is not None and agent.webhook.url == "${HOOK_URL}"
    assert TOKEN not in json.dumps(agent.model_dump())


async def test_call_endpoint_answers_refuses_and_fails(server: LocalServer) -> None:
    server.routes["/cards/1234/delivery"] = delivery_route()
    server.routes["/cards/0000/delivery"] = lambda r: Answer(404, {"error": "no card ending 0000"})
    server.routes["/cards/5555/delivery"] = lambda r: Answer(503, "maintenance")
    server.routes["/cards/9999/delivery"] = lambda r: Answer(200, {"late": True}, delay_s=4.0)
    # 2 s: a loopback answer on a loaded 2-core machine can take over 0.5 s
    endpoint = AgentConfig.model_validate({"tools": [delivery_tool(server.url, timeout_s=2.0)]}).tools[0].http
    assert endpoint is not None
    answer = await call_endpoint(endpoint, {"last4": "1234"}, "t")
    assert answer.outcome == "answer" and answer.status == 200
    assert json.loads(answer.text) == {"status": "dispatched", "arrives": "Thursday"}
    refusal = await call_endpoint(endpoint, {"last4": "0000"}, "t")
    assert refusal.outcome == "refusal" and "404" in refusal.text and "no card ending 0000" in refusal.text
    down = await call_endpoint(endpoint, {"last4": "5555"}, "t")
    assert down.outcome == "failure" and down.status == 503
    slow = await call_endpoint(endpoint, {"last4": "9999"}, "t")
    assert slow.outcome == "failure" and "no answer in 2 s" in slow.text
    unreachable = await call_endpoint(endpoint.model_copy(update={"url": closed_port_url()}), {}, "t")
    assert unreachable.outcome == "failure" and "could not be reached" in unreachable.text
    assert server.received[0].headers["authorization"] == f"Bearer {TOKEN}"


async def test_a_long_response_is_cut(server: LocalServer) -> None:
    server.routes["/big"] = lambda r: Answer(200, "x" * 100_000)
    endpoint = HttpToolConfig(url=server.url + "/big", method="GET", max_response_bytes=1000)
    result = await call_endpoint(endpoint, {}, "t")
    assert result.outcome == "answer" and len(result.text) <= 1001


async def test_registry_runs_an_http_tool_and_checks_arguments_first(server: LocalServer) -> None:
    server.routes["/cards/1234/delivery"] = delivery_route()
    registry = ToolRegistry(AgentConfig.model_validate({"tools": [delivery_tool(server.url)]}))
    spec = next(s for s in registry.specs() if s.name == "check_card_delivery")
    assert spec.parameters == DELIVERY_PARAMS and "arrive" in spec.description
    assert registry.filler("check_card_delivery", "en") == (0.7, FILLER)
    assert registry.filler("check_card_delivery", "hi") == (0.7, FILLER_LINES["hi"])
    assert registry.filler("end_call", "en") is None
    ctx = ToolContext(FakeCallIO(), registry.agent, heard="it ends in one two three four")
    bad = await registry.execute(ToolCall("check_card_delivery", {"last4": "12"}), ctx)
    assert bad.result is not None and "must match" in bad.result and not bad.final
    assert server.received == []  # nothing was sent for bad arguments
    good = await registry.execute(ToolCall("check_card_delivery", {"last4": "1234"}), ctx)
    assert good.result is not None and "Thursday" in good.result and not good.spoken


async def test_a_number_the_caller_never_said_is_not_sent(server: LocalServer) -> None:
    """A 0.5B model filled `last4` from its prompt's example digits after a failed transfer; the
    endpoint must never be asked about a card the caller did not name."""
    server.routes["/cards/4532/delivery"] = delivery_route()
    registry = ToolRegistry(AgentConfig.model_validate({"tools": [delivery_tool(server.url)]}))
    ctx = ToolContext(FakeCallIO(), registry.agent, heard="Can I speak to a real person please?")
    invented = await registry.execute(ToolCall("check_card_delivery", {"last4": "4532"}), ctx)
    assert invented.result is not None and "never said 4532" in invented.result and not invented.final
    assert server.received == []
    spoken = ToolContext(FakeCallIO(), registry.agent, heard="the new one ends four five, three 2")
    said = await registry.execute(ToolCall("check_card_delivery", {"last4": "4532"}), spoken)
    assert said.result is not None and "Thursday" in said.result
    assert len(server.received) == 1


# ---------------------------------------------------------------- whole calls


@dataclass
class Call:
    io: FakeCallIO
    conversation: Conversation
    llm: FakeLLM
    tts: FakeTTS
    task: asyncio.Task[CallReport]

    async def caller_says(self, after_turns: int, within_s: float = 8.0) -> None:
        await self.until_listening(after_turns - 1, within_s)
        self.io.talk(0.4)

    async def until_listening(self, after: int, within_s: float = 8.0) -> None:
        await wait_until(
            lambda: len(self.conversation.report.turns) > after and self.conversation.state == "listening",
            within_s,
        )

    async def hang_up(self) -> CallReport:
        await self.io.caller_hangs_up()
        async with asyncio.timeout(5):
            return await self.task


def agent_with(*tools: dict[str, Any]) -> AgentConfig:
    return AgentConfig.model_validate(
        {
            "greeting": "Hello.",
            "tools": [{"name": "end_call"}, *tools],
            "turn": {"end_of_turn_silence_ms": 300, "min_speech_ms": 100, "barge_in_min_speech_ms": 200},
            "limits": {"silence_reprompt_s": 30},
        }
    )


@asynccontextmanager
async def call(agent: AgentConfig, heard: Sequence[str], replies: Sequence[Script]) -> AsyncIterator[Call]:
    io, llm, tts = FakeCallIO(), FakeLLM(replies), FakeTTS(seconds_per_char=0.005)
    engines = Engines(vad=FakeVAD(), stt=FakeSTT(heard), llm=llm, tts=tts)
    conversation = Conversation(io, agent, engines, transport="fake")
    io.start_mic()
    task = asyncio.create_task(conversation.run())
    try:
        yield Call(io, conversation, llm, tts, task)
    finally:
        if not task.done():
            await io.caller_hangs_up()
            await asyncio.wait([task], timeout=5)
        await io.aclose()


def tool_call(last4: str) -> list[LLMDelta]:
    return [
        LLMDelta(
            tool_call=ToolCall("check_card_delivery", {"last4": last4}, "c1"), finish_reason="tool_calls"
        )
    ]


async def test_slow_endpoint_filler_then_the_model_answers_from_the_result(server: LocalServer) -> None:
    server.routes["/cards/1234/delivery"] = delivery_route(delay_s=1.5)
    agent = agent_with(delivery_tool(server.url))
    replies = [tool_call("1234"), "Your card arrives on Thursday."]
    async with call(agent, ["where is my new card, it ends 1234"], replies) as c:
        await c.caller_says(after_turns=1)
        await c.until_listening(after=1)
        report = await c.hang_up()
    turn = report.turns[1]
    assert c.tts.spoken == ["Hello.", FILLER, "Your card arrives on Thursday."]
    assert turn.agent_text == f"{FILLER} Your card arrives on Thursday."
    assert turn.tool_calls == ["check_card_delivery"]
    # the second model round saw the tool's result right after its own call, no filler between
    second = c.llm.requests[1]
    calling, result = second[-2], second[-1]
    assert calling.role == "assistant" and calling.tool_calls[0].name == "check_card_delivery"
    assert result.role == "tool" and json.loads(result.content)["arrives"] == "Thursday"
    assert all(FILLER not in m.content for m in second)
    logged = c.conversation.tool_log[0]
    assert logged["name"] == "check_card_delivery" and logged["arguments"] == {"last4": "1234"}
    assert "Thursday" in logged["result"] and logged["duration_ms"] >= 1400


async def test_quick_endpoint_needs_no_filler(server: LocalServer) -> None:
    server.routes["/cards/1234/delivery"] = delivery_route()
    agent = agent_with(delivery_tool(server.url))
    async with call(agent, ["my card ends 1234"], [tool_call("1234"), "It arrives on Thursday."]) as c:
        await c.caller_says(after_turns=1)
        await c.until_listening(after=1)
        await c.hang_up()
    assert c.tts.spoken == ["Hello.", "It arrives on Thursday."]


async def test_no_filler_when_the_model_spoke_before_calling(server: LocalServer) -> None:
    server.routes["/cards/1234/delivery"] = delivery_route(delay_s=1.5)
    agent = agent_with(delivery_tool(server.url))
    spoke_first = [LLMDelta(text="Let me look that up. "), *tool_call("1234")]
    async with call(agent, ["card 1234"], [spoke_first, "It arrives on Thursday."]) as c:
        await c.caller_says(after_turns=1)
        await c.until_listening(after=1)
        await c.hang_up()
    assert c.tts.spoken == ["Hello.", "Let me look that up.", "It arrives on Thursday."]


@pytest.mark.parametrize(("delay_s", "status"), [(0.0, 503), (3.0, 200)], ids=["5xx", "timeout"])
async def test_failing_endpoint_the_caller_hears_the_fallback_and_the_call_goes_on(
    server: LocalServer, delay_s: float, status: int
) -> None:
    server.routes["/cards/1234/delivery"] = delivery_route(delay_s=delay_s, status=status)
    agent = agent_with(delivery_tool(server.url, timeout_s=1.0))
    heard = ["my card ends 1234", "what are your opening hours"]
    replies = [tool_call("1234"), "We open at nine."]
    async with call(agent, heard, replies) as c:
        await c.caller_says(after_turns=1)
        await c.caller_says(after_turns=2)
        await c.until_listening(after=2)
        report = await c.hang_up()
    failed, next_turn = report.turns[1:3]
    expected = [FILLER, FAILURE] if delay_s else [FAILURE]  # a timeout is slow: the filler came first
    assert " ".join(c.tts.spoken) == " ".join(["Hello.", *expected, "We open at nine."])  # by sentence
    assert failed.agent_text == " ".join(expected)
    assert next_turn.agent_text == "We open at nine." and report.end_reason == "caller_hangup"
    assert len(c.llm.requests) == 2  # the failure line answered: the model was not asked about it
    tool_results = [m.content for m in c.conversation.history.messages if m.role == "tool"]
    assert len(tool_results) == 1 and "failed" in tool_results[0]


async def test_failure_and_filler_lines_follow_the_agent_file(server: LocalServer) -> None:
    server.routes["/cards/1234/delivery"] = delivery_route(delay_s=2.0)
    tool = delivery_tool(
        server.url, timeout_s=1.0, filler="Let me look that up.", failure_line="Our card system is down."
    )
    async with call(agent_with(tool), ["card 1234"], [tool_call("1234")]) as c:
        await c.caller_says(after_turns=1)
        await c.until_listening(after=1)
        await c.hang_up()
    assert c.tts.spoken == ["Hello.", "Let me look that up.", "Our card system is down."]


# ---------------------------------------------------------------- the example agent


def load_bank_api() -> Any:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "tools" / "bank_api.py"
    spec = importlib.util.spec_from_file_location("bank_api", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_example_bank_agent_tool_with_and_without_its_server(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    from http.server import ThreadingHTTPServer

    from voxline.agent.config import default_agent

    monkeypatch.setenv("BANK_API_TOKEN", "demo")
    agent = default_agent()
    registry = ToolRegistry(agent)
    ctx = ToolContext(FakeCallIO(), agent, heard="my new card ends 4321. Or was it 0000?")
    lookup = ToolCall("check_card_delivery", {"last4": "4321"})
    # no server: the agent still works, the caller hears the failure line
    monkeypatch.setenv("BANK_API_URL", closed_port_url())
    down = await registry.execute(lookup, ctx)
    assert down.final and down.spoken.startswith("Sorry, I can't check deliveries right now.")
    # the example server answers
    server = ThreadingHTTPServer(("127.0.0.1", 0), load_bank_api().BankApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("BANK_API_URL", f"http://127.0.0.1:{server.server_address[1]}")
        found = await registry.execute(lookup, ctx)
        missing = await registry.execute(ToolCall("check_card_delivery", {"last4": "0000"}), ctx)
    finally:
        server.shutdown()
        server.server_close()
    assert found.result is not None and json.loads(found.result)["status"] == "dispatched"
    assert missing.result is not None and "404" in missing.result and not missing.final


def test_example_webhook_receiver_checks_signatures() -> None:
    from voxline.conversation.webhook import sign

    bank_api = load_bank_api()
    body = b'{"call_id": "x"}'
    assert bank_api.signature_ok("k", body, sign(b"k", body, int(time.time())))
    assert not bank_api.signature_ok("k", body, sign(b"other", body, int(time.time())))
