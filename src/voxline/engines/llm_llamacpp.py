"""An in-process LLM with llama-cpp-python (GGUF, CPU or GPU build), streamed token by token.

Generation runs in a worker thread (llama.cpp releases the GIL) and hands each piece to the event
loop with `call_soon_threadsafe`. A stop flag is checked after every token, so closing the async
iterator (barge-in) stops the model within one token. One generation runs at a time per model.

The prompt is built by `chatml` so its prefix is byte-stable; llama-cpp-python then only evaluates
the tokens after the longest common prefix with the previous prompt (the warm system prompt).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from voxline.engines._threaded import iterate_in_thread, run_model
from voxline.engines.base import EngineError, LLMDelta, Message, ModelNotInstalledError, ToolSpec
from voxline.engines.chatml import STOP_STRINGS, render_prompt, render_system_prefix
from voxline.engines.toolcalls import ToolCallParser

FinishReason = Literal["stop", "length", "tool_calls"]


_LOAD_LOCK = threading.Lock()


def cpu_has_amx(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    try:
        return "amx_tile" in cpuinfo.read_text(errors="replace")
    except OSError:
        return False


def extra_buffers_wanted() -> bool:
    """Whether llama.cpp may repack weights into its extra CPU buffer types (AMX, AVX repack).

    A native build on a CPU that reports AMX segfaulted on the first prompt of more than one token
    (ggml_backend_amx_mul_mat, seen on this project's Xeon VMs), so there they are off unless
    VOXLINE_LLAMA_EXTRA_BUFFERS=1; elsewhere the repacked kernels are faster and stay on."""
    forced = os.environ.get("VOXLINE_LLAMA_EXTRA_BUFFERS")
    if forced in ("0", "1"):
        return forced == "1"
    return not cpu_has_amx()


@contextlib.contextmanager
def _model_params(use_extra_bufts: bool) -> Iterator[None]:
    """`Llama()` takes no `use_extra_bufts`; it reads the library's defaults, so set them for one load."""
    import llama_cpp.llama_cpp as lib

    with _LOAD_LOCK:
        original = lib.llama_model_default_params

        def defaults() -> Any:
            params = original()
            params.use_extra_bufts = use_extra_bufts
            return params

        lib.llama_model_default_params = defaults
        try:
            yield
        finally:
            lib.llama_model_default_params = original


def _load_llama(model: Path | str, n_ctx: int, n_threads: int, n_gpu_layers: int) -> Any:
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise ModelNotInstalledError(
            "the llama_cpp engine needs llama-cpp-python: pip install 'voxline[llm]'"
        ) from exc
    with _model_params(extra_buffers_wanted()):
        return _construct(Llama, model, n_ctx, n_threads, n_gpu_layers)


def _construct(Llama: Any, model: Path | str, n_ctx: int, n_threads: int, n_gpu_layers: int) -> Any:
    common: dict[str, Any] = {
        "n_ctx": n_ctx,
        "n_threads": n_threads,
        "n_threads_batch": n_threads,
        "n_gpu_layers": n_gpu_layers,
        "verbose": False,
    }
    text = str(model)
    if Path(text).expanduser().exists():
        return Llama(model_path=str(Path(text).expanduser()), **common)
    # Online users only: "org/repo:file.gguf" (hub) — never reached for catalog names.
    repo, _, filename = text.partition(":")
    if not filename:
        raise ModelNotInstalledError(
            f"LLM model {text!r} not found; give a .gguf path or 'org/repo:file.gguf'"
        )
    return Llama.from_pretrained(repo_id=repo, filename=filename, **common)


class LlamaCppLLM:
    def __init__(
        self,
        model: Path | str,
        *,
        n_ctx: int = 2048,
        n_threads: int = 2,
        temperature: float = 0.3,
        n_gpu_layers: int = 0,
    ) -> None:
        self.name = f"llama_cpp:{Path(str(model)).name}"
        self._llama = _load_llama(model, n_ctx, n_threads, n_gpu_layers)
        self._temperature = temperature
        self._lock = asyncio.Lock()
        self._tools: tuple[ToolSpec, ...] = ()

    @property
    def busy(self) -> bool:
        """Generating for someone (one generation at a time per model): callers preparing work
        speculatively leave it to those who need it now."""
        return self._lock.locked()

    def count_tokens(self, text: str) -> int:
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    async def warm_up(self, system_prompt: str, tools: Sequence[ToolSpec] = ()) -> None:
        """Put the system prompt (with the tool block the calls will use) in the KV cache."""
        prefix = render_system_prefix(system_prompt, tools or self._tools)
        async with self._lock:
            await run_model(self._evaluate, prefix)

    def _evaluate(self, prompt: str) -> None:
        # One generated token evaluates the whole prompt; the cache then starts with it.
        for _ in self._llama.create_completion(prompt, max_tokens=1, temperature=0.0, stream=True):
            pass

    def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec] = (), max_tokens: int = 64
    ) -> AsyncIterator[LLMDelta]:
        self._tools = tuple(tools)
        return self._stream(render_prompt(messages, tools), max_tokens)

    async def _stream(self, prompt: str, max_tokens: int) -> AsyncIterator[LLMDelta]:
        async with self._lock:
            items = iterate_in_thread(lambda stop: self._generate(prompt, max_tokens, stop))
            parser = ToolCallParser()
            finish: FinishReason = "stop"
            try:
                async for item in items:
                    if isinstance(item, tuple):  # ("finish", reason)
                        finish = item[1]
                        continue
                    for piece in parser.feed(item):
                        yield LLMDelta(text=piece) if isinstance(piece, str) else LLMDelta(tool_call=piece)
                for piece in parser.finish():
                    yield LLMDelta(text=piece) if isinstance(piece, str) else LLMDelta(tool_call=piece)
                yield LLMDelta(finish_reason="tool_calls" if parser.calls else finish)
            except Exception as exc:
                raise EngineError(f"llama.cpp generation failed: {exc}") from exc
            finally:
                # Waits for the thread to notice (within one token), so the next turn's generation
                # never overlaps this one on the same llama context.
                await items.aclose()

    def _generate(
        self, prompt: str, max_tokens: int, stop: threading.Event
    ) -> Iterator[str | tuple[str, FinishReason]]:
        chunks: Iterator[dict[str, Any]] = self._llama.create_completion(
            prompt,
            max_tokens=max_tokens,
            temperature=self._temperature,
            stop=list(STOP_STRINGS),
            stream=True,
        )
        try:
            for chunk in chunks:
                if stop.is_set():
                    break
                choice = chunk["choices"][0]
                if choice.get("text"):
                    yield str(choice["text"])
                if choice.get("finish_reason"):
                    yield ("finish", "length" if choice["finish_reason"] == "length" else "stop")
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
