"""A tiny reader for classic pcap files of Ethernet/IPv4/UDP, enough to replay sipp's RTP captures."""

from __future__ import annotations

import struct
from pathlib import Path

SIPP_PCAPS = Path("/usr/share/sip-tester")


def udp_payloads(path: Path) -> list[tuple[float, bytes]]:
    """(capture time in seconds, UDP payload) for each IPv4/UDP packet in the file."""
    data = path.read_bytes()
    magic = struct.unpack_from("<I", data)[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    if linktype != 1:
        raise ValueError(f"only Ethernet captures are supported, got link type {linktype}")
    out: list[tuple[float, bytes]] = []
    offset = 24
    while offset + 16 <= len(data):
        seconds, fraction, captured, _ = struct.unpack_from(endian + "IIII", data, offset)
        offset += 16
        frame = data[offset : offset + captured]
        offset += captured
        if len(frame) < 14 + 20 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        header_len = (ip[0] & 0x0F) * 4
        if ip[9] != 17:  # not UDP
            continue
        udp = ip[header_len:]
        length = struct.unpack_from("!H", udp, 4)[0]
        out.append((seconds + fraction / (1e9 if nano else 1e6), bytes(udp[8:length])))
    return out
