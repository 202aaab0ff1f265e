"""English (Indian call-centre English): its names, how a caller asks for it, its lines and its
normaliser."""

from __future__ import annotations

from voxline.language.normalize.en import LEXICON
from voxline.language.registry import Language

LANGUAGE = Language(
    code="en",
    english_name="English",
    native_name="English",
    script="latin",
    names=(
        "english",
        "inglish",
        "angrezi",
        "angreji",
        "angrezee",
        "इंग्लिश",
        "अंग्रेजी",
        "अंग्रेज़ी",
        "इंग्रजी",
    ),
    # the English cues, and "in please speak" as STT writes them in a Devanagari call
    request_cues=(
        "speak",
        "speaking",
        "talk",
        "talking",
        "in",
        "please",
        "switch",
        "change",
        "continue",
        "use",
        "language",
        "prefer",
        "answer",
        "reply",
        "इन",
        "प्लीज",
        "स्पीक",
    ),
    # how a caller asks for each language, in this one
    request_phrases={
        "en": "Can we speak in English?",
        "hi": "Can we speak in Hindi?",
        "mr": "Can we speak in Marathi?",
    },
    lines={
        "greeting": "Hello, thanks for calling. How can I help you today?",
        "reprompt": "Are you still there? How can I help you?",
        "goodbye": "Thank you for calling. Goodbye.",
        "switched": "Okay, let's continue in English.",
        "fallback": "Sorry, could you say that again?",
        "tool_filler": "One moment while I check that.",
        "tool_failure": "Sorry, I can't check that right now. I can transfer you to a colleague if you like.",
    },
    sample_line="Hello, thank you for calling.",
    warm_up_line="Hello.",
    lexicon=LEXICON,
)
