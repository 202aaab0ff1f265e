"""Tool registry: built-ins from the agent file, custom tools, failures become model-readable results."""

from __future__ import annotations

from conversation.fakes import FakeCallIO
from voxline.agent.config import AgentConfig, ToolConfig
from voxline.conversation.prompt import build_system_prompt
from voxline.conversation.tools import ToolAction, ToolContext, ToolOutcome, ToolRegistry
from voxline.engines.base import ToolCall, ToolSpec


def agent(*tools: ToolConfig) -> AgentConfig:
    return AgentConfig(tools=list(tools), goodbye="Bye now.")


async def test_end_call_uses_agent_goodbye_only_if_the_model_said_nothing() -> None:
    registry = ToolRegistry(agent(ToolConfig(name="end_call")))
    call = FakeCallIO()
    silent = await registry.execute(ToolCall("end_call"), ToolContext(call, registry.agent, said=""))
    assert silent.action is ToolAction.HANG_UP and silent.spoken == "Bye now."
    said = await registry.execute(ToolCall("end_call"), ToolContext(call, registry.agent, said="Goodbye!"))
    assert said.action is ToolAction.HANG_UP and said.spoken == ""


async def test_transfer_call_needs_a_target() -> None:
    with_target = ToolRegistry(agent(ToolConfig(name="transfer_call", target="sip:desk@pbx")))
    outcome = await with_target.execute(
        ToolCall("transfer_call"), ToolContext(FakeCallIO(), with_target.agent)
    )
    assert outcome.action is ToolAction.TRANSFER and outcome.target == "sip:desk@pbx" and outcome.spoken
    without = ToolRegistry(agent(ToolConfig(name="transfer_call")))
    outcome = await without.execute(ToolCall("transfer_call"), ToolContext(FakeCallIO(), without.agent))
    assert outcome.action is ToolAction.NONE and outcome.result


def test_specs_list_only_enabled_tools_with_config_overrides() -> None:
    registry = ToolRegistry(agent(ToolConfig(name="transfer_call", description="Hand over to a human.")))
    assert [s.name for s in registry.specs()] == ["transfer_call"]
    assert registry.specs()[0].description == "Hand over to a human."
    prompt = build_system_prompt(registry.agent, registry.specs())
    assert "transfer_call" in prompt and "end_call" not in prompt


async def test_custom_tools_by_decorator_and_register() -> None:
    registry = ToolRegistry(agent())

    @registry.tool("Branch opening hours", {"type": "object", "properties": {"city": {"type": "string"}}})
    async def branch_hours(call: ToolCall, ctx: ToolContext) -> ToolOutcome:
        return ToolOutcome(result=f"{call.arguments['city']}: 9 to 5")

    async def explode(call: ToolCall, ctx: ToolContext) -> ToolOutcome:
        raise ValueError("backend down")

    registry.register("explode", ToolSpec("explode", "always fails"), explode)
    assert {s.name for s in registry.specs()} == {"branch_hours", "explode"}
    ctx = ToolContext(FakeCallIO(), registry.agent)
    hours = await registry.execute(ToolCall("branch_hours", {"city": "Leeds"}), ctx)
    assert hours.result == "Leeds: 9 to 5"
    failed = await registry.execute(ToolCall("explode"), ctx)
    assert failed.result is not None and "backend down" in failed.result
    unknown = await registry.execute(ToolCall("nope"), ctx)
    assert unknown.result is not None and "nope" in unknown.result


def test_says_goodbye_recognises_farewells_only() -> None:
    from voxline.conversation.tools import says_goodbye

    for text in ("Goodbye.", "OK bye!", "Thanks, good-bye", "Have a nice day."):
        assert says_goodbye(text), text
    for text in ("Could you say that again?", "By the way, my card", "Byelaws apply"):
        assert not says_goodbye(text), text


async def test_transfer_call_with_named_targets() -> None:
    targets = {"sales": "sip:200@pbx", "support": "201"}
    registry = ToolRegistry(agent(ToolConfig(name="transfer_call", targets=targets)))
    spec = registry.specs()[0]
    assert spec.parameters["properties"]["department"]["enum"] == ["sales", "support"]
    assert spec.parameters["required"] == ["department"] and "sales" in spec.description
    ctx = ToolContext(FakeCallIO(), registry.agent)
    chosen = await registry.execute(ToolCall("transfer_call", {"department": "SALES"}), ctx)
    assert chosen.action is ToolAction.TRANSFER and chosen.target == "sip:200@pbx"
    unknown = await registry.execute(ToolCall("transfer_call", {"department": "legal"}), ctx)
    assert unknown.action is ToolAction.NONE and unknown.result and "sales, support" in unknown.result
    unnamed = await registry.execute(ToolCall("transfer_call"), ctx)
    assert unnamed.action is ToolAction.NONE and unnamed.result and "which department" in unnamed.result
    both = ToolRegistry(agent(ToolConfig(name="transfer_call", target="100", targets=targets)))
    default = await both.execute(ToolCall("transfer_call"), ToolContext(FakeCallIO(), both.agent))
    assert default.target == "100"


async def test_collect_digits_merges_defaults_with_the_models_arguments() -> None:
    from voxline.agent.config import CollectDigitsConfig

    defaults = CollectDigitsConfig(terminator="*", max_digits=8)
    registry = ToolRegistry(agent(ToolConfig(name="collect_digits", digits=defaults)))
    ctx = ToolContext(FakeCallIO(), registry.agent)
    args = {"prompt": "Your PIN-free account number?", "max_digits": "6", "min_digits": 9, "colour": "red"}
    outcome = await registry.execute(ToolCall("collect_digits", args), ctx)
    assert outcome.action is ToolAction.COLLECT_DIGITS and outcome.collect is not None
    s = outcome.collect
    assert (s.prompt, s.max_digits, s.min_digits, s.terminator) == (args["prompt"], 6, 6, "*")
    bad = await registry.execute(ToolCall("collect_digits", {"terminator": "xx"}), ctx)
    assert bad.action is ToolAction.NONE and bad.result and "terminator" in bad.result


async def test_send_dtmf_rejects_keys_that_do_not_exist() -> None:
    registry = ToolRegistry(agent(ToolConfig(name="send_dtmf")))
    call = FakeCallIO()
    outcome = await registry.execute(
        ToolCall("send_dtmf", {"digits": "12x"}), ToolContext(call, registry.agent)
    )
    assert outcome.result and "Cannot send" in outcome.result and call.sent_dtmf == []
