"""Scale-out on a real engine: Kamailio's dispatcher (deploy/kamailio/kamailio.cfg, unchanged) in
front of three voxline nodes, each a process in its own network namespace with its own address.

Calls come from voxline's own SIP user agent in the root namespace; each streams a tone that the
node's echo agent returns, so the media of every call is watched for as long as it lasts. The tests
show the split of a burst (call load, algorithm 10), a full node refused and skipped, a draining
node emptied without dropping a call, and a node killed mid-load taken out by the OPTIONS probes
while its neighbours' calls carry on. Each prints its figures on a `SCALEOUT` line.

These need root (network namespaces), iproute2 and kamailio; where one is missing they fail, they
do not skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scaleout.caller import Callers, CallOutcome
from scaleout.netns import PrivateNetwork, missing_requirements, private_network
from scaleout.nodes import Node, start_nodes
from scaleout.proxy import KAMAILIO, Kamailio, running_kamailio

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

MAX_GAP_S = 1.0
"""A call whose echoed tone stopped for longer than this was disturbed."""


@pytest.fixture
def network() -> Iterator[PrivateNetwork]:
    if (why := missing_requirements()) is not None:
        pytest.fail(f"scale-out tests cannot run: {why}", pytrace=False)
    if KAMAILIO is None:
        pytest.fail("scale-out tests cannot run: kamailio is not installed (apt install kamailio)",
                    pytrace=False)  # fmt: skip
    with private_network() as made:
        yield made


@dataclass
class Cluster:
    network: PrivateNetwork
    nodes: list[Node]
    kamailio: Kamailio
    callers: Callers

    def node(self, host: str | None) -> Node:
        return next(n for n in self.nodes if n.host == host)

    def split(self, outcomes: list[CallOutcome]) -> dict[str, int]:
        counts = Counter(o.node for o in outcomes)
        return {n.name: counts[n.host] for n in self.nodes}


@contextlib.asynccontextmanager
async def cluster(network: PrivateNetwork, folder: Path, max_calls: list[int]) -> AsyncIterator[Cluster]:
    nodes: list[Node] = []
    try:
        nodes = await start_nodes(network, folder / "nodes", max_calls)
        hosts = [n.host for n in nodes]
        async with (
            running_kamailio(folder / "kamailio", network.proxy_host, hosts) as kamailio,
            Callers(network.caller_host, kamailio.uri, network.proxy_host) as callers,
        ):
            yield Cluster(network, nodes, kamailio, callers)
    finally:
        await asyncio.gather(*(n.stop() for n in nodes), return_exceptions=True)


async def ended_by_the_caller(c: Cluster, node: Node, calls: int) -> None:
    """The node logged each of its `calls` as ended by the caller's BYE (logged just after the 200)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5.0
    while True:
        if node.end_reasons() == ["caller_hangup"] * calls or loop.time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert node.end_reasons() == ["caller_hangup"] * calls, f"{node.name}{explain(c)}"


def explain(c: Cluster) -> str:
    """What to print when an assertion fails: the calls, Kamailio's log and each node's log."""
    calls = "\n".join(
        f"  call {o.index}: {o.end} on {o.node} ({o.sip_call_id}), {len(o.loud_at)} echoes"
        for o in c.callers.outcomes
    )
    nodes = "\n".join(f"--- {n.name} ({n.host})\n{n.log()[-1500:]}" for n in c.nodes)
    return f"\n{calls}\n--- kamailio\n{c.kamailio.log(3000)}\n{nodes}"


def all_answered_and_ended_by_us(c: Cluster, outcomes: list[CallOutcome]) -> None:
    """Every call was answered, and ended when the caller hung up: not refused, not cut off."""
    ends = Counter(o.end for o in outcomes)
    assert ends == {"normal": len(outcomes)}, f"{ends}{explain(c)}"
    # what Kamailio's log says each call's INVITE finally went to is the node that answered it
    routed = c.kamailio.node_of_call()
    assert {o.sip_call_id: o.node for o in outcomes}.items() <= routed.items(), explain(c)


def media_flowed_to_the_end(c: Cluster, outcomes: list[CallOutcome]) -> float:
    """Every call heard its echo until it hung up, never silent for MAX_GAP_S; the longest gap."""
    gaps = [o.longest_gap_s() for o in outcomes]
    for outcome, gap in zip(outcomes, gaps, strict=True):
        assert outcome.ended_at is not None
        assert outcome.heard_between(outcome.ended_at - 0.5, outcome.ended_at), explain(c)
        assert gap < MAX_GAP_S, f"call {outcome.index} silent for {gap:.2f} s{explain(c)}"
    return max(gaps)


def options_from(host: str, target: str) -> bytes | None:
    """Send an OPTIONS from `host` straight to a node; its answer, or None if it ignored us."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        sock.settimeout(1.0)
        port = sock.getsockname()[1]
        sock.sendto(
            (
                f"OPTIONS sip:{target}:5060 SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport\r\n"
                f"From: <sip:scan@{host}>;tag={uuid.uuid4().hex[:8]}\r\nTo: <sip:{target}>\r\n"
                f"Call-ID: {uuid.uuid4().hex}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 5\r\n"
                "Content-Length: 0\r\n\r\n"
            ).encode(),
            (target, 5060),
        )
        try:
            return sock.recv(65535)
        except TimeoutError:
            return None


async def test_a_burst_is_split_by_call_load(network: PrivateNetwork, tmp_path: Path) -> None:
    async with cluster(network, tmp_path, [6, 6, 6]) as c:
        # the nodes take SIP from Kamailio's address only: a caller going around it gets no answer
        reply = await asyncio.to_thread(options_from, network.caller_host, c.nodes[0].host)
        assert reply is None, reply

        placed = await c.callers.burst(12, rate_per_s=10, hold_s=3.0)
        await c.callers.wait_all(60)
        all_answered_and_ended_by_us(c, placed)
        longest_gap = media_flowed_to_the_end(c, placed)
        split = c.split(placed)
        # call load: each INVITE goes to the node with the fewest calls, and all 12 overlap
        assert split == {"node0": 4, "node1": 4, "node2": 4}, f"{split}{explain(c)}"
        assert not c.kamailio.refusals(), explain(c)
        for node in c.nodes:
            await ended_by_the_caller(c, node, 4)
    print(f"\nSCALEOUT split: 12 calls -> {split}; longest echo gap {longest_gap * 1000:.0f} ms")


async def test_a_full_node_is_refused_and_skipped(network: PrivateNetwork, tmp_path: Path) -> None:
    async with cluster(network, tmp_path, [2, 6, 6]) as c:
        small = c.nodes[0]
        placed = await c.callers.burst(10, rate_per_s=10, hold_s=4.0)
        await c.callers.wait_all(60)
        all_answered_and_ended_by_us(c, placed)
        media_flowed_to_the_end(c, placed)
        split = c.split(placed)
        assert split["node0"] == 2 and split["node1"] + split["node2"] == 8, f"{split}{explain(c)}"
        # the full node answered 503, and Kamailio moved each of those calls to another node
        refused = [(call_id, status) for host, call_id, status in c.kamailio.refusals() if host == small.host]
        assert refused and {status for _, status in refused} == {503}, explain(c)
        assert small.invites_refused() == len(refused), explain(c)
        answered_by = {o.sip_call_id: o.node for o in placed}
        assert all(answered_by[call_id] != small.host for call_id, _ in refused), explain(c)
        # out of rotation while full, back once its calls are over and its probe answers 200
        changes = c.kamailio.state_changes(small.host)
        assert [state for _, state in changes][:1] == ["down"], f"{changes}{explain(c)}"
        last_end = max(o.ended_at or 0.0 for o in placed if o.node == small.host)
        await c.kamailio.wait_for_state(small.host, "up", after=last_end, timeout_s=6)
    print(
        f"\nSCALEOUT full node: 10 calls -> {split}; node0 (max_calls 2) refused {len(refused)} "
        f"INVITE(s) with 503, each failed over and answered elsewhere"
    )


async def test_a_draining_node_is_emptied_without_dropping_a_call(
    network: PrivateNetwork, tmp_path: Path
) -> None:
    async with cluster(network, tmp_path, [6, 6, 6]) as c:
        draining = c.nodes[0]
        first = await c.callers.burst(6, rate_per_s=10, hold_s=8.0)
        await asyncio.sleep(1.0)
        assert c.split(first) == {"node0": 2, "node1": 2, "node2": 2}, explain(c)
        loop = asyncio.get_running_loop()
        draining.terminate()
        # SIGTERM -> the node answers OPTIONS with 503 -> after two probes Kamailio takes it out
        down_at = await c.kamailio.wait_for_state(draining.host, "down", after=0.0, timeout_s=10)
        detection_s = down_at - draining.signalled_at["term"]
        later = await c.callers.burst(4, rate_per_s=10, hold_s=2.0)
        await c.callers.wait_all(60)
        # the draining node exits on its own once its last call is over
        code = await draining.wait_exit(timeout_s=10)
        exited_at = loop.time()
        everyone = first + later
        all_answered_and_ended_by_us(c, everyone)
        longest_gap = media_flowed_to_the_end(c, everyone)
        assert all(o.node != draining.host for o in later), explain(c)
        assert code == 0, explain(c)
        assert draining.final_counts == (2, 2), explain(c)
        await ended_by_the_caller(c, draining, 2)
        on_drained = [o for o in first if o.node == draining.host]
        last_end = max(o.ended_at or 0.0 for o in on_drained)
        dropped = sum(o.end != "normal" for o in everyone)
    print(
        f"\nSCALEOUT drain: SIGTERM -> node down at Kamailio in {detection_s:.2f} s; its 2 calls ran "
        f"on to the callers' hangup (longest echo gap {longest_gap * 1000:.0f} ms), 4 new calls -> "
        f"{c.split(later)}; node exited 0 {exited_at - last_end:.2f} s after its last call; dropped {dropped}"
    )


async def test_a_killed_node_is_marked_down_and_its_neighbours_calls_carry_on(
    network: PrivateNetwork, tmp_path: Path
) -> None:
    async with cluster(network, tmp_path, [6, 6, 6]) as c:
        victim = c.nodes[1]
        first = await c.callers.burst(9, rate_per_s=10, hold_s=9.0)
        await asyncio.sleep(1.5)
        assert c.split(first) == {"node0": 3, "node1": 3, "node2": 3}, explain(c)
        loop = asyncio.get_running_loop()
        victim.kill()
        killed_at = victim.signalled_at["kill"]
        down_at = await c.kamailio.wait_for_state(victim.host, "down", after=killed_at, timeout_s=10)
        detection_s = down_at - killed_at
        later = await c.callers.burst(3, rate_per_s=10, hold_s=2.0)
        await c.callers.wait_all(60)

        neighbours = [o for o in first if o.node != victim.host]
        on_victim = [o for o in first if o.node == victim.host]
        all_answered_and_ended_by_us(c, neighbours + later)
        assert all(o.node != victim.host for o in later), explain(c)
        # the neighbours' media never stopped, across the kill and after it
        longest_gap = media_flowed_to_the_end(c, neighbours + later)
        across_kill = max(o.longest_gap_s(killed_at - 0.5, down_at + 0.5) for o in neighbours)
        for node in c.nodes:
            if node is not victim:
                await ended_by_the_caller(c, node, sum(o.node == node.host for o in c.callers.outcomes))
        # and the victim's calls really lost their node: no echo a moment after the kill
        assert all(not o.heard_between(killed_at + 0.3, o.ended_at or 0.0) for o in on_victim), explain(c)
        dropped = sum(o.end != "normal" for o in neighbours + later)

        # the host comes back: the next probe answers 200 and it takes calls again
        restarted_at = loop.time()
        await victim.start(c.network)
        up_at = await c.kamailio.wait_for_state(victim.host, "up", after=restarted_at, timeout_s=10)
        again = await c.callers.burst(3, rate_per_s=10, hold_s=1.0)
        await c.callers.wait_all(60)
        all_answered_and_ended_by_us(c, again)
        assert c.split(again) == {"node0": 1, "node1": 1, "node2": 1}, explain(c)  # all idle again
    print(
        f"\nSCALEOUT kill -9: node1 marked down by probing {detection_s:.2f} s after the kill; "
        f"{len(neighbours)} neighbour calls ran on (longest echo gap {longest_gap * 1000:.0f} ms, "
        f"{across_kill * 1000:.0f} ms around the kill), 3 new calls -> {c.split(later)}; "
        f"dropped {dropped} (the victim's own {len(on_victim)} calls lost their node); restarted, "
        f"up again in {up_at - restarted_at:.2f} s, 3 new calls -> {c.split(again)}"
    )


async def test_a_call_sent_to_a_dead_node_before_the_probes_notice_moves_on(
    network: PrivateNetwork, tmp_path: Path
) -> None:
    async with cluster(network, tmp_path, [6, 6, 6]) as c:
        victim = c.nodes[2]
        first = await c.callers.burst(3, rate_per_s=10, hold_s=6.0)
        await asyncio.sleep(1.0)
        assert c.split(first) == {"node0": 1, "node1": 1, "node2": 1}, explain(c)
        victim.kill()
        # three calls at once: call load gives one to each node, the dead one too (its probes have
        # not failed yet): that INVITE goes unanswered, and after tm's fr_timer the call moves on
        window = await c.callers.burst(3, rate_per_s=10, hold_s=2.0)
        await c.callers.wait_all(60)
        all_answered_and_ended_by_us(c, window)
        media_flowed_to_the_end(c, window)
        timed_out = [(call, status) for host, call, status in c.kamailio.refusals() if host == victim.host]
        assert [status for _, status in timed_out] == [408], explain(c)
        moved = next(o for o in window if o.sip_call_id == timed_out[0][0])
        assert moved.node != victim.host and moved.answered_at is not None, explain(c)
        delay_s = moved.answered_at - moved.placed_at
        others = max((o.answered_at or 0.0) - o.placed_at for o in window if o is not moved)
        # tm's fr_timer (2 s, on Kamailio's coarse timer ticks), then the next node answers at once
        assert 1.5 <= delay_s < 4.0, explain(c)
    print(
        f"\nSCALEOUT dead node before detection: 3 calls -> {c.split(window)}; the one sent to the "
        f"dead node failed over after {delay_s:.2f} s (408), the others answered in {others * 1000:.0f} ms"
    )
