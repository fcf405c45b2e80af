"""The timeline's table (schema `timeline`): one row per event, found by order or by correlation id."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import Column, Connection, DateTime, Index, MetaData, Table, Text, Uuid, func, select
from sqlalchemy.dialects.postgresql import JSONB, insert

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


_RECORD = insert(events).on_conflict_do_nothing()  # built once, run with each event's row


class Timeline:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def record(self, row: dict[str, Any]) -> None:
        self._conn.execute(_RECORD, row)

    def of_order(self, order_id: UUID) -> list[dict[str, Any]]:
        rows = self._conn.execute(
            select(events)
            .where(events.c.order_id == order_id)
            .order_by(events.c.occurred_at, events.c.recorded_at)
        )
        return [dict(r._mapping) for r in rows]

    def order_of_correlation(self, correlation_id: UUID) -> UUID | None:
        return self._conn.scalar(
            select(events.c.order_id).where(events.c.correlation_id == correlation_id).limit(1)
        )


class TimelineUnitOfWork(UnitOfWork):
    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self.timeline = Timeline(connection)
