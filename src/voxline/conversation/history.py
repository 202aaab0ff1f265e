"""The conversation as the model sees it, trimmed to a token budget without breaking the KV cache.

llama.cpp reuses its cache for the longest unchanged prefix of the prompt. Trimming one old turn
per new turn would change the prefix every time and force a full re-evaluation; instead, when the
history outgrows its budget, it is cut back in one big block (to about half the budget), and the
prefix then stays stable for many turns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from voxline.engines.base import Message, ToolCall

# An interrupted turn is flagged on its Message, not marked in its text: the small models copy any
# marker ("…", "[interrupted]") into their next reply (measured: 5 of 12 replies after a barge-in).


@dataclass(slots=True)
class _Entry:
    message: Message
    tokens: int | None = None


@dataclass(slots=True)
class History:
    system_prompt: str
    trim_to_fraction: float = 0.5
    _entries: list[_Entry] = field(default_factory=list)
    _first_kept: int = 0
    """Index of the oldest entry still sent to the model; only ever moves forward, in big steps."""

    # ------------------------------------------------------------ adding

    def add_user(self, text: str) -> None:
        """A caller turn. Consecutive caller turns (nothing answered in between) are merged."""
        text = text.strip()
        if not text:
            return
        last = self._entries[-1].message if self._entries else None
        if last is not None and last.role == "user":
            self._entries[-1] = _Entry(Message("user", f"{last.content} {text}"))
        else:
            self._entries.append(_Entry(Message("user", text)))

    def with_user(self, text: str) -> History:
        """A copy with one more caller turn, for preparing an answer before the turn is confirmed."""
        copy = History(self.system_prompt, self.trim_to_fraction, list(self._entries), self._first_kept)
        copy.add_user(text)
        return copy

    def add_assistant(
        self, text: str, *, interrupted: bool = False, tool_calls: list[ToolCall] | None = None
    ) -> None:
        """An agent turn. After a barge-in `text` must be only what the caller heard."""
        text = text.strip()
        if not text and not tool_calls:
            return
        message = Message("assistant", text, tool_calls=list(tool_calls or []), interrupted=interrupted)
        self._entries.append(_Entry(message))

    def attach_tool_calls(self, tool_calls: list[ToolCall]) -> None:
        """The last agent turn also made these calls (found after it was recorded)."""
        last = self._entries[-1].message if self._entries else None
        if last is None or last.role != "assistant":
            self._entries.append(_Entry(Message("assistant", "", tool_calls=list(tool_calls))))
            return
        self._entries[-1] = _Entry(
            Message("assistant", last.content, tool_calls=list(tool_calls), interrupted=last.interrupted)
        )

    def add_tool_result(self, call: ToolCall, result: str) -> None:
        self._entries.append(_Entry(Message("tool", result, tool_call_id=call.id, name=call.name)))

    @property
    def messages(self) -> list[Message]:
        """Everything so far, untrimmed, without the system prompt."""
        return [e.message for e in self._entries]

    # ------------------------------------------------------------ for the model

    def messages_for_llm(self, budget_tokens: int, count_tokens: Callable[[str], int]) -> list[Message]:
        """System prompt + as many recent whole exchanges as fit `budget_tokens`."""
        starts = self._exchange_starts()
        kept = [s for s in starts if s >= self._first_kept]
        if self._tokens_from(self._first_kept, count_tokens) > budget_tokens:
            target = budget_tokens * self.trim_to_fraction
            for start in kept:
                if self._tokens_from(start, count_tokens) <= target:
                    self._first_kept = start
                    break
            else:  # even the last exchange alone is over the target: keep just that one
                self._first_kept = kept[-1] if kept else len(self._entries)
        body = [e.message for e in self._entries[self._first_kept :]]
        return [Message("system", self.system_prompt), *body]

    def _exchange_starts(self) -> list[int]:
        """Entry indexes where an exchange begins: each caller turn, and the start (the greeting)."""
        starts = [i for i, e in enumerate(self._entries) if e.message.role == "user"]
        if self._entries and (not starts or starts[0] != 0):
            starts.insert(0, 0)
        return starts

    def _tokens_from(self, start: int, count_tokens: Callable[[str], int]) -> int:
        total = 0
        for entry in self._entries[start:]:
            if entry.tokens is None:
                msg = entry.message
                calls = " ".join(f"{c.name} {c.arguments}" for c in msg.tool_calls)
                entry.tokens = count_tokens(msg.content + calls) + 4  # + role/template overhead
            total += entry.tokens
        return total
