"""Writing decided events into the outbox, inside the transaction that decided them."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic_core import to_json
from sqlalchemy import Connection

from shared.messaging.publishing import OutgoingMessage
from shared.messaging.tables import outbox

# One statement per batch whatever its size, its columns as arrays in binary: no per-row statements.
# Headers travel as JSON text (pydantic-core's serialiser: a fifth of the json module's time) and
# become jsonb in the server.
_INSERT = (
    f"INSERT INTO {outbox.name} (event_id, event_type, topic, message_key, payload, headers) "
    "SELECT i, t, d, k, p, h::jsonb FROM unnest(%b::uuid[], %b::text[], %b::text[], %b::text[], "
    "%b::bytea[], %b::text[]) AS r(i, t, d, k, p, h)"
)


def add_to_outbox(conn: Connection, messages: Sequence[OutgoingMessage]) -> None:
    """The relay is woken (NOTIFY, by trigger) when the transaction commits."""
    if not messages:
        return
    conn.exec_driver_sql(
        _INSERT,
        (
            [m.event_id for m in messages],
            [m.event_type for m in messages],
            [m.topic for m in messages],
            [m.key for m in messages],
            [m.payload for m in messages],
            [to_json(m.headers).decode() for m in messages],
        ),
    )
