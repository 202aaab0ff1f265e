"""The node's own settings (`voxline serve --node node.yaml`), beside the agent files it serves.

`voxline serve AGENT` with no node file builds a one-agent node with these defaults. Each section
belongs to one part of the node: `workers` to the job pool (voxline.workers), `load` and
`drain_timeout_s` to admission and draining (voxline.node.load / drain), `agents` and `dispatch`
to choosing an agent per call (voxline.dispatch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkersConfig(_Strict):
    """The job pool: each call's conversation runs in its own process, taken warm from the pool."""

    mode: Literal["process", "inline"] = "inline"
    """`process`: a job process per call; `inline`: every call on the server's own event loop."""
    idle_processes: int = Field(2, ge=0, le=64)
    """Job processes kept warm (imports done, VAD loaded) ahead of demand."""


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


class NodeConfig(_Strict):
    workers: WorkersConfig = WorkersConfig()
    load: LoadConfig = LoadConfig()
    drain_timeout_s: float = Field(300.0, ge=0.0)
    """After SIGTERM / `voxline drain`: how long calls in progress may still run (then they are
    asked to say goodbye, as on a second signal)."""


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
