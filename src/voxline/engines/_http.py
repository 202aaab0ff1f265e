"""The HTTP client every OpenAI-compatible engine uses (llama-server, Ollama, vLLM, speech servers)."""

from __future__ import annotations

import httpx


def openai_client(base_url: str, api_key: str | None, timeout_s: float) -> httpx.AsyncClient:
    """A client for `base_url` (e.g. http://gpu-box:8080/v1) with bearer auth when a key is given;
    connecting is held to 5 s so a dead server fails a turn quickly instead of stalling it."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.AsyncClient(
        base_url=base_url.rstrip("/"), headers=headers, timeout=httpx.Timeout(timeout_s, connect=5.0)
    )
