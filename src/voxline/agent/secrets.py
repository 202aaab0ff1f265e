"""Secrets in agent files: `${NAME}` taken from the environment, and redaction wherever config is shown.

An agent file is meant to be shared and committed, so a password is written as
``password: ${VOXLINE_ARI_PASSWORD}`` and read from the environment when the file is loaded. Anything
printed (``voxline agent check``) goes through `redact`, which hides every secret-looking field and
the password part of any URL.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_KEY = re.compile(r"(password|passwd|secret|token|api_?key|credential)s?$", re.IGNORECASE)
_URL_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@", re.I)
REDACTED = "***"


class MissingEnvironment(KeyError):
    """A `${NAME}` in an agent file names a variable that is not set."""


def expand_env(value: Any, env: Mapping[str, str] | None = None, path: str = "") -> Any:
    """`value` with every `${NAME}` in its strings replaced from the environment (recursively)."""
    env = os.environ if env is None else env
    if isinstance(value, str):

        def lookup(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise MissingEnvironment(f"{path or '(top level)'}: environment variable {name} is not set")
            return env[name]

        return _ENV_REF.sub(lookup, value)
    if isinstance(value, dict):
        return {k: expand_env(v, env, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, env, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def redact(value: Any, key: str = "") -> Any:
    """A copy of `value` with secret fields replaced by *** and URL passwords hidden."""
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, key) for v in value]
    if isinstance(value, str):
        if value and is_secret_key(key):
            return REDACTED
        return _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", value)
    return value


def literal_secrets(raw: Any, path: str = "") -> list[str]:
    """Dotted paths of secret fields written into the file itself instead of as `${NAME}`."""
    found: list[str] = []
    if isinstance(raw, dict):
        for k, v in raw.items():
            where = f"{path}.{k}" if path else str(k)
            if isinstance(v, str) and v and is_secret_key(str(k)) and not _ENV_REF.fullmatch(v.strip()):
                found.append(where)
            else:
                found += literal_secrets(v, where)
    elif isinstance(raw, list):
        for i, v in enumerate(raw):
            found += literal_secrets(v, f"{path}[{i}]")
    return found
