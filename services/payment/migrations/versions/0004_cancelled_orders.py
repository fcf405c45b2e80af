"""The orders payment heard were cancelled: a late OrderPlaced charges nothing.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "cancelled_orders",
        sa.Column("order_id", sa.Uuid, primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
