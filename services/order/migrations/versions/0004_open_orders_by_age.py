"""The open orders by age, for the saga's deadline (services/order/handlers.deadlines).

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_index(
        "orders_open_since", "orders", ["created_at"], postgresql_where=sa.text("status = 'open'")
    )
