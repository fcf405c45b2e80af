"""The order's tables and the unit of work its handlers get (SQLAlchemy Core, schema `orders`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Identity,
    Index,
    MetaData,
    Numeric,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY

from services.order.domain import Order, OrderStatus
from shared.contracts import EVENT_TYPES, Envelope
from shared.messaging.repository import Appender, BatchStatements, Repository
from shared.messaging.tracing import traceparent_in_scope
from shared.messaging.unit_of_work import UnitOfWork

metadata = MetaData()

orders = Table(
    "orders",
    metadata,
    Column("order_id", Uuid, primary_key=True),
    Column("status", Text, nullable=False),
    Column("facts", ARRAY(Text), nullable=False, server_default="{}"),
    Column("customer_id", Text),
    Column("total", Numeric(12, 2)),
    Column("currency", Text),
    Column("reason", Text),
    Column("tracking_number", Text),
    Column("correlation_id", Uuid),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The open orders by age, for their deadlines (created_at + ORDER_SAGA_TIMEOUT_SECONDS) and the
    # count of open sagas: every query by status is for the open ones.
    Index("orders_open_since", "created_at", postgresql_where=text("status = 'open'")),
)

# "Where is order X and how did it get there": every event that moved it, with its time and cause.
order_history = Table(
    "order_history",
    metadata,
    Column("seq", BigInteger, Identity(always=True), primary_key=True),
    Column("order_id", Uuid, nullable=False),
    Column("event_id", Uuid, nullable=False, unique=True),
    Column("event_type", Text, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("source", Text, nullable=False),
    Column("correlation_id", Uuid, nullable=False),
    Column("causation_id", Uuid),
    Column("detail", Text),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The trace the event was handled in: what a deadline fired later continues (one trace per order).
    Column("traceparent", Text),
    Index("order_history_order", "order_id", "seq"),
)


class Orders(Repository[UUID, Order]):
    # Created on an order's first fact, whichever that is, with that fact's correlation id.
    statements = BatchStatements(
        orders, "order_id", created_with={"status": OrderStatus.OPEN.value}, created_from=("correlation_id",)
    )
    saved_columns = ("status", "facts", "customer_id", "total", "currency", "reason", "tracking_number")
    on_save = "updated_at = now()"

    def entity(self, row: Any) -> Order:
        return Order(
            row.order_id,
            OrderStatus(row.status),
            frozenset(EVENT_TYPES[name] for name in row.facts),
            row.customer_id,
            row.total,
            row.currency,
            row.reason,
            row.tracking_number,
        )

    def key_of(self, order: Order) -> UUID:
        return order.order_id

    def row(self, order: Order) -> dict[str, Any]:
        return {
            "order_id": order.order_id,
            "status": order.status.value,
            "facts": sorted(fact.type_name() for fact in order.facts),
            "customer_id": order.customer_id,
            "total": order.total,
            "currency": order.currency,
            "reason": order.failure,
            "tracking_number": order.tracking_number,
        }

    def overdue(self, timeout: timedelta, limit: int) -> list[tuple[Order, UUID, str | None]]:
        """Open orders first heard of `timeout` ago or longer, each with its correlation id and the
        trace its first fact was handled in; rows another transaction holds (a batch deciding them
        now) are left for the next look."""
        found = self.load_where("status = 'open' AND created_at <= now() - %s", (timeout,), limit)
        if not found:
            return []
        traces = dict(
            self._sql.execute(
                "SELECT DISTINCT ON (order_id) order_id, traceparent FROM order_history "
                "WHERE order_id = ANY(%s) AND traceparent IS NOT NULL ORDER BY order_id, seq",
                ([order.order_id for order, _ in found],),
            ).fetchall()
        )
        return [(order, row.correlation_id, traces.get(order.order_id)) for order, row in found]

    def open_sagas(self) -> tuple[int, float]:
        """How many orders are open, and for how many seconds the oldest has been (0: none)."""
        row = self._sql.execute(
            "SELECT count(*) AS n, coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age "
            "FROM orders WHERE status = 'open'"
        ).fetchone()
        return row.n, float(row.age)

    def get(self, order_id: UUID) -> Order:  # type: ignore[override]
        order = super().get(order_id)
        assert order is not None, "created on first sight"
        return order


class History(Appender[dict[str, Any]]):
    statements = BatchStatements(order_history, "event_id")

    def record(self, order_id: UUID, envelope: Envelope, detail: str) -> None:
        self.append(
            {
                "order_id": order_id,
                "event_id": envelope.event_id,
                "event_type": envelope.event_type,
                "occurred_at": envelope.occurred_at,
                "source": envelope.source,
                "correlation_id": envelope.correlation_id,
                "causation_id": envelope.causation_id,
                "detail": detail,
                "traceparent": traceparent_in_scope(),
            }
        )


class OrderUnitOfWork(UnitOfWork):
    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self.orders = Orders(connection)
        self.history = History(connection)
        self.stores = (self.orders, self.history)
