"""A raw SIP peer for tests: hand-written messages over UDP or TCP, responses parsed back."""

from __future__ import annotations

import asyncio
import secrets

from voxline.telephony.sip.message import (
    Headers,
    SipMessage,
    SipParseError,
    SipRequest,
    SipResponse,
    parse_message,
    split_stream,
)


def request(
    method: str,
    port: int,
    *,
    transport: str = "UDP",
    local_port: int = 5099,
    to_tag: str | None = None,
    call_id: str | None = None,
    cseq: int = 1,
    body: str = "",
    extra: str = "",
    drop: tuple[str, ...] = (),
    content_length: str | None = None,
) -> bytes:
    """A request from 127.0.0.1:local_port to our endpoint; `drop` leaves headers out."""
    headers = {
        "Via": f"SIP/2.0/{transport} 127.0.0.1:{local_port};branch=z9hG4bK{secrets.token_hex(6)};rport",
        "From": f"<sip:tester@127.0.0.1:{local_port}>;tag={secrets.token_hex(4)}",
        "To": f"<sip:agent@127.0.0.1:{port}>" + (f";tag={to_tag}" if to_tag else ""),
        "Call-ID": call_id or secrets.token_hex(8),
        "CSeq": f"{cseq} {method}",
        "Max-Forwards": "70",
        "Contact": f"<sip:tester@127.0.0.1:{local_port}>",
        "Content-Length": content_length if content_length is not None else str(len(body.encode())),
    }
    lines = [f"{method} sip:agent@127.0.0.1:{port} SIP/2.0"]
    lines += [f"{name}: {value}" for name, value in headers.items() if name not in drop]
    text = "\r\n".join(lines) + "\r\n" + extra + "\r\n" + body
    return text.encode()


def sdp(port: int, formats: str = "0 101", extra: str = "") -> str:
    return (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP {formats}\r\na=rtpmap:101 telephone-event/8000\r\n{extra}"
    )


def lenient_parse(data: bytes) -> SipMessage:
    """Parse a message; a response that lacks headers (a 400 to a request without them) still reads."""
    try:
        return parse_message(data)
    except SipParseError:
        head = data.decode("latin-1").split("\r\n\r\n", 1)[0].split("\r\n")
        if not head[0].startswith("SIP/2.0 "):
            raise
        _, code, reason = head[0].split(" ", 2)
        headers = Headers([tuple(line.split(": ", 1)) for line in head[1:] if ": " in line])  # type: ignore[misc]
        return SipResponse(int(code), reason, headers)


class _Collector(asyncio.DatagramProtocol):
    def __init__(self, queue: asyncio.Queue[tuple[bytes, tuple[str, int]]]) -> None:
        self.queue = queue

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait((data, addr))


class UdpPeer:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0

    async def open(self) -> UdpPeer:
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(
            lambda: _Collector(self.queue), local_addr=("127.0.0.1", 0)
        )
        self.port = int(self.transport.get_extra_info("sockname")[1])
        return self

    def send(self, data: bytes, port: int) -> None:
        assert self.transport is not None
        self.transport.sendto(data, ("127.0.0.1", port))

    async def receive(self, timeout_s: float = 3.0) -> SipMessage:
        data, _ = await asyncio.wait_for(self.queue.get(), timeout_s)
        return lenient_parse(data)

    async def final(self, timeout_s: float = 3.0) -> SipResponse:
        """The next final response (skipping 1xx)."""
        while True:
            message = await self.receive(timeout_s)
            if isinstance(message, SipResponse) and message.status >= 200:
                return message

    async def nothing(self, within_s: float = 0.5) -> bool:
        try:
            await asyncio.wait_for(self.queue.get(), within_s)
        except TimeoutError:
            return True
        return False

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class TcpPeer:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buffer = bytearray()
        self.port = int(writer.get_extra_info("sockname")[1])

    @classmethod
    async def connect(cls, port: int) -> TcpPeer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def receive(self, timeout_s: float = 3.0) -> SipMessage:
        while True:
            messages = split_stream(self.buffer)
            if messages:
                # keep any further complete messages for the next call
                for extra in reversed(messages[1:]):
                    self.buffer[:0] = extra
                return parse_message(messages[0], stream=True)
            chunk = await asyncio.wait_for(self.reader.read(65536), timeout_s)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk

    async def final(self, timeout_s: float = 3.0) -> SipResponse:
        while True:
            message = await self.receive(timeout_s)
            if isinstance(message, SipResponse) and message.status >= 200:
                return message

    async def closed(self, timeout_s: float = 3.0) -> bool:
        try:
            while await asyncio.wait_for(self.reader.read(65536), timeout_s):
                pass
        except (ConnectionError, TimeoutError):
            return False
        return True

    def close(self) -> None:
        self.writer.close()


__all__ = ["SipRequest", "TcpPeer", "UdpPeer", "request", "sdp"]
