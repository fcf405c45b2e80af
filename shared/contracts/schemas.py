"""Each event's Avro schema, read from schemas/ and made self-contained for the registry.

In the repository every event schema names the envelope (`shop.common.Envelope`) instead of repeating
it; the registry gets one self-contained schema per event type, so any reader can decode a record from
its schema id alone.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from shared.contracts.event import Event

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"
ENVELOPE_NAME = "shop.common.Envelope"


def schema_path(event_type: type[Event]) -> Path:
    return SCHEMAS_DIR / event_type.owner / f"{event_type.__name__}.avsc"


@cache
def envelope_schema() -> dict[str, Any]:
    return json.loads((SCHEMAS_DIR / "common" / "Envelope.avsc").read_text())


@cache
def avro_schema(event_type: type[Event]) -> dict[str, Any]:
    """The self-contained schema of one event type (the envelope's definition inlined)."""
    raw = json.loads(schema_path(event_type).read_text())
    fields = [
        {**field, "type": envelope_schema()} if field["type"] == ENVELOPE_NAME else field
        for field in raw["fields"]
    ]
    return {**raw, "fields": fields}


def avro_schema_json(event_type: type[Event]) -> str:
    return json.dumps(avro_schema(event_type), separators=(",", ":"))
