"""What shipping does: learn where an order goes, ship it once its stock is reserved, and call the
shipment off when the order is cancelled (never shipping one it heard cancelled)."""

from __future__ import annotations

from dataclasses import replace

from services.shipping import domain
from services.shipping.domain import Consignment, ShippingState
from services.shipping.storage import ShippingUnitOfWork
from shared.contracts import (
    Envelope,
    Event,
    OrderCancelled,
    OrderPlaced,
    ShipmentCancelled,
    ShipmentCreated,
    ShipmentFailed,
    StockReserved,
)


def note_address(
    event: OrderPlaced, uow: ShippingUnitOfWork, envelope: Envelope
) -> list[ShipmentCreated | ShipmentFailed]:
    consignment = uow.consignments.get(event.order_id)
    if consignment.country is not None:
        return []
    return _ship_if_ready(replace(consignment, country=event.shipping_address.country), uow)


def ship_reserved_order(
    event: StockReserved, uow: ShippingUnitOfWork, envelope: Envelope
) -> list[ShipmentCreated | ShipmentFailed]:
    consignment = uow.consignments.get(event.order_id)
    if consignment.reserved:
        return []
    return _ship_if_ready(replace(consignment, reserved=True), uow)


def _ship_if_ready(
    consignment: Consignment, uow: ShippingUnitOfWork
) -> list[ShipmentCreated | ShipmentFailed]:
    if not consignment.ready:
        uow.consignments.save(consignment)  # wait for the other half (address or reservation)
        return []
    consignment = domain.dispatch(consignment, uow.countries.served())
    uow.consignments.save(consignment)
    if consignment.state is ShippingState.FAILED:
        return [ShipmentFailed(order_id=consignment.order_id, reason=consignment.reason or "")]
    assert consignment.shipment_id and consignment.tracking_number and consignment.country
    return [
        ShipmentCreated(
            order_id=consignment.order_id,
            shipment_id=consignment.shipment_id,
            tracking_number=consignment.tracking_number,
            country=consignment.country,
        )
    ]


def cancel_shipment(
    event: OrderCancelled, uow: ShippingUnitOfWork, envelope: Envelope
) -> list[ShipmentCancelled]:
    reason = f"order cancelled: {event.reason}"
    consignment, called_off = domain.call_off(uow.consignments.get(event.order_id), reason)
    uow.consignments.save(consignment)
    if not called_off:
        return []
    assert consignment.shipment_id is not None
    return [ShipmentCancelled(order_id=event.order_id, shipment_id=consignment.shipment_id, reason=reason)]


def consignment_and_countries(event: Event, uow: ShippingUnitOfWork, envelope: Envelope) -> None:
    uow.consignments.want([event.order_id])
    uow.countries.want()


HANDLERS = {OrderPlaced: note_address, StockReserved: ship_reserved_order, OrderCancelled: cancel_shipment}
# What each handler reads, prefetched for the whole batch before any of them runs.
NEEDS = dict.fromkeys(HANDLERS, consignment_and_countries)
PUBLISHES = [ShipmentCreated, ShipmentFailed, ShipmentCancelled]
