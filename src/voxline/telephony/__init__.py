"""Ways into voxline from the phone network: SIP/RTP, Asterisk AudioSocket and ARI external media.

Every way in turns a phone call into a `CallIO` and runs it with `voxline.calls.run_call` and its
`CallHandler` (the agent's `CallRunner`, or an echo agent in tests): the handler talks, `run_call`
ends the call (hang-up and media), and the listener then releases only what is its own.
"""

from __future__ import annotations

from voxline.calls.runner import CallHandler

__all__ = ["CallHandler"]
