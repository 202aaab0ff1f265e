"""The language registry: each language's tables are in its one module, and a language added as
one module plus its registration is used everywhere a language is (the agent file's languages,
request detection, the call's lines and the model's note, the script filter, STT priming, the
default voices, the tool lines)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any, get_args

import pytest

from language.toy_language import TOYISH
from voxline.agent.config import AgentConfig, VoiceConfig
from voxline.conversation.fixed_lines import lines_to_render
from voxline.conversation.http_tools import FAILURE_LINES, FILLER_LINES
from voxline.conversation.language import DEVANAGARI_LANGUAGES, LanguagePolicy, reply_instruction
from voxline.conversation.sanitize import script_matches
from voxline.doctor import sample_line
from voxline.engines.factory import whisper_prompts
from voxline.engines.lid_whisper import restrict_to_candidates
from voxline.engines.voices import festival_voice_name, kokoro_style
from voxline.language import registry
from voxline.language.normalize import normalize_for_speech
from voxline.language.registry import LineKind
from voxline.language.script import expected_script


@pytest.fixture
def toyish() -> Iterator[None]:
    registry.register(TOYISH)
    try:
        yield
    finally:
        registry.unregister(TOYISH.code)


def agent(**config: Any) -> AgentConfig:
    return AgentConfig.model_validate(config)


def toy_agent(mode: str = "on_request") -> AgentConfig:
    return agent(
        language="en",
        languages={"mode": mode, "allowed": ["en", "tq"]},
        voices={"tq": {"engine": "festival", "lang": "tq"}},
        texts={"tq": {"goodbye": "टॉयिश अलविदा।"}},
    )


def test_the_built_in_languages_are_each_complete_and_agree_with_each_other() -> None:
    assert registry.codes() == ("en", "hi", "mr")
    every_kind = set(get_args(LineKind))
    for language in registry.all_languages():
        assert set(language.lines) == every_kind, language.code  # a built-in line for every kind
        assert set(language.names_meaning_in) <= set(language.names), language.code
        assert all(name == name.lower() for name in language.names), language.code
        assert set(language.request_phrases) == set(registry.codes()), language.code
        assert language.sample_line and language.warm_up_line and language.lexicon is not None
        assert language.lexicon.code == language.code


def test_the_agent_s_languages_are_its_own_first_then_the_allowed_ones() -> None:
    assert agent().spoken_languages == ("en",)
    assert agent(
        language="hi", languages={"mode": "auto", "allowed": ["en", "mr", "hi"]}
    ).spoken_languages == (
        "hi",
        "en",
        "mr",
    )
    fixed = agent(language="hi", languages={"allowed": ["en", "hi"]})
    assert fixed.spoken_languages == ("hi", "en") and LanguagePolicy(fixed).allowed == ("hi",)


def test_an_unregistered_language_is_unknown_everywhere() -> None:
    assert registry.find("tq") is None
    assert expected_script("tq") == "latin" and script_matches("hello", "tq")
    assert festival_voice_name(VoiceConfig(engine="festival", lang="tq")) == "tq"
    assert reply_instruction("tq") == "Reply only in tq."


def test_a_language_added_in_one_module_is_used_end_to_end(toyish: None) -> None:
    # the agent file: a Toyish voice and line validate, and Toyish is one of the agent's languages
    config = toy_agent()
    assert config.spoken_languages == ("en", "tq")

    # request detection: by name with a cue in either language, by its locative, not in passing
    policy = LanguagePolicy(config)
    assert not policy.on_caller_turn("my friend speaks toyish at home with her grandmother", None).switched
    turn = policy.on_caller_turn("can we speak Toyish please", None)
    assert turn.switched and turn.requested and policy.current == "tq"
    back = policy.on_caller_turn("parlo english toyvo", None)
    assert back.switched and policy.current == "en"
    assert policy.on_caller_turn("ठीक है टॉयिशत अब", None).switched and policy.current == "tq"

    # what the agent says: Toyish's own lines unless the agent file gives one, the model's note
    assert policy.line("switched") == "ठीक, अब टॉयिश।"
    assert policy.line("goodbye") == "टॉयिश अलविदा।"
    assert policy.line("reprompt") == "Are you still there? How can I help you?"  # none: English's
    assert reply_instruction("tq") == "Reply only in Toyish (टॉयिश), written in Devanagari script."
    assert ("tq", "ठीक, अब टॉयिश।") in lines_to_render(config)
    assert FILLER_LINES["tq"] == "एक टॉयिश पल।" and FAILURE_LINES["tq"] == "टॉयिश माफ़ी।"

    # the script check: a Toyish reply must be in Devanagari
    assert expected_script("tq") == "devanagari" and "tq" in DEVANAGARI_LANGUAGES
    assert script_matches("टॉयिश नमस्ते", "tq") and not script_matches("hello there", "tq")

    # default voices, the doctor's sample line, whisper's prompt primed with the requests
    assert festival_voice_name(config.voices["tq"]) == "toyish_diphone"
    assert kokoro_style(VoiceConfig(engine="kokoro", lang="tq")) == "jf_toyish"
    assert sample_line("tq") == "टॉयिश नमस्ते।"
    prompts = whisper_prompts(config)
    assert prompts is not None
    assert prompts["tq"] == "टॉयिश में एक वाक्य। Parlo English toyvo. Parlo toyish toyvo."
    assert prompts["en"] == "Can we speak in English?"  # English's module has no phrase for Toyish

    # no normaliser: its text is spoken as written
    assert normalize_for_speech("टॉयिश 42", "tq") == "टॉयिश 42"


def test_a_language_spoken_like_another_takes_its_share_of_the_identifier_s_guess(toyish: None) -> None:
    registry.register(dataclasses.replace(TOYISH, same_speech=("xq",)))
    guess = restrict_to_candidates({"en": 0.3, "tq": 0.3, "xq": 0.4}, ["en", "tq"])
    assert guess.language == "tq" and guess.probability == pytest.approx(0.7)
