"""The order's rules, free of any infrastructure.

The order service orchestrates nothing: it listens to the facts the other services publish and decides
when an order has ended. Facts may arrive in any order (they come from four topics), so the decision
depends only on which facts are known, never on their sequence:
- completed once a shipment was created;
- cancelled once a failure happened and every compensation that failure calls for has happened.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from shared.contracts import (
    Event,
    OrderCancelled,
    OrderCompleted,
    OrderPlaced,
    PaymentFailed,
    PaymentRefunded,
    ShipmentCreated,
    ShipmentFailed,
    StockReleased,
    StockReservationFailed,
)


class OrderStatus(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


# A failure, and the compensations that must have happened before the order is cancelled.
COMPENSATIONS: dict[type[Event], frozenset[type[Event]]] = {
    PaymentFailed: frozenset(),
    StockReservationFailed: frozenset({PaymentRefunded}),
    ShipmentFailed: frozenset({PaymentRefunded, StockReleased}),
}


@dataclass(frozen=True)
class Order:
    order_id: UUID
    status: OrderStatus = OrderStatus.OPEN
    facts: frozenset[type[Event]] = frozenset()  # the kinds of fact heard about it
    customer_id: str | None = None
    total: Decimal | None = None
    currency: str | None = None
    failure: str | None = None  # the first failure's reason, for the cancellation
    tracking_number: str | None = None

    @property
    def placed(self) -> bool:
        return OrderPlaced in self.facts


def learn(order: Order, fact: Event) -> Order:
    """Add what a fact says about the order."""
    if isinstance(fact, OrderPlaced) and order.placed:
        return order  # placed once: a second OrderPlaced for the order (another event id) changes nothing
    order = replace(order, facts=order.facts | {type(fact)})
    if isinstance(fact, OrderPlaced):
        return replace(order, customer_id=fact.customer_id, total=fact.total, currency=fact.currency)
    if isinstance(fact, ShipmentCreated):
        return replace(order, tracking_number=fact.tracking_number)
    if type(fact) in COMPENSATIONS and order.failure is None:
        return replace(order, failure=f"{fact.type_name()}: {fact.reason}")  # type: ignore[attr-defined]
    return order


def decide(order: Order) -> tuple[Order, Event | None]:
    """End the order if its facts say so, once: the order afterwards, and the event announcing it."""
    if order.status is not OrderStatus.OPEN or not order.placed:
        return order, None
    if ShipmentCreated in order.facts:
        assert order.tracking_number is not None
        return (
            replace(order, status=OrderStatus.COMPLETED),
            OrderCompleted(order_id=order.order_id, tracking_number=order.tracking_number),
        )
    for failure, compensations in COMPENSATIONS.items():
        if failure in order.facts and compensations <= order.facts:
            return (
                replace(order, status=OrderStatus.CANCELLED),
                OrderCancelled(order_id=order.order_id, reason=order.failure or failure.type_name()),
            )
    return order, None
