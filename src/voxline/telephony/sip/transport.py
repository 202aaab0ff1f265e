"""SIP over UDP and TCP (RFC 3261 §18): listen, connect, frame, and route responses (RFC 3581).

The transport only moves bytes and parses them into messages; it knows nothing about transactions.
Messages the parser rejects are answered here (when they were requests and carry a Via) because no
layer above can see them. A hostile peer can cost a log line and a small response, nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from voxline.telephony.access import is_ip_literal
from voxline.telephony.sip.malformed import error_response
from voxline.telephony.sip.message import (
    SipMessage,
    SipParseError,
    SipRequest,
    make_response,
    parse_message,
    parse_via,
    split_stream,
)

log = logging.getLogger(__name__)

READ_SIZE = 65536
MAX_TCP_CONNECTIONS = 256
"""Beyond this, new TCP connections are refused: one peer must not exhaust our file descriptors."""
MAX_TCP_PER_SOURCE = 32
"""Connections one address may hold open, so one source cannot take all of MAX_TCP_CONNECTIONS."""
MAX_RESOLVING = 8
"""Name lookups at once (each holds a thread of the default executor until it returns)."""
RESPONSE_PREFIX = b"SIP/2.0 "


class TcpConnection:
    """One TCP connection, accepted or opened; SIP messages are framed by Content-Length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername") or ("?", 0)
        self.host: str = str(peer[0])
        self.port: int = int(peer[1])
        self.closed = False

    def write(self, data: bytes) -> None:
        if self.closed or self.writer.is_closing():
            raise ConnectionError(f"TCP connection to {self.host}:{self.port} is closed")
        self.writer.write(data)

    def close(self) -> None:
        self.closed = True
        self.writer.close()


@dataclass(frozen=True)
class Peer:
    """Where a message came from / goes to. `connection` is set for TCP (responses reuse it)."""

    transport: str  # "udp" | "tcp"
    host: str
    port: int
    connection: TcpConnection | None = field(default=None, compare=False)


MessageHandler = Callable[[SipMessage, Peer], None]
SourceCheck = Callable[[str], bool]
"""Is a request from this address let in (allow-list, per-source rate)? Checked before parsing."""


def mark_received(request: SipRequest, peer: Peer) -> None:
    """Record the source address in the top Via (RFC 3261 §18.2.1, RFC 3581 rport)."""
    vias = request.headers.get_all("Via")
    if not vias:
        return
    top = parse_via(vias[0])
    top.params["received"] = peer.host
    if "rport" in top.params:
        top.params["rport"] = str(peer.port)
    vias[0] = str(top)
    request.headers.remove("Via")
    for value in vias:
        request.headers.add("Via", value)


def response_destination(request: SipRequest, peer: Peer) -> Peer:
    """Where a response to `request` goes: TCP back on its connection, UDP to received/rport."""
    if peer.transport == "tcp":
        return peer
    via = parse_via(request.headers.get("Via") or "")
    host = via.params.get("received") or via.host
    rport = via.params.get("rport")
    port = int(rport) if rport else (via.port or 5060)
    return Peer("udp", host, port)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransport) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if not data.strip():  # CRLF keep-alive (RFC 5626 §4.4.1)
            return
        self.owner.deliver(data, Peer("udp", str(addr[0]), int(str(addr[1]))))

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error (ICMP from a peer that went away?): %s", exc)


class SipTransport:
    """UDP and TCP listeners on one host (same port for both when it can), plus outbound TCP."""

    def __init__(
        self,
        host: str,
        port: int,
        transports: list[str],
        on_message: MessageHandler,
        *,
        admit: SourceCheck | None = None,
        idle_timeout_s: float | None = None,
        dns_timeout_s: float = 2.0,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.transports = transports
        self.on_message = on_message
        self.admit = admit
        self.idle_timeout_s = idle_timeout_s
        self.dns_timeout_s = dns_timeout_s
        self.dropped = 0
        """Requests dropped unparsed because `admit` refused their source."""
        self._per_source: Counter[str] = Counter()
        self._resolving = asyncio.Semaphore(MAX_RESOLVING)
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp_server: asyncio.Server | None = None
        self._ports: dict[str, int] = {}
        self._connections: set[TcpConnection] = set()
        self._outbound: dict[tuple[str, int], TcpConnection] = {}
        self._readers: set[asyncio.Task[None]] = set()

    def local_port(self, transport: str = "udp") -> int:
        return self._ports[transport]

    async def start(self) -> None:
        for attempt in range(20):
            try:
                await self._bind(self.requested_port)
                return
            except OSError:
                await self.aclose()
                if self.requested_port or attempt == 19:
                    raise

    async def _bind(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        if "udp" in self.transports:
            udp, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(self.host, port)
            )
            self._udp = udp
            port = int(udp.get_extra_info("sockname")[1])
            self._ports["udp"] = port
        if "tcp" in self.transports:
            self._tcp_server = await asyncio.start_server(self._accept, self.host, port)
            self._ports["tcp"] = int(self._tcp_server.sockets[0].getsockname()[1])

    async def aclose(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp_server is not None:
            self._tcp_server.close()
            self._tcp_server = None
        for conn in list(self._connections):
            conn.close()
        for task in list(self._readers):
            task.cancel()
        for task in list(self._readers):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._connections.clear()
        self._outbound.clear()
        self._ports.clear()

    async def send(self, data: bytes, peer: Peer) -> None:
        """Send one message. Raises OSError/ConnectionError when the peer cannot be reached.

        A host name (a Contact, Route or registrar) is resolved off the event loop, with a
        timeout: `sendto` would resolve it synchronously and stall every call."""
        if peer.transport == "udp":
            if self._udp is None:
                raise ConnectionError("UDP transport is not running")
            host = await self.resolve(peer.host, peer.port)
            self._udp.sendto(data, (host, peer.port))
            return
        conn = peer.connection
        if conn is None or conn.closed:
            conn = await self._connect(peer.host, peer.port)
        conn.write(data)

    async def resolve(self, host: str, port: int) -> str:
        """An IP literal for `host`: itself if it is one, else the first address DNS gives within
        `dns_timeout_s` (raises OSError when it fails or times out)."""
        host = host.strip("[]")
        if is_ip_literal(host):
            return host
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.dns_timeout_s):
                async with self._resolving:
                    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        except TimeoutError:
            raise OSError(f"resolving {host[:80]!r} took over {self.dns_timeout_s:g} s") from None
        except socket.gaierror as exc:
            raise OSError(f"cannot resolve {host[:80]!r}: {exc}") from None
        if not infos:
            raise OSError(f"{host[:80]!r} has no address")
        return str(infos[0][4][0])

    async def connection_to(self, host: str, port: int) -> TcpConnection:
        return await self._connect(host, port)

    # -- receiving
    def deliver(self, data: bytes, peer: Peer) -> None:
        """Parse one message and hand it up, answering what the parser rejects.

        A request from a source `admit` refuses is dropped before parsing, unanswered: an answer
        would tell a scanner we exist, and reflect a spoofed flood onto its victim. Responses pass
        (they match only a transaction we started, by its random branch)."""
        if self.admit is not None and not data.startswith(RESPONSE_PREFIX) and not self.admit(peer.host):
            self.dropped += 1
            return
        try:
            message = parse_message(data, stream=peer.transport == "tcp")
            if isinstance(message, SipRequest):
                mark_received(message, peer)
        except (SipParseError, ValueError) as exc:
            self._reject(data, peer, exc)
            return
        except Exception:  # a parser bug must cost one message, not the listener
            log.exception("SIP parser failed on %d bytes from %s:%s", len(data), peer.host, peer.port)
            return
        self.on_message(message, peer)

    def _reject(self, data: bytes, peer: Peer, exc: ValueError) -> None:
        status = exc.status if isinstance(exc, SipParseError) else 400
        reason = exc.reason if isinstance(exc, SipParseError) else "Bad Request"
        log.warning("bad SIP message from %s:%s (%d bytes): %s", peer.host, peer.port, len(data), exc)
        # Answer the source address, never a Via from a message we could not trust.
        partial = exc.partial if isinstance(exc, SipParseError) else None
        if partial is not None and partial.method != "ACK" and "Via" in partial.headers:
            reply: bytes | None = make_response(partial, status, reason).to_bytes()
        else:
            reply = error_response(data, status, reason)
        if reply is None:
            return
        try:
            if peer.transport == "udp" and self._udp is not None:
                self._udp.sendto(reply, (peer.host, peer.port))
            elif peer.connection is not None and not peer.connection.closed:
                peer.connection.write(reply)
        except (OSError, ConnectionError) as send_exc:
            log.info("could not send %d to %s:%s: %s", status, peer.host, peer.port, send_exc)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = TcpConnection(reader, writer)
        if self.admit is not None and not self.admit(conn.host):
            self.dropped += 1
            conn.close()
            return
        if len(self._connections) >= MAX_TCP_CONNECTIONS or self._per_source[conn.host] >= MAX_TCP_PER_SOURCE:
            log.warning("refusing TCP connection from %s:%s: too many connections", conn.host, conn.port)
            conn.close()
            return
        await self._read_loop(conn)

    async def _connect(self, host: str, port: int) -> TcpConnection:
        existing = self._outbound.get((host, port))
        if existing is not None and not existing.closed:
            return existing
        address = await self.resolve(host, port)
        async with asyncio.timeout(self.dns_timeout_s + 5.0):
            reader, writer = await asyncio.open_connection(address, port)
        conn = TcpConnection(reader, writer)
        self._outbound[(host, port)] = conn
        task = asyncio.get_running_loop().create_task(self._read_loop(conn), name="sip-tcp-read")
        self._readers.add(task)
        task.add_done_callback(self._readers.discard)
        return conn

    async def _read_loop(self, conn: TcpConnection) -> None:
        self._connections.add(conn)
        self._per_source[conn.host] += 1
        peer = Peer("tcp", conn.host, conn.port, conn)
        buffer = bytearray()
        try:
            while not conn.closed:
                try:
                    async with asyncio.timeout(self.idle_timeout_s):
                        chunk = await conn.reader.read(READ_SIZE)
                except TimeoutError:
                    log.info(
                        "closing TCP connection %s:%s: idle for %g s",
                        conn.host,
                        conn.port,
                        self.idle_timeout_s,
                    )
                    break
                if not chunk:
                    break
                buffer += chunk
                try:
                    messages = split_stream(buffer)
                except SipParseError as exc:
                    # The framing is lost: answer what we can, then drop the connection.
                    self._reject(bytes(buffer[:READ_SIZE]), peer, exc)
                    break
                for data in messages:
                    self.deliver(data, peer)
        except (ConnectionError, OSError) as exc:
            log.info("TCP connection from %s:%s failed: %s", conn.host, conn.port, exc)
        finally:
            self._connections.discard(conn)
            self._per_source[conn.host] -= 1
            if self._per_source[conn.host] <= 0:
                del self._per_source[conn.host]
            if self._outbound.get((conn.host, conn.port)) is conn:
                del self._outbound[(conn.host, conn.port)]
            conn.close()
