"""The order's rules, free of any infrastructure.

The order service orchestrates nothing: it listens to the facts the other services publish and decides
when an order has ended. Facts may arrive in any order (they come from four topics), so the decision
depends only on which facts are known, never on their sequence:
- completed once a shipment was created;
- cancelled once a failure happened and every compensation that failure calls for has happened;
- cancelled when its deadline passes first, naming the fact it was still waiting for (`time_out`).
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
    PaymentCompleted,
    PaymentFailed,
    PaymentRefunded,
    ShipmentCreated,
    ShipmentFailed,
    StockReleased,
    StockReservationFailed,
    StockReserved,
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


# The facts an order that goes well is made of, in the order the saga usually brings them.
STEPS: tuple[type[Event], ...] = (OrderPlaced, PaymentCompleted, StockReserved, ShipmentCreated)


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


def decide(order: Order) -> tuple[Order, OrderCompleted | OrderCancelled | None]:
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


def awaited(order: Order) -> list[type[Event]]:
    """The facts the order still waits for: after a failure, its compensations; else the saga's steps."""
    failures = [f for f in COMPENSATIONS if f in order.facts]
    if failures:
        return sorted(COMPENSATIONS[failures[0]] - order.facts, key=lambda t: t.type_name())
    return [step for step in STEPS if step not in order.facts]


def time_out(order: Order) -> tuple[Order, OrderCancelled | None]:
    """End an order whose deadline passed, if it is still open: cancelled, naming what never came.

    The services that did their part for it hear the cancellation and undo it."""
    if order.status is not OrderStatus.OPEN:
        return order, None
    missing = awaited(order)
    reason = f"timed out waiting for {', '.join(t.type_name() for t in missing) or 'nothing'}"
    if order.failure is not None:
        reason = f"{order.failure}; {reason}"
    return (
        replace(order, status=OrderStatus.CANCELLED, failure=order.failure or reason),
        OrderCancelled(order_id=order.order_id, reason=reason),
    )
