"""SentenceChunker: sentences out as soon as they end, abbreviations and numbers kept whole."""

from __future__ import annotations

from voxline.conversation.chunker import SentenceChunker


def stream(text: str, chunker: SentenceChunker, step: int = 3) -> list[str]:
    out: list[str] = []
    for i in range(0, len(text), step):
        out += chunker.feed(text[i : i + step])
    return out


def test_sentences_are_emitted_as_soon_as_they_end() -> None:
    chunker = SentenceChunker()
    assert chunker.feed("Hello there.") == []  # could still be "there.com" or "..."
    assert chunker.feed(" How") == ["Hello there."]
    assert chunker.feed(" are you? I'm") == ["How are you?"]
    assert chunker.finish() == "I'm"


def test_abbreviations_and_numbers_do_not_split() -> None:
    text = (
        "Dr. Smith charges $1.50 a minute, e.g. on weekends. Rates rose 3.5 percent! "
        "Call Mr. Lee at 5 p.m. today. Done"
    )
    assert stream(text, SentenceChunker()) == [
        "Dr. Smith charges $1.50 a minute, e.g. on weekends.",
        "Rates rose 3.5 percent!",
        "Call Mr. Lee at 5 p.m. today.",
    ]


def test_ellipsis_closing_quotes_and_devanagari() -> None:
    text = 'Well… let me check. He said "yes." आपका स्वागत है। धन्यवाद॥ end'
    assert stream(text, SentenceChunker(), step=1) == [
        "Well…",
        "let me check.",
        'He said "yes."',
        "आपका स्वागत है।",
        "धन्यवाद॥",
    ]


def test_list_marker_is_not_a_sentence() -> None:
    assert stream("1. Open the app. 2. Tap cards. ", SentenceChunker()) == [
        "1. Open the app.",
        "2. Tap cards.",
    ]


def test_early_first_clause_needs_enough_words() -> None:
    chunker = SentenceChunker(first_clause_words=4)
    assert chunker.feed("Sure, ") == []  # one word: too short to be worth a separate chunk
    assert chunker.feed("I can help with that, ") == ["Sure, I can help with that,"]
    # only the first chunk may be a clause; later ones wait for the sentence end
    assert chunker.feed("and then, later, we ") == []
    assert chunker.feed("talk. ") == ["and then, later, we talk."]


def test_truncated_reply_drops_the_incomplete_tail() -> None:
    chunker = SentenceChunker()
    assert chunker.feed("Your card is blocked. To unblock it you need to") == ["Your card is blocked."]
    assert chunker.finish(truncated=True) == ""


def test_finish_returns_complete_tail_when_not_truncated() -> None:
    chunker = SentenceChunker()
    chunker.feed("Thanks for calling")
    assert chunker.finish() == "Thanks for calling"


def test_truncated_reply_with_no_sentence_keeps_up_to_a_clause() -> None:
    chunker = SentenceChunker()
    chunker.feed("Sure thing, let me see whether the")
    assert chunker.finish(truncated=True) == "Sure thing,"
