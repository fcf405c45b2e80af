"""The saga's deadline against the running services: an order whose saga cannot go on is cancelled
when ORDER_SAGA_TIMEOUT_SECONDS have passed since its first fact, within five seconds of it, naming
what it waited for; and its OrderPlaced, arriving after that, charges, reserves and ships nothing.
Until then `shopctl order stuck`, `shopctl status` and the order service's metrics show it open."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import uuid4

import httpx
import pytest

from shared.contracts import PaymentCompleted
from shared.messaging.publisher import EventPublisher
from shared.settings import HEALTH_PORTS
from tests.e2e.support import order_placed
from tests.e2e.test_cli import shopctl
from tests.waiting import eventually


@pytest.fixture
def operator(services, settings, tracer_provider):
    # Publishing in payment's name (the operator may, as for a repair): the first fact of an order
    # whose OrderPlaced has not come, so that the saga cannot go on before the deadline.
    return EventPublisher(settings, None, [PaymentCompleted], "operator")


def test_an_order_whose_saga_cannot_go_on_is_cancelled_at_its_deadline_and_its_late_facts_hold_nothing(
    operator, storefront, tap, schemas, settings, customer, sku
):
    order = order_placed(customer, [(sku, 2, "5.00")])
    operator.publish(
        PaymentCompleted(
            order_id=order.order_id,
            payment_id=uuid4(),
            customer_id=customer,
            amount=order.total,
            currency="EUR",
        )
    )
    timeout = settings.order_saga_timeout_seconds
    events = tap.wait_for(order.order_id, "OrderCancelled", timeout=timeout + 30)
    [cancelled] = [e for e in events if e["event_type"] == "OrderCancelled"]
    row = schemas.one(
        "order", "SELECT status, reason, created_at FROM orders WHERE order_id = %s", order.order_id
    )
    assert row is not None
    assert row["status"] == "cancelled"
    assert row["reason"] == "timed out waiting for OrderPlaced, StockReserved, ShipmentCreated"
    late = (datetime.fromisoformat(cancelled["occurred_at"]) - row["created_at"]).total_seconds() - timeout
    assert 0 <= late <= 5, f"cancelled {late:.1f} s after the deadline"
    # One trace per order: the cancellation the clock decided continues the trace of its first fact.
    [first] = [e for e in events if e["event_type"] == "PaymentCompleted"]
    assert cancelled["traceparent"].split("-")[1] == first["traceparent"].split("-")[1]

    # Every service hears the cancellation; then the order is placed, too late.
    def heard_cancelled() -> bool:
        inventory = schemas.one(
            "inventory", "SELECT state FROM reservations WHERE order_id = %s", order.order_id
        )
        shipping = schemas.one(
            "shipping", "SELECT state FROM consignments WHERE order_id = %s", order.order_id
        )
        paid = schemas.one(
            "payment", "SELECT 1 AS yes FROM cancelled_orders WHERE order_id = %s", order.order_id
        )
        return bool(inventory and inventory["state"] == "cancelled" and shipping and paid)

    eventually(heard_cancelled, True, timeout=30)
    storefront.publisher.publish(order)
    eventually(
        lambda: schemas.one(
            "shipping", "SELECT country FROM consignments WHERE order_id = %s", order.order_id
        ),
        {"country": "DE"},
        timeout=30,
    )
    assert schemas.one(
        "payment", "SELECT count(*) AS n FROM payments WHERE order_id = %s", order.order_id
    ) == {"n": 0}
    assert schemas.one("inventory", "SELECT available, reserved FROM stock WHERE sku = %s", sku) == {
        "available": 10,
        "reserved": 0,
    }
    assert schemas.one("payment", "SELECT balance FROM customers WHERE customer_id = %s", customer) == {
        "balance": Decimal("100.00")
    }
    assert [e["event_type"] for e in tap.wait_for(order.order_id, "OrderPlaced")] == [
        "PaymentCompleted",
        "OrderCancelled",
        "OrderPlaced",
    ]


def test_an_open_saga_is_listed_by_order_stuck_with_what_it_waits_for_and_counted(operator, tap):
    order_id = uuid4()
    operator.publish(
        PaymentCompleted(
            order_id=order_id, payment_id=uuid4(), customer_id="C-1", amount=Decimal("1.00"), currency="EUR"
        )
    )
    tap.wait_for(order_id, "PaymentCompleted")

    def listed() -> bool:
        out = shopctl("order", "stuck", "--older-than", "0", "--limit", "1000")
        assert out.returncode == 0, out.stderr
        return any(str(order_id) in line for line in out.stdout.splitlines())

    eventually(listed, True, timeout=20)
    out = shopctl("order", "stuck", "--older-than", "0", "--limit", "1000").stdout
    [line] = [line for line in out.splitlines() if str(order_id) in line]
    assert "OrderPlaced, StockReserved, ShipmentCreated" in line
    assert "PaymentCompleted (payment)" in line

    status = shopctl("status", timeout=120)
    [sagas] = [line for line in status.stdout.splitlines() if line.startswith("sagas:")]
    assert " open" in sagas

    def open_sagas() -> float:
        for line in httpx.get(
            f"http://127.0.0.1:{HEALTH_PORTS['order']}/metrics", timeout=5
        ).text.splitlines():
            if line.startswith("shop_sagas_open "):
                return float(line.split()[1])
        return 0.0

    eventually(lambda: open_sagas() >= 1, True, timeout=15)


@pytest.mark.parametrize("args", [["--limit", "0"], ["--older-than", "-1"], ["--older-than", "soon"]])
def test_order_stuck_refuses_bad_input_with_exit_2(args):
    out = shopctl("order", "stuck", *args)
    assert out.returncode == 2, (out.stdout, out.stderr)
