"""driver.transaction: BEGIN and COMMIT as statements of the pipelines, and each connection back to the
pool as it came (never left in autocommit, which would silently end every later transaction of the
service's engine: its timers', its relay's)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine, create_engine

from shared.messaging.driver import cursor, pipelined, transaction


@pytest.fixture
def engine(database) -> Iterator[Engine]:
    """One connection, so that each test's next checkout is the connection the last one used."""
    engine = create_engine(database.url, pool_size=1, max_overflow=0)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE keys (k int PRIMARY KEY)")
    yield engine
    engine.dispose()


def keys(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return sorted(r[0] for r in conn.exec_driver_sql("SELECT k FROM keys"))


def assert_back_in_transaction_mode(engine: Engine) -> None:
    """The next user of the connection gets transactions again: a statement it rolls back is gone."""
    with engine.connect() as conn:
        assert conn.connection.driver_connection.autocommit is False
        conn.exec_driver_sql("INSERT INTO keys VALUES (99)")
        conn.rollback()
    assert 99 not in keys(engine)


def test_the_pipelines_and_what_follows_them_commit_once(engine):
    with transaction(engine) as conn:
        with pipelined(conn, begin=True):
            cursor(conn).execute("INSERT INTO keys VALUES (1)")
            assert cursor(conn).execute("SELECT count(*) FROM keys").fetchone()[0] == 1
        cursor(conn).execute("INSERT INTO keys VALUES (2)")  # after the pipeline, in the same transaction
    assert keys(engine) == [1, 2]
    assert_back_in_transaction_mode(engine)


def test_a_commit_in_the_pipeline_ends_the_transaction_there(engine):
    with transaction(engine) as conn, pipelined(conn, begin=True, commit=True):
        cursor(conn).execute("INSERT INTO keys VALUES (1)")
    assert keys(engine) == [1]
    assert_back_in_transaction_mode(engine)


def test_a_failed_statement_rolls_the_whole_transaction_back(engine):
    with (
        pytest.raises(psycopg.errors.UniqueViolation),
        transaction(engine) as conn,
        pipelined(conn, begin=True, commit=True),
    ):
        cursor(conn).execute("INSERT INTO keys VALUES (1)")
        cursor(conn).execute("INSERT INTO keys VALUES (1)")
    assert keys(engine) == []
    assert_back_in_transaction_mode(engine)


def test_the_callers_own_error_rolls_back_what_was_sent(engine):
    with pytest.raises(RuntimeError, match="the caller's"), transaction(engine) as conn:
        with pipelined(conn, begin=True):
            cursor(conn).execute("INSERT INTO keys VALUES (1)")
        raise RuntimeError("the caller's")
    assert keys(engine) == []
    assert_back_in_transaction_mode(engine)


def test_a_connection_lost_mid_transaction_is_not_handed_out_again(engine, database):
    with pytest.raises(psycopg.OperationalError), transaction(engine) as conn:
        with pipelined(conn, begin=True):
            pid = cursor(conn).execute("SELECT pg_backend_pid()").fetchone()[0]
        with psycopg.connect(database.admin_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        cursor(conn).execute("INSERT INTO keys VALUES (1)")
    with transaction(engine) as conn, pipelined(conn, begin=True, commit=True):
        assert cursor(conn).execute("SELECT pg_backend_pid()").fetchone()[0] != pid
        cursor(conn).execute("INSERT INTO keys VALUES (2)")
    assert keys(engine) == [2]
    assert_back_in_transaction_mode(engine)
