"""Shipping's tables and the unit of work its handlers get (SQLAlchemy Core, schema `shipping`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    MetaData,
    Table,
    Text,
    Uuid,
    func,
)

from services.shipping.domain import Consignment, ShippingState
from shared.messaging.driver import cursor
from shared.messaging.repository import Appender, BatchStatements, Repository
from shared.messaging.unit_of_work import UnitOfWork

metadata = MetaData()

served_countries = Table("served_countries", metadata, Column("country", Text, primary_key=True))

consignments = Table(
    "consignments",
    metadata,
    Column("order_id", Uuid, primary_key=True),
    Column("country", Text),
    Column("reserved", Boolean, nullable=False, server_default="false"),
    Column("state", Text, nullable=False),
    Column("reason", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

shipments = Table(
    "shipments",
    metadata,
    Column("shipment_id", Uuid, primary_key=True),
    Column("order_id", Uuid, nullable=False, unique=True),  # one shipment per order, ever
    Column("tracking_number", Text, nullable=False, unique=True),
    Column("country", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


class Countries:
    """The countries shipping serves: a small table, read whole once per batch when anyone asks."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._wanted = False
        self._served: frozenset[str] | None = None

    def want(self, _keys: object = ()) -> None:
        self._wanted = True

    def load(self) -> None:
        if self._wanted and self._served is None:
            self._served = frozenset(
                r[0] for r in cursor(self._conn).execute("SELECT country FROM served_countries").fetchall()
            )

    def flush(self) -> None:
        pass

    def served(self) -> frozenset[str]:
        if self._served is None:
            self._wanted = True
            self.load()
        assert self._served is not None
        return self._served


class Shipments(Appender[dict[str, Any]]):
    statements = BatchStatements(shipments, "shipment_id")
    # Only a second shipment of the same order is absorbed; any other conflict (a tracking number
    # taken) is an error, never a shipment silently not recorded.
    on_conflict = "ON CONFLICT (order_id) DO NOTHING"


class Consignments(Repository[UUID, Consignment]):
    # Created on an order's first fact, whichever that is; read with its shipment, if any.
    statements = BatchStatements(
        consignments,
        "order_id",
        created_with={"state": ShippingState.WAITING.value},
        select=(
            "SELECT c.order_id, c.country, c.reserved, c.state, c.reason, s.shipment_id, s.tracking_number "
            "FROM consignments c LEFT JOIN shipments s ON s.order_id = c.order_id "
            "WHERE c.order_id = ANY(%s::UUID[]) ORDER BY c.order_id FOR UPDATE OF c"
        ),
    )
    saved_columns = ("country", "reserved", "state", "reason")
    on_save = "updated_at = now()"

    def __init__(self, connection: Connection, shipments: Shipments) -> None:
        super().__init__(connection)
        self._shipments = shipments

    def entity(self, row: Any) -> Consignment:
        return Consignment(
            row.order_id,
            row.country,
            row.reserved,
            ShippingState(row.state),
            row.shipment_id,
            row.tracking_number,
            row.reason,
        )

    def key_of(self, c: Consignment) -> UUID:
        return c.order_id

    def row(self, c: Consignment) -> dict[str, Any]:
        return {
            "order_id": c.order_id,
            "country": c.country,
            "reserved": c.reserved,
            "state": c.state.value,
            "reason": c.reason,
        }

    def get(self, order_id: UUID) -> Consignment:  # type: ignore[override]
        consignment = super().get(order_id)
        assert consignment is not None, "created on first sight"
        return consignment

    def save(self, c: Consignment) -> None:
        if c.state is ShippingState.CREATED and self.get(c.order_id).state is not ShippingState.CREATED:
            self._shipments.append(
                {
                    "shipment_id": c.shipment_id,
                    "order_id": c.order_id,
                    "tracking_number": c.tracking_number,
                    "country": c.country,
                }
            )
        super().save(c)


class ShippingUnitOfWork(UnitOfWork):
    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self.consignments = Consignments(connection, Shipments(connection))
        self.countries = Countries(connection)
        self.stores = (self.consignments, self.countries, self.consignments._shipments)


def serve_countries(conn: Connection, countries: Iterable[str]) -> None:
    """Seeding: countries shipping serves from now on (those served already stay)."""
    for country in countries:
        conn.exec_driver_sql(
            "INSERT INTO served_countries (country) VALUES (%s) ON CONFLICT DO NOTHING", (country,)
        )
