"""voxline: local-first real-time voice AI agents for call centres."""

__version__ = "0.1.0"
