"""The HTTP/WebSocket server: web page, browser calls, call records, Prometheus metrics."""

from voxline.server.app import create_app

__all__ = ["create_app"]
