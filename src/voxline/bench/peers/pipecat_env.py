"""Pipecat in its own virtual environment, outside the repository, for `voxline bench --peer pipecat`.

Pipecat and voxline pin different versions of shared packages, so the peer never shares voxline's
environment. The environment lives in `$VOXLINE_PEERS_DIR/pipecat/venv` (default
`~/.cache/voxline/peers/pipecat/venv`) and is made once: a stamp file records what was installed, and
a later call with the same requirements returns at once.

Install (or check) it from a shell, e.g. in setup:  python -m voxline.bench.peers.pipecat_env
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PIPECAT_VERSION = "1.14.0"
REQUIREMENTS = (
    # whisper: faster-whisper; piper: piper-tts; websocket: FastAPI. Silero VAD and the Smart Turn v3
    # ONNX model ship in the base wheel and run on onnxruntime (no torch).
    f"pipecat-ai[whisper,piper,websocket]=={PIPECAT_VERSION}",
    "uvicorn>=0.32,<1",
)
LLAMA_SERVER_MODULES = {"sse_starlette": "sse-starlette", "starlette_context": "starlette-context",
                        "pydantic_settings": "pydantic-settings"}  # fmt: skip
"""What llama-cpp-python's OpenAI-compatible server (its [server] extra) needs beyond voxline's deps.
The server runs on voxline's own llama-cpp-python build, so the peer's LLM is the same library."""
STAMP = "voxline-peer.json"
BOT_SCRIPT = Path(__file__).with_name("pipecat_bot.py")


class PeerInstallError(RuntimeError):
    """The peer's environment could not be made (pip failed, or no network to PyPI)."""


def peers_dir() -> Path:
    explicit = os.environ.get("VOXLINE_PEERS_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "voxline" / "peers"


@dataclass(frozen=True)
class PipecatEnv:
    root: Path

    @classmethod
    def default(cls) -> PipecatEnv:
        return cls(peers_dir() / "pipecat")

    @property
    def venv(self) -> Path:
        return self.root / "venv"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def _stamp(self) -> Path:
        return self.venv / STAMP

    def is_current(self) -> bool:
        """Installed with exactly today's requirements (and still there)."""
        try:
            stamp = json.loads(self._stamp().read_text())
        except (OSError, ValueError):
            return False
        return self.python.exists() and stamp.get("requirements") == list(REQUIREMENTS)

    def ensure(self) -> Path:
        """Make the environment if it is missing or stale; returns its python. Idempotent."""
        if self.is_current():
            return self.python
        started = time.monotonic()
        _say(f"installing Pipecat {PIPECAT_VERSION} into {self.venv} (once; a few minutes)")
        if not self.python.exists():
            self.venv.parent.mkdir(parents=True, exist_ok=True)
            _run([_base_python(), "-m", "venv", str(self.venv)])
        _run([str(self.python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
              *REQUIREMENTS])  # fmt: skip
        self._stamp().write_text(json.dumps({"requirements": list(REQUIREMENTS)}) + "\n")
        _say(f"Pipecat ready in {time.monotonic() - started:.0f} s")
        return self.python


def missing_llama_server_packages() -> list[str]:
    return [pkg for module, pkg in LLAMA_SERVER_MODULES.items() if importlib.util.find_spec(module) is None]


def ensure_llama_server() -> None:
    """The [server] extra's small pure-Python deps, into this (voxline's) environment, if missing.

    They are declared in voxline's `bench-peer` extra; this only covers an environment made without it.
    """
    missing = missing_llama_server_packages()
    if missing:
        _say(f"installing llama-cpp-python's server dependencies: {', '.join(missing)}")
        _run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *missing])
        importlib.invalidate_caches()


def _base_python() -> str:
    """The interpreter voxline's venv was made from (a venv of a venv would chain to it anyway)."""
    return str(Path(sys.base_prefix) / "bin" / "python3")


def _run(args: list[str]) -> None:
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise PeerInstallError(f"{' '.join(args[:4])} … failed ({result.returncode}):\n{tail}")


def _say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Install (or check) the Pipecat peer environment.")
    parser.parse_args(argv)
    env = PipecatEnv.default()
    try:
        ensure_llama_server()
        python = env.ensure()
    except PeerInstallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(python)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
