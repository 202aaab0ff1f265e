"""Marathi: its names (with the locative "मराठीत", "in Marathi"), how a caller asks for it, its
lines, voice, whisper prompt and normaliser."""

from __future__ import annotations

from voxline.language.normalize.mr import LEXICON
from voxline.language.registry import Language

LANGUAGE = Language(
    code="mr",
    english_name="Marathi",
    native_name="मराठी",
    script="devanagari",
    # everyday words the other Devanagari language does not use
    marker_words=frozenset(
        [
            "आहे",
            "आहेत",
            "तुम्ही",
            "नाही",
            "मी",
            "चा",
            "ची",
            "चे",
            "मध्ये",
            "ला",
            "करू",
            "शकता",
            "शकते",
            "होईल",
            "तुमची",
            "तुमचा",
        ]
    ),
    names=(
        "marathi",
        "marathee",
        "marati",
        "मराठी",
        "मराठीत",
        "मराठीमध्ये",
    ),
    names_meaning_in=(
        "मराठीत",
        "मराठीमध्ये",
    ),
    # romanised and in Devanagari
    request_cues=(
        "madhye",
        "bola",
        "bolu",
        "boluya",
        "भाषेत",
        "मध्ये",
        "मधे",
        "बोला",
        "बोलूया",
        "बोल",
    ),
    # how a caller asks for each language, in this one
    request_phrases={
        "en": "इंग्रजीत बोला.",
        "hi": "हिंदीत बोला.",
        "mr": "मराठीत बोला.",
    },
    lines={
        "greeting": "नमस्कार, फोन केल्याबद्दल धन्यवाद. मी तुमची काय मदत करू शकते?",
        "reprompt": "तुम्ही लाईनवर आहात का? मी तुमची काय मदत करू शकते?",
        "goodbye": "फोन केल्याबद्दल धन्यवाद. नमस्कार.",
        "switched": "ठीक आहे, आता आपण मराठीत बोलूया.",
        "fallback": "माफ करा, तुम्ही पुन्हा सांगू शकाल का?",
        "tool_filler": "एक क्षण थांबा, मी तपासून पाहते.",
        "tool_failure": "माफ करा, मी आत्ता हे तपासू शकत नाही. हवे असल्यास मी तुम्हाला सहकाऱ्याकडे जोडू शकते.",
    },
    sample_line="नमस्कार.",
    warm_up_line="नमस्कार।",
    default_voices={
        "festival": "marathi_NSK_diphone",
    },
    stt_prompt="नमस्कार, मी आपली काय मदत करू शकते? हो, मला माझ्या खात्याबद्दल माहिती हवी आहे.",
    lexicon=LEXICON,
)
