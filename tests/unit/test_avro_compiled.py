"""The encoders and decoders made from our schemas write fastavro's bytes and read fastavro's records,
for every event type, and refuse what does not decode."""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import fastavro
import pytest
from fastavro.schema import expand_schema

from shared.contracts import EVENT_TYPES, PaymentCompleted
from shared.contracts.schemas import avro_schema
from shared.messaging.avro_compiled import Unsupported, compile_decoder, compile_encoder
from shared.messaging.codec import _for_reading

TYPES = sorted(EVENT_TYPES)
TEXTS = ["", "a", "Ünïcödé ✓", "x" * 63, "y" * 64, "z" * 300, "日本語のテキスト"]


def random_value(rng: random.Random, node: Any) -> Any:
    """A value of any shape the schema allows, edges included: empty and long strings, large and
    negative numbers, null and not, empty and longer arrays."""
    if isinstance(node, list):
        other = next(t for t in node if t != "null")
        return None if rng.random() < 0.4 else random_value(rng, other)
    if isinstance(node, str):
        node = {"type": node}
    kind, logical = node["type"], node.get("logicalType")
    if kind == "record":
        return {f["name"]: random_value(rng, f["type"]) for f in node["fields"]}
    if kind == "array":
        return [random_value(rng, node["items"]) for _ in range(rng.choice([0, 1, 2, 5, 70]))]
    if logical == "uuid":
        value = UUID(int=rng.getrandbits(128))
        return value if rng.random() < 0.5 else str(value)
    if logical == "timestamp-micros":
        micros = rng.choice([0, 1, -1, rng.getrandbits(52), 253_402_300_799_999_999])
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    if logical == "decimal":
        digits = rng.randint(1, node["precision"])
        unscaled = rng.randint(0, 10**digits - 1) * rng.choice([1, -1])
        return Decimal(unscaled).scaleb(-node["scale"])
    if kind == "string":
        return rng.choice(TEXTS)
    if kind == "int":
        return rng.choice([0, 1, -1, 63, 64, -65, 2**31 - 1, -(2**31)])
    if kind == "long":
        return rng.choice([0, 2**63 - 1, -(2**63), rng.getrandbits(40)])
    if kind == "bytes":
        return rng.randbytes(rng.choice([0, 1, 64, 200]))
    raise AssertionError(f"no sample for {node!r}")


def fastavro_bytes(schema: dict, record: dict) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), record)
    return buf.getvalue()


def fastavro_record(schema: Any, data: bytes) -> dict:
    return fastavro.schemaless_reader(io.BytesIO(data), schema, None)


@pytest.mark.parametrize("name", TYPES)
def test_the_bytes_and_the_records_are_fastavros_for_every_event_type(name):
    schema = avro_schema(EVENT_TYPES[name])
    encode = compile_encoder(schema, b"\x00HEAD")
    decode = compile_decoder(schema, skip=5)
    decode_text = compile_decoder(schema, skip=5, uuid_as_text=True)
    parsed, as_text = fastavro.parse_schema(schema), _for_reading(schema)
    rng = random.Random(name)
    for _ in range(300):
        record = random_value(rng, expand_schema(schema))
        expected = fastavro_bytes(schema, record)
        assert encode(record) == b"\x00HEAD" + expected
        data = b"\x00HEAD" + expected
        assert decode(data) == fastavro_record(parsed, expected)
        read = decode_text(data)
        assert read == fastavro_record(as_text, expected)
        assert repr(read) == repr(fastavro_record(as_text, expected))  # decimals' exponents too


def payment_record(amount: Any, **changes: Any) -> dict:
    envelope = {
        "event_id": "0190a0a0-0000-7000-8000-000000000001", "event_type": "PaymentCompleted",
        "schema_version": 1, "occurred_at": datetime(2026, 12, 5, tzinfo=UTC), "source": "payment",
        "correlation_id": "0190a0a0-0000-7000-8000-000000000002", "causation_id": None,
    }  # fmt: skip
    return {
        "envelope": envelope, "order_id": UUID(int=1), "payment_id": UUID(int=2), "customer_id": "C-1",
        "amount": amount, "currency": "EUR", **changes,
    }  # fmt: skip


@pytest.mark.parametrize(
    "amount",
    [Decimal("0.00"), Decimal("-0.00"), Decimal("9999999999.99"), Decimal("-128.00"), Decimal("1.5")],
)
def test_decimals_are_written_as_fastavro_writes_them(amount):
    schema = avro_schema(PaymentCompleted)
    assert compile_encoder(schema)(payment_record(amount)) == fastavro_bytes(schema, payment_record(amount))


@pytest.mark.parametrize(
    "amount", [Decimal("0.001"), Decimal("99999999999.99"), Decimal("NaN"), Decimal("Infinity")]
)
def test_decimals_fastavro_refuses_are_refused(amount):
    schema = avro_schema(PaymentCompleted)
    with pytest.raises((ValueError, TypeError)):
        fastavro_bytes(schema, payment_record(amount))
    with pytest.raises((ValueError, TypeError)):
        compile_encoder(schema)(payment_record(amount))


def test_a_naive_datetime_is_written_as_fastavro_writes_it():
    schema = avro_schema(PaymentCompleted)
    record = payment_record(Decimal("1.00"))
    record["envelope"]["occurred_at"] = datetime(2026, 12, 5, 10, 30)
    assert compile_encoder(schema)(record) == fastavro_bytes(schema, record)


def test_a_decimal_longer_than_its_precision_is_read_as_fastavro_reads_it():
    schema = avro_schema(PaymentCompleted)
    good = fastavro_bytes(schema, payment_record(Decimal("1.00")))
    amount_at = good.index(b"C-1") + 3  # the amount's length byte follows the customer id
    unscaled = (10**20 + 5).to_bytes(9, "big", signed=True)
    data = good[:amount_at] + bytes([len(unscaled) << 1]) + unscaled + good[amount_at + 2 :]
    parsed = fastavro.parse_schema(schema)
    assert repr(compile_decoder(schema)(data)) == repr(fastavro_record(parsed, data))


def hostile(name: str) -> list[bytes]:
    """Bytes no writer of this schema writes: cut short, a count far past the end, a union index out
    of range, a varint longer than a long, text that is not UTF-8."""
    schema = avro_schema(EVENT_TYPES[name])
    good = fastavro_bytes(schema, random_value(random.Random(1), expand_schema(schema)))
    return [
        *(good[:cut] for cut in range(0, len(good) - 1, 7)),
        b"\x7e" + good[1:],  # the first string's length: 63, most of it missing
        b"\xff" * 11 + good,
        good[:1] + b"\xff\xfe" + good[3:],
    ]


@pytest.mark.parametrize("name", TYPES)
def test_bytes_that_do_not_decode_raise(name):
    decode = compile_decoder(avro_schema(EVENT_TYPES[name]))
    for data in hostile(name):
        try:
            decode(data)
        except (ValueError, IndexError, UnicodeDecodeError, OverflowError):
            continue
        # What decodes must be what fastavro reads from the same bytes.
        assert decode(data) == fastavro_record(fastavro.parse_schema(avro_schema(EVENT_TYPES[name])), data)


def test_an_array_count_far_past_the_end_is_refused_at_once():
    schema = {
        "type": "record", "name": "r",
        "fields": [{"name": "xs", "type": {"type": "array", "items": "string"}}],
    }  # fmt: skip
    with pytest.raises(ValueError, match="runs past the end"):
        compile_decoder(schema)(b"\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01")  # a count of 2**62


def test_a_union_index_out_of_range_is_refused():
    schema = {"type": "record", "name": "r", "fields": [{"name": "x", "type": ["null", "string"]}]}
    with pytest.raises(ValueError, match="union index 2"):
        compile_decoder(schema)(b"\x04\x02ab")


@pytest.mark.parametrize(
    "node",
    [
        {"type": "map", "values": "string"},
        ["null", "string", "int"],
        {"type": "array", "items": "null"},
        "double",
        {"type": "fixed", "name": "f", "size": 4},
    ],
)
def test_schema_shapes_not_covered_are_said_so(node):
    schema = {"type": "record", "name": "r", "fields": [{"name": "x", "type": node}]}
    with pytest.raises(Unsupported):
        compile_decoder(schema)
    if node != {"type": "array", "items": "null"}:  # writing such an array is fine
        with pytest.raises(Unsupported):
            compile_encoder(schema)
