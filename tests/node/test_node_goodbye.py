"""The goodbye a draining node asks for: the conversation stops what it is saying, says its goodbye
line and ends with the node's reason (a whole call on a virtual clock, and the floor alone)."""

from __future__ import annotations

from conversation.test_virtual_calls import virtual_call
from voxline.agent.config import AgentConfig
from voxline.conversation.floor import (
    CallStarted,
    CancelTurn,
    EndCall,
    Floor,
    GoodbyeRequested,
    SayLines,
    StartTurn,
    TimeUp,
)

LONG = "Let me read you the whole list of our branch opening hours, one branch after another, slowly."


async def test_a_goodbye_request_cuts_the_answer_says_goodbye_and_ends_the_call() -> None:
    async with virtual_call([LONG], ["Where are your branches?"]) as v:
        await v.until(1.0)
        v.call.talk(0.5)
        await v.until(3.0)
        assert v.conversation.state == "speaking"  # the long answer is playing
        v.conversation.request_goodbye("node_shutdown")
        v.conversation.request_goodbye("node_shutdown")  # a second request changes nothing
        report = await v.task
    assert report.end_reason == "node_shutdown"
    answer, goodbye = report.turns[-2], report.turns[-1]
    assert answer.interrupted and len(answer.agent_text) < len(LONG)
    assert goodbye.agent_text == "Goodbye then." and not goodbye.interrupted
    assert v.clock.now() < 10.0


async def test_a_goodbye_while_listening_ends_the_call_too() -> None:
    async with virtual_call() as v:
        await v.until(2.0)  # greeted, now listening
        v.conversation.request_goodbye("node_shutdown")
        report = await v.task
    assert report.end_reason == "node_shutdown"
    assert [t.agent_text for t in report.turns] == ["Hello.", "Goodbye then."]


def test_the_floor_cuts_a_goodbye_that_overruns_with_the_same_reason() -> None:
    floor = Floor.for_agent(AgentConfig(name="a"), prepares_answers=True)
    floor.on(CallStarted(), 0.0)
    out = floor.on(GoodbyeRequested("node_shutdown"), 2.0)
    assert isinstance(out[0], CancelTurn)
    assert [c.body for c in out if isinstance(c, StartTurn)] == [
        SayLines(("goodbye",), ends_call="node_shutdown")
    ]
    assert floor.closing and floor.on(GoodbyeRequested("again"), 3.0) == []
    assert floor.next_deadline() == 17.0  # 15 s of grace
    assert floor.on(TimeUp(), 17.0) == [CancelTurn(), EndCall("node_shutdown")]
