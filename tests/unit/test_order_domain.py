"""The order ends the same way whatever order its facts arrive in."""

import itertools
from decimal import Decimal
from uuid import uuid4

import pytest

from services.order.domain import Order, OrderStatus, decide, learn
from shared.contracts import (
    OrderCancelled,
    OrderCompleted,
    OrderPlaced,
    PaymentCompleted,
    PaymentFailed,
    PaymentRefunded,
    ShipmentCreated,
    ShipmentFailed,
    StockLine,
    StockReleased,
    StockReservationFailed,
    StockReserved,
)

ORDER = uuid4()
PLACED = OrderPlaced.model_validate(
    {
        "order_id": ORDER,
        "customer_id": "C-1",
        "total": Decimal("2.00"),
        "currency": "EUR",
        "items": [{"sku": "A", "quantity": 1, "unit_price": Decimal("2.00")}],
        "shipping_address": {
            "recipient": "R",
            "street": "S",
            "city": "C",
            "postal_code": "1",
            "country": "DE",
        },
    }
)
PAID = PaymentCompleted(
    order_id=ORDER, payment_id=uuid4(), customer_id="C-1", amount=Decimal("2.00"), currency="EUR"
)
REFUNDED = PaymentRefunded(
    order_id=ORDER, payment_id=uuid4(), amount=Decimal("2.00"), currency="EUR", reason="r"
)
RESERVED = StockReserved(order_id=ORDER, lines=(StockLine(sku="A", quantity=1),))
RELEASED = StockReleased(order_id=ORDER, lines=(StockLine(sku="A", quantity=1),), reason="r")

SHIPPED = ShipmentCreated(order_id=ORDER, shipment_id=uuid4(), tracking_number="TRK-1", country="DE")
PAYMENT_FAILED = PaymentFailed(
    order_id=ORDER, customer_id="C-1", amount=Decimal("2.00"), currency="EUR", reason="insufficient funds"
)
STOCK_FAILED = StockReservationFailed(order_id=ORDER, reason="unknown SKU A", sku="A")
SHIPMENT_FAILED = ShipmentFailed(order_id=ORDER, reason="not DE")

PATHS = {
    "completed": ([PLACED, PAID, RESERVED, SHIPPED], OrderCompleted),
    "payment failed": ([PLACED, PAYMENT_FAILED], OrderCancelled),
    "stock failed": ([PLACED, PAID, STOCK_FAILED, REFUNDED], OrderCancelled),
    "shipment failed": ([PLACED, PAID, RESERVED, SHIPMENT_FAILED, RELEASED, REFUNDED], OrderCancelled),
}


def run(facts):
    order, ended = Order(ORDER), []
    for fact in facts:
        order, event = decide(learn(order, fact))
        if event:
            ended.append(event)
    return order, ended


@pytest.mark.parametrize("path", PATHS)
def test_every_arrival_order_ends_the_same_way_exactly_once(path):
    facts, outcome = PATHS[path]
    for permutation in itertools.permutations(facts):
        order, ended = run(permutation)
        assert [type(e) for e in ended] == [outcome], permutation
        assert order.status is (OrderStatus.COMPLETED if outcome is OrderCompleted else OrderStatus.CANCELLED)


def test_cancellation_waits_for_every_compensation_and_names_the_failure():
    facts, _ = PATHS["shipment failed"]
    order, ended = run(facts[:-1])  # refund not heard yet
    assert ended == [] and order.status is OrderStatus.OPEN
    order, ended = run(facts)
    assert ended[0].reason == "ShipmentFailed: not DE"


def test_nothing_ends_before_the_order_itself_is_known():
    facts, _ = PATHS["completed"]
    order, ended = run(facts[1:])
    assert ended == [] and order.status is OrderStatus.OPEN


def test_a_second_order_placed_for_the_same_order_changes_nothing():
    order = learn(Order(ORDER), PLACED)
    other = PLACED.model_copy(update={"customer_id": "C-other", "total": Decimal("99.00")})
    assert learn(order, other) == order
