"""Model engines behind small interfaces: VAD, STT, LLM and TTS, each local or over HTTP."""
