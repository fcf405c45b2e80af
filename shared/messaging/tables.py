"""The runtime's tables, in each service's own schema: the inbox of handled events, the outbox, and the
relay's lock row.

Unqualified names: each service's role has its own schema first on its search_path.
"""

from __future__ import annotations

from sqlalchemy import (
    DDL,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Identity,
    Index,
    LargeBinary,
    MetaData,
    Table,
    Text,
    Uuid,
    event,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared.messaging.parked import CHANNEL_SUFFIX, PENDING

metadata = MetaData()

# The record that a consumer group handled an event, written in the same transaction as the effects.
processed_events = Table(
    "processed_events",
    metadata,
    Column("consumer_group", Text, primary_key=True),
    Column("event_id", Uuid, primary_key=True),
    Column("event_type", Text, nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Append-only and time-ordered: a BRIN index serves the retention clean-up at almost no insert cost.
    Index("processed_events_processed_at", "processed_at", postgresql_using="brin"),
)

# Events a handler decided to publish, written in the handler's transaction; the relay sends them.
outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    # Random UUIDs made by the runtime: unique without an index that every insert would pay for.
    Column("event_id", Uuid, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("topic", Text, nullable=False),
    Column("message_key", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    # Kafka headers: the envelope's copy and the W3C trace context of the moment the event was decided.
    Column("headers", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # A row ends published, or parked (the broker refused it, or one before it of the same key, for
    # good: it waits for an operator), or discarded (an operator's decision: never sent). Pending while
    # none of the three; a retried row is pending again and keeps its park reason as history.
    Column("published_at", DateTime(timezone=True)),
    Column("parked_at", DateTime(timezone=True)),
    Column("park_reason", Text),
    Column("discarded_at", DateTime(timezone=True)),
    Column("discard_reason", Text),
    CheckConstraint("num_nonnulls(published_at, parked_at, discarded_at) <= 1", name="outbox_one_state"),
    # The relay only ever reads pending rows, oldest first; parked ones stay out of its way.
    Index("outbox_pending", "id", postgresql_where=text(PENDING)),
    # Is this key parked? (asked for every row the relay reads): an index as small as the parked rows.
    Index("outbox_parked", "message_key", "id", postgresql_where=text("parked_at IS NOT NULL")),
    Index("outbox_published_at", "published_at", postgresql_using="brin"),
    Index("outbox_discarded_at", "discarded_at", postgresql_where=text("discarded_at IS NOT NULL")),
)

OUTBOX_CHANNEL_SUFFIX = CHANNEL_SUFFIX

# Wake the relay at commit time; the notification carries nothing, the table is the truth.
OUTBOX_NOTIFY_DDL = [
    DDL(
        "CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN PERFORM pg_notify(TG_TABLE_SCHEMA || '" + OUTBOX_CHANNEL_SUFFIX + "', ''); RETURN NULL; END $$"
    ),
    DDL(
        "CREATE OR REPLACE TRIGGER outbox_notify AFTER INSERT ON outbox "
        "FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()"
    ),
]
for ddl in OUTBOX_NOTIFY_DDL:
    event.listen(outbox, "after_create", ddl)


def outbox_channel(schema: str) -> str:
    return schema + OUTBOX_CHANNEL_SUFFIX


# One row, locked (FOR UPDATE) by the relay for the length of each batch and by the operator's outbox
# commands: one relay at a time per schema, and none while an operator changes parked rows. A row of
# the service's own table, not an advisory lock: any role may take any advisory lock, so another
# role could silence this service's relay; this row only its owner can lock.
relay_lock = Table(
    "relay_lock",
    metadata,
    Column("id", Boolean, primary_key=True, server_default=text("true")),
    CheckConstraint("id", name="relay_lock_one_row"),
)
RELAY_LOCK_ROW_DDL = DDL("INSERT INTO relay_lock (id) VALUES (true) ON CONFLICT DO NOTHING")
event.listen(relay_lock, "after_create", RELAY_LOCK_ROW_DDL)
