"""The saga's deadline in the order's rules: what a timed-out order names as missing, at every step."""

from __future__ import annotations

from uuid import uuid4

import pytest

from services.order.domain import Order, OrderStatus, awaited, time_out
from shared.contracts import (
    Event,
    OrderCancelled,
    OrderPlaced,
    PaymentCompleted,
    PaymentRefunded,
    ShipmentCreated,
    ShipmentFailed,
    StockReleased,
    StockReservationFailed,
    StockReserved,
)


def order(*facts: type[Event], failure: str | None = None) -> Order:
    return Order(uuid4(), facts=frozenset(facts), failure=failure)


@pytest.mark.parametrize(
    ("facts", "waited_for"),
    [
        ((), "OrderPlaced, PaymentCompleted, StockReserved, ShipmentCreated"),
        ((PaymentCompleted,), "OrderPlaced, StockReserved, ShipmentCreated"),
        ((OrderPlaced,), "PaymentCompleted, StockReserved, ShipmentCreated"),
        ((OrderPlaced, PaymentCompleted), "StockReserved, ShipmentCreated"),
        ((OrderPlaced, PaymentCompleted, StockReserved), "ShipmentCreated"),
    ],
)
def test_a_timed_out_order_names_the_steps_it_waited_for(
    facts: tuple[type[Event], ...], waited_for: str
) -> None:
    ended, event = time_out(order(*facts))
    assert ended.status is OrderStatus.CANCELLED
    assert isinstance(event, OrderCancelled)
    assert event.order_id == ended.order_id
    assert event.reason == f"timed out waiting for {waited_for}"
    assert ended.failure == event.reason  # kept as the order's reason


def test_after_a_failure_it_names_the_compensations_still_missing() -> None:
    stuck = order(OrderPlaced, PaymentCompleted, StockReserved, ShipmentFailed, failure="ShipmentFailed: no")
    assert awaited(stuck) == [PaymentRefunded, StockReleased]
    ended, event = time_out(stuck)
    assert ended.status is OrderStatus.CANCELLED
    assert event is not None
    assert event.reason == "ShipmentFailed: no; timed out waiting for PaymentRefunded, StockReleased"
    half = order(OrderPlaced, StockReservationFailed, failure="StockReservationFailed: short")
    assert awaited(half) == [PaymentRefunded]


@pytest.mark.parametrize("status", [OrderStatus.COMPLETED, OrderStatus.CANCELLED])
def test_an_ended_order_is_left_as_it_is(status: OrderStatus) -> None:
    ended = Order(uuid4(), status=status, facts=frozenset({OrderPlaced, ShipmentCreated}))
    assert time_out(ended) == (ended, None)
