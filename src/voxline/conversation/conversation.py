"""One phone call, end to end: the async shell around the call floor that ties listener, STT,
LLM, tools and replies.

What the call does next is decided by `Floor` (floor.py), a pure state machine; this object feeds it
events one at a time from its main loop (listener events, the caller's words once transcribed, the
end of an agent turn, a deadline passing on the call's clock) and carries out the commands it
returns: start or cancel an agent turn, pause or resume a reply, transcribe, prepare an answer, end
the call (`run` returns why; the call runner hangs up). An *agent turn* (greeting, answer, reprompt,
menu step) runs as one task; interrupting it is cancelling it, and the task's cancellation handler
keeps exactly what the caller heard.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from voxline.agent.config import AgentConfig, CollectDigitsConfig
from voxline.audio.clock import Clock
from voxline.audio.pcm import AudioChunk
from voxline.conversation.digits import CollectResult, DigitCollector, KeyRun
from voxline.conversation.events import (
    AgentSaid,
    AgentText,
    ConversationEvent,
    DigitsCollected,
    LanguageSwitched,
    ToolCalled,
    TurnTimings,
    UserText,
    to_wire,
)
from voxline.conversation.floor import (
    AgentTurnEnded,
    AnswerCaller,
    AudioStarted,
    CallerLeft,
    CallerWords,
    CallStarted,
    CancelTurn,
    Command,
    DraftWords,
    DropDraft,
    DropPrepared,
    Emit,
    EndCall,
    EndTurnEarly,
    EntryAwaited,
    EntryEnded,
    EntryStarted,
    Floor,
    FloorEvent,
    GoodbyeRequested,
    KeyRunTurn,
    MenuChoice,
    PauseReply,
    PrepareAnswer,
    ReplyPaused,
    ReplyResumed,
    ResumeReply,
    SayLines,
    StartDraft,
    StartTurn,
    State,
    TimeUp,
    ToEntry,
    Transcribe,
    TurnBody,
    Verbatim,
)
from voxline.conversation.guard import (
    ReplyGuard,
    accepts_offer,
    announces_transfer,
    asks_for_person,
    offers_transfer,
    pick_department,
    sentence_key,
    split_sentences,
)
from voxline.conversation.history import History
from voxline.conversation.ivr import TRANSFER_FAILED_LINE, IvrStep
from voxline.conversation.knowledge import Knowledge, last_caller_text, with_knowledge
from voxline.conversation.language import LanguagePolicy, TurnLanguage, language_name, transcribe_turn
from voxline.conversation.listener import DtmfPressed, Listener, ListenerEvent, TextTurn, UserTurn
from voxline.conversation.metrics import CallRecorder, CallReport, NullRecorder, TurnRecord
from voxline.conversation.prompt import agent_scope, build_system_prompt, internal_texts
from voxline.conversation.reply import Reply, ReplyAudioStarted, ReplyEvent, static_text
from voxline.conversation.routes import Routes
from voxline.conversation.sanitize import ReplyPolicy
from voxline.conversation.tools import ToolAction, ToolContext, ToolOutcome, ToolRegistry, says_goodbye
from voxline.conversation.waiting import done_before, next_before
from voxline.engines.base import Engines, LanguageGuess, LLMDelta, Message, ToolCall, Transcript
from voxline.engines.toolcalls import new_call_id
from voxline.language.normalize import normalize_for_speech
from voxline.logs import call_id_var
from voxline.transports.base import CallIO

log = logging.getLogger(__name__)

CallerTranscript = tuple[Transcript, LanguageGuess | None]
"""What the caller said in a turn, and what a language identifier made of it."""

MAX_TOOL_ROUNDS = 3
TRANSFER_SETTLE_S = 15.0
"""How long a caller hang-up that arrives mid-transfer waits for the transport's verdict on it (the
SIP transport bounds its own wait for the NOTIFY well within this)."""
FIRST_CLAUSE_WORDS = 2
"""A first clause this long ("I'm sorry,") is spoken before its sentence is complete."""


@dataclass(slots=True)
class _AgentTurn:
    record: TurnRecord
    user_speech_end: float | None = None
    """Clock time the caller stopped speaking (None for greeting/reprompt)."""
    task: asyncio.Task[None] | None = None
    reply: Reply | None = None
    replies: list[Reply] = field(default_factory=list)
    llm_replies: list[Reply] = field(default_factory=list)
    superseded: bool = False
    """Cancelled because the caller kept talking; if nothing was played, merge with the next turn."""


@dataclass(frozen=True, slots=True)
class _AgentTurnDone:
    turn: _AgentTurn


@dataclass(slots=True)
class _PreparedAnswer:
    """An answer begun on the caller's pause, before the turn was confirmed: held (nothing sent) until
    the confirmed turn asks the model exactly these messages, else thrown away."""

    audio_key: float
    messages: list[Message]
    language: str
    reply: Reply
    generating: asyncio.Task[None]
    started_at: float


async def _tool_delta(call: ToolCall) -> AsyncIterator[LLMDelta]:
    yield LLMDelta(tool_call=call, finish_reason="tool_calls")


_Event = ListenerEvent | TextTurn | DraftWords | GoodbyeRequested | _AgentTurnDone


class Conversation:
    def __init__(
        self,
        call: CallIO,
        agent: AgentConfig,
        engines: Engines,
        *,
        recorder: CallRecorder | None = None,
        clock: Clock | None = None,
        transport: str = "unknown",
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.call = call
        self.agent = agent
        self.engines = engines
        self.recorder: CallRecorder = recorder or NullRecorder()
        """Where each finished turn is recorded as it happens (the call runner opens and closes the
        call's record around `run`)."""
        self.clock: Clock = clock or call.sink.clock
        self.on_event = on_event
        self.tools = ToolRegistry(agent)
        self.language = LanguagePolicy(agent)
        self.history = History(system_prompt="")
        self.report = CallReport(call.call_id, agent.name, transport, started_at=time.time())
        self.floor = Floor.for_agent(agent, prepares_answers=not self.language.identifies)
        """Every decision about the call floor; this object carries them out."""
        self._events: asyncio.Queue[_Event] = asyncio.Queue()
        self._turn: _AgentTurn | None = None
        """The running agent turn (the floor's `turn`)."""
        self._listener: Listener | None = None
        self._listener_task: asyncio.Task[None] | None = None
        self._draft: tuple[float, asyncio.Task[CallerTranscript | None]] | None = None
        """(audio key, transcription) started when the caller paused; used if the turn ends there."""
        self._prepared: _PreparedAnswer | None = None
        self._collector: DigitCollector | None = None
        """The running collect_digits, which the floor hands keys and spoken digits."""
        self._background: set[asyncio.Task[None]] = set()
        self._knowledge = Knowledge.for_agent(agent.knowledge)
        self._guard: ReplyGuard | None = None
        self._routes = Routes(self.agent.routes, self.agent.language)
        self._scope = agent_scope(agent)
        self._offered_transfer = False
        """The agent's last words offered a colleague: a plain "yes" now transfers the call."""
        self._transferring: tuple[str, asyncio.Future[bool]] | None = None
        """(target, the transport's transfer) once a transfer started; it outlives a cancelled turn."""
        self.tool_log: list[dict[str, Any]] = []
        """Every tool call: its turn, name, arguments, result and time (the runner's post-call webhook
        carries it)."""

    @property
    def state(self) -> State:
        return self.floor.state

    # ------------------------------------------------------------ text entry point

    def hear_text(self, text: str, guess: LanguageGuess | None = None) -> None:
        """A caller turn as text, handled by the running call like a transcribed one (see TextTurn)."""
        self._events.put_nowait(TextTurn(text, self.clock.now(), guess))

    def request_goodbye(self, reason: str = "node_shutdown") -> None:
        """End the call soon: the agent stops, says its goodbye line and the call ends with
        `reason` (the node's second shutdown signal; a job relays it as the `goodbye` message).
        Thread-unsafe like every entry point here: call it on the call's event loop."""
        self._events.put_nowait(GoodbyeRequested(reason))

    def press_key(self, key: str) -> None:
        """A key press, handled like one from the line."""
        self._events.put_nowait(DtmfPressed(key, self.clock.now()))

    @property
    def awaiting_caller(self) -> bool:
        """The caller has the floor: the call is over, or no event is pending and no agent turn is
        running (or the running one waits for a keypad entry)."""
        if self.report.end_reason is not None:
            return True
        return self._events.empty() and self.floor.caller_has_floor

    # ------------------------------------------------------------ lifecycle

    async def run(self) -> CallReport:
        """Hold the conversation until the call is over; returns its report, whose `end_reason` says
        why. Ending the call is not done here: the caller, or the call runner with that reason
        (`voxline.calls.end_call`, after a goodbye has been played out), hangs up; the runner also
        closes the call's record and sends the post-call webhook."""
        token = call_id_var.set(self.call.call_id)
        try:
            await self._run()
        except Exception:
            log.exception("call failed")
            self.report.end_reason = self.report.end_reason or "error"
        finally:
            self.report.end_reason = self.report.end_reason or "cancelled"
            self.floor.end()
            await self._stop_tasks()
            self.report.ended_at = time.time()
            log.info("conversation over: %s after %d turns", self.report.end_reason, len(self.report.turns))
            call_id_var.reset(token)
        return self.report

    async def _run(self) -> None:
        specs = self.tools.specs()
        self.history.system_prompt = build_system_prompt(self.agent, specs)
        if self.agent.guard.enabled:
            self._guard = ReplyGuard.for_agent(
                self.agent, internal_texts(self.agent, specs), [t.name for t in specs]
            )
        self.call.sink.start()
        self._listener = Listener(
            self.call, self.engines.vad.new_stream(), self.agent, self.clock, self._events.put_nowait
        )
        self._listener_task = asyncio.create_task(self._listener.run(), name="listener")
        await self._feed(CallStarted())
        while self.report.end_reason is None:
            event = await next_before(self._events, self.clock, self.floor.next_deadline())
            await self._handle(event if event is not None else TimeUp())

    async def _stop_tasks(self) -> None:
        self._drop_draft()
        self._drop_prepared()
        await self._cancel_agent_turn()
        if self._listener_task is not None:
            self._listener_task.cancel()
            await asyncio.wait([self._listener_task])

    # ------------------------------------------------------------ events in, commands out

    async def _handle(self, event: _Event | TimeUp) -> None:
        if isinstance(event, _AgentTurnDone):
            if event.turn is self._turn:
                self._turn = None
            await self._feed(AgentTurnEnded(event.turn.record.index))
        else:
            await self._feed(event)

    async def _feed(self, event: FloorEvent) -> None:
        """Hand the floor one event and carry out what it decides, in order."""
        for command in self._decide(event):
            if not self._do_now(command):
                await self._do(command)

    def _note(self, event: FloorEvent) -> None:
        """Hand the floor an event from inside an agent turn or a background task: what it decides
        then is always immediate (a state change, a prepared answer), so it is done right here."""
        for command in self._decide(event):
            if not self._do_now(command):
                log.error("%s cannot be carried out outside the call's loop; ignored", command)

    def _decide(self, event: FloorEvent) -> list[Command]:
        commands = self.floor.on(event, self.clock.now())
        if self._listener is not None:
            self._listener.agent_has_floor = self.floor.agent_has_floor
        return commands

    def _do_now(self, command: Command) -> bool:
        """Carry out a command that needs no waiting; False for the others (see `_do`)."""
        match command:
            case Emit(event=event):
                self._emit(event)
            case StartTurn(turn=index, body=body):
                self._start_turn(index, body)
            case StartDraft(draft=draft, words=words):
                task = asyncio.create_task(self._stt(draft.audio), name="stt-draft")
                self._draft = (draft.audio_key, task)
                if words:
                    telling = asyncio.create_task(self._draft_words(draft.audio_key, task))
                    self._background.add(telling)
                    telling.add_done_callback(self._background.discard)
            case DropDraft():
                self._drop_draft()
            case PrepareAnswer(audio_key=audio_key, text=text):
                self._prepare(audio_key, text)
            case DropPrepared():
                self._drop_prepared()
            case EndTurnEarly(audio_key=audio_key, silence_s=silence_s):
                if self._listener is not None:
                    self._listener.end_early(audio_key, silence_s)
            case ToEntry(keys=keys, words=words):
                if self._collector is None:  # the collection ended as the key came in
                    log.debug("no digit collection to take %r", keys or words)
                elif keys:
                    self._collector.press(keys)
                else:
                    self._collector.said_instead(words)
            case _:
                return False
        return True

    async def _do(self, command: Command) -> None:
        match command:
            case CancelTurn(superseded=superseded, key_pressed_at=key_at):
                turn = self._turn
                if turn is not None:
                    turn.superseded = superseded
                    reply = turn.reply
                    audible = reply is not None and reply.sent_audio and self.call.sink.is_playing
                    if key_at is not None and audible:
                        turn.record.metrics.barge_in_stop_ms = (self.clock.now() - key_at) * 1000
                    if key_at is not None:
                        log.info("key press barge-in: stopping the agent's turn")
                await self._cancel_agent_turn()
            case PauseReply(turn=index, t_onset=t_onset):
                turn = self._turn
                if turn is None or turn.reply is None:
                    return
                if turn.reply.pause():
                    stop_ms = (self.clock.now() - t_onset) * 1000
                    turn.record.metrics.barge_in_stop_ms = stop_ms
                    log.info("barge-in: agent stopped %.0f ms after caller onset", stop_ms)
                await self._feed(ReplyPaused(index))
            case ResumeReply(turn=index, why=why):
                turn = self._turn
                if turn is not None and turn.reply is not None and turn.reply.paused:
                    log.info("false interruption (%s): resuming the reply", why)
                    await turn.reply.resume()
                    await self._feed(ReplyResumed(index, turn.reply.sent_audio))
            case Transcribe(turn=caller_turn, use_draft=use_draft):
                await self._take_caller_turn(caller_turn, use_draft)
            case EndCall(reason=reason):
                self.report.end_reason = reason
            case CallerLeft():
                if not await self._transfer_succeeded():
                    self.report.end_reason = "caller_hangup"
                await self._cancel_agent_turn()
                self.call.sink.clear()
            case _:
                log.error("unhandled call command %s", command)

    async def _take_caller_turn(self, caller_turn: UserTurn | TextTurn, use_draft: bool) -> None:
        """Transcribe the caller's turn and tell the floor what was said."""
        stt_started = self.clock.now()
        transcribed = await self._transcribe(caller_turn, use_draft)
        stt_ms = (self.clock.now() - stt_started) * 1000  # the part of STT the caller waits for
        transcript, guess = transcribed if transcribed else (None, None)
        text = transcript.text.strip() if transcript else ""
        reply = self._turn.reply if self._turn is not None else None
        answers_question = bool(text) and reply is not None and reply.cut_in_question()
        language = transcript.language if transcript else ""
        unheard = transcribed is None  # _stt logged the failure
        await self._feed(CallerWords(text, language, guess, answers_question, stt_ms, unheard))

    # ------------------------------------------------------------ agent turns the floor starts

    def _start_turn(self, index: int, body: TurnBody) -> None:
        language = self.language.current
        match body:
            case SayLines(lines=lines, ends_call=ends_call):
                turn = _AgentTurn(self._new_record(index, "", language))
                texts = [x.text if isinstance(x, Verbatim) else self.language.line(x) for x in lines]
                self._start(turn, self._say(turn, *texts, ends_call=ends_call))
            case AnswerCaller():
                self._start_caller_turn(index, body)
            case MenuChoice(key=key, step=step):
                if step.action not in ("llm", "collect"):  # those tell the model themselves, with a note
                    self.history.add_user(KeyRun.as_text(key))
                record = self._new_record(index, "", language)
                record.dtmf = key
                turn = _AgentTurn(record)
                self._start(turn, self._ivr_turn(turn, step))
            case KeyRunTurn(keys=keys):
                text = KeyRun.as_text(keys)
                self.history.add_user(text)
                record = self._new_record(index, text, language)
                record.dtmf = keys
                turn = _AgentTurn(record)
                self._start(turn, self._answer(turn))

    def _start_caller_turn(self, index: int, words: AnswerCaller) -> None:
        text, event = words.words, words.caller_turn
        log.info("caller said %r", text)
        self._emit(UserText(text, words.language))
        for note in words.notes:
            self.history.add_user(note)
        self.history.add_user(text)
        language = self.language.on_caller_turn(text, words.guess)
        record = self._new_record(index, words.user_text, language.reply_language)
        record.detected_language, record.language_probability = language.detected, language.probability
        record.language_switched = language.switched
        record.dtmf = words.keys
        record.started_at = self._epoch(event.t_onset)
        record.user_speech_end_at = self._epoch(event.t_last_speech)
        record.metrics.endpointing_ms = (event.t_decided - event.t_last_speech) * 1000
        record.metrics.stt_ms = words.stt_ms
        agent_turn = _AgentTurn(record, user_speech_end=event.t_last_speech)
        offered, self._offered_transfer = self._offered_transfer, False
        if words.turns_exhausted:
            goodbye = self.language.line("goodbye")
            self._start(agent_turn, self._say(agent_turn, goodbye, ends_call="max_turns"))
        elif language.switched:
            self._drop_prepared()  # the turn went another way
            self._start(agent_turn, self._switch_language(agent_turn, language))
        elif self._wants_a_person(text, offered):
            self._drop_prepared()
            self._start(agent_turn, self._call_tool(agent_turn, self._transfer_call(text)))
        else:
            self._start(agent_turn, self._answer(agent_turn, language.reply_language))

    async def _transcribe(self, turn: UserTurn | TextTurn, use_draft: bool) -> CallerTranscript | None:
        """The turn's transcript, from the speculative draft when the caller said nothing after it."""
        if isinstance(turn, TextTurn):
            language = turn.guess.language if turn.guess else self.language.current
            return Transcript(turn.text, language), turn.guess
        draft, self._draft = self._draft, None
        if draft is not None and use_draft:
            return await draft[1]
        if draft is not None:
            draft[1].cancel()
        return await self._stt(turn.audio)

    async def _stt(self, audio: AudioChunk) -> CallerTranscript | None:
        try:
            return await transcribe_turn(self.engines, self.language, audio)
        except Exception:
            log.exception("speech-to-text failed for a %.1f s turn", audio.duration_s)
            return None

    def _drop_draft(self) -> None:
        if self._draft is not None:
            self._draft[1].cancel()  # a model call in a thread still finishes; its result is ignored
            self._draft = None

    # ------------------------------------------------------------ answers prepared on a pause

    async def _draft_words(self, audio_key: float, draft: asyncio.Task[CallerTranscript | None]) -> None:
        """Once the draft is transcribed, tell the floor its words: it may start the answer to them
        (LLM and TTS, held) while the listener waits out the rest of the end-of-turn silence, and
        may end the turn sooner if they read as a finished request."""
        try:
            transcribed = await asyncio.shield(draft)
        except (asyncio.CancelledError, Exception):
            return
        if transcribed is None:
            return
        text = transcribed[0].text.strip()
        language = transcribed[0].language or self.language.current
        routed = bool(text) and bool(self._routes) and self._routes.match(text, language) is not None
        self._note(DraftWords(audio_key, text, routed))

    def _prepare(self, audio_key: float, text: str) -> None:
        if self.engines.llm.busy:
            # another call's answer is being generated: a guess must not make it wait (one model,
            # one generation at a time); this turn is answered when it is confirmed
            log.debug("the LLM is busy; not preparing an answer early")
            return
        language = self.language.current
        messages = self._messages_for_llm(self.history.with_user(text), language)
        reply = self._answer_reply(messages, language, held=True)
        generating = asyncio.create_task(reply.generate(), name="prepared-answer")
        self._prepared = _PreparedAnswer(audio_key, messages, language, reply, generating, self.clock.now())
        log.debug("preparing an answer to %r before the turn is confirmed", text)

    def _take_prepared(self, messages: list[Message], language: str) -> _PreparedAnswer | None:
        """The prepared answer if it answers exactly `messages` in `language`; any other is dropped."""
        prepared, self._prepared = self._prepared, None
        if prepared is None:
            return None
        if prepared.messages == messages and prepared.language == language:
            task = prepared.generating
            if not task.done() or (not task.cancelled() and task.exception() is None):
                return prepared
        prepared.generating.cancel()
        log.info("the prepared answer does not fit the confirmed turn; answering afresh")
        return None

    def _drop_prepared(self) -> None:
        if self._prepared is not None:
            self._prepared.generating.cancel()
            self._prepared = None

    # ------------------------------------------------------------ agent turns

    @staticmethod
    def _new_record(index: int, user_text: str, language: str) -> TurnRecord:
        return TurnRecord(index, user_text, "", language, started_at=time.time())

    def _start(self, turn: _AgentTurn, body: Coroutine[Any, Any, None]) -> None:
        self._turn = turn
        turn.task = asyncio.create_task(self._run_agent_turn(turn, body), name="agent-turn")

    async def _cancel_agent_turn(self) -> None:
        turn, self._turn = self._turn, None
        if turn is not None and turn.task is not None and not turn.task.done():
            turn.task.cancel()
            await asyncio.wait([turn.task])

    async def _run_agent_turn(self, turn: _AgentTurn, body: Coroutine[Any, Any, None]) -> None:
        try:
            await body
        except asyncio.CancelledError:
            reply = turn.reply
            if turn.superseded and not any(r.sent_audio for r in turn.replies):
                return  # the caller was not done yet: the floor carries their words to the next turn
            if reply is not None:
                self._reply_done(turn, reply, interrupted=True)
                self.call.sink.clear()
            self._close_turn(turn)
            raise
        except Exception:
            log.exception("agent turn failed")
        self._close_turn(turn)
        self._events.put_nowait(_AgentTurnDone(turn))

    async def _say(self, turn: _AgentTurn, *lines: str, ends_call: str | None = None) -> None:
        for text in lines:
            await self._play(turn, self._new_line(text))
        if ends_call:
            await self._end_call(ends_call)

    async def _answer(self, turn: _AgentTurn, language: str | None = None) -> None:
        """The model's answer, in `language` (default: the call's)."""
        for _ in range(MAX_TOOL_ROUNDS):
            language = language or self.language.current
            messages = self._messages_for_llm(self.history, language)
            prepared = self._take_prepared(messages, language)
            if prepared is not None:
                reply = prepared.reply
                head_start_ms = (self.clock.now() - prepared.started_at) * 1000
                turn.record.metrics.answer_head_start_ms = head_start_ms
                log.info("using the answer prepared %.0f ms before the turn was confirmed", head_start_ms)
            else:
                reply = self._answer_reply(messages, language)
            turn.llm_replies.append(reply)
            if reply.route:
                turn.record.route = reply.route
            await self._play(turn, reply, prepared.generating if prepared else None)
            if reply.policy is not None and reply.policy.flags:
                turn.record.guarded += [f"{f.kind}: {f.text}" for f in reply.policy.flags]
            if not reply.full_text and not reply.tool_calls:
                # silence after the caller spoke is the worst answer: ask them to say it again
                rejected = reply.policy.rejected if reply.policy else []
                await self._say_fallback(turn, rejected, language)
                return
            if not reply.tool_calls and "transfer_call" in self.tools and announces_transfer(reply.full_text):
                # the model said it is transferring the caller but wrote no call: make the call
                log.info("the reply announced a transfer without calling transfer_call; calling it")
                reply.tool_calls.append(self._transfer_call(reply.full_text, turn.record.user_text))
                self.history.attach_tool_calls(reply.tool_calls)
            if not reply.tool_calls:
                self._offered_transfer = offers_transfer(reply.full_text)
                if (
                    "end_call" in self.tools
                    and says_goodbye(turn.record.user_text)
                    and says_goodbye(reply.full_text)
                ):
                    # small models often say goodbye without calling end_call; a call where both
                    # sides said goodbye is over
                    log.info("caller and agent said goodbye; ending the call")
                    await self._end_call("agent_ended")
                return
            if not await self._run_tools(turn, reply):
                return

    def _messages_for_llm(self, history: History, language: str) -> list[Message]:
        """History as the model reads it; after it (outside the cached prefix) the knowledge that
        matches the caller's last turn, then the reply-language note."""
        messages = history.messages_for_llm(self.agent.llm.history_tokens, self.engines.llm.count_tokens)
        messages = with_knowledge(messages, self._knowledge)
        return self.language.with_reply_note(messages, language)

    def _wants_a_person(self, text: str, offered: bool) -> bool:
        """Transfer without asking the model: the caller asked for a person, or said yes to the
        colleague the agent offered (a small model often talks on instead of calling transfer_call)."""
        if "transfer_call" not in self.tools:
            return False
        rules = self.agent.guard
        if rules.transfer_on_request and asks_for_person(text):
            log.info("the caller asked for a person; transferring")
            return True
        if rules.transfer_on_yes and offered and accepts_offer(text):
            log.info("the caller accepted the offer of a colleague; transferring")
            return True
        return False

    def _transfer_call(self, *context: str) -> ToolCall:
        """transfer_call as the conversation makes it; with named departments, the one the recent
        turns name (else a general one, else none: the tool then asks the model to ask)."""
        config = self.agent.tool("transfer_call")
        departments = list(config.targets or {}) if config else []
        arguments: dict[str, Any] = {}
        if departments:
            recent = [m.content for m in reversed(self.history.messages[-4:])]
            department = pick_department(departments, *context, *recent)
            if department:
                arguments["department"] = department
        return ToolCall("transfer_call", arguments, new_call_id())

    async def _call_tool(self, turn: _AgentTurn, call: ToolCall) -> None:
        """A tool call the conversation makes for the model (the caller said yes to a transfer)."""
        reply = self._new_reply(_tool_delta(call))
        await self._play(turn, reply)
        if await self._run_tools(turn, reply):
            await self._answer(turn)

    def _answer_reply(self, messages: list[Message], language: str, *, held: bool = False) -> Reply:
        route = self._routes.match(last_caller_text(messages), language) if self._routes else None
        if route is not None:
            log.info("route %s answers the turn", route.name)
            routed = self._new_reply(static_text(route.say), language=language, held=held, fixed_line=True)
            routed.route = route.name
            return routed
        deltas = self.engines.llm.stream(messages, self.tools.specs(), self.agent.llm.max_tokens)
        # the guard's patterns and handover line are English
        guard = self._guard if language == "en" else None
        said = [m.content for m in messages if m.role == "assistant"]
        handover = self.agent.guard.handover
        if any(handover in text for text in said):
            handover = self.agent.guard.handover_again
        policy = ReplyPolicy(
            language=language if self.language.needs_reply_note() else None,
            guard=guard,
            handover=handover,
            off_topic=self.agent.guard.off_topic or "",
            grounds=" ".join(m.content for m in messages),
            # the caller's words never make a subject the agent's own (a wrong number's pizza order)
            scope=" ".join([self._scope, *(m.content for m in messages[1:] if m.role != "user")]),
            caller=last_caller_text(messages),
            said_before={sentence_key(s) for text in said for s in split_sentences(text)} if guard else (),
        )
        return self._new_reply(deltas, policy=policy, language=language, held=held)

    async def _switch_language(self, turn: _AgentTurn, language: TurnLanguage) -> None:
        """The call has just switched: say so in the new language (its voice), then answer the turn
        in it, unless the turn was only the request (the switch line answers that)."""
        line = self.language.line("switched")
        self._emit(LanguageSwitched(language.reply_language, language.requested))
        await self._play(turn, self._new_line(line))
        if not language.requested:
            await self._answer(turn)

    async def _say_fallback(self, turn: _AgentTurn, rejected: list[str], language: str) -> None:
        """The model's reply left nothing to speak (wrong language or script, or only what the output
        filter removes): the caller hears the fallback line instead of silence."""
        if rejected:
            log.warning("reply not in %s, dropped: %r", language, " ".join(rejected))
            turn.record.wrong_script_text = " ".join(rejected)
        else:
            log.warning("the model's reply had nothing to speak; saying the fallback line")
        fallback = self._new_line(self.language.line("fallback", language), language)
        await self._play(turn, fallback)

    async def _run_tools(self, turn: _AgentTurn, reply: Reply) -> bool:
        """Execute the reply's tool calls; True if the model should speak again about results."""
        goodbye = self.language.line("goodbye")
        heard = " ".join(m.content for m in self.history.messages if m.role in ("user", "tool"))
        ctx = ToolContext(
            self.call,
            self.agent,
            said=reply.full_text,
            goodbye=goodbye,
            language=self.language.current,
            heard=heard,
        )
        follow_up = False
        for n, call in enumerate(reply.tool_calls):
            call.id = call.id or f"call_{self.floor.turns_started}_{n}"
            turn.record.tool_calls.append(call.name)
            self._emit(ToolCalled(turn.record.index, call.name, call.arguments))
            outcome = await self._execute_tool(turn, call, ctx)
            if outcome.final:  # the tool's own line answers the caller (e.g. an HTTP tool failed)
                self.history.add_tool_result(call, outcome.result or "Done.")
                if outcome.spoken:
                    await self._play(turn, self._new_line(outcome.spoken))
                continue
            if outcome.action is ToolAction.HANG_UP:
                self.history.add_tool_result(call, "The call is ending.")
                if outcome.spoken:
                    await self._play(turn, self._new_line(outcome.spoken))
                await self._end_call("agent_ended")
                return False
            if outcome.action is ToolAction.TRANSFER and outcome.target:
                if outcome.spoken:
                    await self._play(turn, self._new_line(outcome.spoken))
                if await self._transfer(outcome.target):
                    self.history.add_tool_result(call, "Transferred.")
                    return False
                outcome.result = "The transfer failed: this line cannot transfer calls. Tell the caller."
            if outcome.action is ToolAction.SWITCH_LANGUAGE and outcome.language:
                self.history.add_tool_result(call, await self._switch_by_tool(turn, outcome.language))
                continue  # the switch line answers the caller; the model need not speak again
            if outcome.action is ToolAction.COLLECT_DIGITS and outcome.collect is not None:
                collected = await self._collect_digits(turn, outcome.collect)
                outcome.result = collected.for_model(outcome.collect)
            self.history.add_tool_result(call, outcome.result or "Done.")
            follow_up = follow_up or outcome.result is not None
        return follow_up

    async def _execute_tool(self, turn: _AgentTurn, call: ToolCall, ctx: ToolContext) -> ToolOutcome:
        """Run one tool; if it is slow (an HTTP lookup) and the model said nothing before calling it,
        the caller hears the tool's filler line instead of silence while it runs."""
        started = self.clock.now()
        running = asyncio.ensure_future(self.tools.execute(call, ctx))
        try:
            filler = None if ctx.said.strip() else self.tools.filler(call.name, self.language.current)
            if filler is not None:
                after, line = filler
                if not await done_before(running, self.clock, started + after):
                    await self._play_aside(turn, line)
            outcome = await running
        finally:
            running.cancel()
        self.tool_log.append(
            {
                "turn": turn.record.index,
                "name": call.name,
                "arguments": call.arguments,
                "result": outcome.result,
                "spoken": outcome.spoken,
                "action": outcome.action.value,
                "duration_ms": round((self.clock.now() - started) * 1000, 1),
            }
        )
        return outcome

    async def _play_aside(self, turn: _AgentTurn, text: str) -> None:
        """Speak a line the caller hears but the model's history leaves out: between a tool call and
        its result the history must hold nothing else."""
        reply = self._new_line(text)
        turn.reply = reply  # a barge-in stops it like any other reply
        turn.replies.append(reply)
        await reply.generate()
        await reply.wait_played()
        turn.reply = None
        turn.record.agent_text = f"{turn.record.agent_text} {text}".strip()
        turn.record.agent_full_text = f"{turn.record.agent_full_text} {text}".strip()

    async def _switch_by_tool(self, turn: _AgentTurn, language: str) -> str:
        """The model called switch_language: switch and say so. Returns the tool's result."""
        name = language_name(language)
        if not self.language.request(language):
            return f"The call is already in {name}."
        turn.record.language, turn.record.language_switched = language, True
        self._emit(LanguageSwitched(language, requested=True))
        await self._play(turn, self._new_line(self.language.line("switched")))
        return f"The call is now in {name}."

    async def _transfer(self, target: str) -> bool:
        """Blind transfer once the caller has heard everything queued. False if the line can't."""
        await self.call.sink.drain()
        # The far end ends our leg when the transfer completes, and its BYE may come before or after
        # the news that the transfer worked: the transfer runs on its own (shielded from the turn's
        # cancellation) so a caller hang-up meanwhile can wait for its verdict.
        pending = asyncio.ensure_future(self.call.transfer(target))
        pending.add_done_callback(lambda f: f.cancelled() or f.exception())  # logged where awaited
        self._transferring = (target, pending)
        if not await asyncio.shield(pending):
            log.warning("transfer to %s failed", target)
            return False
        self._record_transfer(target)
        return True

    async def _transfer_succeeded(self) -> bool:
        """The caller's side ended: if that is a transfer in flight completing, record it as one."""
        if self._transferring is None:
            return False
        target, pending = self._transferring
        try:
            if not await done_before(pending, self.clock, self.clock.now() + TRANSFER_SETTLE_S):
                log.warning("the caller left while the transfer to %s was undecided", target)
                return False
            ok = pending.result()
        except Exception:
            log.exception("transfer to %s failed", target)
            return False
        if ok:
            self._record_transfer(target)
        return ok

    def _record_transfer(self, target: str) -> None:
        self.report.end_reason = "transferred"
        self.report.transferred_to = target

    async def _end_call(self, reason: str) -> None:
        """The agent ends the call: once the caller has heard everything queued (the goodbye), the
        conversation is over with `reason`; the call runner then hangs up with it."""
        await self.call.sink.drain()
        self.report.end_reason = reason

    def _new_reply(
        self,
        deltas: AsyncIterator[LLMDelta],
        policy: ReplyPolicy | None = None,
        language: str | None = None,
        *,
        held: bool = False,
        fixed_line: bool = False,
    ) -> Reply:
        """A reply in `language` (default: the call's), spoken by that language's voice. A
        `fixed_line` replays whatever of it was rendered at start-up (`Engines.line_audio`)."""
        language = language or self.language.current
        tts = self.engines.tts_for(language)
        return Reply(
            deltas,
            sink=self.call.sink,
            tts=tts,
            clock=self.clock,
            policy=policy,
            first_clause_words=FIRST_CLAUSE_WORDS if policy else 0,
            # the fallback voice speaks the default language; another language is better unsaid
            fallback_tts=self.engines.fallback_tts if tts is self.engines.tts else None,
            on_event=self._on_reply_event,
            speech_text=functools.partial(normalize_for_speech, language=language),
            held=held,
            line_audio=self.engines.line_audio if fixed_line else None,
        )

    def _new_line(self, text: str, language: str | None = None) -> Reply:
        """A fixed line (greeting, reprompt, menu prompt, tool's spoken line)."""
        return self._new_reply(static_text(text), language=language, fixed_line=True)

    async def _play(
        self, turn: _AgentTurn, reply: Reply, generating: asyncio.Task[None] | None = None
    ) -> None:
        """Generate and play `reply`; a prepared one is already `generating` and is released here."""
        turn.reply = reply
        turn.replies.append(reply)
        if generating is None:
            await reply.generate()
        else:
            try:
                await reply.release()
                await generating
            finally:
                generating.cancel()
        await reply.wait_played()
        self._reply_done(turn, reply, interrupted=False)

    def _reply_done(self, turn: _AgentTurn, reply: Reply, *, interrupted: bool) -> None:
        turn.reply = None
        if interrupted:
            heard = reply.heard_text()
            turn.record.interrupted = True
            self.history.add_assistant(heard, interrupted=True)
        else:
            heard = reply.full_text
            self.history.add_assistant(heard, tool_calls=reply.tool_calls)
        turn.record.agent_text = f"{turn.record.agent_text} {heard}".strip()
        turn.record.agent_full_text = f"{turn.record.agent_full_text} {reply.full_text}".strip()
        if heard:  # each line as it is said (agent_text comes once the whole turn is over)
            self._emit(AgentSaid(turn.record.index, heard))

    def _close_turn(self, turn: _AgentTurn) -> None:
        record, m = turn.record, turn.record.metrics
        if turn.llm_replies:
            first = turn.llm_replies[0].metrics
            m.llm_first_token_ms = first.llm_first_token_ms
            m.llm_first_sentence_ms = first.llm_first_sentence_ms
        heard_at = [t for t in (r.first_audio_out_at for r in turn.replies) if t is not None]
        if turn.replies:
            m.tts_first_audio_ms = turn.replies[0].metrics.tts_first_audio_ms
        if heard_at:
            record.agent_audio_start_at = self._epoch(heard_at[0])
            if turn.user_speech_end is not None:
                m.voice_to_voice_ms = (heard_at[0] - turn.user_speech_end) * 1000
        self.report.turns.append(record)
        self._safely(self.recorder.turn_finished, self.call.call_id, record)
        self._emit(AgentText(record.agent_text, record.interrupted))
        self._emit(TurnTimings(record.index, m))
        log.info(
            "turn %d%s: %s",
            record.index,
            " (interrupted)" if record.interrupted else "",
            " ".join(f"{k}={v}" for k, v in m.as_dict().items() if v is not None),
        )

    # ------------------------------------------------------------ keypad turns

    async def _ivr_turn(self, turn: _AgentTurn, step: IvrStep) -> None:
        lines = step.lines or ((self.language.line("goodbye"),) if step.action == "hangup" else ())
        await self._say(turn, *lines)
        if step.action == "transfer" and step.target:
            if not await self._transfer(step.target):
                await self._say(turn, TRANSFER_FAILED_LINE)
        elif step.action == "hangup":
            await self._end_call("agent_ended")
        elif step.action == "collect" and step.collect is not None:
            collected = await self._collect_digits(turn, step.collect)
            self.history.add_user(f"({step.note} {collected.for_model(step.collect)})")
            await self._answer(turn)
        elif step.action == "llm":
            self.history.add_user(f"({step.note})")
            await self._answer(turn)

    async def _collect_digits(self, turn: _AgentTurn, settings: CollectDigitsConfig) -> CollectResult:
        """Run one collect_digits: say its prompt (cut off by the first key or digit), then wait for
        the entry; meanwhile the floor hands the collector every key and spoken digit."""
        collector = DigitCollector(settings, self.clock)
        self._collector = collector
        try:
            self._note(EntryStarted(prompting=bool(settings.prompt)))
            if settings.prompt:
                await self._say_until(turn, settings.prompt, collector.got_input)
            self._note(EntryAwaited())
            result = await collector.collect()
        except BaseException:
            self._collector = None
            self._note(EntryEnded(completed=False))
            raise
        self._collector = None
        log.info("collected digits %r (%s)", result.digits, result.reason)
        turn.record.dtmf += result.digits
        self._emit(DigitsCollected(result.digits, result.reason))
        self._note(EntryEnded(completed=True))
        return result

    async def _say_until(self, turn: _AgentTurn, text: str, stop: asyncio.Event) -> None:
        """Speak a line, cut off as soon as `stop` is set (the caller started their entry)."""
        reply = self._new_line(text)
        play = asyncio.create_task(self._play(turn, reply), name="prompt")
        stopper = asyncio.create_task(stop.wait(), name="prompt-stop")
        try:
            await asyncio.wait([play, stopper], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            if not play.done():
                play.cancel()
                await asyncio.wait([play])
                self._reply_done(turn, reply, interrupted=True)
                self.call.sink.clear()
        if not play.cancelled():
            play.result()  # re-raise what the playback raised

    # ------------------------------------------------------------ helpers

    def _on_reply_event(self, event: ReplyEvent) -> None:
        turn = self._turn
        if isinstance(event, ReplyAudioStarted) and turn is not None and event.reply in turn.replies:
            self._note(AudioStarted(turn.record.index))

    def _emit(self, event: ConversationEvent) -> None:
        if self.on_event is not None:
            self._safely(self.on_event, to_wire(event))

    def _epoch(self, t: float) -> float:
        """A clock time as wall-clock epoch seconds (for the report)."""
        return time.time() - (self.clock.now() - t)

    @staticmethod
    def _safely(fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("%r failed", fn)
