"""The speech inference process: every agent's STT and voices loaded once, served over a Unix socket.

    VOXLINE_SPEECH_KEY=... python -m voxline.inference.server --socket PATH --specs FILE

The node's `SpeechServer` starts it (see supervisor.py); nothing else should. It loads the models in
`--specs` (written by the supervisor: see models.py), warms each up, and only then binds the socket,
so a socket that accepts is a server that is ready.

Each model has a queue with a maximum depth: a request that finds it full is refused at once with a
`busy` error, which the client raises as EngineError (the conversation then says its fallback line
instead of making the caller wait behind a backlog). Each model runs its requests one at a time
(STT) or a few at a time (TTS, `--tts-concurrency`); the model work runs in the model thread pool,
never on this process's event loop, which only moves bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from voxline.audio.pcm import AudioChunk
from voxline.engines._threaded import run_model_sync
from voxline.engines.base import STT, TTS, LanguageGuess, Transcript
from voxline.inference import protocol as p
from voxline.inference.models import ModelSpec, load_model

log = logging.getLogger("voxline.inference.server")

DEFAULT_MAX_QUEUE = 8
"""Requests waiting per model. On a 2-core node an STT request takes 0.3-1 s, so eight waiting is
already several seconds behind: past that a caller is better served by the fallback line."""
DEFAULT_TTS_CONCURRENCY = 2
READ_TIMEOUT_S = 10.0
"""A client has this long to send its whole request once connected."""


DEFAULT_TTS_CACHE_MB = 16
MAX_CACHED_TEXT_CHARS = 300


class Busy(Exception):
    pass


class SynthesisCache:
    """The audio of recent sentences, replayed when the same voice is asked for the same text.

    Every job renders its agent's fixed lines (the greeting, route lines) when it starts, and a job
    runs one call: without this, the server would synthesise the same greeting once per call. It also
    makes a sentence the agent says often ("Is there anything else?") start at once. Least recently
    used go first past `max_bytes`; a synthesis the client closed early is never kept."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self._kept: OrderedDict[tuple[str, str | None, str], list[bytes]] = OrderedDict()

    def get(self, key: tuple[str, str | None, str]) -> list[bytes] | None:
        frames = self._kept.get(key)
        if frames is not None:
            self._kept.move_to_end(key)
            self.hits += 1
        return frames

    def put(self, key: tuple[str, str | None, str], frames: list[bytes]) -> None:
        size = sum(len(f) for f in frames)
        if len(key[2]) > MAX_CACHED_TEXT_CHARS or size > self.max_bytes or key in self._kept:
            return
        self._kept[key] = frames
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, dropped = self._kept.popitem(last=False)
            self.bytes -= sum(len(f) for f in dropped)


@dataclass(eq=False)
class _Job:
    run: Callable[[], Awaitable[None]]
    abandoned: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    queued_at: float = field(default_factory=time.monotonic)


class ModelQueue:
    """One model's requests: at most `max_depth` waiting, `concurrency` running."""

    def __init__(self, key: str, *, max_depth: int, concurrency: int) -> None:
        self.key = key
        self.max_depth = max_depth
        self._queue: asyncio.Queue[_Job] = asyncio.Queue(maxsize=max_depth)
        self._workers = [asyncio.ensure_future(self._work()) for _ in range(concurrency)]
        self.served = 0
        self.refused = 0

    @property
    def waiting(self) -> int:
        return self._queue.qsize()

    def submit(self, job: _Job) -> None:
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            self.refused += 1
            raise Busy(f"{self.key}: {self.max_depth} requests already waiting") from None

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                if not job.abandoned.is_set():  # the client left while it waited
                    await job.run()
                    self.served += 1
            except Exception:
                log.exception("%s: request failed", self.key)
            finally:
                job.done.set()

    def close(self) -> None:
        for worker in self._workers:
            worker.cancel()


class SpeechInferenceServer:
    def __init__(
        self,
        models: dict[str, STT | TTS],
        key: str,
        *,
        max_queue: int = DEFAULT_MAX_QUEUE,
        tts_concurrency: int = DEFAULT_TTS_CONCURRENCY,
        max_request_bytes: int = p.MAX_REQUEST_BYTES,
        tts_cache_bytes: int = DEFAULT_TTS_CACHE_MB * 1024 * 1024,
    ) -> None:
        self.models = models
        self._key = key
        self.max_request_bytes = max_request_bytes
        self.queues = {
            k: ModelQueue(k, max_depth=max_queue, concurrency=tts_concurrency if k.startswith("tts-") else 1)
            for k in models
        }
        self.cache = SynthesisCache(tts_cache_bytes)
        self._server: asyncio.AbstractServer | None = None

    async def serve(self, path: Path) -> None:
        """Listen on `path` (which must not exist: see `main`)."""
        old_umask = os.umask(0o177)  # the socket is created 0600: only this user may connect
        try:
            self._server = await asyncio.start_unix_server(self._handle, path=str(path))
        finally:
            os.umask(old_umask)
        log.info("speech server ready on %s (pid %d, %d models)", path, os.getpid(), len(self.models))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for queue in self.queues.values():
            queue.close()

    def describe(self) -> dict[str, Any]:
        models: dict[str, Any] = {}
        for key, model in self.models.items():
            queue = self.queues[key]
            info: dict[str, Any] = {"name": model.name, "waiting": queue.waiting}
            info.update(served=queue.served, refused=queue.refused)
            if key.startswith("stt-"):
                info["multilingual"] = bool(getattr(model, "multilingual", False))
            else:
                info["sample_rate"] = int(getattr(model, "sample_rate", 0))
            models[key] = info
        cache = {"bytes": self.cache.bytes, "hits": self.cache.hits}
        return {"pid": os.getpid(), "models": models, "tts_cache": cache}

    # ------------------------------------------------------------ one connection, one request

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._serve_one(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass  # the client left; nothing to answer
        except Exception:
            log.exception("speech request failed")
            with contextlib.suppress(Exception):
                writer.write(p.error_frame(p.FAILED, "the speech server failed on this request"))
                await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            kind, payload = await asyncio.wait_for(
                p.read_frame(reader, self.max_request_bytes), READ_TIMEOUT_S
            )
            if kind != p.REQUEST:
                raise p.ProtocolError(f"expected a request, got frame kind {kind}")
            header, body = p.parse_request(payload)
        except p.FrameTooLarge as exc:
            await _refuse(writer, p.TOO_LARGE, f"request refused: {exc}")
            return
        except p.ProtocolError as exc:
            await _refuse(writer, p.BAD_REQUEST, str(exc))
            return
        if not p.key_matches(header.get("key"), self._key):
            await _refuse(writer, p.UNAUTHORIZED, "wrong or missing key")
            return
        op = header.get("op")
        if op == "ping":
            await _answer(writer, {"ok": True, "pid": os.getpid()})
            return
        if op == "describe":
            await _answer(writer, self.describe())
            return
        key = str(header.get("model", ""))
        model = self.models.get(key)
        if model is None:
            await _refuse(writer, p.UNKNOWN_MODEL, f"this speech server does not serve {key!r}")
            return
        if op == "synthesize" and await self._replay(key, header, writer):
            return
        abandoned = asyncio.Event()
        try:
            run = self._work_for(key, op, header, body, model, writer, abandoned)
        except (ValueError, TypeError, KeyError) as exc:
            await _refuse(writer, p.BAD_REQUEST, f"bad {op!r} request: {exc}")
            return
        job = _Job(run, abandoned)
        try:
            self.queues[key].submit(job)
        except Busy as exc:
            await _refuse(writer, p.BUSY, f"speech server busy: {exc}")
            return
        # an EOF from the client while its job waits or runs means it has gone: skip or stop the work
        watcher = asyncio.ensure_future(_watch_eof(reader, job.abandoned))
        try:
            await job.done.wait()
        finally:
            watcher.cancel()

    async def _replay(self, key: str, header: dict[str, Any], writer: asyncio.StreamWriter) -> bool:
        voice = header.get("voice")
        frames = self.cache.get((key, voice if isinstance(voice, str) else None, str(header.get("text"))))
        if frames is None:
            return False
        writer.writelines([*frames, p.frame(p.END, b"")])
        await writer.drain()
        return True

    def _work_for(
        self,
        key: str,
        op: object,
        header: dict[str, Any],
        body: bytes,
        model: STT | TTS,
        writer: asyncio.StreamWriter,
        abandoned: asyncio.Event,
    ) -> Callable[[], Awaitable[None]]:
        if op in ("transcribe", "transcribe_with_language", "identify"):
            if not hasattr(model, "transcribe"):
                raise ValueError("not a speech-to-text model")
            audio = AudioChunk.from_bytes(body, int(header["sample_rate"]))
            return lambda: self._stt(str(op), header, audio, model, writer)
        if op == "synthesize":
            if not hasattr(model, "stream"):
                raise ValueError("not a voice")
            text = str(header["text"])
            if len(text) > p.MAX_TEXT_CHARS:
                raise ValueError(f"text of {len(text)} characters (limit {p.MAX_TEXT_CHARS})")
            voice = header.get("voice")
            cache_key = (key, voice if isinstance(voice, str) else None, text)
            return lambda: self._tts(cache_key, model, writer, abandoned)  # type: ignore[arg-type]
        raise ValueError(f"unknown op {op!r}")

    async def _stt(
        self, op: str, header: dict[str, Any], audio: AudioChunk, stt: Any, writer: asyncio.StreamWriter
    ) -> None:
        try:
            if op == "transcribe":
                transcript: Transcript = await stt.transcribe(audio, header.get("language"))
                result: dict[str, Any] = {"transcript": asdict(transcript)}
            elif op == "transcribe_with_language":
                transcript, guess = await stt.transcribe_with_language(
                    audio, header.get("candidates"), header.get("forced")
                )
                result = {"transcript": asdict(transcript), "guess": asdict(guess)}
            else:
                found: LanguageGuess = await stt.identify_language(audio, header.get("candidates"))
                result = {"guess": asdict(found)}
        except Exception as exc:
            log.exception("speech-to-text failed")
            await _refuse(writer, p.FAILED, f"speech-to-text failed: {exc}")
            return
        await _answer(writer, result)

    async def _tts(
        self,
        cache_key: tuple[str, str | None, str],
        tts: TTS,
        writer: asyncio.StreamWriter,
        abandoned: asyncio.Event,
    ) -> None:
        _, voice, text = cache_key
        stream = tts.stream(text, voice)
        frames: list[bytes] = []
        try:
            async for chunk in stream:
                if abandoned.is_set():
                    return  # the client closed its end: stop, and keep nothing
                frames.append(p.audio_frame(chunk))
                writer.write(frames[-1])
                await writer.drain()  # a closed client raises here and stops the synthesis
        except (ConnectionError, BrokenPipeError):
            return
        except Exception as exc:
            log.exception("synthesis failed for %r", text[:80])
            await _refuse(writer, p.FAILED, f"synthesis failed: {exc}")
            return
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()
        self.cache.put(cache_key, frames)
        writer.write(p.frame(p.END, b""))
        await writer.drain()


async def _watch_eof(reader: asyncio.StreamReader, abandoned: asyncio.Event) -> None:
    with contextlib.suppress(Exception):
        await reader.read(1)  # a client sends nothing after its request: anything here is its EOF
    abandoned.set()


async def _answer(writer: asyncio.StreamWriter, value: dict[str, Any]) -> None:
    writer.write(p.json_frame(p.RESULT, value))
    await writer.drain()


async def _refuse(writer: asyncio.StreamWriter, code: str, message: str) -> None:
    writer.write(p.error_frame(code, message))
    await writer.drain()


# ---------------------------------------------------------------- process main


def load_models(specs: Sequence[ModelSpec]) -> dict[str, STT | TTS]:
    models: dict[str, STT | TTS] = {}
    for spec in specs:
        started = time.monotonic()
        # in the model pool, so the runtimes' own thread pools start at its lower priority
        models[spec.key] = run_model_sync(load_model, spec)
        log.info("loaded %s (%s) in %.1f s", spec.key, models[spec.key].name, time.monotonic() - started)
    return models


async def warm_up(models: dict[str, STT | TTS]) -> None:
    for model in models.values():
        await model.warm_up()


async def _parent_gone(parent_pid: int) -> None:
    """The node was killed without stopping us (kill -9): do not live on as an orphan."""
    # no event exists for a parent's death (PR_SET_PDEATHSIG follows the spawning *thread*, and the
    # watchdog thread spawns restarts): poll
    while os.getppid() == parent_pid:  # noqa: ASYNC110
        await asyncio.sleep(1.0)
    log.error("the node (pid %d) is gone; exiting", parent_pid)


async def amain(args: argparse.Namespace, key: str, models: dict[str, STT | TTS]) -> None:
    await warm_up(models)
    server = SpeechInferenceServer(
        models,
        key,
        max_queue=args.max_queue,
        tts_concurrency=args.tts_concurrency,
        tts_cache_bytes=int(args.tts_cache_mb * 1024 * 1024),
    )
    await server.serve(Path(args.socket))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(stop.wait())]
    if args.parent_pid:
        waits.append(asyncio.ensure_future(_parent_gone(args.parent_pid)))
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    await server.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m voxline.inference.server")
    parser.add_argument("--socket", required=True, help="Unix socket path to listen on")
    parser.add_argument("--specs", required=True, help="JSON list of model specs (models.ModelSpec)")
    parser.add_argument("--max-queue", type=int, default=DEFAULT_MAX_QUEUE)
    parser.add_argument("--tts-concurrency", type=int, default=DEFAULT_TTS_CONCURRENCY)
    parser.add_argument("--tts-cache-mb", type=float, default=DEFAULT_TTS_CACHE_MB, help="0 turns it off")
    parser.add_argument("--parent-pid", type=int, default=0)
    args = parser.parse_args(argv)
    key = os.environ.pop(p.KEY_ENV, "")
    if not key:
        print(f"{p.KEY_ENV} must be set", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    specs = [ModelSpec.from_dict(d) for d in json.loads(Path(args.specs).read_text(encoding="utf-8"))]
    models = load_models(specs)
    socket_path = Path(args.socket)
    with contextlib.suppress(FileNotFoundError):
        socket_path.unlink()  # a crashed predecessor's socket
    try:
        asyncio.run(amain(args, key, models))
    finally:
        with contextlib.suppress(FileNotFoundError):
            socket_path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
