"""Which language a call is in, turn by turn: the agent's language mode as one small state machine.

- fixed: the agent's language, all call long; nothing the caller says changes it.
- auto: follow the caller, with hysteresis: the call switches only after `switch_after_turns` turns
  in a row confidently in another allowed language, so one English word in a Hindi call (or one
  misidentified turn) does not flip the voice back and forth. An unsure turn is no evidence either
  way: it neither extends nor breaks a streak. A transcript in Devanagari is evidence for the
  Devanagari language it was decoded in (see `evidence`). An explicit request ("can we speak in
  Hindi?", "मराठीत बोला") switches at once, as in on_request mode.
- on_request: switch when the caller asks for a language (a keyword match, see `requests`) or the
  model calls the built-in `switch_language` tool.

The session asks this object which language to force the STT to, records what each turn was
detected as, and speaks the lines (greeting, switched, fallback, ...) it returns.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Set
from dataclasses import dataclass
from typing import Literal, get_args

from voxline.agent.config import AgentConfig
from voxline.audio.pcm import AudioChunk
from voxline.conversation.language_request import requested_language
from voxline.engines.base import Engines, LanguageGuess, LanguageSTT, Message, Transcript
from voxline.language import registry
from voxline.language.script import OTHER_SCRIPTS, script_of, writes_in

log = logging.getLogger(__name__)

LineKind = Literal["greeting", "reprompt", "goodbye", "switched", "fallback"]

SCRIPT_CONFIDENCE_MARGIN = 0.2
"""How far below `min_confidence` a turn may be identified and still count, when its transcript is
in the guessed language's script (Devanagari words back the guess: a 0.56 Hindi turn that came out
as Hindi words is Hindi)."""


class _BuiltInLines(Mapping[str, Mapping[LineKind, str]]):
    """Language → kind → the language's own line, said when the agent file gives no line of that
    kind in that language (the top-level greeting, reprompt and goodbye are in the agent's own
    language and are used for it). Read live from the registry."""

    def __getitem__(self, code: str) -> Mapping[LineKind, str]:
        language = registry.find(code)
        if language is None:
            raise KeyError(code)
        return {kind: language.lines[kind] for kind in _LINE_KINDS if kind in language.lines}

    def __iter__(self) -> Iterator[str]:
        return iter(registry.codes())

    def __len__(self) -> int:
        return len(registry.codes())


class _LanguageNames(Mapping[str, tuple[str, str]]):
    """Code → (English name, native name), read live from the registry."""

    def __getitem__(self, code: str) -> tuple[str, str]:
        language = registry.find(code)
        if language is None:
            raise KeyError(code)
        return language.english_name, language.native_name

    def __iter__(self) -> Iterator[str]:
        return iter(registry.codes())

    def __len__(self) -> int:
        return len(registry.codes())


class _WrittenIn(Set[str]):
    """The languages written in one script, read live from the registry (and the scripts voxline
    knows of languages it has no module for)."""

    def __init__(self, script: str) -> None:
        self.script = script

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and writes_in(code, self.script)

    def __iter__(self) -> Iterator[str]:
        known = [*registry.codes(), *OTHER_SCRIPTS]
        return (code for code in dict.fromkeys(known) if writes_in(code, self.script))

    def __len__(self) -> int:
        return sum(1 for _ in self)


_LINE_KINDS: tuple[LineKind, ...] = get_args(LineKind)
DEVANAGARI_LANGUAGES: Set[str] = _WrittenIn("devanagari")
BUILT_IN_LINES: Mapping[str, Mapping[LineKind, str]] = _BuiltInLines()
LANGUAGE_NAMES: Mapping[str, tuple[str, str]] = _LanguageNames()


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, (code, code))[0]


def reply_instruction(language: str) -> str:
    """The per-turn note that tells the model which language to answer in."""
    english, native = LANGUAGE_NAMES.get(language, (language, language))
    if writes_in(language, "devanagari"):
        return f"Reply only in {english} ({native}), written in Devanagari script."
    if language == "en":
        return "Reply only in English."
    return f"Reply only in {english}."


@dataclass(frozen=True, slots=True)
class TurnLanguage:
    """The outcome of one caller turn for the call's language."""

    reply_language: str
    """The language the agent answers this turn in."""
    detected: str | None = None
    """What the caller's speech was identified as (None: not identified, e.g. fixed mode)."""
    probability: float | None = None
    switched: bool = False
    """The call changed language with this turn."""
    requested: bool = False
    """... because the caller asked for it (the turn was the request, so the switch line answers it)."""


class LanguagePolicy:
    def __init__(self, agent: AgentConfig) -> None:
        self.agent = agent
        self.mode = agent.languages.mode
        self.default = agent.language
        self.allowed: tuple[str, ...] = agent.spoken_languages if self.mode != "fixed" else (agent.language,)
        self.current = agent.language
        self._streak: tuple[str, int] = (agent.language, 0)
        """(language, caller turns in a row confidently in it) while it differs from `current`."""

    # ------------------------------------------------------------ the caller's speech

    @property
    def identifies(self) -> bool:
        """Is each caller turn's language identified? In auto mode to follow the caller; in on_request
        mode so that a request in another language ("can we speak in Marathi" in a Hindi call) is
        transcribed in the language it was said in: whisper forced to Hindi turns English into noise."""
        return self.mode != "fixed" and len(self.allowed) > 1

    def stt_language(self) -> str:
        """The language the STT is forced to (auto mode: the one it decodes in unless LID disagrees)."""
        return self.current

    def candidates(self) -> list[str]:
        """Languages LID chooses among, the current one first (it is the one to confirm)."""
        return [self.current, *(a for a in self.allowed if a != self.current)]

    def decode_language(self, detected: str, probability: float) -> str:
        """Which language to transcribe a turn in, given its LID guess: the guess when it is an allowed
        language and confident, otherwise the call's language."""
        if detected in self.allowed and probability >= self.agent.languages.min_confidence:
            return detected
        return self.current

    def on_caller_turn(self, text: str, guess: LanguageGuess | None) -> TurnLanguage:
        """Account for one caller turn: an explicit request for a language (on_request and auto), else
        its identified language (auto)."""
        detected, probability = (guess.language, guess.probability) if guess else (None, None)
        if self.mode in ("on_request", "auto"):
            asked = requested_language(text, self.allowed)
            if asked is not None and self.request(asked):
                return TurnLanguage(self.current, detected, probability, switched=True, requested=True)
        if self.mode == "on_request":
            return TurnLanguage(self.current, detected, probability)
        return self.observe(detected, probability, text)

    def observe(self, detected: str | None, probability: float | None, text: str = "") -> TurnLanguage:
        """Account for one identified caller turn (auto mode's hysteresis); other modes ignore it."""
        if self.mode != "auto" or detected is None or probability is None:
            return TurnLanguage(self.current, detected, probability)
        heard, confident = self.evidence(detected, probability, text)
        if not confident:
            # an unsure turn (a short "haan", a noisy line) says nothing about the caller's language:
            # it neither counts towards a streak nor breaks one
            return TurnLanguage(self.current, detected, probability)
        if heard == self.current or heard not in self.allowed:
            # the streak is broken; the call stays where it is. A caller confidently in a language
            # the agent does not speak is answered in the default language.
            self._streak = (self.current, 0)
            reply = self.current if heard == self.current else self.default
            return TurnLanguage(reply, detected, probability)
        language, count = self._streak
        count = count + 1 if language == heard else 1
        self._streak = (heard, count)
        if count < self.agent.languages.switch_after_turns:
            return TurnLanguage(self.current, detected, probability)
        self._switch(heard, why=f"{count} turns in a row")
        return TurnLanguage(self.current, detected, probability, switched=True)

    def evidence(self, detected: str, probability: float, text: str) -> tuple[str, bool]:
        """(the language a turn is in, whether it counts) from its LID guess and its transcript.

        Devanagari words are evidence a probability alone is not: decoded in the guessed Devanagari
        language, they let a guess `SCRIPT_CONFIDENCE_MARGIN` below the threshold count; and when
        the guess was not a Devanagari language the agent speaks (an STT server that said "ne"), they
        name the agent's one Devanagari language. Hindi and Marathi share the script, so between those two
        only the guess decides."""
        threshold = self.agent.languages.min_confidence
        if not text or script_of(text) != "devanagari":
            return detected, probability >= threshold
        scripted = [a for a in self.allowed if writes_in(a, "devanagari")]
        if detected in scripted:
            return detected, probability >= threshold - SCRIPT_CONFIDENCE_MARGIN
        if len(scripted) == 1:
            return scripted[0], True
        return detected, probability >= threshold

    def request(self, language: str) -> bool:
        """The caller (or the model for them) asked for `language`. True if the call switched."""
        if self.mode == "fixed" or language not in self.allowed or language == self.current:
            return False
        self._switch(language, why="requested")
        return True

    def _switch(self, language: str, why: str) -> None:
        log.info("call language %s -> %s (%s)", self.current, language, why, extra={"language": language})
        self.current = language
        self._streak = (language, 0)

    # ------------------------------------------------------------ what the agent says

    def line(self, kind: LineKind, language: str | None = None) -> str:
        """A fixed line in `language` (default: the call's): the agent file's, else a built-in one."""
        language = language or self.current
        texts = self.agent.texts.get(language)
        configured = getattr(texts, kind) if texts is not None else None
        if configured:
            return str(configured)
        if language == self.default and kind in ("greeting", "reprompt", "goodbye"):
            return str(getattr(self.agent, kind))
        built_in = BUILT_IN_LINES.get(language, {}).get(kind)
        return built_in or BUILT_IN_LINES["en"][kind]

    def needs_reply_note(self) -> bool:
        """A note is needed unless this is the plain English-only agent (whose prompt already says it)."""
        return self.mode != "fixed" or self.default != "en"

    def with_reply_note(self, messages: list[Message], language: str | None = None) -> list[Message]:
        """The model's messages with the reply-language note last: after the history, so the system
        prompt and the history (the KV-cached prefix) stay byte-identical whatever the language."""
        if not self.needs_reply_note():
            return messages
        return [*messages, Message("system", reply_instruction(language or self.current))]


async def transcribe_turn(
    engines: Engines, policy: LanguagePolicy, audio: AudioChunk
) -> tuple[Transcript, LanguageGuess | None]:
    """Transcribe a caller turn in the call's language; in auto and on_request mode also identify its
    language.

    A `LanguageSTT` (whisper: one encoder pass) identifies and transcribes at once; other STTs
    pair with `engines.lid`, and the turn is then decoded in the identified language when that is
    allowed and confident. Without any identifier the call simply stays in its language."""
    stt = engines.stt
    if not policy.identifies:
        return await stt.transcribe(audio, policy.stt_language()), None
    if isinstance(stt, LanguageSTT):
        return await stt.transcribe_with_language(audio, policy.candidates(), None)
    if engines.lid is None:
        log.warning("auto language mode without a language identifier: staying in %s", policy.current)
        return await stt.transcribe(audio, policy.stt_language()), None
    guess = await engines.lid.identify(audio, policy.candidates())
    language = policy.decode_language(guess.language, guess.probability)
    return await stt.transcribe(audio, language), guess
