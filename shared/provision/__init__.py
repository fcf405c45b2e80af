"""Create what the system needs before any service starts: its topics, Kafka users and ACLs, its
databases, roles and schemas, and the events' schemas in the registry.

Idempotent, so every start-up may run it. docker compose runs it as one-shot jobs; the no-Docker stack
runs it after its components are healthy.
Usage: `python -m shared.provision {topics|access|kafka|schemas|database|all}` (kafka: topics and access).
"""

from shared.provision.database import (
    ensure_owned_database,
    ensure_reader,
    ensure_roles_and_schemas,
    set_role_timeouts,
)
from shared.provision.errors import ProvisioningError
from shared.provision.kafka import AccessChanges, ensure_access, ensure_topics, set_scram_passwords
from shared.provision.registry import (
    COMPATIBILITY,
    ensure_event_schemas,
    ensure_subject_owners,
    registry_artifact_url,
    subject_owner,
)

__all__ = [
    "COMPATIBILITY",
    "AccessChanges",
    "ProvisioningError",
    "ensure_access",
    "ensure_event_schemas",
    "ensure_owned_database",
    "ensure_reader",
    "ensure_roles_and_schemas",
    "ensure_subject_owners",
    "ensure_topics",
    "registry_artifact_url",
    "set_role_timeouts",
    "set_scram_passwords",
    "subject_owner",
]
