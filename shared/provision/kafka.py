"""Topics as the catalogue says (shared/topics.py), and who may do what on the broker (shared/access.py):
SCRAM users and ACLs, created and removed to match."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

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

from shared.access import (
    ADMIN,
    PRINCIPAL_NAMES,
    PRINCIPALS,
    desired_acls,
)
from shared.provision.errors import ProvisioningError
from shared.settings import Settings
from shared.topics import TOPICS, Replication, TopicSpec


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
