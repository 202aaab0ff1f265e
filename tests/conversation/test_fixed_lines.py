"""Fixed lines rendered before the first call: which lines, how they are kept, and a failing voice."""

from __future__ import annotations

from typing import Any

import pytest

from conversation.fakes import CollectingSink, FakeLLM, FakeSTT, FakeTTS, FakeVAD
from voxline.agent.config import AgentConfig
from voxline.audio.clock import MonotonicClock
from voxline.audio.pcm import AudioChunk
from voxline.conversation.fixed_lines import lines_to_render, render_fixed_lines
from voxline.conversation.reply import Reply, static_sentences, static_speech, static_text
from voxline.engines.base import Engines
from voxline.engines.line_audio import LineAudio
from voxline.language.normalize import speech_normalizer


def agent(**config: Any) -> AgentConfig:
    return AgentConfig.model_validate(config)


def engines(**voices: FakeTTS) -> Engines:
    return Engines(vad=FakeVAD(), stt=FakeSTT([]), llm=FakeLLM([]), tts=FakeTTS(), voices=dict(voices))


def test_the_greeting_a_start_menu_and_each_other_languages_switch_line_are_rendered() -> None:
    menus = {
        "start": "main",
        "menus": {"main": {"prompt": "For cards press 1.", "options": {"1": {"say": "Cards."}}}},
    }
    english_only = agent(greeting="Hello there.", ivr=menus)
    assert lines_to_render(english_only) == [("en", "Hello there."), ("en", "For cards press 1.")]
    bilingual = agent(language="en", languages={"mode": "auto", "allowed": ["en", "hi"]})
    lines = lines_to_render(bilingual)
    assert lines[0][0] == "en" and lines[1] == ("hi", "ठीक है, अब हम हिंदी में बात करते हैं।")
    fixed = agent(language="hi", languages={"mode": "fixed"}, greeting="नमस्ते।")
    assert lines_to_render(fixed) == [("hi", "नमस्ते।")]


def test_lines_are_split_as_a_reply_splits_them() -> None:
    assert static_sentences("Thanks for calling. How can I help?") == [
        "Thanks for calling.",
        "How can I help?",
    ]
    assert static_sentences("Hi 🙂 there!") == ["Hi there!"]


async def test_each_language_is_rendered_by_its_own_voice_and_kept_under_it() -> None:
    hindi = FakeTTS(sample_rate=24000)
    bundle = engines(hi=hindi)
    bilingual = agent(greeting="Hello.", languages={"mode": "auto", "allowed": ["en", "hi"]})
    rendered = await render_fixed_lines(bilingual, bundle)
    english = bundle.tts
    assert isinstance(english, FakeTTS)
    assert english.spoken == ["Hello."] and hindi.spoken == ["ठीक है, अब हम हिंदी में बात करते हैं।"]
    assert rendered.sentences == 2 and rendered.audio_s > 0
    assert bundle.line_audio.get(english, "Hello.") is not None
    assert bundle.line_audio.get(hindi, "Hello.") is None  # another voice never replays it
    await render_fixed_lines(bilingual, bundle)  # a second warm-up renders nothing again
    assert english.spoken == ["Hello."]


async def test_a_voice_failing_at_warm_up_costs_only_the_head_start() -> None:
    bundle = Engines(vad=FakeVAD(), stt=FakeSTT([]), llm=FakeLLM([]), tts=FakeTTS(fail_on="Hello"))
    rendered = await render_fixed_lines(agent(greeting="Hello. Welcome."), bundle)
    assert rendered.sentences == 1 and len(bundle.line_audio) == 1  # "Welcome." was kept


def test_line_audio_keeps_the_most_recently_used_lines() -> None:
    voice = FakeTTS()
    kept = LineAudio(max_lines=2)
    tone = [AudioChunk.silence(0.1, 8000)]
    kept.put(voice, "one", tone)
    kept.put(voice, "two", tone)
    assert kept.get(voice, "one") == tone  # "one" is now the most recent
    kept.put(voice, "three", tone)
    assert kept.get(voice, "two") is None and kept.get(voice, "one") == tone and len(kept) == 2
    assert kept.get(voice, "one", voice="other") is None
    kept.put(voice, "empty", [])
    assert kept.get(voice, "empty") is None


@pytest.mark.parametrize("voice_name", [None, "alba"])
async def test_render_keeps_what_the_voice_made(voice_name: str | None) -> None:
    voice = FakeTTS(seconds_per_char=0.01)
    kept = LineAudio()
    duration = await kept.render(voice, "Hello.", voice_name)
    chunks = kept.get(voice, "Hello.", voice_name)
    assert chunks is not None and duration == pytest.approx(voice.duration_s("Hello."), abs=0.01)
    assert sum(c.duration_s for c in chunks) == pytest.approx(duration)


# Lines whose words the normaliser rewrites (amounts, dates, times, abbreviations), so a cache key
# built without it, or split differently, would miss.
SPOKEN_LINES = [
    ("en", "Your ₹1,500 is due on 05/12. Dr. Rao calls at 10:30 am! Anything else? 🙂"),
    ("hi", "आपके ₹2,50,000 बाकी हैं। किस्त 5 तारीख को है। और कुछ?"),
    ("mr", "तुमचे ₹1,200 बाकी आहेत. हप्ता 05/12 ला आहे."),
]


@pytest.mark.parametrize(("language", "line"), SPOKEN_LINES, ids=[code for code, _ in SPOKEN_LINES])
async def test_a_rendered_line_said_through_a_reply_is_replayed_not_synthesised(
    language: str, line: str
) -> None:
    voice = FakeTTS(seconds_per_char=0.001)
    bundle = Engines(vad=FakeVAD(), stt=FakeSTT([]), llm=FakeLLM([]), tts=voice)
    await render_fixed_lines(agent(language=language, greeting=line), bundle)
    rendered = list(voice.spoken)
    assert len(rendered) == len(static_sentences(line)) >= 2
    assert rendered != static_sentences(line)  # the normaliser did rewrite it
    sink = CollectingSink()
    reply = Reply(
        static_text(line),
        sink=sink,
        tts=voice,
        clock=MonotonicClock(),
        speech_text=speech_normalizer(language),
        line_audio=bundle.line_audio,
    )
    await reply.generate()
    await reply.wait_played()
    assert voice.spoken == rendered  # every sentence came from the kept audio
    assert sink.emitted_s == pytest.approx(sum(voice.duration_s(text) for text in rendered), abs=0.05)
    await sink.aclose()


async def test_a_reply_that_rewrites_differently_misses_the_kept_line() -> None:
    """The control: the key is the text the voice reads, so a reply without the normaliser finds
    nothing and synthesises (what a drifted key would silently do)."""
    language, line = SPOKEN_LINES[0]
    voice = FakeTTS(seconds_per_char=0.001)
    kept = LineAudio()
    for text in static_speech(line, speech_normalizer(language)):
        await kept.render(voice, text)
    sink = CollectingSink()
    reply = Reply(static_text(line), sink=sink, tts=voice, clock=MonotonicClock(), line_audio=kept)
    await reply.generate()
    await reply.wait_played()
    rewritten = static_speech(line, speech_normalizer(language))
    missed = [
        as_written
        for as_written, said in zip(static_sentences(line), rewritten, strict=True)
        if as_written != said
    ]
    assert missed and voice.spoken[len(rewritten) :] == missed  # "Anything else?" still matched
    await sink.aclose()


@pytest.mark.parametrize(("language", "line"), SPOKEN_LINES, ids=[code for code, _ in SPOKEN_LINES])
async def test_static_speech_is_what_a_reply_hands_its_voice(language: str, line: str) -> None:
    voice = FakeTTS(seconds_per_char=0.001)
    sink = CollectingSink()
    normalizer = speech_normalizer(language)
    reply = Reply(static_text(line), sink=sink, tts=voice, clock=MonotonicClock(), speech_text=normalizer)
    await reply.generate()
    await reply.wait_played()
    assert voice.spoken == static_speech(line, normalizer)
    await sink.aclose()
