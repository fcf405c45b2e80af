"""Hostile input on a real topic of the running system, as the issue that asked for this found it: one
message near the broker's limit, one with headers near it, one with a huge non-UTF-8 traceparent.
Every service stays up and healthy, the stubs say what happened, and orders go on completing."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re

from confluent_kafka import Producer

from shared.contracts import OrderPlaced
from shared.messaging import dead_letters as dlt
from shared.messaging.publishing import MessageFactory
from shared.settings import HEALTH_PORTS, PROCESSES
from shared.topics import dead_letter_topic, events_topic
from tests.e2e.support import health, order_placed
from tests.e2e.test_cli import EVENT_TOPICS, high_watermarks, orders_placed_since, shopctl, valid_order
from tests.runtime.support import read_all
from tests.waiting import until

NEAR_THE_LIMIT = 1_040_000  # the broker takes up to 1,048,588 bytes


def hearing(topic: str) -> set[str]:
    """The processes whose handler tables subscribe them to a topic."""
    out = set()
    for process in PROCESSES:
        handlers = importlib.import_module(f"services.{process}.handlers").HANDLERS
        if any(events_topic(t.owner) == topic for t in handlers):
            out.add(process)
    return out


def test_hostile_messages_cost_dead_letters_never_a_service(
    settings, services, storefront, tap, schemas, customer, sku
):
    topic = events_topic(OrderPlaced.owner)  # heard by every group
    groups = hearing(topic)
    letters = [dead_letter_topic(g) for g in groups]
    before = high_watermarks(settings, letters)
    producer = Producer({**settings.kafka_client("admin"), "message.max.bytes": 1_048_000})
    noise = os.urandom(NEAR_THE_LIMIT)
    producer.produce(topic, value=noise, key=b"hostile-value")
    producer.produce(
        topic, value=b"not avro", key=b"hostile-headers", headers=[("x", os.urandom(NEAR_THE_LIMIT))]
    )
    # A good order whose traceparent is 330 KB of bytes that are not UTF-8.
    traced = order_placed(customer, [(sku, 1, "2.00")])
    message = MessageFactory(storefront.publisher.codec, "storefront").message(traced, traced.order_id, None)
    headers = [(k, v) for k, v in message.headers.items() if k != "traceparent"]
    producer.produce(
        topic,
        value=message.payload,
        key=message.key,
        headers=[*headers, ("traceparent", b"\xfe\xff" * 165_000)],
    )
    assert producer.flush(30) == 0

    # Every group (all hear storefront.events) dead-letters the two it cannot read, as stubs, and
    # handles the order.
    until(
        lambda: all(n >= before[t] + 2 for t, n in high_watermarks(settings, letters).items()),
        60,
        "every group's two stubs",
    )
    events = tap.wait_for(traced.order_id, "OrderCompleted", "StockShipped")
    for event in (e for e in events if e["event_type"] != "OrderPlaced"):
        assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}", event["traceparent"]), (
            "a trace of its own"
        )

    for group in groups:
        dlt_topic = dead_letter_topic(group)
        start = before[f"{dlt_topic}[0]"]
        mine = [
            m
            for m in read_all(settings.kafka_client("admin"), dlt_topic, start + 2)
            if m.offset() >= start and m.key() in (b"hostile-value", b"hostile-headers")
        ]
        assert {m.key() for m in mine} == {b"hostile-value", b"hostile-headers"}, group
        for letter in mine:
            h = dict(letter.headers())
            assert h[dlt.STUB] == b"true" and letter.value() is None
            if letter.key() == b"hostile-value":
                assert h[dlt.ORIGINAL_SHA256].decode() == hashlib.sha256(noise).hexdigest()

    # The operator's view of one stub, and its replay: the body comes from the original topic.
    payment_dlt = dead_letter_topic("payment")
    stub_offset = next(
        m.offset()
        for m in read_all(settings.kafka_client("admin"), payment_dlt, 1)
        if m.key() == b"hostile-value" and m.offset() >= before[f"{payment_dlt}[0]"]
    )
    shown = shopctl("dlq", "show", f"{payment_dlt}:{stub_offset}")
    assert shown.returncode == 0, shown.stderr
    assert "a stub" in shown.stdout and f"{NEAR_THE_LIMIT} bytes" in shown.stdout
    assert "payload does not decode" in shown.stdout, "read from the original topic"
    replayed = shopctl("dlq", "replay", f"{payment_dlt}:{stub_offset}")
    assert replayed.returncode == 0, replayed.stderr
    assert "failed again in payment: undecodable" in replayed.stdout

    # And after all that: the next order completes, everyone is healthy, nothing waits in an outbox.
    good, _ = storefront.place(customer, [(sku, 1, "2.00")])
    tap.wait_for(good.order_id, "OrderCompleted", "StockShipped")
    for process in PROCESSES:
        until(lambda p=process: health(HEALTH_PORTS[p])["healthy"], 30, f"{process} healthy")
    for service in ("order", "inventory", "payment", "shipping"):
        until(
            lambda s=service: (
                schemas.one(
                    s, "SELECT count(*) AS n FROM outbox WHERE published_at IS NULL AND parked_at IS NULL"
                )["n"]
                == 0
            ),
            30,
            f"{service}'s outbox drained",
        )


def test_shopctl_publish_refuses_an_event_too_large_for_the_broker_and_publishes_none_of_the_batch(
    settings, services, tmp_path
):
    small = valid_order()
    lines = [{"sku": "SKU-" + "X" * 36, "quantity": 1, "unit_price": "1.00"}] * 30_000
    huge = valid_order(order_id="0c3f9a5e-1d2b-4c3a-8e7f-6a5b4c3d2e1f", items=lines, total="30000.00")
    batch = tmp_path / "orders.jsonl"
    batch.write_text(json.dumps(small) + "\n" + json.dumps(huge) + "\n")
    before = high_watermarks(settings, EVENT_TOPICS)
    result = shopctl("publish", "OrderPlaced", "--file", str(batch))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert (
        f"{batch}:2: OrderPlaced for order" in result.stderr and "the broker takes at most" in result.stderr
    )
    assert orders_placed_since(settings, before) == 0, "not even the small one before it"


def test_a_fact_in_someone_elses_name_is_dead_lettered_by_every_group(
    settings, services, storefront, schemas, customer, sku
):
    """ACLs say who may write a topic, not whom a writer may claim to be: an OrderPlaced on the
    storefront's topic whose envelope says payment sent it is poison to every group that hears it."""
    topic = events_topic(OrderPlaced.owner)
    groups = hearing(topic)
    letters = [dead_letter_topic(g) for g in groups]
    before = high_watermarks(settings, letters)
    forged = order_placed(customer, [(sku, 1, "2.00")])
    message = MessageFactory(storefront.publisher.codec, "payment").message(forged, forged.order_id, None)
    assert message.topic == topic
    producer = Producer(
        settings.kafka_client("admin")
    )  # the admin may write anything: what is claimed is checked
    producer.produce(topic, value=message.payload, key=message.key, headers=list(message.headers.items()))
    assert producer.flush(30) == 0

    until(
        lambda: all(n > before[t] for t, n in high_watermarks(settings, letters).items()),
        60,
        "every group's dead letter",
    )
    for group in groups:
        dlt_topic = dead_letter_topic(group)
        [letter] = [
            m
            for m in read_all(settings.kafka_client("admin"), dlt_topic, before[f"{dlt_topic}[0]"] + 1)
            if m.offset() >= before[f"{dlt_topic}[0]"] and m.key() == message.key.encode()
        ]
        h = {k: v.decode() for k, v in letter.headers()}
        assert h[dlt.ERROR_KIND] == "foreign-source", h
        assert (
            "source 'payment'" in h[dlt.ERROR_MESSAGE] and "only storefront publishes" in h[dlt.ERROR_MESSAGE]
        )
    assert (
        schemas.one("order", "SELECT count(*) AS n FROM orders WHERE order_id = %s", forged.order_id)["n"]
        == 0
    )
