"""The job channel's wire: framing, bounds, descriptors over SCM_RIGHTS (both ends in one loop)."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from typing import Any

import pytest

from voxline.workers.protocol import (
    MAX_MESSAGE,
    Channel,
    ChannelClosed,
    Control,
    FrameDecoder,
    Kind,
    Message,
    ProtocolError,
    encode,
    encode_control,
)


def test_frames_split_anywhere_come_out_whole() -> None:
    stream = encode_control({"type": "hello", "pid": 1}) + encode(Kind.MEDIA, b"\x01\x00" * 160)
    decoder = FrameDecoder()
    frames = []
    for i in range(len(stream)):  # one byte at a time
        frames += decoder.feed(stream[i : i + 1])
    assert [kind for kind, _ in frames] == [Kind.CONTROL, Kind.MEDIA]
    assert frames[1][1] == b"\x01\x00" * 160 and decoder.pending == 0


@pytest.mark.parametrize(
    ("header", "error"),
    [
        (struct.pack(">IB", MAX_MESSAGE + 1, 1), "over the"),
        (struct.pack(">IB", 4, 9), "unknown frame kind"),
    ],
)
def test_out_of_bounds_frames_are_refused_from_the_header(header: bytes, error: str) -> None:
    with pytest.raises(ProtocolError, match=error):
        FrameDecoder().feed(header)  # before any payload is buffered


def test_a_message_over_the_limit_is_not_sent() -> None:
    with pytest.raises(ProtocolError):
        encode(Kind.MEDIA, bytes(MAX_MESSAGE + 2))


class End:
    def __init__(self, sock: socket.socket, **options: Any) -> None:
        self.messages: asyncio.Queue[Message] = asyncio.Queue()
        self.closed: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        self.channel = Channel(sock, self.messages.put_nowait, self._closed, **options)

    def _closed(self, error: BaseException | None) -> None:
        if not self.closed.done():
            self.closed.set_result(error)


def pair(**options: Any) -> tuple[End, End]:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return End(a, **options), End(b, **options)


async def test_control_media_and_descriptors_arrive_in_order() -> None:
    supervisor, job = pair()
    read_end, write_end = os.pipe()
    supervisor.channel.send({"type": "assign", "call_id": "c1"}, fds=[read_end])
    supervisor.channel.send_media(b"\x02\x00" * 160)
    os.close(read_end)  # the job has its own copy now
    assign = await asyncio.wait_for(job.messages.get(), 5)
    media = await asyncio.wait_for(job.messages.get(), 5)
    assert isinstance(assign, Control) and assign.body == {"type": "assign", "call_id": "c1"}
    assert len(assign.fds) == 1 and media == b"\x02\x00" * 160
    os.write(write_end, b"through the passed fd")
    assert os.read(assign.fds[0], 100) == b"through the passed fd"
    os.close(assign.fds[0])
    os.close(write_end)
    supervisor.channel.close()
    assert await asyncio.wait_for(job.closed, 5) is None  # the peer closed: no error


@pytest.mark.parametrize(
    "payload",
    [
        encode(Kind.CONTROL, b"not json"),
        encode(Kind.CONTROL, b'["no", "type"]'),
        encode(Kind.CONTROL, b'{"type": "assign", "fds": 2}'),  # descriptors announced, none sent
        encode(Kind.MEDIA, b"\x01\x02\x03"),  # not whole PCM16 samples
    ],
)
async def test_a_peer_that_breaks_the_protocol_fails_the_channel(payload: bytes) -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    supervisor = End(b)
    a.sendall(payload)
    error = await asyncio.wait_for(supervisor.closed, 5)
    assert isinstance(error, ProtocolError)
    assert supervisor.channel.closed
    a.close()


async def test_a_peer_that_does_not_read_is_given_up_on() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    supervisor = End(b, max_buffered=256 * 1024)
    with pytest.raises(ChannelClosed):
        for _ in range(10_000):  # ~6 MB of audio to a job that never reads
            supervisor.channel.send_media(bytes(640))
    error = await asyncio.wait_for(supervisor.closed, 5)
    assert isinstance(error, ProtocolError) and "not reading" in str(error)
    a.close()
