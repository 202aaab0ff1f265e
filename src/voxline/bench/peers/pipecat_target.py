"""A running Pipecat bot on the same local models as a voxline agent, as a bench target.

Two child processes: llama-cpp-python's OpenAI-compatible server (`peers/llama_server.py`, on
voxline's own llama-cpp-python build and the agent's GGUF file), and the Pipecat bot
(`pipecat_bot.py`, in the peer's own environment) with the agent's whisper folder and Piper voice.
Only local files are passed: nothing is fetched from a model hub.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from voxline.agent.config import AgentConfig
from voxline.bench.peers.pipecat_env import BOT_SCRIPT, PipecatEnv, ensure_llama_server
from voxline.bench.processes import AgentTarget, free_port, http_process
from voxline.conversation.prompt import build_system_prompt
from voxline.engines.catalog import ModelCatalog

LLM_ALIAS = "local"
WARM_UP_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class PeerModels:
    whisper: Path
    llm: Path
    piper: Path

    @classmethod
    def of(cls, agent: AgentConfig, catalog: ModelCatalog | None = None) -> PeerModels:
        """The agent's models as local files; only whisper + llama.cpp + Piper agents have a peer setup."""
        engines = (agent.stt.engine, agent.llm.engine, agent.voice.engine)
        if engines != ("whisper", "llama_cpp", "piper"):
            raise RuntimeError(
                f"the Pipecat peer runs whisper, llama.cpp and Piper locally; agent {agent.name!r} uses "
                f"{'/'.join(engines)}"
            )
        catalog = catalog or ModelCatalog()
        llm = catalog.resolve_reference(agent.llm.model, "llm")
        if not isinstance(llm, Path):
            raise RuntimeError(f"the Pipecat peer needs a local GGUF file, not {llm!r}")
        return cls(
            whisper=catalog.resolve(agent.stt.model, "stt"),
            llm=llm,
            piper=catalog.resolve(agent.voice.voice, "tts"),
        )


def peer_system_prompt(agent: AgentConfig) -> str:
    """voxline's system prompt for the agent, without the tool lines: the peer is given no tools
    (llama.cpp's server offers none for this model), and a prompt naming tools it cannot call
    invites the model to write tool calls into its spoken reply."""
    return build_system_prompt(agent, ())


async def warm_llm_server(base_url: str, system_prompt: str) -> None:
    """Evaluate the system prompt once, as voxline does at warm-up: the server keeps the last
    prompt's tokens, so the bot's first turn starts from a cached prefix instead of a cold prefill."""
    body = {"model": LLM_ALIAS, "messages": [{"role": "system", "content": system_prompt}], "max_tokens": 1}
    async with httpx.AsyncClient(timeout=WARM_UP_TIMEOUT_S) as client:
        response = await client.post(f"{base_url}/chat/completions", json=body)
        response.raise_for_status()


@asynccontextmanager
async def pipecat_target(
    agent: AgentConfig, out: Path, env: PipecatEnv | None = None
) -> AsyncIterator[AgentTarget]:
    """The LLM server and the Pipecat bot, ready for calls on `/ws/call`, until the block ends."""
    models = PeerModels.of(agent)
    python = (env or PipecatEnv.default()).ensure()
    ensure_llama_server()
    prompt_file = out / "pipecat-system-prompt.txt"
    prompt_file.write_text(peer_system_prompt(agent), encoding="utf-8")
    llm_port, bot_port = free_port(), free_port()
    llm_args = [
        sys.executable, "-m", "voxline.bench.peers.llama_server",
        "--model", str(models.llm), "--model_alias", LLM_ALIAS,
        "--host", "127.0.0.1", "--port", str(llm_port), "--n_ctx", str(agent.llm.context_tokens),
        "--n_threads", str(agent.llm.threads or 2), "--n_threads_batch", str(agent.llm.threads or 2),
    ]  # fmt: skip
    bot_args = [
        str(python), str(BOT_SCRIPT), "--port", str(bot_port), "--whisper", str(models.whisper),
        "--piper", str(models.piper), "--llm-url", f"http://127.0.0.1:{llm_port}/v1",
        "--llm-model", LLM_ALIAS, "--max-tokens", str(agent.llm.max_tokens),
        "--temperature", str(agent.llm.temperature), "--system-prompt-file", str(prompt_file),
        "--greeting", agent.greeting, "--log-level", os.environ.get("VOXLINE_PEER_LOG_LEVEL", "INFO"),
    ]  # fmt: skip
    llm_url = f"http://127.0.0.1:{llm_port}/v1/models"
    async with http_process(llm_args, llm_url, out / "pipecat-llm-server.log", "the LLM server"):
        await warm_llm_server(f"http://127.0.0.1:{llm_port}/v1", peer_system_prompt(agent))
        bot_url = f"http://127.0.0.1:{bot_port}"
        async with http_process(
            bot_args, f"{bot_url}/health", out / "pipecat-bot.log", "the Pipecat bot"
        ) as bot:
            yield AgentTarget(sip_uri="", http_url=bot_url, pid=bot.pid)
