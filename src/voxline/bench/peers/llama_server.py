"""llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`), loading models the way
voxline's own engine does: without llama.cpp's extra CPU buffer types on CPUs that report AMX, where
they segfault on the first real prompt (see `extra_buffers_wanted`). The peer must run on the same
llama.cpp as voxline, crash fix included, or the comparison is not of the same models."""

from __future__ import annotations

import runpy


def main() -> None:
    import llama_cpp.llama_cpp as lib

    from voxline.engines.llm_llamacpp import extra_buffers_wanted, with_extra_buffers

    defaults = lib.llama_model_default_params
    lib.llama_model_default_params = with_extra_buffers(defaults, extra_buffers_wanted())
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
