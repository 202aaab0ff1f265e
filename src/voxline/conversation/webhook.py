"""The post-call webhook: each finished call's record, transcript, tool calls and outcome, POSTed as
JSON to the agent's `webhook.url`, signed, in the background.

A call only hands its payload over (`WebhookSender.submit`, no await, no I/O): delivery never delays
the call or its hangup. The queue and the attempts are bounded; a delivery that keeps failing
(timeout, unreachable, 5xx, 408, 429) is retried with exponential backoff and then given up and
logged; any other 4xx is not retried (it will not get better).

Signature: `X-Voxline-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>.<body>")>`, with
the key from the environment variable `webhook.secret_env`. A receiver recomputes the HMAC over
the raw body and rejects old timestamps (replays); `verify_signature` does both. Each attempt is
signed afresh, so a retry carries a current timestamp.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from voxline.agent.config import WebhookConfig
from voxline.agent.env import MissingEnvironment, expand_env
from voxline.conversation.metrics import CallReport

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Voxline-Signature"
EVENT_HEADER = "X-Voxline-Event"
MAX_QUEUED = 256
"""Deliveries waiting (and retrying) at once; past this a new one is dropped and logged."""
WORKERS = 4
RETRY_STATUSES = frozenset({408, 425, 429})
SIGNATURE_TOLERANCE_S = 300


def sign(key: bytes, body: bytes, timestamp: int) -> str:
    mac = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(
    key: bytes,
    body: bytes,
    header: str,
    *,
    now: float | None = None,
    tolerance_s: float = SIGNATURE_TOLERANCE_S,
) -> bool:
    """For a receiver: is `header` a valid signature of the raw `body`, made within `tolerance_s`?"""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = sign(key, body, timestamp).split(",v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def call_payload(report: CallReport, tool_calls: list[dict[str, Any]]) -> dict[str, Any]:
    """What the webhook carries: the record, the transcript in order, every tool call with its
    arguments and result, and how the call ended."""
    transcript: list[dict[str, Any]] = []
    for turn in report.turns:
        if turn.user_text:
            transcript.append({"turn": turn.index, "role": "caller", "text": turn.user_text})
        if turn.agent_text:
            transcript.append({"turn": turn.index, "role": "agent", "text": turn.agent_text})
    duration = None if report.ended_at is None else round(report.ended_at - report.started_at, 3)
    return {
        "event": "call.ended",
        "call_id": report.call_id,
        "agent": report.agent,
        "outcome": {
            "end_reason": report.end_reason,
            "transferred_to": report.transferred_to,
            "duration_s": duration,
            "turns": len(report.turns),
        },
        "transcript": transcript,
        "tool_calls": tool_calls,
        "record": report.as_dict(),
    }


@dataclass(slots=True)
class _Delivery:
    config: WebhookConfig
    url: str
    body: bytes
    key: bytes | None
    call_id: str


Sleep = Callable[[float], Awaitable[None]]


class WebhookSender:
    """Delivers payloads from a bounded queue with a few worker tasks on the running loop."""

    def __init__(
        self, *, max_queued: int = MAX_QUEUED, workers: int = WORKERS, sleep: Sleep = asyncio.sleep
    ) -> None:
        self._queue: asyncio.Queue[_Delivery] = asyncio.Queue(max_queued)
        self._workers = workers
        self._tasks: list[asyncio.Task[None]] = []
        self._sleep = sleep
        self.delivered = 0
        self.given_up = 0
        self.dropped = 0

    def submit(self, config: WebhookConfig, payload: dict[str, Any]) -> bool:
        """Queue one delivery; never waits. False (and logged) if it cannot be sent at all."""
        call_id = str(payload.get("call_id", ""))
        try:
            url = expand_env(config.url)
            key = os.environ[config.secret_env].encode() if config.secret_env else None
        except (MissingEnvironment, KeyError) as exc:
            name = exc.args[0] if isinstance(exc, KeyError) else str(exc)
            log.error("webhook for call %s not sent: %s is not set", call_id, name)
            self.dropped += 1
            return False
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        try:
            self._queue.put_nowait(_Delivery(config, url, body, key, call_id))
        except asyncio.QueueFull:
            log.error(
                "webhook for call %s dropped: %d deliveries already waiting", call_id, self._queue.qsize()
            )
            self.dropped += 1
            return False
        self._start_workers()
        return True

    async def drain(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for every queued delivery to finish. True if none is left."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._queue.join()
            return True
        except TimeoutError:
            log.warning("webhook: %d deliveries unfinished after %.0f s", self._queue.qsize(), timeout_s)
            return False

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def _start_workers(self) -> None:
        self._tasks = [t for t in self._tasks if not t.done()]
        while len(self._tasks) < self._workers:
            self._tasks.append(asyncio.create_task(self._work(), name="webhook"))

    async def _work(self) -> None:
        async with httpx.AsyncClient(trust_env=False, follow_redirects=False) as client:
            while True:
                delivery = await self._queue.get()
                try:
                    await self._deliver(client, delivery)
                except Exception:
                    log.exception("webhook for call %s failed", delivery.call_id)
                finally:
                    self._queue.task_done()

    async def _deliver(self, client: httpx.AsyncClient, delivery: _Delivery) -> None:
        config = delivery.config
        why = ""
        for attempt in range(1, config.max_attempts + 1):
            if attempt > 1:
                await self._sleep(min(config.backoff_s * 2 ** (attempt - 2), config.max_backoff_s))
            headers = {"Content-Type": "application/json", EVENT_HEADER: "call.ended"}
            if delivery.key is not None:
                headers[SIGNATURE_HEADER] = sign(delivery.key, delivery.body, int(time.time()))
            try:
                async with asyncio.timeout(config.timeout_s):
                    response = await client.post(delivery.url, content=delivery.body, headers=headers)
                    await response.aclose()
            except (TimeoutError, httpx.HTTPError) as exc:
                why = f"{type(exc).__name__}"
                log.warning("webhook for call %s: attempt %d failed (%s)", delivery.call_id, attempt, why)
                continue
            status = response.status_code
            if 200 <= status < 300:
                self.delivered += 1
                log.info("webhook for call %s delivered (attempt %d)", delivery.call_id, attempt)
                return
            why = f"HTTP {status}"
            if status < 500 and status not in RETRY_STATUSES:
                break  # the receiver rejects it; sending it again will not change that
            log.warning("webhook for call %s: attempt %d got %s", delivery.call_id, attempt, why)
        self.given_up += 1
        log.error("webhook for call %s given up after %d attempts: %s", delivery.call_id, attempt, why)


_senders: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, WebhookSender] = weakref.WeakKeyDictionary()


def default_sender() -> WebhookSender:
    """The sender of the running event loop (one per server or CLI process)."""
    loop = asyncio.get_running_loop()
    sender = _senders.get(loop)
    if sender is None:
        sender = _senders[loop] = WebhookSender()
    return sender


async def drain_webhooks(timeout_s: float) -> None:
    """At shutdown: give queued deliveries up to `timeout_s`, then stop."""
    sender = _senders.get(asyncio.get_running_loop())
    if sender is not None:
        await sender.drain(timeout_s)
        await sender.aclose()
