"""Kafka headers: a copy of the envelope (readable without decoding the body) and the trace context.

The Avro record's envelope is authoritative; the headers exist for routing, tools and tracing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

KafkaHeaders = Sequence[tuple[str, bytes | None]] | None

EVENT_ID = "event_id"
EVENT_TYPE = "event_type"
SCHEMA_VERSION = "schema_version"
OCCURRED_AT = "occurred_at"
SOURCE = "source"
CORRELATION_ID = "correlation_id"
CAUSATION_ID = "causation_id"


def envelope_headers(envelope: dict[str, Any], occurred_at: str) -> dict[str, str]:
    """The headers of an envelope laid out as its Avro record with ids as text (see publishing)."""
    headers = {
        EVENT_ID: envelope["event_id"],
        EVENT_TYPE: envelope["event_type"],
        SCHEMA_VERSION: str(envelope["schema_version"]),
        OCCURRED_AT: occurred_at,
        SOURCE: envelope["source"],
        CORRELATION_ID: envelope["correlation_id"],
    }
    if envelope["causation_id"] is not None:
        headers[CAUSATION_ID] = envelope["causation_id"]
    return headers


def header(headers: KafkaHeaders, name: str) -> str | None:
    """The last value of a header, decoded; None when absent."""
    if not headers:
        return None
    for key, value in reversed(headers):
        if key == name:
            return None if value is None else value.decode("utf-8", "replace")
    return None


def as_dict(headers: KafkaHeaders) -> dict[str, str]:
    return {k: ("" if v is None else v.decode("utf-8", "replace")) for k, v in headers or ()}
