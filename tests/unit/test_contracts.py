"""Each event's pydantic model and its .avsc say the same thing, so the two never drift."""

from __future__ import annotations

import io
import types
import typing
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID, uuid4

import fastavro
import pytest
from pydantic import BaseModel, ValidationError

from shared.contracts import EVENT_TYPES, Envelope, OrderPlaced
from shared.contracts.schemas import SCHEMAS_DIR, avro_schema, envelope_schema, schema_path

UUID_T = {"type": "string", "logicalType": "uuid"}
MONEY_T = {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}
TIMESTAMP_T = {"type": "long", "logicalType": "timestamp-micros"}


def expected_avro_type(annotation) -> object:
    """The Avro type a model field's annotation stands for (names and docs aside)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return expected_avro_type(typing.get_args(annotation)[0])
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return ["null", expected_avro_type(args[0])]
    if origin in (tuple, list):
        return {"type": "array", "items": expected_avro_type(typing.get_args(annotation)[0])}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {"type": "record", "fields": model_fields(annotation)}
    return {str: "string", int: "int", UUID: UUID_T, Decimal: MONEY_T, datetime: TIMESTAMP_T}[annotation]


def model_fields(model: type[BaseModel]) -> list[tuple[str, object]]:
    hints = typing.get_type_hints(model, include_extras=True)
    return [(name, expected_avro_type(hints[name])) for name in model.model_fields]


def avro_fields(record: dict) -> list[tuple[str, object]]:
    def strip(t):
        if isinstance(t, list):
            return [strip(x) for x in t]
        if isinstance(t, dict) and t.get("type") == "record":
            return {"type": "record", "fields": avro_fields(t)}
        if isinstance(t, dict) and t.get("type") == "array":
            return {"type": "array", "items": strip(t["items"])}
        return t

    return [(f["name"], strip(f["type"])) for f in record["fields"]]


def test_the_envelope_model_matches_its_schema():
    assert model_fields(Envelope) == avro_fields(envelope_schema())


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_each_event_model_matches_its_schema(name):
    event_type = EVENT_TYPES[name]
    schema = avro_schema(event_type)
    assert f"{schema['namespace']}.{schema['name']}" == event_type.record_name()
    [(first, envelope), *payload] = avro_fields(schema)
    assert (first, envelope["fields"]) == ("envelope", model_fields(Envelope))
    assert payload == model_fields(event_type)
    fastavro.parse_schema(schema)


def test_every_schema_file_has_a_model_and_documents_every_record_and_field():
    files = {p for p in SCHEMAS_DIR.glob("*/*.avsc") if p.parent.name != "common"}
    assert files == {schema_path(t) for t in EVENT_TYPES.values()}

    def documented(record):
        assert record.get("doc"), record["name"]
        for field in record["fields"]:
            assert field.get("doc"), f"{record['name']}.{field['name']}"
            for t in field["type"] if isinstance(field["type"], list) else [field["type"]]:
                if isinstance(t, dict) and t.get("type") == "record":
                    documented(t)
                if isinstance(t, dict) and t.get("type") == "array" and isinstance(t["items"], dict):
                    documented(t["items"])

    for event_type in EVENT_TYPES.values():
        documented(avro_schema(event_type))


def sample_order() -> dict:
    return {
        "order_id": uuid4(),
        "customer_id": "C-1001",
        "items": [
            {"sku": "SKU-RED-MUG", "quantity": 2, "unit_price": Decimal("9.99")},
            {"sku": "SKU-TEA", "quantity": 1, "unit_price": Decimal("4.50")},
        ],
        "total": Decimal("24.48"),
        "currency": "EUR",
        "shipping_address": {
            "recipient": "Ada",
            "street": "Main St 1",
            "city": "Berlin",
            "postal_code": "10115",
            "country": "DE",
        },
    }


def test_an_event_survives_an_avro_round_trip_exactly():
    event = OrderPlaced.model_validate(sample_order())
    envelope = Envelope(
        event_id=uuid4(),
        event_type="OrderPlaced",
        schema_version=1,
        occurred_at=datetime(2026, 11, 22, 10, 0, 0, 123456, tzinfo=UTC),
        source="storefront",
        correlation_id=uuid4(),
    )
    parsed = fastavro.parse_schema(avro_schema(OrderPlaced))
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed, {"envelope": envelope.model_dump(), **event.model_dump()})
    buf.seek(0)
    record = fastavro.schemaless_reader(buf, parsed, None)
    assert Envelope.model_validate(record.pop("envelope")) == envelope
    assert OrderPlaced.model_validate(record) == event


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"items": []}, "at least 1 item"),
        ({"total": Decimal("1.00")}, "not the sum of the lines"),
        ({"currency": "euro"}, "should match pattern"),
        (
            {
                "shipping_address": {
                    "recipient": "A",
                    "street": "S",
                    "city": "C",
                    "postal_code": "1",
                    "country": "Germany",
                }
            },
            "should match pattern",
        ),
        (
            {"items": [{"sku": "X", "quantity": 0, "unit_price": Decimal("1.00")}]},
            "greater than or equal to 1",
        ),
        ({"total": Decimal("0.001")}, "decimal places"),
    ],
)
def test_invalid_orders_are_refused_with_what_is_wrong(change, complaint):
    with pytest.raises(ValidationError, match=complaint):
        OrderPlaced.model_validate({**sample_order(), **change})
