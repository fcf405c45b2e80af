"""JSON logs, one object per line, carrying the message being handled on every line about it."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

_message: contextvars.ContextVar[dict[str, object] | None] = contextvars.ContextVar(
    "shop_message", default=None
)


class message_context:
    """Every log line inside carries these fields (event id, correlation id, causation id, trace id...).

    Entered once per message: values are kept as given (UUIDs, None) and turned into text only when a
    line is actually written, which most messages never do."""

    __slots__ = ("_fields", "_token")

    def __init__(self, **fields: object) -> None:
        self._fields = fields

    def __enter__(self) -> None:
        self._token = _message.set(self._fields)

    def __exit__(self, *_: object) -> None:
        _message.reset(self._token)


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
            entry.update((k, v) for k, v in context.items() if v is not None)
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
