"""The events the services exchange: typed models checked against their Avro schemas in schemas/."""

from shared.contracts.envelope import Envelope
from shared.contracts.event import Event
from shared.contracts.inventory import (
    StockLine,
    StockReleased,
    StockReservationFailed,
    StockReserved,
    StockShipped,
)
from shared.contracts.order import Address, OrderCancelled, OrderCompleted, OrderLine, OrderPlaced
from shared.contracts.payment import PaymentCompleted, PaymentFailed, PaymentRefunded
from shared.contracts.shipping import ShipmentCancelled, ShipmentCreated, ShipmentFailed

EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (
        OrderPlaced, OrderCompleted, OrderCancelled,
        PaymentCompleted, PaymentFailed, PaymentRefunded,
        StockReserved, StockReservationFailed, StockReleased, StockShipped,
        ShipmentCreated, ShipmentFailed, ShipmentCancelled,
    )
}  # fmt: skip

__all__ = [
    "EVENT_TYPES",
    "Address",
    "Envelope",
    "Event",
    "OrderCancelled",
    "OrderCompleted",
    "OrderLine",
    "OrderPlaced",
    "PaymentCompleted",
    "PaymentFailed",
    "PaymentRefunded",
    "ShipmentCancelled",
    "ShipmentCreated",
    "ShipmentFailed",
    "StockLine",
    "StockReleased",
    "StockReservationFailed",
    "StockReserved",
    "StockShipped",
]
