"""Which writer schemas a consumer agrees to read with.

A schema id in a message names a schema that someone registered: not necessarily us, and not
necessarily Avro. Before any bytes are decoded with it, the schema must be an Avro record that the
registry holds as a version of the subject our contract names for that record, and it must be safe
to read: not nested deeper than any real schema, and without arrays whose items take no bytes (a
count of 2^62 such items decodes "successfully" for ever, in ever more memory).
"""

from __future__ import annotations

import json
from typing import Any

from shared.messaging.errors import ForeignSchema, UnreadableSchema

# Our own schemas nest five or six levels (record, array, record, field...); JSON and fastavro's parser
# recurse, so a schema nested thousands deep would exhaust the stack.
MAX_DEPTH = 64
MAX_SCHEMA_CHARS = 256 * 1024


def parse_writer_schema(schema_id: int, schema_type: str | None, text: str) -> dict[str, Any]:
    """The writer schema as JSON, or ForeignSchema/UnreadableSchema saying why it is refused."""
    if schema_type not in (None, "", "AVRO"):
        raise ForeignSchema(f"schema id {schema_id} is a {schema_type} schema, not Avro")
    if len(text) > MAX_SCHEMA_CHARS:
        raise UnreadableSchema(f"schema id {schema_id} is {len(text)} characters long")
    _check_depth(schema_id, text)
    try:
        schema = json.loads(text)
    except ValueError as exc:
        raise ForeignSchema(f"schema id {schema_id} is not Avro JSON: {exc}") from exc
    if not isinstance(schema, dict) or schema.get("type") != "record":
        if isinstance(schema, list):
            kind = "a union"
        else:
            kind = repr(schema.get("type") if isinstance(schema, dict) else schema)
        raise ForeignSchema(f"schema id {schema_id} is {kind}, not a record: not an event of this system")
    if (path := _zero_size_items(schema)) is not None:
        raise UnreadableSchema(
            f"schema id {schema_id} has an array of items that take no bytes at {path}: "
            "a message could claim any number of them"
        )
    return schema


def record_name(schema: dict[str, Any]) -> str:
    name = str(schema.get("name", ""))
    namespace = schema.get("namespace")
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _check_depth(schema_id: int, text: str) -> None:
    """Brackets counted outside strings: before json.loads, which would recurse that deep."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    if deepest > MAX_DEPTH:
        raise UnreadableSchema(f"schema id {schema_id} nests {deepest} levels deep (at most {MAX_DEPTH})")


_PRIMITIVE_MIN_SIZE = {
    "null": 0, "boolean": 1, "int": 1, "long": 1, "float": 4, "double": 8, "bytes": 1, "string": 1,
}  # fmt: skip


def _zero_size_items(schema: Any) -> str | None:
    """The path of the first array whose items can be encoded in zero bytes, if any."""
    named: dict[str, int] = {}

    def size(node: Any, path: str, namespace: str) -> int:
        if isinstance(node, str):
            if node in _PRIMITIVE_MIN_SIZE:
                return _PRIMITIVE_MIN_SIZE[node]
            full = node if "." in node else f"{namespace}.{node}" if namespace else node
            return named.get(full, named.get(node, 1))  # a reference to a type defined before
        if isinstance(node, list):  # a union: its branch index takes at least a byte
            for i, branch in enumerate(node):
                size(branch, f"{path}[{i}]", namespace)
            return 1
        if not isinstance(node, dict):
            return 1
        kind = node.get("type")
        if kind == "record" or kind == "error":
            ns = node.get("namespace", namespace) or ""
            name = record_name({"name": node.get("name", ""), "namespace": ns})
            named[name] = 1  # while its fields are measured: a recursive record takes bytes
            total = sum(
                size(f.get("type"), f"{path}.{f.get('name')}", ns)
                for f in node.get("fields", ())
                if isinstance(f, dict)
            )
            named[name] = total
            return total
        if kind == "array":
            if size(node.get("items"), f"{path}[]", namespace) == 0:
                raise _Found(path)
            return 1
        if kind == "map":
            size(node.get("values"), f"{path}{{}}", namespace)
            return 1  # every entry has a key, a string: at least a byte
        if kind == "fixed":
            return int(node.get("size", 0)) if isinstance(node.get("size"), int) else 0
        if kind == "enum":
            return 1
        return size(kind, path, namespace)  # {"type": "long", "logicalType": ...}

    try:
        size(schema, schema.get("name", "record") if isinstance(schema, dict) else "schema", "")
    except _Found as found:
        return found.path
    return None


class _Found(Exception):
    def __init__(self, path: str) -> None:
        self.path = path
