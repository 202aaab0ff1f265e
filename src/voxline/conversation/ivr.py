"""Keypad menus from the agent file, as pure state: a key in, an `IvrStep` (what to say, then what
to do) out. The conversation plays the lines and carries out the action; nothing here does I/O,
so every path through a menu tree is testable without a call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from voxline.agent.config import CollectDigitsConfig, IvrConfig, IvrMenu

log = logging.getLogger(__name__)

StepAction = Literal["stay", "transfer", "hangup", "llm", "collect"]

TRANSFER_FAILED_LINE = "Sorry, I can't transfer you right now."


@dataclass(frozen=True, slots=True)
class IvrStep:
    lines: tuple[str, ...] = ()
    """Spoken in order before the action."""
    action: StepAction = "stay"
    """stay: keep listening in the (possibly new) active menu."""
    target: str | None = None
    note: str = ""
    """For llm/collect: what the model is told about the caller's choice."""
    collect: CollectDigitsConfig | None = None


class IvrNavigator:
    """Which menu is active, and the path of menus above it (for `back`)."""

    def __init__(self, config: IvrConfig) -> None:
        self._config = config
        self._path: list[str] = []

    @property
    def active(self) -> str | None:
        return self._path[-1] if self._path else None

    @property
    def menu(self) -> IvrMenu | None:
        return self._config.menus[self._path[-1]] if self._path else None

    def start(self) -> str | None:
        """Enter the start menu, if the agent has one; returns its prompt."""
        if self._config.start is None:
            return None
        self._path = [self._config.start]
        return self._config.menus[self._config.start].prompt

    def leave(self) -> str | None:
        """The caller moved on to talking to the model: no menu is active any more."""
        left = self.active
        self._path = []
        return left

    def press(self, key: str) -> IvrStep:
        name, menu = self.active, self.menu
        if name is None or menu is None:
            raise RuntimeError("no IVR menu is active")
        option = menu.options.get(key)
        if option is None:
            log.info("key %s is not an option in menu %s", key, name)
            return IvrStep((menu.invalid, menu.prompt))
        said = (option.say,) if option.say else ()
        kind, submenu = option.next_step()
        log.info("menu %s: key %s -> %s", name, key, kind + (f":{submenu}" if submenu else ""))
        if kind == "say":
            return IvrStep(said)
        if kind == "menu":
            self._path.append(submenu)
            return IvrStep((*said, self._config.menus[submenu].prompt))
        if kind == "back":
            if len(self._path) > 1:
                self._path.pop()
            return IvrStep((*said, self._config.menus[self._path[-1]].prompt))
        if kind == "repeat":
            return IvrStep((*said, menu.prompt))
        if kind == "transfer":
            return IvrStep(said, "transfer", target=option.target)
        if kind == "hangup":
            return IvrStep(said, "hangup")
        self.leave()  # llm and collect hand the call to the model
        note = option.note or f"The caller pressed {key} in the {name} menu."
        if kind == "collect":
            return IvrStep(said, "collect", note=note, collect=option.collect or CollectDigitsConfig())
        return IvrStep(said, "llm", note=note)

    def context_for_model(self) -> str:
        """A note for the model when the caller speaks while a menu is active."""
        menu = self.menu
        if menu is None:
            return ""
        return f'(The caller was at the keypad menu "{self.active}", which says: {menu.prompt})'
