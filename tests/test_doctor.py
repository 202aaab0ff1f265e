"""`voxline doctor` and the festival checks behind it: a voice whose language package is missing must
fail with the package's name, on the real festival, before any call depends on it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from voxline.engines.base import ModelNotInstalledError
from voxline.engines.tts_festival import (
    FESTIVAL_LIBDIR,
    FestivalTTS,
    failure_hint,
    missing_modules,
)

ROOT = Path(__file__).resolve().parent.parent
MARATHI_VOICE = FESTIVAL_LIBDIR / "voices" / "marathi" / "marathi_NSK_diphone"


def festival_without(tmp_path: Path, folder: str) -> Path:
    """A festival library folder like the real one, but for one subfolder: what a machine has when
    a package was never installed. Entries are links, so festival itself runs from it unchanged."""
    libdir = tmp_path / "festival"
    libdir.mkdir()
    for entry in FESTIVAL_LIBDIR.iterdir():
        if entry.name != folder:
            (libdir / entry.name).symlink_to(entry)
    return libdir


def test_the_real_voices_need_their_language_packages() -> None:
    # the sentinel for setup: on a machine set up by scripts/setup.sh nothing is missing
    for voice in ("hindi", "marathi"):
        voice_dir = FESTIVAL_LIBDIR / "voices" / voice / f"{voice}_NSK_diphone"
        assert voice_dir.is_dir(), f"apt-get install festvox-{voice[:2]}-nsk"
        assert missing_modules(voice_dir, FESTIVAL_LIBDIR) == [], f"setup must install festival-{voice[:2]}"


def test_a_voice_without_its_phone_set_names_the_package(tmp_path: Path) -> None:
    libdir = festival_without(tmp_path, "marathi_scm")
    missing = missing_modules(libdir / "voices" / "marathi" / "marathi_NSK_diphone", libdir)
    assert ("marathi_phones", libdir / "marathi_scm") in missing
    with pytest.raises(ModelNotInstalledError, match=r"marathi_phones\.scm.*apt-get install festival-mr"):
        FestivalTTS("marathi_NSK_diphone", libdir=libdir)
    FestivalTTS("hindi_NSK_diphone", libdir=libdir)  # the other language is whole: no complaint


def test_festivals_own_complaint_is_translated_into_the_package(tmp_path: Path) -> None:
    """What real festival prints when the phone set is missing (the message a fresh machine gave) is
    turned into the package to install, for any path that reaches festival without the check."""
    libdir = festival_without(tmp_path, "marathi_scm")
    # festival also looks in its compiled-in data folder, so the load path is narrowed to the copy
    script = f'(set! load-path (list "{libdir}"))\n(require \'marathi_phones)\n'
    run = subprocess.run(
        ["festival", "--pipe"],
        input=script.encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    complaint = run.stderr.decode(errors="replace")
    assert "marathi_phones.scm" in complaint
    assert failure_hint(complaint) == " (marathi_phones.scm is missing: apt-get install festival-mr)"
    assert failure_hint("SIOD ERROR: unbound variable") == ""


def _doctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voxline.cli", "doctor", *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_doctor_fails_naming_the_missing_package(tmp_path: Path) -> None:
    libdir = festival_without(tmp_path, "marathi_scm")
    env = {"VOXLINE_FESTIVAL_LIBDIR": str(libdir)}
    result = _doctor("--voice", "festival:mr", "--voice", "espeak:en-gb", env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "FAIL festival:mr" in result.stdout
    assert "apt-get install festival-mr" in result.stderr  # the summary line names it too
    assert "ok espeak:en-gb" in result.stdout  # one broken voice does not hide the others


def test_doctor_speaks_with_every_voice_of_an_agent() -> None:
    result = _doctor("examples/agents/bank.yaml", "--voice", "festival:mr", "--voice", "festival:hi")
    assert result.returncode == 0, result.stdout + result.stderr
    bank = "examples/agents/bank.yaml"
    for label in (f"{bank}: voice", f"{bank}: fallback_voice", "festival:mr", "festival:hi"):
        assert f"ok {label}" in result.stdout
    assert "bank.yaml: llm.model" in result.stdout


def test_doctor_rejects_a_malformed_voice() -> None:
    result = _doctor("--voice", "festival")
    assert result.returncode == 2
    assert "ENGINE:VOICE" in result.stderr
