"""`${NAME}` references in agent files (HTTP tool URLs and headers, the webhook URL), read from the
process environment when a request is made, so secrets live in the environment and never in the
YAML, the validated config, `voxline agent check` or the logs."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class MissingEnvironment(LookupError):
    """A `${NAME}` without a default whose variable is not set. The message names only the variable."""


def expand_env(template: str, environ: Mapping[str, str] | None = None) -> str:
    """`template` with each `${NAME}` replaced by the variable's value (`${NAME:-default}`: the
    default when it is unset or empty). Only the environment is read: nothing else is substituted."""
    env = os.environ if environ is None else environ

    def value(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = env.get(name)
        if found:
            return found
        if default is not None:
            return default
        raise MissingEnvironment(f"environment variable {name} is not set")

    return _REFERENCE.sub(value, template)


def env_names(template: str) -> list[str]:
    """The variables `template` reads."""
    return [match.group(1) for match in _REFERENCE.finditer(template)]
