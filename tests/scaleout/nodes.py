"""voxline nodes, each a process in its own network namespace (tests/scaleout/echo_node.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import voxline
from scaleout.netns import PrivateNetwork

ECHO_NODE = Path(__file__).with_name("echo_node.py")
SOURCES = Path(voxline.__file__).resolve().parents[1]
_ENDED = re.compile(r"call \S+ ended: (?P<reason>\S+)")


class NodeError(RuntimeError):
    pass


@dataclass
class Node:
    name: str
    host: str
    namespace: str
    folder: Path
    max_calls: int
    proc: asyncio.subprocess.Process | None = None
    signalled_at: dict[str, float] = field(default_factory=dict)
    final_counts: tuple[int, int] | None = None
    """(calls started, calls finished) the node printed as it exited (not if it was killed)."""

    @property
    def log_path(self) -> Path:
        return self.folder / f"{self.name}.log"

    async def start(self, network: PrivateNetwork, timeout_s: float = 20.0) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SOURCES), os.environ.get("PYTHONPATH", "")])}
        with self.log_path.open("wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *network.exec_prefix(self.namespace), sys.executable, str(ECHO_NODE),
                "--host", self.host, "--allow-from", f"{network.proxy_host}/32",
                "--max-calls", str(self.max_calls), "--rtp-ports", "20000", "20999",
                stdout=asyncio.subprocess.PIPE, stderr=log, env=env,
            )  # fmt: skip
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout_s)
        except TimeoutError:
            line = b""
        if not line.startswith(b"READY"):
            raise NodeError(f"{self.name} did not start:\n{self.log()}")

    def terminate(self) -> None:
        """SIGTERM: drain."""
        self._signal(signal.SIGTERM, "term")

    def kill(self) -> None:
        """SIGKILL: the host dies mid-call (nothing of the node runs any more)."""
        self._signal(signal.SIGKILL, "kill")

    def _signal(self, sig: int, name: str) -> None:
        assert self.proc is not None
        self.signalled_at[name] = asyncio.get_running_loop().time()
        self.proc.send_signal(sig)

    async def wait_exit(self, timeout_s: float) -> int:
        assert self.proc is not None and self.proc.stdout is not None
        out = await asyncio.wait_for(self.proc.stdout.read(), timeout_s)
        code = await asyncio.wait_for(self.proc.wait(), timeout_s)
        for line in out.decode(errors="replace").splitlines():
            if line.startswith("CALLS "):
                started, finished = line.split()[1:]
                self.final_counts = (int(started), int(finished))
        return code

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        for _ in range(3):  # drain, goodbyes, exit now (voxline.node.drain)
            self.proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.2)
        try:
            await self.wait_exit(5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def end_reasons(self) -> list[str]:
        """Why each call the node ran ended, as the node logged it ("caller_hangup": the caller's BYE)."""
        return [m["reason"] for m in _ENDED.finditer(self.log_path.read_text(errors="replace"))]

    def invites_refused(self) -> int:
        return self.log_path.read_text(errors="replace").count("INVITE refused")


async def start_nodes(network: PrivateNetwork, folder: Path, max_calls: list[int]) -> list[Node]:
    nodes = []
    for index, limit in enumerate(max_calls):
        namespace = network.add_host()
        nodes.append(Node(f"node{index}", network.node_host(index), namespace, folder, limit))
    # started together: each spends a second or two importing
    await asyncio.gather(*(node.start(network) for node in nodes))
    return nodes
