"""The node's measured capacity: how many calls `voxline bench --scenarios capacity` found this
machine holds within the latency target, for an agent's models and a worker mode.

The bench records its verdict here; `voxline serve` reads it when the node file does not set
`load.capacity_calls`, so admission on a machine that was measured matches what was measured
(a 2-core machine held no second call within p95 1.5 s: its node admits one) rather than a guess
from the core count. A measurement is keyed by the CPU model, the usable cores, the worker mode and
the agent's model set: a different machine or model falls back to the default.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from voxline.agent.config import AgentConfig
from voxline.node.load import usable_cores


def capacity_file() -> Path:
    explicit = os.environ.get("VOXLINE_CAPACITY_FILE")
    if explicit:
        return Path(explicit)
    cache = Path(os.environ.get("VOXLINE_CACHE", Path.home() / ".cache" / "voxline"))
    return cache / "capacity.json"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return "unknown"


def measurement_key(agent: AgentConfig, mode: str) -> str:
    from voxline.dispatch.node import model_set

    text = json.dumps([_cpu_model(), usable_cores(), mode, model_set(agent)], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record_capacity(agent: AgentConfig, mode: str, holds: int, detail: dict[str, Any]) -> Path:
    """Keep the bench's verdict for `agent` in `mode` on this machine (other entries are kept)."""
    path = capacity_file()
    entries = _read(path)
    entries[measurement_key(agent, mode)] = {
        "holds": holds,
        "agent": agent.name,
        "mode": mode,
        "cpu": _cpu_model(),
        "cores": usable_cores(),
        "measured_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **detail,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries, indent=2, sort_keys=True))
    tmp.replace(path)
    return path


def measured_capacity(agent: AgentConfig, mode: str) -> int | None:
    """Calls this machine was measured to hold for `agent` in `mode` (at least 1: a node that held
    none within the target still takes one call at a time); None when it was never measured."""
    entry = _read(capacity_file()).get(measurement_key(agent, mode))
    if not isinstance(entry, dict) or not isinstance(entry.get("holds"), int):
        return None
    return max(1, int(entry["holds"]))
