"""The languages voxline ships, one module each. Registering a new one: its module, and a line here."""

from __future__ import annotations

from voxline.language.languages import en, hi, mr
from voxline.language.registry import Language

BUILT_IN: tuple[Language, ...] = (en.LANGUAGE, hi.LANGUAGE, mr.LANGUAGE)
