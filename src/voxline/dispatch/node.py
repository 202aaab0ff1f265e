"""A node that serves several agents: their files, their engines (built once per distinct model set),
and the runner that hands each call to the agent dispatch chose.

`voxline serve --node node.yaml` loads a node file; `voxline serve AGENT` is a one-agent node whose
every call goes to that agent (`NodeAgents.single`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from voxline.agent.config import AgentConfig, AgentConfigError, load_agent
from voxline.calls.runner import CallContext, CallRunner, EventSink
from voxline.conversation.events import CallFailed, to_wire
from voxline.conversation.metrics import CallReport
from voxline.dispatch.metadata import CallMetadata
from voxline.dispatch.rules import Dispatcher, UnknownAgent
from voxline.engines.base import Engines
from voxline.node.config import NodeConfig
from voxline.transports.base import CallIO

log = logging.getLogger(__name__)

MODEL_SECTIONS = ("vad", "stt", "llm", "voice", "fallback_voice", "voices")
"""The agent file's sections that decide which models its engines load."""


class NodeConfigError(ValueError):
    """The node file is unreadable or invalid; the message names the file and the field."""


def model_set(agent: AgentConfig) -> str:
    """The models (and the model-shaping settings) an agent's engines hold: agents with the same
    one share one `Engines` (its line audio holds each agent's fixed lines). What each call passes
    to the models itself (`max_tokens`, `history_tokens`, the VAD's settings) is left out, and so
    is the in-process LLM's temperature: agents differing only in it share the loaded model
    (`LlamaCppLLM.with_temperature`)."""
    shape: dict[str, Any] = agent.model_dump(mode="json", include=set(MODEL_SECTIONS))
    for per_call in ("max_tokens", "history_tokens"):
        del shape["llm"][per_call]
    if agent.media_only:
        return json.dumps({"mode": agent.mode})  # no models: every echo agent shares one (empty) set
    shape["vad"] = agent.vad.engine  # its threshold and padding are the call's (turns, listener)
    if agent.llm.engine == "llama_cpp":
        del shape["llm"]["temperature"]
    # whisper's decoder prompts and the language identifier follow the agent's languages
    shape["languages"] = [agent.languages.mode, list(agent.spoken_languages)]
    return json.dumps(shape, sort_keys=True)


def load_node_file(path: str | Path) -> tuple[NodeConfig, dict[str, AgentConfig]]:
    """The node file and its agents (files named relative to the node file), each validated."""
    file = Path(path)
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise NodeConfigError(f"node file not found: {file}") from exc
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise NodeConfigError(f"cannot read node file {file}: {exc}") from exc
    if not isinstance(raw, dict):
        raise NodeConfigError(f"{file}: the top level must be a mapping of fields")
    try:
        config = NodeConfig.model_validate(raw)
    except ValidationError as exc:
        problems = [f"  {'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']}" for e in exc.errors()]
        raise NodeConfigError(f"{file}: invalid node file\n" + "\n".join(problems)) from exc
    folder = file.resolve().parent
    agents: dict[str, AgentConfig] = {}
    for name, agent_path in config.agents.items():
        try:
            agents[name] = load_agent(folder / agent_path)
        except AgentConfigError as exc:
            raise NodeConfigError(f"{file}: agent {name!r}: {exc}") from exc
    return config, agents


@dataclass
class NodeAgents:
    """The node's agents by name (the first is the main one), its dispatch and, once loaded, engines."""

    agents: dict[str, AgentConfig]
    dispatcher: Dispatcher
    config: NodeConfig = field(default_factory=NodeConfig)
    engines: dict[str, Engines] = field(default_factory=dict)
    """Agent name → its engines (shared by agents with the same model set); filled by `load`."""

    @classmethod
    def single(cls, agent: AgentConfig, name: str = "agent", config: NodeConfig | None = None) -> NodeAgents:
        return cls({name: agent}, Dispatcher.single(name), config if config is not None else NodeConfig())

    @classmethod
    def from_file(cls, path: str | Path, agent: AgentConfig | None = None, name: str = "agent") -> NodeAgents:
        """The node file's agents; a file that names none (only workers, load, drain) serves `agent`."""
        config, agents = load_node_file(path)
        if not agents:
            if agent is None:
                raise NodeConfigError(f"{path}: `agents:` names no agent (name: path/to/agent.yaml)")
            return cls.single(agent, name, config)
        return cls(agents, Dispatcher.of(agents, config.dispatch), config)

    @property
    def main(self) -> AgentConfig:
        return next(iter(self.agents.values()))

    def groups(self) -> list[list[str]]:
        """The agents by model set, in file order: one `Engines` per group."""
        by_set: dict[str, list[str]] = {}
        for name, agent in self.agents.items():
            by_set.setdefault(model_set(agent), []).append(name)
        return list(by_set.values())

    def load(self, build: Any = None) -> Engines:
        """Build each model set's engines once (blocking: run it in the model pool); returns the
        main agent's. `build(agent)` defaults to `factory.build_engines`."""
        if build is None:
            from voxline.engines import factory

            build = factory.build_engines
        for names in self.groups():
            started = time.monotonic()
            first = self.agents[names[0]]
            if first.media_only:  # an echo agent: nothing to load (its group is echo agents alone)
                for name in names:
                    self.engines[name] = Engines.none()
                continue
            engines = build(first)
            for name in names:
                self.engines[name] = _at_temperature(engines, first, self.agents[name])
            log.info("models for agents %s loaded in %.1f s", ", ".join(names), time.monotonic() - started)
        return self.engines[next(iter(self.agents))]

    async def warm(self) -> None:
        """Warm every agent on its engines: its prompt into the LLM's cache, its fixed lines rendered."""
        from voxline.runtime import warm_engines

        for name, agent in self.agents.items():
            if not agent.media_only:
                await warm_engines(agent, self.engines[name])

    def route(self, metadata: CallMetadata) -> CallMetadata:
        """The node's dispatch (raises UnknownAgent, a ValueError, when no agent takes the call)."""
        return self.dispatcher.route(metadata)

    def runner(self, template: CallRunner) -> NodeRunner:
        """A runner that dispatches each call, built like `template` (its recorder, metrics, labels,
        conversation factory...) with one CallRunner per agent."""
        runners = {
            name: _runner_like(template, agent, self.engines.get(name, template.engines))
            for name, agent in self.agents.items()
        }
        return NodeRunner(self, runners, template)


def _at_temperature(engines: Engines, built_for: AgentConfig, agent: AgentConfig) -> Engines:
    """`engines` for `agent`: the same, with its own LLM temperature on the shared model if that differs."""
    temperature = agent.llm.temperature
    if temperature == built_for.llm.temperature:
        return engines
    with_temperature = getattr(engines.llm, "with_temperature", None)
    if with_temperature is None:
        log.warning(
            "agent %r runs at %r's LLM temperature: its LLM cannot change it", agent.name, built_for.name
        )
        return engines
    return replace(engines, llm=with_temperature(temperature))


def _runner_like(template: CallRunner, agent: AgentConfig, engines: Engines) -> CallRunner:
    return CallRunner(
        agent, engines, template.recorder, make_conversation=template.make_conversation,
        clock=template.clock, observer=template.observer, labels=template.labels,
        contain_crashes=template.contain_crashes, webhooks=template.webhooks,
    )  # fmt: skip


class NodeRunner(CallRunner):
    """The CallRunner of a node: each call goes to the runner of the agent dispatch chose for it; a
    call no agent takes ends at once, its reason sent to the client (WebSocket CallFailed)."""

    def __init__(self, node: NodeAgents, runners: Mapping[str, CallRunner], template: CallRunner) -> None:
        main = next(iter(runners.values()))
        super().__init__(
            main.agent, main.engines, template.recorder, make_conversation=template.make_conversation,
            clock=template.clock, observer=template.observer, labels=template.labels,
            contain_crashes=template.contain_crashes, webhooks=template.webhooks,
        )  # fmt: skip
        self.node = node
        self.runners = dict(runners)

    def request_goodbye(self, reason: str = "node_shutdown") -> int:
        """Every agent's conversations are asked (each agent's runner keeps its own)."""
        return sum(runner.request_goodbye(reason) for runner in self.runners.values())

    def runner_for(self, context: CallContext) -> tuple[CallRunner, CallContext]:
        """The chosen agent's runner and the context with the choice in its metadata."""
        metadata = context.metadata
        if not metadata.transport:
            metadata = replace(metadata, transport=context.transport)
        routed = self.node.route(metadata)
        assert routed.agent is not None
        return self.runners[routed.agent], replace(context, metadata=routed)

    async def converse(
        self, call: CallIO, context: CallContext, on_event: EventSink | None = None
    ) -> CallReport:
        if context.metadata == CallMetadata() and call.metadata is not None:
            context = replace(context, metadata=call.metadata)
        try:
            runner, context = self.runner_for(context)
        except UnknownAgent as exc:
            log.warning("%s call refused: %s", context.transport, exc.reason)
            if on_event is not None:
                on_event(to_wire(CallFailed(exc.reason)))
            report = CallReport(call.call_id, self.agent.name, context.transport, time.time())
            report.end_reason = "unknown_agent"
            report.metadata = context.metadata.as_dict()
            return report
        log.info("%s call for agent %s", context.transport, context.metadata.agent)
        return await runner.converse(call, context, on_event)
