"""What the running system registered: every event type under its subject, at the compatibility level
provisioning sets (FULL_TRANSITIVE), exactly the schema the code holds."""

from __future__ import annotations

import json

import fastavro

from shared.access import REGISTRY_PROVISIONING
from shared.contracts import EVENT_TYPES
from shared.contracts.schemas import avro_schema
from shared.messaging.codec import registry_as, subject_name
from shared.provision import COMPATIBILITY


def test_every_event_type_is_registered_at_the_provisioned_level_as_in_the_code(
    settings, services, storefront
):
    registry = registry_as(settings, REGISTRY_PROVISIONING)
    for event_type in EVENT_TYPES.values():
        subject = subject_name(event_type)
        assert registry.get_compatibility(subject) == COMPATIBILITY, subject
        registered = json.loads(registry.get_latest_version(subject).schema.schema_str)
        canonical = fastavro.schema.to_parsing_canonical_form
        assert canonical(registered) == canonical(avro_schema(event_type)), subject
