"""Test helpers: a real uvicorn server on 127.0.0.1 in a thread, and a stand-in conversation.

The stand-in has the constructor of `voxline.conversation.conversation.Conversation`, echoes the caller's
audio back, emits the same kinds of events, records a turn per second of caller audio, and obeys
DTMF commands so tests can drive barge-in, hangup and crashes. Its events are built from
`voxline.conversation.events` and serialised by its `to_wire`, like the real conversation's:
  "0" → clear the sink (barge-in), "#" → end the call from the agent side, "9" → raise (a crash),
  "5" → play 1 s of a 440 Hz tone.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import uvicorn

from voxline.agent.config import AgentConfig
from voxline.audio.pcm import AudioChunk
from voxline.conversation.events import AgentText, KeyPressed, StateChanged, TurnTimings, UserText, to_wire
from voxline.conversation.metrics import CallRecorder, CallReport, NullRecorder, TurnMetrics, TurnRecord
from voxline.engines.base import Engines
from voxline.transports.base import CallIO, Dtmf

VOICED_DBFS = -50.0


class LiveServer:
    """Serve an ASGI app with uvicorn on a free local port, in a background thread."""

    def __init__(self, app: Any, start_timeout_s: float = 20.0, **options: Any) -> None:
        """`options` go to uvicorn.Config (e.g. `voxline.cli.server_options(...)`, as `serve` runs);
        `start_timeout_s` bounds the app's startup (a job pool warming real models takes longer)."""
        self.start_timeout_s = start_timeout_s
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.app = app
        config = uvicorn.Config(app, log_level="warning", lifespan="on", ws="auto", **options)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + self.start_timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()


@contextlib.contextmanager
def live_server(app: Any) -> Iterator[LiveServer]:
    with LiveServer(app) as server:
        yield server


def stand_in_engines() -> Engines:
    """The stand-in conversation uses no model; the app only needs something to share."""
    return Engines(vad=None, stt=None, llm=None, tts=None)  # type: ignore[arg-type]


def tone(seconds: float, rate: int, hz: float = 440.0) -> AudioChunk:
    t = np.arange(round(seconds * rate)) / rate
    return AudioChunk.from_float32(0.3 * np.sin(2 * np.pi * hz * t), rate)


class EchoConversation:
    """A stand-in for Conversation (same constructor and run()); see the module docstring."""

    instances: list[EchoConversation] = []  # noqa: RUF012 - a registry for test assertions

    def __init__(
        self,
        call: CallIO,
        agent: AgentConfig,
        engines: Engines,
        *,
        recorder: CallRecorder = NullRecorder(),  # noqa: B008 - mirrors the real signature
        clock: Any = None,
        transport: str = "unknown",
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.call = call
        self.agent = agent
        self.engines = engines
        self.recorder = recorder
        self.transport = transport
        self.on_event = on_event or (lambda _e: None)
        self.received_samples = 0
        self.voiced_frames = 0
        self.peak_dbfs = -120.0
        self.dtmf: list[str] = []
        self.done = threading.Event()
        self.report = CallReport(call.call_id, agent.name, transport, started_at=time.time())
        self.tool_log: list[dict[str, Any]] = []
        EchoConversation.instances.append(self)

    async def run(self) -> CallReport:
        call, report = self.call, self.report
        self.on_event(to_wire(StateChanged("listening")))
        turn_audio = 0
        try:
            while True:
                item = await call.receive()
                if item is None:
                    report.end_reason = call.hangup_reason or "caller_hangup"
                    break
                if isinstance(item, Dtmf):
                    self.dtmf.append(item.digit)
                    self.on_event(to_wire(KeyPressed(item.digit)))
                    if item.digit == "9":
                        raise RuntimeError("stand-in conversation crashed on purpose")
                    if item.digit == "0":
                        call.sink.clear()
                    elif item.digit == "5":
                        await call.sink.send(tone(1.0, 16000))
                    elif item.digit == "#":
                        report.end_reason = "agent_ended"
                        await call.sink.drain()
                        break
                    continue
                self._measure(item)
                await call.sink.send(item)  # echo
                turn_audio += item.num_samples
                if turn_audio >= item.sample_rate:  # one "turn" per second of caller audio
                    turn_audio = 0
                    report.turns.append(self._turn(len(report.turns)))
        finally:
            report.ended_at = time.time()
            self.done.set()
        return report

    def _measure(self, chunk: AudioChunk) -> None:
        self.received_samples += chunk.num_samples
        frame = max(1, chunk.sample_rate // 50)
        for start in range(0, chunk.num_samples - frame + 1, frame):
            level = AudioChunk(chunk.samples[start : start + frame], chunk.sample_rate).rms_dbfs()
            self.peak_dbfs = max(self.peak_dbfs, level)
            self.voiced_frames += level > VOICED_DBFS

    def _turn(self, index: int) -> TurnRecord:
        self.on_event(to_wire(StateChanged("user_speaking")))
        user = f"heard {self.received_samples} samples, {self.voiced_frames} voiced frames"
        turn = TurnRecord(
            index=index,
            user_text=user,
            agent_text="echo",
            agent_full_text="echo",
            language="en",
            interrupted=index % 2 == 1,
            started_at=time.time(),
            metrics=TurnMetrics(
                stt_ms=100.0, voice_to_voice_ms=640.0, barge_in_stop_ms=80.0 if index % 2 else None
            ),
        )
        self.recorder.turn_finished(self.call.call_id, turn)
        # the same events, built and serialised the same way, as Conversation sends after a turn
        for event in (
            UserText(user, "en"),
            AgentText("echo", turn.interrupted),
            TurnTimings(index, turn.metrics),
            StateChanged("speaking"),
        ):
            self.on_event(to_wire(event))
        return turn
