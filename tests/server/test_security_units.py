"""The security building blocks on their own: tokens, settings, Host/Origin rules, the rate limiter,
the call budget, inbound pacing, secrets in agent files, and log-line escaping."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from voxline.agent.config import AgentConfigError, load_agent
from voxline.agent.secrets import REDACTED, expand_env, literal_secrets, redact
from voxline.capacity import CallCapacity
from voxline.logs import JsonFormatter, TextFormatter
from voxline.server.ratelimit import SourceRateLimiter
from voxline.server.security import SecurityConfigError, SecuritySettings, host_name, is_loopback_host
from voxline.server.tokens import MAX_TTL_S, TokenError, mint_token, verify_token
from voxline.transports.inbound_pacing import InboundPacer

SECRET = b"s" * 32
KEY = "k" * 24

# ---------------------------------------------------------------- tokens


def test_a_token_round_trips_and_carries_its_claims() -> None:
    token = mint_token(SECRET, ttl_s=60, scopes=frozenset({"call", "read"}), subject="web", now=1000)
    claims = verify_token(SECRET, token, now=1030)
    assert (claims.issued_at, claims.expires_at) == (1000, 1060)
    assert claims.scopes == {"call", "read"} and claims.subject == "web"


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (mint_token(b"x" * 32, now=1000), "bad token signature"),
        (mint_token(SECRET, ttl_s=60, now=1000)[:-1] + "A", "bad token signature"),
        ("vxt1.e30", "not a voxline token"),
        ("vxt1.e30." + "A" * 43, "bad token signature"),
        ("eyJhbGciOi.x.y", "not a voxline token"),
        ("vxt1." + "a" * 3000, "token too long"),
    ],
)
def test_bad_tokens_are_refused_with_a_reason(token: str, reason: str) -> None:
    with pytest.raises(TokenError, match=reason):
        verify_token(SECRET, token, now=1010)


def test_expiry_and_lifetime_are_enforced() -> None:
    token = mint_token(SECRET, ttl_s=60, now=1000)
    verify_token(SECRET, token, now=1059)
    with pytest.raises(TokenError, match="expired"):
        verify_token(SECRET, token, now=1060)
    with pytest.raises(ValueError, match="ttl"):
        mint_token(SECRET, ttl_s=MAX_TTL_S + 1)
    with pytest.raises(ValueError, match="scopes"):
        mint_token(SECRET, scopes=frozenset({"admin"}))


# ---------------------------------------------------------------- settings


def test_settings_from_the_environment(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"# the web backend\n{KEY}\n\n{'q' * 20}\n")
    settings = SecuritySettings.from_env(
        "0.0.0.0",
        env={"VOXLINE_API_KEYS_FILE": str(keys), "VOXLINE_ALLOWED_HOSTS": "Voice.Example.com,*.corp.example"},
    )
    assert settings.auth_enabled and settings.start_refusal is None
    assert settings.token_secret is not None and not settings.token_secret_from_env
    assert settings.authenticate(KEY) is not None and settings.authenticate("q" * 20) is not None
    assert settings.authenticate("k" * 23) is None
    assert settings.host_allowed("voice.example.com:443") and settings.host_allowed("a.corp.example")
    assert not settings.host_allowed("evil.example") and not settings.host_allowed(None)


def test_a_network_address_without_keys_is_refused_unless_insecure() -> None:
    refusal = SecuritySettings.from_env("0.0.0.0", env={}).start_refusal
    assert refusal is not None and "VOXLINE_API_KEYS" in refusal and "--insecure" in refusal
    assert SecuritySettings.from_env("127.0.0.1", env={}).start_refusal is None
    insecure = SecuritySettings.from_env("0.0.0.0", env={}, insecure=True)
    assert insecure.start_refusal is None and insecure.warnings[0].startswith("INSECURE")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"VOXLINE_API_KEYS": "short"}, "shorter than 16"),
        ({"VOXLINE_TOKEN_SECRET": "tiny"}, "at least 32"),
        ({"VOXLINE_API_KEYS_FILE": "/nonexistent/keys"}, "cannot read the API key file"),
        ({"VOXLINE_MAX_CALLS": "lots"}, "whole number"),
        ({"VOXLINE_WS_MAX_MESSAGE_BYTES": "10"}, "at least 1024"),
    ],
)
def test_unusable_settings_say_what_is_wrong(env: dict[str, str], message: str) -> None:
    with pytest.raises(SecurityConfigError, match=message):
        SecuritySettings.from_env("127.0.0.1", env=env)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True), ("localhost", True),
     ("0.0.0.0", False), ("10.0.0.5", False), ("example.com", False)],
)  # fmt: skip
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_host_and_origin_rules_on_loopback() -> None:
    local = SecuritySettings.local()
    assert host_name("[::1]:8000") == "::1" and host_name("LocalHost:80") == "localhost"
    for host in ("127.0.0.1:8000", "localhost", "app.localhost:8000", "[::1]:8000"):
        assert local.host_allowed(host), host
    for host in ("attacker.example", "127.0.0.1.nip.io", "10.0.0.5:8000", ""):
        assert not local.host_allowed(host), host
    assert local.origin_allowed(None, "127.0.0.1:8000")  # curl, a backend
    assert local.origin_allowed("http://127.0.0.1:8000", "127.0.0.1:8000")
    assert not local.origin_allowed("http://127.0.0.1:9999", "127.0.0.1:8000")
    assert not local.origin_allowed("https://evil.example", "127.0.0.1:8000")
    assert not local.origin_allowed("null", "127.0.0.1:8000")
    allowed = SecuritySettings.local(allowed_origins=frozenset({"https://app.example"}))
    assert allowed.origin_allowed("https://app.example/", "127.0.0.1:8000")


# ---------------------------------------------------------------- limits


def test_the_rate_limiter_refills_and_forgets_old_sources() -> None:
    now = [0.0]
    limiter = SourceRateLimiter(per_minute=6, burst=2, clock=lambda: now[0], max_sources=2)
    assert [limiter.allow("a") for _ in range(3)] == [True, True, False]
    assert limiter.retry_after_s("a") == 10
    now[0] = 10.0  # one attempt back (6 a minute)
    assert limiter.allow("a") and not limiter.allow("a")
    limiter.allow("b")
    limiter.allow("c")  # "a" is forgotten: memory stays bounded under a spoofed flood
    assert len(limiter._buckets) == 2 and limiter.refused == 2


def test_the_call_budget_is_shared_by_every_way_in() -> None:
    capacity = CallCapacity(2)
    sip = capacity.try_acquire("sip")
    ws = capacity.try_acquire("websocket")
    assert sip is not None and ws is not None
    assert capacity.try_acquire("audiosocket") is None and not capacity.has_room()
    with sip:
        pass
    sip.release()  # twice is harmless
    assert capacity.has_room() and capacity.active == 1
    assert capacity.describe() == {"max_calls": 2, "active": {"websocket": 1}, "refused": {"audiosocket": 1}}
    with pytest.raises(ValueError):
        CallCapacity(0)


async def test_inbound_audio_is_held_to_real_time_after_a_burst() -> None:
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = InboundPacer(16000, burst_s=2.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(100):  # 2 s in 20 ms frames, all at once: the burst allowance
        await pacer.admit(320)
    assert slept == []
    await pacer.admit(16000)  # one more second at once: wait until it is due
    assert slept == [pytest.approx(1.0)] and pacer.waited_s == pytest.approx(1.0)
    await asyncio.sleep(0)


# ---------------------------------------------------------------- secrets in agent files


def test_env_references_are_expanded_and_missing_ones_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = tmp_path / "agent.yaml"
    agent.write_text(
        "telephony:\n  ari:\n    url: http://127.0.0.1:8088/ari\n    username: voxline\n"
        "    password: ${TEST_ARI_PASSWORD}\n"
    )
    with pytest.raises(
        AgentConfigError, match=r"telephony\.ari\.password: environment variable TEST_ARI_PASSWORD"
    ):
        load_agent(agent)
    monkeypatch.setenv("TEST_ARI_PASSWORD", "hunter2-from-env")
    config = load_agent(agent)
    assert config.telephony.ari is not None and config.telephony.ari.password == "hunter2-from-env"
    assert literal_secrets({"telephony": {"ari": {"password": "${X}"}}}) == []
    assert expand_env({"a": ["x ${B} y"]}, env={"B": "b"}) == {"a": ["x b y"]}


def test_redaction_hides_secret_fields_and_url_passwords() -> None:
    config = {
        "name": "agent",
        "telephony": {
            "sip": {"registration": {"username": "100", "password": "pw1"}},
            "ari": {"url": "http://admin:pw2@10.0.0.1:8088/ari", "password": "pw3"},
        },
        "tools": [{"name": "x", "api_key": "pw4", "url": "https://hook.example/x"}],
        "empty": {"password": ""},
    }
    shown = redact(config)
    text = str(shown)
    assert not any(f"pw{i}" in text for i in range(1, 5)), text
    assert shown["telephony"]["ari"]["url"] == f"http://admin:{REDACTED}@10.0.0.1:8088/ari"
    assert shown["telephony"]["sip"]["registration"]["username"] == "100"
    assert shown["empty"]["password"] == ""  # nothing to hide: show that it is unset
    assert literal_secrets(config) == [
        "telephony.sip.registration.password", "telephony.ari.password", "tools[0].api_key",
    ]  # fmt: skip


# ---------------------------------------------------------------- log lines


def _record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("voxline.test", logging.WARNING, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_a_text_log_line_cannot_be_forged_by_a_field() -> None:
    forged = "abc\n12:00:00.000 I [admin] voxline.auth: login ok"
    line = TextFormatter().format(_record("label %s", forged, peer="1.2.3.4\nfake=1", call_id="id\r\nX"))
    assert "\n" not in line and "\r" not in line and "[id\\r\\nX]" in line
    assert "label abc\\n12:00:00.000 I [admin]" in line and "peer=1.2.3.4\\nfake=1" in line
    json_line = JsonFormatter().format(_record("label %s", forged))
    assert "\n" not in json_line
