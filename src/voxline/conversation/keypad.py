"""The caller's keypad over one call: what a key press, or a digit said aloud, means at this moment.

While a collect_digits runs, every key (and every digit spoken) is part of the number being entered.
Otherwise a key picks an option in the active IVR menu, or, with no menu, joins a run of keys that
reaches the model as one caller turn once the caller pauses. `Keypad` keeps that state and decides;
the conversation owns agent turns, so it speaks, cancels and starts turns on what the keypad says.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from voxline.agent.config import DTMF_KEYS, CollectDigitsConfig, IvrConfig
from voxline.audio.clock import Clock
from voxline.conversation.digits import CollectResult, DigitCollector, KeyRun, spoken_keys
from voxline.conversation.ivr import IvrNavigator, IvrStep

log = logging.getLogger(__name__)

Prompt = Callable[[str, asyncio.Event], Awaitable[None]]
"""Speak a line, cut off as soon as the event is set."""


def read_key(digit: str) -> str | None:
    """The keypad key a DTMF event names, upper-cased; None (and a warning) for anything else."""
    key = digit.upper()
    if len(key) != 1 or key not in DTMF_KEYS:
        log.warning("ignoring a DTMF event with an invalid key %r", digit)
        return None
    return key


class Keypad:
    def __init__(self, config: IvrConfig, clock: Clock) -> None:
        self.ivr = IvrNavigator(config)
        self.keys = KeyRun(config.inter_digit_timeout_s)
        """Keys pressed outside menus and collections, waiting to become one caller turn."""
        self.collector: DigitCollector | None = None
        """The running collect_digits, which gets every key and spoken digit while it lasts."""
        self._clock = clock

    def start(self) -> str | None:
        """Enter the agent's start menu, if it has one; returns the menu prompt to say after the greeting."""
        return self.ivr.start()

    @property
    def awaiting_entry(self) -> bool:
        """A collection has finished its prompt and waits for the caller: the floor is theirs."""
        return self.collector is not None and not self.collector.prompting

    def silence_timeout(self, default: float) -> float:
        menu = self.ivr.menu
        return menu.timeout_s if menu is not None else default

    def reprompt(self, default: str) -> str:
        """What to say after silence: inside a menu, its options again."""
        menu = self.ivr.menu
        return menu.prompt if menu else default

    # ------------------------------------------------------------ key presses

    def give_to_collector(self, key: str) -> bool:
        """True if a running collect_digits took the key; it stops its own prompt, so no barge-in."""
        if self.collector is None:
            return False
        self.collector.press(key)
        return True

    def press(self, key: str) -> IvrStep | None:
        """A key outside any collection: the active menu's step, or None when it joins the key run."""
        if self.ivr.active is None:
            self.keys.add(key, self._clock.now())
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

    async def collect(
        self, settings: CollectDigitsConfig, prompt: Prompt, on_waiting: Callable[[], None]
    ) -> CollectResult:
        """Run one collect_digits: say its prompt (cut off by the first key or digit), then wait for
        the entry. `on_waiting` runs when the prompt is over and the caller has the floor."""
        collector = DigitCollector(settings, self._clock)
        self.collector = collector
        try:
            if settings.prompt:
                collector.prompting = True
                await prompt(settings.prompt, collector.got_input)
                collector.prompting = False
            on_waiting()
            result = await collector.collect()
        finally:
            self.collector = None
        log.info("collected digits %r (%s)", result.digits, result.reason)
        return result

    def hear(self, text: str, is_backchannel: Callable[[str], bool]) -> bool:
        """Speech while collecting: digits said aloud count, other words end the collection.

        False when the speech was neither (no words, or only a backchannel), so the prompt it paused
        should go on.
        """
        collector = self.collector
        if collector is None:
            return False
        keys = spoken_keys(text).keys
        if keys:
            log.info("caller said digits %r", keys)
            collector.press(keys)
        elif text and not is_backchannel(text):
            log.info("caller spoke instead of entering digits: %r", text)
            collector.said_instead(text)
        else:
            return False
        return True
