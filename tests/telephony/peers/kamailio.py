"""Run the real Kamailio (Debian `kamailio`) as a dispatcher in front of voxline instances.

Kamailio cannot bind port 0 and tell us which port it got, so it listens on a port picked free just
before it starts. Readiness is checked with an OPTIONS to Kamailio itself (its workers answer it),
and the test reads what the dispatcher decided from Kamailio's log (xlog lines in kamailio.cfg.in).
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

from telephony.peers.ports import free_port

KAMAILIO = shutil.which("kamailio") or ("/usr/sbin/kamailio" if Path("/usr/sbin/kamailio").exists() else None)
CONFIG_TEMPLATE = Path(__file__).with_name("kamailio.cfg.in")
REGISTRAR_TEMPLATE = Path(__file__).with_name("kamailio_registrar.cfg.in")
"""A registrar with digest auth for REGISTER (401) and INVITE (401 or 407): no dispatcher."""


# the xlog lines of kamailio.cfg.in
_DISPATCHED = re.compile(r"(?:INVITE|failover) (?P<call_id>\S+) -> sip:\S*?:(?P<port>\d+)")
_IN_DIALOG = re.compile(
    r"in-dialog (?P<method>[A-Z]+) (?P<call_id>\S+) via (?P<how>Route|call table) -> sip:\S*?:(?P<port>\d+)"
)


class KamailioError(RuntimeError):
    pass


@dataclass(frozen=True)
class InDialog:
    method: str
    call_id: str
    how: str
    """"Route" (the caller followed our Record-Route) or "call table" (it ignored it)."""
    port: int


class Kamailio:
    def __init__(
        self,
        folder: Path,
        backends: Sequence[int],
        *,
        probing: bool = True,
        template: Path = CONFIG_TEMPLATE,
        password: str = "",
    ) -> None:
        self.folder = folder
        self.template = template
        self.password = password
        self.port = free_port()
        self.backends = list(backends)
        self.probing = probing
        """False: no OPTIONS health probes, so only failover (failure_route) steers calls."""
        self.proc: asyncio.subprocess.Process | None = None
        self.log_path = folder / "kamailio.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def backend_uri(self, port: int) -> str:
        return f"sip:127.0.0.1:{port}"

    def write_config(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        dispatcher = self.folder / "dispatcher.list"
        dispatcher.write_text("".join(f"1 {self.backend_uri(port)}\n" for port in self.backends))
        config = self.template.read_text()
        config = config.replace("@LISTEN@", f"udp:{self.address}")
        config = config.replace("@PASSWORD@", self.password)
        config = config.replace("@DISPATCHER_LIST@", str(dispatcher))
        config = config.replace("@PROBING_MODE@", "1" if self.probing else "0")
        path = self.folder / "kamailio.cfg"
        path.write_text(config)
        return path

    async def start(self, timeout_s: float = 10.0) -> None:
        assert KAMAILIO, "kamailio is not installed (apt install kamailio)"
        config = self.write_config()
        with self.log_path.open("wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                KAMAILIO, "-f", str(config), "-DD", "-E", "-Y", str(self.folder),
                "-P", str(self.folder / "k.pid"),
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        await self.wait_ready(timeout_s)

    async def wait_ready(self, timeout_s: float) -> None:
        """Until a Kamailio worker answers an OPTIONS sent to Kamailio itself."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.setblocking(False)
            while True:
                if self.proc is not None and self.proc.returncode is not None:
                    raise KamailioError(f"kamailio exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
                if loop.time() > deadline:
                    raise KamailioError(f"kamailio did not answer OPTIONS:\n{self.log()[-3000:]}")
                sock.sendto(self._options(sock.getsockname()[1]), ("127.0.0.1", self.port))
                try:
                    reply = await asyncio.wait_for(loop.sock_recv(sock, 65535), 0.2)
                except TimeoutError:
                    continue
                if reply.startswith(b"SIP/2.0 200"):
                    return

    def _options(self, local_port: int) -> bytes:
        tag = uuid.uuid4().hex[:8]
        return (
            f"OPTIONS sip:{self.address} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport\r\n"
            f"From: <sip:probe@127.0.0.1>;tag={tag}\r\n"
            f"To: <sip:{self.address}>\r\n"
            f"Call-ID: {uuid.uuid4().hex}\r\n"
            "CSeq: 1 OPTIONS\r\nMax-Forwards: 5\r\nContent-Length: 0\r\n\r\n"
        ).encode()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_lines(self, pattern: str) -> list[str]:
        return [line for line in self.log().splitlines() if re.search(pattern, line)]

    def instance_by_call(self) -> dict[str, int]:
        """SIP Call-ID -> port of the instance its INVITE went to last (after any failover)."""
        chosen: dict[str, int] = {}
        for match in _DISPATCHED.finditer(self.log()):
            chosen[match["call_id"]] = int(match["port"])
        return chosen

    def in_dialog(self) -> list[InDialog]:
        """Every in-dialog request Kamailio relayed, in order (retransmissions included)."""
        return [
            InDialog(m["method"], m["call_id"], m["how"], int(m["port"]))
            for m in _IN_DIALOG.finditer(self.log())
        ]

    async def wait_for_log(self, pattern: str, timeout_s: float = 5.0) -> str:
        """The first log line matching `pattern`, waiting for it up to `timeout_s`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not (lines := self.log_lines(pattern)):
            if loop.time() > deadline:
                raise KamailioError(f"no log line matching {pattern!r}:\n{self.log()[-3000:]}")
            await asyncio.sleep(0.05)
        return lines[0]

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


@contextlib.asynccontextmanager
async def running_kamailio(
    folder: Path,
    backends: Sequence[int],
    *,
    probing: bool = True,
    template: Path = CONFIG_TEMPLATE,
    password: str = "",
) -> AsyncIterator[Kamailio]:
    for attempt in range(3):
        kamailio = Kamailio(folder, backends, probing=probing, template=template, password=password)
        try:
            await kamailio.start()
            break
        except KamailioError:
            await kamailio.stop()
            port_lost = "Address already in use" in kamailio.log()  # someone took the port we picked
            if attempt == 2 or not port_lost:
                raise
    try:
        yield kamailio
    finally:
        await kamailio.stop()
