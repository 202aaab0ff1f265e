"""Who holds the call's floor, and what the call does next: its decisions as a pure state machine.

`Floor.on(event, now)` takes one thing that happened (a listener event, the caller's words once
transcribed, the end of an agent turn, a deadline passing) and returns the commands the call must
carry out, in order. `next_deadline()` says when the call next needs `TimeUp` if nothing else
happens first. No asyncio, no I/O, no clock of its own, like `TurnDetector`: the conversation's
async shell runs the commands (tasks, replies, the sink) and feeds back what they produce, so every
path through a call can be tested on virtual time by plain function calls.

All of the call-floor state lives here: the floor state the page shows, the running agent turn and
whether its reply is paused, the goodbye that ends the call, the draft transcription and the
answer prepared on a pause (by their audio key), the silence and call-length deadlines, the
reprompt count, a caller turn carried into the next one, and the keypad (menu, key run, entry).
"""

from __future__ import annotations

import enum
import logging
import re
from dataclasses import dataclass, field
from typing import Literal

from voxline.agent.config import AgentConfig
from voxline.conversation.digits import KeyRun
from voxline.conversation.events import ConversationEvent, KeyPressed, StateChanged
from voxline.conversation.ivr import IvrStep
from voxline.conversation.keypad import Keypad, read_key
from voxline.conversation.listener import CallerHangup, DtmfPressed, TextTurn, TurnDraft, UserTurn
from voxline.conversation.turns import (
    BargeInConfirmed,
    BargeInFalse,
    BargeInPause,
    NoiseDiscarded,
    SpeechResumed,
    SpeechStart,
)
from voxline.engines.base import LanguageGuess

log = logging.getLogger(__name__)

GOODBYE_GRACE_S = 15.0
"""How long the goodbye at max_call_s may take before the line is cut."""


class State(enum.StrEnum):
    LISTENING = "listening"
    USER_SPEAKING = "user_speaking"
    THINKING = "thinking"
    SPEAKING = "speaking"


def normalise_words(text: str) -> list[str]:
    return [re.sub(r"[^\w]", "", w) for w in re.findall(r"[\w'-]+", text.lower())]


TRAILING_WORDS = frozenset(
    # conjunctions, articles, prepositions, possessives, fillers: a sentence that stops on one of
    # these very likely goes on after the pause ("I'd like to ... check my balance"). Apostrophes
    # dropped, as `normalise_words` drops them.
    {
        *("and", "or", "but", "because", "if", "than", "when", "while", "that", "thats"),
        *("a", "an", "the", "this", "my", "your", "our", "their", "his", "her", "its"),
        *("to", "of", "for", "with", "in", "on", "at", "from", "into", "by", "as", "like"),
        *("i", "im", "ive", "we"),
        *("um", "umm", "uh", "uhh", "er", "erm", "ah", "hmm"),
    }
)
MIN_QUESTION_WORDS = 3
"""A question must hold this many words to count as finished without a matched route."""


def sounds_finished(text: str, *, routed: bool = False) -> bool:
    """Whether a draft transcript taken at a pause reads as a finished request, so the turn may end
    on a shorter silence: a matched route, or a question of a few words, that whisper closed with
    a sentence end and that does not stop on a word that leads on.

    A full stop alone is no evidence: whisper closes most halves of a sentence with one ("Please
    check." for "Please check ... the number", 13 of 22 mid-sentence pauses measured), but a
    question mark only where it heard a question (0 of 22), and a route names a whole request
    (1 of 22 halves). Trailing off is written "..." or with no stop at all."""
    text = text.strip()
    words = [w for w in normalise_words(text) if w]
    if not words or words[-1] in TRAILING_WORDS or text.endswith(("...", "…")):
        return False
    if routed:
        return text[-1] in ".?!"
    return len(words) >= MIN_QUESTION_WORDS and text[-1] == "?"


# ---------------------------------------------------------------- events the shell feeds back


@dataclass(frozen=True, slots=True)
class CallStarted:
    """The call is up: greet the caller and start the call-length clock."""


@dataclass(frozen=True, slots=True)
class TimeUp:
    """`next_deadline()` has passed (the shell waits for it on the call's clock)."""


@dataclass(frozen=True, slots=True)
class GoodbyeRequested:
    """The node asks the call to end now (a second signal while draining): stop the agent, say
    the goodbye line, end with `reason`. The caller can no longer interrupt it."""

    reason: str = "node_shutdown"


@dataclass(frozen=True, slots=True)
class AgentTurnEnded:
    """An agent turn's task finished by itself (not cancelled)."""

    turn: int


@dataclass(frozen=True, slots=True)
class AudioStarted:
    """The first audio of one of the turn's replies went to the sink."""

    turn: int


@dataclass(frozen=True, slots=True)
class ReplyPaused:
    """A `PauseReply` found a reply to pause (the caller's barge-in stopped it)."""

    turn: int


@dataclass(frozen=True, slots=True)
class ReplyResumed:
    """A `ResumeReply` played the paused reply again; `audible`: it had sent audio before."""

    turn: int
    audible: bool


@dataclass(frozen=True, slots=True)
class CallerWords:
    """What the caller said in the turn that `Transcribe` handed over ("" for no words)."""

    text: str
    language: str = ""
    """The transcript's language."""
    guess: LanguageGuess | None = None
    """What the language identifier said about the turn (auto and on_request modes)."""
    answers_question: bool = False
    """The agent's paused reply was cut in a question the caller had mostly heard."""
    stt_ms: float = 0.0
    """How long the caller waited for the transcript (for the turn's record)."""
    unheard: bool = False
    """Speech-to-text failed on the turn (its engine raised: a crashed or full speech server): the
    caller spoke and nobody knows what they said."""


@dataclass(frozen=True, slots=True)
class DraftWords:
    """The transcript of a draft whose words `StartDraft` asked for."""

    audio_key: float
    text: str
    routed: bool = False
    """One of the agent's routes matches the words (they name a whole request)."""


@dataclass(frozen=True, slots=True)
class EntryStarted:
    """An agent turn began collecting digits; `prompting` while its prompt is spoken."""

    prompting: bool


@dataclass(frozen=True, slots=True)
class EntryAwaited:
    """The collection's prompt is over: the caller has the floor for the entry."""


@dataclass(frozen=True, slots=True)
class EntryEnded:
    """The collection is over; `completed`: the agent turn goes on with the result (else it was
    cancelled)."""

    completed: bool


FloorEvent = (
    CallStarted
    | TimeUp
    | GoodbyeRequested
    | AgentTurnEnded
    | AudioStarted
    | ReplyPaused
    | ReplyResumed
    | CallerWords
    | DraftWords
    | EntryStarted
    | EntryAwaited
    | EntryEnded
    | SpeechStart
    | SpeechResumed
    | NoiseDiscarded
    | BargeInPause
    | BargeInConfirmed
    | BargeInFalse
    | TurnDraft
    | UserTurn
    | TextTurn
    | DtmfPressed
    | CallerHangup
)


# ---------------------------------------------------------------- what an agent turn does

FixedLine = Literal["greeting", "reprompt", "goodbye", "fallback"]
"""A line the call's language policy words (in the call's current language)."""


@dataclass(frozen=True, slots=True)
class Verbatim:
    """A line spoken as written (a menu prompt)."""

    text: str


@dataclass(frozen=True, slots=True)
class SayLines:
    lines: tuple[FixedLine | Verbatim, ...]
    ends_call: str | None = None
    """End the call with this reason once the lines are heard (the call runner hangs up)."""


@dataclass(frozen=True, slots=True)
class AnswerCaller:
    """The caller's words become a turn: the shell records it and answers (or switches language or
    transfers, which the language policy and the guard decide)."""

    words: str
    user_text: str
    """The words with any carried caller text before them (what the turn record keeps)."""
    notes: tuple[str, ...]
    """For the model before the words: the menu the caller was in, keys pressed just before."""
    keys: str
    language: str
    """The transcript's language."""
    guess: LanguageGuess | None
    stt_ms: float
    caller_turn: UserTurn | TextTurn
    turns_exhausted: bool
    """max_turns is reached: the turn is recorded, then the agent says goodbye and hangs up."""


@dataclass(frozen=True, slots=True)
class MenuChoice:
    """A key picked an option in the active menu."""

    key: str
    step: IvrStep


@dataclass(frozen=True, slots=True)
class KeyRunTurn:
    """Keys pressed outside any menu, now that the caller paused: one turn for the model."""

    keys: str


TurnBody = SayLines | AnswerCaller | MenuChoice | KeyRunTurn


# ---------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class Emit:
    event: ConversationEvent


@dataclass(frozen=True, slots=True)
class StartTurn:
    turn: int
    """The turn's index in the call (its record's index)."""
    body: TurnBody


@dataclass(frozen=True, slots=True)
class CancelTurn:
    superseded: bool = False
    """The caller kept talking: if nothing was heard of it, it leaves no record (the floor carries
    its caller text into the next turn)."""
    key_pressed_at: float | None = None
    """A key press interrupted it at this time (for barge_in_stop_ms when the caller heard it)."""


@dataclass(frozen=True, slots=True)
class PauseReply:
    turn: int
    t_onset: float


@dataclass(frozen=True, slots=True)
class ResumeReply:
    turn: int
    why: str


@dataclass(frozen=True, slots=True)
class StartDraft:
    """Transcribe the draft's audio now; with `words`, send its words back as `DraftWords`."""

    draft: TurnDraft
    prepare: bool
    """An answer may be prepared on the words."""
    words: bool = False
    """The floor wants the words (to prepare an answer or to end the turn early)."""


@dataclass(frozen=True, slots=True)
class DropDraft:
    pass


@dataclass(frozen=True, slots=True)
class PrepareAnswer:
    """Start the answer to the draft's words, held, for the turn it may become."""

    audio_key: float
    text: str


@dataclass(frozen=True, slots=True)
class DropPrepared:
    pass


@dataclass(frozen=True, slots=True)
class EndTurnEarly:
    """The draft at `audio_key` reads as a finished request: the listener ends the turn after
    `silence_s` of silence (void if the caller has spoken since)."""

    audio_key: float
    silence_s: float


@dataclass(frozen=True, slots=True)
class Transcribe:
    """Transcribe the caller's turn (from the draft when `use_draft`), then send `CallerWords`."""

    turn: UserTurn | TextTurn
    use_draft: bool


@dataclass(frozen=True, slots=True)
class ToEntry:
    """Give the running digit collection keys, or the words said instead of an entry."""

    keys: str = ""
    words: str = ""


@dataclass(frozen=True, slots=True)
class EndCall:
    """The call is over now, for `reason`: the conversation returns it and the runner hangs up."""

    reason: str


@dataclass(frozen=True, slots=True)
class CallerLeft:
    """The caller's side ended: settle a transfer in flight, stop the agent, silence the line."""


Command = (
    Emit
    | StartTurn
    | CancelTurn
    | PauseReply
    | ResumeReply
    | StartDraft
    | DropDraft
    | PrepareAnswer
    | DropPrepared
    | EndTurnEarly
    | Transcribe
    | ToEntry
    | EndCall
    | CallerLeft
)


# ---------------------------------------------------------------- the machine


@dataclass(slots=True)
class _Limits:
    max_call_s: float
    silence_s: float
    max_reprompts: int
    max_turns: int


@dataclass(slots=True)
class Floor:
    """The call floor of one call. Build it with `Floor.for_agent`."""

    limits: _Limits
    keypad: Keypad
    backchannels: frozenset[str]
    prepares_answers: bool
    """Answers may be prepared on a pause (not when the turn's language must be identified first)."""
    early_end_s: float = 0.0
    """Silence that ends a turn whose draft reads as finished (0: off; see `sounds_finished`)."""
    state: State = State.LISTENING
    turn: int | None = None
    """The running agent turn (its index), if any."""
    paused: bool = False
    """The running turn's reply was paused by a barge-in and may resume."""
    closing: bool = False
    """Saying the final goodbye: the caller can no longer interrupt or start a turn."""
    closing_reason: str = "max_duration"
    """Why the call ends if that goodbye overruns its grace."""
    ended: bool = False
    turns_started: int = 0
    reprompts: int = 0
    call_deadline: float = float("inf")
    silence_deadline: float | None = None
    draft_audio_key: float | None = None
    """Audio key of the draft being transcribed (the caller paused at it)."""
    draft_prepares: bool = False
    draft_ends_early: bool = False
    """The draft's words may end the turn early."""
    prepared_audio_key: float | None = None
    """Audio key of the answer prepared on the draft, held until its turn is confirmed."""
    carried: str = ""
    """Caller text of a turn superseded before the caller heard a word of it (they were not done
    yet): it leads the next caller turn's text."""
    _turn_text: str = ""
    """The running turn's caller text."""
    _audible: bool = False
    """The running turn has sent audio."""
    _transcribing: UserTurn | TextTurn | None = field(default=None, repr=False)
    """The caller turn sent to `Transcribe`, waiting for its `CallerWords`."""
    _answering: bool = False
    """The running turn answers the caller (and may use the prepared answer)."""

    @classmethod
    def for_agent(cls, agent: AgentConfig, *, prepares_answers: bool) -> Floor:
        limits = _Limits(
            agent.limits.max_call_s,
            agent.limits.silence_reprompt_s,
            agent.limits.max_reprompts,
            agent.limits.max_turns,
        )
        backchannels = frozenset("".join(normalise_words(b)) for b in agent.turn.backchannels)
        early = min(agent.turn.early_end_silence_ms, agent.turn.end_of_turn_silence_ms) / 1000
        if agent.turn.early_end_silence_ms == 0 or agent.turn.speculative_pause_ms == 0:
            early = 0.0  # no draft, or switched off
        return cls(limits, Keypad(agent.ivr), backchannels, prepares_answers, early)

    # ------------------------------------------------------------ queries

    @property
    def agent_has_floor(self) -> bool:
        """Caller speech now is a barge-in: an agent turn runs and is not waiting for an entry."""
        return self.turn is not None and not self.keypad.awaiting_entry

    @property
    def caller_has_floor(self) -> bool:
        """Nothing runs but listening (or the running turn waits for the caller's entry)."""
        idle = self.turn is None or self.keypad.awaiting_entry
        return self.state == State.LISTENING and idle

    def next_deadline(self) -> float:
        """When the call next needs `TimeUp` if nothing else happens (inf once it is over)."""
        if self.ended:
            return float("inf")
        deadline = self.call_deadline
        if self.silence_deadline is not None and self.turn is None and self.state == State.LISTENING:
            deadline = min(deadline, self.silence_deadline)
        keys = self.keypad.keys.deadline
        if keys is not None:
            deadline = min(deadline, keys)
        return deadline

    def is_backchannel(self, text: str) -> bool:
        words = [w for w in normalise_words(text) if w]
        if not words:
            return True
        return "".join(words) in self.backchannels or (
            len(words) <= 3 and all(w in self.backchannels for w in words)
        )

    def may_prepare_answers(self) -> bool:
        """Preparing an answer early is safe only when nothing about the turn can change its course
        but its words: no agent turn to interrupt, no keypad entry, no language switch to decide."""
        return (
            self.prepares_answers
            and self.turn is None
            and not self.closing
            and not self.keypad.collecting
            and not self.keypad.has_notes
            and self.turns_started <= self.limits.max_turns
        )

    def may_end_early(self) -> bool:
        """A turn may end on the shorter silence only when the caller has the floor with nothing
        else open: not over the agent (a barge-in decides backchannel or resume on the whole
        burst), not into a digit entry (digits come with pauses), not while saying goodbye."""
        return self.early_end_s > 0 and self.turn is None and not self.closing and not self.keypad.collecting

    # ------------------------------------------------------------ the transition

    def on(self, event: FloorEvent, now: float) -> list[Command]:
        """Everything `event` at clock time `now` makes the call do, in order."""
        if self.ended:
            return []
        out: list[Command] = []
        match event:
            case CallStarted():
                self.call_deadline = now + self.limits.max_call_s
                menu_prompt = self.keypad.start()
                extra = (Verbatim(menu_prompt),) if menu_prompt else ()
                self._start(out, SayLines(("greeting", *extra)))
            case TimeUp():
                self._time_up(out, now)
            case GoodbyeRequested(reason=reason):
                self._say_goodbye(out, now, reason)
            case AgentTurnEnded(turn=turn):
                if turn == self.turn:
                    self.turn, self.paused = None, False
                    self._set(out, State.LISTENING)
                    self.silence_deadline = now + self._silence_timeout()
            case AudioStarted(turn=turn):
                if turn == self.turn:
                    self._audible = True
                    self._set(out, State.SPEAKING)
            case ReplyPaused(turn=turn):
                if turn == self.turn:
                    self.paused = True
                    self._set(out, State.USER_SPEAKING)
            case ReplyResumed(turn=turn, audible=audible):
                if turn == self.turn:
                    self.paused = False
                    self._set(out, State.SPEAKING if audible else State.THINKING)
            case SpeechStart():
                self.silence_deadline = None
                self._set(out, State.USER_SPEAKING)
            case NoiseDiscarded():
                if self.turn is None and self.state == State.USER_SPEAKING:
                    self._set(out, State.LISTENING)
            case SpeechResumed():
                self._drop_draft(out)  # the caller went on: the turn will be longer than the draft
                self._drop_prepared(out)
            case BargeInConfirmed():
                pass
            case BargeInPause() | BargeInFalse() | TurnDraft() | UserTurn() | TextTurn() if self.closing:
                pass
            case BargeInPause(t_onset=t_onset):
                if self.turn is not None:
                    out.append(PauseReply(self.turn, t_onset))
            case BargeInFalse():
                self._resume(out, "noise")
            case TurnDraft():
                self._drop_draft(out)
                self._drop_prepared(out)
                self.draft_audio_key, self.draft_prepares = event.audio_key, self.may_prepare_answers()
                self.draft_ends_early = self.may_end_early()
                words = self.draft_prepares or self.draft_ends_early
                out.append(StartDraft(event, self.draft_prepares, words))
            case DraftWords():
                self._draft_words(out, event)
            case UserTurn() | TextTurn():
                if self.prepared_audio_key is not None and self.prepared_audio_key != event.audio_key:
                    self._drop_prepared(out)
                self.silence_deadline = None
                self._set(out, State.THINKING)
                use_draft = event.audio_key is not None and self.draft_audio_key == event.audio_key
                self.draft_audio_key, self.draft_ends_early = None, False
                self._transcribing = event
                out.append(Transcribe(event, use_draft))
            case CallerWords():
                self._caller_words(out, event, now)
                if self.turn is None or not self._answering:
                    self._drop_prepared(out)  # the turn went another way (digits, goodbye, backchannel)
            case EntryStarted(prompting=prompting):
                self.keypad.begin_entry(prompting)
            case EntryAwaited():
                self.keypad.await_entry()
                self._set(out, State.LISTENING)
            case EntryEnded(completed=completed):
                self.keypad.end_entry()
                if completed:
                    self._set(out, State.THINKING)
            case DtmfPressed():
                self._drop_prepared(out)
                self._key_press(out, event, now)
            case CallerHangup():
                self._drop_prepared(out)
                self.ended = True
                self.turn = None
                out.append(CallerLeft())
        return out

    def end(self) -> None:
        """The call is over (hung up, transferred): nothing more happens on it."""
        self.ended = True

    # ------------------------------------------------------------ the paths

    def _time_up(self, out: list[Command], now: float) -> None:
        keys = self.keypad.keys.deadline
        silence = self.silence_deadline if self.turn is None and self.state == State.LISTENING else None
        if now >= self.call_deadline:
            self._cancel(out)
            if self.closing:  # the goodbye itself overran: end the call now
                self.ended = True
                out.append(EndCall(self.closing_reason))
            else:
                self.closing = True
                self.call_deadline = now + GOODBYE_GRACE_S
                self._start(out, SayLines(("goodbye",), ends_call="max_duration"))
        elif keys is not None and now >= keys:
            self._cancel(out)
            self._start(out, KeyRunTurn(self.keypad.keys.take()))
        elif silence is not None and now >= silence:
            self.silence_deadline = None
            if self.reprompts < self.limits.max_reprompts:
                self.reprompts += 1
                menu = self.keypad.ivr.menu  # inside a menu, its options again
                self._start(out, SayLines((Verbatim(menu.prompt) if menu else "reprompt",)))
            else:
                self._start(out, SayLines(("goodbye",), ends_call="silence"))

    def _say_goodbye(self, out: list[Command], now: float, reason: str) -> None:
        if self.closing:  # a goodbye is being said already
            return
        self._cancel(out)
        self._drop_draft(out)
        self._drop_prepared(out)
        self.closing, self.closing_reason = True, reason
        self.call_deadline = min(self.call_deadline, now + GOODBYE_GRACE_S)  # then cut the line
        self._start(out, SayLines(("goodbye",), ends_call=reason))

    def _caller_words(self, out: list[Command], event: CallerWords, now: float) -> None:
        caller_turn, self._transcribing = self._transcribing, None
        text = event.text
        if self.keypad.collecting:
            entry = self.keypad.hear(text, self.is_backchannel)
            if entry is None:
                self._resume(out, "no digits")
            else:
                out.append(ToEntry(*entry))
            self._set(out, State.SPEAKING if self.keypad.prompting else State.LISTENING)
            return
        if self.turn is not None:
            backchannel = not text or self.is_backchannel(text)
            if self.paused and backchannel and not (text and event.answers_question):
                self._resume(out, f"backchannel {text!r}" if text else "no words")
                return
            if not text:
                return
            self._cancel(out, superseded=True)
        if event.unheard and caller_turn is not None:
            # silence would leave a caller who spoke waiting for an answer that never comes
            self._start(out, SayLines(("fallback",)))
            return
        if not text or caller_turn is None:
            self._set(out, State.LISTENING)
            self.silence_deadline = now + self._silence_timeout()
            return
        self.reprompts = 0
        notes, keys = self.keypad.caller_spoke()
        user_text = f"{self.carried} {text}".strip()
        self.carried = ""
        exhausted = self.turns_started >= self.limits.max_turns
        language, guess, stt_ms = event.language, event.guess, event.stt_ms
        words = AnswerCaller(
            text, user_text, tuple(notes), keys, language, guess, stt_ms, caller_turn, exhausted
        )
        self._start(out, words)

    def _draft_words(self, out: list[Command], event: DraftWords) -> None:
        key, text = event.audio_key, event.text
        if key != self.draft_audio_key or not text or self.is_backchannel(text):
            return  # a later pause's draft is on its way, or nothing to act on
        if self.draft_prepares and self.may_prepare_answers():
            self.prepared_audio_key = key
            out.append(PrepareAnswer(key, text))
        if self.draft_ends_early and self.may_end_early() and sounds_finished(text, routed=event.routed):
            out.append(EndTurnEarly(key, self.early_end_s))

    def _key_press(self, out: list[Command], event: DtmfPressed, now: float) -> None:
        key = read_key(event.digit)
        if key is None:
            return
        log.info("caller pressed %s", key)
        out.append(Emit(KeyPressed(key)))
        if self.closing:
            return
        self.silence_deadline = None
        self.reprompts = 0
        if self.keypad.collecting:  # the collection stops its own prompt: no barge-in
            out.append(ToEntry(keys=key))
            return
        if self.turn is not None:  # a key is an unambiguous barge-in: no backchannel, no resume
            self._cancel(out, key_pressed_at=event.t)
            self._set(out, State.LISTENING)
        step = self.keypad.press(key, now)
        if step is not None:  # else it joined the key run, a turn once the caller pauses
            self._start(out, MenuChoice(key, step))

    # ------------------------------------------------------------ helpers

    def _start(self, out: list[Command], body: TurnBody) -> None:
        self.turn, self.paused, self._audible = self.turns_started, False, False
        self._answering = isinstance(body, AnswerCaller) and not body.turns_exhausted
        if isinstance(body, AnswerCaller):
            self._turn_text = body.user_text
        elif isinstance(body, KeyRunTurn):
            self._turn_text = KeyRun.as_text(body.keys)
        else:
            self._turn_text = ""
        self.turns_started += 1
        self._set(out, State.THINKING)
        out.append(StartTurn(self.turn, body))

    def _cancel(
        self, out: list[Command], *, superseded: bool = False, key_pressed_at: float | None = None
    ) -> None:
        if self.turn is not None:
            out.append(CancelTurn(superseded, key_pressed_at))
            if superseded and not self._audible:
                self.carried = self._turn_text
        self.turn, self.paused = None, False

    def _resume(self, out: list[Command], why: str) -> None:
        if self.turn is not None and self.paused:
            out.append(ResumeReply(self.turn, why))

    def _drop_draft(self, out: list[Command]) -> None:
        if self.draft_audio_key is not None:
            out.append(DropDraft())
        self.draft_audio_key, self.draft_prepares, self.draft_ends_early = None, False, False

    def _drop_prepared(self, out: list[Command]) -> None:
        if self.prepared_audio_key is not None:
            out.append(DropPrepared())
        self.prepared_audio_key = None

    def _set(self, out: list[Command], state: State) -> None:
        if state != self.state:
            self.state = state
            out.append(Emit(StateChanged(state.value)))

    def _silence_timeout(self) -> float:
        return self.keypad.silence_timeout(self.limits.silence_s)
