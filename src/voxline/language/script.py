"""Which writing system a text is in, by counting its letters: used by the output filter (a Hindi
call must not speak Urdu script or English) and by tests of the STT output."""

from __future__ import annotations

import unicodedata

from voxline.language import registry

Script = str  # "latin" | "devanagari" | "arabic" | "mixed" | "none"

# The share of letters one script needs for the text to count as written in it; below that it is
# "mixed". Leaves room for an acronym or a brand name inside a Hindi sentence.
DOMINANT_SHARE = 0.7

# Languages voxline has no module for but whose script it still knows (a Nepali name in a Hindi
# call, the Urdu whisper hears in Hindi speech); a registered language's own `script` comes first.
OTHER_SCRIPTS: dict[str, Script] = {
    **dict.fromkeys(("ne", "sa", "kok", "mai"), "devanagari"),
    **dict.fromkeys(("ur", "ar", "fa", "ps", "sd"), "arabic"),
}


def _script_of_char(ch: str) -> str | None:
    code = ord(ch)
    if 0x0900 <= code <= 0x097F or 0xA8E0 <= code <= 0xA8FF:
        return "devanagari" if unicodedata.category(ch)[0] in "LM" else None
    if 0x0600 <= code <= 0x06FF or 0x0750 <= code <= 0x077F or 0x08A0 <= code <= 0x08FF:
        return "arabic" if unicodedata.category(ch)[0] in "LM" else None
    if 0xFB50 <= code <= 0xFDFF or 0xFE70 <= code <= 0xFEFF:
        return "arabic" if unicodedata.category(ch)[0] in "LM" else None
    if ch.isalpha():
        if code < 0x0250 or 0x1E00 <= code <= 0x1EFF:
            return "latin"
        return "other"
    return None


def script_shares(text: str) -> dict[Script, float]:
    """The share of `text`'s letters in each script ('latin', 'devanagari', 'arabic', 'other');
    empty when it has no letters. Devanagari vowel signs count as letters, so Hindi is not
    under-counted."""
    counts: dict[str, int] = {}
    for ch in text:
        script = _script_of_char(ch)
        if script is not None:
            counts[script] = counts.get(script, 0) + 1
    total = sum(counts.values())
    return {script: n / total for script, n in counts.items()} if total else {}


def script_of(text: str) -> Script:
    """'latin', 'devanagari', 'arabic' (Urdu/Arabic script), 'mixed' (no script has 70 % of the
    letters, or the letters are in some other script), or 'none' (no letters at all)."""
    shares = script_shares(text)
    if not shares:
        return "none"
    top, top_share = max(shares.items(), key=lambda item: item[1])
    if top == "other" or top_share < DOMINANT_SHARE:
        return "mixed"
    return top


def expected_script(language: str) -> Script:
    """The script a reply in `language` should be in: the registered language's (devanagari for
    hi/mr), else a known one ('arabic' for ur), else 'latin'. Accepts regional tags ('hi-IN')."""
    base = registry.base_code(language)
    known = registry.find(base)
    if known is not None:
        return known.script
    return OTHER_SCRIPTS.get(base, "latin")


def writes_in(language: str, script: Script) -> bool:
    """Is `language` written in `script`? ("hi", "devanagari") → True."""
    return expected_script(language) == script
