"""In-band DTMF detection: generated keypad tones (clean, over a phone line, under speech and noise,
at the edges of the twist, level and duration rules), and no false key in any recorded speech here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from voxline.audio.dtmf_detect import COLS, KEYS, ROWS, DtmfDetector, DtmfKey
from voxline.audio.g711 import ulaw_decode, ulaw_encode
from voxline.audio.pcm import AudioChunk
from voxline.audio.resample import resample
from voxline.audio.wav import read_wav

ALLISON = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
MULTILINGUAL = Path(__file__).resolve().parents[2] / ".cache" / "fixtures" / "multilingual"
ALL_KEYS = "123A456B789C*0#D"


def key_tone(
    digit: str,
    ms: int,
    rate: int = 8000,
    dbfs: float = -10.0,
    twist_db: float = 0.0,
) -> np.ndarray:
    """A key's two tones, each at `dbfs` (the column `twist_db` weaker), as floats in [-1, 1]."""
    r = next(i for i, row in enumerate(KEYS) if digit in row)
    c = KEYS[r].index(digit)
    t = np.arange(round(rate * ms / 1000)) / rate
    a = 10 ** (dbfs / 20) * np.sqrt(2)  # a sine's RMS is its amplitude / sqrt(2)
    low = a * np.sin(2 * np.pi * ROWS[r] * t)
    high = a * 10 ** (-twist_db / 20) * np.sin(2 * np.pi * COLS[c] * t + 0.7)
    return low + high


def keys_signal(digits: str, on_ms: int = 70, off_ms: int = 60, rate: int = 8000, **kw: float) -> np.ndarray:
    gap = np.zeros(round(rate * off_ms / 1000))
    parts = [gap]
    for d in digits:
        parts += [key_tone(d, on_ms, rate, **kw), gap]
    return np.concatenate(parts)


def to_chunk(signal: np.ndarray, rate: int = 8000) -> AudioChunk:
    return AudioChunk.from_float32(np.clip(signal, -1, 1).astype(np.float32), rate)


def detect(chunk: AudioChunk, frame_ms: int = 20, detector: DtmfDetector | None = None) -> list[DtmfKey]:
    """Feed in 20 ms chunks, as a call does."""
    detector = detector or DtmfDetector()
    step = round(chunk.sample_rate * frame_ms / 1000)
    keys: list[DtmfKey] = []
    for i in range(0, chunk.num_samples, step):
        keys += detector.feed(AudioChunk(chunk.samples[i : i + step], chunk.sample_rate))
    return keys + detector.flush()


def digits_of(keys: list[DtmfKey]) -> str:
    return "".join(k.digit for k in keys)


@pytest.mark.parametrize("rate", [8000, 16000])
def test_every_key_is_found_with_its_duration(rate: int) -> None:
    keys = detect(to_chunk(keys_signal(ALL_KEYS, on_ms=80, rate=rate), rate))
    assert digits_of(keys) == ALL_KEYS
    assert all(60 <= k.duration_ms <= 100 for k in keys), keys


def test_keys_survive_a_mu_law_phone_line() -> None:
    line = AudioChunk(ulaw_decode(ulaw_encode(to_chunk(keys_signal("159#", dbfs=-20)))), 8000)
    assert digits_of(detect(line)) == "159#"


def test_repeated_key_is_counted_each_time() -> None:
    assert digits_of(detect(to_chunk(keys_signal("1111", on_ms=60, off_ms=50)))) == "1111"


@pytest.mark.parametrize(("ms", "found"), [(20, False), (25, False), (45, True), (1000, True)])
def test_duration_rule(ms: int, found: bool) -> None:
    signal = np.concatenate([np.zeros(400), key_tone("5", ms), np.zeros(400)])
    assert digits_of(detect(to_chunk(signal))) == ("5" if found else "")


@pytest.mark.parametrize(("twist_db", "found"), [(-3.0, True), (6.0, True), (-7.0, False), (12.0, False)])
def test_twist_rule(twist_db: float, found: bool) -> None:
    """Normal twist (column weaker) up to 8 dB, reverse twist (column stronger) up to 4 dB."""
    signal = keys_signal("8", twist_db=twist_db)
    assert digits_of(detect(to_chunk(signal))) == ("8" if found else "")


@pytest.mark.parametrize(("dbfs", "found"), [(-30.0, True), (-42.0, False)])
def test_level_rule(dbfs: float, found: bool) -> None:
    assert digits_of(detect(to_chunk(keys_signal("3", dbfs=dbfs)))) == ("3" if found else "")


def test_off_frequency_tones_are_not_keys() -> None:
    """A tone pair 5% off the grid (outside the 1.5-3.5% the standard allows) is refused."""
    t = np.arange(800) / 8000
    pair = 0.2 * np.sin(2 * np.pi * 697 * 1.05 * t) + 0.2 * np.sin(2 * np.pi * 1209 * 1.05 * t)
    assert detect(to_chunk(pair)) == []


def test_a_single_tone_is_not_a_key() -> None:
    t = np.arange(4000) / 8000
    assert detect(to_chunk(0.4 * np.sin(2 * np.pi * 941 * t))) == []


def test_keys_over_speech_are_found() -> None:
    speech = resample(read_wav(ALLISON / "demo-congrats.wav"), 8000).to_float32()
    keys = keys_signal("2580", on_ms=90, off_ms=300, dbfs=-16)
    n = min(speech.size, keys.size)
    mixed = keys[:n] + 0.5 * speech[:n]  # the caller talks while pressing keys
    assert digits_of(detect(to_chunk(mixed))) == "2580"


def test_keys_in_noise_are_found() -> None:
    rng = np.random.default_rng(1)
    keys = keys_signal("*73#", dbfs=-20)
    noise = rng.normal(0, 10 ** (-35 / 20), keys.size)  # 15 dB below each tone
    assert digits_of(detect(to_chunk(keys + noise))) == "*73#"


def _speech_files() -> list[Path]:
    files = sorted(ALLISON.rglob("*.wav"))
    index = MULTILINGUAL / "index.json"
    if index.exists():
        files += [
            MULTILINGUAL / f"{turn_id}.wav" for turn_id in json.loads(index.read_text(encoding="utf-8"))
        ]
    return [f for f in files if f.exists()]


def test_no_false_key_in_any_recorded_speech() -> None:
    """Every prompt of asterisk-core-sounds-en (and the multilingual turns, when rendered): speech,
    digits read aloud, beeps and all, and not one key."""
    files = _speech_files()
    assert len(files) > 400, "asterisk-core-sounds-en-wav is not installed"
    false_keys: dict[str, str] = {}
    seconds = 0.0
    for path in files:
        audio = read_wav(path)
        seconds += audio.duration_s
        found = detect(audio)
        if found:
            false_keys[path.name] = digits_of(found)
    assert seconds > 1200  # over twenty minutes of speech was listened to
    assert false_keys == {}
