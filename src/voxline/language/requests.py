"""How callers ask for a language, per language: used to prime speech-to-text in `on_request`
and `auto` mode (both switch as soon as the caller asks).

Whisper base hears a language name said in another language badly ("Can we speak in Murafi?",
"हिंदी में बात कीजिए" → "आपकी किजे"). Naming the languages in the decoder's initial prompt makes
exactly these requests come out right without disturbing ordinary turns, so an agent that switches
on request gets its STT primed with how a request sounds in each language it hears. The phrases
are each language's `request_phrases` (voxline.language.languages).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from voxline.language import registry


def request_phrases(spoken: str) -> Mapping[str, str]:
    """Asked-for language → how a caller asks for it in `spoken` (empty for an unknown language)."""
    language = registry.find(spoken)
    return language.request_phrases if language is not None else {}


def request_priming_prompts(allowed: Sequence[str], base: Mapping[str, str]) -> dict[str, str]:
    """Per spoken language: its `base` steering prompt followed by the requests for every allowed
    language, as a caller would say them in that language."""
    prompts = dict(base)
    for spoken in allowed:
        phrases = request_phrases(spoken)
        asked = " ".join(phrases[lang] for lang in allowed if lang in phrases)
        if asked:
            prompts[spoken] = f"{base.get(spoken, '')} {asked}".strip()
    return prompts
