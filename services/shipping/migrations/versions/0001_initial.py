"""Shipping's first schema: served countries, consignments, shipments, and the runtime's tables.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

from shared.messaging.migration import create_runtime_tables_v1

revision = "0001"
down_revision = None


def upgrade() -> None:
    create_runtime_tables_v1()
    op.create_table("served_countries", sa.Column("country", sa.Text, primary_key=True))
    op.create_table(
        "consignments",
        sa.Column("order_id", sa.Uuid, primary_key=True),
        sa.Column("country", sa.Text),
        sa.Column("reserved", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "shipments",
        sa.Column("shipment_id", sa.Uuid, primary_key=True),
        sa.Column("order_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("tracking_number", sa.Text, nullable=False, unique=True),
        sa.Column("country", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
