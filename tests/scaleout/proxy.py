"""The real Kamailio running deploy/kamailio/kamailio.cfg, the config users copy, unchanged.

Only its three defines are set (`-A`): the listen address, the dispatcher list and the number of
workers. What the dispatcher decided is read from the `voxline:` xlog lines of that config, each
stamped with the time this harness first saw it (Kamailio's own stderr lines carry no time).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

KAMAILIO = shutil.which("kamailio") or next(
    (p for p in ("/usr/sbin/kamailio", "/usr/local/sbin/kamailio") if Path(p).exists()), None
)
DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kamailio"
CONFIG = DEPLOY / "kamailio.cfg"

_INVITE = re.compile(r"voxline: INVITE (?P<call_id>\S+) -> sip:(?P<host>[\d.]+):\d+")
_REFUSED = re.compile(r"voxline: node sip:(?P<host>[\d.]+):\d+ refused (?P<call_id>\S+) with (?P<status>\d+)")
_FAILOVER = re.compile(r"voxline: failover (?P<call_id>\S+) -> sip:(?P<host>[\d.]+):\d+")
_STATE = re.compile(r"voxline: node (?P<state>down|up): sip:(?P<host>[\d.]+):\d+")


class KamailioError(RuntimeError):
    pass


@dataclass(frozen=True)
class Line:
    seen_at: float
    """Event-loop time this harness first read the line."""
    text: str


class Kamailio:
    def __init__(self, folder: Path, listen_host: str, nodes: Sequence[str], children: int = 2) -> None:
        self.folder = folder
        self.host = listen_host
        self.port = 5060
        self.nodes = list(nodes)
        self.children = children
        self.proc: asyncio.subprocess.Process | None = None
        self.log_path = folder / "kamailio.log"
        self.lines: list[Line] = []
        self._read = 0
        self._tail: asyncio.Task[None] | None = None

    @property
    def uri(self) -> str:
        return f"sip:{self.host}:{self.port}"

    def write_dispatcher_list(self) -> Path:
        path = self.folder / "dispatcher.list"
        path.write_text("".join(f"1 sip:{host}:5060 0 0 duid=node{i}\n" for i, host in enumerate(self.nodes)))
        return path

    async def start(self, timeout_s: float = 10.0) -> None:
        if KAMAILIO is None:
            raise KamailioError("kamailio is not installed: apt install kamailio (scripts/setup.sh test)")
        self.folder.mkdir(parents=True, exist_ok=True)
        dispatcher = self.write_dispatcher_list()
        with self.log_path.open("wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                KAMAILIO, "-f", str(CONFIG), "-DD", "-E", "-Y", str(self.folder),
                "-P", str(self.folder / "kamailio.pid"),
                "-A", f"LISTEN=udp:{self.host}:{self.port}",
                "-A", f'DISPATCHER_LIST="{dispatcher}"',
                "-A", f"CHILDREN={self.children}",
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self._tail = asyncio.create_task(self._follow())
        await self._wait_ready(timeout_s)

    async def _follow(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._poll(loop.time())
            await asyncio.sleep(0.02)

    def _poll(self, now: float) -> None:
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._read)
                data = log.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1  # a line still being written is read next time
        self._read += end
        for text in data[:end].decode(errors="replace").splitlines():
            self.lines.append(Line(now, text))

    async def _wait_ready(self, timeout_s: float) -> None:
        """Until a worker answers an OPTIONS sent to Kamailio itself, from the callers' address."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((self.host.rsplit(".", 1)[0] + ".1", 0))
            sock.setblocking(False)
            while True:
                if self.proc is not None and self.proc.returncode is not None:
                    raise KamailioError(f"kamailio exited with {self.proc.returncode}:\n{self.log()}")
                if loop.time() > deadline:
                    raise KamailioError(f"kamailio did not answer OPTIONS:\n{self.log()}")
                sock.sendto(self._options(*sock.getsockname()), (self.host, self.port))
                try:
                    reply = await asyncio.wait_for(loop.sock_recv(sock, 65535), 0.2)
                except TimeoutError:
                    continue
                if reply.startswith(b"SIP/2.0 200"):
                    return

    def _options(self, host: str, port: int) -> bytes:
        return (
            f"OPTIONS {self.uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport\r\n"
            f"From: <sip:monitor@{host}>;tag={uuid.uuid4().hex[:8]}\r\n"
            f"To: <{self.uri}>\r\nCall-ID: {uuid.uuid4().hex}\r\n"
            "CSeq: 1 OPTIONS\r\nMax-Forwards: 5\r\nContent-Length: 0\r\n\r\n"
        ).encode()

    def log(self, tail: int = 4000) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-tail:]

    # -- what the dispatcher did
    def node_of_call(self) -> dict[str, str]:
        """SIP Call-ID -> the node its INVITE went to last (after any failover)."""
        chosen: dict[str, str] = {}
        for line in self.lines:
            if m := _INVITE.search(line.text) or _FAILOVER.search(line.text):
                chosen[m["call_id"]] = m["host"]
        return chosen

    def first_choice(self) -> dict[str, str]:
        """SIP Call-ID -> the node the dispatcher picked first."""
        return {m["call_id"]: m["host"] for line in self.lines if (m := _INVITE.search(line.text))}

    def refusals(self) -> list[tuple[str, str, int]]:
        """(node, Call-ID, status) for every INVITE a node refused or left unanswered."""
        return [
            (m["host"], m["call_id"], int(m["status"]))
            for line in self.lines
            if (m := _REFUSED.search(line.text))
        ]

    def failovers(self) -> list[tuple[str, str]]:
        return [(m["call_id"], m["host"]) for line in self.lines if (m := _FAILOVER.search(line.text))]

    def state_changes(self, host: str) -> list[tuple[float, str]]:
        """(time seen, "down" | "up") for one node, in order."""
        return [
            (line.seen_at, m["state"])
            for line in self.lines
            if (m := _STATE.search(line.text)) and m["host"] == host
        ]

    async def wait_for_state(self, host: str, state: str, after: float, timeout_s: float) -> float:
        """The time the node was reported `state` (first report after `after`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            self._poll(loop.time())
            for seen_at, now_state in self.state_changes(host):
                if seen_at >= after and now_state == state:
                    return seen_at
            if loop.time() > deadline:
                raise KamailioError(f"node {host} not reported {state} in {timeout_s} s:\n{self.log()}")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self._tail is not None:
            self._tail.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tail
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self._poll(asyncio.get_running_loop().time())


@contextlib.asynccontextmanager
async def running_kamailio(folder: Path, listen_host: str, nodes: Sequence[str]) -> AsyncIterator[Kamailio]:
    kamailio = Kamailio(folder, listen_host, nodes)
    try:
        await kamailio.start()
        yield kamailio
    finally:
        await kamailio.stop()
