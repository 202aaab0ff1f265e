"""Reply: pipelined sentences, exact heard text after a pause, resume, and the TTS fallback."""

from __future__ import annotations

import asyncio

from conversation.fakes import CollectingSink, FakeTTS, wait_until
from voxline.audio.clock import MonotonicClock
from voxline.conversation.reply import Reply, static_text
from voxline.conversation.sanitize import ReplyPolicy

TEXT = "One two three four five six seven eight. Nine ten eleven twelve."


async def test_reply_plays_all_sentences_in_order() -> None:
    sink, tts = CollectingSink(), FakeTTS(seconds_per_char=0.002)
    reply = Reply(static_text(TEXT), sink=sink, tts=tts, clock=MonotonicClock())
    await reply.generate()
    await reply.wait_played()
    assert tts.spoken == ["One two three four five six seven eight.", "Nine ten eleven twelve."]
    assert reply.heard_text() == TEXT
    assert sink.emitted_s >= tts.duration_s(TEXT) - 0.05
    await sink.aclose()


async def test_pause_computes_heard_words_and_resume_replays_the_cut_sentence() -> None:
    sink, tts = CollectingSink(), FakeTTS(seconds_per_char=0.02)  # first sentence: 0.8 s
    reply = Reply(static_text(TEXT), sink=sink, tts=tts, clock=MonotonicClock())
    await reply.generate()
    await wait_until(lambda: sink.played_s >= 0.42)
    assert reply.pause()
    heard = reply.heard_text().split()
    # about half of the 8 words of the first sentence were played; rounded down, never more
    assert 2 <= len(heard) <= 4 and heard == TEXT.split()[: len(heard)]
    assert not sink.is_playing
    played_at_pause = sink.played_s
    await reply.resume()
    await asyncio.wait_for(reply.wait_played(), 5)
    assert reply.heard_text() == TEXT
    # the cut sentence was played again from its start, then the rest
    assert sink.played_s >= played_at_pause + tts.duration_s(TEXT) - 0.1
    await sink.aclose()


async def test_policy_limits_what_is_spoken() -> None:
    sink, tts = CollectingSink(), FakeTTS(seconds_per_char=0.001)
    text = "First. Second? Third. 😊"
    reply = Reply(static_text(text), sink=sink, tts=tts, clock=MonotonicClock(), policy=ReplyPolicy())
    await reply.generate()
    assert reply.full_text == "First. Second?"
    await sink.aclose()


async def test_failed_tts_falls_back_to_the_other_voice() -> None:
    sink = CollectingSink()
    broken, fallback = FakeTTS(fail_on="Nine"), FakeTTS(seconds_per_char=0.001)
    reply = Reply(static_text(TEXT), sink=sink, tts=broken, fallback_tts=fallback, clock=MonotonicClock())
    await reply.generate()
    assert broken.spoken == ["One two three four five six seven eight."]
    assert fallback.spoken == ["Nine ten eleven twelve."]
    await sink.aclose()
