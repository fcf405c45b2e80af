"""A mixed run of a few hundred orders, some designed to fail at each step, then the books must balance."""

from __future__ import annotations

import random
import time
from decimal import Decimal

from services.payment.domain import Customer
from services.seed import seed_customers, seed_stock
from tests.e2e.support import dead_letter_counts

ORDERS = 300


def test_after_a_mixed_run_every_order_ended_and_the_books_balance(
    settings, storefront, tap, schemas, unique
):
    rich, broke, blocked = f"C-{unique}-rich", f"C-{unique}-broke", f"C-{unique}-blocked"
    seed_customers(
        settings.database_url("payment"),
        [
            Customer(rich, Decimal("100000.00")),
            Customer(broke, Decimal("1.00")),
            Customer(blocked, Decimal("100000.00"), blocked=True),
        ],
    )
    plenty, scarce = f"SKU-{unique}-plenty", f"SKU-{unique}-scarce"
    seeded = {plenty: 100_000, scarce: 25}
    seed_stock(settings.database_url("inventory"), seeded)
    dead_letters_before = dead_letter_counts(settings)

    rng = random.Random(unique)
    plans = []
    for _ in range(ORDERS):
        roll = rng.random()
        lines = [(plenty, rng.randint(1, 3), "4.99")]
        customer, country = rich, "DE"
        if roll < 0.08:
            customer = broke  # PaymentFailed: insufficient funds
        elif roll < 0.14:
            customer = blocked  # PaymentFailed: blocked
        elif roll < 0.24:
            lines.append((scarce, rng.randint(1, 4), "19.90"))  # fails once the scarce SKU runs out
        elif roll < 0.30:
            lines.append((f"SKU-{unique}-unknown", 1, "1.00"))  # StockReservationFailed
        elif roll < 0.40:
            country = rng.choice(["US", "JP", "BR"])  # ShipmentFailed
        plans.append((customer, lines, country))
    orders = [storefront.place(customer, lines, country)[0] for customer, lines, country in plans]
    for order in orders:
        tap.wait_terminal(order.order_id, timeout=180)

    ids = [o.order_id for o in orders]
    totals = {o.order_id: o.total for o in orders}
    final = {
        r["order_id"]: r["status"]
        for r in schemas.rows("order", "SELECT order_id, status FROM orders WHERE order_id = ANY(%s)", ids)
    }
    # Every order ends completed or cancelled, and some of each kind happened.
    assert set(final) == set(ids)
    assert set(final.values()) == {"completed", "cancelled"}
    completed = {i for i, s in final.items() if s == "completed"}
    reasons = {
        r["reason"].split(":")[0]
        for r in schemas.rows(
            "order", "SELECT reason FROM orders WHERE order_id = ANY(%s) AND status = 'cancelled'", ids
        )
    }
    assert reasons == {"PaymentFailed", "StockReservationFailed", "ShipmentFailed"}

    # Money charged minus refunded equals the total of the completed orders, and the balances agree.
    payments = schemas.rows(
        "payment", "SELECT order_id, status, amount FROM payments WHERE order_id = ANY(%s)", ids
    )
    charged = sum(p["amount"] for p in payments if p["status"] in ("charged", "refunded"))
    refunded = sum(p["amount"] for p in payments if p["status"] == "refunded")
    assert charged - refunded == sum(totals[i] for i in completed)
    assert {p["order_id"] for p in payments if p["status"] == "charged"} == completed
    balances = {
        r["customer_id"]: r["balance"]
        for r in schemas.rows(
            "payment",
            "SELECT customer_id, balance FROM customers WHERE customer_id = ANY(%s)",
            [rich, broke, blocked],
        )
    }
    assert balances == {
        rich: Decimal("100000.00") - (charged - refunded),
        broke: Decimal("1.00"),
        blocked: Decimal("100000.00"),
    }

    # Stock on hand plus reserved equals the seeded stock minus what shipped; nothing stays reserved
    # once inventory has heard of every shipment (it learns of them alongside the order service).
    deadline = time.monotonic() + 60
    while schemas.one(
        "inventory", "SELECT sum(reserved) AS held FROM stock WHERE sku = ANY(%s)", list(seeded)
    ) != {"held": 0}:
        assert time.monotonic() < deadline, "reservations never went out with their shipments"
        time.sleep(0.2)
    for row in schemas.rows("inventory", "SELECT * FROM stock WHERE sku = ANY(%s)", list(seeded)):
        assert row["available"] + row["reserved"] == seeded[row["sku"]] - row["shipped"], row
        assert row["reserved"] == 0, row
    shipped_units = sum(
        q
        for o in orders
        if o.order_id in completed
        for line in o.items
        for q in [line.quantity]
        if line.sku == plenty
    )
    assert schemas.one("inventory", "SELECT shipped FROM stock WHERE sku = %s", plenty) == {
        "shipped": shipped_units
    }

    # One shipment per completed order, none for cancelled ones.
    shipments = schemas.rows("shipping", "SELECT order_id FROM shipments WHERE order_id = ANY(%s)", ids)
    assert sorted(s["order_id"] for s in shipments) == sorted(completed)

    # Nothing was dead-lettered.
    assert dead_letter_counts(settings) == dead_letters_before
