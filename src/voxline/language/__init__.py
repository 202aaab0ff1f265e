"""Language helpers for multilingual calls: the languages themselves (one module each under
`languages/`, found through `registry`), text normalisation before TTS and script detection."""

from __future__ import annotations

from voxline.language.normalize import normalize_for_speech
from voxline.language.script import expected_script, script_of

__all__ = ["expected_script", "normalize_for_speech", "script_of"]
