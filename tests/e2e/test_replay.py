"""The same event delivered again, to every service that hears it, changes nothing."""

from __future__ import annotations

import time

from confluent_kafka import Producer

from shared.messaging.kafka_clients import producer_config
from shared.settings import HEALTH_PORTS
from tests.e2e.support import metric
from tests.waiting import eventually

HEARS_ORDER_PLACED = ("order", "payment", "inventory", "shipping")


def snapshot(schemas, order_id, customer, sku):
    return (
        schemas.rows("order", "SELECT status, facts FROM orders WHERE order_id = %s", order_id),
        schemas.rows("order", "SELECT count(*) FROM order_history WHERE order_id = %s", order_id),
        schemas.rows("payment", "SELECT balance FROM customers WHERE customer_id = %s", customer),
        schemas.rows("payment", "SELECT status, amount FROM payments WHERE order_id = %s", order_id),
        schemas.rows("inventory", "SELECT available, reserved, shipped FROM stock WHERE sku = %s", sku),
        schemas.rows("shipping", "SELECT count(*) FROM shipments WHERE order_id = %s", order_id),
    )


def test_a_duplicate_order_placed_after_the_saga_ended_changes_nothing(
    settings, storefront, tap, schemas, customer, sku
):
    order, published = storefront.place(customer, [(sku, 1, "3.00")])
    tap.wait_for(order.order_id, "OrderCompleted", "StockShipped")
    # The order service records StockShipped in the order's history on its own time: let it settle too.
    eventually(
        lambda: schemas.one(
            "order",
            "SELECT count(*) AS n FROM order_history WHERE order_id = %s AND event_type = 'StockShipped'",
            order.order_id,
        ),
        {"n": 1},
    )
    before = snapshot(schemas, order.order_id, customer, sku)
    skipped = {
        s: metric(HEALTH_PORTS[s], "shop_duplicates_skipped_total", {"group": s}) for s in HEARS_ORDER_PLACED
    }

    # Redeliver the very same record (same event id), as a producer retry or a relay restart would.
    message = published.message
    producer = Producer(producer_config(settings.kafka_client("admin")))
    producer.produce(
        message.topic, value=message.payload, key=message.key, headers=list(message.headers.items())
    )
    assert producer.flush(30) == 0

    deadline = time.monotonic() + 30
    for service in HEARS_ORDER_PLACED:
        while (
            metric(HEALTH_PORTS[service], "shop_duplicates_skipped_total", {"group": service})
            <= skipped[service]
        ):
            assert time.monotonic() < deadline, f"{service} never saw the duplicate"
            time.sleep(0.1)

    assert snapshot(schemas, order.order_id, customer, sku) == before
    # The tap reads the topics on its own and may lag the services: wait for it to see the copy too.
    events = tap.wait(order.order_id, lambda es: sum(e["event_type"] == "OrderPlaced" for e in es) == 2)
    assert sum(e["event_type"] != "OrderPlaced" for e in events) == 5, "no new event"
