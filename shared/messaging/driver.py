"""The batch's statements straight on the driver's (psycopg's) connection of a SQLAlchemy transaction.

A batch runs a handful of statements (claim, reads, writes, outbox), and SQLAlchemy would wrap each in
an execution context and a result object: about 45 µs of CPU apiece, a tenth of a small batch's cost.
They run on the transaction's own psycopg connection instead. SQLAlchemy still begins, commits and rolls
back; errors of these statements come as psycopg's own, which `is_outage` reads as it reads
SQLAlchemy's. A connection such an error leaves useless is handed back to the pool invalidated, as
SQLAlchemy does with its own (`statements`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

# What a failed statement of a batch raises: SQLAlchemy's wrapper, or psycopg's error itself.
DATABASE_ERRORS = (DBAPIError, psycopg.Error)


def cursor(conn: Connection) -> psycopg.Cursor[Any]:
    """A cursor of the transaction's connection, rows as named tuples (`row.order_id`)."""
    return conn.connection.driver_connection.cursor(row_factory=namedtuple_row)  # type: ignore[union-attr]


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
        if lost or exc.sqlstate == _READ_ONLY or getattr(driver, "broken", False):
            conn.invalidate(exc)
        raise


_READ_ONLY = "25006"
