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


class StockLevels:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def lock(self, skus: Iterable[str]) -> dict[str, Stock]:
        """The stock of these SKUs, locked until the transaction ends, in SKU order (no deadlocks)."""
        rows = self._conn.execute(
            select(stock).where(stock.c.sku.in_(sorted(skus))).order_by(stock.c.sku).with_for_update()
        )
        return {r.sku: Stock(r.sku, r.available, r.reserved, r.shipped) for r in rows}

    def save(self, changed: Mapping[str, Stock]) -> None:
        for item in changed.values():
            self._conn.execute(
                stock.update()
                .where(stock.c.sku == item.sku)
                .values(available=item.available, reserved=item.reserved, shipped=item.shipped)
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
            insert(reservations)
            .values(order_id=order_id, state=ReservationState.WAITING.value)
            .on_conflict_do_nothing()
        )
        row = self._conn.execute(
            select(reservations).where(reservations.c.order_id == order_id).with_for_update()
        ).one()
        lines = None if row.lines is None else tuple((sku, int(q)) for sku, q in row.lines)
        return Reservation(
            row.order_id, lines, row.paid, ReservationState(row.state), row.reason, row.failed_sku
        )

    def save(self, r: Reservation) -> None:
        self._conn.execute(
            reservations.update()
            .where(reservations.c.order_id == r.order_id)
            .values(
                lines=None if r.lines is None else [list(line) for line in r.lines],
                paid=r.paid,
                state=r.state.value,
                reason=r.reason,
                failed_sku=r.failed_sku,
                updated_at=func.now(),
            )
        )


class InventoryUnitOfWork(UnitOfWork):
    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self.stock = StockLevels(connection)
        self.reservations = Reservations(connection)
