"""Shared speech inference for a node: STT, whisper language ID and TTS loaded once, in one supervised
process, and served to every call's job process over a Unix domain socket.

- `protocol`: the wire format (length-prefixed frames, bounded sizes, the per-process key).
- `models`: which models an agent needs from the server, and the key both sides name them by.
- `server`: the inference process (`python -m voxline.inference.server`), a queue per model.
- `supervisor`: `SpeechServer`, the node's handle on that process (start, ready, restart, stop).
- `client`: engines (STT, LanguageSTT, LanguageIdentifier, TTS) that call the server, and
  `remote_engines`, which builds a job's `Engines` from them.
"""
