"""Agent definitions: one YAML file, validated by pydantic."""

from voxline.agent.config import AgentConfig, AgentConfigError, load_agent

__all__ = ["AgentConfig", "AgentConfigError", "load_agent"]
