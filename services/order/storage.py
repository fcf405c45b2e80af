"""The order's tables and the unit of work its handlers get (SQLAlchemy Core, schema `orders`)."""

from __future__ import annotations

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
    bindparam,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert

from services.order.domain import Order, OrderStatus
from shared.contracts import Envelope
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
    Index("orders_status", "status"),
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
    Index("order_history_order", "order_id", "seq"),
)


# Statements built once, run with parameters: building one per message (and its cache key) costs
# more than running it.
_CREATE = insert(orders).on_conflict_do_nothing()
_LOCK = select(orders).where(orders.c.order_id == bindparam("key")).with_for_update()
_SAVE = orders.update().where(orders.c.order_id == bindparam("key")).values(updated_at=func.now())
_RECORD = order_history.insert()


class Orders:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def lock(self, order_id: UUID, correlation_id: UUID) -> Order:
        """The order, created on its first fact (whichever that is), locked for this transaction."""
        self._conn.execute(
            _CREATE,
            {"order_id": order_id, "status": OrderStatus.OPEN.value, "correlation_id": correlation_id},
        )
        row = self._conn.execute(_LOCK, {"key": order_id}).one()
        return Order(
            row.order_id,
            OrderStatus(row.status),
            frozenset(row.facts),
            row.customer_id,
            row.total,
            row.currency,
            row.reason,
            row.tracking_number,
        )

    def save(self, order: Order) -> None:
        self._conn.execute(
            _SAVE,
            {
                "key": order.order_id,
                "status": order.status.value,
                "facts": sorted(order.facts),
                "customer_id": order.customer_id,
                "total": order.total,
                "currency": order.currency,
                "reason": order.failure,
                "tracking_number": order.tracking_number,
            },
        )

    def record(self, order_id: UUID, envelope: Envelope, detail: str) -> None:
        self._conn.execute(
            _RECORD,
            {
                "order_id": order_id,
                "event_id": envelope.event_id,
                "event_type": envelope.event_type,
                "occurred_at": envelope.occurred_at,
                "source": envelope.source,
                "correlation_id": envelope.correlation_id,
                "causation_id": envelope.causation_id,
                "detail": detail,
            },
        )


class OrderUnitOfWork(UnitOfWork):
    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self.orders = Orders(connection)
