"""Marathi normalisation on sentences a bank's voice agent says."""

from __future__ import annotations

import pytest

from voxline.language.normalize import normalize_for_speech
from voxline.language.script import script_of


def mr(text: str) -> str:
    return normalize_for_speech(text, "mr")


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("₹1,50,000 due on 05/12", "एक लाख पन्नास हजार रुपये due on पाच डिसेंबर"),
        (
            "तुमचा ₹1,50,000 चा हप्ता 05/12 पर्यंत भरायचा आहे.",
            "तुमचा एक लाख पन्नास हजार रुपये चा हप्ता पाच डिसेंबर पर्यंत भरायचा आहे.",
        ),
        ("₹2.5 लाख कर्ज", "अडीच लाख रुपये कर्ज"),
        ("₹1.5 कोटी", "दीड कोटी रुपये"),
        ("Rs 999 भरले.", "नऊशे नव्याण्णव रुपये भरले."),
        ("2,00,00,000 रुपयांचे कर्ज", "दोन कोटी रुपयांचे कर्ज"),
        ("₹100.25 कापले", "शंभर रुपये पंचवीस पैसे कापले"),
        ("व्याजदर 8.5% आहे.", "व्याजदर आठ पूर्णांक पाच टक्के आहे."),
        ("₹२,३०० भरा", "दोन हजार तीनशे रुपये भरा"),
    ],
)
def test_amounts(text: str, spoken: str) -> None:
    assert mr(text) == spoken


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("संध्याकाळी 5:30 वाजता शाखा बंद होते.", "संध्याकाळी साडे पाच वाजता शाखा बंद होते."),
        ("सकाळी 10 वाजता या.", "सकाळी दहा वाजता या."),
        ("बैठक 10:20 ला आहे.", "बैठक दहा वाजून वीस मिनिटे ला आहे."),
        ("5 pm पर्यंत भरा", "संध्याकाळी पाच वाजता पर्यंत भरा"),
        ("2:30 वाजता", "अडीच वाजता"),
        ("9:45 वाजता", "पावणे दहा वाजता"),
        ("दिनांक 05/12/2025", "दिनांक पाच डिसेंबर दोन हजार पंचवीस"),
        ("1ला हप्ता", "पहिला हप्ता"),
        ("2री तारीख", "दुसरी तारीख"),
        ("5वा हप्ता", "पाचवा हप्ता"),
    ],
)
def test_dates_times_and_ordinals(text: str, spoken: str) -> None:
    assert mr(text) == spoken


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("तुमचा OTP 482913 आहे.", "तुमचा ओ टी पी चार आठ दोन, नऊ एक तीन आहे."),
        ("खाते क्रमांक 1234567890 आहे.", "खाते क्रमांक एक दोन तीन चार पाच, सहा सात आठ नऊ शून्य आहे."),
        ("9876543210 वर फोन करा", "नऊ आठ सात सहा पाच, चार तीन दोन एक शून्य वर फोन करा"),
        ("तुमचे KYC पूर्ण करा", "तुमचे के वाय सी पूर्ण करा"),
        ("UPI PIN बदला", "यू पी आय पिन बदला"),
    ],
)
def test_digit_strings_and_acronyms(text: str, spoken: str) -> None:
    assert mr(text) == spoken


def test_marathi_output_stays_in_devanagari() -> None:
    spoken = mr("तुमचा EMI ₹12,450 आहे, 05/12/2025 ला 10:30 वाजेपर्यंत ATM किंवा UPI ने भरा.")
    assert script_of(spoken) == "devanagari"
    assert not any(c.isascii() and c.isalpha() for c in spoken)
