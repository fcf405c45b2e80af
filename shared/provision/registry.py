"""Every event's subject at the chosen compatibility, its schema registered, and its owner (Apicurio)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from urllib.parse import quote

import httpx

from shared.access import (
    REGISTRY_PROVISIONING,
    REGISTRY_ROLES,
)
from shared.contracts import EVENT_TYPES, Event
from shared.provision.errors import ProvisioningError
from shared.settings import Settings

log = logging.getLogger("provision")


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
