"""The output filter and the reply policy."""

from __future__ import annotations

import pytest

from voxline.conversation.sanitize import ReplyPolicy, clean_sentence


@pytest.mark.parametrize(
    ("raw", "spoken"),
    [
        ("Sure! 😊 I can help.", "Sure! I can help."),
        ("Great news 🎉🎉!", "Great news!"),
        ("Flags 🇺🇸 and hearts ❤️ go.", "Flags and hearts go."),
        ("**Great** question.", "Great question."),
        ("Use the `app` then _tap_ Cards.", "Use the app then tap Cards."),
        ("## Opening hours", "Opening hours"),
        ("- Bring your ID.", "Bring your ID."),
        ("2) Sign the form.", "Sign the form."),
        ("See [our website](https://example.com) for details.", "See our website for details."),
        ("(Alarmed) Oh no, that is bad.", "Oh no, that is bad."),
        ("[laughs] That happens.", "That happens."),
        ("*smiles warmly* Hello there.", "Hello there."),
        ("Please hold. <break time='1s'/> Thanks.", "Please hold. Thanks."),
        ("Maya: How can I help?", "How can I help?"),
        ("Agent: Hello.", "Hello."),
        ("Sure -", "Sure,"),
        (
            "The branch (the one on Main Street near the park) opens at nine.",
            "The branch the one on Main Street near the park opens at nine.",
        ),
        ("नमस्ते, मैं आपकी मदद कर सकती हूँ।", "नमस्ते, मैं आपकी मदद कर सकती हूँ।"),
    ],
)
def test_clean_sentence(raw: str, spoken: str) -> None:
    assert clean_sentence(raw) == spoken


@pytest.mark.parametrize("raw", ["😊", "*nods*", "(pause)", "[laughs] 🎉", "**", "- ", "<break/>"])
def test_nothing_speakable_gives_empty(raw: str) -> None:
    assert clean_sentence(raw) == ""


def test_policy_caps_sentences() -> None:
    policy = ReplyPolicy(max_sentences=2)
    assert policy.accept("Your card is blocked.") == "Your card is blocked."
    assert policy.accept("I can unblock it now.") == "I can unblock it now."
    assert policy.accept("It takes a minute.") is None
    assert policy.done


def test_policy_stops_after_the_first_question() -> None:
    policy = ReplyPolicy(max_sentences=3)
    assert policy.accept("Sure.") == "Sure."
    assert policy.accept("Which card is it?") == "Which card is it?"
    assert policy.accept("Is it the debit card?") is None


def test_policy_skips_empty_chunks_and_does_not_count_a_clause() -> None:
    policy = ReplyPolicy(max_sentences=2)
    assert policy.accept("🎉") is None
    assert policy.accept("Sure, let me check,") == "Sure, let me check,"
    assert policy.accept("Your card is active.") == "Your card is active."
    assert not policy.done
    assert policy.accept("Anything else?") == "Anything else?"
    assert policy.done
