"""One voxline node for the scale-out tests: a SIP endpoint running the media-only echo agent.

    python tests/scaleout/echo_node.py --host 10.77.0.11 --allow-from 10.77.0.2/32 --max-calls 6

Run inside its own network namespace, it behaves like a host of a cluster: SIP on HOST:5060 and RTP
on HOST, SIP taken only from the proxy's address (`allow_from`), at most `max_calls` calls (more
get 503, and so does OPTIONS). SIGTERM drains it like `voxline serve` (issue 15 item 5): new calls
and OPTIONS get 503 at once, calls in progress run on, and the process exits once the last one has
ended (or after `--drain-timeout`); a second SIGTERM ends the calls now. Prints `READY` when
listening and one `CALLS <started> <finished>` line before it exits.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from voxline.agent.config import SipConfig
from voxline.telephony.echo import EchoAgent
from voxline.telephony.sip.endpoint import SipEndpoint

log = logging.getLogger("echo_node")


async def drain(endpoint: SipEndpoint, again: asyncio.Event, timeout_s: float) -> None:
    """Refuse new calls, then wait for the calls in progress (or a second signal, or the timeout)."""
    endpoint.accepting = False
    log.info("draining: %d calls in progress", endpoint.active_calls)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:  # the endpoint has no "last call ended" event; a 50 ms look is cheap
        if not endpoint.active_calls or again.is_set() or loop.time() >= deadline:
            break
        await asyncio.sleep(0.05)
    log.info("drained: %d calls left", endpoint.active_calls)


async def serve(args: argparse.Namespace) -> None:
    config = SipConfig(
        host=args.host,
        port=args.port,
        transports=["udp"],
        rtp_port_min=args.rtp_ports[0],
        rtp_port_max=args.rtp_ports[1],
        max_calls=args.max_calls,
        allow_from=args.allow_from,
    )
    agent = EchoAgent()
    endpoint = SipEndpoint(config, agent)
    await endpoint.start()
    first, second = asyncio.Event(), asyncio.Event()

    def on_signal() -> None:
        (second if first.is_set() else first).set()

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, on_signal)
    loop.add_signal_handler(signal.SIGINT, on_signal)
    print(f"READY {args.host}:{endpoint.local_port('udp')}", flush=True)
    try:
        await first.wait()
        await drain(endpoint, second, args.drain_timeout)
    finally:
        await endpoint.stop()
        print(f"CALLS {agent.calls_started} {agent.calls_finished}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=5060)
    parser.add_argument("--rtp-ports", type=int, nargs=2, default=(20000, 20999))
    parser.add_argument("--allow-from", action="append", required=True, help="CIDR SIP is taken from")
    parser.add_argument("--max-calls", type=int, default=50)
    parser.add_argument("--drain-timeout", type=float, default=300.0)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s.%(msecs)03d %(name)s %(message)s",
        datefmt="%H:%M:%S",
    )  # fmt: skip
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
