"""IVR menus: the YAML schema (and its load-time errors) and the menu navigator, without a call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from voxline.agent.config import AgentConfig, AgentConfigError, IvrConfig, load_agent
from voxline.conversation.ivr import IvrNavigator

EXAMPLES = Path(__file__).parents[2] / "examples" / "agents"

MENUS: dict[str, Any] = {
    "start": "main",
    "main": {
        "prompt": "Main menu.",
        "options": {
            1: {"say": "Balances.", "then": "menu:balance"},
            "2": {"action": "transfer", "target": "sip:cards@pbx"},
            "3": {"say": "We open at nine."},
            "4": {"action": "llm", "note": "caller chose loans"},
            "5": {"action": "collect", "collect": {"prompt": "Enter your account number.", "max_digits": 6}},
            "9": {"action": "repeat"},
            "#": {"action": "hangup", "say": "Bye."},
        },
    },
    "balance": {
        "prompt": "Balance menu.",
        "options": {"1": {"action": "menu:cards"}, "*": {"action": "back"}},
        "invalid": "No such option.",
    },
    "cards": {"prompt": "Cards menu.", "options": {"*": {"action": "back"}}},
}


def test_flat_yaml_form_and_int_keys_load() -> None:
    ivr = IvrConfig.model_validate(MENUS)
    assert ivr.start == "main" and set(ivr.menus) == {"main", "balance", "cards"}
    assert "1" in ivr.menus["main"].options
    assert IvrConfig.model_validate({"menus": {"m": MENUS["cards"]}}).menus["m"]
    assert AgentConfig().ivr.start is None and AgentConfig().ivr.menus == {}


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"start": "nowhere"}, "start menu 'nowhere'"),
        ({"cards": {"prompt": "x", "options": {"1": {"action": "menu:gone"}}}}, "undefined menu 'gone'"),
        ({"cards": {"prompt": "x", "options": {"1": {"action": "transfer"}}}}, "needs `target`"),
        ({"cards": {"prompt": "x", "options": {"1": {"action": "dance"}}}}, "unknown IVR action"),
        ({"cards": {"prompt": "x", "options": {"12": {"action": "repeat"}}}}, "single DTMF keys"),
        ({"cards": {"prompt": "x", "options": {"1": {"action": "hangup", "then": "back"}}}}, "either"),
        ({"cards": {"prompt": "x", "options": {"1": {"action": "say"}}}}, "needs `say`"),
    ],
)
def test_bad_menus_are_clear_errors_at_load_time(
    tmp_path: Path, change: dict[str, Any], complaint: str
) -> None:
    import yaml

    file = tmp_path / "agent.yaml"
    file.write_text(yaml.safe_dump({"ivr": MENUS | change}))
    with pytest.raises(AgentConfigError) as err:
        load_agent(file)
    assert complaint in str(err.value) and "ivr" in str(err.value)


def test_example_agents_load() -> None:
    ivr_agent = load_agent(EXAMPLES / "bank-ivr.yaml")
    assert ivr_agent.ivr.start in ivr_agent.ivr.menus
    assert load_agent(EXAMPLES / "bank.yaml").ivr.menus == {}


def navigator() -> IvrNavigator:
    nav = IvrNavigator(IvrConfig.model_validate(MENUS))
    assert nav.start() == "Main menu."
    return nav


def test_submenus_back_and_repeat() -> None:
    nav = navigator()
    step = nav.press("1")
    assert step.lines == ("Balances.", "Balance menu.") and step.action == "stay" and nav.active == "balance"
    assert nav.press("1").lines == ("Cards menu.",) and nav.active == "cards"
    assert nav.press("*").lines == ("Balance menu.",) and nav.active == "balance"
    assert nav.press("*").lines == ("Main menu.",) and nav.active == "main"
    assert nav.press("9").lines == ("Main menu.",)
    assert nav.press("3").lines == ("We open at nine.",) and nav.active == "main"


def test_invalid_key_says_so_and_repeats_the_prompt() -> None:
    nav = navigator()
    nav.press("1")
    assert nav.press("7").lines == ("No such option.", "Balance menu.") and nav.active == "balance"


def test_actions_for_the_conversation() -> None:
    nav = navigator()
    transfer = nav.press("2")
    assert (transfer.action, transfer.target) == ("transfer", "sip:cards@pbx") and nav.active == "main"
    hangup = nav.press("#")
    assert (hangup.action, hangup.lines) == ("hangup", ("Bye.",))
    llm = nav.press("4")
    assert (llm.action, llm.note) == ("llm", "caller chose loans") and nav.active is None
    nav.start()
    collect = nav.press("5")
    assert collect.action == "collect" and collect.collect is not None and collect.collect.max_digits == 6
    assert "pressed 5 in the main menu" in collect.note and nav.active is None


def test_speech_context_names_the_menu() -> None:
    nav = navigator()
    assert "main" in nav.context_for_model() and "Main menu." in nav.context_for_model()
    assert nav.leave() == "main" and nav.context_for_model() == "" and nav.active is None


@given(st.lists(st.sampled_from("0123456789*#ABCD"), max_size=40))
def test_any_key_sequence_keeps_the_navigator_consistent(keys: list[str]) -> None:
    nav = navigator()
    for key in keys:
        if nav.active is None:
            nav.start()
        step = nav.press(key)
        assert step.action in ("stay", "transfer", "hangup", "llm", "collect")
        assert nav.active is None or nav.active in ("main", "balance", "cards")


def test_option_validation_is_a_pydantic_error() -> None:
    with pytest.raises(ValidationError):
        IvrConfig.model_validate({"m": {"prompt": "x", "options": {"1": {"action": "transfer"}}}})


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=12))
_WORDS = st.sampled_from(
    ["prompt", "options", "say", "action", "then", "target", "menu:main", "start", "1", "#"]
)
_YAMLISH = st.recursive(
    _SCALARS | _WORDS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(_WORDS | st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(_YAMLISH)
def test_any_yaml_shape_is_a_valid_menu_set_or_a_validation_error(raw: object) -> None:
    try:
        ivr = IvrConfig.model_validate(raw)
    except ValidationError:
        return
    nav = IvrNavigator(ivr)  # whatever validated must be navigable
    if nav.start() is not None:
        for key in "0123456789*#":
            nav.press(key)
            if nav.active is None:
                nav.start()
