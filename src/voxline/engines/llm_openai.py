"""A streaming client for OpenAI-compatible chat servers (llama-server, Ollama, vLLM, ...).

Server-sent events from `/chat/completions` become LLMDeltas: text as it arrives, tool calls once
their argument fragments (streamed per index) are complete, and the finish reason. Closing the
iterator closes the HTTP response, which makes the server stop generating.
Servers that leave tool calls in the text (`<tool_call>...`) are handled by the same parser as the
local engine, so no tool-call text is ever spoken.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Literal

import httpx

from voxline.engines._http import openai_client
from voxline.engines.base import EngineError, LLMDelta, Message, ToolCall, ToolSpec
from voxline.engines.toolcalls import ToolCallParser, new_call_id, parse_tool_call


def to_openai_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in messages:
        item: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.role == "assistant" and m.tool_calls:
            item["tool_calls"] = [
                {
                    "id": c.id or new_call_id(),
                    "type": "function",
                    "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
                }
                for c in m.tool_calls
            ]
        if m.role == "tool":
            item["tool_call_id"] = m.tool_call_id
            if m.name:
                item["name"] = m.name
        out.append(item)
    return out


def to_openai_tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
        }
        for t in tools
    ]


class OpenAIChatLLM:
    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        temperature: float = 0.3,
        timeout_s: float = 30.0,
    ) -> None:
        self.name = f"openai:{model}"
        self._model = model
        self._temperature = temperature
        self._client = openai_client(base_url, api_key, timeout_s)

    async def aclose(self) -> None:
        await self._client.aclose()

    @property
    def busy(self) -> bool:
        """Never: the server schedules (and may batch) concurrent requests itself."""
        return False

    def count_tokens(self, text: str) -> int:
        # The server's tokenizer is not reachable cheaply; ~4 characters a token is close enough for
        # history budgeting.
        return max(1, len(text) // 4)

    async def warm_up(self, system_prompt: str, tools: Sequence[ToolSpec] = ()) -> None:
        """One tiny request so the server loads the model and caches the system prompt."""
        messages = [Message("system", system_prompt), Message("user", "Hello")]
        async for _ in self.stream(messages, tools, max_tokens=1):
            pass

    def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec] = (), max_tokens: int = 64
    ) -> AsyncIterator[LLMDelta]:
        return self._stream(self._body(messages, tools, max_tokens))

    def _body(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], max_tokens: int
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self._model,
            "messages": to_openai_messages(messages),
            "max_tokens": max_tokens,
            "temperature": self._temperature,
            "stream": True,
        }
        if tools:
            body["tools"] = to_openai_tools(tools)
        return body

    async def _stream(
        self, body: dict[str, Any], on_timings: Callable[[dict[str, Any]], None] | None = None
    ) -> AsyncIterator[LLMDelta]:
        """`on_timings` receives llama-server's `timings` (cached and evaluated prompt tokens)."""
        parser = ToolCallParser()
        fragments: dict[int, dict[str, str]] = {}
        finish: Literal["stop", "length", "tool_calls"] = "stop"
        try:
            async with self._client.stream("POST", "/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    detail = (await response.aread()).decode("utf-8", "replace")[:300]
                    raise EngineError(f"LLM server answered {response.status_code}: {detail}")
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    event = json.loads(data)
                    if on_timings is not None and isinstance(event.get("timings"), dict):
                        on_timings(event["timings"])
                    for choice in event.get("choices", [])[:1]:
                        delta = choice.get("delta") or {}
                        if delta.get("content"):
                            for piece in parser.feed(delta["content"]):
                                yield (
                                    LLMDelta(text=piece)
                                    if isinstance(piece, str)
                                    else LLMDelta(tool_call=piece)
                                )
                        for frag in delta.get("tool_calls") or []:
                            slot = fragments.setdefault(
                                int(frag.get("index", 0)), {"id": "", "name": "", "args": ""}
                            )
                            fn = frag.get("function") or {}
                            slot["id"] = frag.get("id") or slot["id"]
                            slot["name"] += fn.get("name") or ""
                            slot["args"] += fn.get("arguments") or ""
                        reason = choice.get("finish_reason")
                        if reason == "length":
                            finish = "length"
        except httpx.HTTPError as exc:
            raise EngineError(f"LLM server request failed: {exc!r}") from exc
        for piece in parser.finish():
            yield LLMDelta(text=piece) if isinstance(piece, str) else LLMDelta(tool_call=piece)
        for index in sorted(fragments):
            slot = fragments[index]
            call = parse_tool_call(json.dumps({"name": slot["name"], "arguments": slot["args"]}))
            if call is None:
                continue
            yield LLMDelta(tool_call=ToolCall(call.name, call.arguments, slot["id"] or call.id))
            parser.calls.append(call)
        yield LLMDelta(finish_reason="tool_calls" if parser.calls else finish)
