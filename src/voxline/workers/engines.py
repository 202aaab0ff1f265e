"""The engines a job runs its call on: VAD of its own, the rest from the node's shared services.

`job_engines` is the one place a job builds them. When the node runs a speech server
(`services["speech"]`, see NodeServices), whisper, Piper and Kokoro are its clients
(`voxline.inference.client.remote_engines`): the job loads no speech model, so it warms in about the
time its imports and VAD take and holds only their memory. Without one (a node whose agents use no
served model, or a pool built without it) STT and TTS are loaded in the job through the ordinary
factory, as inline.

The LLM: with `llm.engine: llama_server` the supervisor runs the node's one llama-server and hands
each call its URL, its key (over the channel, never argv or env) and a slot; `SlotLLM` pins every
request of the call to that slot, so the call finds its own history cached turn after turn (the
in-process `SlotRouter` cannot see the other jobs' calls). An `openai` LLM is remote already;
`llama_cpp` loads the GGUF in the job (memory-mapped: the weights' pages are shared between jobs).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from voxline.agent.config import AgentConfig
from voxline.engines import factory
from voxline.engines.base import LLM, VAD, Engines, LLMDelta, Message, ToolSpec
from voxline.engines.llm_openai import OpenAIChatLLM

Services = dict[str, Any]
"""What the supervisor shares with a job: {"llm": {"url", "key", "slot"}, "speech": {...}}."""


class SlotLLM(OpenAIChatLLM):
    """A job's client of the node's llama-server, every request of its call on one slot."""

    def __init__(
        self, base_url: str, model: str, *, api_key: str | None, slot: int, temperature: float = 0.3
    ) -> None:
        super().__init__(base_url, model, api_key=api_key, temperature=temperature)
        self.name = f"llama-server:{model}"
        self.slot = slot
        """The server slot of the job's call (set again at each assignment)."""

    async def warm_up(self, system_prompt: str, tools: Sequence[ToolSpec] = ()) -> None:
        """Nothing to do: the supervisor put the prompt in every slot when it started the server
        (NodeServices), once for the node rather than once per job."""

    def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec] = (), max_tokens: int = 64
    ) -> AsyncIterator[LLMDelta]:
        body = self._body(messages, tools, max_tokens)
        body.update(id_slot=self.slot, cache_prompt=True)
        return self._stream(body)


def _uses_llm_service(agent: AgentConfig, services: Services) -> bool:
    return agent.llm.engine == "llama_server" and isinstance(services.get("llm"), dict)


async def job_engines(agent: AgentConfig, services: Services, vad: VAD | None = None) -> Engines:
    """The call's engines in the job: on the node's speech server when the services name one
    (services["speech"]), else loaded here."""
    speech = services.get("speech")
    if isinstance(speech, dict):
        return await _remote_engines(agent, services, speech, vad)
    return await asyncio.to_thread(_local_engines, agent, services, vad)


async def _remote_engines(
    agent: AgentConfig, services: Services, speech: dict[str, Any], vad: VAD | None
) -> Engines:
    """STT and model voices as clients of the node's speech server; VAD and the LLM in the job."""
    from voxline.inference.client import remote_engines
    from voxline.inference.protocol import SpeechEndpoint

    if vad is None:
        vad = await asyncio.to_thread(silero_vad)
    llm_service = services.get("llm") if _uses_llm_service(agent, services) else None
    llm: LLM
    if llm_service is not None:
        llm = _slot_llm(agent, llm_service)
    else:  # an OpenAI-compatible server, or llama_cpp loading the GGUF here (blocking)
        llm = await asyncio.to_thread(factory.build_llm, agent)
    return await remote_engines(agent, SpeechEndpoint.from_dict(speech), vad=vad, llm=llm)


def silero_vad() -> VAD:
    from voxline.engines.catalog import ModelCatalog
    from voxline.engines.vad_silero import SileroVAD

    return SileroVAD(ModelCatalog().resolve("silero-vad", "vad"))


def _slot_llm(agent: AgentConfig, llm_service: dict[str, Any]) -> SlotLLM:
    return SlotLLM(
        str(llm_service["url"]), agent.llm.model, api_key=llm_service.get("key"),
        slot=int(llm_service.get("slot", 0)), temperature=agent.llm.temperature,
    )  # fmt: skip


def _local_engines(agent: AgentConfig, services: Services, vad: VAD | None) -> Engines:
    """STT and TTS loaded in the job through the ordinary factory (blocking, seconds)."""
    llm_service = services.get("llm") if _uses_llm_service(agent, services) else None
    build_as = agent
    if llm_service is not None:
        # the factory must not start a llama-server of its own in the job: build a remote client
        remote = agent.llm.model_copy(update={"engine": "openai", "base_url": llm_service["url"]})
        build_as = agent.model_copy(update={"llm": remote})
    engines = factory.build_engines(build_as)
    if vad is not None:
        engines.vad = vad
    if llm_service is not None:
        engines.llm = _slot_llm(agent, llm_service)
    return engines


def assign_services(engines: Engines, services: Services) -> None:
    """Point preloaded engines at this call's share of the services (its LLM slot)."""
    llm = services.get("llm")
    if isinstance(engines.llm, SlotLLM) and isinstance(llm, dict):
        engines.llm.slot = int(llm.get("slot", 0))
