"""Finds Qwen/Hermes-style tool calls in a streamed reply so their text is never spoken.

The model writes `<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>` inline. Text is
released as soon as it cannot be the start of such a tag; the call itself is returned whole once its
closing tag (or the end of the reply) arrives. A reply that starts with a bare JSON object is held back
too: small models often drop the tags, and a JSON blob is never something to say to a caller.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from voxline.engines.base import ToolCall

OPEN_TAG = "<tool_call>"
CLOSE_TAG = "</tool_call>"


def parse_tool_call(payload: str) -> ToolCall | None:
    """`{"name": ..., "arguments": {...}}` (arguments may also be a JSON string) -> ToolCall."""
    text = payload.strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    data: Any = _loads_lenient(text)
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    arguments: Any = data.get("arguments", data.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            arguments = {"_raw": arguments}
    if not isinstance(arguments, dict):
        arguments = {"value": arguments}
    if arguments.get("type") == "object" and "properties" in arguments:
        # Small models echo the parameter schema instead of filling it in: that means "no arguments".
        arguments = {}
    return ToolCall(name=data["name"], arguments=arguments, id=new_call_id())


def _loads_lenient(text: str) -> Any:
    """JSON, forgiving the missing closing braces a small model or a token cap leaves behind."""
    for missing in range(4):
        try:
            return json.loads(text + "}" * missing)
        except ValueError:
            continue
    return None


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:12]}"


def _partial_tag_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


class ToolCallParser:
    """Feed text pieces; get back speakable text and complete tool calls, in order."""

    def __init__(self) -> None:
        self._pending = ""  # text not yet released (may be the start of a tag)
        self._in_call = False
        self._call_text = ""
        self._started = False  # has any non-space text been seen?
        self._bare_json = False
        self.calls: list[ToolCall] = []

    def feed(self, piece: str) -> list[str | ToolCall]:
        out: list[str | ToolCall] = []
        if not self._started:
            stripped = (self._pending + piece).lstrip()
            if not stripped:
                self._pending += piece
                return out
            self._started = True
            if stripped.startswith(("{", "```")):
                self._bare_json = True
        if self._bare_json:
            self._call_text += piece
            return out
        self._pending += piece
        while True:
            if self._in_call:
                end = self._pending.find(CLOSE_TAG)
                if end < 0:
                    keep = _partial_tag_suffix(self._pending, CLOSE_TAG)
                    self._call_text += self._pending[: len(self._pending) - keep]
                    self._pending = self._pending[len(self._pending) - keep :]
                    return out
                self._call_text += self._pending[:end]
                self._pending = self._pending[end + len(CLOSE_TAG) :]
                self._emit_call(out)
                self._in_call = False
                continue
            start = self._pending.find(OPEN_TAG)
            if start >= 0:
                if start:
                    out.append(self._pending[:start])
                self._pending = self._pending[start + len(OPEN_TAG) :]
                self._in_call = True
                continue
            keep = _partial_tag_suffix(self._pending, OPEN_TAG)
            release = self._pending[: len(self._pending) - keep]
            if release:
                out.append(release)
            self._pending = self._pending[len(release) :]
            return out

    def finish(self) -> list[str | ToolCall]:
        """The reply ended: an unterminated call is parsed as far as it goes; leftovers released."""
        out: list[str | ToolCall] = []
        if self._bare_json or self._in_call:
            self._call_text += self._pending
            self._pending = ""
            self._emit_call(out)
            self._in_call = False
        elif self._pending and self._started:
            out.append(self._pending)
            self._pending = ""
        return out

    def _emit_call(self, out: list[str | ToolCall]) -> None:
        call = parse_tool_call(self._call_text)
        self._call_text = ""
        if call is not None:
            self.calls.append(call)
            out.append(call)
