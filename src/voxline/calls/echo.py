"""The `mode: echo` agent's call: the caller's audio played straight back, no model.

A `CallSession` like the conversation, so an echo agent runs wherever an agent runs: inline in
`voxline serve`, or in a job process of a `--workers process` node (where its RTP socket is the
job's own, as for any SIP call). It measures the node's media path without the models: its record
has no turns and ends with the caller's hang-up.
"""

from __future__ import annotations

import time
from typing import Any

from voxline.agent.config import AgentConfig
from voxline.conversation.metrics import CallReport
from voxline.telephony.echo import EchoAgent
from voxline.transports.base import CallIO


class EchoSession:
    """One echo call (see the module docstring)."""

    def __init__(self, call: CallIO, agent: AgentConfig, transport: str) -> None:
        self.call = call
        self.report = CallReport(call.call_id, agent.name, transport, started_at=time.time())
        self.tool_log: list[dict[str, Any]] = []

    async def run(self) -> CallReport:
        await EchoAgent()(self.call)
        self.report.end_reason = self.call.hangup_reason or "caller_hangup"
        self.report.ended_at = time.time()
        return self.report
