"""The caller's keypad over one call: what a key press, or a digit said aloud, means at this moment.

While a collect_digits runs, every key (and every digit spoken) is part of the number being entered.
Otherwise a key picks an option in the active IVR menu, or, with no menu, joins a run of keys that
reaches the model as one caller turn once the caller pauses. `Keypad` keeps that state and decides;
the call floor (`Floor`) asks it and turns its answers into commands; nothing here does I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

from voxline.agent.config import DTMF_KEYS, IvrConfig
from voxline.conversation.digits import KeyRun, spoken_keys
from voxline.conversation.ivr import IvrNavigator, IvrStep

log = logging.getLogger(__name__)

EntryPhase = Literal["prompting", "waiting"]
"""A collect_digits entry: its prompt is being spoken (the caller may cut in), or it waits."""


def read_key(digit: str) -> str | None:
    """The keypad key a DTMF event names, upper-cased; None (and a warning) for anything else."""
    key = digit.upper()
    if len(key) != 1 or key not in DTMF_KEYS:
        log.warning("ignoring a DTMF event with an invalid key %r", digit)
        return None
    return key


class Keypad:
    def __init__(self, config: IvrConfig) -> None:
        self.ivr = IvrNavigator(config)
        self.keys = KeyRun(config.inter_digit_timeout_s)
        """Keys pressed outside menus and collections, waiting to become one caller turn."""
        self.entry: EntryPhase | None = None
        """The running collect_digits, which gets every key and spoken digit while it lasts."""

    def start(self) -> str | None:
        """Enter the agent's start menu, if it has one; returns the menu prompt to say after the greeting."""
        return self.ivr.start()

    @property
    def collecting(self) -> bool:
        return self.entry is not None

    @property
    def prompting(self) -> bool:
        return self.entry == "prompting"

    @property
    def awaiting_entry(self) -> bool:
        """A collection has finished its prompt and waits for the caller: the floor is theirs."""
        return self.entry == "waiting"

    def silence_timeout(self, default: float) -> float:
        menu = self.ivr.menu
        return menu.timeout_s if menu is not None else default

    # ------------------------------------------------------------ key presses

    def press(self, key: str, now: float) -> IvrStep | None:
        """A key outside any collection: the active menu's step, or None when it joins the key run."""
        if self.ivr.active is None:
            self.keys.add(key, now)
            return None
        return self.ivr.press(key)

    @property
    def has_notes(self) -> bool:
        """Would the caller's next words reach the model with notes (a menu, keys just pressed)?"""
        return self.ivr.active is not None or self.keys.deadline is not None

    def caller_spoke(self) -> tuple[list[str], str]:
        """The caller talked instead of pressing: leave any menu and take the keys pressed just before.

        Returns the notes the model should read before the words (the menu they were in, the keys)
        and the keys themselves, which belong to this turn.
        """
        notes: list[str] = []
        if self.ivr.active is not None:
            notes.append(self.ivr.context_for_model())
            self.ivr.leave()
        keys = self.keys.take()
        if keys:
            notes.append(KeyRun.as_text(keys))
        return notes, keys

    # ------------------------------------------------------------ collect_digits

    def begin_entry(self, prompting: bool) -> None:
        self.entry = "prompting" if prompting else "waiting"

    def await_entry(self) -> None:
        self.entry = "waiting"

    def end_entry(self) -> None:
        self.entry = None

    def hear(self, text: str, is_backchannel: Callable[[str], bool]) -> tuple[str, str] | None:
        """Speech while collecting: digits said aloud count (keys, ""), other words end the collection
        ("", words).

        None when the speech was neither (no words, or only a backchannel), so the prompt it paused
        should go on.
        """
        keys = spoken_keys(text).keys
        if keys:
            log.info("caller said digits %r", keys)
            return keys, ""
        if text and not is_backchannel(text):
            log.info("caller spoke instead of entering digits: %r", text)
            return "", text
        return None
