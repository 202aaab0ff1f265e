"""The llama-server supervisor's pure parts: slot affinity, the command line, the missing binary."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxline.agent.config import LLMConfig
from voxline.engines.base import EngineError, Message
from voxline.engines.llama_server import LlamaServer, SlotRouter, find_binary

SYSTEM = Message("system", "You are Maya.")


def conversation(name: str, turns: int) -> list[Message]:
    out = [SYSTEM]
    for i in range(turns):
        out.append(Message("user", f"{name} asks {i}"))
        out.append(Message("assistant", f"answer to {name} {i}"))
    return out


def test_each_conversation_returns_to_the_slot_holding_its_history() -> None:
    router = SlotRouter(2)
    a1 = router.acquire(conversation("a", 1)[:2])
    b1 = router.acquire(conversation("b", 1)[:2])  # a's slot is busy: b takes the other
    assert a1.index != b1.index
    router.release(a1)
    router.release(b1)
    # b's next turn comes first; it must not take a's slot even though both are idle
    assert router.acquire(conversation("b", 2)[:4]).index == b1.index
    assert router.acquire(conversation("a", 2)[:4]).index == a1.index


def test_history_trimmed_at_the_front_still_finds_its_slot() -> None:
    router = SlotRouter(2)
    a = router.acquire(conversation("a", 3))
    router.release(a)
    b = router.acquire(conversation("b", 3))
    router.release(b)
    trimmed = [SYSTEM, *conversation("a", 4)[3:]]  # the oldest turn dropped for the history budget
    assert router.acquire(trimmed).index == a.index


def test_an_idle_slot_is_preferred_to_waiting_for_a_busy_one() -> None:
    router = SlotRouter(2)
    a = router.acquire(conversation("a", 1))
    # a's own next turn while its slot is still busy (a barge-in restart): take the idle slot
    assert router.acquire(conversation("a", 2)).index != a.index


def test_missing_binary_fails_with_the_setup_hint(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="setup"):
        find_binary(tmp_path / "llama-server")


def test_command_is_loopback_with_slots_and_no_repack_when_asked(tmp_path: Path) -> None:
    binary = tmp_path / "llama-server"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    server = LlamaServer(
        tmp_path / "m.gguf", binary=binary, parallel=3, ctx_per_slot=1024, extra_buffers=False
    )
    cmd = server.command()
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--parallel") + 1] == "3"
    assert cmd[cmd.index("--ctx-size") + 1] == "3072"
    assert "--no-repack" in cmd
    assert server.api_key not in " ".join(cmd)  # the key travels in the environment only
    assert "--no-repack" not in LlamaServer(tmp_path / "m.gguf", binary=binary, extra_buffers=True).command()


def test_config_accepts_the_server_engine() -> None:
    cfg = LLMConfig.model_validate({"engine": "llama_server", "slots": 4})
    assert cfg.engine == "llama_server" and cfg.slots == 4
