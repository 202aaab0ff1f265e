"""Which LLM a process-mode node serves from its llama-server (instead of loading it in every job)."""

from __future__ import annotations

from voxline.agent.config import AgentConfig, LLMConfig
from voxline.node.config import WorkersConfig
from voxline.workers.services import served_by_node


def agent_with(llm: LLMConfig) -> AgentConfig:
    return AgentConfig(llm=llm)


def test_process_mode_is_the_default() -> None:
    assert WorkersConfig().mode == "process"


def test_a_local_llama_cpp_model_is_served_by_the_node() -> None:
    served = served_by_node(agent_with(LLMConfig(engine="llama_cpp", model="qwen2.5-0.5b", slots=3)))
    assert served.llm.engine == "llama_server"
    assert (served.llm.model, served.llm.slots) == ("qwen2.5-0.5b", 3)  # the rest is untouched


def test_other_engines_and_unknown_models_are_left_alone() -> None:
    remote = agent_with(LLMConfig(engine="openai", base_url="http://127.0.0.1:9/v1", model="m"))
    assert served_by_node(remote) is remote
    hub = agent_with(LLMConfig(engine="llama_cpp", model="someone/some-model-GGUF"))
    assert served_by_node(hub).llm.engine == "llama_cpp"  # not a local file: the job loads it itself
