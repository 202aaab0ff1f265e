"""Keypad input without a call: spoken digits, the digit collector's end conditions, key runs."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from voxline.agent.config import DTMF_KEYS, CollectDigitsConfig
from voxline.audio.clock import MonotonicClock, VirtualClock
from voxline.conversation.digits import DigitCollector, KeyRun, spoken_keys, valid_keys

WORDS = {"0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five"}
WORDS |= {"6": "six", "7": "seven", "8": "eight", "9": "nine", "*": "star", "#": "pound"}


def test_spoken_digits_in_the_shapes_stt_writes_them() -> None:
    assert spoken_keys("one two three").keys == "123"
    assert spoken_keys("One, two, three.").keys == "123"
    assert spoken_keys("My account number is 4 5 6 7").keys == "4567"
    assert spoken_keys("It's 1234-56.").keys == "123456"
    assert spoken_keys("double five oh seven").keys == "5507"
    assert spoken_keys("triple 9").keys == "999"
    assert spoken_keys("seven star eight hash").keys == "7*8#"
    assert spoken_keys("nine oh").keys == "90"


def test_words_that_are_not_digits() -> None:
    assert spoken_keys("oh I don't know it").keys == ""
    assert spoken_keys("I don't have it with me").other_words[:2] == ["i", "don"]
    assert spoken_keys("").keys == ""
    assert spoken_keys("double trouble").keys == ""


@given(st.text(alphabet="0123456789*#", min_size=1, max_size=20))
def test_any_key_sequence_read_out_as_words_parses_back(keys: str) -> None:
    assert spoken_keys(" ".join(WORDS[k] for k in keys)).keys == keys


@given(st.text(max_size=200))
def test_any_transcript_gives_only_keypad_keys(text: str) -> None:
    keys = spoken_keys(text).keys
    assert all(k in DTMF_KEYS for k in keys)


def test_valid_keys() -> None:
    assert valid_keys("12*#AD") and not valid_keys("") and not valid_keys("12x") and not valid_keys("1 2")


def settings(**overrides: object) -> CollectDigitsConfig:
    base: dict[str, object] = {"inter_digit_timeout_s": 0.2, "first_digit_timeout_s": 0.3}
    return CollectDigitsConfig.model_validate(base | overrides)


async def test_collector_ends_on_the_terminator_without_including_it() -> None:
    collector = DigitCollector(settings(), MonotonicClock())
    for key in "123#9":
        collector.press(key)
    result = await collector.collect()
    assert (result.digits, result.reason) == ("123", "terminator")


async def test_collector_ends_at_max_digits() -> None:
    collector = DigitCollector(settings(max_digits=4, terminator=""), MonotonicClock())
    collector.press("123456")
    result = await collector.collect()
    assert (result.digits, result.reason) == ("1234", "max_digits")


async def test_collector_times_out_between_digits_and_before_the_first() -> None:
    clock = VirtualClock()
    collector = DigitCollector(settings(), clock)

    async def type_slowly() -> None:
        collector.press("4")
        await clock.sleep_until(0.15)  # within the 0.2 s between digits
        collector.press("2")

    typing = asyncio.create_task(type_slowly())
    result = await collector.collect()
    await typing
    assert (result.digits, result.reason) == ("42", "timeout")
    assert clock.now() == 0.15 + 0.2  # timed out on the collector's clock, 0.2 s after the last key
    idle = await DigitCollector(settings(), clock).collect()
    assert (idle.digits, idle.reason) == ("", "no_input")
    assert clock.now() == 0.35 + 0.3  # the first-digit timeout
    assert "no digits" in idle.for_model(settings())


async def test_collector_ends_when_the_caller_says_something_else() -> None:
    collector = DigitCollector(settings(), MonotonicClock())
    collector.press("12")
    collector.said_instead("I don't remember the rest")
    result = await collector.collect()
    assert (result.digits, result.reason) == ("12", "speech")
    assert "I don't remember the rest" in result.for_model(settings())


def test_result_text_flags_a_short_entry() -> None:
    from voxline.conversation.digits import CollectResult

    assert "only 12" in CollectResult("12", "terminator").for_model(settings(min_digits=4))
    assert CollectResult("1234", "terminator").for_model(settings(min_digits=4)) == "The caller entered 1234."


def test_key_run_gathers_keys_until_the_gap() -> None:
    run = KeyRun(gap_s=2.0)
    assert run.deadline is None
    run.add("1", now=10.0)
    run.add("2", now=11.0)
    assert run.deadline == 13.0
    keys = run.take()
    assert keys == "12" and run.deadline is None and run.take() == ""
    assert KeyRun.as_text(keys) == "(caller pressed 1 2)"


def test_digits_in_other_scripts_are_their_keys() -> None:
    assert spoken_keys("मेरा नंबर ४२ है").keys == "42"
    assert spoken_keys("୦ and 7").keys == "07"
