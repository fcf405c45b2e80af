"""Payment's first schema: customers, payments, and the runtime's inbox and outbox.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

from shared.messaging.migration import create_runtime_tables_v1

revision = "0001"
down_revision = None


def upgrade() -> None:
    create_runtime_tables_v1()
    op.create_table(
        "customers",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("balance", sa.Numeric(12, 2), nullable=False),
        sa.Column("blocked", sa.Boolean, nullable=False, server_default="false"),
        sa.CheckConstraint("balance >= 0", name="customers_balance_not_negative"),
    )
    op.create_table(
        "payments",
        sa.Column("order_id", sa.Uuid, primary_key=True),
        sa.Column("payment_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("amount", sa.Numeric(12, 2), nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
