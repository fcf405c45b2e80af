"""Where each saga stands (for `shopctl order stuck`), filled from the events recorded so far.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "sagas",
        sa.Column("order_id", sa.Uuid, primary_key=True),
        sa.Column("correlation_id", sa.Uuid, nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_event", sa.Text, nullable=False),
        sa.Column("last_source", sa.Text, nullable=False),
        sa.Column("facts", ARRAY(sa.Text), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
    )
    op.execute(
        """
        INSERT INTO sagas
            (order_id, correlation_id, first_at, last_at, last_event, last_source, facts, ended_at)
        SELECT order_id,
               (array_agg(correlation_id ORDER BY occurred_at))[1],
               min(occurred_at),
               max(occurred_at),
               (array_agg(event_type ORDER BY occurred_at DESC))[1],
               (array_agg(source ORDER BY occurred_at DESC))[1],
               array_agg(DISTINCT event_type ORDER BY event_type),
               min(occurred_at) FILTER (WHERE event_type IN ('OrderCompleted', 'OrderCancelled'))
        FROM events GROUP BY order_id
        """
    )
    op.create_index("sagas_open", "sagas", ["first_at"], postgresql_where=sa.text("ended_at IS NULL"))
