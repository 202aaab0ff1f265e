"""What the node shares with its jobs: the llama-server and the speech server (each started here,
once) and, per call, an LLM slot.

With `llm.engine: llama_server` the supervisor starts the node's one server for the agent's model
(`shared_llama_server`) and gives each call its URL, its key and a slot of its own: the slot in
fewest calls' use, so calls up to the server's `slots` never share (and evict) a cached prompt.

The speech server (`voxline.inference.supervisor.SpeechServer`) loads the whisper, Piper and Kokoro
models of every agent the node serves, once; a job's STT and voices are its clients, so a job loads
no speech model. Each call gets its socket path and key as `services["speech"]`.

Keys travel in the assignment over the job's channel only (never argv, env or a log).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from voxline.agent.config import AgentConfig
from voxline.engines.llama_server import LlamaServer

if TYPE_CHECKING:
    from voxline.inference.supervisor import SpeechServer

log = logging.getLogger(__name__)


def served_by_node(agent: AgentConfig) -> AgentConfig:
    """`agent` as a process-mode node runs it: a local llama.cpp model (`llm.engine: llama_cpp`) is
    served by the node's llama-server, loaded once with a slot per call, instead of by every job.
    A hub id or URL is left to the jobs. Every model the agent names is resolved here, so a missing
    one raises ModelNotInstalledError before the node opens a port, as it does inline."""
    from voxline.engines.factory import resolve_models

    _vad, _stt, model = resolve_models(agent)
    if agent.llm.engine != "llama_cpp" or isinstance(model, str):
        return agent
    return agent.model_copy(update={"llm": agent.llm.model_copy(update={"engine": "llama_server"})})


WARM_UP_S = 300.0
"""How long the node's LLM warm-up may take per slot (the whole prompt is evaluated once)."""
SPEECH_DESCRIBE_S = 5.0
"""How often /health's view of the speech server (its models, queues, requests served) is refreshed:
/health is answered from the last view, never by waiting on the server."""


def _server_key(agent: AgentConfig) -> tuple[str, int, int, int]:
    llm = agent.llm
    return (llm.model, llm.slots, llm.context_tokens, llm.threads or 2)


class NodeServices:
    """The node's shared engines for its jobs.

    `speech_agents`: every agent the node serves; when any of them uses a model the speech server
    holds (whisper, Piper, Kokoro), `start()` starts one for all of them. Empty: jobs load their own
    STT and TTS (the stand-in engines of tests, or a pool built without a node)."""

    def __init__(self, speech_agents: Sequence[AgentConfig] = ()) -> None:
        self._servers: dict[tuple[str, int, int, int], LlamaServer] = {}
        self._slots_in_use: dict[tuple[str, int, int, int], collections.Counter[int]] = {}
        self._speech_agents = [agent for agent in speech_agents if not agent.media_only]
        self.speech: SpeechServer | None = None
        self._speech_keys: frozenset[str] = frozenset()
        self._speech_view: dict[str, Any] = {}
        self._speech_watch: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the speech server for the node's agents (blocking work in a thread; seconds: its
        models load and warm before it answers). Raises EngineError if it cannot start."""
        if self.speech is not None or not self._speech_agents:
            return
        from voxline.inference.supervisor import SpeechServer

        speech = SpeechServer(self._speech_agents)
        if not speech.specs:  # no agent uses a model it would hold
            return
        try:
            await asyncio.to_thread(speech.start)
        except BaseException:
            await asyncio.to_thread(speech.stop)
            raise
        self.speech = speech
        self._speech_keys = frozenset(spec.key for spec in speech.specs)
        self._speech_watch = asyncio.get_running_loop().create_task(self._watch_speech(), name="speech-view")
        log.info("node speech server ready (pid %s): %s", speech.pid, ", ".join(sorted(self._speech_keys)))

    def _serves_speech_of(self, agent: AgentConfig) -> bool:
        """The speech server holds every model of `agent` (so the job loads none)."""
        from voxline.inference.models import agent_specs

        specs = agent_specs(agent)
        return bool(specs) and all(spec.key in self._speech_keys for spec in specs)

    async def _watch_speech(self) -> None:
        from voxline.inference.client import RemoteSpeech
        from voxline.workers.job import rss_mb

        while self.speech is not None:
            speech = self.speech
            view: dict[str, Any] = {"pid": speech.pid, "ready": speech.ready, "restarts": speech.restarts}
            try:
                described = await asyncio.wait_for(
                    RemoteSpeech(speech.endpoint, restart_wait_s=0).describe(), 2.0
                )
                view.update(models=described.get("models", {}), tts_cache=described.get("tts_cache", {}))
            except Exception as exc:  # restarting, or busy: say so, keep the last models seen
                view.update(models=self._speech_view.get("models", {}), error=type(exc).__name__)
            if speech.pid is not None:
                view["rss_mb"] = round(await asyncio.to_thread(rss_mb, speech.pid), 1)
            self._speech_view = view
            await asyncio.sleep(SPEECH_DESCRIBE_S)

    async def for_agent(self, agent: AgentConfig) -> None:
        """Start what `agent` needs (blocking work in a thread): its llama-server."""
        if agent.llm.engine != "llama_server" or agent.media_only:
            return
        key = _server_key(agent)
        if key in self._servers and not self._servers[key].stopped:
            return
        from voxline.engines.catalog import ModelCatalog
        from voxline.engines.llama_server import shared_llama_server

        def start() -> LlamaServer:
            model = ModelCatalog().resolve_reference(agent.llm.model, "llm")
            if isinstance(model, str):
                raise ValueError(f"llm.engine 'llama_server' needs a local model, not {model!r}")
            return shared_llama_server(
                model, parallel=agent.llm.slots, ctx_per_slot=agent.llm.context_tokens,
                threads=agent.llm.threads or 2,
            )  # fmt: skip

        server = await asyncio.to_thread(start)
        await _warm_slots(agent, server)
        self._servers[key] = server
        self._slots_in_use.setdefault(key, collections.Counter())
        log.info("node llama-server for %s ready (%d slots)", agent.llm.model, agent.llm.slots)

    def shared(self, agent: AgentConfig, slot: int = 0) -> dict[str, Any]:
        """The services dict a job gets for `agent` (only the servers started and serving it)."""
        shared: dict[str, Any] = {}
        if agent.media_only:
            return shared
        server = self._servers.get(_server_key(agent)) if agent.llm.engine == "llama_server" else None
        if server is not None:
            shared["llm"] = {"url": server.base_url, "key": server.api_key, "slot": slot}
        if self.speech is not None and self._serves_speech_of(agent):
            shared["speech"] = self.speech.endpoint.to_dict()
        return shared

    def lease(self, agent: AgentConfig) -> ServiceLease:
        return ServiceLease(self, agent)

    def _take_slot(self, agent: AgentConfig) -> int | None:
        if agent.media_only:
            return None
        key = _server_key(agent)
        used = self._slots_in_use.get(key)
        if used is None:
            return None
        slot = min(range(agent.llm.slots), key=lambda s: used[s])
        used[slot] += 1
        return slot

    def _release_slot(self, agent: AgentConfig, slot: int) -> None:
        used = self._slots_in_use.get(_server_key(agent))
        if used is not None and used[slot] > 0:
            used[slot] -= 1

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {
            "llama_servers": [
                {
                    "model": key[0],
                    "pid": server.pid,
                    "slots": key[1],
                    "ready": server.ready,
                    "restarts": server.restarts,
                    "slots_in_use": dict(self._slots_in_use.get(key, {})),
                }
                for key, server in self._servers.items()
            ]
        }
        if self.speech is not None:
            described["speech"] = dict(self._speech_view) or {
                "pid": self.speech.pid,
                "ready": self.speech.ready,
            }
        return described

    async def stop(self) -> None:
        """Stop the servers started for the jobs (at once: an exit by a re-raised SIGTERM would
        skip the atexit hook that stops them otherwise)."""
        servers = list(self._servers.values())
        self._servers.clear()
        self._slots_in_use.clear()
        speech, self.speech = self.speech, None
        if self._speech_watch is not None:
            self._speech_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._speech_watch
            self._speech_watch = None
        for server in servers:
            await asyncio.to_thread(server.stop)
        if speech is not None:
            await asyncio.to_thread(speech.stop)


async def _warm_slots(agent: AgentConfig, server: LlamaServer) -> None:
    """Put the agent's system prompt and tools in every slot's cache, once for the node: a job's
    call then pays only for its own words on whichever slot it is given."""
    from voxline.conversation.prompt import build_system_prompt
    from voxline.conversation.tools import ToolRegistry
    from voxline.engines.llama_server import LlamaServerLLM

    tools = ToolRegistry(agent).specs()
    llm = LlamaServerLLM(server, agent.llm.model, temperature=agent.llm.temperature, timeout_s=WARM_UP_S)
    try:
        await llm.warm_up(build_system_prompt(agent, tools), tools)
    finally:
        await llm.aclose()


class ServiceLease:
    """One call's share of the node's services: held for the call, released once."""

    def __init__(self, owner: NodeServices, agent: AgentConfig) -> None:
        self.owner = owner
        self.agent = agent
        self.slot: int | None = None
        self._released = False

    async def services(self) -> dict[str, Any]:
        await self.owner.for_agent(self.agent)
        self.slot = self.owner._take_slot(self.agent)
        return self.owner.shared(self.agent, self.slot or 0)

    def release(self) -> None:
        if not self._released and self.slot is not None:
            self._released = True
            self.owner._release_slot(self.agent, self.slot)
