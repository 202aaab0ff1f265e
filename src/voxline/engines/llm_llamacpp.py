"""An in-process LLM with llama-cpp-python (GGUF, CPU or GPU build), streamed token by token.

Generation runs in a worker thread (llama.cpp releases the GIL) and hands each piece to the event
loop with `call_soon_threadsafe`. A stop flag is checked after every token, so closing the async
iterator (barge-in) stops the model within one token. One generation runs at a time per model.

The prompt is built by `chatml` so its prefix is byte-stable; llama-cpp-python then only evaluates
the tokens after the longest common prefix with the previous prompt (the warm system prompt).

Speech streams unconstrained (a grammar would slow every token). The moment the model opens a tool
call (`<tool_call>`, or a reply that starts as a bare JSON object), the free text stops and the call
is written under a grammar built from the tools' JSON schemas: a small model can then only produce a
well-formed call to a tool that exists, with arguments its schema allows (a department from the
enum, not an invented one). The constrained part continues the same prompt, so it reuses the cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import threading
from collections.abc import AsyncIterator, Generator, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from voxline.engines._threaded import iterate_in_thread, run_model
from voxline.engines.base import EngineError, LLMDelta, Message, ModelNotInstalledError, ToolSpec
from voxline.engines.chatml import STOP_STRINGS, render_prompt, render_system_prefix
from voxline.engines.toolcalls import CLOSE_TAG, OPEN_TAG, ToolCallParser

FinishReason = Literal["stop", "length", "tool_calls"]
CALL_MAX_TOKENS = 96
"""A tool call's JSON under the grammar: name and a few arguments."""


def tool_call_schema(tools: Sequence[ToolSpec]) -> dict[str, Any]:
    """JSON schema of one call: `{"name": <one of the tools>, "arguments": <its parameters>}`."""
    options = [
        {
            "type": "object",
            "properties": {"name": {"const": t.name}, "arguments": _closed(t.parameters)},
            "required": ["name", "arguments"],
        }
        for t in tools
    ]
    return options[0] if len(options) == 1 else {"oneOf": options}


def _closed(parameters: dict[str, Any]) -> dict[str, Any]:
    """The parameters as an object schema (an empty one for a tool without parameters)."""
    schema = dict(parameters or {})
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    return schema


def _starts_bare_json(text: str) -> bool:
    return text.lstrip().startswith(("{", "```"))


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


def with_extra_buffers(defaults: Any, wanted: bool) -> Any:
    """llama.cpp's model-defaults function, with `use_extra_bufts` set to `wanted`."""

    def patched() -> Any:
        params = defaults()
        params.use_extra_bufts = wanted
        return params

    return patched


@contextlib.contextmanager
def _model_params(use_extra_bufts: bool) -> Iterator[None]:
    """`Llama()` takes no `use_extra_bufts`; it reads the library's defaults, so set them for one load."""
    import llama_cpp.llama_cpp as lib

    with _LOAD_LOCK:
        original = lib.llama_model_default_params
        lib.llama_model_default_params = with_extra_buffers(original, use_extra_bufts)
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
        constrain_tool_calls: bool = True,
    ) -> None:
        self.name = f"llama_cpp:{Path(str(model)).name}"
        self._llama = _load_llama(model, n_ctx, n_threads, n_gpu_layers)
        self._temperature = temperature
        self._lock = asyncio.Lock()
        self._tools: tuple[ToolSpec, ...] = ()
        self._grammars: dict[str, Any] = {}
        self._constrain = constrain_tool_calls

    @property
    def busy(self) -> bool:
        """Generating for someone (one generation at a time per model): callers preparing work
        speculatively leave it to those who need it now."""
        return self._lock.locked()

    def with_temperature(self, temperature: float) -> LlamaCppLLM:
        """This loaded model sampled at another temperature: agents on one node that differ only
        in it share the weights, the context (its KV cache) and the one-at-a-time lock."""
        other = copy.copy(self)
        other._temperature = temperature
        return other

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
        # the tools are handed on only to constrain a call the model opens
        constrained = tuple(tools) if self._constrain else ()
        return self._stream(render_prompt(messages, tools), max_tokens, constrained)

    async def _stream(
        self, prompt: str, max_tokens: int, tools: tuple[ToolSpec, ...] = ()
    ) -> AsyncIterator[LLMDelta]:
        async with self._lock:
            items = iterate_in_thread(lambda stop: self._generate(prompt, max_tokens, stop, tools))
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
        self, prompt: str, max_tokens: int, stop: threading.Event, tools: tuple[ToolSpec, ...] = ()
    ) -> Iterator[str | tuple[str, FinishReason]]:
        """The reply's text; with tools, a tool call it opens is finished under the tools' grammar."""
        written = ""
        held = ""  # text that may be the start of `<tool_call>`, not yet handed on
        free = self._complete(prompt, max_tokens, stop)
        call_prompt: str | None = None
        try:
            for item in free:
                if isinstance(item, tuple):
                    if held:
                        yield held
                    yield item
                    return
                if not tools:
                    yield item
                    continue
                written += item
                held += item
                if _starts_bare_json(written):
                    # a call without its tags: write it again, properly, under the grammar
                    call_prompt = prompt + f"{OPEN_TAG}\n"
                    break
                at = held.find(OPEN_TAG)
                if at >= 0:
                    if held[:at]:
                        yield held[:at]
                    call_prompt = prompt + written[: len(written) - len(held) + at] + f"{OPEN_TAG}\n"
                    break
                keep = _open_tag_prefix(held)
                if len(held) > keep:
                    yield held[: len(held) - keep]
                    held = held[len(held) - keep :]
            else:
                if held:
                    yield held
        finally:
            free.close()  # the free generation ends before the constrained one starts
        if call_prompt is not None:
            yield from self._constrained_call(call_prompt, stop, tools)

    def _constrained_call(
        self, prompt: str, stop: threading.Event, tools: tuple[ToolSpec, ...]
    ) -> Iterator[str | tuple[str, FinishReason]]:
        call = ""
        finish: FinishReason = "stop"
        for item in self._complete(prompt, CALL_MAX_TOKENS, stop, grammar=self._grammar(tools)):
            if isinstance(item, tuple):
                finish = item[1]
            else:
                call += item
        yield f"{OPEN_TAG}\n{call.strip()}\n{CLOSE_TAG}"
        yield ("finish", finish)

    def _grammar(self, tools: tuple[ToolSpec, ...]) -> Any:
        schema = json.dumps(tool_call_schema(tools), sort_keys=True)
        if schema not in self._grammars:
            from llama_cpp.llama_grammar import LlamaGrammar

            self._grammars[schema] = LlamaGrammar.from_json_schema(schema, verbose=False)
        return self._grammars[schema]

    def _complete(
        self, prompt: str, max_tokens: int, stop: threading.Event, grammar: Any = None
    ) -> Generator[str | tuple[str, FinishReason], None, None]:
        chunks: Iterator[dict[str, Any]] = self._llama.create_completion(
            prompt,
            max_tokens=max_tokens,
            temperature=self._temperature,
            stop=list(STOP_STRINGS),
            stream=True,
            grammar=grammar,
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
            close = getattr(chunks, "close", None)  # llama-cpp's iterator: a generator has close()
            if close is not None:
                close()


def _open_tag_prefix(text: str) -> int:
    """Length of the longest suffix of `text` that could begin `<tool_call>`."""
    for size in range(min(len(OPEN_TAG) - 1, len(text)), 0, -1):
        if text.endswith(OPEN_TAG[:size]):
            return size
    return 0
