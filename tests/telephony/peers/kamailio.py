"""Run the real Kamailio (Debian `kamailio`) as a dispatcher in front of voxline instances."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from telephony.peers.ports import free_port

KAMAILIO = shutil.which("kamailio") or ("/usr/sbin/kamailio" if Path("/usr/sbin/kamailio").exists() else None)
CONFIG_TEMPLATE = Path(__file__).with_name("kamailio.cfg.in")


class Kamailio:
    def __init__(self, folder: Path, backends: Sequence[int]) -> None:
        self.folder = folder
        self.port = free_port()
        self.backends = list(backends)
        self.proc: asyncio.subprocess.Process | None = None
        self.log_path = folder / "kamailio.log"

    def write_config(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        dispatcher = self.folder / "dispatcher.list"
        dispatcher.write_text("".join(f"1 sip:127.0.0.1:{port}\n" for port in self.backends))
        config = CONFIG_TEMPLATE.read_text()
        config = config.replace("@LISTEN@", f"udp:127.0.0.1:{self.port}")
        config = config.replace("@DISPATCHER_LIST@", str(dispatcher))
        path = self.folder / "kamailio.cfg"
        path.write_text(config)
        return path

    async def start(self) -> None:
        assert KAMAILIO, "kamailio is not installed (apt install kamailio)"
        config = self.write_config()
        log = self.log_path.open("wb")
        self.proc = await asyncio.create_subprocess_exec(
            KAMAILIO, "-f", str(config), "-DD", "-E", "-Y", str(self.folder),
            "-P", str(self.folder / "k.pid"),
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        for _ in range(100):  # until it has bound its port and forked its workers
            if "Listening on" in self.log() or self.proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


@contextlib.asynccontextmanager
async def running_kamailio(folder: Path, backends: Sequence[int]) -> AsyncIterator[Kamailio]:
    kamailio = Kamailio(folder, backends)
    await kamailio.start()
    try:
        yield kamailio
    finally:
        await kamailio.stop()
