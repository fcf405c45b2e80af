"""The relay's lock is a row of the service's own table, which no other role can lock (an advisory lock
any role could take).

Revision ID: 0003
"""

from shared.messaging.migration import relay_lock_row_v3

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    relay_lock_row_v3()
