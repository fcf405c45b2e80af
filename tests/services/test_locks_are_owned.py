"""The locks that keep one relay and one migration at a time per schema are rows and tables of the
schema's own: no other role can take them (an advisory lock, which every role may take, let one
silence another service's relay or hold its start-up)."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from shared.messaging.parked import TRY_RELAY_LOCK, WAIT_FOR_RELAY_LOCK
from shared.migrations import LOCK_TABLE, migrate
from shared.settings import PROCESSES, libpq_dsn

OWNER = "payment"


@pytest.fixture(scope="module")
def migrated(settings) -> str:
    url = settings.database_url(OWNER)
    migrate(OWNER, url)
    return url.username or OWNER


@pytest.mark.parametrize("other", [p for p in PROCESSES if p != OWNER])
def test_another_role_cannot_take_the_relay_lock_or_the_migration_lock(settings, migrated, other):
    schema = migrated
    with psycopg.connect(libpq_dsn(settings.database_url(other))) as conn:
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(WAIT_FOR_RELAY_LOCK.replace("relay_lock", f'"{schema}".relay_lock'))
        conn.rollback()
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(f'LOCK TABLE "{schema}".{LOCK_TABLE} IN EXCLUSIVE MODE')


def test_the_owner_takes_its_relay_lock_and_a_second_session_is_told_not_its_turn(settings, migrated):
    dsn = libpq_dsn(settings.database_url(OWNER))
    with psycopg.connect(dsn) as holder, psycopg.connect(dsn) as other:
        assert holder.execute(WAIT_FOR_RELAY_LOCK).fetchone() == (True,)
        assert other.execute(TRY_RELAY_LOCK).fetchone() is None
