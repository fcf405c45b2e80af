"""Inventory's tables and the unit of work its handlers get (SQLAlchemy Core, schema `inventory`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
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
)
from sqlalchemy.dialects.postgresql import JSONB

from services.inventory.domain import Reservation, ReservationState, Stock
from shared.messaging.repository import BatchStatements, Repository
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


class StockLevels(Repository[str, Stock]):
    statements = BatchStatements(stock, "sku")
    saved_columns = ("available", "reserved", "shipped")

    def entity(self, row: Any) -> Stock:
        return Stock(row.sku, row.available, row.reserved, row.shipped)

    def key_of(self, level: Stock) -> str:
        return level.sku

    def row(self, level: Stock) -> dict[str, Any]:
        return {
            "sku": level.sku,
            "available": level.available,
            "reserved": level.reserved,
            "shipped": level.shipped,
        }

    def of(self, skus: Iterable[str]) -> dict[str, Stock]:
        """The stock of these SKUs that are stocked at all (read, and locked, with the batch)."""
        found = {sku: self.get(sku) for sku in skus}
        return {sku: level for sku, level in found.items() if level is not None}

    def save_all(self, changed: Mapping[str, Stock]) -> None:
        for level in changed.values():
            self.save(level)


class Reservations(Repository[UUID, Reservation]):
    # Created on an order's first fact, whichever that is: every handler finds one.
    statements = BatchStatements(
        reservations, "order_id", created_with={"state": ReservationState.WAITING.value}
    )
    saved_columns = ("lines", "paid", "state", "reason", "failed_sku")
    on_save = "updated_at = now()"

    def entity(self, row: Any) -> Reservation:
        lines = None if row.lines is None else tuple((sku, int(q)) for sku, q in row.lines)
        return Reservation(
            row.order_id, lines, row.paid, ReservationState(row.state), row.reason, row.failed_sku
        )

    def key_of(self, r: Reservation) -> UUID:
        return r.order_id

    def row(self, r: Reservation) -> dict[str, Any]:
        return {
            "order_id": r.order_id,
            "lines": None if r.lines is None else [list(line) for line in r.lines],
            "paid": r.paid,
            "state": r.state.value,
            "reason": r.reason,
            "failed_sku": r.failed_sku,
        }

    def get(self, order_id: UUID) -> Reservation:  # type: ignore[override]
        reservation = super().get(order_id)
        assert reservation is not None, "created on first sight"
        return reservation


class InventoryUnitOfWork(UnitOfWork):
    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self.reservations = Reservations(connection)
        self.stock = StockLevels(connection)
        self.stores = (self.reservations, self.stock)  # stock after: its keys come from reservations


def add_stock(conn: Connection, levels: Mapping[str, int]) -> None:
    """Seeding: SKUs not stocked yet. One that is keeps its stock: resetting it would make units
    appear from nowhere (and break `available + reserved + shipped == seeded`)."""
    StockLevels(conn).insert_now(
        (Stock(sku, available, 0) for sku, available in levels.items()), "ON CONFLICT (sku) DO NOTHING"
    )
