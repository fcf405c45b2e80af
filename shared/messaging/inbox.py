"""The inbox: which events a consumer group has handled, recorded in the transaction of their effects."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import Connection

from shared.contracts import Envelope
from shared.messaging.driver import cursor, json_rows
from shared.messaging.tables import processed_events

# Records every event id of a batch as handled by the group, and answers with those that were already
# (by an earlier delivery, or a concurrent instance whose transaction it then waits for): usually none,
# so the answer costs nothing to read. The batch travels as one JSON list (driver.json_rows).
_CLAIM = (
    "WITH batch AS MATERIALIZED (SELECT * FROM json_to_recordset(%s::json) AS t(i uuid, t text)), "
    f"claimed AS (INSERT INTO {processed_events.name} (consumer_group, event_id, event_type) "
    "SELECT %s, i, t FROM batch ON CONFLICT DO NOTHING RETURNING event_id) "
    "SELECT DISTINCT i FROM batch WHERE i NOT IN (SELECT event_id FROM claimed)"
)


def claim(conn: Connection, group: str, envelopes: Sequence[Envelope]) -> set[UUID]:
    """Record every event as handled by the group, in one statement; the ids it had handled before."""
    batch = json_rows([{"i": e.event_id, "t": e.event_type} for e in envelopes])
    return {row[0] for row in cursor(conn).execute(_CLAIM, (batch, group)).fetchall()}
