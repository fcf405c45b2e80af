"""The registry speaks Confluent's REST API for real: ids, compatibility, Avro serdes, who may write."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from shared.access import REGISTRY_PROVISIONING, REGISTRY_READER
from shared.messaging.codec import registry_as, schema_registry
from shared.topics import STOREFRONT

PROBE_V1 = {
    "type": "record",
    "name": "SmokeProbe",
    "namespace": "shop.smoke",
    "doc": "A record used only by the smoke tests.",
    "fields": [
        {"name": "order_id", "type": "string", "doc": "An order id."},
        {"name": "amount_minor", "type": "long", "doc": "Money in minor units."},
    ],
}


@pytest.fixture
def registry(settings):
    return registry_as(settings, REGISTRY_PROVISIONING)


@pytest.fixture
def subject(registry, unique):
    name = f"smoke.{unique}-value"
    yield name
    registry.delete_subject(name, permanent=False)
    registry.delete_subject(name, permanent=True)


def test_register_and_look_up_a_schema(registry, subject):
    schema_id = registry.register_schema(subject, Schema(json.dumps(PROBE_V1), "AVRO"))
    assert isinstance(schema_id, int)
    latest = registry.get_latest_version(subject)
    assert latest.schema_id == schema_id
    assert json.loads(registry.get_schema(schema_id).schema_str)["name"] == "SmokeProbe"
    # Registering the same schema again is idempotent: same id, no new version.
    assert registry.register_schema(subject, Schema(json.dumps(PROBE_V1), "AVRO")) == schema_id
    assert registry.get_versions(subject) == [latest.version]


def test_backward_compatibility_is_enforced_per_subject(registry, subject):
    registry.register_schema(subject, Schema(json.dumps(PROBE_V1), "AVRO"))
    registry.set_compatibility(subject_name=subject, level="BACKWARD")
    assert registry.get_compatibility(subject) == "BACKWARD"

    compatible = {
        **PROBE_V1,
        "fields": [*PROBE_V1["fields"], {"name": "note", "type": ["null", "string"], "default": None}],
    }
    registry.register_schema(subject, Schema(json.dumps(compatible), "AVRO"))

    # A new required field without default cannot read old data: BACKWARD says no.
    incompatible = {**PROBE_V1, "fields": [*PROBE_V1["fields"], {"name": "required", "type": "string"}]}
    with pytest.raises(SchemaRegistryError) as rejected:
        registry.register_schema(subject, Schema(json.dumps(incompatible), "AVRO"))
    assert rejected.value.http_status_code == 409


def test_avro_round_trip_through_the_registry(registry, subject, unique, settings):
    topic = subject.removesuffix("-value")
    serializer = AvroSerializer(registry, json.dumps(PROBE_V1), conf={"auto.register.schemas": True})
    deserializer = AvroDeserializer(registry)
    ctx = SerializationContext(topic, MessageField.VALUE)

    record = {"order_id": f"order-{unique}", "amount_minor": 12_345}
    payload = serializer(record, ctx)

    # Confluent wire format: magic byte 0, then the 4-byte schema id the registry assigned.
    assert payload[0] == 0
    schema_id = int.from_bytes(payload[1:5], "big")
    assert registry.get_latest_version(subject).schema_id == schema_id

    # A fresh client (empty cache) decodes it by asking the registry for that id.
    fresh = AvroDeserializer(registry_as(settings, REGISTRY_PROVISIONING))
    assert fresh(payload, ctx) == record
    assert deserializer(payload, ctx) == record


def _with_fields(*extra: dict) -> Schema:
    return Schema(json.dumps({**PROBE_V1, "fields": [*PROBE_V1["fields"], *extra]}), "AVRO")


def test_full_transitive_refuses_what_either_side_could_not_read(registry, subject):
    """The level provisioning sets: a version must be readable by every earlier one and read them all."""
    from shared.provision import COMPATIBILITY

    registry.set_compatibility(subject_name=subject, level=COMPATIBILITY)
    assert registry.get_compatibility(subject) == COMPATIBILITY
    registry.register_schema(subject, Schema(json.dumps(PROBE_V1), "AVRO"))
    optional = {"name": "note", "type": "string", "default": "", "doc": "With a default."}
    registry.register_schema(subject, _with_fields(optional))  # both ways readable
    required = {"name": "region", "type": "string", "doc": "No default: old events lack it."}
    with pytest.raises(SchemaRegistryError):
        registry.register_schema(subject, _with_fields(optional, required))
    # Dropping a field without a default: an older reader, needing it, could not read the new events.
    dropped = Schema(json.dumps({**PROBE_V1, "fields": PROBE_V1["fields"][:1]}), "AVRO")
    with pytest.raises(SchemaRegistryError):
        registry.register_schema(subject, dropped)


def test_provisioning_set_every_event_subject_and_registered_its_schema(registry, settings):
    from shared.contracts import EVENT_TYPES
    from shared.contracts.schemas import avro_schema_json
    from shared.messaging.codec import subject_name
    from shared.provision import COMPATIBILITY, ensure_event_schemas

    ensure_event_schemas(settings)  # idempotent: what the stack's start-up did, once more
    for event_type in EVENT_TYPES.values():
        subject = subject_name(event_type)
        assert registry.get_compatibility(subject) == COMPATIBILITY, subject
        registry.lookup_schema(subject, Schema(avro_schema_json(event_type), "AVRO"))


def test_writes_need_a_login_with_a_writing_role_and_reads_need_none(registry, subject, settings):
    """Anyone may read (services look their schemas up); registering and setting compatibility take
    provisioning's login, or the storefront's for its own schema (shared.access.REGISTRY_ROLES)."""
    schema = Schema(json.dumps(PROBE_V1), "AVRO")
    anonymous = schema_registry(settings.schema_registry_url)
    reader = registry_as(settings, REGISTRY_READER)
    wrong = schema_registry(settings.schema_registry_url, "provisioning:not-the-password")
    refusals = [(anonymous, 401), (wrong, 401)]
    if "/apis/ccompat/" in settings.schema_registry_url:  # Apicurio: roles; Confluent's: logins only
        refusals.append((reader, 403))
    for client, status in refusals:
        with pytest.raises(SchemaRegistryError) as refused:
            client.register_schema(subject, schema)
        assert refused.value.http_status_code == status
        with pytest.raises(SchemaRegistryError) as refused:
            client.set_compatibility(subject_name=subject, level="NONE")
        assert refused.value.http_status_code == status

    schema_id = registry_as(settings, STOREFRONT).register_schema(subject, schema)
    assert anonymous.get_schema(schema_id).schema_str
    assert reader.lookup_schema(subject, schema).schema_id == schema_id  # a POST, but a read
    assert registry.set_compatibility(subject_name=subject, level="FULL_TRANSITIVE")


NOTE = {"name": "note", "type": "string", "default": "", "doc": "With a default."}


def _owner_checked(settings) -> None:
    if "/apis/ccompat/" not in settings.schema_registry_url:
        pytest.skip("Confluent's open-source registry has no owners: any login may write any subject")


def _refused(status: int, attempt) -> None:
    with pytest.raises(SchemaRegistryError) as refused:
        attempt()
    assert refused.value.http_status_code == status


def test_the_storefront_may_not_change_another_owners_subject(registry, subject, settings):
    """Apicurio's owner-only authorization: a writer (sr-developer) changes only the subjects it owns;
    provisioning (sr-admin) changes any."""
    from shared.contracts import EVENT_TYPES
    from shared.messaging.codec import subject_name
    from shared.provision import registry_artifact_url

    _owner_checked(settings)
    storefront = registry_as(settings, STOREFRONT)
    registry.register_schema(subject, Schema(json.dumps(PROBE_V1), "AVRO"))  # provisioning owns it
    _refused(403, lambda: storefront.register_schema(subject, _with_fields(NOTE)))
    _refused(403, lambda: storefront.set_compatibility(subject_name=subject, level="NONE"))
    _refused(403, lambda: storefront.delete_version(subject, 1))
    _refused(403, lambda: storefront.delete_subject(subject))
    # Nor may it make itself the owner, through Apicurio's own API.
    user, _, password = settings.registry_login(STOREFRONT).partition(":")
    taken = httpx.put(
        registry_artifact_url(settings, subject),
        json={"owner": STOREFRONT},
        auth=(user, password),
        timeout=10,
    )
    assert taken.status_code == 403
    assert registry.get_versions(subject) == [1]
    registry.register_schema(subject, _with_fields(NOTE))  # provisioning still may

    # A real subject, with a schema no level takes: 403, not 409, says the owner check refused it
    # before compatibility was asked; so nothing can be written to it.
    paid = subject_name(EVENT_TYPES["PaymentCompleted"])
    _refused(403, lambda: storefront.register_schema(paid, Schema('"string"', "AVRO")))
    _refused(409, lambda: registry.register_schema(paid, Schema('"string"', "AVRO")))


def test_the_storefront_changes_the_subjects_it_owns(registry, subject, settings):
    """Provisioning registers every schema, then hands each subject to its event's owner if that owner
    has a registry login: the storefront gets OrderPlaced's, and registers it itself (shopctl)."""
    from shared.contracts import EVENT_TYPES
    from shared.messaging.codec import EventCodec, subject_name
    from shared.provision import ensure_subject_owners, registry_artifact_url, subject_owner

    _owner_checked(settings)
    for event_type in EVENT_TYPES.values():  # reads need no login
        meta = httpx.get(registry_artifact_url(settings, subject_name(event_type)), timeout=10).json()
        assert meta["owner"] == subject_owner(event_type), event_type.__name__
    placed = EVENT_TYPES["OrderPlaced"]
    assert subject_owner(placed) == STOREFRONT

    storefront = registry_as(settings, STOREFRONT)
    EventCodec(storefront).register([placed])  # what shopctl does: the same schema, the same version
    # A schema no level takes: 409, not 403, says the owner check let it through to compatibility.
    _refused(409, lambda: storefront.register_schema(subject_name(placed), Schema('"string"', "AVRO")))

    # A subject provisioning created is the storefront's once handed over (how an older registry,
    # where provisioning created OrderPlaced's subject, is migrated); handing it twice changes nothing.
    registry.register_schema(subject, Schema(json.dumps(PROBE_V1), "AVRO"))
    _refused(403, lambda: storefront.register_schema(subject, _with_fields(NOTE)))
    assert ensure_subject_owners(settings, {subject: STOREFRONT}) == [subject]
    assert ensure_subject_owners(settings, {subject: STOREFRONT}) == []
    storefront.register_schema(subject, _with_fields(NOTE))
    assert registry.get_versions(subject) == [1, 2]
    assert registry.set_compatibility(subject_name=subject, level="FULL_TRANSITIVE")  # provisioning's still


def test_composes_registry_healthcheck_reads_with_bash_alone(settings, tmp_path):
    """deploy/compose/schema-registry/healthcheck.sh, run here against this registry at its path: an
    authenticated read answers 200; a wrong login does not pass."""
    url = urlsplit(settings.schema_registry_url)
    script = Path(__file__).resolve().parents[2] / "deploy/compose/schema-registry/healthcheck.sh"

    def probe(password: str) -> int:
        auth = tmp_path / "auth"
        auth.write_text(base64.b64encode(f"reader:{password}".encode()).decode())
        done = subprocess.run(
            ["bash", str(script), str(url.port), f"{url.path.rstrip('/')}/subjects"],
            env={"PATH": os.environ["PATH"], "HEALTHCHECK_AUTH": str(auth)},
            capture_output=True,
            timeout=10,
        )
        return done.returncode

    assert probe(settings.schema_registry_reader_password or "") == 0
    assert probe("not-the-password") != 0
