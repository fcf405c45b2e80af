"""The batch's statements straight on the driver's (psycopg's) connection of a SQLAlchemy transaction.

A batch runs a handful of statements (claim, reads, writes, outbox), and SQLAlchemy would wrap each in
an execution context and a result object: about 45 µs of CPU apiece, a tenth of a small batch's cost.
They run on the transaction's own psycopg connection instead, in pipeline mode (`pipelined`), in a
`transaction` whose BEGIN and COMMIT travel with them. SQLAlchemy still owns the pool; errors of these
statements come as psycopg's own, which `is_outage` reads as it reads SQLAlchemy's. A connection such
an error leaves useless is handed back to the pool invalidated, as SQLAlchemy does with its own
(`statements`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import namedtuple_row
from pydantic_core import to_json
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from shared.messaging.outages import is_useless_connection

# What a failed statement of a batch raises: SQLAlchemy's wrapper, or psycopg's error itself.
DATABASE_ERRORS = (DBAPIError, psycopg.Error)


def json_rows(rows: Sequence[Mapping[str, Any]], *, bytes_as_hex: bool = False) -> str:
    """A batch's rows as the one parameter of its statement, a JSON list of objects unpacked by
    `json_to_recordset(%s::json) AS u(column type, ...)`: one string serialised in C (pydantic-core),
    where an array parameter per column is adapted by psycopg element by element in Python (five times
    the CPU for forty rows). UUIDs, decimals and times travel as their text, which the recordset's
    types parse; keys it does not name are ignored; bytes as hex, for `decode(..., 'hex')`."""
    return to_json(rows, bytes_mode="hex" if bytes_as_hex else "utf8").decode()


def cursor(conn: Connection) -> psycopg.Cursor[Any]:
    """A cursor of the transaction's connection, rows as named tuples (`row.order_id`)."""
    return conn.connection.driver_connection.cursor(row_factory=namedtuple_row)  # type: ignore[union-attr]


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction whose BEGIN and COMMIT are statements of its pipelines (`pipelined`), instead of a
    round trip each.

    psycopg would begin on the first statement with a BEGIN of its own and wait for it, even in a
    pipeline; and SQLAlchemy's commit would wait once more. Here the connection is in autocommit for
    the transaction's time, so nothing begins unasked: the caller's BEGIN goes with its first
    statements, its COMMIT with its last. What the caller leaves open (statements after its
    pipelines) is committed here; on an error the transaction is rolled back here, and a connection
    the rollback cannot reach is invalidated. The connection goes back to the pool as it came."""
    with engine.connect() as conn, statements(conn):
        driver = conn.connection.driver_connection
        assert isinstance(driver, psycopg.Connection)
        try:
            driver.autocommit = True
        except psycopg.ProgrammingError as exc:  # refused on a connection psycopg knows is broken
            raise psycopg.OperationalError(str(exc)) from exc
        try:
            yield conn
            if driver.pgconn.transaction_status != TransactionStatus.IDLE:
                driver.commit()
        except BaseException:
            try:
                driver.rollback()
            except psycopg.Error as exc:
                conn.invalidate(exc)
            raise
        finally:
            if driver.closed:
                pass
            elif driver.pgconn.transaction_status == TransactionStatus.IDLE:
                driver.autocommit = False
            else:  # never back to the pool in autocommit, nor with a transaction open
                conn.invalidate()


@contextmanager
def pipelined(conn: Connection, *, begin: bool = False, commit: bool = False) -> Iterator[None]:
    """These driver statements in psycopg's pipeline mode, in a `transaction`: with `begin`, its BEGIN
    first; with `commit`, its COMMIT last (or `commit_in_pipeline` where that is decided inside).

    A statement is sent without waiting for the one before; the client waits where it reads a result,
    and once at the end, for all the rest. So a batch's BEGIN travels with its claim, and its writes
    with its COMMIT: each round trip saved is a sleep and a wake-up of both processes, which on a busy
    machine is most of the latency. An error comes from the statement that read it, or from the end of
    the pipeline, as psycopg's own; the statements after a failed one do not run. Only driver
    statements (`cursor`) belong inside: SQLAlchemy reads a statement's result at once, which pipeline
    mode has not got yet."""
    driver = conn.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    with driver.pipeline():
        if begin:
            assert driver.autocommit, "BEGIN as a statement needs a transaction() connection"
            driver.execute("BEGIN")
        yield
        if commit:
            commit_in_pipeline(conn)


def commit_in_pipeline(conn: Connection) -> None:
    """COMMIT as the pipeline's next statement: its outcome comes with the pipeline's end."""
    conn.connection.driver_connection.execute("COMMIT")  # type: ignore[union-attr]


@contextmanager
def statements(conn: Connection) -> Iterator[None]:
    """Around a transaction's driver statements: a connection lost, or one that reaches a read-only
    server (after a failover to a standby), is invalidated, so the pool opens a new one for the retry
    instead of failing on it for ever."""
    try:
        yield
    except psycopg.Error as exc:
        if conn.invalidated:  # already (by `transaction`): asking for its connection would open one
            raise
        driver = conn.connection.driver_connection
        lost = isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
        if lost or is_useless_connection(exc) or getattr(driver, "broken", False):
            conn.invalidate(exc)
        raise
