"""The post-call webhook against a real server on 127.0.0.1: what it carries, its signature checked on
the receiving side, retries with backoff, giving up, and never holding up the call's end."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from conversation.fakes import FakeCallIO, FakeLLM, FakeSTT, FakeTTS, FakeVAD, wait_until
from conversation.local_http import Answer, LocalServer, Received, closed_port_url
from voxline.agent.config import AgentConfig, WebhookConfig
from voxline.calls import CallContext, CallRunner, CallSession
from voxline.calls.runner import build_conversation
from voxline.conversation.metrics import CallReport, TurnRecord
from voxline.conversation.webhook import SIGNATURE_HEADER, WebhookSender, call_payload, sign, verify_signature
from voxline.engines.base import Engines, LLMDelta, ToolCall

SECRET = "whsec-test-key"


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer().running() as running:
        yield running


@pytest.fixture(autouse=True)
def webhook_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXLINE_WEBHOOK_SECRET", SECRET)


def receiver_accepts(request: Received) -> bool:
    """What a receiving service does, written from the documented scheme (not with voxline's code)."""
    fields = dict(part.split("=", 1) for part in request.headers[SIGNATURE_HEADER.lower()].split(","))
    timestamp = int(fields["t"])
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"]) and abs(time.time() - timestamp) < 300


def config(url: str, **extra: Any) -> WebhookConfig:
    return WebhookConfig.model_validate(
        {"url": url, "secret_env": "VOXLINE_WEBHOOK_SECRET", "backoff_s": 0.05, "timeout_s": 1.0, **extra}
    )


def report() -> CallReport:
    turns = [
        TurnRecord(0, "", "Hello, Northwind Bank.", "en"),
        TurnRecord(
            1, "I lost my card", "I'll transfer you to a colleague.", "en", tool_calls=["transfer_call"]
        ),
    ]
    return CallReport("call-1", "bank", "fake", 100.0, 130.5, "transferred", "sip:cards@pbx", turns)


def test_signature_round_trip_and_rejections() -> None:
    body = b'{"a":1}'
    header = sign(b"key", body, int(time.time()))
    assert verify_signature(b"key", body, header)
    assert not verify_signature(b"other", body, header)
    assert not verify_signature(b"key", b'{"a":2}', header)
    old = sign(b"key", body, int(time.time()) - 3600)
    assert not verify_signature(b"key", body, old)  # a replay of an old delivery
    assert not verify_signature(b"key", body, "garbage")


def test_payload_carries_record_transcript_tools_and_outcome() -> None:
    tools = [{"turn": 1, "name": "transfer_call", "arguments": {}, "result": None}]
    payload = call_payload(report(), tools)
    assert payload["outcome"] == {
        "end_reason": "transferred",
        "transferred_to": "sip:cards@pbx",
        "duration_s": 30.5,
        "turns": 2,
    }
    assert payload["transcript"] == [
        {"turn": 0, "role": "agent", "text": "Hello, Northwind Bank."},
        {"turn": 1, "role": "caller", "text": "I lost my card"},
        {"turn": 1, "role": "agent", "text": "I'll transfer you to a colleague."},
    ]
    assert payload["tool_calls"] == tools and payload["record"]["call_id"] == "call-1"


async def test_delivery_is_signed_and_verified_by_the_receiver(server: LocalServer) -> None:
    server.routes["/hook"] = lambda r: Answer(204 if receiver_accepts(r) else 401)
    sender = WebhookSender()
    assert sender.submit(config(server.url + "/hook"), call_payload(report(), []))
    assert await sender.drain(5)
    await sender.aclose()
    assert sender.delivered == 1 and len(server.received) == 1
    received = server.received[0]
    assert receiver_accepts(received)
    assert received.json()["outcome"]["transferred_to"] == "sip:cards@pbx"
    assert received.headers["content-type"] == "application/json"


async def test_retries_with_backoff_until_the_receiver_is_back(server: LocalServer) -> None:
    answers = iter([Answer(503), Answer(500), Answer(200)])
    server.routes["/hook"] = lambda r: next(answers)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    sender = WebhookSender(sleep=sleep)
    sender.submit(config(server.url + "/hook", backoff_s=1.0), call_payload(report(), []))
    assert await sender.drain(5)
    await sender.aclose()
    assert sender.delivered == 1 and server.paths() == ["/hook"] * 3
    assert waits == [1.0, 2.0]  # exponential
    assert all(receiver_accepts(r) for r in server.received)  # each attempt signed afresh


async def test_gives_up_after_max_attempts_and_logs(
    server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.routes["/hook"] = lambda r: Answer(500)
    sender = WebhookSender()
    with caplog.at_level(logging.WARNING, logger="voxline.conversation.webhook"):
        sender.submit(config(server.url + "/hook", max_attempts=3), call_payload(report(), []))
        unreachable = config(closed_port_url(), max_attempts=2, backoff_s=0.0)
        sender.submit(unreachable, call_payload(report(), []))
        assert await sender.drain(10)
    await sender.aclose()
    assert sender.given_up == 2 and sender.delivered == 0 and len(server.received) == 3
    assert "given up after 3 attempts: HTTP 500" in caplog.text
    assert "given up after 2 attempts: ConnectError" in caplog.text


async def test_a_rejecting_receiver_is_not_retried(server: LocalServer) -> None:
    server.routes["/hook"] = lambda r: Answer(400)
    sender = WebhookSender()
    sender.submit(config(server.url + "/hook"), call_payload(report(), []))
    assert await sender.drain(5)
    await sender.aclose()
    assert sender.given_up == 1 and len(server.received) == 1


async def test_queue_is_bounded_and_a_missing_secret_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    sender = WebhookSender(max_queued=1, workers=0)  # no workers: everything stays queued
    hook = config("http://127.0.0.1:9/hook")
    assert sender.submit(hook, {"call_id": "a"})
    assert not sender.submit(hook, {"call_id": "b"}) and sender.dropped == 1
    monkeypatch.delenv("VOXLINE_WEBHOOK_SECRET")
    assert not WebhookSender().submit(hook, {"call_id": "c"})


async def test_the_call_ends_without_waiting_for_the_webhook(server: LocalServer) -> None:
    release = threading.Event()

    def hold(request: Received) -> Answer:
        release.wait(10)  # a receiver that takes its time
        return Answer(200)

    server.routes["/hook"] = hold
    agent = AgentConfig.model_validate(
        {
            "greeting": "Hello.",
            "tools": [{"name": "end_call"}],
            "webhook": {"url": server.url + "/hook", "secret_env": "VOXLINE_WEBHOOK_SECRET"},
            "turn": {"end_of_turn_silence_ms": 300, "min_speech_ms": 100},
        }
    )
    end = [
        LLMDelta(text="Goodbye. "),
        LLMDelta(tool_call=ToolCall("end_call", {}, "c1"), finish_reason="tool_calls"),
    ]
    io, sender = FakeCallIO(), WebhookSender()
    engines = Engines(
        vad=FakeVAD(), stt=FakeSTT(["bye"]), llm=FakeLLM([end]), tts=FakeTTS(seconds_per_char=0.005)
    )
    built: list[CallSession] = []

    def make(*args: Any, **kwargs: Any) -> CallSession:
        built.append(build_conversation(*args, **kwargs))
        return built[-1]

    runner = CallRunner(agent, engines, make_conversation=make, webhooks=sender)
    io.start_mic()
    task = asyncio.create_task(runner.run(io, CallContext("fake")))
    await wait_until(lambda: bool(built) and len(built[0].report.turns) >= 1, 5)
    io.talk(0.4)
    async with asyncio.timeout(8):
        result = await task
    assert result.end_reason == "agent_ended" and io.hangups == ["agent_ended"]
    # the call is over and hung up while the receiver still holds the delivery
    await wait_until(lambda: len(server.received) == 1, 5)
    assert sender.delivered == 0
    release.set()
    assert await sender.drain(5)
    await sender.aclose()
    payload = server.received[0].json()
    assert receiver_accepts(server.received[0])
    assert payload["outcome"]["end_reason"] == "agent_ended" and payload["outcome"]["transferred_to"] is None
    assert payload["tool_calls"][0]["name"] == "end_call"
    assert {"turn": 1, "role": "caller", "text": "bye"} in payload["transcript"]
