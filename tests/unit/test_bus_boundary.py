"""The checks at the bus boundary that need no broker: writer schemas refused before reading, and the
routing headers validated before use."""

from __future__ import annotations

import json

import pytest

from shared.contracts import EVENT_TYPES, OrderPlaced
from shared.contracts.schemas import avro_schema
from shared.messaging.errors import ForeignSchema, UnreadableSchema
from shared.messaging.routing import routing_of
from shared.messaging.writer_schemas import parse_writer_schema


def record(*fields: dict) -> dict:
    return {"type": "record", "name": "R", "namespace": "shop.test", "fields": list(fields)}


@pytest.mark.parametrize("event_type", EVENT_TYPES.values(), ids=lambda t: t.__name__)
def test_every_schema_of_ours_is_accepted(event_type):
    assert parse_writer_schema(1, "AVRO", json.dumps(avro_schema(event_type)))["type"] == "record"
    assert parse_writer_schema(1, None, json.dumps(avro_schema(event_type)))  # Confluent's way of saying Avro


@pytest.mark.parametrize(
    "items",
    [
        "null",
        {"type": "record", "name": "Empty", "fields": []},
        {"type": "record", "name": "Nulls", "fields": [{"name": "a", "type": "null"}]},
        {"type": "fixed", "name": "F", "size": 0},
    ],
    ids=["null", "empty-record", "record-of-nulls", "fixed-0"],
)
def test_arrays_of_items_that_take_no_bytes_are_refused(items):
    schema = record({"name": "a", "type": {"type": "array", "items": items}})
    with pytest.raises(UnreadableSchema, match=r"take no bytes at R\.a"):
        parse_writer_schema(7, "AVRO", json.dumps(schema))


def test_arrays_of_items_that_take_bytes_are_fine_and_recursion_is_bounded():
    tree = {
        "type": "record",
        "name": "Node",
        "fields": [{"name": "children", "type": {"type": "array", "items": "Node"}}],
    }
    parse_writer_schema(1, "AVRO", json.dumps(record({"name": "t", "type": tree})))
    parse_writer_schema(
        1, "AVRO", json.dumps(record({"name": "u", "type": {"type": "array", "items": ["null", "int"]}}))
    )


@pytest.mark.parametrize(
    ("schema_type", "text", "error", "says"),
    [
        ("PROTOBUF", 'syntax = "proto3";', ForeignSchema, "PROTOBUF schema, not Avro"),
        ("JSON", '{"type": "object"}', ForeignSchema, "JSON schema, not Avro"),
        ("AVRO", '"string"', ForeignSchema, "'string', not a record"),
        ("AVRO", '["null", "string"]', ForeignSchema, "a union, not a record"),
        ("AVRO", '{"type": "enum", "name": "E", "symbols": ["A"]}', ForeignSchema, "'enum', not a record"),
        ("AVRO", "{not json", ForeignSchema, "not Avro JSON"),
        ("AVRO", "[" * 5000 + "]" * 5000, UnreadableSchema, "nests 5000 levels"),
    ],
)
def test_what_is_not_an_avro_record_is_refused(schema_type, text, error, says):
    with pytest.raises(error, match=says):
        parse_writer_schema(3, schema_type, text)


def test_a_well_formed_traceparent_is_continued_with_a_bounded_tracestate():
    tp = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    routing = routing_of(
        [("traceparent", tp), ("tracestate", b"rojo=00f067aa0ba902b7"), ("event_type", b"OrderPlaced")]
    )
    assert routing.traceparent == tp.decode() and routing.trace_problem is None
    assert routing.tracestate == "rojo=00f067aa0ba902b7" and routing.event_type == "OrderPlaced"
    assert routing_of([("traceparent", tp), ("tracestate", b"x" * 513)]).tracestate is None


@pytest.mark.parametrize(
    "value",
    [
        b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",  # too short
        b"00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01",  # upper case
        b"ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  # the forbidden version
        b"00-00000000000000000000000000000000-b7ad6b7169203331-01",  # zero trace id
        b"00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  # zero span id
        b"\xff" * 55,
        b"\xfe" * 330_000,
        None,
    ],
)
def test_a_malformed_traceparent_is_not_continued_and_says_why(value):
    routing = routing_of([("traceparent", value)])
    assert routing.traceparent is None
    assert routing.trace_problem.startswith("traceparent is not a W3C traceparent")
    assert len(routing.trace_problem) < 120, "the log line quotes it briefly"
    assert routing.problem is None, "a bad trace context is no reason to refuse the message"


def test_routing_headers_that_make_a_message_poison():
    assert "names no known event type" in routing_of([("event_type", b"Nope")]).problem
    assert "names no known event type" in routing_of([("event_type", b"x" * 100_000)]).problem
    assert "not a consumer group id" in routing_of([("dlt_replay_group", b"\xff")]).problem
    assert routing_of([("event_type", b"Nope"), ("event_type", b"OrderPlaced")]).problem is None, "last wins"
    assert routing_of([("other", b"\xff" * 10)]).problem is None
    assert routing_of(None).event_type is None
    assert OrderPlaced.type_name() in EVENT_TYPES
