"""Structured logging. Every record carries the call id of the call it belongs to (or "-").

The call id lives in a ContextVar, so every task a call spawns inherits it without passing it around.

Text lines escape control characters (newlines included) in the message, the call id and every extra
field, so a caller-chosen string (a WebSocket label, a SIP header) cannot forge a log line; only a
traceback, added after the escaped line, spans several lines. JSON lines are escaped by json itself.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from typing import Any

call_id_var: ContextVar[str] = ContextVar("voxline_call_id", default="-")

_CONTROL_ESCAPES = {
    **{c: f"\\x{c:02x}" for c in range(0x20)},
    0x0A: "\\n",
    0x0D: "\\r",
    0x09: "\\t",
    0x7F: "\\x7f",
    0x85: "\\x85",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def escape_field(value: object) -> str:
    """`value` as one line: control characters (and Unicode line separators) written as escapes."""
    return str(value).translate(_CONTROL_ESCAPES)


_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "call_id", "color_message"}


class _CallIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "call_id"):
            record.call_id = call_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "call_id": getattr(record, "call_id", "-"),  # a LogRecord extra (_CallIdFilter): may be absent
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created)) + f".{int(record.msecs):03d}"
        extras = {k: v for k, v in vars(record).items() if k not in _RESERVED and not k.startswith("_")}
        tail = " ".join(f"{escape_field(k)}={escape_field(v)}" for k, v in extras.items())
        call_id = escape_field(getattr(record, "call_id", "-"))  # a LogRecord extra: may be absent
        line = f"{stamp} {record.levelname[0]} [{call_id}] {record.name}: "
        line += escape_field(record.getMessage()) + (f" {tail}" if tail else "")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(level: str = "INFO", json_format: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_CallIdFilter())
    handler.setFormatter(JsonFormatter() if json_format else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "uvicorn.access", "faster_whisper"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
