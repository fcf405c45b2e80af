"""Drop the index on orders.status: every query by status asks for the open orders, which the partial
index `orders_open_since` holds; this one only cost an entry at every insert and at every update that
moved a row (an order changes status once, at its end).

Revision ID: 0006
"""

from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.drop_index("orders_status", table_name="orders")
