"""The choreographed saga end to end: every path, the final state in each service's schema, and the
chain of events (one correlation id; each causation id pointing at an event that caused it)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.payment.domain import Customer
from services.seed import seed_customers
from services.shipping.domain import tracking_number_for
from tests.waiting import eventually

# Which events may have caused each event. Where a service waits for two facts (inventory: lines and
# payment; shipping: address and reservation; order: all of them), the cause is whichever came last.
CAUSES = {
    "OrderPlaced": {None},
    "PaymentCompleted": {"OrderPlaced"},
    "PaymentFailed": {"OrderPlaced"},
    "StockReserved": {"OrderPlaced", "PaymentCompleted"},
    "StockReservationFailed": {"OrderPlaced", "PaymentCompleted"},
    "ShipmentCreated": {"OrderPlaced", "StockReserved"},
    "ShipmentFailed": {"OrderPlaced", "StockReserved"},
    "StockReleased": {"ShipmentFailed", "OrderCancelled"},
    "StockShipped": {"ShipmentCreated"},
    "PaymentRefunded": {"StockReservationFailed", "ShipmentFailed", "OrderCancelled"},
    "ShipmentCancelled": {"OrderCancelled"},
    "OrderCompleted": {"OrderPlaced", "PaymentCompleted", "StockReserved", "ShipmentCreated"},
    "OrderCancelled": {
        "OrderPlaced",
        "PaymentCompleted",
        "PaymentFailed",
        "StockReserved",
        "StockReservationFailed",
        "ShipmentFailed",
        "StockReleased",
        "PaymentRefunded",
    },
}


def assert_chain(tap, order_id, expected_types: list[str]) -> None:
    """The order's events are exactly these, chained by correlation and causation. Waits for all of
    them: the tap reads a topic per owner, and the last event may reach it before an earlier one."""
    events = tap.wait_for(order_id, *expected_types)
    assert sorted(e["event_type"] for e in events) == sorted(expected_types)
    by_id = {e["event_id"]: e for e in events}
    assert len(by_id) == len(events), "no event published twice"
    [placed] = [e for e in events if e["event_type"] == "OrderPlaced"]
    for e in events:
        assert e["correlation_id"] == placed["correlation_id"], e
        cause = by_id.get(e.get("causation_id")) if e.get("causation_id") else None
        assert (cause["event_type"] if cause else None) in CAUSES[e["event_type"]], e
        assert e["topic"] == f"{e['source']}.events" or e["event_type"] == "OrderPlaced"


def test_happy_path_completes_the_order(storefront, tap, schemas, customer, sku):
    order, _ = storefront.place(customer, [(sku, 2, "9.99")])
    # The order service and inventory each hear ShipmentCreated: the one completes the order, the other
    # takes the stock that left out of the warehouse.
    saga = ["OrderPlaced", "PaymentCompleted", "StockReserved", "ShipmentCreated", "OrderCompleted"]
    assert_chain(tap, order.order_id, [*saga, "StockShipped"])
    row = schemas.one(
        "order", "SELECT status, reason, tracking_number FROM orders WHERE order_id = %s", order.order_id
    )
    assert row == {
        "status": "completed",
        "reason": None,
        "tracking_number": tracking_number_for(order.order_id),
    }
    # The order's history holds every fact it heard, StockShipped too, which may come after completion.
    eventually(
        lambda: sorted(
            h["event_type"]
            for h in schemas.rows(
                "order", "SELECT event_type FROM order_history WHERE order_id = %s", order.order_id
            )
        ),
        sorted([*saga[:-1], "StockShipped"]),
    )
    assert schemas.one("payment", "SELECT balance FROM customers WHERE customer_id = %s", customer) == {
        "balance": Decimal("80.02")
    }
    assert schemas.one(
        "payment", "SELECT status, amount FROM payments WHERE order_id = %s", order.order_id
    ) == {"status": "charged", "amount": Decimal("19.98")}
    assert schemas.one("inventory", "SELECT available, reserved, shipped FROM stock WHERE sku = %s", sku) == {
        "available": 8,
        "reserved": 0,
        "shipped": 2,
    }
    assert schemas.one(
        "shipping", "SELECT tracking_number, country FROM shipments WHERE order_id = %s", order.order_id
    ) == {"tracking_number": tracking_number_for(order.order_id), "country": "DE"}


@pytest.mark.parametrize(
    ("balance", "blocked", "reason"),
    [("0.50", False, "insufficient funds"), ("100.00", True, "customer is blocked")],
)
def test_a_failed_payment_cancels_the_order_and_touches_nothing_else(
    storefront, tap, schemas, settings, unique, sku, balance, blocked, reason
):
    customer = f"C-{unique}"
    seed_customers(settings.database_url("payment"), [Customer(customer, Decimal(balance), blocked)])
    order, _ = storefront.place(customer, [(sku, 1, "5.00")])
    assert_chain(tap, order.order_id, ["OrderPlaced", "PaymentFailed", "OrderCancelled"])
    assert schemas.one("order", "SELECT status, reason FROM orders WHERE order_id = %s", order.order_id) == {
        "status": "cancelled",
        "reason": f"PaymentFailed: {reason}",
    }
    assert schemas.one("payment", "SELECT balance FROM customers WHERE customer_id = %s", customer) == {
        "balance": Decimal(balance)
    }
    assert schemas.one("inventory", "SELECT available, reserved FROM stock WHERE sku = %s", sku) == {
        "available": 10,
        "reserved": 0,
    }
    assert schemas.rows("shipping", "SELECT 1 FROM shipments WHERE order_id = %s", order.order_id) == []


def test_a_failed_reservation_refunds_the_payment_and_cancels(storefront, tap, schemas, customer, sku):
    order, _ = storefront.place(customer, [(sku, 2, "10.00"), ("SKU-DOES-NOT-EXIST", 1, "1.00")])
    assert_chain(
        tap,
        order.order_id,
        ["OrderPlaced", "PaymentCompleted", "StockReservationFailed", "PaymentRefunded", "OrderCancelled"],
    )
    assert schemas.one("order", "SELECT status, reason FROM orders WHERE order_id = %s", order.order_id) == {
        "status": "cancelled",
        "reason": "StockReservationFailed: unknown SKU SKU-DOES-NOT-EXIST",
    }
    assert schemas.one("payment", "SELECT balance FROM customers WHERE customer_id = %s", customer) == {
        "balance": Decimal("100.00")
    }
    assert schemas.one("payment", "SELECT status FROM payments WHERE order_id = %s", order.order_id) == {
        "status": "refunded"
    }
    assert schemas.one("inventory", "SELECT available, reserved FROM stock WHERE sku = %s", sku) == {
        "available": 10,
        "reserved": 0,
    }, "all lines or none"


def test_a_failed_shipment_releases_the_stock_refunds_and_cancels(storefront, tap, schemas, customer, sku):
    order, _ = storefront.place(customer, [(sku, 3, "7.00")], country="US")
    assert_chain(
        tap,
        order.order_id,
        [
            "OrderPlaced",
            "PaymentCompleted",
            "StockReserved",
            "ShipmentFailed",
            "StockReleased",
            "PaymentRefunded",
            "OrderCancelled",
        ],
    )
    assert schemas.one("order", "SELECT status, reason FROM orders WHERE order_id = %s", order.order_id) == {
        "status": "cancelled",
        "reason": "ShipmentFailed: we do not ship to US",
    }
    assert schemas.one("payment", "SELECT balance FROM customers WHERE customer_id = %s", customer) == {
        "balance": Decimal("100.00")
    }
    assert schemas.one("inventory", "SELECT available, reserved, shipped FROM stock WHERE sku = %s", sku) == {
        "available": 10,
        "reserved": 0,
        "shipped": 0,
    }
    assert schemas.one("inventory", "SELECT state FROM reservations WHERE order_id = %s", order.order_id) == {
        "state": "released"
    }
    assert schemas.rows("shipping", "SELECT 1 FROM shipments WHERE order_id = %s", order.order_id) == []
