"""Shipping's tables and the unit of work its handlers get (SQLAlchemy Core, schema `shipping`)."""

from __future__ import annotations

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
    bindparam,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import insert

from services.shipping.domain import Consignment, ShippingState
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


# Statements built once, run with parameters: building one per message (and its cache key) costs
# more than running it.
_SERVED = select(served_countries.c.country)
_CREATE = insert(consignments).on_conflict_do_nothing()
_LOCK = (
    select(consignments, shipments.c.shipment_id, shipments.c.tracking_number)
    .outerjoin(shipments, shipments.c.order_id == consignments.c.order_id)
    .where(consignments.c.order_id == bindparam("key"))
    .with_for_update(of=consignments)
)
_SAVE = consignments.update().where(consignments.c.order_id == bindparam("key")).values(updated_at=func.now())
# Only a second shipment of the same order is absorbed; any other conflict (a tracking number taken)
# is an error, never a shipment silently not recorded.
_SHIP = insert(shipments).on_conflict_do_nothing(index_elements=[shipments.c.order_id])


class Countries:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def served(self) -> frozenset[str]:
        return frozenset(self._conn.scalars(_SERVED))

    def serve(self, country: str) -> None:
        self._conn.execute(insert(served_countries).values(country=country).on_conflict_do_nothing())


class Consignments:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def lock(self, order_id: UUID) -> Consignment:
        """The order's consignment, created if new, locked: concurrent handlers of one order take turns."""
        self._conn.execute(_CREATE, {"order_id": order_id, "state": ShippingState.WAITING.value})
        row = self._conn.execute(_LOCK, {"key": order_id}).one()
        return Consignment(
            row.order_id,
            row.country,
            row.reserved,
            ShippingState(row.state),
            row.shipment_id,
            row.tracking_number,
            row.reason,
        )

    def save(self, c: Consignment) -> None:
        self._conn.execute(
            _SAVE,
            {
                "key": c.order_id,
                "country": c.country,
                "reserved": c.reserved,
                "state": c.state.value,
                "reason": c.reason,
            },
        )
        if c.state is ShippingState.CREATED:
            self._conn.execute(
                _SHIP,
                {
                    "shipment_id": c.shipment_id,
                    "order_id": c.order_id,
                    "tracking_number": c.tracking_number,
                    "country": c.country,
                },
            )


class ShippingUnitOfWork(UnitOfWork):
    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self.countries = Countries(connection)
        self.consignments = Consignments(connection)
