"""The timeline's tables (schema `timeline`): one row per event, found by order or by correlation id;
and one per saga, where it stands, for the sagas still open (`shopctl order stuck`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Column, Connection, DateTime, Index, MetaData, Table, Text, Uuid, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from shared.contracts import OrderCancelled, OrderCompleted
from shared.messaging.driver import cursor, json_rows
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


# Where each saga stands: first and last event, the kinds of fact heard, and when it ended (if it did).
sagas = Table(
    "sagas",
    metadata,
    Column("order_id", Uuid, primary_key=True),
    Column("correlation_id", Uuid, nullable=False),
    Column("first_at", DateTime(timezone=True), nullable=False),
    Column("last_at", DateTime(timezone=True), nullable=False),
    Column("last_event", Text, nullable=False),
    Column("last_source", Text, nullable=False),
    Column("facts", ARRAY(Text), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Index("sagas_open", "first_at", postgresql_where=text("ended_at IS NULL")),
)

# The facts that end a saga, by the type name its events carry (the envelope's event_type).
ENDINGS = frozenset(t.type_name() for t in (OrderCompleted, OrderCancelled))

# One statement per batch. Each SET sees the row as it was: an event older than the last one known
# (facts come from many topics, in any order) moves first_at, never last_event.
_UPSERT_SAGAS = """
INSERT INTO sagas AS s (order_id, correlation_id, first_at, last_at, last_event, last_source, facts, ended_at)
SELECT u.order_id, u.correlation_id, u.first_at, u.last_at, u.last_event, u.last_source, u.facts, u.ended_at
FROM json_to_recordset(%s::json) AS u(order_id uuid, correlation_id uuid, first_at timestamptz,
    last_at timestamptz, last_event text, last_source text, facts text[], ended_at timestamptz)
ORDER BY u.order_id
ON CONFLICT (order_id) DO UPDATE SET
    first_at = least(s.first_at, excluded.first_at),
    last_event = CASE WHEN excluded.last_at >= s.last_at THEN excluded.last_event ELSE s.last_event END,
    last_source = CASE WHEN excluded.last_at >= s.last_at THEN excluded.last_source ELSE s.last_source END,
    last_at = greatest(s.last_at, excluded.last_at),
    facts = ARRAY(SELECT DISTINCT f FROM unnest(s.facts || excluded.facts) AS f ORDER BY f),
    ended_at = coalesce(s.ended_at, excluded.ended_at)
"""


@dataclass
class _Saga:
    correlation_id: UUID
    first_at: datetime
    last_at: datetime
    last_event: str
    last_source: str
    facts: set[str] = field(default_factory=set)
    ended_at: datetime | None = None


class Sagas:
    """The batch's events folded per order in memory, then written in one upsert: one row is touched
    once per statement, however many of its events the batch holds."""

    def __init__(self, connection: Connection) -> None:
        self._sql = cursor(connection)
        self._batch: dict[UUID, _Saga] = {}

    def note(self, order_id: UUID, correlation_id: UUID, event_type: str, source: str, at: datetime) -> None:
        saga = self._batch.get(order_id)
        if saga is None:
            saga = self._batch[order_id] = _Saga(correlation_id, at, at, event_type, source)
        elif at >= saga.last_at:
            saga.last_at, saga.last_event, saga.last_source = at, event_type, source
        saga.first_at = min(saga.first_at, at)
        saga.facts.add(event_type)
        if event_type in ENDINGS and (saga.ended_at is None or at < saga.ended_at):
            saga.ended_at = at

    def want(self, keys: object = ()) -> None:
        raise TypeError("nothing is read: the upsert merges with what is there")

    def load(self) -> None:
        pass

    def flush(self) -> None:
        if not self._batch:
            return
        rows = [
            {
                "order_id": order_id,
                "correlation_id": s.correlation_id,
                "first_at": s.first_at,
                "last_at": s.last_at,
                "last_event": s.last_event,
                "last_source": s.last_source,
                "facts": sorted(s.facts),
                "ended_at": s.ended_at,
            }
            for order_id, s in self._batch.items()
        ]
        self._sql.execute(_UPSERT_SAGAS, (json_rows(rows),))
        self._batch.clear()


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
        self.sagas = Sagas(connection)
        self.stores = (self.timeline, self.sagas)
