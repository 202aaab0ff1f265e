"""A SIP flood from one source while a call goes on, on real loopback sockets.

A call from 127.0.0.1 streams 4 s of RTP and gets its echo back; meanwhile a separate process on
127.0.0.2 sends valid OPTIONS, valid INVITEs and junk to the SIP port as fast as it can. The call
must keep all its audio; the flood is cut down to the per-source rate before it is even parsed.
The figures (flood rate, what was dropped, the call's RTP send jitter p99) are printed: run with -s.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import subprocess
import sys
import textwrap

import pytest

from voxline.telephony.echo import EchoAgent
from voxline.telephony.rtp import RtpPacket
from voxline.telephony.sip.endpoint import SipEndpoint
from voxline.telephony.sip.message import SipResponse, parse_name_addr
from voxline.telephony.sip.transaction import Timers

from ..rtp.udp_peer import UdpPeer as RtpPeer
from .conftest import sip_config
from .rawpeer import UdpPeer, request, sdp
from .test_dialog_raw import in_dialog

pytestmark = pytest.mark.timeout(90)

CALL_S = 4.0
FLOOD_S = 3.0

FLOODER = textwrap.dedent(
    """
    import os, socket, sys, time
    port, seconds = int(sys.argv[1]), float(sys.argv[2])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.2", 0))
    sock.setblocking(False)
    me = sock.getsockname()[1]
    def msg(method, n, body=""):
        ctype = "Content-Type: application/sdp\\r\\n" if body else ""
        return (
            f"{method} sip:agent@127.0.0.1:{port} SIP/2.0\\r\\n"
            f"Via: SIP/2.0/UDP 127.0.0.2:{me};branch=z9hG4bKf{n};rport\\r\\n"
            f"From: <sip:flood@127.0.0.2>;tag=f{n}\\r\\nTo: <sip:agent@127.0.0.1>\\r\\n"
            f"Call-ID: flood-{n}\\r\\nCSeq: 1 {method}\\r\\nMax-Forwards: 70\\r\\n"
            f"Contact: <sip:flood@127.0.0.2:{me}>\\r\\n{ctype}Content-Length: {len(body)}\\r\\n\\r\\n{body}"
        ).encode()
    body = ("v=0\\r\\no=- 1 1 IN IP4 127.0.0.2\\r\\ns=-\\r\\nc=IN IP4 127.0.0.2\\r\\nt=0 0\\r\\n"
            "m=audio 9 RTP/AVP 0\\r\\n")
    sent, n = 0, 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(50):
            n += 1
            kind = n % 3
            if kind == 0:
                data = msg("OPTIONS", n)
            else:
                data = msg("INVITE", n, body) if kind == 1 else os.urandom(300)
            try:
                sock.sendto(data, ("127.0.0.1", port))
                sent += 1
            except BlockingIOError:
                time.sleep(0.0005)
            try:
                while sock.recv(65535):
                    pass
            except BlockingIOError:
                pass
    print(sent)
    """
)


async def test_a_flood_from_one_source_leaves_a_live_call_its_audio() -> None:
    agent = EchoAgent()
    endpoint = SipEndpoint(sip_config(), agent, timers=Timers(t1=0.05, t2=0.2, t4=0.2))
    await endpoint.start()
    port = endpoint.local_port("udp")
    sip = await UdpPeer().open()
    rtp = await RtpPeer.open()
    try:
        ctype = "Content-Type: application/sdp\r\n"
        invite = request("INVITE", port, local_port=sip.port, body=sdp(rtp.port, "0"), extra=ctype)
        sip.send(invite, port)
        ok = await sip.final()
        assert ok.status == 200
        sip.send(in_dialog("ACK", port, sip, invite, ok, 1), port)
        assert parse_name_addr(ok.headers.get("To") or "").tag
        (call,) = endpoint.calls.values()
        flooder = await asyncio.create_subprocess_exec(
            sys.executable, "-c", FLOODER, str(port), str(FLOOD_S), stdout=subprocess.PIPE
        )

        async def stream() -> int:
            loop = asyncio.get_running_loop()
            start = loop.time()
            frames = round(CALL_S / 0.02)
            for i in range(frames):
                payload = bytes([0x10 + i % 0x60]) * 160
                rtp.send(RtpPacket(0, i, 160 * i, 0x1234, payload).to_bytes(), call.session.local_port)
                await asyncio.sleep(max(0.0, start + (i + 1) * 0.02 - loop.time()))
            return frames

        sent_frames = await stream()
        out, _ = await flooder.communicate()
        flood_sent = int(out.decode().strip() or 0)
        await asyncio.sleep(0.3)
        echoed = [p for _, p in rtp.packets() if p.payload != bytes([0xFF]) * 160]  # not silence
        arrivals = [t for t, _ in rtp.packets()]
        gaps_ms = sorted((b - a) * 1000 for a, b in itertools.pairwise(arrivals))
        stats = call.session.stats
        admission = endpoint.admission
        print(
            f"\nflood: {flood_sent} datagrams in {FLOOD_S:g} s"
            f" = {flood_sent / FLOOD_S:,.0f}/s from one source;"
            f" read by the endpoint: {admission.rate_limited + admission.admitted}"
            f" ({(admission.rate_limited + admission.admitted) / FLOOD_S:,.0f}/s,"
            " the rest lost in the kernel);"
            f" dropped unparsed (over the per-source rate): {admission.rate_limited};"
            f" parsed: {admission.admitted};"
            f" calls it opened: {agent.calls_started - 1} (its INVITEs are never ACKed: no media)"
            f"\nthe call: {sent_frames} frames sent, {stats.packets_in} received, {len(echoed)} echoed back;"
            f" RTP send jitter p99 {stats.send_jitter_ms_p99():.2f} ms,"
            f" max {stats.send_jitter_ms_max():.2f} ms;"
            f" echo inter-arrival p50 {statistics.median(gaps_ms):.1f} ms,"
            f" p99 {gaps_ms[int(0.99 * (len(gaps_ms) - 1))]:.1f} ms"
        )
        assert flood_sent > 1000
        assert admission.rate_limited > 1000
        # what reached the parser: the call's own requests and the flood's burst plus its rate
        assert admission.admitted <= 2 * 100 + 100 * (FLOOD_S + CALL_S) + 10
        assert stats.packets_in >= 0.95 * sent_frames  # the call heard (nearly) everything
        assert len(echoed) >= 0.9 * sent_frames  # and its echo came back
        assert agent.calls_started == 1  # the flood's INVITEs were answered but never ACKed: no call ran
        sip.send(in_dialog("BYE", port, sip, invite, ok, 2), port)
        bye_ok = await sip.final()
        assert isinstance(bye_ok, SipResponse) and bye_ok.status == 200
    finally:
        rtp.close()
        sip.close()
        await endpoint.stop()
