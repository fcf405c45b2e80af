"""What someone else wrote on the bus can fail a message, never the consumer: each hostile input here is
real (produced to the broker, schemas registered in the registry), and after each the next good
message is handled by the same consumer."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import struct
from uuid import uuid4

import fastavro
import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema
from prometheus_client import REGISTRY
from sqlalchemy import select

from shared.access import REGISTRY_PROVISIONING
from shared.contracts import OrderPlaced, PaymentCompleted, StockLine, StockReserved
from shared.contracts.schemas import avro_schema
from shared.messaging import dead_letters as dlt
from shared.messaging.codec import registry_as, subject_name
from shared.messaging.headers import EVENT_TYPE, as_dict
from shared.messaging.publishing import MessageFactory
from shared.messaging.tables import outbox
from tests.runtime import app
from tests.runtime.app import effects
from tests.runtime.support import drain, order_placed, read_all

# The broker's message.max.bytes (and so every topic's max.message.bytes) is 1,048,588 by default.
NEAR_THE_LIMIT = 1_040_000


@pytest.fixture
def big_producer(kafka_config) -> Producer:
    """A producer that sends what the broker takes, as someone else's client may."""
    return Producer({**kafka_config, "message.max.bytes": 1_048_000})


def send(producer: Producer, topic: str, value: bytes | None, key: bytes = b"k", headers=None) -> None:
    errors = []
    producer.produce(
        topic, value=value, key=key, headers=headers or [], on_delivery=lambda e, _m: e and errors.append(e)
    )
    assert producer.flush(30) == 0 and not errors, errors


def letters_of(kafka_config, topic: str, expected: int) -> dict[str, list]:
    by_kind: dict[str, list] = {}
    for letter in read_all(kafka_config, topic, expected):
        by_kind.setdefault(as_dict(letter.headers())[dlt.ERROR_KIND], []).append(letter)
    return by_kind


def dead_lettered(group: str, kind: str) -> float:
    return REGISTRY.get_sample_value("shop_dead_lettered_total", {"group": group, "kind": kind}) or 0


def good_order_handled(consumer, database, storefront) -> None:
    """The consumer is still there and still works: a good order placed now is handled."""
    event, _ = storefront.place(customer="C-after")
    drain(consumer, until=lambda: database.count(effects, effects.c.order_id == event.order_id) == 1)


def test_a_value_near_the_broker_limit_is_dead_lettered_as_a_stub_and_replayed_from_its_topic(
    consumer_for, database, topics, storefront, unique, kafka_config, big_producer
):
    noise = os.urandom(NEAR_THE_LIMIT)
    send(big_producer, topics.inbound, noise, key=b"noise")
    # A message that fits, refused by the handler, whose headers make its dead letter too large.
    rejected = order_placed("C-reject")
    message = storefront.factory.message(rejected, uuid4(), None)
    headers = [*message.headers.items(), ("x-padding", os.urandom(NEAR_THE_LIMIT - 2_000))]
    send(big_producer, topics.inbound, message.payload, key=message.key.encode(), headers=headers)
    group = f"g-{unique}"
    consumer = consumer_for(group)
    drain(
        consumer,
        until=lambda: (
            dead_lettered(group, "undecodable") == 1 and dead_lettered(group, "handler-rejected") == 1
        ),
    )
    good_order_handled(consumer, database, storefront)

    letters = letters_of(kafka_config, topics.dead_letters, 2)
    [stub] = letters["undecodable"]
    h = as_dict(stub.headers())
    assert stub.value() is None and h[dlt.STUB] == "true"
    assert h[dlt.ORIGINAL_SIZE] == str(NEAR_THE_LIMIT)
    assert h[dlt.ORIGINAL_SHA256] == hashlib.sha256(noise).hexdigest()
    assert h[dlt.ORIGINAL_TOPIC] == topics.inbound and h[dlt.CONSUMER_GROUP] == group

    [stub] = letters["handler-rejected"]
    h = as_dict(stub.headers())
    assert stub.value() is None and h[dlt.STUB] == "true"
    assert h["event_type"] == "OrderPlaced", "the original's small headers fit in the stub"
    assert h[dlt.HEADERS_DROPPED] == "1", "the padding did not"

    # The cause is fixed; the stub is replayed from the original topic, which still has the body.
    with pytest.raises(ValueError, match="original topic"):
        dlt.replay_of(stub)
    originals = {(m.partition(), m.offset()): m for m in read_all(kafka_config, topics.inbound, 3)}
    original = originals[(int(h[dlt.ORIGINAL_PARTITION]), int(h[dlt.ORIGINAL_OFFSET]))]
    other = next(m for key, m in originals.items() if m.value() != original.value())
    with pytest.raises(ValueError, match="sha256"):
        dlt.replay_of(stub, other)
    replay = dlt.replay_of(stub, original)
    assert replay.value == message.payload and (dlt.REPLAY_GROUP, group) in replay.headers
    app.REJECTED_CUSTOMERS.discard("C-reject")
    try:
        send(big_producer, replay.topic, replay.value, key=replay.key, headers=replay.headers)
        drain(consumer, until=lambda: database.count(effects, effects.c.order_id == rejected.order_id) == 1)
    finally:
        app.REJECTED_CUSTOMERS.add("C-reject")


def test_a_garbage_or_oversized_traceparent_starts_a_new_trace_and_never_reaches_the_outbox(
    consumer_for, database, topics, storefront, unique, big_producer, tracer_provider, caplog
):
    placed = []
    for traceparent in (
        os.urandom(55),
        b"\xff\xfe" * 165_000,
        b"00-" + b"0" * 32 + b"-" + b"1" * 16 + b"-01",
    ):
        event = storefront.factory.message(order_placed(), uuid4(), None)
        headers = [(k, v) for k, v in event.headers.items() if k != "traceparent"]
        send(
            big_producer,
            topics.inbound,
            event.payload,
            event.key.encode(),
            [*headers, ("traceparent", traceparent)],
        )
        placed.append(event)
    consumer = consumer_for(f"g-{unique}")
    with caplog.at_level(logging.WARNING, logger="shop.consumer"):
        drain(consumer, until=lambda: database.count(effects) == len(placed))
    assert (
        sum(
            "a new trace starts: traceparent is not a W3C traceparent" in r.getMessage()
            for r in caplog.records
        )
        == 3
    )

    with database.reader.connect() as conn:
        rows = conn.execute(select(outbox.c.headers)).scalars().all()
    assert len(rows) == len(placed)
    for headers in rows:
        traceparent = headers["traceparent"]
        assert len(traceparent) == 55 and traceparent[3:35] != "0" * 32, "a trace of its own, well-formed"
        assert sum(len(k) + len(v) for k, v in headers.items()) < 2_000, "nothing of the garbage was copied"
    good_order_handled(consumer, database, storefront)


def wire(schema_id: int, schema, record: dict) -> bytes:
    buf = io.BytesIO()
    buf.write(struct.pack(">bI", 0, schema_id))
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), record)
    return buf.getvalue()


def test_writer_schemas_that_are_not_our_contracts_are_poison_of_their_own(
    consumer_for, settings, database, topics, storefront, codec, unique, kafka_config
):
    registry = registry_as(settings, REGISTRY_PROVISIONING)
    message = storefront.factory.message(order_placed(), uuid4(), None)
    envelope, event = codec.decode(message.payload)
    record = {"envelope": envelope.model_dump(), **event.model_dump()}
    # OrderPlaced's own schema plus an optional field, registered under a subject of someone else's.
    variant = avro_schema(OrderPlaced)
    variant = {**variant, "fields": [*variant["fields"], {"name": "x", "type": "int", "default": 0}]}
    subjects = {
        "foreign-subject": f"{unique}-shop.order.OrderPlaced",
        "protobuf": f"{unique}-proto",
        "primitive": f"{unique}-primitive",
        "deep": f"{unique}-deep",
    }
    ids = {
        "foreign-subject": registry.register_schema(
            subjects["foreign-subject"], Schema(json.dumps(variant), "AVRO")
        ),
        "protobuf": registry.register_schema(
            subjects["protobuf"],
            Schema('syntax = "proto3"; message OrderPlaced { string order_id = 1; }', "PROTOBUF"),
        ),
        "primitive": registry.register_schema(subjects["primitive"], Schema('"string"', "AVRO")),
    }
    deep: object = "string"
    for _ in range(100):
        deep = {"type": "array", "items": deep}
    deep_record = {
        "type": "record",
        "name": "Deep",
        "namespace": "shop.order",
        "fields": [{"name": "d", "type": deep}],
    }
    ids["deep"] = registry.register_schema(subjects["deep"], Schema(json.dumps(deep_record), "AVRO"))
    try:
        storefront.send_raw(wire(ids["foreign-subject"], variant, {**record, "x": 1}), key="foreign-subject")
        storefront.send_raw(struct.pack(">bI", 0, ids["protobuf"]) + b"\x00\x0a\x01x", key="protobuf")
        storefront.send_raw(wire(ids["primitive"], "string", "hello"), key="primitive")
        storefront.send_raw(struct.pack(">bI", 0, ids["deep"]) + b"\x00", key="deep")
        group = f"g-{unique}"
        consumer = consumer_for(group)
        drain(
            consumer,
            until=lambda: (
                dead_lettered(group, "foreign-schema") == 3 and dead_lettered(group, "unreadable-schema") == 1
            ),
        )
        good_order_handled(consumer, database, storefront)
    finally:
        for subject in subjects.values():
            registry.delete_subject(subject)
            registry.delete_subject(subject, permanent=True)

    letters = letters_of(kafka_config, topics.dead_letters, 4)
    reasons = {m.key().decode(): as_dict(m.headers())[dlt.ERROR_MESSAGE] for m in letters["foreign-schema"]}
    assert f"not under {subject_name(OrderPlaced)}" in reasons["foreign-subject"]
    assert "PROTOBUF" in reasons["protobuf"]
    assert "not a record" in reasons["primitive"]
    [deep_letter] = letters["unreadable-schema"]
    assert "nests" in as_dict(deep_letter.headers())[dlt.ERROR_MESSAGE]
    assert database.count(effects) == 1, "only the good order had an effect"


def test_an_array_claiming_more_items_than_its_bytes_hold_is_undecodable(
    consumer_for, database, topics, storefront, codec, unique
):
    """The record up to its items, then a count of 2^40 lines and a few bytes: a quick EOF, not a hang."""
    schema = avro_schema(OrderPlaced)
    prefix_fields = schema["fields"][: [f["name"] for f in schema["fields"]].index("items")]
    message = storefront.factory.message(order_placed(), uuid4(), None)
    envelope, event = codec.decode(message.payload)
    record = {"envelope": envelope.model_dump(), **event.model_dump()}
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema({**schema, "fields": prefix_fields}), record)
    count = 2**40
    zigzag, varint = count << 1, bytearray()
    while zigzag > 0x7F:
        varint.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    varint.append(zigzag)
    storefront.send_raw(
        struct.pack(">bI", 0, codec.registered(OrderPlaced).schema_id)
        + buf.getvalue()
        + bytes(varint)
        + b"\x02"
    )
    group = f"g-{unique}"
    consumer = consumer_for(group)
    drain(consumer, until=lambda: dead_lettered(group, "undecodable") == 1)
    good_order_handled(consumer, database, storefront)


def test_routing_headers_are_checked_before_use_and_skips_are_counted(
    consumer_for, database, topics, storefront, codec, unique, kafka_config
):
    group = f"g-{unique}"
    # A known type this group does not handle, said by the header: skipped unread, counted.
    storefront.send_raw(
        b"\x00\x00\x00\x00\x01 never decoded", key="skip", headers={EVENT_TYPE: "PaymentFailed"}
    )
    # A header naming no known type; one contradicting the record; a replay header that is no group id.
    good = storefront.factory.message(order_placed(), uuid4(), None)
    storefront.send_raw(good.payload, key="unknown-type", headers={**good.headers, EVENT_TYPE: "DropTables"})
    storefront.send_raw(
        good.payload, key="contradicts", headers={**good.headers, EVENT_TYPE: "PaymentCompleted"}
    )
    storefront.send_raw(
        good.payload, key="bad-replay", headers=[*good.headers.items(), (dlt.REPLAY_GROUP, b"\xff\x00")]
    )
    # A well-formed event on a topic where its type does not belong.
    payment = storefront.factory.message(
        PaymentCompleted(
            order_id=uuid4(), payment_id=uuid4(), customer_id="C-1", amount="1.00", currency="EUR"
        ),
        uuid4(),
        None,
    )
    headers = {k: v for k, v in payment.headers.items() if k != EVENT_TYPE}
    storefront.send_raw(payment.payload, key="misrouted", headers=headers)
    consumer = consumer_for(group, handlers={OrderPlaced: app.charge, PaymentCompleted: app.record_payment})
    drain(
        consumer,
        until=lambda: dead_lettered(group, "invalid-header") == 3 and dead_lettered(group, "misrouted") == 1,
    )
    good_order_handled(consumer, database, storefront)
    skipped = REGISTRY.get_sample_value(
        "shop_messages_skipped_total",
        {"group": group, "event_type": "PaymentFailed", "reason": "not-handled"},
    )
    assert skipped == 1
    letters = letters_of(kafka_config, topics.dead_letters, 4)
    reasons = {m.key().decode(): as_dict(m.headers())[dlt.ERROR_MESSAGE] for m in letters["invalid-header"]}
    assert "names no known event type" in reasons["unknown-type"]
    assert "says PaymentCompleted, the record is OrderPlaced" in reasons["contradicts"]
    assert "not a consumer group id" in reasons["bad-replay"]
    [misrouted] = letters["misrouted"]
    assert (
        f"belongs on {topics.outbound}, not on {topics.inbound}"
        in as_dict(misrouted.headers())[dlt.ERROR_MESSAGE]
    )


def reserve_too_much(event: OrderPlaced, uow, envelope) -> list[StockReserved]:
    """A handler deciding an event larger than any broker takes."""
    line = StockLine(sku="SKU-" + "X" * 36, quantity=1)
    return [StockReserved(order_id=event.order_id, lines=[line] * 40_000)]


def test_an_event_too_large_to_publish_fails_the_incoming_message_not_the_relay(
    consumer_for, database, topics, storefront, codec, unique, kafka_config
):
    codec.register([StockReserved])
    group = f"g-{unique}"
    storefront.place(customer="C-big")
    consumer = consumer_for(group, handlers={OrderPlaced: reserve_too_much})
    drain(consumer, until=lambda: dead_lettered(group, "oversized-event") == 1)
    assert database.count(outbox) == 0, "nothing of it was written to the outbox"
    [letter] = letters_of(kafka_config, topics.dead_letters, 1)["oversized-event"]
    assert "StockReserved" in as_dict(letter.headers())[dlt.ERROR_MESSAGE]
    good_order_handled(consumer_for(f"{group}-2"), database, storefront)


def test_a_source_other_than_the_topics_owner_is_poison(
    consumer_for, database, topics, storefront, codec, unique, kafka_config
):
    group = f"g-{unique}"
    forged = MessageFactory(codec, "mallory", topics.topic_for).message(order_placed(), uuid4(), None)
    storefront.send_raw(forged.payload, key="forged", headers=forged.headers)
    consumer = consumer_for(group, topic_owners={topics.inbound: "storefront"})
    drain(consumer, until=lambda: dead_lettered(group, "foreign-source") == 1)
    good_order_handled(consumer, database, storefront)  # its own source: handled
    [letter] = letters_of(kafka_config, topics.dead_letters, 1)["foreign-source"]
    assert "source 'mallory'" in as_dict(letter.headers())[dlt.ERROR_MESSAGE]


def test_a_replay_header_is_believed_only_on_a_topic_no_one_else_may_write(
    consumer_for, database, topics, storefront, unique
):
    event = order_placed()
    message = storefront.factory.message(event, uuid4(), None)
    storefront.send_raw(
        message.payload, key="replay", headers=[*message.headers.items(), (dlt.REPLAY_GROUP, "other")]
    )

    trusting = consumer_for(f"trusting-{unique}", replayable_topics=frozenset({topics.inbound}))
    drain(trusting, until=lambda: skipped_replays(f"trusting-{unique}") == 1)
    assert database.count(effects, effects.c.order_id == event.order_id) == 0, "skipped unread"

    # Where others may write, the header may be forged to make every group skip a fact: ignored.
    wary = consumer_for(f"wary-{unique}", replayable_topics=frozenset())
    drain(wary, until=lambda: database.count(effects, effects.c.order_id == event.order_id) == 1)
    assert skipped_replays(f"wary-{unique}") == 0


def skipped_replays(group: str) -> float:
    labels = {"group": group, "event_type": "OrderPlaced", "reason": "replay-for-another-group"}
    return REGISTRY.get_sample_value("shop_messages_skipped_total", labels) or 0
