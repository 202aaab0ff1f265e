"""One voxline node for the scale-out tests: a SIP endpoint running the media-only echo agent.

    python tests/scaleout/echo_node.py --host 10.77.0.11 --allow-from 10.77.0.2/32 --max-calls 6

Run inside its own network namespace, it behaves like a host of a cluster: SIP on HOST:5060 and RTP
on HOST, SIP taken only from the proxy's address (`allow_from`), at most `max_calls` calls (more
get 503, and so does OPTIONS). Admission and draining are the node's own (`voxline.node.load`,
`voxline.node.drain`), as in `voxline serve`: on SIGTERM new calls and OPTIONS get 503 at once,
calls in progress run on, and the process exits once the last one has ended (a third SIGTERM:
at once). Prints `READY` when listening and one `CALLS <started> <finished>` line as it exits.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from voxline.agent.config import SipConfig
from voxline.node.drain import Drain
from voxline.node.load import NodeLoad
from voxline.telephony.echo import EchoAgent
from voxline.telephony.sip.call import SipCall
from voxline.telephony.sip.endpoint import SipEndpoint
from voxline.transports.base import CallIO


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

    async def run_call(call: CallIO) -> None:
        # what the server's call handler does: the INVITE's reservation is a running call now
        slot = call.capacity_slot if isinstance(call, SipCall) else None
        if slot is not None:
            slot.started()
        await agent(call)

    load = NodeLoad.budget(args.max_calls)
    endpoint = SipEndpoint(config, run_call, capacity=load)
    await endpoint.start()
    drain = Drain(load, args.drain_timeout)
    drained = asyncio.Event()
    drain.on_done = drained.set
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, drain.on_signal, sig)
    print(f"READY {args.host}:{endpoint.local_port('udp')}", flush=True)
    try:
        await drained.wait()
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
