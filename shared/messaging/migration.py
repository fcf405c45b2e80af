"""The runtime's tables as Alembic operations, one function per version, each called by a revision of
every service.

Frozen here as history: a later change to shared/messaging/tables.py comes with a new function and a
new revision in every service, never an edit of an earlier one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from shared.messaging.tables import OUTBOX_NOTIFY_DDL, RELAY_LOCK_ROW_DDL


def create_runtime_tables_v1() -> None:
    op.create_table(
        "processed_events",
        sa.Column("consumer_group", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Uuid, primary_key=True),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index(
        "processed_events_processed_at", "processed_events", ["processed_at"], postgresql_using="brin"
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("message_key", sa.Text, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("headers", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("published_at", sa.DateTime(timezone=True)),
    )
    op.create_index("outbox_unpublished", "outbox", ["id"], postgresql_where=sa.text("published_at IS NULL"))
    op.create_index("outbox_published_at", "outbox", ["published_at"], postgresql_using="brin")
    for ddl in OUTBOX_NOTIFY_DDL:
        op.execute(ddl.statement)


def park_refused_rows_v2() -> None:
    """Outbox rows the broker refuses for good are parked, not retried forever; an operator retries
    or discards them. The relay's index now covers pending rows only (not parked, not discarded)."""
    op.add_column("outbox", sa.Column("parked_at", sa.DateTime(timezone=True)))
    op.add_column("outbox", sa.Column("park_reason", sa.Text))
    op.add_column("outbox", sa.Column("discarded_at", sa.DateTime(timezone=True)))
    op.add_column("outbox", sa.Column("discard_reason", sa.Text))
    op.create_check_constraint(
        "outbox_one_state", "outbox", "num_nonnulls(published_at, parked_at, discarded_at) <= 1"
    )
    op.drop_index("outbox_unpublished", "outbox")
    op.create_index(
        "outbox_pending",
        "outbox",
        ["id"],
        postgresql_where=sa.text("published_at IS NULL AND parked_at IS NULL AND discarded_at IS NULL"),
    )
    op.create_index(
        "outbox_parked", "outbox", ["message_key", "id"], postgresql_where=sa.text("parked_at IS NOT NULL")
    )
    op.create_index(
        "outbox_discarded_at",
        "outbox",
        ["discarded_at"],
        postgresql_where=sa.text("discarded_at IS NOT NULL"),
    )


def relay_lock_row_v3() -> None:
    """The relay's lock becomes a row of the service's own table: an advisory lock, which any role of
    the database may take, let another role stop this service's relay."""
    op.create_table(
        "relay_lock",
        sa.Column("id", sa.Boolean, primary_key=True, server_default=sa.text("true")),
        sa.CheckConstraint("id", name="relay_lock_one_row"),
    )
    op.execute(RELAY_LOCK_ROW_DDL.statement)
