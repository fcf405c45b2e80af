"""Shipping's rules, free of any infrastructure: where we ship, and what a shipment is.

A shipment is attempted once both the address (from OrderPlaced) and the reservation (StockReserved)
are known, whichever arrives first. An order heard cancelled is never shipped, and a shipment already
created for it is called off.
"""

from __future__ import annotations

from base64 import b32encode
from collections.abc import Set
from dataclasses import dataclass, replace
from enum import StrEnum
from uuid import UUID, uuid5

SHIPMENT_NAMESPACE = UUID("0b7f3c2e-9a41-4d8e-8f26-3c5d7e9a1b24")


class ShippingState(StrEnum):
    WAITING = "waiting"
    CREATED = "created"
    FAILED = "failed"
    CANCELLED = "cancelled"  # the order was cancelled: no shipment, or the one created called off


@dataclass(frozen=True)
class Consignment:
    """Shipping's view of one order."""

    order_id: UUID
    country: str | None = None  # from OrderPlaced's address
    reserved: bool = False
    state: ShippingState = ShippingState.WAITING
    shipment_id: UUID | None = None
    tracking_number: str | None = None
    reason: str | None = None

    @property
    def ready(self) -> bool:
        return self.state is ShippingState.WAITING and self.reserved and self.country is not None


def tracking_number_for(order_id: UUID) -> str:
    """From the whole order id, so as unique as the order: any shorter cut may collide (ids of the
    UUIDv7 kind share their first 48 bits within a millisecond)."""
    return "TRK-" + b32encode(order_id.bytes).decode().rstrip("=")


def dispatch(consignment: Consignment, served_countries: Set[str]) -> Consignment:
    """Create the shipment, or fail it when the country is not served."""
    assert consignment.ready and consignment.country is not None
    if consignment.country not in served_countries:
        return replace(
            consignment, state=ShippingState.FAILED, reason=f"we do not ship to {consignment.country}"
        )
    return replace(
        consignment,
        state=ShippingState.CREATED,
        shipment_id=uuid5(SHIPMENT_NAMESPACE, str(consignment.order_id)),
        tracking_number=tracking_number_for(consignment.order_id),
    )


def call_off(consignment: Consignment, reason: str) -> tuple[Consignment, bool]:
    """The order was cancelled: ship nothing for it from now on. The consignment afterwards, and
    whether a created shipment was called off by it."""
    if consignment.state in (ShippingState.WAITING, ShippingState.CREATED):
        cancelled = replace(consignment, state=ShippingState.CANCELLED, reason=reason)
        return cancelled, consignment.state is ShippingState.CREATED
    return consignment, False  # failed or cancelled already: nothing to call off
