"""Attacks on the HTTP/WebSocket server, over real sockets (uvicorn on 127.0.0.1, httpx/websockets).

Each test plays an attacker: no credential, a forged or expired token, a DNS-rebound Host, a foreign
Origin, a megabyte frame, a forged call id, a connection flood, a /calls poll storm during a call,
and a disk that fills up. The server must refuse, and a legitimate call must not notice.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus
from ws_harness import EchoConversation, LiveServer, stand_in_engines, tone

from voxline.agent.config import AgentConfig
from voxline.cli import server_options
from voxline.conversation.metrics import CallReport
from voxline.records import SqliteCallRecorder
from voxline.server.app import create_app
from voxline.server.security import SecuritySettings
from voxline.server.tokens import mint_token

pytestmark = pytest.mark.timeout(120)

API_KEY = secrets.token_urlsafe(24)
TOKEN_SECRET = secrets.token_urlsafe(32)
SECURED_ENV = {"VOXLINE_API_KEYS": API_KEY, "VOXLINE_TOKEN_SECRET": TOKEN_SECRET}
KEY_HEADERS = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[SqliteCallRecorder]:
    rec = SqliteCallRecorder(tmp_path / "calls.sqlite3")
    yield rec
    rec.close()


def serve(recorder: SqliteCallRecorder, env: dict[str, str] | None = None, **app_options: Any) -> LiveServer:
    """A server as `voxline serve` runs it on loopback: settings from `env`, uvicorn's frame limit."""
    security = SecuritySettings.from_env("127.0.0.1", env=env or {})
    app = create_app(
        AgentConfig(name="attacked agent"),
        engines=stand_in_engines(),
        recorder=recorder,
        conversation_factory=EchoConversation,
        security=security,
        **app_options,
    )
    return LiveServer(app, **server_options(security))


@pytest.fixture
def secured(recorder: SqliteCallRecorder) -> Iterator[LiveServer]:
    with serve(recorder, SECURED_ENV) as server:
        yield server


@pytest.fixture
def open_local(recorder: SqliteCallRecorder) -> Iterator[LiveServer]:
    """The friction-free default: loopback, no keys."""
    with serve(recorder) as server:
        yield server


async def next_event(ws: ClientConnection, kind: str, within_s: float = 10.0) -> dict[str, Any]:
    while True:
        msg = await asyncio.wait_for(ws.recv(), within_s)
        if isinstance(msg, str):
            event: dict[str, Any] = json.loads(msg)
            if event["type"] == kind:
                return event


async def start_call(ws: ClientConnection, label: str | None = None) -> dict[str, Any]:
    start: dict[str, Any] = {"type": "start", "sample_rate": 16000, "format": "s16le"}
    if label is not None:
        start["call_id"] = label
    await ws.send(json.dumps(start))
    return await next_event(ws, "ready")


async def send_audio(ws: ClientConnection, seconds: float) -> None:
    audio = tone(seconds, 16000).to_bytes()
    for i in range(0, len(audio), 640):
        await ws.send(audio[i : i + 640])


async def ws_refusal(url: str, **options: Any) -> tuple[int, str]:
    """Connect expecting the handshake to be refused; the HTTP status and body the client saw."""
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(url, **options):
            pass
    response = refused.value.response
    return response.status_code, response.body.decode(errors="replace")


async def raw_handshake(port: int, host: str, origin: str | None = None) -> str:
    """A hand-written WebSocket upgrade with any Host (a DNS-rebound page sends the attacker's name)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [
        "GET /ws/call HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ]
    if origin:
        lines.append(f"Origin: {origin}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    status = (await asyncio.wait_for(reader.readline(), 5)).decode()
    writer.close()
    return status


# ---------------------------------------------------------------- credentials


async def test_unauthenticated_reads_are_refused_and_a_key_opens_them(secured: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=secured.http) as http:
        for path in ("/calls", "/calls/anything", "/metrics", "/openapi.json", "/docs"):
            response = await http.get(path)
            assert response.status_code == 401, path
            assert "authentication required" in response.json()["detail"]
            assert response.headers["www-authenticate"] == "Bearer"
        wrong = await http.get("/calls", headers={"Authorization": "Bearer " + "x" * 32})
        assert wrong.status_code == 401
        # an API key is never taken from the URL (it would sit in access logs and browser history)
        assert (await http.get("/calls", params={"token": API_KEY})).status_code == 401
        assert (await http.get("/calls", headers=KEY_HEADERS)).status_code == 200
        assert (await http.get("/calls", headers={"X-API-Key": API_KEY})).status_code == 200
        assert (await http.get("/metrics", headers=KEY_HEADERS)).status_code == 200
        # the page and the health probe stay open (no personal data in them)
        assert (await http.get("/")).status_code == 200
        assert (await http.get("/static/app.js")).status_code == 200
        health = (await http.get("/health")).json()
        assert health["security"] == {"auth": "required", "tokens": True, "max_calls": 50}
        metrics = (await http.get("/metrics", headers=KEY_HEADERS)).text
    assert 'voxline_http_refused_total{status="401"} 7' in metrics


async def test_a_websocket_call_needs_a_credential(secured: LiveServer) -> None:
    status, body = await ws_refusal(f"{secured.ws}/ws/call")
    assert status == 401 and "authentication required" in body
    async with websockets.connect(f"{secured.ws}/ws/call", additional_headers=KEY_HEADERS) as ws:
        assert (await start_call(ws))["call_id"]
    assert not [c for c in EchoConversation.instances if c.received_samples]  # nothing refused got in


async def test_forged_expired_and_wrong_scope_tokens_are_refused(secured: LiveServer) -> None:
    good = mint_token(TOKEN_SECRET.encode(), ttl_s=60)
    forged = mint_token(b"not the server's secret at all, 32+ chars", ttl_s=60)
    expired = mint_token(TOKEN_SECRET.encode(), ttl_s=60, now=time.time() - 120)
    read_only = mint_token(TOKEN_SECRET.encode(), ttl_s=60, scopes=frozenset({"read"}))
    head, payload, signature = good.split(".")
    tampered_payload = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB")
    cases = {
        forged: (401, "bad token signature"),
        expired: (401, "token expired"),
        f"{head}.{tampered_payload}.{signature}": (401, "bad token signature"),
        read_only: (403, "does not allow 'call'"),
    }
    for token, (status, reason) in cases.items():
        got_status, body = await ws_refusal(f"{secured.ws}/ws/call?token={token}")
        assert (got_status, reason in body) == (status, True), body
    async with websockets.connect(f"{secured.ws}/ws/call?token={good}") as ws:
        assert (await start_call(ws))["call_id"]
    async with httpx.AsyncClient(base_url=secured.http) as http:
        # a call token cannot read records; a read token can
        assert (await http.get("/calls", headers={"Authorization": f"Bearer {good}"})).status_code == 403
        assert (await http.get("/calls", headers={"Authorization": f"Bearer {read_only}"})).status_code == 200


async def test_a_backend_mints_a_browser_token_with_its_key(secured: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=secured.http) as http:
        assert (await http.post("/tokens", json={})).status_code == 401
        minted = await http.post("/tokens", json={"ttl_s": 120, "subject": "web"}, headers=KEY_HEADERS)
        assert minted.status_code == 200, minted.text
        token = minted.json()["token"]
        assert minted.json()["scope"] == ["call"]
        # a token cannot mint more tokens (no self-renewal), nor ask for more than an hour
        again = await http.post("/tokens", json={}, headers={"Authorization": f"Bearer {token}"})
        assert again.status_code == 403
        too_long = await http.post("/tokens", json={"ttl_s": 86400}, headers=KEY_HEADERS)
        assert too_long.status_code == 422
    async with websockets.connect(f"{secured.ws}/ws/call?token={token}") as ws:
        assert (await start_call(ws))["call_id"]


# ---------------------------------------------------------------- DNS rebinding, Origin


async def test_dns_rebinding_host_is_refused_even_without_keys(open_local: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=open_local.http) as http:
        for path in ("/", "/calls", "/health"):
            response = await http.get(path, headers={"Host": "attacker.example:8000"})
            assert response.status_code == 403, path
            assert "is not a name this server answers to" in response.json()["detail"]
        for host in (f"localhost:{open_local.port}", f"127.0.0.1:{open_local.port}", "[::1]"):
            assert (await http.get("/calls", headers={"Host": host})).status_code == 200, host
    status = await raw_handshake(open_local.port, "attacker.example")
    assert " 403 " in status, status
    assert " 101 " in await raw_handshake(open_local.port, f"127.0.0.1:{open_local.port}")


async def test_a_foreign_origin_cannot_open_a_call(open_local: LiveServer) -> None:
    status, body = await ws_refusal(f"{open_local.ws}/ws/call", origin="https://evil.example")  # type: ignore[arg-type]
    assert status == 403 and "may not use this server" in body
    status, _ = await ws_refusal(f"{open_local.ws}/ws/call", origin="null")  # type: ignore[arg-type]
    assert status == 403
    same = f"http://127.0.0.1:{open_local.port}"
    async with websockets.connect(f"{open_local.ws}/ws/call", origin=same) as ws:  # type: ignore[arg-type]
        assert (await start_call(ws))["call_id"]
    async with httpx.AsyncClient(base_url=open_local.http) as http:
        cross = await http.get("/calls", headers={"Origin": "https://evil.example"})
        assert cross.status_code == 403


# ---------------------------------------------------------------- floods


async def test_a_megabyte_frame_is_refused_by_the_protocol_layer(open_local: LiveServer) -> None:
    async with websockets.connect(f"{open_local.ws}/ws/call", max_size=None) as ws:
        await start_call(ws)
        await ws.send(bytes(1024 * 1024))
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 10)
    assert ws.close_code == 1009  # message too big
    conversation = EchoConversation.instances[0]
    assert conversation.done.wait(10)
    assert conversation.received_samples == 0  # not one sample of it reached the call


async def test_a_megabyte_frame_is_refused_by_the_app_too(recorder: SqliteCallRecorder) -> None:
    """Behind a server that lets 16 MiB messages through (uvicorn's default), the call still ends."""
    app = create_app(
        AgentConfig(), engines=stand_in_engines(), recorder=recorder, conversation_factory=EchoConversation
    )
    with LiveServer(app) as server:
        async with websockets.connect(f"{server.ws}/ws/call", max_size=None) as ws:
            ready = await start_call(ws)
            await ws.send(bytes(1024 * 1024))
            error = await next_event(ws, "error")
            assert error["message"] == "frame of 1048576 bytes is over the 65536-byte limit"
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
        assert (ws.close_code, ws.close_reason) == (1009, "frame too large")
        assert EchoConversation.instances[0].done.wait(10)
        for _ in range(100):  # the runner closes the record as the conversation returns
            recorder.flush(5)
            record = recorder.get_call(ready["call_id"])
            if record is not None and record["end_reason"] is not None:
                break
            await asyncio.sleep(0.05)
        assert record is not None and record["end_reason"] == "frame_too_large"


async def test_a_connection_flood_from_one_source_is_rate_limited(recorder: SqliteCallRecorder) -> None:
    with serve(recorder, {"VOXLINE_WS_CONNECTS_PER_MINUTE": "3"}) as server:
        for _ in range(3):
            async with websockets.connect(f"{server.ws}/ws/call") as ws:
                await start_call(ws)
        status, body = await ws_refusal(f"{server.ws}/ws/call")
        assert status == 429 and "too many calls from 127.0.0.1" in body
        async with httpx.AsyncClient(base_url=server.http) as http:
            assert (await http.get("/calls")).status_code == 200  # reads are not calls
            assert 'voxline_http_refused_total{status="429"} 1' in (await http.get("/metrics")).text


async def test_calls_over_capacity_are_refused_with_a_reason(recorder: SqliteCallRecorder) -> None:
    with serve(recorder, {"VOXLINE_MAX_CALLS": "1"}) as server:
        async with websockets.connect(f"{server.ws}/ws/call") as first:
            await start_call(first)
            async with websockets.connect(f"{server.ws}/ws/call") as second:
                error = await next_event(second, "error")
                assert error["message"] == "the server is at capacity (1 calls); try again later"
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(second.recv(), 5)
            assert (second.close_code, second.close_reason) == (1013, "at capacity")
        async with httpx.AsyncClient(base_url=server.http) as http:
            for _ in range(50):  # the first call's slot is released as its handler ends
                if (await http.get("/health")).json()["capacity"]["active"] == {}:
                    break
                await asyncio.sleep(0.1)
            health = (await http.get("/health")).json()
            assert health["capacity"] == {"max_calls": 1, "active": {}, "refused": {"websocket": 1}}
            metrics = (await http.get("/metrics")).text
        assert 'voxline_calls_refused_capacity_total{transport="websocket"} 1' in metrics
        async with websockets.connect(f"{server.ws}/ws/call") as third:
            assert (await start_call(third))["call_id"]  # room again


async def test_audio_sent_far_ahead_of_real_time_is_paced(open_local: LiveServer) -> None:
    async with websockets.connect(f"{open_local.ws}/ws/call") as ws:
        await start_call(ws)
        started = time.monotonic()
        await send_audio(ws, 5.0)  # as fast as the socket takes it
        conversation = EchoConversation.instances[0]
        for _ in range(200):
            if conversation.received_samples >= 5 * 16000:
                break
            await asyncio.sleep(0.05)
        taken_s = time.monotonic() - started
    print(f"\n5 s of audio sent at once: the call took it in over {taken_s:.2f} s")
    assert conversation.received_samples == 5 * 16000
    assert taken_s >= 5.0 - 2.0 - 0.3  # at most the 2 s burst ahead of the wall clock


# ---------------------------------------------------------------- records


async def test_a_forged_call_id_cannot_touch_another_record(
    open_local: LiveServer, recorder: SqliteCallRecorder
) -> None:
    async with websockets.connect(f"{open_local.ws}/ws/call") as ws:
        victim = await start_call(ws, label="victim-label")
        await send_audio(ws, 2.1)
        await next_event(ws, "agent_text")
        await ws.send(json.dumps({"type": "dtmf", "digit": "#"}))
        await next_event(ws, "hangup")
    recorder.flush(5)
    before = recorder.get_call(victim["call_id"])
    assert before is not None and before["label"] == "victim-label"
    assert victim["label"] == "victim-label" and victim["call_id"] != "victim-label"

    async with websockets.connect(f"{open_local.ws}/ws/call") as ws:
        attacker = await start_call(ws, label=victim["call_id"])  # tries to write into the victim's record
        await send_audio(ws, 1.1)
        await next_event(ws, "agent_text")
        await ws.send(json.dumps({"type": "dtmf", "digit": "#"}))
        await next_event(ws, "hangup")
    recorder.flush(5)
    assert attacker["call_id"] != victim["call_id"]
    assert recorder.get_call(victim["call_id"]) == before  # untouched, turn for turn
    forged = recorder.get_call(attacker["call_id"])
    assert forged is not None and forged["label"] == victim["call_id"] and len(forged["turns"]) == 1


async def test_a_newline_in_a_label_cannot_forge_a_log_line(
    open_local: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    from voxline.logs import TextFormatter

    async with websockets.connect(f"{open_local.ws}/ws/call") as ws:
        await start_call(ws)
        await ws.send(json.dumps({"type": "x\n12:00:00.000 I [admin] voxline: login ok"}))
        await next_event(ws, "error")
    lines = [TextFormatter().format(r) for r in caplog.records if "unknown message type" in r.getMessage()]
    assert lines and all("\n" not in line for line in lines)
    assert "\\n12:00:00.000 I [admin]" in lines[0]


def fill_records(path: Path, calls: int, turns: int) -> None:
    """Bulk-insert old calls straight into SQLite (fast), so reading them back costs real time."""
    SqliteCallRecorder(path).close()  # the schema
    conn = sqlite3.connect(path)
    metrics = json.dumps({"voice_to_voice_ms": 700.0})
    with conn:
        conn.executemany(
            "INSERT INTO calls (call_id, agent, transport, started_at, ended_at, end_reason) "
            "VALUES (?, 'a', 'sip', ?, ?, 'normal')",
            [(f"old{i}", 1000.0 + i, 1010.0 + i) for i in range(calls)],
        )
        conn.executemany(
            "INSERT INTO turns (call_id, idx, started_at, user_text, agent_text, agent_full_text, language, "
            "interrupted, tool_calls, metrics, voice_to_voice_ms) "
            "VALUES (?, ?, 0, 'some words the caller said', 'a reply', 'a reply', 'en', 0, '[]', ?, 700.0)",
            [(f"old{i}", j, metrics) for i in range(calls) for j in range(turns)],
        )
    conn.close()


POLLER = """
import sys, threading, time, httpx
url, seconds = sys.argv[1], float(sys.argv[2])
counts = []
def poll():
    n = 0
    with httpx.Client(base_url=url, timeout=30) as http:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            assert http.get("/calls", params={"limit": 1000}).status_code == 200
            n += 1
    counts.append(n)
threads = [threading.Thread(target=poll) for _ in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
print(sum(counts))
"""


async def test_a_calls_poll_storm_does_not_stall_a_live_call(tmp_path: Path) -> None:
    path = tmp_path / "big.sqlite3"
    fill_records(path, calls=4000, turns=8)
    rec = SqliteCallRecorder(path)
    try:
        started = time.perf_counter()
        assert len(rec.list_calls(1000)) == 1000
        query_ms = (time.perf_counter() - started) * 1000
        app = create_app(
            AgentConfig(), engines=stand_in_engines(), recorder=rec, conversation_factory=EchoConversation
        )
        with LiveServer(app) as server:
            lag = app.state.voxline.metrics.loop_lag
            async with websockets.connect(f"{server.ws}/ws/call") as ws:
                await start_call(ws)
                # The poll storm comes from another process, as it would: its own parsing must not
                # share this process's GIL with the server under test.
                pollers = await asyncio.create_subprocess_exec(
                    sys.executable, "-c", POLLER, server.http, "3.5", stdout=asyncio.subprocess.PIPE
                )
                await asyncio.sleep(0.5)
                lag._lags_s.clear()  # measure the storm only, not the start-up
                gaps: list[float] = []
                last = None
                for _ in range(150):  # 3 s of the call's audio, echoed back paced at 20 ms
                    await ws.send(tone(0.02, 16000).to_bytes())
                    while True:
                        msg = await asyncio.wait_for(ws.recv(), 5)
                        if isinstance(msg, bytes):
                            now = time.monotonic()
                            if last is not None:
                                gaps.append((now - last) * 1000)
                            last = now
                            break
                    await asyncio.sleep(0.015)
                summary = lag.summary()
                out, _ = await pollers.communicate()
                polls = int(out.decode().strip())
    finally:
        rec.close()
    gaps.sort()
    print(
        f"\n/calls?limit=1000 alone: {query_ms:.1f} ms; {polls} polls by 4 clients during a 3 s call; "
        f"server loop lag p50 {summary['p50_ms']:.1f} p99 {summary['p99_ms']:.1f} "
        f"max {summary['max_ms']:.1f} ms; echo gap p99 {gaps[int(len(gaps) * 0.99)]:.1f} ms"
    )
    assert polls >= 8
    # On the loop, each poll holds it for the whole query and the polls queue up: measured with the
    # reads inline, p99 250-300 ms (max 340-360 ms) here; in a thread, p99 19-35 ms on a loaded box.
    assert summary["p99_ms"] < 100.0, summary


FLOODER = """
import socket, sys, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
request = (
    "GET /ws/call HTTP/1.1\\r\\nHost: 127.0.0.1:%d\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n" % port
).encode()
statuses = {}
end = time.monotonic() + seconds
while time.monotonic() < end:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request)
        status = sock.recv(64).split(b" ")[1].decode()
        statuses[status] = statuses.get(status, 0) + 1
print(" ".join(f"{k}={v}" for k, v in sorted(statuses.items())))
"""


async def call_under_fire(server: LiveServer, headers: dict[str, str]) -> list[float]:
    """3 s of a call's audio in 20 ms frames; the gaps (ms) between the echoed frames coming back."""
    gaps: list[float] = []
    # From 127.0.0.2: another source than the flood (the limit is per source address).
    async with websockets.connect(
        f"{server.ws}/ws/call", additional_headers=headers, local_addr=("127.0.0.2", 0)
    ) as ws:
        await start_call(ws)
        last = None
        for _ in range(150):
            await ws.send(tone(0.02, 16000).to_bytes())
            while True:
                msg = await asyncio.wait_for(ws.recv(), 5)
                if isinstance(msg, bytes):
                    now = time.monotonic()
                    if last is not None:
                        gaps.append((now - last) * 1000)
                    last = now
                    break
            await asyncio.sleep(0.015)
    return sorted(gaps)


async def test_a_handshake_flood_from_one_source_is_refused_while_a_call_goes_on(
    recorder: SqliteCallRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    with serve(recorder, SECURED_ENV) as server:
        flood = await asyncio.create_subprocess_exec(
            sys.executable, "-c", FLOODER, str(server.port), "3.5", stdout=asyncio.subprocess.PIPE
        )
        await asyncio.sleep(0.3)
        lag = server_lag(server)
        lag._lags_s.clear()
        gaps = await call_under_fire(server, KEY_HEADERS)
        summary = lag.summary()
        out, _ = await flood.communicate()
    statuses = dict(item.split("=") for item in out.decode().split())
    refused = sum(int(n) for code, n in statuses.items() if code in {"401", "429"})
    print(
        f"\nhandshake flood: {statuses} in 3.5 s ({refused / 3.5:.0f}/s refused); the call's echo gap "
        f"p50 {gaps[len(gaps) // 2]:.1f} p99 {gaps[int(len(gaps) * 0.99)]:.1f} ms; server loop lag "
        f"p99 {summary['p99_ms']:.1f} max {summary['max_ms']:.1f} ms"
    )
    assert set(statuses) <= {"401", "429"} and refused > 50  # none got in
    assert len(gaps) == 149  # every frame of the call came back
    assert summary["p99_ms"] < 100.0, summary
    refusals_logged = [r for r in caplog.records if r.name == "voxline.server.gate"]
    assert 1 <= len(refusals_logged) <= 2 * 2  # once per status per 10 s, not once per attempt


def server_lag(server: LiveServer) -> Any:
    return server.app.state.voxline.metrics.loop_lag


async def test_a_records_write_failure_shows_on_health_and_metrics(recorder: SqliteCallRecorder) -> None:
    # The disk is "full": SQLite may not grow the file past its current size (SQLITE_FULL), and this
    # agent's long name makes the call's first row need a new page.
    recorder._submit(lambda conn: conn.execute("PRAGMA max_page_count = 1"), writes=False)
    app = create_app(
        AgentConfig(name="a long agent name " * 1000), engines=stand_in_engines(), recorder=recorder,
        conversation_factory=EchoConversation,
    )  # fmt: skip
    with LiveServer(app) as server:
        await _call_while_the_disk_is_full(server, recorder)


async def _call_while_the_disk_is_full(open_local: LiveServer, recorder: SqliteCallRecorder) -> None:
    async with websockets.connect(f"{open_local.ws}/ws/call") as ws:
        await start_call(ws, label="x" * 64)
        await send_audio(ws, 2.1)
        for _ in range(2):
            await next_event(ws, "agent_text")
        await ws.send(json.dumps({"type": "dtmf", "digit": "#"}))
        await next_event(ws, "hangup")
    assert recorder.flush(5)
    async with httpx.AsyncClient(base_url=open_local.http) as http:
        health = (await http.get("/health")).json()
        metrics = (await http.get("/metrics")).text
    assert health["status"] == "degraded"
    assert health["records"]["ok"] is False and health["records"]["write_errors"] >= 1
    assert "full" in health["records"]["last_error"]
    assert "voxline_records_ok 0" in metrics
    assert "voxline_record_write_errors_total 0" not in metrics


async def test_retention_purges_old_records(recorder: SqliteCallRecorder) -> None:
    now = time.time()
    recorder.call_started(CallReport("old-call", "a", "sip", started_at=now - 10 * 86400))
    recorder.call_started(CallReport("new-call", "a", "sip", started_at=now - 3600))
    recorder.flush(5)
    with serve(recorder, retention_days=7, retention_interval_s=0.2) as server:
        async with httpx.AsyncClient(base_url=server.http) as http:
            for _ in range(50):
                if [c["call_id"] for c in (await http.get("/calls")).json()] == ["new-call"]:
                    break
                await asyncio.sleep(0.1)
            assert [c["call_id"] for c in (await http.get("/calls")).json()] == ["new-call"]
            assert "voxline_records_purged_total 1" in (await http.get("/metrics")).text


def test_insecure_mode_says_so_on_health(recorder: SqliteCallRecorder) -> None:
    security = SecuritySettings.from_env("0.0.0.0", env={}, insecure=True)
    app = create_app(
        AgentConfig(), engines=stand_in_engines(), recorder=recorder, conversation_factory=EchoConversation,
        security=security,
    )  # fmt: skip
    with LiveServer(app) as server, httpx.Client(base_url=server.http) as http:
        health = http.get("/health").json()
    assert health["insecure"] is True and health["security"]["auth"] == "insecure"
    assert any(w.startswith("INSECURE") for w in health["warnings"])


async def test_health_and_metrics_protection_are_settings(recorder: SqliteCallRecorder) -> None:
    env = {**SECURED_ENV, "VOXLINE_PROTECT_HEALTH": "1", "VOXLINE_PROTECT_METRICS": "0"}
    with serve(recorder, env) as server:
        async with httpx.AsyncClient(base_url=server.http) as http:
            assert (await http.get("/health")).status_code == 401
            assert (await http.get("/health", headers=KEY_HEADERS)).status_code == 200
            assert (await http.get("/metrics")).status_code == 200
            assert (await http.get("/calls")).status_code == 401


async def test_a_stream_of_bad_frames_ends_the_call(open_local: LiveServer) -> None:
    async with websockets.connect(f"{open_local.ws}/ws/call") as ws:
        ready = await start_call(ws)
        for _ in range(200):
            await ws.send("not json")
        errors = 0
        with pytest.raises(ConnectionClosed):
            while True:
                msg = await asyncio.wait_for(ws.recv(), 10)
                errors += isinstance(msg, str) and json.loads(msg)["type"] == "error"
    assert (ws.close_code, ws.close_reason) == (1008, "too many bad frames")
    assert errors == 51  # one per bad frame up to the limit, then the reason for closing
    assert EchoConversation.instances[0].done.wait(10)
    assert ready["call_id"]
