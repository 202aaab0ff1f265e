"""Tools that call an HTTP endpoint declared in the agent file (`tools: [{name, http: {...}}]`).

The model's arguments are checked against the tool's JSON schema first (a small model may send a
number for a string or leave out a field: the model is told, no request is made), then sent as the
query string (GET, DELETE) or a JSON body. The whole request is bounded (time and bytes). Its
outcome is one of three: an answer (2xx) or a refusal the model can explain (400, 404, 409, 422),
both of which go back to the model for its next round; or a failure (timeout, unreachable, 5xx,
anything else), after which the caller hears the tool's failure line and the call goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import httpx

from voxline.agent.config import HttpToolConfig
from voxline.agent.env import MissingEnvironment, expand_env
from voxline.language.registry import LineTable

log = logging.getLogger(__name__)

# Each language's own lines (voxline.language.languages), read live from the registry.
FILLER_LINES: Mapping[str, str] = LineTable("tool_filler")
FAILURE_LINES: Mapping[str, str] = LineTable("tool_failure")
ANSWERABLE_STATUSES = frozenset({400, 404, 409, 422})
"""Refusals that are an answer ("no such card"): the model hears them and tells the caller."""
MAX_RESULT_CHARS = 1200
"""What the model gets of a response: a small model's context is short, and a long result crowds out
the conversation."""
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def tool_line(lines: Mapping[str, str], configured: str | None, language: str, agent_language: str) -> str:
    """The agent file's line when the call is in the agent's language, else the built-in one."""
    if configured and language == agent_language:
        return configured
    return lines.get(language) or configured or lines["en"]


# ------------------------------------------------------------------ arguments


def check_arguments(
    schema: dict[str, Any] | None, arguments: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The arguments the schema declares, coerced where the intent is plain (4321 for a string,
    "12" for an integer), and what is wrong with them. Checks the parts of JSON schema tool
    parameters use: required, type, enum, pattern, minLength/maxLength, minimum/maximum."""
    properties: dict[str, Any] = (schema or {}).get("properties") or {}
    if not properties:
        return dict(arguments), []
    checked: dict[str, Any] = {}
    problems: list[str] = []
    for name in (schema or {}).get("required") or []:
        if arguments.get(name) in (None, ""):
            problems.append(f"{name} is required")
    for name, rules in properties.items():
        if name not in arguments or arguments[name] is None:
            continue
        value, problem = _check_value(arguments[name], rules if isinstance(rules, dict) else {})
        if problem:
            problems.append(f"{name}: {problem}")
        else:
            checked[name] = value
    return checked, problems


def _check_value(value: Any, rules: dict[str, Any]) -> tuple[Any, str | None]:
    kind = rules.get("type")
    if kind == "string":
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            return value, "must be a string"
        value = str(value)
    elif kind == "integer":
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            return value, "must be a whole number"
    elif kind == "number":
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return value, "must be a number"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return value, "must be a number"
    elif kind == "boolean" and not isinstance(value, bool):
        return value, "must be true or false"
    if "enum" in rules and value not in rules["enum"]:
        return value, f"must be one of {', '.join(map(str, rules['enum']))}"
    if isinstance(value, str):
        if "pattern" in rules and not re.search(str(rules["pattern"]), value):
            return value, f"must match {rules['pattern']}"
        if len(value) < int(rules.get("minLength", 0)) or len(value) > int(rules.get("maxLength", 10**6)):
            return value, "has the wrong length"
    low, high = rules.get("minimum", float("-inf")), rules.get("maximum", float("inf"))
    if isinstance(value, int | float) and not isinstance(value, bool) and not low <= value <= high:
        return value, "is out of range"
    return value, None


# ------------------------------------------------------------------ the request


@dataclass(frozen=True, slots=True)
class HttpResult:
    outcome: Literal["answer", "refusal", "failure"]
    text: str
    """For the model: the response body (compact JSON or text, cut), or why it failed."""
    status: int | None = None
    elapsed_ms: float = 0.0


def build_request(endpoint: HttpToolConfig, arguments: dict[str, Any]) -> httpx.Request:
    """The request for these arguments: `{name}` in the URL takes that argument, the rest go in the
    query (GET, DELETE) or the JSON body. Raises MissingEnvironment for an unset `${NAME}`."""
    rest = dict(arguments)

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in rest:
            raise ValueError(f"the URL needs the argument {name}")
        return quote(str(rest.pop(name)), safe="")

    url = _PLACEHOLDER.sub(fill, expand_env(endpoint.url))
    headers = {name: expand_env(value) for name, value in endpoint.headers.items()}
    headers.setdefault("Accept", "application/json")
    if endpoint.method in ("GET", "DELETE"):
        params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in rest.items()}
        return httpx.Request(endpoint.method, url, params=params, headers=headers)
    return httpx.Request(endpoint.method, url, json=rest, headers=headers)


async def call_endpoint(endpoint: HttpToolConfig, arguments: dict[str, Any], tool: str) -> HttpResult:
    """Make the request, bounded by `timeout_s` in all and `max_response_bytes` of body. Never raises
    (a cancelled call still cancels)."""
    started = time.perf_counter()

    def elapsed() -> float:
        return (time.perf_counter() - started) * 1000

    try:
        request = build_request(endpoint, arguments)
    except (MissingEnvironment, ValueError) as exc:
        log.error("tool %s cannot make its request: %s", tool, exc)
        return HttpResult("failure", f"the tool is misconfigured ({exc})")
    try:
        # trust_env=False: no proxy or .netrc from the environment; tool endpoints are called directly
        async with (
            asyncio.timeout(endpoint.timeout_s),
            httpx.AsyncClient(timeout=endpoint.timeout_s, trust_env=False, follow_redirects=False) as client,
        ):
            response = await client.send(request, stream=True)
            try:
                body = await _read_bounded(response, endpoint.max_response_bytes)
            finally:
                await response.aclose()
    except (TimeoutError, httpx.TimeoutException):
        log.warning("tool %s: no answer in %.1f s", tool, endpoint.timeout_s)
        return HttpResult("failure", f"no answer in {endpoint.timeout_s:g} s", elapsed_ms=elapsed())
    except httpx.HTTPError as exc:
        log.warning("tool %s: request failed: %s", tool, type(exc).__name__)
        return HttpResult(
            "failure", f"the service could not be reached ({type(exc).__name__})", None, elapsed()
        )
    status = response.status_code
    text = _for_model(body, response.headers.get("content-type", ""))
    log.info("tool %s: %s -> %d in %.0f ms", tool, endpoint.method, status, elapsed(), extra={"tool": tool})
    if 200 <= status < 300:
        return HttpResult("answer", text or "Done.", status, elapsed())
    if status in ANSWERABLE_STATUSES:
        return HttpResult("refusal", f"The service answered {status}: {text}".strip(), status, elapsed())
    return HttpResult("failure", f"the service answered {status}", status, elapsed())


async def _read_bounded(response: httpx.Response, limit: int) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) >= limit:
            log.warning("tool response over %d bytes: cut", limit)
            return bytes(body[:limit])
    return bytes(body)


def _for_model(body: bytes, content_type: str) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    if "json" in content_type or text[:1] in ("{", "["):
        with contextlib.suppress(ValueError):  # not JSON after all: the text as it is
            text = json.dumps(json.loads(text), ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= MAX_RESULT_CHARS else text[:MAX_RESULT_CHARS] + "…"
