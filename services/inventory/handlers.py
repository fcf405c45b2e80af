"""What inventory does: learn an order's lines, reserve them once it is paid, release them when shipping
fails or the order is cancelled, and take them out of stock when they ship."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from services.inventory import domain
from services.inventory.domain import Reservation, ReservationState, Shortage
from services.inventory.storage import InventoryUnitOfWork
from shared.contracts import (
    Envelope,
    Event,
    OrderCancelled,
    OrderPlaced,
    PaymentCompleted,
    ShipmentCreated,
    ShipmentFailed,
    StockLine,
    StockReleased,
    StockReservationFailed,
    StockReserved,
    StockShipped,
)


def note_order_lines(
    event: OrderPlaced, uow: InventoryUnitOfWork, envelope: Envelope
) -> list[StockReserved | StockReservationFailed]:
    reservation = uow.reservations.get(event.order_id)
    if reservation.lines is not None:
        return []
    lines = domain.merged_lines([(line.sku, line.quantity) for line in event.items])
    return _reserve_if_ready(replace(reservation, lines=lines), uow)


def reserve_paid_order(
    event: PaymentCompleted, uow: InventoryUnitOfWork, envelope: Envelope
) -> list[StockReserved | StockReservationFailed]:
    reservation = uow.reservations.get(event.order_id)
    if reservation.paid:
        return []
    return _reserve_if_ready(replace(reservation, paid=True), uow)


def _reserve_if_ready(
    reservation: Reservation, uow: InventoryUnitOfWork
) -> list[StockReserved | StockReservationFailed]:
    if not reservation.ready:
        uow.reservations.save(reservation)  # wait for the other half (lines or payment)
        return []
    assert reservation.lines is not None
    stock = uow.stock.of(sku for sku, _ in reservation.lines)
    reservation, outcome = domain.reserve(reservation, stock)
    uow.reservations.save(reservation)
    if isinstance(outcome, Shortage):
        return [StockReservationFailed(order_id=reservation.order_id, reason=outcome.reason, sku=outcome.sku)]
    uow.stock.save_all(outcome)
    return [StockReserved(order_id=reservation.order_id, lines=_stock_lines(reservation))]


def release_reservation(
    event: ShipmentFailed, uow: InventoryUnitOfWork, envelope: Envelope
) -> list[StockReleased]:
    reservation = uow.reservations.get(event.order_id)
    if reservation.state is not ReservationState.RESERVED:
        return []  # nothing held (any more)
    assert reservation.lines is not None
    stock = uow.stock.of(sku for sku, _ in reservation.lines)
    reason = f"shipment failed: {event.reason}"
    reservation, changed = domain.release(reservation, stock, reason)
    uow.stock.save_all(changed)
    uow.reservations.save(reservation)
    return [StockReleased(order_id=event.order_id, lines=_stock_lines(reservation), reason=reason)]


def release_for_cancelled_order(
    event: OrderCancelled, uow: InventoryUnitOfWork, envelope: Envelope
) -> list[StockReleased]:
    reservation = uow.reservations.get(event.order_id)
    held = reservation.state in (ReservationState.RESERVED, ReservationState.SHIPPED)
    stock = uow.stock.of(sku for sku, _ in reservation.lines or ()) if held else {}
    reason = f"order cancelled: {event.reason}"
    reservation, changed = domain.cancel(reservation, stock, reason)
    uow.stock.save_all(changed)
    uow.reservations.save(reservation)
    if not held:
        return []
    return [StockReleased(order_id=event.order_id, lines=_stock_lines(reservation), reason=reason)]


def hand_over_to_shipping(
    event: ShipmentCreated, uow: InventoryUnitOfWork, envelope: Envelope
) -> list[StockShipped]:
    reservation = uow.reservations.get(event.order_id)
    if reservation.state is not ReservationState.RESERVED:
        return []
    assert reservation.lines is not None
    stock = uow.stock.of(sku for sku, _ in reservation.lines)
    reservation, changed = domain.ship(reservation, stock)
    uow.stock.save_all(changed)
    uow.reservations.save(reservation)
    return [
        StockShipped(
            order_id=event.order_id, lines=_stock_lines(reservation), tracking_number=event.tracking_number
        )
    ]


def _stock_lines(reservation: Reservation) -> tuple[StockLine, ...]:
    return tuple(StockLine(sku=sku, quantity=q) for sku, q in reservation.lines or ())


def reservation_and_its_stock(event: Event, uow: InventoryUnitOfWork, envelope: Envelope) -> Iterator[None]:
    """The order's reservation; then the stock of its lines, which any of its facts may move (the
    lines of an OrderPlaced are wanted even before the payment: it may be in the same batch)."""
    uow.reservations.want([event.order_id])
    yield
    if isinstance(event, OrderPlaced):
        uow.stock.want(line.sku for line in event.items)
    else:
        reservation = uow.reservations.get(event.order_id)
        uow.stock.want(sku for sku, _ in reservation.lines or ())


HANDLERS = {
    OrderPlaced: note_order_lines,
    PaymentCompleted: reserve_paid_order,
    ShipmentFailed: release_reservation,
    ShipmentCreated: hand_over_to_shipping,
    OrderCancelled: release_for_cancelled_order,
}
# What each handler reads, prefetched for the whole batch before any of them runs.
NEEDS = dict.fromkeys(HANDLERS, reservation_and_its_stock)
PUBLISHES = [StockReserved, StockReservationFailed, StockReleased, StockShipped]
