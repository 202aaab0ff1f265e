"""The call floor as a pure machine: events in at virtual times, commands out, no asyncio.

Each test walks one path of a call (greeting, answer, barge-in and resume, superseded turns,
prepared answers, keypad menus, key runs and digit entry, silence, call length, turn limit) by
feeding the events the listener and the shell would feed, and reads what the floor decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from voxline.agent.config import AgentConfig
from voxline.audio.pcm import AudioChunk
from voxline.conversation.events import KeyPressed
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
    Verbatim,
    sounds_finished,
)
from voxline.conversation.listener import CallerHangup, DtmfPressed, TextTurn, TurnDraft, UserTurn
from voxline.conversation.turns import BargeInFalse, BargeInPause, NoiseDiscarded, SpeechResumed, SpeechStart
from voxline.engines.base import LanguageGuess

SILENCE = np.zeros(160, np.int16)


def agent(**overrides: Any) -> AgentConfig:
    config: dict[str, Any] = {"limits": {"silence_reprompt_s": 8, "max_reprompts": 1, "max_call_s": 600}}
    config.update(overrides)
    return AgentConfig.model_validate(config)


@dataclass
class Call:
    """A floor driven on virtual time: `at(t, event)` feeds one event and keeps what it decided."""

    floor: Floor
    now: float = 0.0
    log: list[Command] = field(default_factory=list)

    @classmethod
    def start(cls, config: AgentConfig | None = None, *, prepares: bool = True) -> Call:
        call = cls(Floor.for_agent(config or agent(), prepares_answers=prepares))
        call.at(0.0, CallStarted())
        return call

    def at(self, t: float, event: FloorEvent) -> list[Command]:
        assert t >= self.now, "virtual time only moves forward"
        self.now = t
        out = self.floor.on(event, t)
        self.log += out
        return out

    def wait(self) -> list[Command]:
        """Let virtual time run to the floor's next deadline."""
        return self.at(self.floor.next_deadline(), TimeUp())

    def end_turn(self, t: float) -> list[Command]:
        assert self.floor.turn is not None
        return self.at(t, AgentTurnEnded(self.floor.turn))

    def states(self) -> list[str]:
        return [c.event.state for c in self.log if isinstance(c, Emit) and hasattr(c.event, "state")]


def started(commands: list[Command]) -> StartTurn:
    turns = [c for c in commands if isinstance(c, StartTurn)]
    assert len(turns) == 1, commands
    return turns[0]


def user_turn(t_onset: float, t_last: float, audio_key: float | None = None) -> UserTurn:
    return UserTurn(AudioChunk(SILENCE, 16000), t_onset, t_last, t_last + 0.5, audio_key=audio_key)


def say(call: Call, t: float, words: str, audio_key: float | None = None, **how: Any) -> list[Command]:
    """The caller speaks a turn ending at `t`: the listener's events, then the transcript."""
    call.at(t - 1.0, SpeechStart(t - 1.0))
    transcribe = call.at(t, user_turn(t - 1.0, t - 0.5, audio_key))
    assert any(isinstance(c, Transcribe) for c in transcribe)
    return transcribe + call.at(t + 0.1, CallerWords(words, "en", **how))


# ---------------------------------------------------------------- greeting, answers, timers


def test_the_call_opens_with_the_greeting_and_answers_a_turn() -> None:
    call = Call.start()
    greeting = started(call.log)
    assert greeting.turn == 0 and greeting.body == SayLines(("greeting",))
    assert call.floor.state == State.THINKING and call.floor.agent_has_floor
    call.at(0.2, AudioStarted(0))
    assert call.floor.state == State.SPEAKING
    call.end_turn(1.0)
    assert call.floor.state == State.LISTENING and call.floor.caller_has_floor
    assert call.floor.next_deadline() == 9.0  # the silence reprompt, 8 s after the greeting

    out = say(call, 3.0, "When do you open?")
    answer = started(out).body
    assert isinstance(answer, AnswerCaller)
    assert (answer.words, answer.user_text, answer.notes, answer.turns_exhausted) == (
        "When do you open?",
        "When do you open?",
        (),
        False,
    )
    assert call.floor.next_deadline() == 600.0  # no silence timer while the agent has the floor
    assert call.states() == ["thinking", "speaking", "listening", "user_speaking", "thinking"]


def test_silence_reprompts_then_says_goodbye_and_hangs_up() -> None:
    call = Call.start()
    call.end_turn(1.0)
    reprompt = started(call.wait())
    assert call.now == 9.0 and reprompt.body == SayLines(("reprompt",))
    call.end_turn(10.0)
    goodbye = started(call.wait())
    assert call.now == 18.0 and goodbye.body == SayLines(("goodbye",), ends_call="silence")


def test_speech_or_a_key_restarts_the_silence_count() -> None:
    call = Call.start()
    call.end_turn(1.0)
    call.at(5.0, SpeechStart(5.0))
    call.at(5.3, NoiseDiscarded(5.0, 5.1))
    assert call.floor.state == State.LISTENING and call.floor.silence_deadline is None
    assert call.floor.next_deadline() == 600.0  # nothing more until the caller or the agent acts
    out = call.wait()  # no reprompt ever came: the next thing is the call's length running out
    assert call.now == 600.0 and started(out).body == SayLines(("goodbye",), ends_call="max_duration")
    assert call.floor.reprompts == 0


def test_max_call_length_cuts_in_with_a_goodbye_then_hangs_up_if_it_overruns() -> None:
    call = Call.start(agent(limits={"max_call_s": 30, "silence_reprompt_s": 100}))
    say(call, 20.0, "Tell me everything.")
    out = call.wait()
    assert call.now == 30.0
    assert isinstance(out[0], CancelTurn)
    assert started(out).body == SayLines(("goodbye",), ends_call="max_duration")
    assert call.floor.closing
    # while the goodbye plays the caller cannot interrupt or start a turn
    assert call.at(31.0, BargeInPause(31.0)) == []
    assert call.at(32.0, user_turn(31.0, 31.5)) == []
    assert call.at(32.5, DtmfPressed("1", 32.5)) == [Emit(KeyPressed("1"))]
    out = call.wait()
    assert call.now == 45.0 and out == [CancelTurn(), EndCall("max_duration")]
    assert call.floor.ended and call.at(50.0, TimeUp()) == []


def test_a_key_while_closing_is_shown_but_changes_nothing() -> None:
    call = Call.start(agent(limits={"max_call_s": 10}))
    call.wait()
    out = call.at(11.0, DtmfPressed("5", 11.0))
    assert [type(c) for c in out] == [Emit] and call.floor.turn == 1


def test_the_turn_limit_records_the_turn_then_says_goodbye() -> None:
    call = Call.start(agent(limits={"max_turns": 2}))
    call.end_turn(1.0)
    assert not started(say(call, 3.0, "One.")).body.turns_exhausted  # type: ignore[union-attr]
    call.end_turn(4.0)
    last = started(say(call, 6.0, "Two."))
    assert isinstance(last.body, AnswerCaller) and last.body.turns_exhausted


def test_the_caller_hanging_up_ends_everything() -> None:
    call = Call.start()
    out = call.at(0.5, CallerHangup(0.5))
    assert out == [CallerLeft()] and call.floor.ended
    assert call.at(1.0, AgentTurnEnded(0)) == []


# ---------------------------------------------------------------- barge-in


def playing_answer() -> Call:
    call = Call.start()
    call.end_turn(1.0)
    say(call, 3.0, "What's my balance?")
    call.at(3.3, AudioStarted(1))
    return call


def test_barge_in_pauses_then_a_false_alarm_resumes() -> None:
    call = playing_answer()
    assert call.at(4.0, BargeInPause(3.95)) == [PauseReply(1, 3.95)]
    call.at(4.01, ReplyPaused(1))
    assert call.floor.state == State.USER_SPEAKING and call.floor.paused
    assert call.at(4.3, BargeInFalse(3.95)) == [ResumeReply(1, "noise")]
    call.at(4.31, ReplyResumed(1, audible=True))
    assert call.floor.state == State.SPEAKING and not call.floor.paused


def test_a_backchannel_over_the_agent_resumes_it_and_words_take_over() -> None:
    call = playing_answer()
    call.at(4.0, BargeInPause(3.95))
    call.at(4.01, ReplyPaused(1))
    out = call.at(5.0, user_turn(3.95, 4.5)) + call.at(5.1, CallerWords("mm-hm"))
    assert out[-1] == ResumeReply(1, "backchannel 'mm-hm'") and call.floor.turn == 1
    call.at(5.2, ReplyResumed(1, audible=True))

    call.at(6.0, BargeInPause(5.95))
    call.at(6.01, ReplyPaused(1))
    # "yes" answering a question the caller had mostly heard is a real turn, not a backchannel
    out = call.at(7.0, user_turn(5.95, 6.5)) + call.at(7.1, CallerWords("yes", answers_question=True))
    assert CancelTurn(superseded=True) in out
    assert started(out).turn == 2 and call.floor.carried == ""  # the caller had heard the answer


def test_no_words_while_the_agent_talks_unpaused_change_nothing() -> None:
    call = playing_answer()
    out = call.at(5.0, user_turn(4.0, 4.5)) + call.at(5.1, CallerWords(""))
    assert not any(isinstance(c, CancelTurn | StartTurn) for c in out) and call.floor.turn == 1


def test_a_turn_superseded_before_a_word_was_heard_is_carried_into_the_next() -> None:
    call = Call.start()
    call.end_turn(1.0)
    say(call, 3.0, "I want to")
    out = say(call, 5.0, "block my card")
    assert CancelTurn(superseded=True) in out
    body = started(out).body
    assert isinstance(body, AnswerCaller) and body.user_text == "I want to block my card"
    assert body.words == "block my card" and call.floor.carried == ""


# ---------------------------------------------------------------- answers prepared on a pause


def paused_caller(call: Call, audio_key: float) -> list[Command]:
    call.at(2.0, SpeechStart(2.0))
    return call.at(2.8, TurnDraft(AudioChunk(SILENCE, 16000), 2.7, audio_key=audio_key))


def test_an_answer_is_prepared_on_the_pause_and_kept_for_the_same_turn() -> None:
    call = Call.start()
    call.end_turn(1.0)
    draft = paused_caller(call, audio_key=2.7)
    assert [type(c) for c in draft] == [StartDraft] and draft[0].prepare  # type: ignore[union-attr]
    assert call.at(2.9, DraftWords(2.7, "When do you open?")) == [
        PrepareAnswer(2.7, "When do you open?"),
        EndTurnEarly(2.7, 0.25),
    ]
    out = call.at(3.2, user_turn(2.0, 2.7, audio_key=2.7))
    assert Transcribe(out[-1].turn, use_draft=True) == out[-1]  # type: ignore[union-attr]
    out = call.at(3.3, CallerWords("When do you open?", "en"))
    assert not any(isinstance(c, DropPrepared) for c in out)
    assert isinstance(started(out).body, AnswerCaller)


def test_a_prepared_answer_is_dropped_when_the_caller_goes_on_or_says_only_mm_hm() -> None:
    call = Call.start()
    call.end_turn(1.0)
    paused_caller(call, audio_key=2.7)
    call.at(2.9, DraftWords(2.7, "When do"))
    assert call.at(3.0, SpeechResumed(2.0)) == [DropDraft(), DropPrepared()]
    assert call.floor.prepared_audio_key is None and call.floor.draft_audio_key is None
    # a draft that is only a backchannel prepares nothing
    call.at(3.5, TurnDraft(AudioChunk(SILENCE, 16000), 3.4, audio_key=3.4))
    assert call.at(3.6, DraftWords(3.4, "mm-hm")) == []
    # a turn that ends later than the draft drops what was prepared for it
    call.at(3.7, SpeechResumed(2.0))
    call.at(4.0, TurnDraft(AudioChunk(SILENCE, 16000), 3.9, audio_key=3.9))
    call.at(4.1, DraftWords(3.9, "When do you open"))
    out = call.at(5.0, user_turn(2.0, 4.5, audio_key=4.5))
    assert out[0] == DropPrepared() and out[-1].use_draft is False  # type: ignore[union-attr]


def test_nothing_is_prepared_while_the_agent_talks_keys_are_pending_or_languages_are_identified() -> None:
    call = Call.start()
    assert not paused_caller(call, audio_key=2.7)[0].prepare  # type: ignore[union-attr]  # greeting runs
    assert call.at(2.9, DraftWords(2.7, "Hello there")) == []
    call.end_turn(3.0)
    call.at(3.1, DtmfPressed("1", 3.1))  # a key run is pending
    assert not call.floor.may_prepare_answers()

    identifying = Call.start(prepares=False)
    identifying.end_turn(1.0)
    assert not paused_caller(identifying, audio_key=2.7)[0].prepare  # type: ignore[union-attr]


def test_a_turn_that_goes_another_way_drops_the_prepared_answer() -> None:
    call = Call.start(agent(limits={"max_turns": 1}))
    call.end_turn(1.0)
    paused_caller(call, audio_key=2.7)
    assert call.at(2.9, DraftWords(2.7, "Hi")) == [PrepareAnswer(2.7, "Hi")]
    call.at(3.2, user_turn(2.0, 2.7, audio_key=2.7))
    out = call.at(3.3, CallerWords("Hi"))
    body = started(out).body
    assert isinstance(body, AnswerCaller) and body.turns_exhausted and out[-1] == DropPrepared()


# ---------------------------------------------------------------- ending a finished request early


@pytest.mark.parametrize(
    ("text", "routed", "finished"),
    [
        ("When do you open?", False, True),
        ("Can I speak to a person?", False, True),
        ("I forgot my PIN. Can you tell me what it is?", True, True),
        ("I lost my card.", True, True),
        ("I lost my card.", False, False),  # whisper closes halves with a full stop: not enough
        ("Please check.", False, False),  # ... the number and dial again
        ("I'd like to check my...", True, False),  # trailing off
        ("I lost my card and", True, False),  # a route in it, but the caller is going on
        ("Can I pay my bill at the?", True, False),
        ("My card was stolen, um.", True, False),
        ("That pin is invalid for this", True, False),  # no sentence end heard
        ("The coffee?", False, False),  # too short to be a request on its own
        ("", True, False),
    ],
)
def test_a_draft_is_finished_when_it_reads_as_a_request(text: str, routed: bool, finished: bool) -> None:
    assert sounds_finished(text, routed=routed) is finished


def test_a_finished_draft_ends_the_turn_early_and_an_unfinished_one_does_not() -> None:
    call = Call.start(agent(turn={"early_end_silence_ms": 200}))
    call.end_turn(1.0)
    paused_caller(call, audio_key=2.7)
    assert EndTurnEarly(2.7, 0.2) in call.at(2.9, DraftWords(2.7, "Can you block my card?"))
    # the caller went on (the listener voids the early end itself); a new pause, unfinished words
    call.at(3.0, SpeechResumed(2.0))
    call.at(3.5, TurnDraft(AudioChunk(SILENCE, 16000), 3.4, audio_key=3.4))
    out = call.at(3.6, DraftWords(3.4, "Can you block my card and"))
    assert not any(isinstance(c, EndTurnEarly) for c in out)
    # words of an older pause arriving late end nothing
    assert call.at(3.7, DraftWords(2.7, "Can you block my card?")) == []
    # a full stop is no evidence on its own; a route that matched the words is
    call.at(3.75, SpeechResumed(2.0))
    call.at(3.76, TurnDraft(AudioChunk(SILENCE, 16000), 3.75, audio_key=3.75))
    assert not any(isinstance(c, EndTurnEarly) for c in call.at(3.77, DraftWords(3.75, "I lost my card.")))
    call.at(3.8, SpeechResumed(2.0))
    call.at(4.3, TurnDraft(AudioChunk(SILENCE, 16000), 4.2, audio_key=4.2))
    assert EndTurnEarly(4.2, 0.2) in call.at(4.4, DraftWords(4.2, "I lost my card.", routed=True))


def test_no_early_end_over_the_agent_or_when_switched_off() -> None:
    call = Call.start()  # the greeting is playing: a pause in a barge-in is not the caller's turn end
    draft = paused_caller(call, audio_key=2.7)[0]
    assert isinstance(draft, StartDraft) and not draft.words
    assert call.at(2.9, DraftWords(2.7, "When do you open?")) == []

    off = Call.start(agent(turn={"early_end_silence_ms": 0}), prepares=False)
    off.end_turn(1.0)
    draft = paused_caller(off, audio_key=2.7)[0]
    assert isinstance(draft, StartDraft) and not draft.words  # nobody needs the draft's words early
    assert off.at(2.9, DraftWords(2.7, "When do you open?")) == []


def test_a_language_identifying_agent_ends_early_without_preparing_an_answer() -> None:
    call = Call.start(prepares=False)
    call.end_turn(1.0)
    draft = paused_caller(call, audio_key=2.7)[0]
    assert isinstance(draft, StartDraft) and draft.words and not draft.prepare
    assert call.at(2.9, DraftWords(2.7, "When do you open?")) == [EndTurnEarly(2.7, 0.25)]
    out = call.at(3.2, user_turn(2.0, 2.7, audio_key=2.7))
    assert isinstance(out[-1], Transcribe) and out[-1].use_draft


def test_the_early_silence_is_capped_by_the_end_of_turn_silence() -> None:
    floor = Floor.for_agent(
        agent(turn={"early_end_silence_ms": 800, "end_of_turn_silence_ms": 400}), prepares_answers=True
    )
    assert floor.early_end_s == 0.4
    no_drafts = agent(turn={"speculative_pause_ms": 0})
    assert Floor.for_agent(no_drafts, prepares_answers=True).early_end_s == 0.0


# ---------------------------------------------------------------- keypad


MENUS: dict[str, Any] = {
    "start": "main",
    "main": {
        "prompt": "Main menu.",
        "timeout_s": 5,
        "options": {
            "1": {"say": "Balances.", "then": "menu:balance"},
            "4": {"action": "llm", "note": "caller chose loans"},
            "5": {"action": "collect", "collect": {"prompt": "Enter your account number."}},
        },
    },
    "balance": {"prompt": "Balance menu.", "options": {"*": {"action": "back"}}},
}


def test_the_start_menu_follows_the_greeting_and_a_key_interrupts_it() -> None:
    call = Call.start(agent(ivr=MENUS))
    assert started(call.log).body == SayLines(("greeting", Verbatim("Main menu.")))
    call.at(0.5, AudioStarted(0))
    out = call.at(1.0, DtmfPressed("1", 0.9))
    assert out[1] == CancelTurn(key_pressed_at=0.9)
    choice = started(out).body
    assert isinstance(choice, MenuChoice) and choice.key == "1"
    assert choice.step.lines == ("Balances.", "Balance menu.")
    assert call.floor.keypad.ivr.active == "balance"
    call.end_turn(3.0)
    assert call.floor.next_deadline() == 9.0  # the menu's own silence timeout (6 s default)
    assert started(call.wait()).body == SayLines((Verbatim("Balance menu."),))


def test_speaking_in_a_menu_leaves_it_with_a_note_for_the_model() -> None:
    call = Call.start(agent(ivr=MENUS))
    call.end_turn(1.0)
    body = started(say(call, 3.0, "I lost my card")).body
    assert isinstance(body, AnswerCaller) and body.notes and "Main menu." in body.notes[0]
    assert call.floor.keypad.ivr.active is None


def test_keys_outside_a_menu_become_one_turn_when_the_caller_pauses() -> None:
    call = Call.start()
    call.end_turn(1.0)
    assert call.at(2.0, DtmfPressed("1", 2.0)) == [Emit(KeyPressed("1"))]
    call.at(2.5, DtmfPressed("2", 2.5))
    call.at(2.6, DtmfPressed("x", 2.6))  # not a key: ignored
    assert call.floor.next_deadline() == 2.5 + 2.0  # the inter-digit gap
    assert started(call.wait()).body == KeyRunTurn("12")
    # keys pressed just before speaking go with the words
    call.end_turn(6.0)
    call.at(7.0, DtmfPressed("9", 7.0))
    body = started(say(call, 8.0, "that's my code")).body
    assert isinstance(body, AnswerCaller) and body.keys == "9" and body.notes == ("(caller pressed 9)",)


def test_digit_entry_takes_keys_and_spoken_digits_and_gives_the_floor_to_the_caller() -> None:
    call = Call.start(agent(ivr=MENUS))
    call.end_turn(1.0)
    choice = started(call.at(2.0, DtmfPressed("5", 2.0))).body
    assert isinstance(choice, MenuChoice) and choice.step.action == "collect"
    call.at(2.1, EntryStarted(prompting=True))
    assert call.floor.agent_has_floor  # the prompt may be barged in on
    # a key over the prompt is part of the entry: no barge-in
    assert call.at(2.5, DtmfPressed("4", 2.5))[-1] == ToEntry(keys="4") and call.floor.turn == 1
    call.at(2.6, EntryAwaited())
    assert call.floor.state == State.LISTENING and not call.floor.agent_has_floor
    assert call.floor.caller_has_floor
    out = say(call, 4.0, "two three")
    assert ToEntry(keys="23") in out and not any(isinstance(c, StartTurn) for c in out)
    out = say(call, 6.0, "I don't know it")
    assert ToEntry(words="I don't know it") in out
    out = say(call, 8.0, "mm")
    assert not any(isinstance(c, ToEntry) for c in out)
    call.at(8.5, EntryEnded(completed=True))
    assert call.floor.state == State.THINKING and not call.floor.keypad.collecting


# ---------------------------------------------------------------- text turns


def test_a_text_turn_takes_the_path_of_a_heard_one() -> None:
    call = Call.start()
    call.end_turn(1.0)
    out = call.at(2.0, TextTurn("Hello", 2.0))
    assert out[-1] == Transcribe(TextTurn("Hello", 2.0), use_draft=False)
    body = started(call.at(2.0, CallerWords("Hello", "en"))).body
    assert isinstance(body, AnswerCaller) and body.caller_turn == TextTurn("Hello", 2.0)


def test_no_words_hand_the_floor_back_to_the_caller() -> None:
    call = Call.start()
    call.end_turn(1.0)
    call.wait()  # the reprompt
    call.end_turn(10.0)
    out = say(call, 12.0, "")
    assert not any(isinstance(c, StartTurn) for c in out) and call.floor.state == State.LISTENING
    assert call.floor.next_deadline() == 12.1 + 8.0
    assert call.floor.reprompts == 1  # only words reset the count


def test_the_transcripts_language_and_guess_reach_the_turn_for_the_language_policy() -> None:
    call = Call.start(prepares=False)  # an agent that identifies languages prepares no answers
    call.end_turn(1.0)
    guess = LanguageGuess("hi", 0.93)
    call.at(2.0, SpeechStart(2.0))
    call.at(3.0, user_turn(2.0, 2.5))
    body = started(call.at(3.1, CallerWords("हिंदी में बात कीजिए", "hi", guess, stt_ms=42.0))).body
    assert isinstance(body, AnswerCaller)
    assert (body.language, body.guess, body.stt_ms) == ("hi", guess, 42.0)
    assert call.floor.prepared_audio_key is None


def test_stale_and_orphan_events_change_nothing() -> None:
    call = Call.start()
    call.end_turn(1.0)
    assert call.at(1.5, BargeInPause(1.45)) == []  # nobody to interrupt
    assert call.at(1.6, BargeInFalse(1.45)) == []
    say(call, 3.0, "First question")  # turn 1
    out = say(call, 5.0, "no wait, second")  # supersedes turn 1 with turn 2
    assert started(out).turn == 2
    # turn 1's task ends late (its cancellation finished): not the running turn, so ignored
    assert call.at(5.2, AgentTurnEnded(1)) == [] and call.floor.turn == 2
    assert call.at(5.3, AudioStarted(1)) == [] and call.floor.state == State.THINKING
    assert call.at(5.4, ReplyPaused(1)) == [] and not call.floor.paused


def test_speech_over_a_digit_prompt_and_a_cancelled_entry() -> None:
    call = Call.start(agent(ivr=MENUS))
    call.end_turn(1.0)
    call.at(2.0, DtmfPressed("5", 2.0))
    call.at(2.1, EntryStarted(prompting=True))
    call.at(2.2, AudioStarted(1))
    out = say(call, 4.0, "four five")  # digits said over the prompt stop it like keys
    assert ToEntry(keys="45") in out and call.floor.state == State.SPEAKING
    call.at(4.5, EntryEnded(completed=False))  # the turn was cancelled (the caller hung up, ...)
    assert not call.floor.keypad.collecting and call.floor.state == State.SPEAKING
