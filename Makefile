# The two commands: `make run` and `make test`. Both set everything up first (idempotent).
.PHONY: run test setup setup-test lint typecheck unit bench clean

HOST ?= 127.0.0.1
PORT ?= 8000
AGENT ?= examples/agents/bank.yaml
PYTEST_ARGS ?=

run: setup
	.venv/bin/voxline serve --host $(HOST) --port $(PORT) --agent $(AGENT)

test: setup-test lint typecheck
	VOXLINE_STRICT_SKIPS=1 .venv/bin/pytest -q -ra $(PYTEST_ARGS)

setup:
	VOXLINE_AGENT=$(AGENT) bash scripts/setup.sh run

setup-test:
	bash scripts/setup.sh test

lint:
	.venv/bin/ruff check src tests scripts
	.venv/bin/ruff format --check src tests scripts

typecheck:
	.venv/bin/mypy

unit:
	.venv/bin/pytest -q -m "not slow and not browser"

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache var out
