"""A Pipecat voice bot on voxline's caller protocol, for `voxline bench --peer pipecat`.

Run by the peer environment's Python (Pipecat installed, voxline not):

    python pipecat_bot.py --port 8766 --whisper DIR --piper VOICE.onnx --llm-url URL \
        --system-prompt-file FILE --greeting TEXT

It serves `GET /health` and `WS /ws/call`. Each call is one Pipecat pipeline, built the way Pipecat's
own examples build a local bot: transport in → Whisper STT → user aggregator (Silero VAD and
Pipecat's default turn strategies, i.e. Smart Turn v3 on its shipped ONNX model) → OpenAI-compatible
LLM → Piper TTS → transport out → assistant aggregator. Only the models are chosen (local paths,
the same ones as voxline's default agent); every turn-taking setting is Pipecat's default.

Besides audio it sends `user_text` (each user turn handed to the LLM) and `agent_text` events, as
voxline does, so the bench can tell a split turn the same way for both.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

# Run as a script, this file's folder is on sys.path: the protocol module beside it needs no voxline.
# caller_protocol.py sits beside this file, on sys.path when it runs as a script; it needs no voxline.
import caller_protocol as protocol  # type: ignore[import-not-found,unused-ignore]
import uvicorn
from fastapi import FastAPI, WebSocket
from loguru import logger
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
    TTSSpeakFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.serializers.base_serializer import FrameSerializer
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.services.piper.tts import PiperTTSService
from pipecat.services.whisper.stt import WhisperSTTService
from pipecat.transcriptions.language import Language
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport
from pipecat.workers.runner import WorkerRunner

START_TIMEOUT_S = 10.0


class VoxlineCallSerializer(FrameSerializer):  # type: ignore[misc,unused-ignore]
    """Frames ↔ voxline's `/ws/call` messages for one call at `sample_rate`."""

    def __init__(self, sample_rate: int) -> None:
        super().__init__()
        self._rate = sample_rate

    async def serialize(self, frame: Frame) -> str | bytes | None:
        if isinstance(frame, OutputAudioRawFrame):
            return bytes(frame.audio)
        if isinstance(frame, InterruptionFrame):
            return str(protocol.event("clear"))
        if isinstance(frame, OutputTransportMessageFrame | OutputTransportMessageUrgentFrame):
            return None if self.should_ignore_frame(frame) else json.dumps(frame.message, ensure_ascii=False)
        if isinstance(frame, EndFrame | CancelFrame):
            return str(protocol.event("hangup", reason="bot_ended"))
        return None

    async def deserialize(self, data: str | bytes) -> Frame | None:
        found = protocol.parse_inbound(data)
        if isinstance(found, protocol.Audio):
            return InputAudioRawFrame(audio=found.pcm, sample_rate=self._rate, num_channels=1)
        if isinstance(found, protocol.Refused):
            logger.warning(f"caller sent a bad frame: {found.reason}")
        # A hangup is followed by the caller closing the socket, which ends the pipeline; DTMF is
        # not part of this comparison.
        return None


class BotSettings:
    def __init__(self, args: argparse.Namespace) -> None:
        self.whisper = str(args.whisper)
        self.piper = Path(args.piper)
        self.llm_url: str = args.llm_url
        self.llm_model: str = args.llm_model
        self.max_tokens: int = args.max_tokens
        self.temperature: float = args.temperature
        self.system_prompt = Path(args.system_prompt_file).read_text(encoding="utf-8")
        self.greeting: str = args.greeting


def build_pipeline(websocket: WebSocket, rate: int, settings: BotSettings) -> PipelineWorker:
    transport = FastAPIWebsocketTransport(
        websocket=websocket,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            audio_in_sample_rate=rate,
            audio_out_sample_rate=rate,
            add_wav_header=False,
            serializer=VoxlineCallSerializer(rate),
            allowed_origins=[],
        ),
    )
    stt = WhisperSTTService(
        device="cpu",
        compute_type="int8",
        settings=WhisperSTTService.Settings(model=settings.whisper, language=Language.EN),
    )
    llm = OpenAILLMService(
        api_key="not-needed",
        base_url=settings.llm_url,
        settings=OpenAILLMService.Settings(
            model=settings.llm_model,
            system_instruction=settings.system_prompt,
            max_tokens=settings.max_tokens,
            temperature=settings.temperature,
        ),
    )
    # Pipecat's Piper service loads <download_dir>/<voice>.onnx (and its .onnx.json) when present.
    tts = PiperTTSService(
        settings=PiperTTSService.Settings(voice=settings.piper.name.removesuffix(".onnx")),
        download_dir=settings.piper.parent,
    )
    context = LLMContext()
    aggregators = LLMContextAggregatorPair(
        context, user_params=LLMUserAggregatorParams(vad_analyzer=SileroVADAnalyzer())
    )
    pipeline = Pipeline(
        [transport.input(), stt, aggregators.user(), llm, tts, transport.output(), aggregators.assistant()]
    )
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(audio_in_sample_rate=rate, audio_out_sample_rate=rate),
        enable_rtvi=False,
    )

    async def tell_caller(kind: str, text: str) -> None:
        await worker.queue_frame(OutputTransportMessageUrgentFrame(message={"type": kind, "text": text}))

    @aggregators.user().event_handler("on_user_turn_message_added")  # type: ignore[untyped-decorator,unused-ignore]
    async def on_user_turn(_aggregator: Any, message: Any) -> None:
        await tell_caller("user_text", str(message.content))

    @aggregators.assistant().event_handler("on_assistant_turn_stopped")  # type: ignore[untyped-decorator,unused-ignore]
    async def on_assistant_turn(_aggregator: Any, message: Any) -> None:
        # pipecat's message object is untyped here; its content may be absent
        await tell_caller("agent_text", str(getattr(message, "content", "") or ""))

    @transport.event_handler("on_client_connected")  # type: ignore[untyped-decorator,unused-ignore]
    async def on_connected(_transport: Any, _ws: Any) -> None:
        await worker.queue_frames([TTSSpeakFrame(settings.greeting)])

    @transport.event_handler("on_client_disconnected")  # type: ignore[untyped-decorator,unused-ignore]
    async def on_disconnected(_transport: Any, _ws: Any) -> None:
        await worker.cancel()

    return worker


def make_app(settings: BotSettings) -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "peer": "pipecat"}

    @app.websocket("/ws/call")
    async def call(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            first = await asyncio.wait_for(websocket.receive(), START_TIMEOUT_S)
            start = protocol.parse_start(first.get("text") if first.get("text") is not None else b"")
        except (TimeoutError, ValueError) as exc:
            with contextlib.suppress(Exception):
                await websocket.send_text(protocol.event("error", message=str(exc) or "no start message"))
                await websocket.close(protocol.CLOSE_UNSUPPORTED)
            return
        # Build first, so that the caller's audio is read as soon as it flows. Pipecat's services load
        # their models in their constructors, on the event loop: fine for a bench bot taking one call
        # at a time, and it only delays the greeting (not a measured turn).
        worker = build_pipeline(websocket, start.sample_rate, settings)
        await websocket.send_text(
            protocol.event("ready", call_id=start.call_id or "pipecat", sample_rate=start.sample_rate)
        )
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        await runner.run()

    return app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--whisper", required=True, help="local CTranslate2 whisper folder")
    parser.add_argument("--piper", required=True, help="local Piper voice .onnx (its .onnx.json beside it)")
    parser.add_argument(
        "--llm-url", required=True, help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1"
    )
    parser.add_argument("--llm-model", default="local")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.3)
    parser.add_argument("--system-prompt-file", required=True)
    parser.add_argument("--greeting", required=True)
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logger.remove()
    logger.add(sys.stderr, level=args.log_level.upper())
    logging.basicConfig(level=logging.WARNING)
    app = make_app(BotSettings(args))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
