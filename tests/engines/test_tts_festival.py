from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from voxline.agent.config import VoiceConfig
from voxline.audio.pcm import AudioChunk
from voxline.engines.base import ModelNotInstalledError
from voxline.engines.catalog import ModelCatalog
from voxline.engines.tts_festival import FestivalTTS, scheme_string, split_sentences
from voxline.engines.voices import build_tts, festival_voice_name

MARATHI = Path("/usr/share/festival/voices/marathi/marathi_NSK_diphone")
needs_marathi = pytest.mark.skipif(
    shutil.which("festival") is None or not MARATHI.is_dir(),
    reason="apt-get install festival festvox-mr-nsk",
)


def test_devanagari_danda_ends_a_sentence() -> None:
    text = "माझे कार्ड हरवले आहे। कृपया ते बंद करा॥ Thank you. Bye!"
    assert split_sentences(text) == ["माझे कार्ड हरवले आहे।", "कृपया ते बंद करा॥", "Thank you.", "Bye!"]
    assert split_sentences("  \n ") == []


def test_text_is_quoted_safely_for_scheme() -> None:
    assert scheme_string('say "hi" \\ now\n') == '"say \\"hi\\" \\\\ now"'


def test_config_names_a_voice_by_language_or_festival_name() -> None:
    assert festival_voice_name(VoiceConfig(engine="festival", voice="mr")) == "marathi_NSK_diphone"
    assert festival_voice_name(VoiceConfig(engine="festival", lang="hi")) == "hindi_NSK_diphone"
    named = VoiceConfig(engine="festival", voice="voice_marathi_NSK_diphone")
    assert festival_voice_name(named) == "marathi_NSK_diphone"


@needs_marathi
def test_script_selects_the_voice_then_repairs_its_intonation(tmp_path: Path) -> None:
    script = FestivalTTS("marathi_NSK_diphone").script("मराठीत बोला", tmp_path / "a.wav")
    lines = script.splitlines()
    assert lines[0] == "(voice_marathi_NSK_diphone)"
    assert lines.index("(Parameter.set 'Int_Method 'Default)") > 0
    assert "(Parameter.set 'Int_Target_Method 'Default)" in lines
    assert '"मराठीत बोला"' in script


def test_missing_festival_names_the_apt_packages(tmp_path: Path) -> None:
    bare = ModelCatalog(cache_dir=tmp_path, locate=lambda _: None, which=lambda _: None)
    with pytest.raises(ModelNotInstalledError, match=r"voices\.mr.*festival festvox-mr-nsk"):
        build_tts(VoiceConfig(engine="festival", voice="mr"), bare, "voices.mr")


@pytest.mark.skipif(shutil.which("festival") is None, reason="apt-get install festival")
def test_missing_voice_package_is_named(tmp_path: Path) -> None:
    (tmp_path / "voices" / "english" / "kal_diphone").mkdir(parents=True)
    with pytest.raises(ModelNotInstalledError, match="festvox-mr-nsk") as err:
        FestivalTTS("marathi_NSK_diphone", libdir=tmp_path)
    assert "kal_diphone" in str(err.value)


@pytest.mark.slow
@needs_marathi
async def test_marathi_speech_is_audible_and_streamed_per_sentence() -> None:
    tts = build_tts(VoiceConfig(engine="festival", voice="mr"), ModelCatalog(), "voices.mr")
    chunks = [c async for c in tts.stream("माझे कार्ड हरवले आहे। मराठीत बोला।")]
    assert len(chunks) == 2  # one per sentence: the first can play while the second is made
    assert all(c.sample_rate == tts.sample_rate == 16000 for c in chunks)
    first = chunks[0]
    # four words of diphone speech: about a second or more, not a click and not a minute
    assert 0.8 < first.duration_s < 6.0
    assert first.rms_dbfs() > -35.0
    # speech, not a tone: the level varies strongly from 20 ms frame to frame
    frames = first.samples[: first.num_samples // 320 * 320].reshape(-1, 320).astype(np.float64)
    levels = np.sqrt((frames**2).mean(axis=1))
    assert levels.max() > 10 * max(float(np.percentile(levels, 10)), 1.0)


@pytest.mark.slow
@needs_marathi
async def test_closing_early_stops_before_the_next_sentence() -> None:
    tts = FestivalTTS("marathi_NSK_diphone")
    stream = tts.stream("मराठीत बोला। माझे कार्ड हरवले आहे। धन्यवाद।")
    got: list[AudioChunk] = []
    async for chunk in stream:
        got.append(chunk)
        break
    await stream.aclose()  # type: ignore[attr-defined]
    assert len(got) == 1 and got[0].duration_s > 0.3
