"""Wiring: build an agent's engines once, then run calls on the server, from files, or as text chat."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voxline.agent.config import AgentConfig
from voxline.calls.runner import CallContext, CallRunner
from voxline.conversation.fixed_lines import render_fixed_lines
from voxline.conversation.metrics import CallReport
from voxline.conversation.prompt import build_system_prompt
from voxline.conversation.tools import ToolRegistry
from voxline.conversation.webhook import drain_webhooks
from voxline.dispatch.context import bind_agent
from voxline.dispatch.metadata import CallMetadata
from voxline.engines import factory
from voxline.engines._threaded import run_model, run_model_sync
from voxline.engines.base import Engines
from voxline.transports.base import CallIO

if TYPE_CHECKING:
    from fastapi import FastAPI

    from voxline.dispatch.node import NodeAgents
    from voxline.node.config import WorkersConfig
    from voxline.node.load import NodeLoad
    from voxline.server.security import SecuritySettings
    from voxline.server.telephony import TelephonyOptions

log = logging.getLogger(__name__)
WEBHOOK_DRAIN_S = 10.0
"""A one-call command waits this long at most for its post-call webhook before the process exits."""


def new_call_id() -> str:
    return uuid.uuid4().hex[:16]


def load_engines(agent: AgentConfig) -> Engines:
    """Load the agent's models, blocking (raises ModelNotInstalledError with install advice).
    Run it in the model pool (`run_model`/`run_model_sync`), so the threads runtimes start while
    loading get the pool's lower priority."""
    return factory.build_engines(agent)


async def warm_engines(agent: AgentConfig, engines: Engines) -> None:
    """Warm every model, put exactly the prompt prefix calls will use into the LLM's KV cache, and
    render the greeting so a caller hears it as soon as the call is answered."""
    tools = ToolRegistry(agent).specs()
    # the prompt of a call that brings no metadata (the context's defaults in its placeholders)
    prompt = build_system_prompt(bind_agent(agent, CallMetadata()), tools)
    await factory.warm_up(engines, prompt, tools)
    await render_fixed_lines(agent, engines)


def create_server_app(
    agent: AgentConfig,
    db_path: Path | None = None,
    telephony: TelephonyOptions | None = None,
    security: SecuritySettings | None = None,
    retention_days: float | None = None,
    load: NodeLoad | None = None,
    drain_timeout_s: float = 300.0,
    workers: WorkersConfig | None = None,
) -> FastAPI:
    """The production server of one agent (a one-agent node: every call goes to it)."""
    from voxline.dispatch.node import NodeAgents

    return create_node_app(
        NodeAgents.single(agent), db_path=db_path, telephony=telephony, security=security,
        retention_days=retention_days, load=load, drain_timeout_s=drain_timeout_s, workers=workers,
    )  # fmt: skip


def create_node_app(
    node: NodeAgents,
    db_path: Path | None = None,
    telephony: TelephonyOptions | None = None,
    security: SecuritySettings | None = None,
    retention_days: float | None = None,
    load: NodeLoad | None = None,
    drain_timeout_s: float = 300.0,
    workers: WorkersConfig | None = None,
) -> FastAPI:
    """The production server: models are loaded before the port opens (once per distinct model set
    of the node's agents), so a missing one fails fast. The phone ways in (SIP, AudioSocket, ARI; the
    main agent's `telephony` section) start once the models are warm; each call goes to the agent
    the node's dispatch chooses. `load` and `drain_timeout_s`: the node's admission and draining
    (voxline.node).

    With `workers.mode: process` this process is the node's supervisor: it loads no model itself; it
    starts the node's speech server (every agent's whisper and voices, once) and llama-server, and
    each call's conversation runs in a job process from a pool kept warm, its engines clients of
    those servers (the first warm job is the node's "models ready")."""
    from voxline.server.app import create_app
    from voxline.server.telephony import TelephonyService

    if workers is not None and workers.mode == "process":
        from voxline.dispatch.node import NodeAgents
        from voxline.workers.pool import WorkerPool
        from voxline.workers.services import NodeServices, served_by_node

        served = {name: served_by_node(agent) for name, agent in node.agents.items()}
        node = NodeAgents(served, node.dispatcher, node.config)
        # one speech server for every agent of the node: the jobs load no STT or TTS model
        pool = WorkerPool(workers, preload=node.main, services=NodeServices(list(node.agents.values())))
        return create_app(
            node.main, workers=pool, db_path=db_path,
            services=[TelephonyService(node.main, telephony)], security=security,
            retention_days=retention_days, node=node, load=load, drain_timeout_s=drain_timeout_s,
        )  # fmt: skip
    engines = run_model_sync(node.load)

    async def warm(_loaded: Engines) -> None:
        await node.warm()

    services = [TelephonyService(node.main, telephony)]
    return create_app(
        node.main, engines=engines, warm_up=warm, db_path=db_path, services=services, security=security,
        retention_days=retention_days, node=node, load=load, drain_timeout_s=drain_timeout_s,
    )  # fmt: skip


@contextlib.asynccontextmanager
async def one_call_runner(
    agent: AgentConfig, engines: Engines | None, db_path: Path | None
) -> AsyncIterator[CallRunner]:
    """The runner of a one-call command (`simulate`, `call`): loads and warms the models unless given,
    records to `db_path`, and at the end closes the records and lets the post-call webhook go out."""
    from voxline.records import SqliteCallRecorder

    if engines is None:
        engines = await run_model(load_engines, agent)
        await warm_engines(agent, engines)
    recorder = SqliteCallRecorder(db_path)
    try:
        yield CallRunner(agent, engines, recorder, contain_crashes=False)
    finally:
        recorder.close()
        await drain_webhooks(WEBHOOK_DRAIN_S)  # one call per process: let its webhook go out


async def simulate_call(
    agent: AgentConfig,
    turns: Sequence[Path],
    *,
    pause_s: float = 1.0,
    barge_in_after_s: float | None = None,
    tail_s: float = 6.0,
    out: Path | None = None,
    db_path: Path | None = None,
    engines: Engines | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Play caller WAVs into the agent in real time; return the report (report.json's content).
    `on_event` sees the call's events as they happen (text, tool calls with their arguments, ...)."""
    from voxline.transports.file import FileCall

    def open_call() -> FileCall:
        for turn in turns:
            if not Path(turn).is_file():
                raise FileNotFoundError(f"caller turn not found: {turn}")
        # reads and converts every WAV now, so a bad file fails before any model loads
        return FileCall(
            list(turns),
            pause_s=pause_s,
            barge_in_after_s=barge_in_after_s,
            tail_s=tail_s,
            call_id=new_call_id(),
        )

    call = await asyncio.to_thread(open_call)
    async with one_call_runner(agent, engines, db_path) as runner:
        report = await runner.run(call, CallContext("file"), on_event)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        call.save(out)
    result = report.as_dict()
    # The caller's own view (from the audio it sent and heard), per caller turn, in seconds from the
    # call start: end of its speech → first agent sound after it.
    result["caller_timeline"] = [
        {
            "source": t.source,
            "start_s": t.start_s,
            "speech_end_s": t.speech_end_s,
            "reply_onset_s": t.reply_onset_s,
            "voice_to_voice_ms": None if t.latency_s is None else round(t.latency_s * 1000, 1),
        }
        for t in call.turns
    ]
    if out is not None:
        result["recording"] = str(out)
    return result


async def place_sip_call(
    agent: AgentConfig,
    uri: str,
    *,
    sip_port: int = 0,
    db_path: Path | None = None,
    timeout_s: float = 30.0,
    engines: Engines | None = None,
    agent_name: str | None = None,
) -> dict[str, Any]:
    """Call `uri` from the agent over SIP; the agent talks to whoever answers. Returns the report.
    `agent_name`: the agent's name on its node (kept in the call's metadata and record)."""
    from voxline.dispatch.sources import outbound_sip_metadata
    from voxline.telephony.sip.endpoint import SipEndpoint

    reports: list[dict[str, Any]] = []
    async with one_call_runner(agent, engines, db_path) as runner:
        metadata = outbound_sip_metadata(uri, agent.telephony.sip.user, agent_name)
        converse = runner.handler(CallContext("sip", metadata=metadata))

        async def talk(call: CallIO) -> CallReport:
            report = await converse(call)
            reports.append(report.as_dict())
            return report

        config = agent.telephony.sip.model_copy(update={"port": sip_port})
        endpoint = SipEndpoint(config, talk)
        await endpoint.start()
        try:
            reason = await endpoint.call(uri, timeout_s=timeout_s)
        finally:
            await endpoint.stop()
    result = reports[0] if reports else {"turns": []}
    result["sip_result"] = reason
    return result


# ---------------------------------------------------------------- text chat


async def chat_console(agent: AgentConfig) -> None:
    """Read caller lines from stdin and answer through the same loop as a phone call (its model,
    prompt, output filter, tools and language policy); the voice is mute."""
    from voxline.conversation.chat import TextSession

    agent = bind_agent(agent, CallMetadata("chat"))  # the context's defaults in its placeholders
    llm = await run_model(factory.build_llm, agent)
    tools = ToolRegistry(agent).specs()
    await llm.warm_up(build_system_prompt(agent, tools), tools)
    session = TextSession(agent, llm)
    greeting = await session.start()
    print(f"{agent.name} — type to talk, Ctrl-D to hang up.\nagent: {greeting.text}", flush=True)
    try:
        while not session.ended:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                break
            if not line.strip():
                continue
            reply = await session.say(line.strip())
            print(f"agent: {reply.text}", flush=True)
            for call in reply.tool_calls:
                print(f"  (tool {call['name']} {call['arguments'] or ''})".rstrip(), flush=True)
    finally:
        report = await session.close()
    if report.end_reason == "transferred":
        print(f"(the call was transferred to {report.transferred_to})")
    elif report.end_reason == "agent_ended":
        print("(the agent ended the call)")
