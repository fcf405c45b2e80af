"""Outbox rows the broker refuses for good are parked (and discarded by an operator), not retried
forever.

Revision ID: 0002
"""

from shared.messaging.migration import park_refused_rows_v2

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    park_refused_rows_v2()
