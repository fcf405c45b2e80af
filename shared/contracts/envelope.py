"""The envelope every event carries: identity, type, version, time, source, correlation and causation."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class Envelope(BaseModel):
    """Authoritative in the Avro record (schemas/common/Envelope.avsc); Kafka headers carry a copy."""

    model_config = ConfigDict(frozen=True)

    event_id: UUID
    event_type: str = Field(min_length=1)
    schema_version: int = Field(ge=1)
    occurred_at: datetime
    source: str = Field(min_length=1)
    correlation_id: UUID
    causation_id: UUID | None = None
