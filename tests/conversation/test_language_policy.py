"""The language policy on its own: modes, hysteresis, requests by keyword, lines, the model's note,
the script filter, Devanagari sentence splitting and the agent-file rules for languages."""

from __future__ import annotations

from typing import Any

import pytest

from voxline.agent.config import AgentConfig
from voxline.conversation.chunker import SentenceChunker
from voxline.conversation.language import LanguagePolicy, reply_instruction
from voxline.conversation.language_request import requested_language
from voxline.conversation.prompt import build_system_prompt
from voxline.conversation.sanitize import ReplyPolicy, script_matches
from voxline.conversation.tools import ToolRegistry
from voxline.engines.base import LanguageGuess, Message


def agent(mode: str = "auto", allowed: tuple[str, ...] = ("en", "hi"), **extra: Any) -> AgentConfig:
    languages = {"mode": mode, "allowed": list(allowed), "switch_after_turns": 2, "min_confidence": 0.6}
    return AgentConfig.model_validate({"languages": languages, **extra})


def guess(language: str, probability: float = 0.9) -> LanguageGuess:
    return LanguageGuess(language, probability)


# ---------------------------------------------------------------- modes


def test_auto_mode_needs_two_confident_turns_in_a_row_to_switch() -> None:
    policy = LanguagePolicy(agent())
    first = policy.on_caller_turn("मेरा कार्ड", guess("hi"))
    assert not first.switched and first.reply_language == "en" and first.detected == "hi"
    back = policy.on_caller_turn("my card", guess("en"))
    assert not back.switched and policy.current == "en"  # the streak was broken
    policy.on_caller_turn("मेरा कार्ड", guess("hi"))
    second = policy.on_caller_turn("खो गया", guess("hi", 0.8))
    assert second.switched and not second.requested and second.reply_language == "hi"
    assert policy.current == "hi" and policy.stt_language() == "hi"
    assert policy.candidates() == ["hi", "en"]  # the current language is the one to confirm


def test_auto_mode_ignores_unsure_and_not_allowed_turns() -> None:
    policy = LanguagePolicy(agent())
    for _ in range(3):
        unsure = policy.on_caller_turn("hm", guess("hi", 0.4))
        assert not unsure.switched and unsure.probability == 0.4
    assert policy.current == "en"
    policy.request("hi")  # e.g. after the caller moved to Hindi
    tamil = policy.on_caller_turn("vanakkam", guess("ta", 0.95))
    assert tamil.reply_language == "en" and not tamil.switched  # not spoken: answered in the default
    assert policy.current == "hi"
    assert policy.on_caller_turn("?", guess("ta", 0.3)).reply_language == "hi"


def test_auto_mode_switches_at_once_on_an_explicit_request() -> None:
    for text, spoken, language in [
        ("can we speak in Hindi?", "en", "hi"),
        ("हिंदी में बात कीजिए", "hi", "hi"),
        ("क्या हम हिंदी में बात कर सकते हैं?", "hi", "hi"),
        ("मराठीत बोला", "mr", "mr"),
        ("can we speak in Marathi", "en", "mr"),
    ]:
        policy = LanguagePolicy(agent("auto", ("en", "hi", "mr")))
        turn = policy.on_caller_turn(text, guess(spoken, 0.5))  # even an unsure one: the words decide
        assert turn.switched and turn.requested and turn.reply_language == language, text
        assert policy.current == language and policy.stt_language() == language
    policy = LanguagePolicy(agent("auto", ("en", "hi", "mr")))
    policy.request("hi")
    back = policy.on_caller_turn("in English please", guess("en"))
    assert back.switched and back.requested and policy.current == "en"
    # asking for the language the call is already in is just a turn
    again = policy.on_caller_turn("English is fine", guess("en"))
    assert not again.switched and not again.requested


def test_auto_mode_an_unsure_turn_neither_breaks_nor_extends_a_streak() -> None:
    policy = LanguagePolicy(agent())
    assert not policy.on_caller_turn("मेरा कार्ड खो गया है", guess("hi", 0.9)).switched
    # the call: a Hindi turn identified at 0.56 (below 0.6) with Latin text (romanised or
    # misheard) once reset the streak; now it is no evidence either way
    unsure = policy.on_caller_turn("mera balance", guess("hi", 0.56))
    assert not unsure.switched and unsure.reply_language == "en"
    unsure_english = policy.on_caller_turn("ok", guess("en", 0.4))
    assert not unsure_english.switched and policy.current == "en"
    third = policy.on_caller_turn("कृपया कार्ड बंद कीजिए", guess("hi", 0.9))
    assert third.switched and policy.current == "hi"  # two confident Hindi turns, an unsure pair between


def test_auto_mode_a_confident_turn_in_the_calls_language_still_breaks_the_streak() -> None:
    policy = LanguagePolicy(agent())
    policy.on_caller_turn("मेरा कार्ड", guess("hi", 0.9))
    policy.on_caller_turn("sorry, my card", guess("en", 0.95))
    assert not policy.on_caller_turn("खो गया", guess("hi", 0.9)).switched  # the count starts again


def test_auto_mode_devanagari_words_back_a_guess_below_the_threshold() -> None:
    policy = LanguagePolicy(agent())
    first = policy.on_caller_turn("मेरा कार्ड खो गया है", guess("hi", 0.56))
    assert not first.switched and first.detected == "hi" and first.probability == 0.56
    second = policy.on_caller_turn("मुझे अपना बैलेंस जानना है", guess("hi", 0.45))
    assert second.switched and policy.current == "hi"
    # far below the threshold even Devanagari does not count
    policy = LanguagePolicy(agent())
    for _ in range(3):
        assert not policy.on_caller_turn("हाँ", guess("hi", 0.3)).switched
    # a Latin transcript does not lower the bar
    policy = LanguagePolicy(agent())
    for _ in range(3):
        assert not policy.on_caller_turn("haan ji", guess("hi", 0.5)).switched


def test_auto_mode_devanagari_names_the_one_devanagari_language_whatever_the_guess() -> None:
    # e.g. an STT server identified the turn as Nepali (outside the candidates: reported as the first
    # one with probability 0) but wrote Hindi words
    policy = LanguagePolicy(agent())
    policy.on_caller_turn("मेरा कार्ड खो गया है", guess("en", 0.0))
    assert policy.on_caller_turn("कृपया बंद कीजिए", guess("ne", 0.7)).switched
    assert policy.current == "hi"
    # Hindi and Marathi share the script: between them only the guess decides
    both = LanguagePolicy(agent("auto", ("en", "hi", "mr")))
    for _ in range(3):
        assert not both.on_caller_turn("माझे कार्ड हरवले आहे", guess("en", 0.9)).switched
    both.on_caller_turn("माझे कार्ड हरवले आहे", guess("mr", 0.5))
    assert both.on_caller_turn("कृपया माझे कार्ड बंद करा", guess("mr", 0.7)).switched
    assert both.current == "mr"


def test_fixed_mode_never_switches() -> None:
    policy = LanguagePolicy(agent("fixed", (), language="hi"))
    for text in ("card please", "in English please", "can we speak in English"):
        turn = policy.on_caller_turn(text, guess("en", 0.99))
        assert not turn.switched and turn.reply_language == "hi"
    assert not policy.request("en") and policy.current == "hi" and not policy.identifies


def test_on_request_switches_by_keyword_only() -> None:
    policy = LanguagePolicy(agent("on_request", ("en", "hi", "mr")))
    assert not policy.on_caller_turn("my Hindi is not great but my card is lost", None).switched
    turn = policy.on_caller_turn("Hindi mein baat kijiye", None)
    assert turn.switched and turn.requested and policy.current == "hi"
    assert not policy.on_caller_turn("हिंदी में बात कीजिए", None).switched  # already in Hindi
    assert policy.on_caller_turn("मराठीत बोला", None).reply_language == "mr"
    assert not policy.on_caller_turn("नमस्ते", LanguageGuess("en", 0.99)).switched  # only a request switches
    assert policy.identifies  # so that a request is transcribed in the language it was said in


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Hindi mein baat kijiye", "hi"),
        ("hindi me bat karo please", "hi"),
        ("Hindi main baat ki jiye.", "hi"),  # how an English-forced STT writes it
        ("हिंदी में बात कीजिए", "hi"),
        ("हिन्दी में बोलिए", "hi"),
        ("can we speak in Marathi?", "mr"),
        ("मराठीत बोला", "mr"),
        ("मराठी मध्ये बोला", "mr"),
        ("in English please", "en"),
        ("English", "en"),
        ("अंग्रेज़ी में बात कीजिए", "en"),
        ("इन इंग्लिश प्लीज", "en"),
        ("Can you switch to Hindi", "hi"),
    ],
)
def test_language_requests_in_three_languages(text: str, language: str) -> None:
    assert requested_language(text, ["en", "hi", "mr"]) == language


@pytest.mark.parametrize(
    "text",
    [
        "my card is lost",
        "Hindi or English?",
        "I learned Marathi from my grandmother who lived in Pune for many years before the war",
        "मेरा कार्ड खो गया है",
        "",
    ],
)
def test_non_requests(text: str) -> None:
    assert requested_language(text, ["en", "hi", "mr"]) is None


def test_a_request_for_a_language_not_allowed_is_not_one() -> None:
    assert requested_language("can we speak in Marathi", ["en", "hi"]) is None


# ---------------------------------------------------------------- lines and the model's note


def test_lines_come_from_texts_then_top_level_then_built_in() -> None:
    config = agent(
        "on_request",
        ("en", "hi", "mr"),
        greeting="Hello from the bank.",
        texts={"hi": {"greeting": "नमस्ते, बैंक में आपका स्वागत है।", "switched": "ठीक है।"}},
    )
    policy = LanguagePolicy(config)
    assert policy.line("greeting") == "Hello from the bank."
    assert policy.line("greeting", "hi") == "नमस्ते, बैंक में आपका स्वागत है।"
    assert policy.line("switched", "hi") == "ठीक है।"
    assert policy.line("goodbye", "mr").startswith("फोन केल्याबद्दल")  # built in
    assert policy.line("fallback", "hi").startswith("माफ़ कीजिए")
    policy.request("mr")
    assert policy.line("reprompt") == policy.line("reprompt", "mr")


def test_reply_note_goes_last_and_keeps_the_prefix() -> None:
    policy = LanguagePolicy(agent())
    history = [Message("system", "persona"), Message("assistant", "Hello."), Message("user", "नमस्ते")]
    english = policy.with_reply_note(history)
    policy.request("hi")
    hindi = policy.with_reply_note(history)
    assert english[:3] == hindi[:3] == history  # the cached prefix is untouched
    assert english[-1].role == hindi[-1].role == "system"
    assert "English" in english[-1].content and "Devanagari" in hindi[-1].content
    assert "हिंदी" in reply_instruction("hi") and "मराठी" in reply_instruction("mr")
    plain = LanguagePolicy(AgentConfig())  # the English-only default agent: no note at all
    assert plain.with_reply_note(history) == history


def test_system_prompt_names_the_language_rule() -> None:
    assert "Reply in the caller's language." in build_system_prompt(AgentConfig())
    hindi = build_system_prompt(AgentConfig(language="hi"))
    assert "Devanagari" in hindi and "caller's language" not in hindi
    both = build_system_prompt(agent())
    assert "English, Hindi" in both and "last note" in both


# ---------------------------------------------------------------- the switch_language tool


def test_switch_language_tool_only_in_on_request_mode() -> None:
    assert "switch_language" not in ToolRegistry(agent("auto"))
    assert "switch_language" not in ToolRegistry(AgentConfig())
    registry = ToolRegistry(agent("on_request", ("en", "hi", "mr")))
    spec = next(s for s in registry.specs() if s.name == "switch_language")
    assert spec.parameters["properties"]["language"]["enum"] == ["en", "hi", "mr"]
    assert "switch_language" in build_system_prompt(agent("on_request"), registry.specs())


# ---------------------------------------------------------------- script filter


def test_script_check_per_language() -> None:
    assert script_matches("आपका नया ATM कार्ड पाँच दिन में आएगा।", "hi")
    assert script_matches("तुमचे कार्ड बंद केले आहे.", "mr")
    assert not script_matches("Your card is blocked.", "hi")
    assert not script_matches("آپ کا کارڈ بند ہے", "hi")  # Urdu script is not Hindi's
    assert not script_matches("आपका कार्ड बंद है।", "en")
    assert script_matches("Your card is blocked.", "en")
    assert script_matches("1234.", "hi") and script_matches("Hola amigo.", "es")


def test_reply_policy_drops_wrong_script_sentences_and_keeps_them() -> None:
    policy = ReplyPolicy(language="hi")
    assert policy.accept("Sure, I can help.") is None
    assert policy.accept("आपका कार्ड बंद कर दिया गया है।") == "आपका कार्ड बंद कर दिया गया है।"
    assert policy.rejected == ["Sure, I can help."]
    assert ReplyPolicy().accept("Sure, I can help.") == "Sure, I can help."  # no language: no check


# ---------------------------------------------------------------- Devanagari sentences


def stream(text: str, chunker: SentenceChunker, step: int = 4) -> list[str]:
    out: list[str] = []
    for i in range(0, len(text), step):
        out += chunker.feed(text[i : i + step])
    return out + ([rest] if (rest := chunker.finish()) else [])


def test_danda_and_double_danda_end_sentences() -> None:
    text = "आपका कार्ड बंद है। नया कार्ड पाँच दिन में आएगा॥ क्या और कुछ?"
    assert stream(text, SentenceChunker()) == [
        "आपका कार्ड बंद है।",
        "नया कार्ड पाँच दिन में आएगा॥",
        "क्या और कुछ?",
    ]
    marathi = "तुमचे कार्ड बंद केले आहे. नवीन कार्ड पाच दिवसांत येईल."
    assert stream(marathi, SentenceChunker()) == ["तुमचे कार्ड बंद केले आहे.", "नवीन कार्ड पाच दिवसांत येईल."]


def test_first_clause_split_in_hindi() -> None:
    chunker = SentenceChunker(first_clause_words=2)
    pieces = stream("जी हाँ, आपका कार्ड अभी बंद कर दिया गया है। धन्यवाद।", chunker)
    assert pieces == ["जी हाँ,", "आपका कार्ड अभी बंद कर दिया गया है।", "धन्यवाद।"]


# ---------------------------------------------------------------- the agent file


def test_agent_file_language_rules() -> None:
    with pytest.raises(ValueError, match=r"must be one of languages\.allowed"):
        AgentConfig.model_validate({"language": "mr", "languages": {"allowed": ["en", "hi"]}})
    with pytest.raises(ValueError, match=r"voices for \['mr'\]"):
        agent(voices={"mr": {"engine": "espeak", "voice": "mr"}})
    with pytest.raises(ValueError, match=r"texts for \['ta'\]"):
        agent(texts={"ta": {"greeting": "vanakkam"}})
    with pytest.raises(ValueError, match="needs two or more"):
        AgentConfig.model_validate({"languages": {"mode": "auto"}})
    with pytest.raises(ValueError, match="ISO 639-1"):
        agent(allowed=("en", "Hindi"))
    fixed_hindi = AgentConfig.model_validate({"language": "hi", "voices": {"hi": {"engine": "kokoro"}}})
    assert fixed_hindi.voices["hi"].engine == "kokoro"


def test_stt_is_primed_with_requests_whenever_a_request_switches() -> None:
    from voxline.engines.factory import whisper_prompts

    assert whisper_prompts(agent("fixed", ())) is None
    for mode in ("auto", "on_request"):
        prompts = whisper_prompts(agent(mode, ("en", "hi")))
        assert prompts is not None, mode
        assert "Can we speak in Hindi?" in prompts["en"] and "हिंदी में बात कीजिए।" in prompts["hi"]
