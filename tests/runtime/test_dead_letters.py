"""Each kind of poison message lands in the dead-letter topic with the right headers; the next good
message is handled; a replayed dead letter reaches the group that failed it, and only that group."""

from __future__ import annotations

import io
import json
import struct

import fastavro
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema
from prometheus_client import REGISTRY

from shared.access import REGISTRY_PROVISIONING
from shared.contracts import OrderPlaced
from shared.messaging import dead_letters as dlt
from shared.messaging.codec import registry_as
from shared.messaging.headers import as_dict
from shared.messaging.kafka_clients import producer_config
from tests.runtime import app
from tests.runtime.app import effects
from tests.runtime.support import drain, order_placed, read_all


def dead_lettered(group: str, kind: str = "handler-rejected") -> float:
    return REGISTRY.get_sample_value("shop_dead_lettered_total", {"group": group, "kind": kind}) or 0


POISON_KINDS = (
    "undecodable", "unknown-schema", "invalid-record", "unknown-event-type", "handler-rejected",
    "retries-exhausted",
)  # fmt: skip


def wire(schema_id: int, parsed_schema, record: dict) -> bytes:
    buf = io.BytesIO()
    buf.write(struct.pack(">bI", 0, schema_id))
    fastavro.schemaless_writer(buf, parsed_schema, record)
    return buf.getvalue()


def test_every_kind_of_poison_is_dead_lettered_and_the_consumer_carries_on(
    consumer_for, settings, database, topics, codec, storefront, unique, kafka_config
):
    registry = registry_as(settings, REGISTRY_PROVISIONING)
    registered = codec.registered(OrderPlaced)

    # 1. bytes that are not Avro in Confluent's wire format
    storefront.send_raw(b"this is not avro", key="undecodable")
    # 2. a schema id the registry never issued
    storefront.send_raw(struct.pack(">bI", 0, 987_654_321) + b"\x02", key="unknown-schema")
    # 3. a record that decodes but breaks the contract (total is not the sum of the lines)
    valid = storefront.factory.message(order_placed(), app.uuid5(app.NAMESPACE_URL, unique), None)
    envelope, event = codec.decode(valid.payload)
    record = {"envelope": envelope.model_dump(), **event.model_dump(), "total": event.total + 1}
    storefront.send_raw(wire(registered.schema_id, registered.parsed, record), key="invalid-record")
    # 4. a record of a type this system does not know
    stranger = {
        "type": "record",
        "name": "Stranger",
        "namespace": "shop.test",
        "doc": "x",
        "fields": [{"name": "x", "type": "string", "doc": "x"}],
    }
    subject = f"{topics.inbound}-shop.test.Stranger"
    stranger_id = registry.register_schema(subject, Schema(json.dumps(stranger), "AVRO"))
    storefront.send_raw(
        wire(stranger_id, fastavro.parse_schema(stranger), {"x": "y"}), key="unknown-event-type"
    )
    # 5. the handler refuses it; 6. the handler fails every time
    storefront.place(customer="C-reject")
    storefront.place(customer="C-flaky")
    # ... and then a good one.
    good_event, _ = storefront.place(customer="C-good")

    try:
        consumer = consumer_for(
            f"g-{unique}",
            max_attempts=3,
        )
        # The poison sits on other partitions than the good message: wait for both, not either.
        drain(
            consumer,
            until=lambda: (
                database.count(effects) == 1
                and sum(dead_lettered(f"g-{unique}", k) for k in POISON_KINDS) == len(POISON_KINDS)
            ),
        )
    finally:
        registry.delete_subject(subject)
        registry.delete_subject(subject, permanent=True)

    assert database.count(effects, effects.c.order_id == good_event.order_id) == 1

    originals = {(m.partition(), m.offset()): m for m in read_all(kafka_config, topics.inbound, 7)}
    letters = read_all(kafka_config, topics.dead_letters, 6)
    by_kind = {as_dict(m.headers())[dlt.ERROR_KIND]: m for m in letters}
    assert set(by_kind) == set(POISON_KINDS)
    assert len(letters) == len(POISON_KINDS)

    for kind, letter in by_kind.items():
        h = as_dict(letter.headers())
        assert h[dlt.ORIGINAL_TOPIC] == topics.inbound
        original = originals[(int(h[dlt.ORIGINAL_PARTITION]), int(h[dlt.ORIGINAL_OFFSET]))]
        assert letter.value() == original.value(), f"{kind}: the dead letter carries the original bytes"
        assert letter.key() == original.key()
        assert h[dlt.ORIGINAL_TIMESTAMP] == str(original.timestamp()[1])
        assert h[dlt.CONSUMER_GROUP] == f"g-{unique}"
        if kind == "retries-exhausted":  # the class of what kept failing, not of the verdict
            assert h[dlt.ERROR_CLASS] == "builtins.RuntimeError"
        else:
            assert h[dlt.ERROR_CLASS].startswith("shared.messaging.errors.")
        assert h[dlt.ERROR_MESSAGE]
    assert as_dict(by_kind["retries-exhausted"].headers())[dlt.ATTEMPTS] == "3"
    assert "total" in as_dict(by_kind["invalid-record"].headers())[dlt.ERROR_MESSAGE]
    assert "987654321" in as_dict(by_kind["unknown-schema"].headers())[dlt.ERROR_MESSAGE]


def test_a_replayed_dead_letter_reaches_only_the_group_that_failed_it(
    consumer_for, database, topics, storefront, unique, kafka_config
):
    rejected, _ = storefront.place(customer="C-reject")
    failing = consumer_for(f"failing-{unique}")
    other = consumer_for(f"other-{unique}")
    # The other group handles the order the first time (its own effect), the failing group dead-letters it.
    app.REJECTED_CUSTOMERS.discard("C-reject")
    drain(other, until=lambda: database.count(effects) == 1)
    app.REJECTED_CUSTOMERS.add("C-reject")
    drain(failing, until=lambda: dead_lettered(f"failing-{unique}") == 1)

    # The cause is fixed; the operator replays the dead letter.
    app.REJECTED_CUSTOMERS.discard("C-reject")
    try:
        [letter] = read_all(kafka_config, topics.dead_letters, 1)
        replay = dlt.replay_of(letter)
        producer = Producer(producer_config(kafka_config))
        producer.produce(replay.topic, value=replay.value, key=replay.key, headers=replay.headers)
        assert producer.flush(30) == 0

        drain(failing, until=lambda: database.count(effects) == 2)
        drain(other, until=lambda: True, then_polls=10)
    finally:
        app.REJECTED_CUSTOMERS.add("C-reject")

    # One effect per group: the replay went to the failing group only, and nothing new was dead-lettered.
    assert database.count(effects, effects.c.order_id == rejected.order_id) == 2
    assert len(read_all(kafka_config, topics.dead_letters, 1)) == 1
    assert dead_lettered(f"failing-{unique}") == 1 and dead_lettered(f"other-{unique}") == 0
