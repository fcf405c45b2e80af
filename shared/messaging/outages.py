"""Database outages: which errors are one, and which may be the message's own doing; and an engine
that recovers from them.

An outage is waited out in place for as long as it lasts and never counts against a message: after a
failover to a read-only standby, or with a grant revoked, every message fails alike, and blaming each
in turn would send the whole stream to the dead-letter topic. Any other error may be the message's (a
constraint it breaks, a value out of range): it counts as an attempt of that message.
"""

from __future__ import annotations

import psycopg
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import DBAPIError

from shared.settings import with_connection_options

# SQLSTATE classes (https://www.postgresql.org/docs/current/errcodes-appendix.html) that are the server's
# or the deployment's state, whatever the message.
_OUTAGE_CLASSES = frozenset(
    {
        "08",  # connection exception
        "28",  # invalid authorization: the role cannot log in (now)
        "3D",  # invalid catalog name: the database is not there
        "40",  # transaction rollback: serialization failure, deadlock (another transaction's doing)
        "53",  # insufficient resources: disk full, out of memory, too many connections
        "57",  # operator intervention: shutdown, crash recovery, "cannot connect now"
        "58",  # system error: I/O
    }
)
_OUTAGE_CODES = frozenset(
    {
        "25006",  # read-only SQL transaction: connected to a standby after a failover
        "42501",  # insufficient privilege: a grant was revoked
        "3F000",  # invalid schema name   \
        "42P01",  # undefined table        > a migration has not run (yet)
        "42703",  # undefined column      /
        "55P03",  # lock not available: another transaction holds it
    }
)
_NOT_OUTAGES = frozenset(
    {
        "57014",  # query canceled (e.g. statement_timeout): possibly this message's query
    }
)


def is_outage(exc: BaseException) -> bool:
    """True when the error says the database (or our access to it) is in trouble, not the message."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig
    state = getattr(exc, "sqlstate", None)
    if state is None:
        # No answer from the server at all (refused, reset, closed) is an outage; an error psycopg raised
        # itself while adapting a value (e.g. a NUL byte in a string) is the message's.
        return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
    return state not in _NOT_OUTAGES and (state in _OUTAGE_CODES or state[:2] in _OUTAGE_CLASSES)


def service_engine(url: str, *, pool_size: int) -> Engine:
    """The engine of a runtime process. No pre-ping (a round trip per checkout): a lost connection
    fails its transaction, an outage, and the pool replaces it. Every connection has the connection
    options (connect timeout, keepalives): a server gone silent fails a transaction, never hangs it."""
    engine = create_engine(with_connection_options(make_url(url)), pool_size=pool_size)
    event.listen(engine, "handle_error", _read_only_is_lost)
    return engine


_READ_ONLY = "25006"


def is_useless_connection(exc: BaseException) -> bool:
    """After a failover, the pool's connections may still reach the demoted, read-only server: they are
    as good as lost, and retrying on them would fail for ever. Such a connection must be replaced."""
    return getattr(exc, "sqlstate", None) == _READ_ONLY


def _read_only_is_lost(context: ExceptionContext) -> None:
    # Marked as a disconnect, the pool opens new connections instead of reusing these.
    if is_useless_connection(context.original_exception):
        context.is_disconnect = True
