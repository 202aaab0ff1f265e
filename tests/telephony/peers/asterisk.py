"""Run a real Asterisk (a build from source, outside the repository) on loopback for interop tests.

`VOXLINE_ASTERISK_PREFIX` names the install prefix of a build (`make bininstall` into it: its
`sbin/asterisk` and `lib/asterisk/modules`, with app_audiosocket and chan_audiosocket enabled in
menuselect; docs/asterisk.md says how). Each `Asterisk` runs from its own folder with its own
config, control socket and logs, bound to 127.0.0.1 only, and uses Debian's
asterisk-core-sounds-en-wav for its prompts.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from pathlib import Path

from telephony.peers.ports import free_port, free_port_range

PREFIX_ENV = "VOXLINE_ASTERISK_PREFIX"
SOUNDS = Path("/usr/share/asterisk/sounds")


def prefix() -> Path | None:
    value = os.environ.get(PREFIX_ENV)
    if not value:
        return None
    path = Path(value)
    return path if (path / "sbin" / "asterisk").exists() else None


class Asterisk:
    """One Asterisk process. Write the dialplan and PJSIP config, `start()`, drive it with `cli()`."""

    def __init__(self, folder: Path, install: Path) -> None:
        self.folder = folder
        self.install = install
        self.sip_port = free_port()
        self.proc: asyncio.subprocess.Process | None = None
        self.http_port = 0
        self._extra_files: dict[str, str] = {}
        for name in ("etc", "varlib", "db", "keys", "data", "agi", "spool", "run", "log"):
            (folder / name).mkdir(parents=True, exist_ok=True)
        data = folder / "data"
        for entry in (install / "var" / "lib" / "asterisk").iterdir():  # its XML docs, rest-api, ...
            if entry.name != "sounds" and not (data / entry.name).exists():
                (data / entry.name).symlink_to(entry)
        sounds = data / "sounds"
        if not sounds.exists():
            sounds.mkdir()
            for entry in SOUNDS.iterdir():
                (sounds / entry.name).symlink_to(entry)
        self.custom_sounds = sounds / "custom"
        self.custom_sounds.mkdir(exist_ok=True)

    @property
    def conf(self) -> Path:
        return self.folder / "etc" / "asterisk.conf"

    @property
    def full_log(self) -> str:
        path = self.folder / "log" / "full"
        return path.read_text(errors="replace") if path.exists() else ""

    def enable_ari(self, user: str, password: str) -> str:
        """Turn on the HTTP server and ARI (call before configure); returns ARI's base URL."""
        self.http_port = free_port(kind=socket.SOCK_STREAM)
        self._extra_files["http.conf"] = (
            f"[general]\nenabled=yes\nbindaddr=127.0.0.1\nbindport={self.http_port}\n"
        )
        self._extra_files["ari.conf"] = (
            f"[general]\nenabled=yes\n\n[{user}]\ntype=user\nread_only=no\npassword={password}\n"
        )
        return f"http://127.0.0.1:{self.http_port}/ari"

    def configure(self, *, extensions: str, pjsip: str = "") -> None:
        d = self.folder
        rtp = free_port_range(40)
        files = {
            "asterisk.conf": f"""[directories]
astetcdir => {d}/etc
astmoddir => {self.install}/lib/asterisk/modules
astvarlibdir => {d}/varlib
astdbdir => {d}/db
astkeydir => {d}/keys
astdatadir => {d}/data
astagidir => {d}/agi
astspooldir => {d}/spool
astrundir => {d}/run
astlogdir => {d}/log
astsbindir => {self.install}/sbin
[options]
defaultlanguage = en
verbose = 3
""",
            "modules.conf": """[modules]
autoload = yes
noload = chan_iax2.so
noload = chan_unistim.so
noload = res_pktccops.so
noload = cdr_custom.so
noload = cdr_csv.so
noload = cel_custom.so
noload = res_hep.so
noload = res_hep_pjsip.so
noload = res_hep_rtcp.so
""",
            "logger.conf": """[general]
[logfiles]
full => notice,warning,error,verbose(4),dtmf
console => warning,error
""",
            "rtp.conf": f"[general]\nrtpstart={rtp}\nrtpend={rtp + 39}\n",
            "http.conf": "[general]\nenabled=no\n",
            "extensions.conf": extensions,
            "pjsip.conf": f"""[transport-udp]
type=transport
protocol=udp
bind=127.0.0.1:{self.sip_port}

{pjsip}""",
        }
        files.update(self._extra_files)
        for name, text in files.items():
            (d / "etc" / name).write_text(text)

    async def start(self, within_s: float = 60.0) -> None:
        binary = self.install / "sbin" / "asterisk"
        log = (self.folder / "log" / "stdout").open("wb")
        self.proc = await asyncio.create_subprocess_exec(
            str(binary), "-C", str(self.conf), "-f", "-n",
            stdout=log, stderr=subprocess.STDOUT, cwd=self.folder,
        )  # fmt: skip
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if self.proc.returncode is not None:
                raise RuntimeError(f"asterisk exited with {self.proc.returncode}")
            if (self.folder / "run" / "asterisk.ctl").exists():
                out = await self.cli("core waitfullybooted", timeout_s=within_s)
                if "fully booted" in out.lower():
                    return
            await asyncio.sleep(0.2)
        raise RuntimeError("asterisk did not finish booting")

    async def cli(self, command: str, timeout_s: float = 10.0) -> str:
        binary = self.install / "sbin" / "asterisk"
        proc = await asyncio.create_subprocess_exec(
            str(binary), "-C", str(self.conf), "-rx", command,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
        return out.decode(errors="replace")

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        try:
            await self.cli("core stop now", timeout_s=5)
            await asyncio.wait_for(self.proc.wait(), 10)
        except (TimeoutError, OSError):
            self.proc.kill()
            await self.proc.wait()
