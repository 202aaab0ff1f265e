"""Render, at warm-up, the fixed lines a caller would otherwise wait for synthesis to hear.

Two lines sit on a latency path every time they are said:
- the greeting (and a start menu's prompt after it): the first thing every caller hears, timed from
  the moment the call is answered;
- a route's line (`routes:` in the agent file): it is the whole answer to the turns it matches;
- each other language's "switched" line: spoken first in the turn where a call changes language,
  by that language's voice (Kokoro, slow on a CPU).

They are split and rewritten by the very function a Reply uses to hand a fixed line to its voice
(`static_speech`, with the language's `speech_normalizer`), so the reply finds them in
`Engines.line_audio`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from voxline.agent.config import AgentConfig
from voxline.conversation.language import LanguagePolicy
from voxline.conversation.reply import static_speech
from voxline.engines.base import Engines
from voxline.language.normalize import speech_normalizer

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RenderedLines:
    sentences: int
    audio_s: float
    took_s: float


def lines_to_render(agent: AgentConfig) -> list[tuple[str, str]]:
    """(language, line) pairs worth rendering before the first call."""
    language = LanguagePolicy(agent)
    lines = [(language.default, language.line("greeting"))]
    ivr = agent.ivr
    if ivr.start is not None:
        lines.append((language.default, ivr.menus[ivr.start].prompt))
    # a route's line answers a turn: rendered, it plays as soon as the turn ends
    lines += [(route.language or language.default, route.say) for route in agent.routes]
    others = [other for other in language.allowed if other != language.default]
    lines += [(other, language.line("switched", other)) for other in others]
    return lines


async def render_fixed_lines(agent: AgentConfig, engines: Engines) -> RenderedLines:
    """Synthesise `lines_to_render` into `engines.line_audio`. A voice that fails here only costs
    the head start: the line is synthesised live when it is said, as it would be without this."""
    started = time.monotonic()
    sentences, audio_s = 0, 0.0
    for language, line in lines_to_render(agent):
        tts = engines.tts_for(language)
        for text in static_speech(line, speech_normalizer(language)):
            try:
                audio_s += await engines.line_audio.render(tts, text)
            except Exception:
                log.exception("could not render the fixed line %r; it will be synthesised when said", text)
                continue
            sentences += 1
    rendered = RenderedLines(sentences, audio_s, time.monotonic() - started)
    log.info(
        "fixed lines ready: %d sentences, %.1f s of audio, rendered in %.2f s",
        rendered.sentences,
        rendered.audio_s,
        rendered.took_s,
    )
    return rendered
