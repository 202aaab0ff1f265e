"""A turn whose speech-to-text fails (the node's speech server crashed mid-request, or its queue was
full) is answered with the fallback line, not with silence."""

from __future__ import annotations

from conversation.fakes import FakeLLM, FakeSTT, FakeTTS, FakeVAD
from conversation.test_conversation import conversation
from conversation.test_floor import Call, say, started
from voxline.audio.pcm import AudioChunk
from voxline.conversation.floor import AudioStarted, SayLines
from voxline.conversation.language import LanguagePolicy
from voxline.engines.base import EngineError, Engines, Transcript


class FailingOnceSTT(FakeSTT):
    async def transcribe(self, audio: AudioChunk, language: str | None = None) -> Transcript:
        if not self.transcribed_s:
            self.transcribed_s.append(audio.duration_s)
            raise EngineError("the speech server closed the connection mid-request (crashed?)")
        return await super().transcribe(audio, language)


def test_the_floor_answers_an_unheard_turn_with_the_fallback_line() -> None:
    call = Call.start()
    call.at(0.2, AudioStarted(0))
    call.end_turn(1.0)
    out = say(call, 3.0, "", unheard=True)
    assert started(out).body == SayLines(("fallback",))
    # a turn with no words that was heard (noise) still changes nothing
    call.end_turn(4.0)
    out = say(call, 6.0, "")
    assert not [c for c in out if type(c).__name__ == "StartTurn"]


async def test_a_failed_transcription_gets_the_fallback_line_and_the_next_turn_an_answer() -> None:
    from conversation.test_conversation import make_agent

    agent = make_agent()
    stt = FailingOnceSTT(["When do you open?"])
    engines = Engines(vad=FakeVAD(), stt=stt, llm=FakeLLM(["We open at nine."]), tts=FakeTTS())
    async with conversation(agent=agent, engines=engines) as h:
        await h.until_listening(after=0)
        h.call.talk(0.5)
        await h.until_listening(after=1)
        h.call.talk(0.5)
        await h.until_listening(after=2)
        await h.call.caller_hangs_up()
        report = await h.report()
    fallback = LanguagePolicy(agent).line("fallback")
    assert [t.agent_text for t in report.turns] == ["Hello.", fallback, "We open at nine."]
    assert h.tts.spoken == ["Hello.", fallback, "We open at nine."]
