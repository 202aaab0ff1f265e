"""Conversation evals: scripted callers, deterministic checks, an optional LLM judge (`voxline eval`)."""
