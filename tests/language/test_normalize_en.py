"""English normalisation on sentences a bank's voice agent says."""

from __future__ import annotations

import pytest

from voxline.language.normalize import normalize_for_speech


def en(text: str) -> str:
    return normalize_for_speech(text, "en")


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("₹1,50,000 due on 05/12", "one lakh fifty thousand rupees due on the fifth of December"),
        (
            "Your EMI of Rs. 12,450.50 is due on 05/12/2025.",
            "Your E.M.I. of twelve thousand four hundred and fifty rupees and fifty paise is due on "
            "the fifth of December, twenty twenty five.",
        ),
        ("You can borrow up to ₹1.5 lakh.", "You can borrow up to one point five lakh rupees."),
        ("A fee of INR 1 applies.", "A fee of one rupee applies."),
        ("The charge is 500/- only.", "The charge is five hundred only."),
        ("Your balance is 2,00,00,000 rupees.", "Your balance is two crore rupees."),
        ("Only ₹0.50 was deducted.", "Only fifty paise was deducted."),
        ("It costs $1,250.99.", "It costs one thousand two hundred and fifty dollars and ninety nine cents."),
        ("We have 1,500,000 customers.", "We have one million five hundred thousand customers."),
    ],
)
def test_amounts_are_spoken_in_rupees_with_indian_grouping(text: str, spoken: str) -> None:
    assert en(text) == spoken


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("The branch opens at 10:30 am.", "The branch opens at ten thirty AM."),
        ("We close at 5 pm.", "We close at five PM."),
        ("The meeting is at 17:45", "The meeting is at five forty five PM"),
        ("Call back at 9:05", "Call back at nine oh five"),
        ("Come at 10:00", "Come at ten o'clock"),
        ("Dr. Rao will call you on December 5th.", "Doctor Rao will call you on December fifth."),
        ("Pay by 3rd March 2026.", "Pay by the third of March, twenty twenty six."),
        ("The card expired in 1999.", "The card expired in nineteen ninety nine."),
        ("This is your 21st payment.", "This is your twenty first payment."),
        ("Office hours are 10-5.", "Office hours are ten to five."),
    ],
)
def test_dates_times_and_ordinals(text: str, spoken: str) -> None:
    assert en(text) == spoken


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("Your OTP is 482913.", "Your O.T.P. is four eight two, nine one three."),
        (
            "Call us at +91 98765 43210.",
            "Call us at plus nine one, nine eight seven six five, four three two one zero.",
        ),
        ("Call 9876543210", "Call nine eight seven six five, four three two one zero"),
        (
            "Our toll-free number is 1800-123-4567.",
            "Our toll-free number is one eight zero zero, one two three, four five six seven.",
        ),
        ("Your account ending 4321 is active.", "Your account ending four three two one is active."),
        (
            "Card number 4111 1111 1111 1111",
            "Card number four one one one, one one one one, one one one one, one one one one",
        ),
        ("Reference No. 00123", "Reference number zero zero one two three"),
        ("Use PIN 1234 to log in.", "Use PIN one two three four to log in."),
    ],
)
def test_phone_account_and_otp_numbers_are_read_digit_by_digit(text: str, spoken: str) -> None:
    assert en(text) == spoken


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("Please complete your KYC at the nearest ATM.", "Please complete your K.Y.C. at the nearest A.T.M."),
        ("Pay by UPI or NEFT.", "Pay by U.P.I. or NEFT."),
        ("Interest is 8.5% p.a.", "Interest is eight point five percent per annum."),
        ("Mr. Shah & Mrs. Shah", "Mister Shah and Missus Shah"),
        ("Sure, I can help you with that.", "Sure, I can help you with that."),
    ],
)
def test_abbreviations(text: str, spoken: str) -> None:
    assert en(text) == spoken


def test_devanagari_digits_are_numbers_too() -> None:
    assert en("₹१,५०,००० due") == "one lakh fifty thousand rupees due"


def test_other_languages_are_returned_unchanged() -> None:
    assert normalize_for_speech("Vous devez 150 €", "fr") == "Vous devez 150 €"
    assert normalize_for_speech("₹500", "en-IN") == "five hundred rupees"
