"""Real models, loaded once for the whole e2e session (loading + warm-up takes a few seconds)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from voxline.agent.config import AgentConfig, default_agent
from voxline.engines._threaded import run_model_sync
from voxline.engines.base import Engines
from voxline.runtime import load_engines, warm_engines


@pytest.fixture(scope="session")
def bank_agent() -> AgentConfig:
    return default_agent()


@pytest.fixture(scope="session")
def real_engines(bank_agent: AgentConfig) -> Iterator[Engines]:
    engines = run_model_sync(load_engines, bank_agent)
    asyncio.run(warm_engines(bank_agent, engines))
    yield engines


@pytest.fixture(scope="session")
def transcriber() -> Iterator[object]:
    """A second, independent whisper (base) to transcribe what the agent said back."""
    from voxline.engines.catalog import resolve
    from voxline.engines.stt_whisper import WhisperSTT

    yield WhisperSTT(resolve("base", "stt"), name="base")
