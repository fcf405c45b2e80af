"""The timeline's table (schema `timeline`): one row per event, found by order or by correlation id."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Connection, DateTime, Index, MetaData, Table, Text, Uuid, func
from sqlalchemy.dialects.postgresql import JSONB

from shared.messaging.repository import Appender, BatchStatements
from shared.messaging.unit_of_work import UnitOfWork

metadata = MetaData()

events = Table(
    "events",
    metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("order_id", Uuid, nullable=False),
    Column("correlation_id", Uuid, nullable=False),
    Column("causation_id", Uuid),
    Column("event_type", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("trace_id", Text),
    Column("payload", JSONB, nullable=False),
    Index("events_order", "order_id", "occurred_at"),
    Index("events_correlation", "correlation_id"),
)


class Timeline(Appender[dict[str, Any]]):
    """One row per event; an event seen again (redelivered, replayed) is recorded once."""

    statements = BatchStatements(events, "event_id")
    on_conflict = "ON CONFLICT DO NOTHING"

    def record(self, row: dict[str, Any]) -> None:
        self.append(row)


class TimelineUnitOfWork(UnitOfWork):
    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self.timeline = Timeline(connection)
        self.stores = (self.timeline,)
