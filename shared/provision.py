"""Create what the system needs before any service starts: its topics, databases, roles and schemas.

Idempotent, so every start-up may run it. docker compose runs it as one-shot jobs; the no-Docker stack
runs it after its components are healthy.
Usage: `python -m shared.provision {topics|access|kafka|schemas|database|all}` (kafka: topics and access).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import psycopg
from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ConfigResource,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)
from confluent_kafka.schema_registry.error import SchemaRegistryError
from psycopg import sql
from sqlalchemy.engine import URL

from shared.access import (
    ADMIN,
    PRINCIPAL_NAMES,
    PRINCIPALS,
    REGISTRY_PROVISIONING,
    REGISTRY_ROLES,
    desired_acls,
)
from shared.contracts import EVENT_TYPES, Event
from shared.settings import PROCESSES, Settings, get_settings, libpq_dsn
from shared.topics import TOPICS, Replication, TopicSpec

log = logging.getLogger("provision")


class ProvisioningError(Exception):
    """What exists contradicts the catalogue in a way that must not be fixed automatically."""


def ensure_topics(
    admin_client: Mapping[str, str], specs: Iterable[TopicSpec] = TOPICS, timeout: float = 30
) -> list[str]:
    """Create the missing topics, as the broker's admin (`admin_client`: Settings.kafka_client(ADMIN)),
    replicated as the cluster's size allows (topics.Replication). Returns what changed.

    What exists and contradicts the catalogue is an error, never fixed quietly: fewer partitions than
    it asks (adding some moves keys to other partitions, and an order's events would no longer be in
    order), fewer replicas than the cluster should keep, or a configuration that drifted (retention,
    cleanup policy, min.insync.replicas)."""
    admin = AdminClient(dict(admin_client))
    metadata = admin.list_topics(timeout=timeout)
    existing = metadata.topics
    specs = list(specs)
    # The cluster's size as its topics know it, too: a broker away (or lost) does not make a cluster of
    # three a cluster of two, whose topics would want one replica.
    kept = max(
        (len(p.replicas) for s in specs if s.name in existing for p in existing[s.name].partitions.values()),
        default=0,
    )
    replication = Replication.for_brokers(max(len(metadata.brokers), kept))
    changed: list[str] = []

    contradictions = [
        f"{s.name} has {len(existing[s.name].partitions)} partitions, the catalogue asks {s.partitions}: "
        "adding partitions would move orders' keys and break their order; migrate such a topic "
        "deliberately (new topic, drained old one)"
        for s in specs
        if s.name in existing and len(existing[s.name].partitions) < s.partitions
    ]
    present = [s for s in specs if s.name in existing]
    contradictions += [
        f"{s.name} keeps {replicas} replicas of a partition, the cluster should keep "
        f"{replication.factor}: reassign its partitions (kafka-reassign-partitions)"
        for s in present
        if (replicas := min(len(p.replicas) for p in existing[s.name].partitions.values()))
        < replication.factor
    ]
    contradictions += _drifted(admin, present, replication, timeout)
    if contradictions:
        raise ProvisioningError("; ".join(contradictions))
    to_create = [
        NewTopic(
            s.name,
            num_partitions=s.partitions,
            replication_factor=replication.factor,
            config=s.config(replication),
        )
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


def _drifted(
    admin: AdminClient, specs: list[TopicSpec], replication: Replication, timeout: float
) -> list[str]:
    """Each setting of these topics that is not what the catalogue says, as the broker has it now
    (set on the topic, or the broker's default it falls back to)."""
    if not specs:
        return []
    resources = [ConfigResource(ConfigResource.Type.TOPIC, s.name) for s in specs]
    futures = admin.describe_configs(resources, request_timeout=timeout)
    drifted = []
    for spec, resource in zip(specs, resources, strict=True):
        actual = futures[resource].result()
        for key, wanted in spec.config(replication).items():
            have = actual[key].value if key in actual else None
            if have != wanted:
                drifted.append(
                    f"{spec.name} has {key}={have}, the catalogue says {wanted}: change the catalogue "
                    f"(shared/topics.py) or the topic (kafka-configs --alter), deliberately"
                )
    return drifted


def ensure_access(settings: Settings, timeout: float = 30) -> AccessChanges:
    """Make the broker's users and ACLs exactly shared.access's: every principal's SCRAM user with the
    password its setting holds (set again each time, so that a changed password takes), its ACLs
    created, and every user and ACL the catalogue does not name removed."""
    admin = AdminClient(settings.kafka_client(ADMIN))
    passwords = {p.name: settings.kafka_client(p.name)["sasl.password"] for p in PRINCIPALS}
    existing_users = admin.describe_user_scram_credentials(request_timeout=timeout).result()
    unnamed = sorted(set(existing_users) - set(PRINCIPAL_NAMES))
    removals = [
        UserScramCredentialDeletion(user, info.mechanism)
        for user in unnamed
        for info in existing_users[user].scram_credential_infos  # every mechanism it has
    ]
    set_scram_passwords(admin, settings, passwords, removals, timeout=timeout)

    every_acl = AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY
    )
    existing = set(admin.describe_acls(every_acl, request_timeout=timeout).result())
    desired = desired_acls()
    missing, extra = desired - existing, existing - desired
    if missing:
        for future in admin.create_acls(list(missing), request_timeout=timeout).values():
            future.result()
    if extra:
        filters = [
            AclBindingFilter(
                b.restype,
                b.name,
                b.resource_pattern_type,
                b.principal,
                b.host,
                b.operation,
                b.permission_type,
            )
            for b in extra
        ]
        for future in admin.delete_acls(filters, request_timeout=timeout).values():
            future.result()
    return AccessChanges(
        users=len(PRINCIPALS), removed_users=unnamed,
        acls=len(desired), created_acls=len(missing), removed_acls=len(extra),
    )  # fmt: skip


def set_scram_passwords(
    admin: AdminClient,
    settings: Settings,
    passwords: Mapping[str, str],
    removals: Iterable[UserScramCredentialDeletion] = (),
    timeout: float = 30,
) -> None:
    """Each user's SCRAM credential set to its password (created if new), and `removals` made; a
    credential already gone (another provisioner's doing) is no error."""
    mechanism = ScramMechanism[settings.kafka_sasl_mechanism.replace("-", "_")]
    info = ScramCredentialInfo(mechanism, SCRAM_ITERATIONS)
    changes = [UserScramCredentialUpsertion(u, info, p.encode()) for u, p in passwords.items()]
    changes += list(removals)
    for future in admin.alter_user_scram_credentials(changes, request_timeout=timeout).values():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].name() != "RESOURCE_NOT_FOUND":
                raise


@dataclass(frozen=True, slots=True)
class AccessChanges:
    users: int
    removed_users: list[str]
    acls: int
    created_acls: int
    removed_acls: int

    def __str__(self) -> str:
        removed = f", removed users: {', '.join(self.removed_users)}" if self.removed_users else ""
        return (
            f"{self.users} users{removed}; {self.acls} ACLs "
            f"({self.created_acls} created, {self.removed_acls} removed)"
        )


# The broker's default for SCRAM users; librdkafka's logins pay it once per connection.
SCRAM_ITERATIONS = 8192


# Producers and consumers deploy independently, in either order, and a consumer may read any event
# still on a topic (7 days) or replayed from a dead-letter topic: every version must be readable
# with every other, old by new (BACKWARD) and new by old (FORWARD), not only the one before it.
COMPATIBILITY = "FULL_TRANSITIVE"


def ensure_event_schemas(settings: Settings, event_types: Iterable[type[Event]] | None = None) -> list[str]:
    """Every event's subject at COMPATIBILITY, and its schema registered (idempotent: the same schema
    keeps its id). A schema the level refuses fails provisioning, naming the subject."""
    from shared.messaging.codec import EventCodec, registry_as, subject_name

    registry = registry_as(settings, REGISTRY_PROVISIONING)
    types = list(event_types or EVENT_TYPES.values())
    for event_type in types:  # the level first: it judges the version registered next
        registry.set_compatibility(subject_name=subject_name(event_type), level=COMPATIBILITY)
    EventCodec(registry).register(types)
    if "/apis/ccompat/" in settings.schema_registry_url:  # Apicurio; Confluent's has no owners
        ensure_subject_owners(settings, {subject_name(t): subject_owner(t) for t in types})
    return [subject_name(t) for t in types]


def subject_owner(event_type: type[Event]) -> str:
    """Who owns an event's subject in the registry: its owner, if that owner has a registry login
    (the storefront), else provisioning."""
    return event_type.owner if event_type.owner in REGISTRY_ROLES else REGISTRY_PROVISIONING


def registry_artifact_url(settings: Settings, subject: str) -> str:
    """A subject as Apicurio's core API (v3) knows it: an artifact of the default group, where its
    Confluent API keeps subjects (no X-Registry-GroupId header)."""
    root = settings.schema_registry_url.split("/apis/ccompat/")[0]
    return f"{root}/apis/registry/v3/groups/default/artifacts/{quote(subject, safe='')}"


def ensure_subject_owners(settings: Settings, owners: Mapping[str, str]) -> list[str]:
    """Give each subject its owner (Apicurio only). Only a subject's owner, or an admin, may change
    it; whoever creates a subject owns it, here provisioning: this hands the storefront its own, takes
    back one someone else created first, and migrates a registry from before owners counted. Returns
    the subjects changed."""
    user, _, password = settings.registry_login(REGISTRY_PROVISIONING).partition(":")
    changed: list[str] = []
    with httpx.Client(auth=(user, password), timeout=10) as client:
        for subject, owner in owners.items():
            url = registry_artifact_url(settings, subject)
            try:
                current = client.get(url).raise_for_status().json().get("owner")
                if current != owner:  # provisioning is sr-admin: it may hand over what it does not own
                    client.put(url, json={"owner": owner}).raise_for_status()
                    changed.append(subject)
                    log.info("%s: owner %s, was %s", subject, owner, current)
            except httpx.HTTPError as exc:
                raise ProvisioningError(f"{subject}: cannot make {owner} its owner: {exc}") from exc
    return changed


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
    parser.add_argument("what", choices=["topics", "access", "kafka", "schemas", "database", "all"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpx2"):  # every request, of the registry client and of its owners
        logging.getLogger(noisy).setLevel(logging.WARNING)
    settings = get_settings()
    try:
        if args.what in ("topics", "kafka", "all"):
            changed = ensure_topics(settings.kafka_client(ADMIN))
            log.info("topics ready (%d): created: %s", len(TOPICS), ", ".join(changed) or "none")
        if args.what in ("access", "kafka", "all"):
            log.info("kafka access ready: %s", ensure_access(settings))
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
