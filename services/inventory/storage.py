"""Inventory's tables and the unit of work its handlers get (SQLAlchemy Core, schema `inventory`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from uuid import UUID

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
    Uuid,
    bindparam,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB, insert

from services.inventory.domain import Reservation, ReservationState, Stock
from shared.messaging.unit_of_work import UnitOfWork

metadata = MetaData()

stock = Table(
    "stock",
    metadata,
    Column("sku", Text, primary_key=True),
    Column("available", Integer, nullable=False),
    Column("reserved", Integer, nullable=False, server_default="0"),
    Column("shipped", Integer, nullable=False, server_default="0"),
    # The database refuses negative stock whatever the code does.
    CheckConstraint("available >= 0", name="stock_available_not_negative"),
    CheckConstraint("reserved >= 0", name="stock_reserved_not_negative"),
    CheckConstraint("shipped >= 0", name="stock_shipped_not_negative"),
)

reservations = Table(
    "reservations",
    metadata,
    Column("order_id", Uuid, primary_key=True),
    Column("lines", JSONB),  # [[sku, quantity], ...] once OrderPlaced was heard
    Column("paid", Boolean, nullable=False, server_default="false"),
    Column("state", Text, nullable=False),
    Column("reason", Text),
    Column("failed_sku", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


# Statements built once, run with parameters: building one per message (and its cache key) costs
# more than running it.
_LOCK_STOCK = (
    select(stock)
    .where(stock.c.sku.in_(bindparam("skus", expanding=True)))
    .order_by(stock.c.sku)
    .with_for_update()
)
_SAVE_STOCK = stock.update().where(stock.c.sku == bindparam("key"))
_CREATE_RESERVATION = insert(reservations).on_conflict_do_nothing()
_LOCK_RESERVATION = select(reservations).where(reservations.c.order_id == bindparam("key")).with_for_update()
_SAVE_RESERVATION = (
    reservations.update().where(reservations.c.order_id == bindparam("key")).values(updated_at=func.now())
)


class StockLevels:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def lock(self, skus: Iterable[str]) -> dict[str, Stock]:
        """The stock of these SKUs, locked until the transaction ends, in SKU order. Within one order
        that rules deadlocks out; two batches of different orders can still deadlock, and are retried."""
        rows = self._conn.execute(_LOCK_STOCK, {"skus": sorted(skus)})
        return {r.sku: Stock(r.sku, r.available, r.reserved, r.shipped) for r in rows}

    def save(self, changed: Mapping[str, Stock]) -> None:
        if changed:
            self._conn.execute(
                _SAVE_STOCK,
                [
                    {"key": s.sku, "available": s.available, "reserved": s.reserved, "shipped": s.shipped}
                    for s in changed.values()
                ],
            )

    def add(self, sku: str, available: int) -> None:
        """Seeding: a SKU not stocked yet. One that is keeps its stock: resetting it would make units
        appear from nowhere (and break `available + reserved + shipped == seeded`)."""
        self._conn.execute(
            insert(stock)
            .values(sku=sku, available=available)
            .on_conflict_do_nothing(index_elements=[stock.c.sku])
        )


class Reservations:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def lock(self, order_id: UUID) -> Reservation:
        """The order's reservation, created if new, locked: concurrent handlers of one order take turns."""
        self._conn.execute(
            _CREATE_RESERVATION, {"order_id": order_id, "state": ReservationState.WAITING.value}
        )
        row = self._conn.execute(_LOCK_RESERVATION, {"key": order_id}).one()
        lines = None if row.lines is None else tuple((sku, int(q)) for sku, q in row.lines)
        return Reservation(
            row.order_id, lines, row.paid, ReservationState(row.state), row.reason, row.failed_sku
        )

    def save(self, r: Reservation) -> None:
        self._conn.execute(
            _SAVE_RESERVATION,
            {
                "key": r.order_id,
                "lines": None if r.lines is None else [list(line) for line in r.lines],
                "paid": r.paid,
                "state": r.state.value,
                "reason": r.reason,
                "failed_sku": r.failed_sku,
            },
        )


class InventoryUnitOfWork(UnitOfWork):
    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self.stock = StockLevels(connection)
        self.reservations = Reservations(connection)
