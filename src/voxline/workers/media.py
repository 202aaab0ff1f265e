"""How a call's media reaches its job: the MediaSpec, and the job-side builders keyed by its kind.

The supervisor says in the assignment how the job gets the call's audio (`MediaSpec`); the job looks
the kind up in a registry and builds the `CallIO` the conversation runs on:

- `pipe` (built in): the audio crosses the supervisor. Inbound frames come over the channel; the
  job runs the PacedSink (pacing, marks, clear on barge-in happen here) and forwards each paced
  frame at once, and a `clear` as a control message so the transport flushes its side.
- `rtp`, `audiosocket` (telephony, registered by their modules): the supervisor passes the socket
  itself (fds on the channel) and the media never crosses it.

A builder registers with `register_media(kind, builder)`, where the builder is a coroutine function
of a `MediaContext` or a "module:function" path imported on first use (so the job imports only
what its call needs). Hang-up, transfer and DTMF sending are signalling, which the supervisor
owns: every job-side CallIO relays them through `SupervisorLink`, as `JobCall` does.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from voxline.audio.clock import Clock
from voxline.audio.pcm import AudioChunk
from voxline.transports.base import CallIO, Dtmf, PacedSink

log = logging.getLogger(__name__)

INBOX_FRAMES = 500
"""Inbound frames a job holds for its conversation (10 s of 20 ms frames; the transport already
paces input to ~2 s ahead of real time, so only a stalled conversation reaches it)."""


@dataclass(frozen=True, slots=True)
class MediaSpec:
    """How a job gets one call's audio (supervisor side): a kind, its JSON params, its descriptors."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    fds: Sequence[int] = ()
    """Descriptors handed to the job (an RTP socket, an AudioSocket connection); the supervisor
    closes its copies once they are sent."""
    on_assigned: Callable[[Any], None] | None = field(default=None, compare=False)
    """Called with the job (its `send(body)` reaches the job's call) once the assignment is sent:
    a handed-over socket's signalling forwards the call's later changes through it (telephony)."""

    @classmethod
    def pipe(cls, input_rate: int, output_rate: int) -> MediaSpec:
        return cls("pipe", {"input_rate": input_rate, "output_rate": output_rate})

    @property
    def crosses_supervisor(self) -> bool:
        """The audio itself travels over the channel (the supervisor pumps it)."""
        return self.kind == "pipe"

    def to_wire(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.params}


class SupervisorLink(Protocol):
    """The job's side of the channel, as a job-side CallIO uses it."""

    def send(self, body: dict[str, Any], fds: Sequence[int] = ()) -> None: ...

    def send_media(self, pcm: bytes) -> None: ...

    async def request(self, body: dict[str, Any], timeout_s: float = 30.0) -> dict[str, Any]:
        """Send a control message and wait for the supervisor's reply to it."""
        ...

    def attach(self, call: CallMessages) -> None:
        """Deliver the call's messages (inbound audio, dtmf, remote_hangup, goodbye) to `call`."""
        ...


class CallMessages(Protocol):
    """What a job-side CallIO takes from the supervisor."""

    def on_media(self, pcm: bytes) -> None: ...

    def on_control(self, body: dict[str, Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class MediaContext:
    """What a media builder gets: the call, its spec (as sent), its descriptors, and the link."""

    call_id: str
    spec: dict[str, Any]
    fds: list[int]
    link: SupervisorLink
    clock: Clock | None = None


MediaBuilder = Callable[[MediaContext], Awaitable[CallIO]]
_builders: dict[str, MediaBuilder | str] = {}


def register_media(kind: str, builder: MediaBuilder | str) -> None:
    """Make `kind` buildable in jobs: a coroutine function, or "module:function" to import lazily."""
    _builders[kind] = builder


def media_kinds() -> list[str]:
    return sorted(_builders)


def _resolve(kind: str) -> MediaBuilder:
    builder = _builders[kind]
    if isinstance(builder, str):
        module, _, name = builder.partition(":")
        builder = cast(MediaBuilder, getattr(importlib.import_module(module), name))
        _builders[kind] = builder
    return builder


def import_builders() -> None:
    """Import every builder registered by name now: a warm job pays no import when its call starts
    (the telephony media take ~0.3 s to import on this machine)."""
    for kind in list(_builders):
        _resolve(kind)


async def build_media(context: MediaContext) -> CallIO:
    kind = context.spec.get("kind")
    if not isinstance(kind, str) or kind not in _builders:
        raise ValueError(f"no job media builder for kind {kind!r} (known: {', '.join(media_kinds())})")
    return await _resolve(kind)(context)


# ---------------------------------------------------------------------- pipe media


class PipeSink(PacedSink):
    """Paced in the job; each frame leaves for the supervisor's transport the moment it is due."""

    def __init__(self, link: SupervisorLink, output_rate: int, clock: Clock | None = None) -> None:
        super().__init__(output_rate, clock)
        self._link = link

    async def _emit(self, frame: AudioChunk) -> None:
        self._link.send_media(frame.to_bytes())

    def _on_clear(self) -> None:
        self._link.send({"type": "clear"})


class JobCall(CallIO):
    """The call as a job sees it with `pipe` media: audio and keys from the supervisor, paced
    audio back to it, and hang-up / transfer / DTMF relayed to the transport it drives."""

    def __init__(
        self,
        call_id: str,
        input_rate: int,
        output_rate: int,
        link: SupervisorLink,
        clock: Clock | None = None,
        *,
        label: str | None = None,
    ) -> None:
        super().__init__(call_id, input_rate, PipeSink(link, output_rate, clock))
        self.label = label
        self._link = link
        self._inbox: asyncio.Queue[AudioChunk | Dtmf | None] = asyncio.Queue(INBOX_FRAMES)
        self._ended = False
        self.dropped_frames = 0
        link.attach(self)

    # -- from the supervisor
    def on_media(self, pcm: bytes) -> None:
        self._put(AudioChunk.from_bytes(pcm, self.input_rate))

    def on_control(self, body: dict[str, Any]) -> None:
        kind = body["type"]
        if kind == "dtmf":
            digit = str(body.get("digit", ""))
            if len(digit) == 1:
                self._put(Dtmf(digit, int(body.get("duration_ms", 0) or 0)))
        elif kind == "remote_hangup":
            self.caller_left(str(body.get("reason") or "caller_hangup"))

    def caller_left(self, reason: str) -> None:
        if self._ended:
            return
        self._ended = True
        self.hangup_reason = self.hangup_reason or reason
        self._put(None, force=True)

    def _put(self, item: AudioChunk | Dtmf | None, *, force: bool = False) -> None:
        if self._inbox.full():
            if not force and isinstance(item, AudioChunk):
                self.dropped_frames += 1
                return
            self._inbox.get_nowait()  # a key press or the end must not be lost to a stalled reader
        self._inbox.put_nowait(item)

    # -- CallIO
    async def receive(self) -> AudioChunk | Dtmf | None:
        if self._ended and self._inbox.empty():
            return None
        return await self._inbox.get()

    async def hangup(self, reason: str = "normal") -> None:
        if self.hangup_reason is None:
            self.hangup_reason = reason
        await self.sink.aclose()
        self._link.send({"type": "hangup", "reason": reason})

    async def transfer(self, target: str) -> bool:
        reply = await self._link.request({"type": "transfer", "target": target})
        return bool(reply.get("ok"))

    async def send_dtmf(self, digits: str, duration_ms: int = 100) -> bool:
        reply = await self._link.request({"type": "send_dtmf", "digits": digits, "duration_ms": duration_ms})
        return bool(reply.get("ok"))


async def build_pipe_call(context: MediaContext) -> CallIO:
    spec = context.spec
    return JobCall(
        context.call_id,
        int(spec["input_rate"]),
        int(spec["output_rate"]),
        context.link,
        context.clock,
        label=spec.get("label"),
    )


register_media("pipe", build_pipe_call)
# telephony: the RTP socket or the AudioSocket connection itself goes to the job (imported on use)
register_media("rtp", "voxline.telephony.job_media:build_rtp_call")
register_media("audiosocket", "voxline.telephony.job_media:build_audiosocket_call")
