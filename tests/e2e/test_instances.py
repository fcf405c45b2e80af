"""Two instances of one service in one group split the partitions and handle every order exactly once
in effect, across a rebalance in the middle of the run (one joins, later one leaves)."""

from __future__ import annotations

import socket
import threading
import time
from decimal import Decimal

from services.payment.domain import Customer
from services.seed import seed_customers, seed_stock
from shared.settings import HEALTH_PORTS
from tests.e2e.support import ServiceProcess, health


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_second_payment_instance_joins_and_leaves_mid_run(
    settings, storefront, tap, schemas, unique, tmp_path
):
    customer, sku = f"C-{unique}", f"SKU-{unique}"
    seed_customers(settings.database_url("payment"), [Customer(customer, Decimal("1000.00"))])
    seed_stock(settings.database_url("inventory"), {sku: 1000})
    orders = []
    second = None
    split = threading.Event()
    try:
        for i in range(60):
            orders.append(
                storefront.place(customer, [(sku, 1, "1.00")] if i % 10 else [("SKU-NONE", 1, "1.00")])[0]
            )
            if i == 10:
                second = ServiceProcess("payment", free_port(), tmp_path)
            if i == 30 and second is not None:
                second.wait_healthy()
                deadline = time.monotonic() + 60
                while not (
                    health(second.port)["assigned_partitions"]
                    and health(HEALTH_PORTS["payment"])["assigned_partitions"]
                ):
                    assert time.monotonic() < deadline, "the partitions were never split"
                    time.sleep(0.2)
                split.set()
            if i == 45 and second is not None:
                second.stop()  # and a rebalance back to one instance
            time.sleep(0.05)
        for order in orders:
            tap.wait_terminal(order.order_id, timeout=120)
    finally:
        if second is not None:
            second.stop()
    assert split.is_set()

    ids = [o.order_id for o in orders]
    payments = schemas.rows(
        "payment", "SELECT order_id, status, amount FROM payments WHERE order_id = ANY(%s)", ids
    )
    assert len(payments) == len(orders), "every order charged exactly once"
    charged = sum(p["amount"] for p in payments if p["status"] == "charged")
    refunded = [p for p in payments if p["status"] == "refunded"]
    assert len(refunded) == 6  # the orders for an unknown SKU
    assert schemas.one("payment", "SELECT balance FROM customers WHERE customer_id = %s", customer) == {
        "balance": Decimal("1000.00") - charged
    }
    for order in orders:
        refunds = [
            e
            for e in tap.wait_for(order.order_id, "PaymentCompleted")
            if e["event_type"] in ("PaymentCompleted", "PaymentRefunded")
        ]
        assert len({e["event_id"] for e in refunds}) == len(refunds)
        assert len([e for e in refunds if e["event_type"] == "PaymentCompleted"]) == 1
