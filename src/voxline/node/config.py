"""The node's own settings (`voxline serve --node node.yaml`), beside the agent files it serves.

`voxline serve AGENT` with no node file builds a one-agent node with these defaults. Each section
belongs to one part of the node: `workers` to the job pool (voxline.workers), `load` and
`drain_timeout_s` to admission and draining (voxline.node.load / drain), `agents` and `dispatch`
to choosing an agent per call (voxline.dispatch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkersConfig(_Strict):
    """The job pool: each call's conversation runs in its own process, taken warm from the pool."""

    mode: Literal["process", "inline"] = "process"
    """`process` (the default for `voxline serve`): a job process per call, the LLM served by the
    node's llama-server; `inline`: every call on the server's own event loop, models in process."""
    media_calls: Literal["supervisor", "jobs"] = "supervisor"
    """Where a media-only agent's (`mode: echo`) calls run in process mode: on the supervisor's loop
    (no model runtime to crash, so no process to pay for), or each in a job like every other call."""
    idle_processes: int = Field(2, ge=0, le=64)
    """Job processes kept warm (imports done, VAD loaded) ahead of demand."""
    max_jobs: int | None = Field(None, ge=1, le=1024)
    """Job processes at most, idle and in calls together (None: admission alone limits calls)."""
    job_memory_mb: int | None = Field(2048, ge=64)
    """A job's resident memory limit: a warning at 80 %, and above it only that call is ended
    (`memory_limit`). None: not watched."""
    spawn_timeout_s: float = Field(120.0, gt=0.0, le=600.0)
    """How long a job may take to warm up (imports, VAD, the preloaded agent's engines)."""


class LoadConfig(_Strict):
    """How busy the node may get before it refuses new calls (voxline.node.load)."""

    threshold: float = Field(0.9, gt=0.0, le=1.0)
    """Refuse new calls once the load function reports this much of the node's capacity in use."""
    capacity_calls: int | None = Field(None, ge=1, le=10000)
    """The calls this node holds within its latency target (measure it with `voxline bench`);
    unset: one per usable CPU core."""
    reserved_slot_ttl_s: float = Field(10.0, gt=0.0, le=300.0)
    """A call admitted but not started within this long (no ACK, no UUID) stops holding its slot."""
    load_fnc: str = "voxline.node.load.default_load"
    """Dotted path to `fn(LoadSample) -> float`; `voxline.node.load.calls_load` ignores the CPU."""
    cpu_window_s: float = Field(10.0, ge=1.0, le=300.0)
    """The default load function averages the node's CPU use over this long."""


AGENT_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class SipDispatch(_Strict):
    """SIP: the INVITE's request-URI user (`sip:hindi@node`) or a header names the agent."""

    header: str | None = Field(None, pattern=r"^[A-Za-z0-9-]{1,64}$")
    """A header whose value names the agent (e.g. X-Voxline-Agent, set by a proxy); checked first."""
    users: dict[str, str] = Field(default_factory=dict)
    """Request-URI user (a number, a name) → agent; a user equal to an agent's name needs no entry."""


class AudioSocketDispatch(_Strict):
    """AudioSocket: the port Asterisk connected to, or the call's UUID."""

    ports: dict[int, str] = Field(default_factory=dict)
    """Extra listener port → agent (each gets its own AudioSocket listener; the agents' own
    `telephony.audiosocket.port` keeps taking the default agent's calls)."""
    uuids: dict[str, str] = Field(default_factory=dict)
    """Call UUID (as Asterisk writes it, lower case) → agent; checked before the port."""


class DispatchConfig(_Strict):
    """How each call finds its agent. A call that names an agent the node does not serve is refused
    (SIP 404, WebSocket CallFailed, AudioSocket hung up, ARI hung up); a call that names none gets
    `default`, or is refused the same way when there is no default. A WebSocket start frame names
    its agent in its `agent` field, an ARI call in its Stasis argument `agent=<name>`."""

    default: str | None = None
    """The agent for calls no rule places; unset: such calls are refused."""
    sip: SipDispatch = SipDispatch()
    audiosocket: AudioSocketDispatch = AudioSocketDispatch()


class NodeConfig(_Strict):
    workers: WorkersConfig = WorkersConfig()
    load: LoadConfig = LoadConfig()
    drain_timeout_s: float = Field(300.0, ge=0.0)
    """After SIGTERM / `voxline drain`: how long calls in progress may still run (then they are
    asked to say goodbye, as on a second signal)."""
    agents: dict[str, str] = Field(default_factory=dict)
    """Agent name → agent file (relative to the node file). The first is the node's main agent:
    its `telephony` section sets the node's listeners."""
    dispatch: DispatchConfig = DispatchConfig()

    @model_validator(mode="after")
    def _dispatch_names_agents(self) -> NodeConfig:
        import re

        bad = [name for name in self.agents if not re.match(AGENT_NAME, name)]
        if bad:
            raise ValueError(
                f"agent names are 1-64 of A-Z a-z 0-9 _ . - (starting with a letter or digit): {bad}"
            )
        if not self.agents:
            return self
        d = self.dispatch
        named = {"dispatch.default": [d.default] if d.default else [],
                 "dispatch.sip.users": list(d.sip.users.values()),
                 "dispatch.audiosocket.ports": list(d.audiosocket.ports.values()),
                 "dispatch.audiosocket.uuids": list(d.audiosocket.uuids.values())}  # fmt: skip
        for where, names in named.items():
            unknown = sorted(set(names) - set(self.agents))
            if unknown:
                raise ValueError(f"{where} names {unknown}, not in agents {sorted(self.agents)}")
        return self


def load_node_config(path: Path | None) -> NodeConfig:
    """The node file (YAML), or the defaults with none; raises ValueError naming the problem."""
    if path is None:
        return NodeConfig()
    import yaml
    from pydantic import ValidationError

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read node file {path}: {exc}") from None
    try:
        return NodeConfig.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"node file {path}: {exc}") from None
