"""Scenario files: scripted callers and what a good agent does at each turn and by the call's end.

A suite file holds the scenarios for one agent:

    agent: ../../agents/bank.yaml        # relative to this file; the CLI's --agent overrides it
    defaults:                            # merged into every turn's `expect` (a turn's own keys win)
      max_sentences: 2
    scenarios:
      - name: lost-card
        turns:
          - say: I lost my debit card, can you block it?
            expect:
              any_of:
                - {tool: transfer_call}
                - {mention: [[colleague, transfer, "put you through"]]}
        expect: {transferred: true}

A phrase matches case-insensitively on word boundaries; `/.../` is a regular expression; a list
inside `mention` is "any of these". Top-level keys starting with `x-` are ignored: they hold YAML
anchors for expectations used in several turns. The suite's `defaults` apply to every turn; for
`mention`, `not_mention` and `no_tool` both the defaults' and the turn's items apply.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Pattern = str | list[str]
"""A phrase or /regex/, or a list of them of which any one will do."""


class ScenarioError(ValueError):
    """A scenario file is unreadable or invalid; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TurnExpect(_Strict):
    """What the agent's answer to one caller turn must (not) do. Unset checks are not run."""

    tool: str | None = Field(None, description="a tool the model must call in this turn")
    tool_args: dict[str, str] = Field(
        default_factory=dict, description="arguments that tool must get (case-insensitive values)"
    )
    no_tool: list[str] = Field(default_factory=list, description="tools it must not call in this turn")
    mention: list[Pattern] = Field(default_factory=list, description="every item must appear in the reply")
    not_mention: list[str] = Field(default_factory=list, description="none of these may appear")
    no_refusal: bool | None = Field(None, description='the reply must not refuse ("I can\'t help with that")')
    internal_text: bool | None = Field(
        None, description="false: no tool names, menu names, notes, instructions or prompt text spoken"
    )
    no_echo: bool | None = Field(None, description="the reply must not parrot the caller's own words")
    language: str | None = Field(None, description="the reply's language (ISO 639-1), judged from its text")
    script: Literal["latin", "devanagari"] | None = None
    max_sentences: int | None = Field(None, ge=1)
    max_questions: int | None = Field(None, ge=0)
    ended: bool | None = Field(None, description="the call is over after this turn (hung up or transferred)")
    transferred: bool | None = Field(None, description="the call was transferred by this turn")
    call_language: str | None = Field(None, description="the call's language after this turn")
    said: bool | None = Field(None, description="true: the agent said something (no silence)")
    any_of: list[TurnExpect] = Field(
        default_factory=list, description="alternatives: the turn passes this check if any one passes fully"
    )
    judge: str | None = Field(None, description="criteria for the optional LLM judge")


TurnExpect.model_rebuild()  # any_of refers to the class itself


class CallerTurn(_Strict):
    say: str | None = Field(None, description="what the caller says (text mode: as typed; voice: rendered)")
    audio: str | None = Field(None, description="a WAV file of the caller (voice mode), relative to the file")
    keys: str | None = Field(None, description="keys the caller presses instead of speaking")
    language: str | None = Field(
        None, description="the language the caller speaks (what a language identifier would hear)"
    )
    language_probability: float = Field(1.0, ge=0, le=1)
    expect: TurnExpect = Field(default_factory=TurnExpect)

    @model_validator(mode="after")
    def _one_input(self) -> CallerTurn:
        if (self.say is None and self.audio is None) == (self.keys is None):
            raise ValueError("a turn is `say` (and/or `audio`), or `keys`")
        return self


class CallExpect(_Strict):
    """What must be true once the call's script is done."""

    ended: bool | None = Field(None, description="the agent ended the call (end_call or a goodbye)")
    transferred: bool | None = None
    transfer_department: str | None = Field(None, description="the department the call went to")
    tools: list[str] = Field(default_factory=list, description="tools called at some point")
    no_tools: list[str] = Field(default_factory=list, description="tools never called")
    no_repeats: bool | None = Field(None, description="no sentence said twice in the call")
    judge: str | None = None


class Scenario(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    turns: list[CallerTurn] = Field(min_length=1)
    expect: CallExpect = Field(default_factory=CallExpect)
    voice: bool = Field(True, description="false: text mode only (e.g. keypad-heavy scripts)")
    may_end_early: bool = Field(
        False,
        description="the call may end before the last caller turn (the later turns are what the caller "
        "says if it has not yet): the call checks still apply",
    )


class Suite(_Strict):
    agent: str | None = None
    defaults: TurnExpect = Field(default_factory=TurnExpect)
    call_defaults: CallExpect = Field(default_factory=CallExpect)
    scenarios: list[Scenario] = Field(min_length=1)


class LoadedScenario(BaseModel):
    """A scenario with its suite's defaults applied and its paths resolved."""

    model_config = ConfigDict(frozen=True)

    scenario: Scenario
    file: Path
    agent_file: Path | None

    @property
    def id(self) -> str:
        return f"{self.file.stem}/{self.scenario.name}"

    def audio_path(self, turn: CallerTurn) -> Path | None:
        return (self.file.parent / turn.audio).resolve() if turn.audio else None


_ADDED_UP = ("mention", "not_mention", "no_tool")
"""List checks where a suite's defaults and a turn's own items both apply."""


def merge_expect(defaults: TurnExpect, own: TurnExpect) -> TurnExpect:
    """Defaults with the turn's own settings on top (only the keys the turn set); the lists in
    `_ADDED_UP` are joined instead."""
    base = defaults.model_dump(exclude_unset=True)
    mine = own.model_dump(exclude_unset=True)
    merged = base | mine
    for key in _ADDED_UP:
        if key in base and key in mine:
            merged[key] = [*base[key], *mine[key]]
    return TurnExpect.model_validate(merged)


def _merge_call(defaults: CallExpect, own: CallExpect) -> CallExpect:
    return CallExpect.model_validate(
        defaults.model_dump(exclude_unset=True) | own.model_dump(exclude_unset=True)
    )


def load_suite(path: Path) -> list[LoadedScenario]:
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ScenarioError(f"cannot read scenario file {path}: {exc}") from exc
    if isinstance(raw, dict):  # x-... keys hold YAML anchors to reuse (`<<: *offer_transfer`)
        raw = {k: v for k, v in raw.items() if not str(k).startswith("x-")}
    try:
        suite = Suite.model_validate(raw)
    except ValidationError as exc:
        problems = "\n".join(
            f"  {'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in exc.errors()
        )
        raise ScenarioError(f"{path}: invalid scenario file\n{problems}") from exc
    agent_file = (path.parent / suite.agent).resolve() if suite.agent else None
    loaded = []
    for scenario in suite.scenarios:
        turns = [
            turn.model_copy(update={"expect": merge_expect(suite.defaults, turn.expect)})
            for turn in scenario.turns
        ]
        scenario = scenario.model_copy(
            update={"turns": turns, "expect": _merge_call(suite.call_defaults, scenario.expect)}
        )
        loaded.append(LoadedScenario(scenario=scenario, file=path, agent_file=agent_file))
    names = [s.scenario.name for s in loaded]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ScenarioError(f"{path}: scenario names used twice: {', '.join(duplicates)}")
    return loaded


def load_scenarios(paths: list[Path]) -> list[LoadedScenario]:
    """Every scenario in the given files and folders (folders: their *.yaml, sorted)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*.yaml") if p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise ScenarioError(f"no scenario file or folder at {path}")
    if not files:
        raise ScenarioError(f"no scenario files (*.yaml) in {', '.join(map(str, paths))}")
    return [s for f in files for s in load_suite(f)]
