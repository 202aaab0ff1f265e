"""Strict skips: in CI, or with VOXLINE_STRICT_SKIPS=1, a skipped test fails unless allow-listed.

A skip on a missing peer (sipp, Kamailio, Chromium, a festival voice, a fixture) would otherwise let a
whole feature pass vacuously on a machine where setup silently missed something. The allow-list
(tests/skip_allowlist.txt) names the few skips CI may keep, each with its reason.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ALLOWLIST = Path(__file__).with_name("skip_allowlist.txt")
STRICT_ENV = "VOXLINE_STRICT_SKIPS"


@dataclass(frozen=True)
class AllowedSkip:
    pattern: re.Pattern[str]
    why: str


def strict_skips_on(environ: Mapping[str, str] = os.environ) -> bool:
    """CI sets CI=true; `make test` sets VOXLINE_STRICT_SKIPS=1."""
    in_ci = environ.get("CI", "").lower() in ("1", "true", "yes")
    return in_ci or environ.get(STRICT_ENV, "") not in ("", "0")


def load_allowlist(path: Path = ALLOWLIST) -> list[AllowedSkip]:
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pattern, sep, why = line.partition(" -- ")
        if not sep or not pattern.strip() or not why.strip():
            raise ValueError(f"{path}:{number}: expected 'PATTERN -- why it may skip in CI', got {line!r}")
        entries.append(AllowedSkip(re.compile(pattern.strip()), why.strip()))
    return entries


def skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (path, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def allowed(reason: str, allowlist: list[AllowedSkip]) -> bool:
    return any(entry.pattern.search(reason) for entry in allowlist)


def refusal(reason: str) -> str:
    return (
        f"skipped (or xfail), and skips fail this run (CI or {STRICT_ENV}=1): {reason}\n"
        f"Install what it names (make setup-test), or, if this skip is truly unavoidable in CI, add it with "
        f"its reason to {ALLOWLIST.name}."
    )


class StrictSkips:
    """The pytest plugin: turns each non-allowed skip (and xfail) into a failure of that test."""

    def __init__(self, allowlist: list[AllowedSkip]) -> None:
        self.allowlist = allowlist
        self.refused_collections: list[tuple[str, str]] = []

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        if not report.skipped:
            return
        reason = skip_reason(report)
        if hasattr(report, "wasxfail"):
            reason = f"xfail: {report.wasxfail}"
        if allowed(reason, self.allowlist):
            return
        report.outcome = "failed"
        report.longrepr = refusal(reason)
        if hasattr(report, "wasxfail"):
            del report.wasxfail

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        # A module-level skip (importorskip at import time): the module's tests never exist as items,
        # so the whole session fails at its end instead.
        if report.skipped and not allowed(reason := skip_reason(report), self.allowlist):
            self.refused_collections.append((report.nodeid, reason))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        passing = (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
        if self.refused_collections and session.exitstatus in passing:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter) -> None:  # type: ignore[no-untyped-def]
        for nodeid, reason in self.refused_collections:
            terminalreporter.write_line(f"FAILED (module skipped) {nodeid}: {refusal(reason)}", red=True)
