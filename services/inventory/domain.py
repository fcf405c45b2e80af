"""Inventory's rules, free of any infrastructure.

Stock per SKU is split into `available` and `reserved`; what ships leaves both. So at any time,
available + reserved = what was stocked - what shipped, and neither ever goes below zero.
An order is reserved when both its lines (from OrderPlaced) and its payment (PaymentCompleted) are
known, whichever arrives first; all its lines or none. An order heard cancelled gives back whatever
it held, reserved or shipped (a shipment called off comes back to stock), and is never reserved after.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from uuid import UUID


@dataclass(frozen=True)
class Stock:
    sku: str
    available: int
    reserved: int
    shipped: int = 0


class ReservationState(StrEnum):
    WAITING = "waiting"  # lines or payment not known yet
    RESERVED = "reserved"
    FAILED = "failed"
    RELEASED = "released"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"  # heard cancelled before anything was held: never reserved from then on


@dataclass(frozen=True)
class Reservation:
    """Inventory's view of one order."""

    order_id: UUID
    lines: tuple[tuple[str, int], ...] | None = None  # (sku, quantity), from OrderPlaced
    paid: bool = False
    state: ReservationState = ReservationState.WAITING
    reason: str | None = None
    failed_sku: str | None = None

    @property
    def ready(self) -> bool:
        return self.state is ReservationState.WAITING and self.paid and self.lines is not None


@dataclass(frozen=True)
class Shortage:
    sku: str
    reason: str


def merged_lines(lines: list[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    """One line per SKU, sorted: reservations lock stock rows in this order, so they never deadlock."""
    totals: dict[str, int] = {}
    for sku, quantity in lines:
        totals[sku] = totals.get(sku, 0) + quantity
    return tuple(sorted(totals.items()))


def reserve(
    reservation: Reservation, stock: Mapping[str, Stock]
) -> tuple[Reservation, dict[str, Stock]] | tuple[Reservation, Shortage]:
    """Reserve every line of a ready order, or none: the reservation afterwards, and the changed stock
    (or what was short)."""
    assert reservation.ready and reservation.lines is not None
    for sku, quantity in reservation.lines:
        item = stock.get(sku)
        if item is None:
            return _failed(reservation, Shortage(sku, f"unknown SKU {sku}"))
        if item.available < quantity:
            return _failed(
                reservation, Shortage(sku, f"insufficient stock of {sku}: {item.available} < {quantity}")
            )
    changed = {
        sku: replace(stock[sku], available=stock[sku].available - q, reserved=stock[sku].reserved + q)
        for sku, q in reservation.lines
    }
    return replace(reservation, state=ReservationState.RESERVED), changed


def _failed(reservation: Reservation, shortage: Shortage) -> tuple[Reservation, Shortage]:
    return replace(
        reservation, state=ReservationState.FAILED, reason=shortage.reason, failed_sku=shortage.sku
    ), shortage


def release(
    reservation: Reservation, stock: Mapping[str, Stock], reason: str
) -> tuple[Reservation, dict[str, Stock]]:
    """Give a reservation back to stock, exactly."""
    assert reservation.state is ReservationState.RESERVED and reservation.lines is not None
    changed = {
        sku: replace(stock[sku], available=stock[sku].available + q, reserved=stock[sku].reserved - q)
        for sku, q in reservation.lines
    }
    return replace(reservation, state=ReservationState.RELEASED, reason=reason), changed


def ship(reservation: Reservation, stock: Mapping[str, Stock]) -> tuple[Reservation, dict[str, Stock]]:
    """The reserved units left the warehouse."""
    assert reservation.state is ReservationState.RESERVED and reservation.lines is not None
    changed = {
        sku: replace(stock[sku], reserved=stock[sku].reserved - q, shipped=stock[sku].shipped + q)
        for sku, q in reservation.lines
    }
    return replace(reservation, state=ReservationState.SHIPPED), changed


def cancel(
    reservation: Reservation, stock: Mapping[str, Stock], reason: str
) -> tuple[Reservation, dict[str, Stock]]:
    """The order was cancelled: give back what it holds, reserved or shipped, and hold nothing for it
    again. The changed stock is empty where nothing was held."""
    if reservation.state is ReservationState.RESERVED:
        return release(reservation, stock, reason)
    if reservation.state is ReservationState.SHIPPED:
        assert reservation.lines is not None
        changed = {
            sku: replace(stock[sku], available=stock[sku].available + q, shipped=stock[sku].shipped - q)
            for sku, q in reservation.lines
        }
        return replace(reservation, state=ReservationState.RELEASED, reason=reason), changed
    if reservation.state is ReservationState.WAITING:
        return replace(reservation, state=ReservationState.CANCELLED, reason=reason), {}
    return reservation, {}  # failed or released already: nothing is held
