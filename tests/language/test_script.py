from __future__ import annotations

import pytest

from voxline.language.script import expected_script, script_of


@pytest.mark.parametrize(
    ("text", "script"),
    [
        ("Your balance is low.", "latin"),
        ("आपका बैलेंस कम है।", "devanagari"),
        ("तुमची शिल्लक कमी आहे.", "devanagari"),
        ("آپ کا بیلنس کم ہے", "arabic"),  # whisper writing Hindi in Urdu script
        ("आपका KYC पूरा करें", "devanagari"),  # one acronym does not make it mixed
        ("Your खाता is बंद now", "mixed"),
        ("Ваш баланс", "mixed"),
        ("12345 ... !!", "none"),
        ("", "none"),
    ],
)
def test_script_of(text: str, script: str) -> None:
    assert script_of(text) == script


def test_expected_script() -> None:
    assert expected_script("hi") == expected_script("mr") == expected_script("hi-IN") == "devanagari"
    assert expected_script("en") == "latin"
    assert expected_script("ur") == "arabic"


def test_on_request_stt_priming_names_every_allowed_language_in_each_spoken_one() -> None:
    from voxline.language.requests import request_priming_prompts

    prompts = request_priming_prompts(["en", "hi", "mr"], {"hi": "नमस्ते।"})
    assert prompts["hi"].startswith("नमस्ते।") and "मराठी में बात कीजिए" in prompts["hi"]
    assert "Can we speak in Marathi?" in prompts["en"] and "Hindi" in prompts["en"]
    assert "मराठीत बोला" in prompts["mr"]
    only_en_hi = request_priming_prompts(["en", "hi"], {})
    assert "Marathi" not in only_en_hi["en"] and "mr" not in only_en_hi
