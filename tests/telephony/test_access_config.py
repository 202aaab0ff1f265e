"""The telephony access settings as an operator writes them: CIDR lists checked at load, the SIP
auth password from the environment and never printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxline.agent.config import AgentConfigError, load_agent
from voxline.agent.secrets import redact
from voxline.telephony.access import SourceAllowList

AGENT = """
name: t
telephony:
  sip:
    host: 0.0.0.0
    allow_from: [10.0.0.2/32, "2001:db8::/32"]
    auth: {username: pbx, password: "${VOXLINE_TEST_SIP_AUTH}"}
  audiosocket:
    allow_from: [10.0.0.0/24]
    idle_timeout_s: 30
"""


def test_allow_lists_and_auth_load_with_the_password_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOXLINE_TEST_SIP_AUTH", "s3cret-from-env")
    path = tmp_path / "agent.yaml"
    path.write_text(AGENT)
    agent = load_agent(path)
    sip = agent.telephony.sip
    assert sip.allow_from == ["10.0.0.2/32", "2001:db8::/32"]
    assert sip.auth is not None and sip.auth.password == "s3cret-from-env"
    assert "s3cret-from-env" not in str(redact(agent.model_dump()))
    assert agent.telephony.audiosocket.idle_timeout_s == 30


def test_a_bad_network_fails_the_load_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("telephony: {sip: {allow_from: [pbx.example.com]}}\n")
    with pytest.raises(AgentConfigError, match=r"pbx\.example\.com"):
        load_agent(path)


def test_unset_means_loopback_only_and_ipv4_mapped_sources_count_as_ipv4() -> None:
    default = SourceAllowList(None, what="test")
    assert default.allows("127.0.0.1") and default.allows("127.9.9.9") and default.allows("::1")
    assert not default.allows("10.0.0.2") and not default.allows("not-an-address")
    listed = SourceAllowList(["10.0.0.0/8"], what="test")
    assert listed.allows("::ffff:10.1.2.3") and not listed.allows("127.0.0.1")
    assert listed.refused == 1
