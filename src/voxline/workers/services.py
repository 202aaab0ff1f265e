"""What the node shares with its jobs: the llama-server (started here, once) and, per call, a slot.

With `llm.engine: llama_server` the supervisor starts the node's one server for the agent's model
(`shared_llama_server`) and gives each call its URL, its key and a slot of its own: the slot in
fewest calls' use, so calls up to the server's `slots` never share (and evict) a cached prompt.
The key travels in the assignment over the channel only.

Speech (STT/TTS in an inference process) will be added here as "speech" when it lands.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any

from voxline.agent.config import AgentConfig
from voxline.engines.llama_server import LlamaServer

log = logging.getLogger(__name__)

WARM_UP_S = 300.0
"""How long the node's LLM warm-up may take per slot (the whole prompt is evaluated once)."""


def _server_key(agent: AgentConfig) -> tuple[str, int, int, int]:
    llm = agent.llm
    return (llm.model, llm.slots, llm.context_tokens, llm.threads or 2)


class NodeServices:
    """The node's shared engines for its jobs."""

    def __init__(self) -> None:
        self._servers: dict[tuple[str, int, int, int], LlamaServer] = {}
        self._slots_in_use: dict[tuple[str, int, int, int], collections.Counter[int]] = {}

    async def for_agent(self, agent: AgentConfig) -> None:
        """Start what `agent` needs (blocking work in a thread): its llama-server."""
        if agent.llm.engine != "llama_server":
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
        """The services dict a job gets for `agent` (without a started server: none)."""
        server = self._servers.get(_server_key(agent)) if agent.llm.engine == "llama_server" else None
        if server is None:
            return {}
        return {"llm": {"url": server.base_url, "key": server.api_key, "slot": slot}}

    def lease(self, agent: AgentConfig) -> ServiceLease:
        return ServiceLease(self, agent)

    def _take_slot(self, agent: AgentConfig) -> int | None:
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
        return {
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

    async def stop(self) -> None:
        """Stop the servers started for the jobs (at once: an exit by a re-raised SIGTERM would
        skip the atexit hook that stops them otherwise)."""
        servers = list(self._servers.values())
        self._servers.clear()
        self._slots_in_use.clear()
        for server in servers:
            await asyncio.to_thread(server.stop)


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
