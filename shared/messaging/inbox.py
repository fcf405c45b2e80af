"""The inbox: which events a consumer group has handled, recorded in the transaction of their effects."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import Connection

from shared.contracts import Envelope
from shared.messaging.tables import processed_events

# Records every event id of a batch as handled by the group, and answers with those that were already
# (by an earlier delivery, or a concurrent instance whose transaction it then waits for): usually none,
# so the answer costs nothing to read.
_CLAIM = (
    f"WITH claimed AS (INSERT INTO {processed_events.name} (consumer_group, event_id, event_type) "
    "SELECT %b, t.event_id, t.event_type FROM unnest(%b::uuid[], %b::text[]) AS t(event_id, event_type) "
    "ON CONFLICT DO NOTHING RETURNING event_id) "
    "SELECT DISTINCT t.event_id FROM unnest(%b::uuid[]) AS t(event_id) "
    "WHERE t.event_id NOT IN (SELECT event_id FROM claimed)"
)


def claim(conn: Connection, group: str, envelopes: Sequence[Envelope]) -> set[UUID]:
    """Record every event as handled by the group, in one statement; the ids it had handled before."""
    ids = [e.event_id for e in envelopes]
    rows = conn.exec_driver_sql(_CLAIM, (group, ids, [e.event_type for e in envelopes], ids))
    return {row[0] for row in rows}
