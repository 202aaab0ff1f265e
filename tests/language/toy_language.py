"""A made-up language, written the way a real one is added: this one module (and, in the package,
one line in voxline/language/languages/__init__.py; here `registry.register` in the test)."""

from __future__ import annotations

from voxline.language.registry import Language

TOYISH = Language(
    code="tq",
    english_name="Toyish",
    native_name="टॉयिश",
    script="devanagari",
    names=("toyish", "toyi", "टॉयिश", "टॉयिशत"),
    names_meaning_in=("टॉयिशत",),
    request_cues=("parlo", "toyvo"),
    request_phrases={"en": "Parlo English toyvo.", "tq": "Parlo toyish toyvo."},
    lines={
        "greeting": "टॉयिश नमस्ते।",
        "switched": "ठीक, अब टॉयिश।",
        "fallback": "फिर से टॉयिश?",
        "tool_filler": "एक टॉयिश पल।",
        "tool_failure": "टॉयिश माफ़ी।",
    },
    sample_line="टॉयिश नमस्ते।",
    warm_up_line="टॉय।",
    default_voices={"festival": "toyish_diphone", "kokoro": "jf_toyish"},
    stt_prompt="टॉयिश में एक वाक्य।",
)
