"""The batch's statements straight on the driver's (psycopg's) connection of a SQLAlchemy transaction.

A batch runs a handful of statements (claim, reads, writes, outbox), and SQLAlchemy would wrap each in
an execution context and a result object: about 45 µs of CPU apiece, a tenth of a small batch's cost.
They run on the transaction's own psycopg connection instead, some in pipeline mode (`pipelined`).
SQLAlchemy still begins, commits and rolls back; errors of these statements come as psycopg's own,
which `is_outage` reads as it reads SQLAlchemy's. A connection such an error leaves useless is handed
back to the pool invalidated, as SQLAlchemy does with its own (`statements`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row
from pydantic_core import to_json
from sqlalchemy import Connection
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
def pipelined(conn: Connection, *, commit: bool = False) -> Iterator[None]:
    """These driver statements in psycopg's pipeline mode; with `commit`, ended by the COMMIT.

    A statement is sent without waiting for the one before, and the client waits only where it reads
    a result and at the end. So BEGIN travels with the batch's claim, and its writes with its COMMIT:
    a small batch's round trips fall from about nine to five, and each one saved is a sleep and a
    wake-up of both processes, which on a busy machine is most of the latency. An error comes from the
    statement that read it, or from the commit, as psycopg's own; the statements after a failed one
    do not run. SQLAlchemy's own commit then finds the transaction closed and sends nothing; after an
    error it rolls back as ever. Only driver statements (`cursor`) belong inside: SQLAlchemy reads a
    statement's result at once, which pipeline mode has not got yet."""
    driver = conn.connection.driver_connection
    with driver.pipeline():  # type: ignore[union-attr]
        yield
        if commit:
            driver.commit()  # type: ignore[union-attr]


@contextmanager
def statements(conn: Connection) -> Iterator[None]:
    """Around a transaction's driver statements: a connection lost, or one that reaches a read-only
    server (after a failover to a standby), is invalidated, so the pool opens a new one for the retry
    instead of failing on it for ever."""
    try:
        yield
    except psycopg.Error as exc:
        driver = conn.connection.driver_connection
        lost = isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
        if lost or is_useless_connection(exc) or getattr(driver, "broken", False):
            conn.invalidate(exc)
        raise
