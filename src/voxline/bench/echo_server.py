"""A media-only agent under test: a SIP endpoint whose calls echo the caller's audio, no models.

    python -m voxline.bench.echo_server --sip-port 0

Prints `SIP_PORT=<port>` once listening (so a bench can use port 0) and runs until terminated.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from voxline.agent.config import SipConfig
from voxline.telephony.echo import EchoAgent
from voxline.telephony.sip.endpoint import SipEndpoint

READY_PREFIX = "SIP_PORT="


async def serve(host: str, port: int, max_calls: int) -> None:
    config = SipConfig(
        host=host, port=port, transports=["udp"], rtp_port_min=0, rtp_port_max=0, max_calls=max_calls
    )
    endpoint = SipEndpoint(config, EchoAgent())
    await endpoint.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"{READY_PREFIX}{endpoint.local_port('udp')}", flush=True)
    try:
        await stop.wait()
    finally:
        await endpoint.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="SIP echo agent for `voxline bench`")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--sip-port", type=int, default=0, help="UDP port (0: any free port)")
    parser.add_argument("--max-calls", type=int, default=200)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.sip_port, args.max_calls))


if __name__ == "__main__":
    main()
