"""Logs as one JSON object per line, nothing before it: what log shippers (Loki, Cloud Logging, Elastic, jq) read.

Every line has `time` (UTC, ISO 8601 with milliseconds), `level` and `logger`, then either `message` or, for a
structured record (`log.info(Fields(event="rpc", method=...))`), its fields (`event` names the kind of line). An
exception is one `exception` field (its traceback, newlines escaped), so a line is always one line. A structured
record read by any other formatter (pytest's caplog, a plain-text handler) reads as its JSON.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from types import TracebackType
from typing import Any, TextIO

_RESERVED = frozenset(("time", "level", "logger"))
# One encoder for every line: json.dumps with any option set builds a new one per call.
_encode = json.JSONEncoder(default=str, ensure_ascii=False).encode


class Fields(dict[str, Any]):
    """A structured log record's message: its fields, merged into the JSON line; as text, their JSON."""

    def __str__(self) -> str:
        return json.dumps(self, default=str)


class JsonFormatter(logging.Formatter):
    """A logging.Formatter writing each record as one JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"time": _utc(record.created), "level": record.levelname, "logger": record.name}
        if isinstance(record.msg, Fields) and not record.args:
            line.update((k, v) for k, v in record.msg.items() if k not in _RESERVED)
        else:
            line["message"] = record.getMessage()
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return _encode(line)


_last_second: tuple[int, str] = (-1, "")  # the last whole second formatted, and its text (many lines to a second)


def _utc(created: float) -> str:
    global _last_second
    seconds = int(created)
    last = _last_second  # one read: another thread may swap it meanwhile
    if last[0] != seconds:
        last = _last_second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
    return f"{last[1]}.{int((created - seconds) * 1000):03d}Z"


def configure(level: str, stream: TextIO = sys.stderr) -> None:
    """The process's logging: JSON lines on `stream` (stderr) at `level`, Python's warnings and an uncaught
    exception included; httpx's per-request lines off."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.captureWarnings(True)
    sys.excepthook = _uncaught


def _uncaught(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    logging.getLogger("otari_batch_grpc").critical("uncaught exception", exc_info=(kind, value, tb))


def adopt(*names: str) -> None:
    """Send loggers that a library gave handlers of its own (uvicorn does) through the root's JSON handler."""
    for name in names:
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.propagate = True
