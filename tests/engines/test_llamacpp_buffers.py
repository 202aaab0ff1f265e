"""llama.cpp's extra CPU buffer types (AMX, repack) are off on CPUs that report AMX: there the AMX
matmul segfaulted on the first real prompt. The real-model tests prove the load path end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxline.engines.llm_llamacpp import cpu_has_amx, extra_buffers_wanted


def test_amx_is_read_from_the_cpu_flags(tmp_path: Path) -> None:
    amx, plain = tmp_path / "amx", tmp_path / "plain"
    amx.write_text("flags\t\t: fpu avx2 avx512f amx_bf16 amx_tile amx_int8\n")
    plain.write_text("flags\t\t: fpu avx2 avx512f\n")
    assert cpu_has_amx(amx) and not cpu_has_amx(plain)
    assert not cpu_has_amx(tmp_path / "absent")


@pytest.mark.parametrize(("value", "wanted"), [("0", False), ("1", True)])
def test_the_environment_overrides_the_cpu_check(
    monkeypatch: pytest.MonkeyPatch, value: str, wanted: bool
) -> None:
    monkeypatch.setenv("VOXLINE_LLAMA_EXTRA_BUFFERS", value)
    assert extra_buffers_wanted() is wanted


def test_without_override_amx_cpus_get_no_extra_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VOXLINE_LLAMA_EXTRA_BUFFERS", raising=False)
    assert extra_buffers_wanted() is not cpu_has_amx()
