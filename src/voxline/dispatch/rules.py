"""Which of the node's agents takes a call: the node's `dispatch:` rules applied to its metadata.

The rules, per way in (first match wins):
- SIP: the `dispatch.sip.header` header, if set and present, names the agent; else the request-URI
  user, through `dispatch.sip.users` or as an agent's own name.
- WebSocket: the start frame's `agent` field.
- ARI: the Stasis argument `agent=<name>`.
- AudioSocket: the call's UUID in `dispatch.audiosocket.uuids`, else its listener port in
  `dispatch.audiosocket.ports`.
- An outbound call, or an API request: the agent it was placed with.

A name the node does not serve is refused whoever wrote it; a call no rule places gets
`dispatch.default`, or is refused when there is none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from voxline.dispatch.metadata import CallMetadata
from voxline.node.config import DispatchConfig


class UnknownAgent(ValueError):
    """No agent of this node takes the call; `reason` says why (it goes to the caller's side)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Dispatcher:
    """Applies the node's rules; `route(metadata)` returns it with `agent` set, or raises UnknownAgent."""

    agents: frozenset[str]
    config: DispatchConfig = field(default_factory=DispatchConfig)

    @classmethod
    def single(cls, name: str) -> Dispatcher:
        """A one-agent node (`voxline serve AGENT`): every call goes to it, as before."""
        return cls(frozenset({name}), DispatchConfig(default=name))

    @classmethod
    def of(cls, agents: Iterable[str], config: DispatchConfig) -> Dispatcher:
        return cls(frozenset(agents), config)

    def route(self, metadata: CallMetadata) -> CallMetadata:
        named, why = self._named(metadata)
        if named is not None:
            if named not in self.agents:
                raise UnknownAgent(f"no agent {named!r} on this node ({why})")
            return replace(metadata, agent=named)
        if self.config.default is None:
            raise UnknownAgent("the call names no agent and this node has no default agent")
        return replace(metadata, agent=self.config.default)

    def _named(self, metadata: CallMetadata) -> tuple[str | None, str]:
        """(the agent the call names, where), or (None, '') when no rule names one."""
        if metadata.agent is not None:  # placed with an agent (outbound, the API), or routed already
            return metadata.agent, "named by the request"
        config = self.config
        transport = metadata.transport
        if transport == "sip":
            header = config.sip.header
            value = metadata.header(header) if header else None
            if value:
                return config.sip.users.get(value, value), f"header {header}"
            user = metadata.dialled_number
            if user is not None:
                if user in config.sip.users:
                    return config.sip.users[user], "request-URI user"
                if user in self.agents:
                    return user, "request-URI user"
            return None, ""
        if transport == "audiosocket":
            uuid = metadata.audiosocket_uuid
            if uuid is not None and uuid.lower() in config.audiosocket.uuids:
                return config.audiosocket.uuids[uuid.lower()], "call UUID"
            port = metadata.listener_port
            if port is not None and port in config.audiosocket.ports:
                return config.audiosocket.ports[port], "listener port"
            return None, ""
        if metadata.requested_agent is not None:  # websocket field, ARI argument
            return metadata.requested_agent, f"{transport} request"
        return None, ""
