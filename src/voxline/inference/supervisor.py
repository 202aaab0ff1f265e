"""`SpeechServer`: the node's handle on its speech inference process, as `LlamaServer` is on
llama-server: start it, wait until it serves, restart it when it dies, stop it at exit.

The process listens on a Unix socket in a private directory (0700, the socket itself 0600), with no
TCP port at all, and checks a random per-process key on every request; the key reaches it in its
environment, never on its command line or in a log. Jobs get both as a `SpeechEndpoint`. A restart
keeps the path and the key, so a job's clients simply reconnect.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import voxline
from voxline.agent.config import AgentConfig
from voxline.engines.base import EngineError
from voxline.engines.supervised import SupervisedProcess
from voxline.inference import protocol as p
from voxline.inference.models import ModelSpec, node_specs
from voxline.inference.server import DEFAULT_MAX_QUEUE, DEFAULT_TTS_CACHE_MB, DEFAULT_TTS_CONCURRENCY

log = logging.getLogger(__name__)


class SpeechServer(SupervisedProcess):
    """A supervised speech inference process serving `agents`' STT and voices.

    Blocking methods (start, stop, wait_ready) belong off the event loop or at startup."""

    name = "speech server"

    def __init__(
        self,
        agents: Sequence[AgentConfig] = (),
        *,
        specs: Sequence[ModelSpec] | None = None,
        max_queue: int = DEFAULT_MAX_QUEUE,
        tts_concurrency: int = DEFAULT_TTS_CONCURRENCY,
        tts_cache_mb: float = DEFAULT_TTS_CACHE_MB,
        startup_timeout_s: float = 180.0,
    ) -> None:
        self.specs = list(specs) if specs is not None else node_specs(agents)
        self.max_queue = max_queue
        self.tts_concurrency = tts_concurrency
        self.tts_cache_mb = tts_cache_mb
        self._dir = Path(tempfile.mkdtemp(prefix="voxline-speech-"))  # 0700
        self.endpoint = p.SpeechEndpoint(str(self._dir / "speech.sock"), secrets.token_urlsafe(24))
        self._specs_path = self._dir / "specs.json"
        super().__init__(
            startup_timeout_s=startup_timeout_s,
            log_path=Path(tempfile.gettempdir()) / f"voxline-speech-server-{os.getpid()}.log",
        )

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "voxline.inference.server",
            "--socket", self.endpoint.path,
            "--specs", str(self._specs_path),
            "--max-queue", str(self.max_queue),
            "--tts-concurrency", str(self.tts_concurrency),
            "--tts-cache-mb", str(self.tts_cache_mb),
            "--parent-pid", str(os.getpid()),
        ]  # fmt: skip

    def _after_stop(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    def describe(self, timeout_s: float = 5.0) -> dict[str, Any]:
        """The server's models and queue depths (blocking; for /health and tests)."""
        return request_sync(self.endpoint, {"op": "describe"}, timeout_s)

    def _spawn(self) -> None:
        if not self._specs_path.exists():  # first start, or a start after stop() removed the folder
            self._dir.mkdir(mode=0o700, exist_ok=True)
            self._specs_path.write_text(json.dumps([s.to_dict() for s in self.specs]), encoding="utf-8")
        env = dict(os.environ)
        env[p.KEY_ENV] = self.endpoint.key
        # the child runs the same voxline sources as this process, however it was started
        source_root = str(Path(voxline.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [source_root, env.get("PYTHONPATH")]))
        with self._lock, open(self._log_path, "ab") as logfile:
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=logfile,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # a Ctrl-C in the terminal goes to voxline, which stops it
            )
        log.info("speech server starting on %s (pid %d)", self.endpoint.path, self._proc.pid)

    def _serving(self) -> bool:
        try:
            request_sync(self.endpoint, {"op": "ping"}, timeout_s=2.0)
        except (OSError, EngineError):
            return False  # not listening yet: models load before the socket is bound
        return True


def request_sync(endpoint: p.SpeechEndpoint, header: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """One small JSON request with a blocking socket (the supervisor's health checks)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        sock.connect(endpoint.path)
        sock.sendall(p.request_frame({**header, "key": endpoint.key}))
        head = _recv_exactly(sock, 5)
        length, kind = int.from_bytes(head[:4], "big"), head[4]
        if length > p.MAX_REPLY_FRAME_BYTES:
            raise EngineError(f"speech server sent a frame of {length} bytes")
        value = json.loads(_recv_exactly(sock, length))
    if kind == p.ERROR:
        raise EngineError(f"speech server: {value.get('message')}")
    if not isinstance(value, dict):
        raise EngineError("speech server sent a malformed answer")
    return value


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        block = sock.recv(n - len(data))
        if not block:
            raise ConnectionError("the speech server closed the connection")
        data += block
    return data
