"""The node's own settings (`voxline serve --node node.yaml`), beside the agent files it serves.

`voxline serve AGENT` with no node file builds a one-agent node with these defaults. Each section
belongs to one part of the node: `workers` to the job pool (voxline.workers), `load` and
`drain_timeout_s` to admission and draining (voxline.node.load / drain), `agents` and `dispatch`
to choosing an agent per call (voxline.dispatch).
"""

from __future__ import annotations

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
    max_jobs: int | None = Field(None, ge=1, le=1024)
    """Job processes at most, idle and in calls together (None: admission alone limits calls)."""
    job_memory_mb: int | None = Field(2048, ge=64)
    """A job's resident memory limit: a warning at 80 %, and above it only that call is ended
    (`memory_limit`). None: not watched."""
    spawn_timeout_s: float = Field(120.0, gt=0.0, le=600.0)
    """How long a job may take to warm up (imports, VAD, the preloaded agent's engines)."""


class LoadConfig(_Strict):
    """How busy the node may get before it refuses new calls."""

    threshold: float = Field(0.9, gt=0.0, le=1.0)
    """Refuse new calls once the load function reports this much of the node's capacity in use."""


class NodeConfig(_Strict):
    workers: WorkersConfig = WorkersConfig()
    load: LoadConfig = LoadConfig()
    drain_timeout_s: float = Field(300.0, ge=0.0)
    """After SIGTERM / `voxline drain`: how long calls in progress may still run."""
