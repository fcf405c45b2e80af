"""Writing decided events into the outbox, inside the transaction that decided them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

from shared.messaging.driver import cursor, json_rows
from shared.messaging.publishing import OutgoingMessage
from shared.messaging.tables import outbox

# One statement per batch whatever its size: the rows as one JSON list (driver.json_rows), payloads
# in hex, headers as objects that become jsonb.
_INSERT = (
    f"INSERT INTO {outbox.name} (event_id, event_type, topic, message_key, payload, headers) "
    "SELECT i, t, d, k, decode(p, 'hex'), h FROM json_to_recordset(%s::json) "
    "AS r(i uuid, t text, d text, k text, p text, h jsonb)"
)


def add_to_outbox(conn: Connection, messages: Sequence[OutgoingMessage]) -> None:
    """The relay is woken (NOTIFY, by trigger) when the transaction commits."""
    if not messages:
        return
    rows = [
        {"i": m.event_id, "t": m.event_type, "d": m.topic, "k": m.key, "p": m.payload, "h": m.headers}
        for m in messages
    ]
    cursor(conn).execute(_INSERT, (json_rows(rows, bytes_as_hex=True),))
