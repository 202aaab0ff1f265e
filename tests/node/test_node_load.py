"""NodeLoad, the node's call budget: the load function against the threshold, reserved slots (and
their expiry), draining, and the node's CPU measured from /proc."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from voxline.capacity import CallSlot, Refusal
from voxline.node.config import LoadConfig, NodeConfig, load_node_config
from voxline.node.load import (
    LoadSample,
    NodeCpu,
    NodeLoad,
    Reservation,
    calls_load,
    default_capacity_calls,
    default_load,
    usable_cores,
)


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def admitted(result: CallSlot | Refusal) -> CallSlot:
    assert isinstance(result, CallSlot), result
    return result


def test_calls_up_to_the_threshold_then_a_refusal_with_a_reason() -> None:
    load = NodeLoad(4, 0.75, load_fnc=calls_load)
    slots = [admitted(load.admit("sip")) for _ in range(3)]  # loads 0, 0.25, 0.5 before each
    refused = load.admit("websocket")  # 3 of 4 = 0.75: at the threshold
    assert isinstance(refused, Refusal) and refused.code == "load" and refused.retry_after_s == 5
    assert refused.reason == "the node is busy (load 0.75, threshold 0.75); try again later"
    assert not load.has_room() and load.refused == {"websocket": 1} and load.refusals["load"] == 1
    slots[0].release()
    slots[0].release()  # exactly once: a second release changes nothing
    assert load.has_room() and load.active == 2
    assert admitted(load.admit("websocket")).transport == "websocket"


def test_max_calls_is_a_hard_cap_whatever_the_load_says() -> None:
    load = NodeLoad(100, 1.0, max_calls=2, load_fnc=lambda _s: 0.0)
    held = [admitted(load.admit("sip")), admitted(load.admit("sip"))]
    refused = load.admit("sip")
    assert isinstance(refused, Refusal) and refused.code == "capacity"
    assert refused.reason == "the server is at capacity (2 calls); try again later"
    for slot in held:
        slot.release()


def test_a_reservation_holds_the_last_slot_until_released_or_started() -> None:
    """The capacity race: two calls arrive together with one slot left. The first is reserved
    before it has started (its INVITE still being answered), so the second sees the node full."""
    load = NodeLoad(1, 0.9, load_fnc=calls_load)
    first = admitted(load.admit("sip"))
    second = load.admit("sip")
    assert isinstance(second, Refusal)
    assert load.describe_load()["reserved"] == 1 and load.describe_load()["calls"] == 0
    first.started()
    first.started()  # idempotent
    info = load.describe_load()
    assert (info["reserved"], info["calls"]) == (0, 1)
    assert load.describe() == {"max_calls": 50, "active": {"sip": 1}, "refused": {"sip": 1}}
    first.release()
    assert load.active == 0 and load.describe()["active"] == {}


def test_a_reservation_that_never_starts_expires_and_is_released_once() -> None:
    clock = FakeClock()
    load = NodeLoad(1, 0.9, load_fnc=calls_load, reserved_slot_ttl_s=10.0, clock=clock)
    stuck = admitted(load.admit("sip"))  # e.g. a 200 OK never ACKed
    clock.t += 9.9
    assert not load.has_room()
    clock.t += 0.2
    assert load.has_room() and load.reservations_expired == 1
    assert isinstance(stuck, Reservation) and stuck.state == "expired"
    fresh = admitted(load.admit("websocket"))
    stuck.release()  # late: it no longer held anything, so the fresh call keeps its slot
    assert load.active == 1 and load.describe()["active"] == {"websocket": 1}
    fresh.release()
    assert load.active == 0


def test_a_call_that_starts_after_its_reservation_expired_still_counts() -> None:
    clock = FakeClock()
    load = NodeLoad(2, 1.0, load_fnc=calls_load, reserved_slot_ttl_s=1.0, clock=clock)
    late = admitted(load.admit("audiosocket"))
    clock.t += 2
    assert load.active == 0
    late.started()  # the call is running: it must count, or the node over-admits
    assert load.active == 1
    late.release()
    assert load.active == 0


def test_draining_refuses_everything_with_a_long_retry_after() -> None:
    load = NodeLoad(10, 0.9, load_fnc=calls_load)
    running = admitted(load.admit("sip"))
    running.started()
    load.start_draining()
    refused = load.admit("sip")
    assert isinstance(refused, Refusal) and refused.code == "draining" and "draining" in refused.reason
    assert refused.retry_after_s == load.retry_after_s == 60
    assert not load.has_room() and load.active == 1  # the call in progress goes on
    running.release()
    assert load.active == 0 and load.describe_load()["refused"] == {"capacity": 0, "load": 0, "draining": 1}


def test_the_default_load_is_the_busier_of_calls_and_cpu() -> None:
    assert default_load(LoadSample(1, 1, 4, None)) == 0.5
    assert default_load(LoadSample(1, 0, 4, 0.95)) == 0.95
    assert default_load(LoadSample(3, 0, 4, 0.10)) == 0.75
    assert 1 <= default_capacity_calls() == usable_cores()


def test_a_failing_load_function_falls_back_to_calls(caplog: pytest.LogCaptureFixture) -> None:
    def broken(_sample: LoadSample) -> float:
        raise RuntimeError("broken on purpose")

    load = NodeLoad(1, 0.9, load_fnc=broken)
    slot = admitted(load.admit("sip"))
    assert isinstance(load.admit("sip"), Refusal)  # calls alone: the one slot is taken
    assert caplog.text.count("the load function failed") == 1
    slot.release()


def test_the_node_file_sets_the_load_policy(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    path = tmp_path / "node.yaml"
    path.write_text(
        "load:\n  threshold: 0.5\n  capacity_calls: 6\n  reserved_slot_ttl_s: 3\n"
        "  load_fnc: voxline.node.load.calls_load\ndrain_timeout_s: 42\n"
    )
    config = load_node_config(path)
    assert config.drain_timeout_s == 42
    load = NodeLoad.from_config(config.load, max_calls=20)
    assert (load.capacity_calls, load.threshold, load.max_calls, load.cpu) == (6, 0.5, 20, None)
    assert load.describe_load()["load_fnc"] == "voxline.node.load.calls_load"
    slots = [admitted(load.admit("sip")) for _ in range(3)]  # 3 of 6 = 0.5: full
    assert isinstance(load.admit("sip"), Refusal)
    for slot in slots:
        slot.release()
    defaults = NodeLoad.from_config(NodeConfig().load)
    assert defaults.capacity_calls == usable_cores() and defaults.cpu is not None
    path.write_text("load:\n  load_fnc: voxline.node.nothing_here\n")
    with pytest.raises(ValueError, match="cannot be imported"):
        NodeLoad.from_config(load_node_config(path).load)
    path.write_text("load:\n  threshold: 2\n")
    with pytest.raises(ValueError, match="threshold"):
        load_node_config(path)
    assert LoadConfig().threshold == 0.9


def test_node_cpu_counts_a_busy_child_process() -> None:
    """A child spinning on a core shows in the node's CPU (its descendants count)."""
    cpu = NodeCpu(window_s=10.0)
    cpu.sample()
    assert cpu.fraction is None  # one sample is no interval yet
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.5)
        cpu.sample()
    finally:
        spinner.kill()
        spinner.wait()
    fraction = cpu.fraction
    assert fraction is not None
    # one core of `cores` busy (less under a loaded machine), and this test process is nearly idle
    assert 0.05 < fraction <= 1.0, fraction
