"""A caller that talks to an agent over any CallIO (SIP, AudioSocket, WebSocket) and times it.

It behaves like a phone without silence suppression: it sends a 20 ms frame every 20 ms (speech
from its script, silence between turns), waits for the agent's greeting and each reply to finish
before speaking again, and records everything it hears with arrival times on its own clock.

Voice-to-voice, as the caller experiences it: the wire time of the last speech sample of a turn to
the arrival of the first agent frame with sound after it. With `barge_in_after_s`, every turn after
the first is spoken over the agent's reply once it has sounded that long; the barge-in stop time is
the wire time of the interrupting speech's onset to the arrival of the last agent sound frame
before the caller finished that turn (the agent must stop while the caller is still talking).

Outbound wire times come from the sink's own schedule (first frame time + samples sent / rate),
which holds because the sink is never starved; inbound times are arrival times, so the caller's
own jitter buffer counts, as on a phone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from voxline.audio.clock import Clock, MonotonicClock
from voxline.audio.levels import speech_end_s, speech_start_s
from voxline.audio.pcm import AudioChunk
from voxline.audio.resample import resample
from voxline.transports.base import FRAME_S, CallIO, Dtmf, PacedSink

log = logging.getLogger(__name__)

SOUND_DBFS = -45.0
"""An agent frame louder than this is sound (G.711 silence sits far below)."""
QUIET_AFTER_REPLY_S = 1.0
"""Agent silence that means the reply is over (longer than any gap between its sentences)."""
LEAD_FRAMES = 3
"""Frames kept queued in the sink: enough that it never starves, few enough to stay near real time."""
SOUNDING_NOW_S = 0.06
"""The agent is audibly talking when its last sound frame arrived this recently."""
QUIET_WHILE_TALKING_S = 0.3
"""The agent counts as still talking when its last sound arrived less than this ago."""
KEPT_TALKING_S = 0.1
"""Agent sound this close to the end of an interrupting turn means it never stopped."""


@dataclass
class CallerTurn:
    index: int
    speech_start_wire_s: float
    speech_end_wire_s: float | None
    reply_onset_s: float | None = None
    reply_end_s: float | None = None
    speech_onset_wire_s: float | None = None
    """Wire time of the first loud sample of the turn (after its leading silence)."""
    first_sound_after_onset_s: float | None = None
    """Arrival of the first agent sound at or after the onset (an echo's onset, or a wrong turn end)."""
    last_sound_before_end_s: float | None = None
    """Arrival of the last agent sound before the turn's speech ended (the barge-in stop)."""
    barged_in: bool = False
    """The turn began while the agent's reply was still arriving."""

    @property
    def voice_to_voice_ms(self) -> float | None:
        if self.speech_end_wire_s is None or self.reply_onset_s is None:
            return None
        return (self.reply_onset_s - self.speech_end_wire_s) * 1000

    @property
    def barge_in_stop_ms(self) -> float | None:
        """Onset of speech over the agent → its last sound frame; None if the agent kept talking to
        the end of the turn, or this turn did not interrupt anything."""
        if not self.barged_in or self.speech_onset_wire_s is None:
            return None
        last = self.last_sound_before_end_s
        if last is None or last < self.speech_onset_wire_s:
            return 0.0
        if self.speech_end_wire_s is not None and last >= self.speech_end_wire_s - KEPT_TALKING_S:
            return None
        return (last - self.speech_onset_wire_s) * 1000

    @property
    def sound_during_speech(self) -> bool:
        """The agent's sound reached the caller while they were still speaking this turn."""
        return (
            self.first_sound_after_onset_s is not None
            and self.speech_end_wire_s is not None
            and self.first_sound_after_onset_s < self.speech_end_wire_s
        )

    @property
    def echo_delay_ms(self) -> float | None:
        if self.speech_onset_wire_s is None or self.first_sound_after_onset_s is None:
            return None
        return (self.first_sound_after_onset_s - self.speech_onset_wire_s) * 1000


@dataclass
class CallerResult:
    turns: list[CallerTurn] = field(default_factory=list)
    answered_s: float | None = None
    """When the call was set up (the caller's handler started), on the caller's clock."""
    greeting_onset_s: float | None = None
    heard: list[tuple[float, AudioChunk]] = field(default_factory=list)
    """(arrival time, chunk) of everything the agent sent, on the caller's clock."""
    dtmf_heard: list[str] = field(default_factory=list)
    hung_up_by_agent: bool = False

    @property
    def greeting_ms(self) -> float | None:
        """Answered → the greeting's first sound: the silence a caller hears before the agent speaks."""
        if self.answered_s is None or self.greeting_onset_s is None:
            return None
        return (self.greeting_onset_s - self.answered_s) * 1000

    def recording(self, sample_rate: int = 8000) -> AudioChunk:
        """What the caller heard, placed on its timeline from the first arrival (gaps are silence)."""
        if not self.heard:
            return AudioChunk(np.zeros(0, np.int16), sample_rate)
        t0 = self.heard[0][0] - self.heard[0][1].duration_s
        end = max(t - t0 for t, _ in self.heard)
        track = np.zeros(int(end * sample_rate) + sample_rate, np.int16)
        for t, chunk in self.heard:
            samples = resample(chunk, sample_rate).samples
            stop = min(track.size, round((t - t0) * sample_rate))
            start = max(0, stop - samples.size)
            track[start:stop] = samples[samples.size - (stop - start) :]
        return AudioChunk(track, sample_rate)


class ScriptedCaller:
    """A CallHandler for the caller's side of a call: speaks `turns`, measures, hangs up."""

    def __init__(
        self,
        turns: Sequence[AudioChunk],
        *,
        pause_s: float = 0.8,
        wait_for_greeting: bool = True,
        reply_timeout_s: float = 20.0,
        barge_in_after_s: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.turns = list(turns)
        self.pause_s = pause_s
        self.wait_for_greeting = wait_for_greeting
        self.barge_in_after_s = barge_in_after_s
        self.reply_timeout_s = reply_timeout_s
        self.clock: Clock = clock or MonotonicClock()
        self.result = CallerResult()
        self._last_sound_s: float | None = None
        self._sent_samples = 0
        self._sink: PacedSink | None = None

    async def __call__(self, call: CallIO) -> None:
        self.result.answered_s = self.clock.now()
        self._sink = call.sink
        listener = asyncio.create_task(self._listen(call), name="caller-listen")
        speaker = asyncio.create_task(self._speak(call), name="caller-speak")
        done, _ = await asyncio.wait({listener, speaker}, return_when=asyncio.FIRST_COMPLETED)
        if listener in done:
            self.result.hung_up_by_agent = True
        speaker.cancel()
        listener.cancel()
        await asyncio.gather(speaker, listener, return_exceptions=True)
        if not self.result.hung_up_by_agent:
            await call.hangup("caller_done")

    # ------------------------------------------------------------ listening

    @property
    def _first_wire_s(self) -> float | None:
        """When our first frame went on the wire: the caller's audio timeline starts there."""
        return self._sink.first_frame_at if self._sink is not None else None

    async def _listen(self, call: CallIO) -> None:
        while (item := await call.receive()) is not None:
            now = self.clock.now()
            if isinstance(item, Dtmf):
                self.result.dtmf_heard.append(item.digit)
                continue
            self.result.heard.append((now, item))
            if item.num_samples and item.rms_dbfs() > SOUND_DBFS:
                self._last_sound_s = now
                self._on_sound(now)

    def _on_sound(self, now: float) -> None:
        if self.result.greeting_onset_s is None and not self.result.turns:
            self.result.greeting_onset_s = now
        if self.result.turns:
            turn = self.result.turns[-1]
            onset = turn.speech_onset_wire_s
            if onset is not None and now >= onset and turn.first_sound_after_onset_s is None:
                turn.first_sound_after_onset_s = now
            if turn.speech_end_wire_s is not None and now < turn.speech_end_wire_s:
                turn.last_sound_before_end_s = now
            if (
                turn.speech_end_wire_s is not None
                and now > turn.speech_end_wire_s
                and turn.reply_onset_s is None
            ):
                turn.reply_onset_s = now

    # ------------------------------------------------------------ speaking

    def _wire_time(self, sample: int, rate: int) -> float:
        assert self._first_wire_s is not None
        return self._first_wire_s + sample / rate

    async def _speak(self, call: CallIO) -> None:
        rate = call.sink.output_rate
        frame = round(rate * FRAME_S)
        silence = np.zeros(frame, np.int16)

        async def send_frames(samples: np.ndarray) -> None:
            for start in range(0, samples.size, frame):
                piece = samples[start : start + frame]
                if piece.size < frame:
                    piece = np.concatenate([piece, silence[: frame - piece.size]])
                while call.sink.queued_s - call.sink.played_s > LEAD_FRAMES * FRAME_S:
                    await self.clock.sleep_until(self.clock.now() + FRAME_S / 2)
                await call.sink.send(AudioChunk(piece, rate))
                self._sent_samples += frame

        async def silence_for(seconds: float) -> None:
            await send_frames(np.zeros(round(seconds * rate), np.int16))

        async def wait_quiet(since: float) -> None:
            """Send silence until the agent has spoken after `since` and then been quiet a while."""
            deadline = self.clock.now() + self.reply_timeout_s
            while self.clock.now() < deadline:
                last = self._last_sound_s
                if last is not None and last > since and self.clock.now() - last >= QUIET_AFTER_REPLY_S:
                    return
                await silence_for(0.1)

        async def wait_reply_sounding(turn: CallerTurn) -> None:
            """Send silence until the reply to `turn` has sounded for barge_in_after_s and is sounding
            right now (not in a gap between its sentences), or until it is plainly over."""
            assert self.barge_in_after_s is not None
            deadline = self.clock.now() + self.reply_timeout_s
            while self.clock.now() < deadline:
                now, onset, last = self.clock.now(), turn.reply_onset_s, self._last_sound_s
                long_enough = onset is not None and now - onset >= self.barge_in_after_s
                quiet_for = now - last if last is not None else 0.0
                if long_enough and (quiet_for <= SOUNDING_NOW_S or quiet_for >= QUIET_AFTER_REPLY_S):
                    return
                await silence_for(FRAME_S)

        await silence_for(0.2)
        if self.wait_for_greeting:
            await wait_quiet(0.0)
        barging = self.barge_in_after_s is not None
        for index, turn in enumerate(self.turns):
            audio = resample(turn, rate).samples
            if not (barging and index > 0):
                await silence_for(self.pause_s)
            while self._first_wire_s is None:  # the sink has not put a frame on the wire yet
                await silence_for(FRAME_S)
            start_sample = self._sent_samples
            chunk = AudioChunk(audio, rate)
            end, onset = speech_end_s(chunk), speech_start_s(chunk)
            record = CallerTurn(
                index,
                speech_start_wire_s=self._wire_time(start_sample, rate),
                speech_end_wire_s=None
                if end is None
                else self._wire_time(start_sample + round(end * rate), rate),
                speech_onset_wire_s=None
                if onset is None
                else self._wire_time(start_sample + round(onset * rate), rate),
            )
            if barging and index > 0:
                last = self._last_sound_s
                record.barged_in = last is not None and self.clock.now() - last < QUIET_WHILE_TALKING_S
            self.result.turns.append(record)
            await send_frames(audio)
            if barging and index < len(self.turns) - 1:
                await wait_reply_sounding(record)
            else:
                await wait_quiet(record.speech_end_wire_s or self.clock.now())
            record.reply_end_s = self._last_sound_s
        await silence_for(0.5)
