"""What a bench result was measured on: the machine, its load, package versions, the git commit."""

from __future__ import annotations

import os
import re
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PACKAGES = {
    "voxline": "voxline",
    "llama_cpp": "llama_cpp_python",
    "faster_whisper": "faster-whisper",
    "onnxruntime": "onnxruntime",
    "piper": "piper-tts",
}


def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    mem = re.search(r"^MemTotal:\s+(\d+) kB", meminfo, re.M)
    return {
        "cpu": model.group(1).strip() if model else "unknown",
        "cores": os.cpu_count() or 0,
        "ram_gib": round(int(mem.group(1)) / 2**20, 1) if mem else 0.0,
        "load_avg_start": load_avg(),
    }


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for key, dist in PACKAGES.items():
        try:
            out[key] = version(dist)
        except PackageNotFoundError:
            out[key] = None
    return out


def git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None
