"""Who may do what on the broker: one principal per process, and the ACLs provisioning grants each.

The broker refuses everything no ACL allows (StandardAuthorizer, allow.everyone.if.no.acl.found=false),
so this table is the whole of what each client may do; provisioning makes the broker's ACLs exactly
this (`shared.provision.ensure_access`), removing any it no longer names. Adding a service: give it a
line in HEARS and a principal comes with it (README: Security).
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)

from shared.settings import PROCESSES, SERVICES, ServiceName
from shared.topics import OWNERS, STOREFRONT, dead_letter_topic, events_topic, topic_owners

# What each process hears: the owners whose events its handler table names. tests/unit/test_access.py
# holds this to the handler tables, so that a new handler cannot go unheard (or a removed one stay
# readable).
HEARS: dict[ServiceName, tuple[str, ...]] = {
    "order": ("storefront", "inventory", "payment", "shipping"),
    "inventory": ("storefront", "order", "payment", "shipping"),
    "payment": ("storefront", "order", "inventory", "shipping"),
    "shipping": ("storefront", "order", "inventory"),
    "timeline": OWNERS,
}

# The broker's own user (inter-broker traffic, provisioning, tests): a super user, created when the
# storage is formatted, never by an ACL.
ADMIN = "admin"
# shopctl's: publishing any fact, replaying dead letters, and reading what the operator looks at.
OPERATOR = "operator"
# Confluent's registry in docker compose keeps its schemas in Kafka; Kafka UI there reads everything.
SCHEMA_REGISTRY = "schema-registry"
UI = "ui"
# The consumer groups shopctl's own reads use (dead letters, status): all start with this.
OPERATOR_GROUP_PREFIX = "shopctl-"
SCHEMAS_TOPIC = "_schemas"
SCHEMA_REGISTRY_GROUP = "schema-registry"

ANY = "*"  # Kafka's wildcard resource name

# The schema registry's logins (HTTP basic) and what each may do: provisioning registers every schema
# and sets compatibility; the storefront registers its own (shopctl); every other client (services,
# shopctl's reads, tests) reads as the reader. Roles are Apicurio's; Confluent's open-source registry
# only authenticates (README: Security).
REGISTRY_PROVISIONING = "provisioning"
REGISTRY_READER = "reader"
REGISTRY_ROLES: dict[str, str] = {
    REGISTRY_PROVISIONING: "sr-admin",
    STOREFRONT: "sr-developer",
    REGISTRY_READER: "sr-readonly",
}


@dataclass(frozen=True, slots=True)
class Grant:
    resource: ResourceType
    name: str
    operations: tuple[AclOperation, ...]
    prefixed: bool = False


def _topics(names: tuple[str, ...] | list[str], *operations: AclOperation) -> list[Grant]:
    return [Grant(ResourceType.TOPIC, n, operations) for n in names]


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    grants: tuple[Grant, ...]

    def acls(self) -> set[AclBinding]:
        pattern = {False: ResourcePatternType.LITERAL, True: ResourcePatternType.PREFIXED}
        return {
            AclBinding(
                g.resource, g.name, pattern[g.prefixed], f"User:{self.name}", "*", op,
                AclPermissionType.ALLOW,
            )
            for g in self.grants
            for op in g.operations
        }  # fmt: skip


def process_principal(process: ServiceName) -> Principal:
    """A service or the timeline: writes its own topics, reads what it hears, joins its own group.
    (WRITE and READ imply DESCRIBE; an idempotent producer needs WRITE alone.)"""
    own = [dead_letter_topic(process)] + ([events_topic(process)] if process in SERVICES else [])
    heard = [events_topic(owner) for owner in HEARS[process]]
    return Principal(
        process,
        (
            *_topics(own, AclOperation.WRITE),
            *_topics(heard, AclOperation.READ),
            Grant(ResourceType.GROUP, process, (AclOperation.READ,)),
        ),
    )


R, W, D = AclOperation.READ, AclOperation.WRITE, AclOperation.DESCRIBE
PRINCIPALS: tuple[Principal, ...] = (
    *(process_principal(p) for p in PROCESSES),
    Principal(
        OPERATOR,
        (
            # Publishing any fact (shopctl publish) and replaying a dead letter to its topic; reading
            # a dead letter, and the original a stub stands for on its topic. Never in a service's group.
            *_topics([events_topic(o) for o in OWNERS], R, W),
            *_topics([dead_letter_topic(p) for p in PROCESSES], R),
            Grant(ResourceType.GROUP, OPERATOR_GROUP_PREFIX, (R,), prefixed=True),
            # Lag and replay outcomes: every group's committed offsets, every topic's ends.
            Grant(ResourceType.GROUP, ANY, (D,)),
            Grant(ResourceType.TOPIC, ANY, (D,)),
        ),
    ),
    # Places orders: OrderPlaced, on its own topic, and nothing else.
    Principal(STOREFRONT, tuple(_topics([events_topic(STOREFRONT)], W))),
    Principal(
        SCHEMA_REGISTRY,
        (
            Grant(ResourceType.TOPIC, SCHEMAS_TOPIC, (AclOperation.ALL,)),
            Grant(ResourceType.GROUP, SCHEMA_REGISTRY_GROUP, (AclOperation.ALL,)),
        ),
    ),
    Principal(
        UI,
        (
            Grant(ResourceType.TOPIC, ANY, (R, D, AclOperation.DESCRIBE_CONFIGS)),
            Grant(ResourceType.GROUP, ANY, (D,)),
            Grant(ResourceType.BROKER, "kafka-cluster", (D, AclOperation.DESCRIBE_CONFIGS)),
        ),
    ),
)
PRINCIPAL_NAMES: tuple[str, ...] = (ADMIN, *(p.name for p in PRINCIPALS))


def desired_acls() -> set[AclBinding]:
    return set().union(*(p.acls() for p in PRINCIPALS))


def writers_of(topic: str) -> set[str]:
    """The principals that may write `topic` (the admin aside)."""
    return {
        p.name
        for p in PRINCIPALS
        for g in p.grants
        if g.resource == ResourceType.TOPIC
        and {AclOperation.WRITE, AclOperation.ALL} & set(g.operations)
        and (g.name == topic or g.name == ANY or (g.prefixed and topic.startswith(g.name)))
    }


def replayable_topics() -> frozenset[str]:
    """The events topics where a dead letter's replay header may be believed: a service's, which only
    it and the operator may write. Anyone else able to write a topic could forge the header and make
    every other group skip a record unread; so could the storefront, the one owner outside the
    runtime, on its own OrderPlaced (only payment would act on it). Where the header is not believed,
    a replay reaches every group, and those that handled the record skip it as handled."""
    return frozenset(
        topic
        for topic, owner in topic_owners().items()
        if owner in SERVICES and writers_of(topic) <= {owner, OPERATOR}
    )
