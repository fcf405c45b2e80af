"""The trace each event of an order was handled in, so that a deadline fired later continues it.

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.add_column("order_history", sa.Column("traceparent", sa.Text))
