"""Hindi: its names (in Devanagari, romanised, and as STT writes them in a Marathi call), how a
caller asks for it, its lines, voices, whisper prompt and normaliser."""

from __future__ import annotations

from voxline.language.normalize.hi import LEXICON
from voxline.language.registry import Language

LANGUAGE = Language(
    code="hi",
    english_name="Hindi",
    native_name="हिंदी",
    script="devanagari",
    # everyday words the other Devanagari language does not use
    marker_words=frozenset(
        [
            "है",
            "हैं",
            "आप",
            "नहीं",
            "मैं",
            "का",
            "की",
            "के",
            "में",
            "से",
            "को",
            "हूँ",
            "हूं",
            "कर",
            "सकते",
            "सकती",
            "रहा",
            "रही",
        ]
    ),
    names=(
        "hindi",
        "hindee",
        "हिंदी",
        "हिन्दी",
        "हिंदीत",
        "हिन्दीत",
        "हिंदीमध्ये",
    ),
    names_meaning_in=(
        "हिंदीत",
        "हिन्दीत",
        "हिंदीमध्ये",
    ),
    # romanised ("Hindi mein baat kijiye") and in Devanagari
    request_cues=(
        "mein",
        "me",
        "main",
        "mai",
        "men",
        "baat",
        "bat",
        "bolo",
        "boliye",
        "bolie",
        "bolye",
        "kijiye",
        "kijiyee",
        "kijie",
        "karo",
        "kariye",
        "karein",
        "karen",
        "bhasha",
        "bhaasha",
        "chalega",
        "में",
        "मे",
        "बात",
        "बोलो",
        "बोलिए",
        "बोलिये",
        "बोलें",
        "कीजिए",
        "कीजिये",
        "करें",
        "करो",
        "भाषा",
    ),
    # how a caller asks for each language, in this one
    request_phrases={
        "en": "इंग्लिश में बात कीजिए।",
        "hi": "हिंदी में बात कीजिए।",
        "mr": "मराठी में बात कीजिए।",
    },
    lines={
        "greeting": "नमस्ते, कॉल करने के लिए धन्यवाद। मैं आपकी क्या मदद कर सकती हूँ?",
        "reprompt": "क्या आप लाइन पर हैं? मैं आपकी क्या मदद कर सकती हूँ?",
        "goodbye": "कॉल करने के लिए धन्यवाद। नमस्ते।",
        "switched": "ठीक है, अब हम हिंदी में बात करते हैं।",
        "fallback": "माफ़ कीजिए, क्या आप फिर से बता सकते हैं?",
        "tool_filler": "एक पल रुकिए, मैं देख रही हूँ।",
        "tool_failure": "माफ़ कीजिए, मैं अभी यह जाँच नहीं कर पा रही हूँ। आप चाहें तो मैं आपको किसी सहकर्मी से जोड़ सकती हूँ।",
    },
    sample_line="नमस्ते, कॉल करने के लिए धन्यवाद।",
    warm_up_line="नमस्ते।",
    default_voices={
        "kokoro": "jf_gongitsune",
        "festival": "hindi_NSK_diphone",
    },
    stt_prompt="नमस्ते, मैं आपकी क्या मदद कर सकती हूँ? जी हाँ, मुझे मेरे खाते के बारे में जानना है।",
    # spoken Hindi and Urdu are one language (Hindustani) that only the script tells apart
    same_speech=("ur",),
    lexicon=LEXICON,
)
