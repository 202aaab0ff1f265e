#!/usr/bin/env bash
# Set up everything voxline needs on a Debian 12 machine: apt packages, a .venv, the Python packages,
# and the packaged models assembled into the model cache. Idempotent, and quick when all is in place.
#
#   scripts/setup.sh run    # what `make run` needs
#   scripts/setup.sh test   # plus the test-only packages and fixtures
set -euo pipefail
mode="${1:-run}"
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# ---------------------------------------------------------------- apt
# festival + the NSK voices speak Hindi and Marathi for agents that configure them. The voice packages
# only *recommend* festival-hi/festival-mr (phone sets, lexicons), and we install without recommends:
# name every package a feature needs here, never rely on a recommend. `voxline doctor` below proves it.
apt_pkgs=(espeak-ng festival festvox-hi-nsk festival-hi festvox-mr-nsk festival-mr libsndfile1 python3-venv python3-dev
  build-essential cmake)
if [ "$mode" = test ]; then
  # recorded speech for tests/benchmarks, a real browser for the web page test
  # real SIP peers for the telephony tests: sipp, the baresip softphone, the Kamailio proxy; iproute2 (`ip netns`)
  # puts each node of the scale-out test on its own address (slim Debian images do not ship it)
  apt_pkgs+=(asterisk-core-sounds-en-wav asterisk-core-sounds-en chromium sox sqlite3 sip-tester baresip-core kamailio
    iproute2)
fi
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "apt: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---------------------------------------------------------------- python
PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "voxline needs Python >= 3.11" >&2; exit 1; }
[ -x .venv/bin/python ] || { say "creating .venv"; "$PY" -m venv .venv; }

extras="local"
# the tests also run the Hindi and bilingual example agents, which need the 1.5B model (Qwen 0.5B refuses Devanagari)
# and the Pipecat comparison (`voxline bench --peer pipecat`) serves the same GGUF with llama-cpp-python's server
[ "$mode" = test ] && extras="local,test,models-large,bench-peer"
# Re-run pip only when the dependency list changed: a warm `make run` must start in seconds.
stamp=".venv/.voxline-deps-$mode"
want="$(sha256sum pyproject.toml | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "pip: installing voxline[$extras] (llama-cpp-python compiles once, ~10 min, then comes from pip's cache)"
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -m pip install -q -e ".[$extras]" 2>&1 | grep -v '^WARNING: Location' || true
  check="import voxline, llama_cpp, faster_whisper, piper, onnxruntime, kokoro_onnx"
  [ "$mode" = test ] && check="$check, pytest, playwright, hypothesis, mypy"
  .venv/bin/python -c "$check" || { echo "pip install failed (see above)" >&2; exit 1; }
  echo "$want" > "$stamp"
fi

# ---------------------------------------------------------------- llama-server
# the node's shared LLM server (`llm.engine: llama_server`), built from the llama.cpp tree of the
# llama-cpp-python sdist the venv runs (cold ~6 min on 2 cores; instant when its stamp matches)
scripts/build_llama_server.sh

# ---------------------------------------------------------------- models
.venv/bin/voxline models install

# ---------------------------------------------------------------- self-check
# Speak a line with every voice the agents use and resolve their models: a missing package fails here,
# named, not at a call's warm-up. Skipped while nothing it depends on has changed.
if [ "$mode" = test ]; then
  doctor_args=(examples/agents/*.yaml --voice festival:hi --voice festival:mr)  # + the fixtures' voices
else
  doctor_args=("${VOXLINE_AGENT:-examples/agents/bank.yaml}")
fi
doctor_stamp=".venv/.voxline-doctor-$mode"
doctor_want="$( { cat pyproject.toml src/voxline/doctor.py; for a in "${doctor_args[@]}"; do [ -f "$a" ] && cat "$a"; done
  echo "${doctor_args[*]}"; dpkg-query -W "${apt_pkgs[@]}" 2>&1; ls -l "${XDG_CACHE_HOME:-$HOME/.cache}/voxline/models" 2>&1
} | sha256sum | cut -c1-16)"
if [ "$(cat "$doctor_stamp" 2>/dev/null)" != "$doctor_want" ]; then
  say "doctor: speaking a line with every voice"
  .venv/bin/voxline doctor "${doctor_args[@]}"
  echo "$doctor_want" > "$doctor_stamp"
fi

if [ "$mode" = test ]; then
  .venv/bin/python scripts/make_fixtures.py
  # Pipecat 1.14 in its own venv outside the repo, for the side-by-side bench and its test (stamped)
  .venv/bin/python -m voxline.bench.peers.pipecat_env
fi
say "ready"
