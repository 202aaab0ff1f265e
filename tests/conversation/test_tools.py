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
