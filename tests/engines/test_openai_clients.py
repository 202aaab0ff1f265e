"""The OpenAI-compatible clients against a real HTTP server on 127.0.0.1 (a real socket, no mocks)."""

from __future__ import annotations

import asyncio
import io
import json
import wave
from collections.abc import AsyncIterator, Awaitable, Callable

import numpy as np
import pytest

from voxline.audio.pcm import AudioChunk
from voxline.engines.base import EngineError, Message, ToolCall, ToolSpec
from voxline.engines.llm_openai import OpenAIChatLLM
from voxline.engines.stt_openai import OpenAISTT
from voxline.engines.tts_openai import OpenAITTS

Writer = asyncio.StreamWriter
Handler = Callable[[str, bytes, Writer], Awaitable[None]]


class LocalServer:
    """A minimal HTTP/1.1 server: one request per connection, the handler writes the response."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[tuple[str, bytes]] = []
        self.disconnected = asyncio.Event()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    async def __aexit__(self, *_: object) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: Writer) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        path = lines[0].split()[1]
        length = next((int(h.split(":")[1]) for h in lines if h.lower().startswith("content-length")), 0)
        body = await reader.readexactly(length)
        self.requests.append((path, body))
        try:
            await self.handler(path, body, writer)
        except (ConnectionError, asyncio.CancelledError):
            self.disconnected.set()
        finally:
            writer.close()


def sse_head(writer: Writer) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")


async def send_events(writer: Writer, events: list[dict[str, object]]) -> None:
    sse_head(writer)
    for event in events:
        writer.write(f"data: {json.dumps(event)}\n\n".encode())
        await writer.drain()
        await asyncio.sleep(0.001)
    writer.write(b"data: [DONE]\n\n")
    await writer.drain()


def delta(d: dict[str, object], finish: str | None = None) -> dict[str, object]:
    return {"choices": [{"index": 0, "delta": d, "finish_reason": finish}]}


async def collect(stream: AsyncIterator[object]) -> list[object]:
    return [x async for x in stream]


async def test_chat_streams_text_and_tool_calls() -> None:
    async def handler(path: str, body: bytes, writer: Writer) -> None:
        await send_events(
            writer,
            [
                delta({"role": "assistant", "content": "Sure, "}),
                delta({"content": "goodbye!"}),
                delta(
                    {
                        "tool_calls": [
                            {"index": 0, "id": "call_9", "function": {"name": "end_", "arguments": ""}}
                        ]
                    }
                ),
                delta(
                    {"tool_calls": [{"index": 0, "function": {"name": "call", "arguments": '{"reason": '}}]}
                ),
                delta({"tool_calls": [{"index": 0, "function": {"arguments": '"done"}'}}]}),
                delta({}, "tool_calls"),
            ],
        )

    server = LocalServer(handler)
    async with server as url:
        llm = OpenAIChatLLM(url, "qwen", api_key="k")
        history = [
            Message("system", "Be brief."),
            Message("user", "bye"),
            Message("assistant", "", tool_calls=[ToolCall("end_call", {}, "c1")]),
            Message("tool", "ok", tool_call_id="c1"),
        ]
        out = await collect(llm.stream(history, [ToolSpec("end_call", "End it.")], max_tokens=20))
        await llm.aclose()
    texts = "".join(d.text for d in out)  # type: ignore[attr-defined]
    calls = [d.tool_call for d in out if d.tool_call]  # type: ignore[attr-defined]
    assert texts == "Sure, goodbye!"
    assert calls == [ToolCall("end_call", {"reason": "done"}, "call_9")]
    assert out[-1].finish_reason == "tool_calls"  # type: ignore[attr-defined]
    path, body = server.requests[0]
    sent = json.loads(body)
    assert path == "/v1/chat/completions"
    assert sent["stream"] is True and sent["max_tokens"] == 20
    assert sent["tools"][0]["function"]["name"] == "end_call"
    assert sent["messages"][2]["tool_calls"][0]["function"] == {"name": "end_call", "arguments": "{}"}
    assert sent["messages"][3] == {"role": "tool", "content": "ok", "tool_call_id": "c1"}


async def test_chat_length_finish_and_inline_tool_call_text() -> None:
    async def handler(path: str, body: bytes, writer: Writer) -> None:
        await send_events(
            writer,
            [
                delta({"content": "Okay.<tool_"}),
                delta({"content": 'call>{"name": "end_call", "arguments": {}}</tool_call>'}),
                delta({}, "length"),
            ],
        )

    async with LocalServer(handler) as url:
        out = await collect(OpenAIChatLLM(url, "m").stream([Message("user", "hi")]))
    assert "".join(d.text for d in out) == "Okay."  # type: ignore[attr-defined]
    assert [d.tool_call.name for d in out if d.tool_call] == ["end_call"]  # type: ignore[attr-defined]


async def test_closing_the_stream_closes_the_connection() -> None:
    async def endless(path: str, body: bytes, writer: Writer) -> None:
        sse_head(writer)
        while True:
            writer.write(f"data: {json.dumps(delta({'content': 'la '}))}\n\n".encode())
            await writer.drain()
            await asyncio.sleep(0.01)

    server = LocalServer(endless)
    async with server as url:
        stream = OpenAIChatLLM(url, "m").stream([Message("user", "sing")], max_tokens=2000)
        async for _ in stream:
            break
        await stream.aclose()  # type: ignore[attr-defined]
        await asyncio.wait_for(server.disconnected.wait(), 5)


async def test_chat_http_error_is_an_engine_error() -> None:
    async def fail(path: str, body: bytes, writer: Writer) -> None:
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nno model!")
        await writer.drain()

    async with LocalServer(fail) as url:
        with pytest.raises(EngineError, match="404"):
            await collect(OpenAIChatLLM(url, "m").stream([Message("user", "hi")]))


async def test_transcription_client_sends_wav_and_reads_language() -> None:
    async def handler(path: str, body: bytes, writer: Writer) -> None:
        reply = json.dumps({"text": " Hello there. ", "language": "english", "duration": 1.0}).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        writer.write(f"Content-Length: {len(reply)}\r\nConnection: close\r\n\r\n".encode() + reply)
        await writer.drain()

    server = LocalServer(handler)
    async with server as url:
        stt = OpenAISTT(url, "whisper-1")
        result = await stt.transcribe(AudioChunk.silence(0.5, 8000))
        await stt.aclose()
    assert (result.text, result.language) == ("Hello there.", "en")
    path, body = server.requests[0]
    assert path == "/v1/audio/transcriptions"
    assert b"verbose_json" in body and b"RIFF" in body and b"whisper-1" in body


@pytest.mark.parametrize("fmt", ["pcm", "wav"])
async def test_speech_client_streams_pcm_and_wav(fmt: str) -> None:
    tone = AudioChunk.from_float32(0.3 * np.sin(np.arange(4800) / 5.0), 24000)

    async def handler(path: str, body: bytes, writer: Writer) -> None:
        payload = tone.to_bytes()
        if fmt == "wav":
            buf = io.BytesIO()
            with wave.open(buf, "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(24000)
                w.writeframes(payload)
            payload = buf.getvalue()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: audio/raw\r\nConnection: close\r\n\r\n")
        for i in range(0, len(payload), 1001):  # odd-sized pieces: samples split across reads
            writer.write(payload[i : i + 1001])
            await writer.drain()

    server = LocalServer(handler)
    async with server as url:
        tts = OpenAITTS(url, "kokoro", voice="af", response_format=fmt)  # type: ignore[arg-type]
        chunks = await collect(tts.stream("Hello"))
        await tts.aclose()
    audio = AudioChunk.concat(chunks)  # type: ignore[arg-type]
    assert audio.sample_rate == 24000
    assert np.array_equal(audio.samples, tone.samples)
    assert json.loads(server.requests[0][1])["response_format"] == fmt
