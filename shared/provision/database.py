"""PostgreSQL: one login role and schema per process, the read model's reader, the roles' timeouts."""

from __future__ import annotations

from collections.abc import Mapping

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL

from shared.provision.errors import ProvisioningError
from shared.settings import PROCESSES, Settings, libpq_dsn


def ensure_roles_and_schemas(settings: Settings) -> None:
    """One login role per service, owning one schema of the same name; no rights anywhere else; and
    the role's timeouts (Settings.role_timeouts), so that nothing the database does can hang a service."""
    timeouts = settings.role_timeouts()
    _check_relay_fits(settings)
    admin = settings.admin_database_url()
    by_database: dict[str, list[URL]] = {}
    for service in PROCESSES:
        url = settings.database_url(service)
        by_database.setdefault(url.database or "", []).append(url)

    with psycopg.connect(libpq_dsn(admin), autocommit=True) as conn:
        for database, urls in by_database.items():
            _ensure_database(conn, database)
            for url in urls:
                _ensure_role(conn, url.username or "", url.password or "")
                set_role_timeouts(conn, url.username or "", timeouts)
                conn.execute(
                    sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
                        sql.Identifier(database), sql.Identifier(url.username or "")
                    )
                )

    for database, urls in by_database.items():
        with psycopg.connect(libpq_dsn(admin.set(database=database)), autocommit=True) as conn:
            # Nobody may create or read anything in `public`: each role lives in its own schema.
            conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
            for url in urls:
                role = sql.Identifier(url.username or "")
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {0} AUTHORIZATION {0}").format(role))
                conn.execute(sql.SQL("ALTER ROLE {0} SET search_path = {0}").format(role))
    ensure_reader(settings, timeouts)


def ensure_reader(settings: Settings, timeouts: Mapping[str, str]) -> None:
    """The read model's reader: SELECT on the timeline's tables, those there and those its migrations
    create later, and nothing else; read-only transactions by default as a second fence."""
    reader = settings.reader_database_url()
    owner = settings.database_url("timeline")
    role, schema = sql.Identifier(reader.username or ""), sql.Identifier(owner.username or "")
    admin = settings.admin_database_url()
    with psycopg.connect(libpq_dsn(admin), autocommit=True) as conn:
        _ensure_role(conn, reader.username or "", reader.password or "")
        set_role_timeouts(conn, reader.username or "", timeouts)
        conn.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(role))
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(owner.database or ""), role)
        )
    with psycopg.connect(libpq_dsn(admin.set(database=owner.database)), autocommit=True) as conn:
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, role))
        conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(schema, role))
        conn.execute(
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {0} IN SCHEMA {0} GRANT SELECT ON TABLES TO {1}"
            ).format(schema, role)
        )
        conn.execute(sql.SQL("ALTER ROLE {} SET search_path = {}").format(role, schema))


def set_role_timeouts(conn: psycopg.Connection, role: str, timeouts: Mapping[str, str]) -> None:
    """Make `timeouts` (shared.settings.role_timeouts: statement, lock, idle in transaction) the role's
    defaults, in every database. Idempotent; sessions opened from now on have them."""
    for name, value in timeouts.items():
        conn.execute(
            sql.SQL("ALTER ROLE {} SET {} = {}").format(
                sql.Identifier(role), sql.Identifier(name), sql.Literal(value)
            )
        )


def _check_relay_fits(settings: Settings) -> None:
    # The relay keeps its transaction open, idle, while the broker acknowledges a batch (up to its
    # delivery timeout): a shorter idle timeout would end every slow batch's session, and it would be
    # sent again and again.
    from shared.messaging.relay import RelaySettings

    delivery = RelaySettings().delivery_timeout
    idle = settings.database_idle_in_transaction_timeout
    if idle <= delivery:
        raise ProvisioningError(
            f"DATABASE_IDLE_IN_TRANSACTION_TIMEOUT ({idle} s) must be above the relay's delivery "
            f"timeout ({delivery} s)"
        )


def ensure_owned_database(admin: URL, database: str, role: str, password: str) -> None:
    """A database of its own for a component (the local stack's registry), owned by its own role."""
    with psycopg.connect(libpq_dsn(admin), autocommit=True) as conn:
        _ensure_role(conn, role, password)
        _ensure_database(conn, database, owner=role)


def _ensure_role(conn: psycopg.Connection, role: str, password: str) -> None:
    if not role or not password:
        raise ValueError(f"database URL for role {role or '?'} needs a user name and a password")
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    verb = "ALTER" if exists else "CREATE"
    # The SCRAM verifier, made here (libpq's PQencryptPasswordConn), not the password: the statement's
    # text may reach the server's log (a failed statement is logged whole) and its statistics.
    verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()
    conn.execute(
        sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(verifier))
    )


def _ensure_database(conn: psycopg.Connection, database: str, owner: str | None = None) -> None:
    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
        stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database))
        if owner:
            stmt = sql.SQL("{} OWNER {}").format(stmt, sql.Identifier(owner))
        conn.execute(stmt)
    conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database)))
