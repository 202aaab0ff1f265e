#!/usr/bin/env bash
# Build llama.cpp's own `llama-server` from the llama.cpp tree vendored in the llama-cpp-python sdist,
# the same source (and version) the in-process engine runs, and install it to ~/.cache/voxline/bin.
# Idempotent: a stamp keyed by the llama-cpp-python version and the build flags makes a warm run instant.
#
#   scripts/build_llama_server.sh            # build if missing or stale
#   VOXLINE_LLAMA_SERVER_REBUILD=1 scripts/build_llama_server.sh   # force a rebuild
#
# No git clone and no hub download: the sdist comes from pip's cache or PyPI, the web UI is left out.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[llama-server]\033[0m %s\n' "$*"; }
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY="python3"

cache="${VOXLINE_CACHE:-$HOME/.cache/voxline}"
bin_dir="$cache/bin"
binary="$bin_dir/llama-server"
work="$cache/build/llama-server"

version="$("$PY" -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))' 2>/dev/null || true)"
[ -n "$version" ] || { echo "llama-cpp-python is not installed in $PY: run scripts/setup.sh first" >&2; exit 1; }

# Mirror llama-cpp-python's own build: a native (-march=native) Release build of the same tree. Static
# libraries so the one binary is self-contained; no web UI (it would be fetched from a hub); no OpenSSL
# (it serves plain HTTP on loopback only).
cmake_flags=(
  -DCMAKE_BUILD_TYPE=Release
  -DGGML_NATIVE=ON
  -DBUILD_SHARED_LIBS=OFF
  -DLLAMA_BUILD_SERVER=ON
  -DLLAMA_BUILD_TOOLS=ON
  -DLLAMA_BUILD_TESTS=OFF
  -DLLAMA_BUILD_EXAMPLES=OFF
  -DLLAMA_BUILD_APP=OFF
  -DLLAMA_BUILD_UI=OFF
  -DLLAMA_USE_PREBUILT_UI=OFF
  -DLLAMA_OPENSSL=OFF
)
# -march=native: a binary restored from a cache onto another CPU model must be rebuilt, not crash
cpu="$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | sha256sum | cut -c1-8)"
want="$version $(printf '%s ' "${cmake_flags[@]}" | sha256sum | cut -c1-12) cpu-$cpu"
stamp="$bin_dir/.llama-server-stamp"
if [ -z "${VOXLINE_LLAMA_SERVER_REBUILD:-}" ] && [ -x "$binary" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi

mkdir -p "$work" "$bin_dir"
sdist="$work/llama_cpp_python-$version.tar.gz"
if [ ! -s "$sdist" ]; then
  say "fetching the llama-cpp-python $version sdist (pip's cache or PyPI)"
  "$PY" -m pip download -q "llama-cpp-python==$version" --no-binary :all: --no-deps -d "$work" >/dev/null
fi
src="$work/llama_cpp_python-$version"
if [ ! -f "$src/vendor/llama.cpp/tools/server/CMakeLists.txt" ]; then
  rm -rf "$src"
  tar -xzf "$sdist" -C "$work"
fi

jobs="${VOXLINE_BUILD_JOBS:-$(nproc)}"
say "building llama-server from llama.cpp in llama-cpp-python $version ($jobs jobs; a cold build takes minutes)"
start=$(date +%s)
cmake -S "$src/vendor/llama.cpp" -B "$work/build" "${cmake_flags[@]}" >"$work/cmake.log" 2>&1 \
  || { tail -30 "$work/cmake.log" >&2; exit 1; }
cmake --build "$work/build" --target llama-server -j "$jobs" >"$work/build.log" 2>&1 \
  || { tail -30 "$work/build.log" >&2; exit 1; }
install -m 0755 "$work/build/bin/llama-server" "$binary.tmp"
mv -f "$binary.tmp" "$binary"
"$binary" --version >/dev/null 2>&1 || { echo "the built llama-server does not run" >&2; exit 1; }
echo "$want" >"$stamp"
rm -rf "$work/build" "$src"  # ~300 MB of objects; the sdist stays for a rebuild
say "installed $binary in $(($(date +%s) - start)) s"
