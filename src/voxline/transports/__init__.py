"""Transports turn one connection (file, WebSocket, SIP, AudioSocket…) into a CallIO."""

from voxline.transports.base import CallIO, Dtmf, PacedSink

__all__ = ["CallIO", "Dtmf", "PacedSink"]
