"""A text-only conversation: the same prompt, history, output filter and tools as a call, no audio.

Used by `voxline chat` to try an agent's behaviour quickly, and by tests of the LLM path.
"""

from __future__ import annotations

import contextlib

from voxline.agent.config import AgentConfig
from voxline.conversation.chunker import SentenceChunker
from voxline.conversation.history import History
from voxline.conversation.language import LanguagePolicy
from voxline.conversation.prompt import build_system_prompt
from voxline.conversation.sanitize import ReplyPolicy
from voxline.conversation.tools import ToolAction, ToolContext, ToolRegistry
from voxline.engines.base import LLM, ToolCall
from voxline.transports.base import CallIO


class TextConversation:
    def __init__(self, agent: AgentConfig, llm: LLM, call: CallIO) -> None:
        self.agent = agent
        self.llm = llm
        self.call = call
        self.tools = ToolRegistry(agent)
        self.history = History(build_system_prompt(agent, self.tools.specs()))
        self.language = LanguagePolicy(agent)
        self.history.add_assistant(self.language.line("greeting"))

    async def reply(self, user_text: str) -> str:
        """The agent's answer to one caller line, exactly as it would be spoken."""
        self.history.add_user(user_text)
        if self.language.on_caller_turn(user_text, None).switched:  # on_request: "in Hindi please"
            line = self.language.line("switched")
            self.history.add_assistant(line)
            return line
        chunker = SentenceChunker()
        policy = ReplyPolicy(language=self.language.current if self.language.needs_reply_note() else None)
        spoken: list[str] = []
        calls: list[ToolCall] = []
        truncated = False
        messages = self.history.messages_for_llm(self.agent.llm.history_tokens, self.llm.count_tokens)
        messages = self.language.with_reply_note(messages)
        stream = self.llm.stream(messages, self.tools.specs(), self.agent.llm.max_tokens)
        try:
            async for delta in stream:
                for piece in chunker.feed(delta.text) if delta.text else []:
                    if (accepted := policy.accept(piece)) is not None:
                        spoken.append(accepted)
                if delta.tool_call is not None:
                    calls.append(delta.tool_call)
                truncated = truncated or delta.finish_reason == "length"
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()  # type: ignore[attr-defined]
        tail = chunker.finish(truncated=truncated)
        if tail and (accepted := policy.accept(tail)) is not None:
            spoken.append(accepted)
        said = " ".join(spoken)
        self.history.add_assistant(said, tool_calls=[c for c in calls if c.name in self.tools])
        for call in calls:
            if call.name not in self.tools:
                continue  # small models invent tools; an unknown name is not an action
            outcome = await self.tools.execute(call, ToolContext(self.call, self.agent, said))
            if outcome.spoken:
                spoken.append(outcome.spoken)
            if outcome.result is not None:
                self.history.add_tool_result(call, outcome.result)
            if outcome.action is ToolAction.HANG_UP:
                await self.call.hangup("agent_ended")
            elif outcome.action is ToolAction.TRANSFER and outcome.target:
                await self.call.transfer(outcome.target)
        return " ".join(spoken)
