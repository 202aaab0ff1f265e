"""Deterministic checks: one caller turn's outcome (or a whole call's) against its expectations.

Pure functions over text and tool calls, so they are tested on canned replies and run the same in
text and voice mode. Each returns `Check`s named after the expectation, which the report counts as
"failures by check".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from voxline.agent.config import AgentConfig
from voxline.conversation.language import BUILT_IN_LINES, LANGUAGE_NAMES, reply_instruction
from voxline.conversation.prompt import build_system_prompt
from voxline.conversation.tools import HANDOVER_LINES, ToolRegistry
from voxline.evals.scenario import CallExpect, Pattern, TurnExpect
from voxline.language import registry


@dataclass(slots=True)
class TurnOutcome:
    """What happened in answer to one caller turn."""

    caller: str
    said: str
    """Everything the agent said in answer, in order."""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    call_language: str = ""
    ended: bool = False
    transferred: bool = False
    latency_ms: float | None = None
    """Text mode: model asked → first sentence; voice mode: caller's end of speech → agent's voice."""
    route: str = ""
    """Voice mode: the route whose line answered (no model asked), else ""."""
    stages: dict[str, float | None] = field(default_factory=dict)
    """Voice mode: the call record's per-stage timings (`TurnMetrics`: endpointing, STT, LLM, TTS)."""


@dataclass(slots=True)
class CallOutcome:
    turns: list[TurnOutcome]
    end_reason: str | None = None
    transferred_to: str | None = None
    error: str | None = None

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        return [c for t in self.turns for c in t.tool_calls]


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    passed: bool
    detail: str = ""
    turn: int | None = None
    """1-based caller turn, None for a check on the whole call."""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail, "turn": self.turn}


# ---------------------------------------------------------------- text helpers

_TOKEN = re.compile(r"[^\s.,!?;:।॥\"'“”‘’()\[\]{}<>/\\|*_`~=+-]+")
_SENTENCE_END = re.compile(r"(?<=[.!?।॥])\s+")


def tokens(text: str) -> list[str]:
    """Lower-case words in any script (Devanagari vowel signs stay inside their word)."""
    return [t.lower() for t in _TOKEN.findall(text.replace("’", "'"))]


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if any(c.isalpha() for c in s)]


def count_questions(text: str) -> int:
    return text.count("?")


def _compile(pattern: str) -> re.Pattern[str]:
    if len(pattern) > 2 and pattern.startswith("/") and pattern.endswith("/"):
        return re.compile(pattern[1:-1], re.I)
    words = r"\s+".join(re.escape(w) for w in pattern.split())
    return re.compile(rf"(?<!\w){words}(?!\w)", re.I)


def matches(pattern: Pattern, text: str) -> bool:
    """A phrase (word-bounded, any case, any spacing) or /regex/; a list matches if any item does."""
    options = [pattern] if isinstance(pattern, str) else pattern
    return any(_compile(p).search(text) for p in options)


def _show(pattern: Pattern) -> str:
    return pattern if isinstance(pattern, str) else " | ".join(pattern)


def script_shares(text: str) -> dict[str, float]:
    """Share of the letters that are Latin and Devanagari."""
    latin = sum(1 for c in text if c.isalpha() and c.isascii())
    devanagari = sum(1 for c in text if "\u0900" <= c <= "\u097f" and (c.isalpha() or not c.isspace()))
    total = latin + devanagari
    if total == 0:
        return {"latin": 0.0, "devanagari": 0.0}
    return {"latin": latin / total, "devanagari": devanagari / total}


SCRIPT_SHARE = 0.8
"""A reply is in a script when this share of its letters is (names and numbers may be the other)."""


def devanagari_language(text: str) -> str | None:
    """The Devanagari language (hi or mr) whose everyday words the text uses, None when no sign."""
    return registry.language_of_words(tokens(text), "devanagari")


# ---------------------------------------------------------------- what a good agent never says

REFUSALS = tuple(
    re.compile(p, re.I)
    for p in (
        r"\b(can ?not|can't|can’t|am unable to|am not able to|'m unable to|'m not able to|won't be able to)"
        r" (assist|help)( you)? with (that|this|your request|it)\b",
        r"\bI'?m sorry,? but I (can ?not|can't|can’t)\b",
        r"\bI (can ?not|can't|can’t) (assist|help)( you)?\s*[.!]",
        r"\bas an AI\b",
        r"\b(not able|unable) to (provide|process|do) (that|this)\b",
        r"मदद नहीं कर (सकती|सकता)",
        r"मदत करू शकत नाही",
    )
)


def refusal(text: str) -> str | None:
    for pattern in REFUSALS:
        found = pattern.search(text)
        if found:
            return found.group(0)
    return None


# Words that mark a window of prompt text as an instruction to the model (not a fact it may repeat).
_CUE_WORDS = (
    "you your caller callers caller's offer never always must rule rules tool tools sentence sentences "
    "reply replies speak prompt note instructions कॉलर नियम बुलाएँ पेशकश आप"
)
_INSTRUCTION_CUES = frozenset(_CUE_WORDS.split())
_META_PHRASES = (
    "the caller",
    "caller pressed",
    "keypad menu",
    "system prompt",
    "my instructions",
    "the instructions",
    "tool call",
    "function call",
    "the persona",
    "/\\bnote:/",
    "/\\[[^\\]]*\\]/",
)
WINDOW = 5
"""Words in a row from the prompt's instructions that make a leak."""


@dataclass(frozen=True, slots=True)
class InternalText:
    """Text the model reads that the caller must never hear: tool names, menu names, notes, the
    prompt's instructions and the per-turn language note."""

    names: tuple[str, ...]
    phrases: tuple[str, ...]
    windows: frozenset[tuple[str, ...]]

    @classmethod
    def of(cls, agent: AgentConfig) -> InternalText:
        specs = ToolRegistry(agent).specs()
        tool_names = {t.name for t in agent.tools} | {s.name for s in specs} | {"switch_language"}
        names = sorted(n for n in tool_names if "_" in n or len(n) > 3)
        menu_names = list(agent.ivr.menus)
        phrases = [*_META_PHRASES]
        phrases += [f"/menu\\s+[\"“']?{re.escape(m)}\\b/" for m in menu_names]
        phrases += [f"/[\"“']{re.escape(m)}[\"”']/" for m in menu_names]
        phrases += [reply_instruction(code) for code in LANGUAGE_NAMES]
        windows: set[tuple[str, ...]] = set()
        prompt = build_system_prompt(agent, specs)
        for line in prompt.splitlines():
            if line.startswith(("You:", "Caller:")):  # example exchanges: lines meant to be said
                continue
            for sentence in re.split(r"(?<=[.!?।])\s+", line):
                windows |= _windows(tokens(sentence), cued=True)
        notes = [o.note for m in agent.ivr.menus.values() for o in m.options.values() if o.note]
        for note in notes:
            windows |= _windows(tokens(note), cued=False)
        for text in sayable(agent):  # facts and lines the agent may say word for word
            windows -= _windows(tokens(text), cued=False)
        return cls(tuple(names), tuple(phrases), frozenset(windows))

    def find(self, text: str) -> list[str]:
        """The internal pieces `text` contains."""
        found = [n for n in self.names if re.search(rf"(?<![\w]){re.escape(n)}(?![\w])", text, re.I)]
        found += [_show(p) for p in self.phrases if matches(p, text)]
        words = tokens(text)
        for i in range(len(words) - WINDOW + 1):
            window = tuple(words[i : i + WINDOW])
            if window in self.windows:
                found.append(" ".join(window))
                break
        return found


def sayable(agent: AgentConfig) -> list[str]:
    """Text in the agent file meant for the caller's ears: fixed lines, example replies and knowledge
    answers."""
    texts = fixed_lines(agent)
    for example in agent.examples:
        texts += [example.agent, example.caller]
    texts += [entry.answer for entry in agent.knowledge.faq]
    return texts


def _windows(words: list[str], *, cued: bool) -> set[tuple[str, ...]]:
    out = set()
    for i in range(len(words) - WINDOW + 1):
        window = tuple(words[i : i + WINDOW])
        if not cued or any(w in _INSTRUCTION_CUES for w in window):
            out.add(window)
    return out


# ---------------------------------------------------------------- echo and repeats

_FILLER_WORDS = (
    "i i'm im me my mine you you're youre your yours we we're our it it's its is am are a an the to and "
    "so oh um uh है हैं था थी का की के में से को मेरा मेरी मेरे आपका आपकी आपके मैं आप यह वह और तो जी "
    "माझं माझे माझी तुमचं तुमचे आहे "
    # pleasantries: thanking or greeting back is manners, not parroting
    "thanks thank goodbye bye welcome hello hi नमस्ते धन्यवाद शुक्रिया नमस्कार"
)
_PRONOUNS = frozenset(_FILLER_WORDS.split())


_ANSWER_WORDS = frozenset(
    {"yes", "no", "yeah", "sure", "certainly", "absolutely", "जी", "हाँ", "हां", "नहीं", "हो", "नाही"}
)


def echoes(caller: str, reply_sentence: str) -> bool:
    """The sentence is the caller's own words handed back ("You're really fed up."). An answer that
    restates a question ("Yes, we are open on Saturday.") is not an echo."""
    words = tokens(reply_sentence)
    if words and words[0] in _ANSWER_WORDS:
        return False
    said = [w for w in words if w not in _PRONOUNS]
    heard = {w for w in tokens(caller) if w not in _PRONOUNS}
    if len(said) < 2 or not heard:
        return False
    return sum(1 for w in said if w in heard) / len(said) >= 0.75


def _norm_sentence(text: str) -> str:
    return " ".join(tokens(text))


def repeated_sentences(said: Iterable[str], fixed_lines: Iterable[str] = ()) -> list[str]:
    """Sentences of four words or more said twice in a call (the agent's fixed lines may recur)."""
    fixed = {_norm_sentence(s) for line in fixed_lines for s in sentences(line)}
    seen: set[str] = set()
    twice: list[str] = []
    for text in said:
        for sentence in sentences(text):
            key = _norm_sentence(sentence)
            if len(key.split()) < 4 or key in fixed:
                continue
            if key in seen and sentence not in twice:
                twice.append(sentence)
            seen.add(key)
    return twice


# ---------------------------------------------------------------- the checks


def check_turn(
    expect: TurnExpect, outcome: TurnOutcome, internal: InternalText, turn: int, *, name: str = ""
) -> list[Check]:
    """Every check `expect` asks for, on one turn's outcome."""
    said = outcome.said
    checks: list[Check] = []

    def add(check: str, passed: bool, detail: str = "") -> None:
        checks.append(Check(name or check, passed, "" if passed else detail, turn))

    if expect.said is not None:
        add(
            "said", bool(said.strip()) == expect.said, "the agent said nothing" if expect.said else "it spoke"
        )
    called = [c["name"] for c in outcome.tool_calls]
    if expect.tool is not None:
        add("tool", expect.tool in called, f"expected {expect.tool}, called {called or 'no tool'}")
        if expect.tool_args and expect.tool in called:
            args = [c.get("arguments") or {} for c in outcome.tool_calls if c["name"] == expect.tool]
            ok = any(
                all(
                    str(a.get(k, "")).strip().lower() == v.strip().lower()
                    for k, v in expect.tool_args.items()
                )
                for a in args
            )
            add("tool_args", ok, f"expected {expect.tool}{expect.tool_args}, got {args}")
    for tool in expect.no_tool:
        add("no_tool", tool not in called, f"called {tool}")
    for pattern in expect.mention:
        add("mention", matches(pattern, said), f"did not mention {_show(pattern)!r}")
    for pattern in expect.not_mention:
        add("not_mention", not matches(pattern, said), f"mentioned {pattern!r}")
    if expect.no_refusal:
        found = refusal(said)
        add("no_refusal", found is None, f"refused: {found!r}")
    if expect.internal_text is False:
        leaks = internal.find(said)
        add("internal_text", not leaks, f"spoke internal text: {leaks}")
    if expect.no_echo:
        parroted = [s for s in sentences(said) if echoes(outcome.caller, s)]
        add("no_echo", not parroted, f"echoed the caller: {parroted}")
    if expect.script is not None or expect.language is not None:
        checks += _language_checks(expect, said, turn, name)
    if expect.max_sentences is not None:
        n = len(sentences(said))
        add("max_sentences", n <= expect.max_sentences, f"{n} sentences (max {expect.max_sentences})")
    if expect.max_questions is not None:
        n = count_questions(said)
        add("max_questions", n <= expect.max_questions, f"{n} questions (max {expect.max_questions})")
    if expect.ended is not None:
        add("ended", outcome.ended == expect.ended, "the call ended" if outcome.ended else "the call went on")
    if expect.transferred is not None:
        add("transferred", outcome.transferred == expect.transferred, f"transferred: {outcome.transferred}")
    if expect.call_language is not None:
        ok = outcome.call_language == expect.call_language
        add(
            "call_language",
            ok,
            f"the call is in {outcome.call_language!r}, expected {expect.call_language!r}",
        )
    if expect.any_of:
        alternatives = [check_turn(alt, outcome, internal, turn) for alt in expect.any_of]
        ok = any(all(c.passed for c in alt) for alt in alternatives)
        why = "; ".join(" & ".join(c.detail for c in alt if not c.passed) for alt in alternatives if alt)
        add("any_of", ok, f"none of the alternatives held: {why}")
    return checks


def _language_checks(expect: TurnExpect, said: str, turn: int, name: str) -> list[Check]:
    if not said.strip():
        return []  # silence is the `said` check's business
    shares = script_shares(said)
    checks = []
    expected = registry.find(expect.language)
    script = expect.script or (expected.script if expected else None)
    if script is not None:
        share = shares.get(script, 0.0)
        ok = share >= SCRIPT_SHARE
        detail = f"{share:.0%} of letters in {script}"
        checks.append(Check(name or "script", ok, "" if ok else detail, turn))
    if expected is not None and expected.marker_words:
        found = registry.language_of_words(tokens(said), expected.script)
        ok = found in (None, expect.language)
        checks.append(Check(name or "language", ok, "" if ok else f"reads as {found}", turn))
    return checks


def check_call(expect: CallExpect, outcome: CallOutcome, fixed_lines: Iterable[str] = ()) -> list[Check]:
    checks: list[Check] = []

    def add(check: str, passed: bool, detail: str = "") -> None:
        checks.append(Check(check, passed, "" if passed else detail, None))

    if outcome.error:
        add("error", False, outcome.error)
    transferred = outcome.end_reason == "transferred"
    ended = outcome.end_reason is not None and outcome.end_reason not in ("caller_hangup", "cancelled")
    if expect.ended is not None:
        add("call_ended", (ended and not transferred) == expect.ended, f"end: {outcome.end_reason or 'open'}")
    if expect.transferred is not None:
        add("call_transferred", transferred == expect.transferred, f"end: {outcome.end_reason or 'open'}")
    if expect.transfer_department is not None:
        departments = [
            str((c.get("arguments") or {}).get("department", "")).lower()
            for c in outcome.tool_calls
            if c["name"] == "transfer_call"
        ]
        ok = transferred and expect.transfer_department.lower() in departments
        add("transfer_department", ok, f"transfer_call departments {departments}, end {outcome.end_reason}")
    called = [c["name"] for c in outcome.tool_calls]
    for tool in expect.tools:
        add("call_tools", tool in called, f"{tool} never called (called {called})")
    for tool in expect.no_tools:
        add("call_no_tools", tool not in called, f"{tool} was called")
    if expect.no_repeats:
        twice = repeated_sentences((t.said for t in outcome.turns), fixed_lines)
        add("no_repeats", not twice, f"said twice: {twice}")
    return checks


def fixed_lines(agent: AgentConfig) -> list[str]:
    """Lines the agent says verbatim by design (greeting, goodbye, fallback, ...), which may recur."""
    lines = [agent.greeting, agent.reprompt, agent.goodbye]
    for texts in agent.texts.values():
        lines += [v for v in texts.model_dump().values() if isinstance(v, str)]
    for menu in agent.ivr.menus.values():
        lines += [menu.prompt, menu.invalid]
        lines += [o.say for o in menu.options.values() if o.say]
        lines += [o.collect.prompt for o in menu.options.values() if o.collect and o.collect.prompt]
    lines += HANDOVER_LINES.values()
    lines += [route.say for route in agent.routes]
    lines += [line for by_kind in BUILT_IN_LINES.values() for line in by_kind.values()]
    return lines
