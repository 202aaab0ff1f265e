"""llama.cpp's own `llama-server`, started and supervised by voxline, shared by every call of a node.

One in-process llama.cpp context serves one sequence at a time: two calls whose turns overlap wait for
each other and evict each other's cached prompt, so every turn re-reads its whole history. The server
keeps one KV slot per concurrent conversation (`--parallel`), batches their decoding together, and
keeps each slot's prompt cached. `LlamaServerLLM` is the existing OpenAI-compatible client pointed at
it, plus slot affinity: each request is pinned (`id_slot`) to the slot that already holds the longest
prefix of its messages, so a conversation finds its own history cached turn after turn.

The server listens on loopback on a free port with a per-process API key (passed through the
environment, never logged). A watchdog thread restarts it when it dies; the generation in flight then
fails with EngineError (the conversation says its fallback line) and the next request waits for the
restarted server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voxline.engines.base import EngineError, LLMDelta, Message, ToolSpec
from voxline.engines.children import popen_tied
from voxline.engines.llm_openai import OpenAIChatLLM
from voxline.engines.supervised import SupervisedProcess

log = logging.getLogger(__name__)

SETUP_HINT = "run `scripts/setup.sh` (or `scripts/build_llama_server.sh`) to build it"


def default_binary() -> Path:
    """Where scripts/build_llama_server.sh installs the server (VOXLINE_LLAMA_SERVER overrides)."""
    override = os.environ.get("VOXLINE_LLAMA_SERVER")
    if override:
        return Path(override)
    cache = Path(os.environ.get("VOXLINE_CACHE", Path.home() / ".cache" / "voxline"))
    return cache / "bin" / "llama-server"


def find_binary(binary: Path | None = None) -> Path:
    path = binary or default_binary()
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise EngineError(f"llama-server is not built ({path} missing): {SETUP_HINT}")
    return path


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaServer(SupervisedProcess):
    """A supervised `llama-server` process: start, wait until healthy, restart when it dies, stop.

    Blocking methods (start, stop, wait_ready) belong off the event loop or at startup."""

    name = "llama-server"

    def __init__(
        self,
        model: Path,
        *,
        binary: Path | None = None,
        parallel: int = 2,
        ctx_per_slot: int = 2048,
        threads: int = 2,
        extra_buffers: bool | None = None,
        startup_timeout_s: float = 120.0,
    ) -> None:
        from voxline.engines.llm_llamacpp import extra_buffers_wanted

        self.binary = find_binary(binary)
        self.model = model
        self.parallel = parallel
        self.ctx_per_slot = ctx_per_slot
        self.threads = threads
        self.extra_buffers = extra_buffers_wanted() if extra_buffers is None else extra_buffers
        self.api_key = secrets.token_urlsafe(24)
        self.port = free_loopback_port()
        super().__init__(
            startup_timeout_s=startup_timeout_s,
            log_path=Path(tempfile.gettempdir()) / f"voxline-llama-server-{os.getpid()}.log",
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def confirm_health(self) -> bool:
        """After a failed request: is the server still answering? If not, it is marked not ready
        at once, so the next request waits for the watchdog's restart instead of failing too."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        self._ready.clear()
        return False

    def command(self) -> list[str]:
        args = [
            str(self.binary),
            "--model", str(self.model),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--parallel", str(self.parallel),
            # one context per slot: a slot holds a whole conversation, as the in-process engine does
            "--ctx-size", str(self.ctx_per_slot * self.parallel),
            "--no-kv-unified",
            "--cont-batching",
            "--threads", str(self.threads),
            "--threads-batch", str(self.threads),
            # wait for work asleep, not spinning: on a node whose STT and TTS share the cores, spinning
            # threads starve them and each other (measured: 2 calls' first sentence 7–10 s with the
            # default polling)
            "--poll", "0",
            # reuse cached chunks after history trimming drops old turns from the middle
            "--cache-reuse", "64",
            # evicted slot prompts are kept in host memory; a little is plenty for a 0.5B model's KV
            "--cache-ram", "256",
            # llama-server turns flash attention on by default ("auto"), the in-process engine does
            # not; on this CPU it made the first token 2.5x slower (489 vs 191 ms p50, bank agent)
            "--flash-attn", "off",
            "--jinja",
            "--no-webui",
        ]  # fmt: skip
        if not self.extra_buffers:
            args.append("--no-repack")  # AMX repacking crashes here: see llm_llamacpp.extra_buffers_wanted
        return args

    def _spawn(self) -> None:
        env = dict(os.environ, LLAMA_API_KEY=self.api_key)
        with self._lock, open(self._log_path, "ab") as logfile:
            self._proc = popen_tied(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=logfile,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # a Ctrl-C in the terminal goes to voxline, which stops it
            )
        log.info("llama-server starting on 127.0.0.1:%d (pid %d)", self.port, self._proc.pid)

    def _serving(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False  # not listening yet, or 503 while the model loads

    def _after_failed_restart(self) -> None:
        self.port = free_loopback_port()  # the old port may be taken by now

    def _secret(self) -> str:
        return self.api_key


# ---------------------------------------------------------------- slot affinity


def _message_key(message: Message) -> str:
    calls = [(c.name, json.dumps(c.arguments, sort_keys=True)) for c in message.tool_calls or ()]
    return json.dumps([message.role, message.content, calls, message.tool_call_id])


@dataclass
class _Slot:
    index: int
    keys: tuple[str, ...] = ()
    in_flight: int = 0
    last_used: float = 0.0
    timings: dict[str, Any] = field(default_factory=dict)


class SlotRouter:
    """Chooses the server slot for a request: the one whose last prompt shares the longest prefix of
    messages with it (then the most messages, for history trimmed at the front), idle slots first,
    then the least recently used. Pinning keeps two conversations from trading slots, which would
    make each re-read its whole history."""

    def __init__(self, slots: int) -> None:
        self.slots = [_Slot(i) for i in range(slots)]

    def acquire(self, messages: Sequence[Message]) -> _Slot:
        keys = tuple(_message_key(m) for m in messages)

        def score(slot: _Slot) -> tuple[int, int, int, float]:
            prefix = 0
            for a, b in zip(slot.keys, keys, strict=False):
                if a != b:
                    break
                prefix += 1
            shared = len(set(slot.keys) & set(keys))
            return (slot.in_flight == 0, prefix, shared, -slot.last_used)

        slot = max(self.slots, key=score)
        slot.keys = keys
        slot.in_flight += 1
        slot.last_used = time.monotonic()
        return slot

    def release(self, slot: _Slot) -> None:
        slot.in_flight -= 1

    def holding(self, messages: Sequence[Message]) -> _Slot | None:
        """The slot whose last request was exactly these messages."""
        keys = tuple(_message_key(m) for m in messages)
        return next((slot for slot in self.slots if slot.keys == keys), None)


class LlamaServerLLM(OpenAIChatLLM):
    """The OpenAI-compatible client on a supervised llama-server, each request pinned to a slot."""

    def __init__(
        self, server: LlamaServer, model_name: str, *, temperature: float = 0.3, timeout_s: float = 30.0
    ) -> None:
        super().__init__(
            server.base_url, model_name, api_key=server.api_key, temperature=temperature, timeout_s=timeout_s
        )
        self.name = f"llama-server:{model_name}"
        self.server = server
        self.router = SlotRouter(server.parallel)

    async def aclose(self) -> None:
        """Closes this client only: the server is the node's, stopped at exit (or by its owner)."""
        await super().aclose()

    async def warm_up(self, system_prompt: str, tools: Sequence[ToolSpec] = ()) -> None:
        """Evaluate the system prompt (and tools) in every slot, so any call's first turn on any slot
        only pays for its own words."""
        messages = [Message("system", system_prompt), Message("user", "Hello")]
        for index in range(len(self.router.slots)):
            body = self._body(messages, tools, 1)
            body.update(id_slot=index, cache_prompt=True)
            async for _ in self._stream(body):
                pass

    def slot_timings(self, index: int) -> dict[str, Any]:
        """The server's timings of the last reply on slot `index` (cache_n: prompt tokens found
        cached, prompt_n: prompt tokens evaluated)."""
        return dict(self.router.slots[index].timings)

    def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec] = (), max_tokens: int = 64
    ) -> AsyncIterator[LLMDelta]:
        return self._pinned(messages, tools, max_tokens)

    async def _pinned(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], max_tokens: int
    ) -> AsyncIterator[LLMDelta]:
        if not self.server.ready and not await asyncio.to_thread(self.server.wait_ready, 15.0):
            raise EngineError("llama-server is restarting and not ready yet")
        self._client.base_url = self.server.base_url  # a restart may have moved it to a new port
        slot = self.router.acquire(messages)
        body = self._body(messages, tools, max_tokens)
        body["id_slot"] = slot.index
        body["cache_prompt"] = True
        body["timings_per_token"] = False
        try:
            async for delta in self._stream(body, on_timings=slot.timings.update):
                yield delta
        except EngineError:
            await asyncio.to_thread(self.server.confirm_health)
            raise
        finally:
            self.router.release(slot)


_servers: dict[tuple[Path, int, int, int], LlamaServer] = {}
_servers_lock = threading.Lock()


def shared_llama_server(model: Path, *, parallel: int, ctx_per_slot: int, threads: int) -> LlamaServer:
    """The process's one server for this model and shape, started on first use: agents on the same
    model share it (models are loaded once per node, not per agent or call)."""
    key = (model.resolve(), parallel, ctx_per_slot, threads)
    with _servers_lock:
        server = _servers.get(key)
        if server is None or server.stopped:
            server = LlamaServer(model, parallel=parallel, ctx_per_slot=ctx_per_slot, threads=threads)
            server.start()
            _servers[key] = server
        return server
