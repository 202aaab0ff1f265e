"""The HTTP server: the web page, WebSocket calls, call records and Prometheus metrics.

Engines are built and warmed once at startup (the lifespan) and shared by every call. Each call
runs in its own uvicorn connection task; a call that crashes is logged with its call id and closed,
and nothing it does can reach another call.

Every request first passes the SecurityGate (Host, Origin, per-source rate limit, credentials; see
voxline.server.gate), and every call takes a slot of the node's load budget (voxline.node.load: a
load function, a threshold, reserved slots, draining). Record reads run in a thread: a /calls poll
must never delay the audio the event loop is pacing.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

from fastapi import FastAPI, HTTPException, Query, WebSocket
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from voxline.agent.config import AgentConfig
from voxline.audio.clock import Clock
from voxline.calls.runner import (
    CallContext,
    CallHandler,
    CallRunner,
    ConversationFactory,
    LabelStore,
    build_conversation,
    run_call,
)
from voxline.capacity import CallSlot, Refusal
from voxline.conversation.events import CallFailed, to_wire
from voxline.conversation.metrics import CallRecorder, CallReport
from voxline.conversation.webhook import drain_webhooks
from voxline.dispatch.metadata import CallMetadata
from voxline.dispatch.rules import UnknownAgent
from voxline.engines._threaded import run_model
from voxline.engines.base import Engines
from voxline.node.drain import Drain
from voxline.node.load import NodeLoad
from voxline.server.gate import SecurityGate
from voxline.server.metrics import MetricsRecorder, ServerMetrics, node_lines, security_lines
from voxline.server.ratelimit import SourceRateLimiter
from voxline.server.security import SecuritySettings
from voxline.server.tokens import DEFAULT_TTL_S, MAX_TTL_S, mint_token
from voxline.transports.base import CallIO
from voxline.transports.websocket import StartRejected, WebSocketCall

if TYPE_CHECKING:
    from voxline.dispatch.node import NodeAgents
    from voxline.workers.media import MediaSpec
    from voxline.workers.pool import WorkerPool

log = logging.getLogger(__name__)
WEBHOOK_DRAIN_S = 10.0
"""At shutdown, post-call webhooks still queued get this long to go out."""

STATIC_DIR = Path(__file__).parent / "static"
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_REASONS = {"capacity": "at capacity", "load": "over load threshold", "draining": "draining"}
"""The WebSocket close reason of a refused call, by refusal code."""
RETENTION_INTERVAL_S = 3600.0


class AppService(Protocol):
    """Something that runs beside the HTTP server once models are ready (SIP, AudioSocket, ARI)."""

    async def start(self, app: FastAPI) -> None: ...

    async def stop(self) -> None: ...

    def describe(self) -> dict[str, Any]:
        """What /health shows of it (where it listens, its calls)."""
        ...


EnginesFactory = Callable[[], "Engines | Awaitable[Engines]"]


@runtime_checkable
class RecordsHealth(Protocol):
    """A recorder that reports whether its writes succeed (SqliteCallRecorder)."""

    def health(self) -> dict[str, Any]: ...


@runtime_checkable
class RecordsRetention(Protocol):
    """A recorder that can delete old calls (SqliteCallRecorder)."""

    def purge_older_than(self, cutoff_epoch: float) -> int: ...


@runtime_checkable
class CallStore(Protocol):
    """A recorder that can also read its records back (SqliteCallRecorder)."""

    def get_call(self, call_id: str) -> dict[str, Any] | None: ...

    def list_calls(self, limit: int = 50) -> list[dict[str, Any]]: ...


@runtime_checkable
class PoolView(Protocol):
    """The job pool as /health and /metrics show it (voxline.workers): `describe()` gives
    `{"idle", "jobs", "spawning", "crashed", "jobs_rss_mb": {job: MB}}` (missing keys are fine)."""

    def describe(self) -> Mapping[str, Any]: ...


@dataclass
class ServerState:
    agent: AgentConfig
    recorder: CallRecorder
    engines: Engines | None = None
    metrics: ServerMetrics = field(default_factory=ServerMetrics)
    ready: bool = False
    security: SecuritySettings = field(default_factory=SecuritySettings.local)
    capacity: NodeLoad = field(default_factory=lambda: NodeLoad.budget(SecuritySettings().max_calls))
    """The node's call budget, shared by every way in (its load function, threshold, reservations)."""
    refused: Counter[int] = field(default_factory=Counter)
    """HTTP/WebSocket requests the gate refused, by status code."""
    purged_calls: int = 0
    runner: CallRunner | None = None
    """Runs every call once the models are ready (None until then)."""
    node: NodeAgents | None = None
    """The node's agents and dispatch, when it serves several (voxline.dispatch)."""
    drain: Drain | None = None
    """Set by create_app: SIGTERM / `voxline drain` stops new calls and lets these finish."""
    pool: object | None = None
    """The job pool when calls run in job processes (the `workers` pool); shown when it is a
    `PoolView`, asked for goodbyes when it has `request_goodbye`."""
    workers: WorkerPool | None = None
    """`workers.mode: process`: every call's conversation runs in a job process from this pool."""
    call_recorder: CallRecorder | None = None
    """The recorder calls write through (the metrics' view of the records)."""
    media_on_supervisor: bool = False
    """A process-mode node of media-only agents: its calls run on this loop, not in jobs."""


class TokenRequest(BaseModel):
    ttl_s: int = Field(DEFAULT_TTL_S, ge=1, le=MAX_TTL_S)
    scope: list[str] = Field(default_factory=lambda: ["call"])
    subject: str | None = Field(None, max_length=64)


def create_app(
    agent: AgentConfig,
    *,
    engines: Engines | None = None,
    engines_factory: EnginesFactory | None = None,
    warm_up: Callable[[Engines], Awaitable[None]] | None = None,
    recorder: CallRecorder | None = None,
    db_path: Path | None = None,
    conversation_factory: ConversationFactory | None = None,
    clock: Clock | None = None,
    services: Sequence[AppService] = (),
    security: SecuritySettings | None = None,
    retention_days: float | None = None,
    retention_interval_s: float = RETENTION_INTERVAL_S,
    node: NodeAgents | None = None,
    load: NodeLoad | None = None,
    drain_timeout_s: float = 300.0,
    workers: WorkerPool | None = None,
) -> FastAPI:
    """Build the server app.

    Give either ready `engines` or an `engines_factory` (sync factories run in a thread, since
    loading models blocks); `warm_up(engines)` then runs once before the server accepts requests.
    `recorder` defaults to a SqliteCallRecorder at `db_path` (default `$VOXLINE_DATA_DIR/calls.sqlite3`),
    which the app closes (flushing queued records) at shutdown; a recorder passed in is the caller's.
    `security` defaults to loopback with no keys (SecuritySettings.local); `retention_days` purges
    records older than that at start and every `retention_interval_s`. With `node`, each call goes
    to the agent the node's dispatch chooses (`agent` is then the node's main agent). `load` is the
    node's call budget (default: calls alone, up to `security.max_calls`); `drain_timeout_s` is how
    long calls may run on once the node drains.
    With `workers` (process mode) each call's conversation runs in a job from that pool, which the
    app starts and stops; the app itself then needs no engines.
    """
    if engines is None and engines_factory is None and workers is None:
        raise ValueError("create_app needs engines, an engines_factory or a worker pool")
    owned_recorder = None
    if recorder is None:
        from voxline.records import SqliteCallRecorder

        recorder = owned_recorder = SqliteCallRecorder(db_path)
    security = security or SecuritySettings.local()
    state = ServerState(
        agent=agent, recorder=recorder, engines=engines, security=security,
        capacity=load if load is not None else NodeLoad.budget(security.max_calls), node=node,
    )  # fmt: skip
    state.drain = drain = Drain(state.capacity, drain_timeout_s, targets=lambda: (state.runner, state.pool))
    call_recorder = MetricsRecorder(recorder, state.metrics)
    state.call_recorder = call_recorder

    def ready(loaded: Engines) -> None:
        state.engines = loaded
        state.runner = CallRunner(
            agent, loaded, call_recorder, make_conversation=conversation_factory or build_conversation,
            clock=clock, observer=state.metrics,
            labels=state.recorder if isinstance(state.recorder, LabelStore) else None,
        )  # fmt: skip
        if node is not None:
            state.runner = node.runner(state.runner)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if workers is not None:
            log.info("starting the job pool")
            await workers.start()
            state.workers = state.pool = workers
            agents = list(node.agents.values()) if node is not None else [agent]
            if workers.config.media_calls == "supervisor" and all(a.media_only for a in agents):
                # media-only (echo) calls load no model runtime that could crash: a job process
                # each would only cost them (measured: 59 MB and a spawn per call; p99 send lateness
                # over 5 ms from 10 calls, against 75 calls within it on the supervisor's loop). A
                # node that mixes them with model agents runs them in jobs like its other calls.
                ready(Engines.none())
                state.media_on_supervisor = True
        else:
            loaded = state.engines
            if loaded is None:
                assert engines_factory is not None
                log.info("loading models")
                loaded = await _call_maybe_in_thread(engines_factory)
            if warm_up is not None:
                log.info("warming up models")
                await warm_up(loaded)
            ready(loaded)
        state.ready = True
        state.metrics.loop_lag.start()
        await state.capacity.start()
        for warning in security.warnings:
            log.warning("%s", warning)
        retention = None
        if retention_days is not None:
            retention = asyncio.get_running_loop().create_task(
                _purge_forever(state, retention_days, retention_interval_s), name="records-retention"
            )
        started: list[AppService] = []
        try:
            for service in services:
                await service.start(_app)
                started.append(service)
            log.info("server ready for agent %r", agent.name)
            yield
        finally:
            state.ready = False
            if retention is not None:
                retention.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await retention
            await state.metrics.loop_lag.stop()
            await state.capacity.stop()
            for service in reversed(started):
                try:
                    await service.stop()
                except Exception:
                    log.exception("stopping %s failed", type(service).__name__)
            if workers is not None:
                await workers.stop()
            if owned_recorder is not None:
                owned_recorder.close()
            await drain_webhooks(WEBHOOK_DRAIN_S)  # queued post-call webhooks get a last chance

    app = FastAPI(title="voxline", lifespan=lifespan)
    app.add_middleware(
        SecurityGate,
        settings=security,
        limiter=SourceRateLimiter(security.ws_connects_per_minute),
        refused=state.refused,
    )
    app.state.voxline = state
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    if node is not None:
        from voxline.dispatch.api import outbound_router

        app.include_router(outbound_router(app))

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/health")
    async def health() -> JSONResponse:
        records = _records_health(state)
        status = "loading" if not state.ready else "degraded" if not records.get("ok", True) else "ok"
        if drain.draining:
            status = "draining"  # a load balancer stops sending calls here (503 below)
        body: dict[str, Any] = {
            "status": status,
            "models_ready": state.ready,
            "agent": agent.name,
            "calls_active": state.metrics.calls_active,
            "event_loop_lag_ms": state.metrics.loop_lag_ms(),
            "records": records,
            "capacity": state.capacity.describe(),
            "load": state.capacity.describe_load(),
            "drain": drain.describe(),
            "security": security.describe(),
        }
        if node is not None:
            body["agents"] = {name: a.name for name, a in node.agents.items()}
        pool = _pool(state)
        if pool is not None:
            body["pool"] = pool
        if security.insecure:
            body["insecure"] = True
        if security.warnings:
            body["warnings"] = list(security.warnings)
        if workers is not None:
            body["workers"] = workers.describe()
        for service in services:
            body.update(service.describe())
        return JSONResponse(body, status_code=200 if state.ready and not drain.draining else 503)

    @app.get("/calls")
    async def list_calls(limit: int = Query(50, ge=1, le=1000)) -> Response:
        store = _store(state)
        return await asyncio.to_thread(lambda: _json(store.list_calls(limit)))

    @app.get("/calls/{call_id}")
    async def get_call(call_id: str) -> Response:
        store = _store(state)
        record = None if len(call_id) > 64 else await asyncio.to_thread(store.get_call, call_id)
        if record is None:
            raise HTTPException(404, "no such call")
        return await asyncio.to_thread(_json, record)

    @app.post("/tokens")
    async def tokens(request: TokenRequest) -> dict[str, Any]:
        """Mint a short-lived token (needs an API key): a backend hands it to a browser."""
        if security.token_secret is None:
            raise HTTPException(404, "tokens are not enabled: set VOXLINE_API_KEYS or VOXLINE_TOKEN_SECRET")
        try:
            token = mint_token(
                security.token_secret, ttl_s=request.ttl_s, scopes=frozenset(request.scope),
                subject=request.subject,
            )  # fmt: skip
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return {
            "token": token,
            "expires_at": int(time.time()) + request.ttl_s,
            "scope": sorted(request.scope),
        }

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        extra = security_lines(
            records=_records_health(state), capacity=state.capacity.describe(), refused=dict(state.refused),
            purged=state.purged_calls,
        )  # fmt: skip
        extra += node_lines(state.capacity.describe_load(), draining=drain.draining, pool=_pool(state))
        return PlainTextResponse(state.metrics.render() + extra, media_type="text/plain; version=0.0.4")

    @app.websocket("/ws/call")
    async def ws_call(websocket: WebSocket) -> None:
        runner = state.runner
        if not state.ready or (runner is None and state.workers is None):
            await websocket.accept()
            await websocket.send_json(to_wire(CallFailed("models are still loading, try again")))
            await websocket.close(CLOSE_TRY_AGAIN_LATER)
            return
        slot = state.capacity.admit("websocket")
        if isinstance(slot, Refusal):
            await websocket.accept()
            await websocket.send_json(to_wire(CallFailed(slot.reason)))
            await websocket.close(CLOSE_TRY_AGAIN_LATER, CLOSE_REASONS.get(slot.code, slot.code))
            log.warning("websocket call refused: %s", slot.reason)
            return
        with slot:
            try:
                call = await WebSocketCall.accept(
                    websocket, clock=clock, max_frame_bytes=security.ws_max_message_bytes,
                    route=node.route if node is not None else None,
                )  # fmt: skip
            except StartRejected:
                return
            slot.started()
            context = CallContext("websocket", label=call.label, metadata=_metadata(call, "websocket"))
            if state.workers is not None and not state.media_on_supervisor:
                await run_call(call, _in_job(state, context, call.send_event))
            else:
                assert runner is not None
                await runner.run(call, context, call.send_event)

    return app


def call_handler(app: FastAPI, transport: str) -> CallHandler:
    """The handler that runs the app's agent on calls from another way in (SIP, AudioSocket, ARI):
    a call that comes too early or over capacity is refused (ended at once with that reason)."""
    state: ServerState = app.state.voxline

    async def handle(call: CallIO) -> CallReport:
        context = CallContext(transport, label=call.label, metadata=_metadata(call, transport))
        runner = state.runner
        if not state.ready or (runner is None and state.workers is None):
            log.warning("%s call refused: models are still loading", transport)
            return _refused(call, state.agent, context, "not_ready")
        # SIP and AudioSocket take their slot when they admit the call (503 / refusal when full)
        slot: CallSlot | Refusal | None = getattr(call, "capacity_slot", None)
        if slot is None:
            slot = state.capacity.admit(transport)
        if isinstance(slot, Refusal):
            log.warning("%s call refused: %s", transport, slot.reason)
            reason = "node_draining" if slot.code == "draining" else "over_capacity"
            return _refused(call, state.agent, context, reason)
        with slot:
            slot.started()
            if state.workers is not None and not state.media_on_supervisor:
                from voxline.telephony.job_bridge import run_with_own_media

                # the RTP socket / AudioSocket connection itself goes to the job
                return await run_with_own_media(call, _in_job(state, context, None))
            assert runner is not None
            report = await runner.converse(call, context)
            if state.workers is not None:  # a media-only call on the supervisor: in the node's send timing
                from voxline.workers.send_timing import send_timing

                timing = send_timing(call)
                if timing is not None:
                    state.workers.send_timing.add(timing)
            return report

    return handle


def _metadata(call: CallIO, transport: str) -> CallMetadata:
    return call.metadata if call.metadata is not None else CallMetadata(transport)


def _pool(state: ServerState) -> dict[str, Any] | None:
    """The job pool's own description, if the node runs one (a failing pool must not break /health)."""
    if not isinstance(state.pool, PoolView):
        return None
    try:
        return dict(state.pool.describe())
    except Exception:
        log.exception("describing the job pool failed")
        return {"error": "describe failed"}


def _in_job(
    state: ServerState,
    context: CallContext,
    on_event: Callable[[dict[str, Any]], None] | None,
    on_started: Callable[[], None] | None = None,
) -> Callable[..., Awaitable[CallReport]]:
    """The handler that runs a call's conversation in a job process (`pipe` media unless `media`
    says otherwise), with the agent the node's dispatch chose for it."""
    workers = state.workers
    assert workers is not None

    async def converse(call: CallIO, media: MediaSpec | None = None) -> CallReport:
        agent, routed = state.agent, context
        if state.node is not None:
            metadata = context.metadata
            if not metadata.transport:
                metadata = replace(metadata, transport=context.transport)
            try:
                metadata = state.node.route(metadata)
            except UnknownAgent as exc:
                log.warning("%s call refused: %s", context.transport, exc.reason)
                if on_event is not None:
                    on_event(to_wire(CallFailed(exc.reason)))
                report = _refused(call, state.agent, context, "unknown_agent")
                report.metadata = metadata.as_dict()
                return report
            assert metadata.agent is not None
            agent, routed = state.node.agents[metadata.agent], replace(context, metadata=metadata)
        return await workers.run(
            call, routed, agent, media=media, recorder=state.call_recorder, on_event=on_event,
            labels=state.recorder if isinstance(state.recorder, LabelStore) else None,
            observer=state.metrics, on_started=on_started,
        )  # fmt: skip

    return converse


def _refused(call: CallIO, agent: AgentConfig, context: CallContext, reason: str) -> CallReport:
    """The report of a call ended before any conversation (`run_call` hangs up with its reason)."""
    return CallReport(call.call_id, agent.name, context.transport, time.time(), end_reason=reason)


def _json(body: object) -> Response:
    """A JSON response serialized by the caller (in a thread: a thousand records take milliseconds)."""
    return Response(json.dumps(body, ensure_ascii=False).encode(), media_type="application/json")


def _records_health(state: ServerState) -> dict[str, Any]:
    recorder = state.recorder
    return dict(recorder.health()) if isinstance(recorder, RecordsHealth) else {"ok": True}


async def _purge_forever(state: ServerState, retention_days: float, interval_s: float) -> None:
    """Delete records older than the retention period now and every `interval_s` (personal data)."""
    recorder = state.recorder
    if not isinstance(recorder, RecordsRetention):
        log.warning("retention is set but this recorder cannot purge; nothing will be deleted")
        return
    while True:
        cutoff = time.time() - retention_days * 86400.0
        try:
            purged = await asyncio.to_thread(recorder.purge_older_than, cutoff)
        except Exception:
            log.exception("purging old call records failed")
        else:
            state.purged_calls += purged
            if purged:
                log.info("retention: purged %d call records older than %g days", purged, retention_days)
        await asyncio.sleep(interval_s)


def _store(state: ServerState) -> CallStore:
    if not isinstance(state.recorder, CallStore):
        raise HTTPException(404, "this server does not keep call records")
    return state.recorder


async def _call_maybe_in_thread(factory: EnginesFactory) -> Engines:
    """Await an async factory; run a sync one in the model pool (loading weights blocks for seconds)."""
    built = await factory() if inspect.iscoroutinefunction(factory) else await run_model(factory)
    if inspect.isawaitable(built):
        built = await built
    return cast(Engines, built)
