"""Create what the system needs before any service starts: its topics, databases, roles and schemas.

Idempotent, so every start-up may run it. docker compose runs it as one-shot jobs; the no-Docker stack
runs it after its components are healthy.
Usage: `python -m shared.provision {topics|schemas|database|all}`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable, Mapping

import psycopg
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry.error import SchemaRegistryError
from psycopg import sql
from sqlalchemy.engine import URL

from shared.contracts import EVENT_TYPES, Event
from shared.settings import PROCESSES, Settings, get_settings, libpq_dsn
from shared.topics import TOPICS, TopicSpec

log = logging.getLogger("provision")


class ProvisioningError(Exception):
    """What exists contradicts the catalogue in a way that must not be fixed automatically."""


def ensure_topics(
    bootstrap_servers: str, specs: Iterable[TopicSpec] = TOPICS, timeout: float = 30
) -> list[str]:
    """Create the missing topics. Returns what changed.

    A topic with fewer partitions than the catalogue asks is an error, not something to grow: adding
    partitions moves keys to other partitions, and an order's events would no longer be in order."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    existing = admin.list_topics(timeout=timeout).topics
    specs = list(specs)
    changed: list[str] = []

    short = [
        f"{s.name} has {len(existing[s.name].partitions)} partitions, the catalogue asks {s.partitions}"
        for s in specs
        if s.name in existing and len(existing[s.name].partitions) < s.partitions
    ]
    if short:
        raise ProvisioningError(
            "; ".join(short) + ": adding partitions would move orders' keys and break their order; "
            "migrate such a topic deliberately (new topic, drained old one)"
        )
    to_create = [
        NewTopic(s.name, num_partitions=s.partitions, replication_factor=1, config=s.config())
        for s in specs
        if s.name not in existing
    ]
    futures = {}
    if to_create:
        futures |= admin.create_topics(to_create, operation_timeout=timeout, request_timeout=timeout)
    for name, future in futures.items():
        try:
            future.result()
            changed.append(name)
        except KafkaException as exc:
            # Another provisioner may have created it in the meantime: that is success.
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise
    return changed


# Producers and consumers deploy independently, in either order, and a consumer may read any event
# still on a topic (7 days) or replayed from a dead-letter topic: every version must be readable
# with every other, old by new (BACKWARD) and new by old (FORWARD), not only the one before it.
COMPATIBILITY = "FULL_TRANSITIVE"


def ensure_event_schemas(settings: Settings, event_types: Iterable[type[Event]] | None = None) -> list[str]:
    """Every event's subject at COMPATIBILITY, and its schema registered (idempotent: the same schema
    keeps its id). A schema the level refuses fails provisioning, naming the subject."""
    from shared.messaging.codec import EventCodec, schema_registry, subject_name

    registry = schema_registry(settings.schema_registry_url)
    types = list(event_types or EVENT_TYPES.values())
    for event_type in types:  # the level first: it judges the version registered next
        registry.set_compatibility(subject_name=subject_name(event_type), level=COMPATIBILITY)
    EventCodec(registry).register(types)
    return [subject_name(t) for t in types]


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.provision", description=__doc__)
    parser.add_argument("what", choices=["topics", "schemas", "database", "all"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # the registry client's every request
    settings = get_settings()
    try:
        if args.what in ("topics", "all"):
            changed = ensure_topics(settings.kafka_bootstrap_servers)
            log.info("topics ready (%d): created: %s", len(TOPICS), ", ".join(changed) or "none")
        if args.what in ("schemas", "all"):
            subjects = ensure_event_schemas(settings)
            log.info("schemas registered (%d subjects, %s)", len(subjects), COMPATIBILITY)
        if args.what in ("database", "all"):
            ensure_roles_and_schemas(settings)
            log.info("database roles and schemas ready for %s", ", ".join(PROCESSES))
    except (KafkaException, SchemaRegistryError, psycopg.Error, ValueError, ProvisioningError) as exc:
        log.error("provisioning %s failed: %s", args.what, exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
