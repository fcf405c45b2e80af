"""Avro encoders and decoders written for each of our own schemas at start-up, as Python source.

fastavro walks the schema for every record and converts each logical type (uuid, timestamp, decimal)
through a call of its own: for our small events that walk was a third of the runtime's CPU per event
(`make bench-core`). The functions made here do only what their schema says, field after field. They
are made from our own schema files only, never from a writer schema someone registered: a message
written with any other schema is read by fastavro, with schema resolution.

The bytes are fastavro's, and so are the records read back (tests/unit/test_avro_compiled.py checks
both on every event type, on random records): decimals go through fastavro's own conversion, and a
datetime that is not timezone-aware through its own timestamp writer. Bytes that do not decode raise
(ValueError, IndexError, UnicodeDecodeError, ...), for the codec to refuse the message as fastavro's
errors are.

Covered: records, string, bytes, int, long, arrays, unions of null and one type, and the logical
types uuid, timestamp-micros and decimal. A schema outside that raises Unsupported: its events keep
fastavro.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal
from itertools import count
from typing import Any
from uuid import UUID

from fastavro.read import LOGICAL_READERS
from fastavro.schema import expand_schema
from fastavro.write import LOGICAL_WRITERS

Encoder = Callable[[dict[str, Any]], bytes]
Decoder = Callable[[bytes], dict[str, Any]]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1


class Unsupported(ValueError):
    """A schema shape these functions are not made for."""


def _zigzag(n: int) -> bytes:
    """An Avro int or long: zigzag, then base-128 varint."""
    if not _LONG_MIN <= n <= _LONG_MAX:
        raise OverflowError(f"{n} does not fit an Avro long")
    z = (n << 1) ^ (n >> 63)
    if z < 0x80:
        return _SMALL[z]
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


_SMALL = [bytes((z,)) for z in range(0x80)]


def _read_long(data: bytes, pos: int) -> tuple[int, int]:
    """An Avro long at pos, and the position after it; at most ten bytes, as a long has."""
    b = data[pos]
    pos += 1
    n, shift = b & 0x7F, 7
    while b & 0x80:
        if shift > 63:
            raise ValueError("a varint longer than a long")
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
    return (n >> 1) ^ -(n & 1), pos


_WRITE_DECIMAL = LOGICAL_WRITERS["bytes-decimal"]
_WRITE_TIMESTAMP = LOGICAL_WRITERS["long-timestamp-micros"]
_READ_DECIMAL = LOGICAL_READERS["bytes-decimal"]
_EXACT = Context(prec=64)  # above any precision a schema of ours gives: scaling is exact


def _decimal_bytes(value: Any, node: dict[str, Any]) -> bytes:
    """fastavro's bytes of a decimal (its checks, its errors), without walking the digits."""
    if value.__class__ is not Decimal:
        return _WRITE_DECIMAL(value, node)  # bytes as they are, or fastavro's refusal
    digits, exponent = value.as_tuple()[1:]
    scale = node.get("scale", 0)
    if len(digits) > node["precision"] or not isinstance(exponent, int) or exponent + scale < 0:
        return _WRITE_DECIMAL(value, node)  # raises, as fastavro does
    numerator, denominator = value.as_integer_ratio()
    unscaled = numerator * 10**scale // denominator
    return unscaled.to_bytes((unscaled.bit_length() + 8) // 8, "big", signed=True)


def _decimal(data: bytes, node: dict[str, Any]) -> Decimal:
    """fastavro's decimal of these bytes: the unscaled integer within the precision, scaled."""
    unscaled = int.from_bytes(data, "big", signed=True)
    bound = 10 ** node["precision"]
    if -bound < unscaled < bound:
        return Decimal(unscaled).scaleb(-node.get("scale", 0), _EXACT)
    return _READ_DECIMAL(data, node, None)  # more digits than the precision: fastavro rounds


def _timestamp_micros(value: Any) -> int:
    if value.__class__ is datetime and value.tzinfo is not None:
        delta = value - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return _WRITE_TIMESTAMP(value, None)  # naive datetimes, and ints as they are: fastavro's own way


def _bad_length(n: int, pos: int, end: int) -> ValueError:
    return ValueError(f"length {n} at byte {pos} runs past the end ({end} bytes)")


class _Source:
    """Python source, line by line, with fresh local names."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {}
        self._names = count()

    def name(self, stem: str) -> str:
        return f"{stem}{next(self._names)}"

    def constant(self, value: Any) -> str:
        name = self.name("_k")
        self.constants[name] = value
        return name

    def line(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)


def _kind(node: Any) -> tuple[str, Any]:
    """(what to generate, the node): a primitive's name, a logical type, or a complex type."""
    if isinstance(node, str):
        return node, node
    if isinstance(node, list):
        return "union", node
    if isinstance(node, dict):
        logical = node.get("logicalType")
        base = node["type"]
        if logical is not None and isinstance(base, str):
            return f"{base}-{logical}", node
        if base in ("record", "array"):
            return base, node
        if isinstance(base, str) and logical is None:
            return base, node
    raise Unsupported(f"schema node {node!r}")


def _nullable(node: list[Any]) -> tuple[int, Any]:
    """The index of null in a two-branch union with null, and the other branch."""
    if len(node) != 2 or "null" not in node:
        raise Unsupported(f"union {node!r}: only null and one other type")
    null_at = node.index("null")
    return null_at, node[1 - null_at]


def _min_bytes(node: Any) -> int:
    """The fewest bytes a value takes: array items must take one at least (a count is checked
    against the bytes left, so that a hostile count cannot spin)."""
    kind, node = _kind(node)
    if kind == "null":
        return 0
    if kind == "record":
        return sum(_min_bytes(f["type"]) for f in node["fields"])
    return 1


# -- encoders -----------------------------------------------------------------------------------------


def compile_encoder(schema: dict[str, Any], header: bytes = b"") -> Encoder:
    """The encoder of `schema` (a record); its bytes start with `header` (e.g. Confluent's five)."""
    src = _Source()
    src.line(0, "def encode(record):")
    src.line(1, f"out = bytearray({src.constant(header)})")
    _write(src, 1, expand_schema(schema), "record")
    src.line(1, "return bytes(out)")
    return _compiled(src, "encode")


def _write_length(src: _Source, depth: int, value: str) -> None:
    """The length of a string or bytes; one byte, from a table, below 64."""
    n = src.name("n")
    src.line(depth, f"{n} = len({value})")
    src.line(depth, f"out += _SMALL[{n} << 1] if {n} < 64 else _zigzag({n})")


def _write(src: _Source, depth: int, node: Any, value: str) -> None:
    kind, node = _kind(node)
    line = src.line
    if kind == "record":
        rec = src.name("r")
        line(depth, f"{rec} = {value}")
        for field in node["fields"]:
            name, ftype = field["name"], field["type"]
            if "default" in field:
                got = f"{rec}.get({name!r}, {src.constant(field['default'])})"
            elif isinstance(ftype, list) and "null" in ftype:
                got = f"{rec}.get({name!r})"  # missing is null, as fastavro writes it
            else:
                got = f"{rec}[{name!r}]"
            _write(src, depth, ftype, got)
    elif kind in ("string", "string-uuid"):
        s = src.name("s")
        if kind == "string-uuid":
            line(depth, f"{s} = {value}")
            line(depth, f"{s} = (str({s}) if isinstance({s}, _UUID) else {s}).encode()")
        else:
            line(depth, f"{s} = {value}.encode()")
        _write_length(src, depth, s)
        line(depth, f"out += {s}")
    elif kind in ("int", "long"):
        line(depth, f"out += _zigzag({value})")
    elif kind == "long-timestamp-micros":
        line(depth, f"out += _zigzag(_timestamp_micros({value}))")
    elif kind in ("bytes", "bytes-decimal"):
        b = src.name("b")
        if kind == "bytes-decimal":
            line(depth, f"{b} = _decimal_bytes({value}, {src.constant(node)})")
        else:
            line(depth, f"{b} = {value}")
        _write_length(src, depth, b)
        line(depth, f"out += {b}")
    elif kind == "union":
        null_at, other = _nullable(node)
        v = src.name("u")
        line(depth, f"{v} = {value}")
        line(depth, f"if {v} is None:")
        line(depth + 1, f"out += {_zigzag(null_at)!r}")
        line(depth, "else:")
        line(depth + 1, f"out += {_zigzag(1 - null_at)!r}")
        _write(src, depth + 1, other, v)
    elif kind == "array":
        items, item = src.name("a"), src.name("i")
        line(depth, f"{items} = {value}")
        line(depth, f"if {items}:")
        line(depth + 1, f"out += _zigzag(len({items}))")
        line(depth + 1, f"for {item} in {items}:")
        _write(src, depth + 2, node["items"], item)
        line(depth, "out += b'\\x00'")
    else:
        raise Unsupported(f"type {kind}")


# -- decoders -----------------------------------------------------------------------------------------


def compile_decoder(schema: dict[str, Any], *, skip: int = 0, uuid_as_text: bool = False) -> Decoder:
    """The decoder of `schema` (a record), reading from byte `skip` on (past a header); the record is
    fastavro's. `uuid_as_text`: uuid fields as the strings on the wire (the codec's reading)."""
    src = _Source()
    src.line(0, "def decode(data):")
    src.line(1, f"pos = {skip}")
    src.line(1, "end = len(data)")
    result = _read(src, 1, expand_schema(schema), uuid_as_text)
    src.line(1, f"return {result}")
    return _compiled(src, "decode")


def _read_long_into(src: _Source, depth: int, target: str) -> None:
    """One long into `target`, its common one-byte form without a call."""
    line = src.line
    line(depth, "b = data[pos]")
    line(depth, "if b < 0x80:")
    line(depth + 1, f"{target} = (b >> 1) ^ -(b & 1)")
    line(depth + 1, "pos += 1")
    line(depth, "else:")
    line(depth + 1, f"{target}, pos = _read_long(data, pos)")


def _read_bytes_into(src: _Source, depth: int, target: str) -> None:
    n = src.name("n")
    _read_long_into(src, depth, n)
    src.line(depth, f"if {n} < 0 or pos + {n} > end:")
    src.line(depth + 1, f"raise _bad_length({n}, pos, end)")
    src.line(depth, f"{target} = data[pos:pos + {n}]")
    src.line(depth, f"pos += {n}")


def _read(src: _Source, depth: int, node: Any, uuid_as_text: bool) -> str:
    """Lines that read one value; returns the local name that holds it."""
    kind, node = _kind(node)
    line = src.line
    target = src.name("v")
    if kind == "record":
        line(depth, f"{target} = {{}}")
        for field in node["fields"]:
            value = _read(src, depth, field["type"], uuid_as_text)
            line(depth, f"{target}[{field['name']!r}] = {value}")
    elif kind in ("string", "string-uuid"):
        _read_bytes_into(src, depth, target)
        line(depth, f"{target} = {target}.decode()")
        if kind == "string-uuid" and not uuid_as_text:
            line(depth, f"{target} = _UUID({target})")
    elif kind in ("int", "long"):
        _read_long_into(src, depth, target)
    elif kind == "long-timestamp-micros":
        _read_long_into(src, depth, target)
        line(depth, f"{target} = _EPOCH + _timedelta(microseconds={target})")
    elif kind in ("bytes", "bytes-decimal"):
        _read_bytes_into(src, depth, target)
        if kind == "bytes-decimal":
            line(depth, f"{target} = _decimal({target}, {src.constant(node)})")
    elif kind == "union":
        null_at, other = _nullable(node)
        index = src.name("x")
        _read_long_into(src, depth, index)
        line(depth, f"if {index} == {null_at}:")
        line(depth + 1, f"{target} = None")
        line(depth, f"elif {index} == {1 - null_at}:")
        value = _read(src, depth + 1, other, uuid_as_text)
        line(depth + 1, f"{target} = {value}")
        line(depth, "else:")
        line(depth + 1, f"raise ValueError(f'union index {{{index}}} of a two-branch union')")
    elif kind == "array":
        if _min_bytes(node["items"]) < 1:
            raise Unsupported(f"array of {node['items']!r}: items that may take no bytes")
        n = src.name("n")
        line(depth, f"{target} = []")
        line(depth, "while True:")
        _read_long_into(src, depth + 1, n)
        line(depth + 1, f"if {n} == 0:")
        line(depth + 2, "break")
        line(depth + 1, f"if {n} < 0:  # a block that gives its size in bytes too")
        line(depth + 2, f"{n} = -{n}")
        line(depth + 2, "_, pos = _read_long(data, pos)")
        line(depth + 1, f"if {n} > end - pos:")
        line(depth + 2, f"raise _bad_length({n}, pos, end)")
        line(depth + 1, f"for _ in range({n}):")
        item = _read(src, depth + 2, node["items"], uuid_as_text)
        line(depth + 2, f"{target}.append({item})")
    else:
        raise Unsupported(f"type {kind}")
    return target


def _compiled(src: _Source, name: str) -> Callable[..., Any]:
    namespace: dict[str, Any] = {
        "_zigzag": _zigzag,
        "_read_long": _read_long,
        "_timestamp_micros": _timestamp_micros,
        "_decimal_bytes": _decimal_bytes,
        "_decimal": _decimal,
        "_SMALL": _SMALL,
        "_UUID": UUID,
        "_EPOCH": _EPOCH,
        "_timedelta": timedelta,
        "_bad_length": _bad_length,
        **src.constants,
    }
    code = "\n".join(src.lines)
    exec(compile(code, f"<avro {name}>", "exec"), namespace)  # source made from our own schema files
    return namespace[name]
