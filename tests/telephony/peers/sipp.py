"""Run sipp (Debian `sip-tester`) headless as a caller placing one or many calls, with its logs kept."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path

from telephony.peers.ports import free_port, free_port_range

SIPP = shutil.which("sipp")
SCENARIOS = Path(__file__).parent.parent / "sipp"
PCAPS = Path("/usr/share/sip-tester")


@dataclass
class SippResult:
    returncode: int
    stdout: str
    stderr: str
    workdir: Path

    def log(self, suffix: str) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob(f"*{suffix}")))

    def explain(self) -> str:
        """What to print when a sipp run failed: its summary and its error log."""
        return (
            f"exit {self.returncode}\n{self.stdout[-2500:]}\n{self.stderr[-1000:]}\n{self.log('errors.log')}"
        )


def _prepare(workdir: Path, with_pcaps: bool) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    if with_pcaps:  # scenarios name their pcaps as ./pcap/NAME, relative to where sipp runs
        (workdir / "pcap").mkdir(exist_ok=True)
        for pcap in PCAPS.glob("*.pcap"):
            shutil.copy(pcap, workdir / "pcap" / pcap.name)


async def run_sipp(
    workdir: Path,
    target: str | None,
    *args: str,
    calls: int = 1,
    rate: float = 10.0,
    timeout_s: float = 30.0,
    with_pcaps: bool = False,
    port: int | None = None,
) -> SippResult:
    """Place `calls` calls to `target` at `rate` per second (or, with target None, serve on `port`);
    bounded by `timeout_s` (sipp's own global timeout makes it exit non-zero, and a hung sipp is
    killed a little later). Logs land in `workdir`."""
    assert SIPP is not None, "sipp is not installed (apt install sip-tester)"
    await asyncio.to_thread(_prepare, workdir, with_pcaps)
    command = [
        SIPP, *([target] if target else []), "-nostdin", "-i", "127.0.0.1", "-p", str(port or free_port()),
        # sipp binds audio RTP at -mp, RTCP at +1 and video at +2/+3: all four must be free
        "-mp", str(free_port_range(4)), "-m", str(calls), "-r", str(rate),
        "-timeout", f"{int(timeout_s)}s", "-timeout_error", "-trace_err", "-trace_msg", *args,
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *command, cwd=workdir, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout_s + 10)
    except TimeoutError:
        process.kill()
        out, err = await process.communicate()
    assert process.returncode is not None
    return SippResult(process.returncode, out.decode(errors="replace"), err.decode(errors="replace"), workdir)
