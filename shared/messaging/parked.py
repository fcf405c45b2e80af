"""Parked outbox rows: what the broker refused for good, and the operator's ways out of it.

A parked row (and every later row of its key, held behind it) waits for an operator: `retry` makes
rows pending again, and the relay sends them in id order; `discard` ends a row for good, with a reason.
Both run under the relay's own lock (its schema's relay_lock row), so that a batch in flight never
sees half of one.

Plain SQL and the standard library only: shopctl runs these with psycopg and must start fast.
"""

from __future__ import annotations

# The relay's lock: the one row of the schema's relay_lock table (tables.relay_lock), which only the
# schema's owner can lock. The relay tries, for each batch (another instance has it: not our turn);
# the operator's commands wait for it.
TRY_RELAY_LOCK = "SELECT id FROM relay_lock FOR UPDATE SKIP LOCKED"
WAIT_FOR_RELAY_LOCK = "SELECT id FROM relay_lock FOR UPDATE"

# A pending row is neither published, parked nor discarded: the relay's normal SELECT reads only these.
PENDING = "published_at IS NULL AND parked_at IS NULL AND discarded_at IS NULL"

# The reason a row held behind a refused one of the same key gets.
BEHIND = "behind parked row "

# The CLI's statements wait for a relay batch to end (up to its delivery timeout, 30 s), not forever.
WAIT_FOR_RELAY = ("SET LOCAL lock_timeout = '45s'", "SET LOCAL statement_timeout = '60s'")

LIST = (
    "SELECT id, topic, message_key, event_type, parked_at, park_reason FROM outbox "
    "WHERE parked_at IS NOT NULL ORDER BY id"
)

# The requested ids with their key and state, to say what is wrong with those that are not parked.
FIND = (
    "SELECT id, message_key, CASE WHEN parked_at IS NOT NULL THEN 'parked' "
    "WHEN published_at IS NOT NULL THEN 'published' WHEN discarded_at IS NOT NULL THEN 'discarded' "
    "ELSE 'pending' END AS state FROM outbox WHERE id = ANY(%s)"
)

# Rows parked before a requested one on its key and not requested themselves: retrying the later row
# alone would send it before them.
PARKED_BEFORE = (
    "SELECT o.id, min(e.id) AS first FROM outbox o JOIN outbox e ON e.message_key = o.message_key "
    "AND e.parked_at IS NOT NULL AND e.id < o.id AND NOT e.id = ANY(%(ids)s) "
    "WHERE o.id = ANY(%(ids)s) GROUP BY o.id ORDER BY o.id"
)

# A retried row takes the rows parked behind it on its key along, in order.
RETRY_IDS = (
    "UPDATE outbox o SET parked_at = NULL FROM "
    "(SELECT message_key, min(id) AS first FROM outbox WHERE id = ANY(%s) GROUP BY message_key) r "
    "WHERE o.message_key = r.message_key AND o.id >= r.first AND o.parked_at IS NOT NULL RETURNING o.id"
)
RETRY_KEY = "UPDATE outbox SET parked_at = NULL WHERE message_key = %s AND parked_at IS NOT NULL RETURNING id"
RETRY_ALL = "UPDATE outbox SET parked_at = NULL WHERE parked_at IS NOT NULL RETURNING id"

# The park reason stays as the row's history; the discard reason says why it is never sent.
DISCARD = (
    "UPDATE outbox SET parked_at = NULL, discarded_at = now(), discard_reason = %s "
    "WHERE id = %s AND parked_at IS NOT NULL RETURNING message_key"
)
STILL_PARKED_ON_KEY = "SELECT count(*) FROM outbox WHERE message_key = %s AND parked_at IS NOT NULL"

# The relay LISTENs on `<schema>_outbox` (tables.outbox_channel); rows made pending again wake it at
# commit, as new rows do by trigger.
CHANNEL_SUFFIX = "_outbox"
WAKE_RELAY = f"SELECT pg_notify(current_schema() || '{CHANNEL_SUFFIX}', '')"
