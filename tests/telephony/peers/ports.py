"""Free loopback ports for peers that cannot bind port 0 themselves and tell us which they got."""

from __future__ import annotations

import socket


def free_port(kind: int = socket.SOCK_DGRAM, even: bool = False) -> int:
    """A port free for both UDP and TCP on 127.0.0.1 right now (racy, but fine on a test box)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, kind) as first:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            if even and port % 2:
                continue
            other = socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM
            with socket.socket(socket.AF_INET, other) as second:
                try:
                    second.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


def free_port_range(size: int) -> int:
    """The first of `size` consecutive free UDP ports (for baresip's rtp_ports)."""
    for _ in range(200):
        base = free_port(even=True)
        socks = []
        try:
            for offset in range(size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")
