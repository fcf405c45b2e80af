"""Inventory's first schema: stock, reservations, and the runtime's inbox and outbox.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from shared.messaging.migration import create_runtime_tables_v1

revision = "0001"
down_revision = None


def upgrade() -> None:
    create_runtime_tables_v1()
    op.create_table(
        "stock",
        sa.Column("sku", sa.Text, primary_key=True),
        sa.Column("available", sa.Integer, nullable=False),
        sa.Column("reserved", sa.Integer, nullable=False, server_default="0"),
        sa.Column("shipped", sa.Integer, nullable=False, server_default="0"),
        sa.CheckConstraint("available >= 0", name="stock_available_not_negative"),
        sa.CheckConstraint("reserved >= 0", name="stock_reserved_not_negative"),
        sa.CheckConstraint("shipped >= 0", name="stock_shipped_not_negative"),
    )
    op.create_table(
        "reservations",
        sa.Column("order_id", sa.Uuid, primary_key=True),
        sa.Column("lines", JSONB),
        sa.Column("paid", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("failed_sku", sa.Text),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
