"""The security side of the `voxline` command: the non-loopback start refusal, `voxline token`, and
`voxline agent check` never printing a secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from voxline.cli import app
from voxline.server.tokens import verify_token

SECRET = "t" * 40


def run_voxline(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("voxline")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "voxline.cli"]
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith("VOXLINE_API") and k != "VOXLINE_TOKEN_SECRET"
    }
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, env={**clean, "NO_COLOR": "1", **(env or {})},
        timeout=60, check=False,
    )  # fmt: skip


def test_serve_refuses_a_network_address_without_auth_before_loading_anything() -> None:
    started = time.monotonic()
    done = run_voxline("serve", "--host", "0.0.0.0", "--port", "1")
    assert done.returncode == 2, done.stderr
    text = done.stderr.strip()
    assert text.startswith("error: refusing to serve on 0.0.0.0 without authentication"), text
    assert "VOXLINE_API_KEYS" in text and "docs/security.md" in text and "--insecure" in text
    assert "Traceback" not in text and "loading models" not in text
    assert time.monotonic() - started < 30  # refused before any model loads


def test_serve_names_a_bad_key_setting() -> None:
    done = run_voxline("serve", "--host", "0.0.0.0", env={"VOXLINE_API_KEYS": "short"})
    assert done.returncode == 2
    assert done.stderr.startswith("error: 1 API key(s) shorter than 16 characters"), done.stderr


def test_token_needs_the_secret_and_mints_a_verifiable_token() -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["token"], env={"VOXLINE_TOKEN_SECRET": ""})
    assert missing.exit_code == 2 and "VOXLINE_TOKEN_SECRET" in missing.output
    minted = runner.invoke(
        app, ["token", "--ttl", "90", "--scope", "call,read", "--subject", "kiosk"],
        env={"VOXLINE_TOKEN_SECRET": SECRET},
    )  # fmt: skip
    assert minted.exit_code == 0, minted.output
    claims = verify_token(SECRET.encode(), minted.stdout.strip())
    assert claims.scopes == {"call", "read"} and claims.subject == "kiosk"
    assert claims.expires_at - claims.issued_at == 90


def test_agent_check_prints_no_secret_and_warns_about_literal_ones(tmp_path: Path) -> None:
    agent = tmp_path / "agent.yaml"
    agent.write_text(
        "telephony:\n"
        "  sip:\n    registration: {registrar: 'sip:pbx.example.com', username: '100',\n"
        "                   password: literal-pw}\n"
        "  ari: {url: 'http://admin:url-pw@127.0.0.1:8088/ari', username: voxline, password: '${ARI_PW}'}\n"
    )
    result = CliRunner().invoke(app, ["agent", "check", str(agent)], env={"ARI_PW": "env-pw"})
    assert result.exit_code == 0, result.output
    for secret in ("literal-pw", "url-pw", "env-pw"):
        assert secret not in result.output
    printed = json.loads(result.stdout)
    assert printed["telephony"]["ari"]["password"] == "***"
    assert printed["telephony"]["sip"]["registration"]["password"] == "***"
    assert "telephony.sip.registration.password is written in" in result.stderr
    assert "telephony.ari.password" not in result.stderr  # it comes from the environment
