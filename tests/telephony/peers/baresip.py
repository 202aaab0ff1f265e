"""Drive the real baresip softphone (Debian `baresip-core`) headless, as a caller.

It dials a SIP URI, plays a WAV as its microphone and records both directions with the `sndfile`
module. Quirks (TELEPHONY.md): it hangs up when the WAV ends, so callers pad it with silence; its
control port is bound to loopback; it cannot send SIP INFO (use sipp for that).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from telephony.peers.ports import free_port, free_port_range

BARESIP = shutil.which("baresip")
MODULE_PATH = Path("/usr/lib/baresip/modules")


@dataclass
class BaresipResult:
    returncode: int
    log: str
    heard: Path | None
    """What baresip received (decoded agent audio), mono WAV at the codec's rate."""
    sent: Path | None


def write_config(
    folder: Path, microphone: Path, record_dir: Path, codec_modules: tuple[str, ...] = ("g711.so",)
) -> int:
    """Write baresip's config and accounts into `folder`; returns its console port."""
    folder.mkdir(parents=True, exist_ok=True)
    record_dir.mkdir(parents=True, exist_ok=True)
    sip_port = free_port()
    cons_port = free_port(kind=socket.SOCK_STREAM)
    rtp = free_port_range(4)
    lines = {
        "poll_method": "epoll",
        "sip_listen": f"127.0.0.1:{sip_port}",
        "net_interface": "127.0.0.1",
        "audio_player": "aubridge,nil",  # alsa,null busy-loops a core; aubridge idles
        "audio_source": f"aufile,{microphone}",
        "audio_alert": "alsa,null",
        "rtp_ports": f"{rtp}-{rtp + 3}",
        "module_path": str(MODULE_PATH),
        "cons_listen": f"127.0.0.1:{cons_port}",
        "snd_path": str(record_dir),
    }
    modules = [*codec_modules, "aufile.so", "aubridge.so", "alsa.so", "sndfile.so", "cons.so"]
    apps = ["account.so", "menu.so"]
    text = "\n".join(f"{k}\t\t{v}" for k, v in lines.items())
    text += "\n" + "\n".join(f"module\t\t{m}" for m in modules)
    text += "\n" + "\n".join(f"module_app\t\t{m}" for m in apps) + "\n"
    (folder / "config").write_text(text)
    (folder / "accounts").write_text("<sip:caller@127.0.0.1>;regint=0\n")
    return cons_port


async def call(
    uri: str,
    microphone: Path,
    folder: Path,
    seconds: float,
    codec_modules: tuple[str, ...] = ("g711.so",),
) -> BaresipResult:
    """Dial `uri`, talk for `seconds`, hang up; return the recordings. `codec_modules` in the order
    baresip should offer them (e.g. ("g722.so", "g711.so") for wideband first)."""
    assert BARESIP, "baresip is not installed (apt install baresip-core)"
    record_dir = folder / "rec"
    write_config(folder / "cfg", microphone, record_dir, codec_modules)
    proc = await asyncio.create_subprocess_exec(
        BARESIP, "-f", str(folder / "cfg"), "-e", f"/dial {uri}", "-t", str(int(seconds)),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=folder,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), seconds + 20)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
    heard = sorted(record_dir.glob("*-dec.wav"))
    sent = sorted(record_dir.glob("*-enc.wav"))
    return BaresipResult(
        returncode=proc.returncode if proc.returncode is not None else -1,
        log=out.decode(errors="replace"),
        heard=heard[-1] if heard else None,
        sent=sent[-1] if sent else None,
    )
