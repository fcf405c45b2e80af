"""JSON logs, one object per line, carrying the message being handled on every line about it."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

_message: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("shop_message", default=None)


@contextmanager
def message_context(**fields: str | None) -> Iterator[None]:
    """Every log line inside carries these fields (event id, correlation id, causation id, trace id...)."""
    token = _message.set({k: v for k, v in fields.items() if v is not None})
    try:
        yield
    finally:
        _message.reset(token)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = _message.get()
        if context:
            entry.update(context)
        extra = getattr(record, "fields", None)
        if extra:
            entry.update(extra)
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The registry client logs every HTTP request at INFO: start-up noise, never per message.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpx2").setLevel(logging.WARNING)
