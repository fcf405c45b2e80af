"""The broker's access catalogue (shared/access.py) against the code it describes: what each process
hears is what its handler table names, and nobody may write a topic it does not own."""

from __future__ import annotations

import importlib

import pytest
from confluent_kafka.admin import AclOperation, ResourceType

from shared.access import (
    ADMIN,
    HEARS,
    OPERATOR,
    PRINCIPAL_NAMES,
    PRINCIPALS,
    desired_acls,
    replayable_topics,
    writers_of,
)
from shared.contracts import EVENT_TYPES, OrderPlaced
from shared.settings import PROCESSES, SERVICES, Settings
from shared.topics import OWNERS, STOREFRONT, TOPICS, dead_letter_topic, events_topic, namespace, topic_owners

BY_NAME = {p.name: p for p in PRINCIPALS}


def topics_granted(principal: str, operation: AclOperation) -> set[str]:
    return {
        g.name
        for g in BY_NAME[principal].grants
        if g.resource == ResourceType.TOPIC and operation in g.operations and not g.prefixed
    }


@pytest.mark.parametrize("process", PROCESSES)
def test_a_process_hears_exactly_the_owners_of_the_events_it_handles(process):
    handlers = importlib.import_module(f"services.{process}.handlers").HANDLERS
    assert set(HEARS[process]) == {event_type.owner for event_type in handlers}


@pytest.mark.parametrize("process", PROCESSES)
def test_a_process_reads_what_it_hears_writes_only_its_own_and_joins_only_its_group(process):
    assert topics_granted(process, AclOperation.READ) == {events_topic(o) for o in HEARS[process]}
    written = topics_granted(process, AclOperation.WRITE)
    assert written and all(t.startswith(namespace(process)) for t in written)
    assert dead_letter_topic(process) in written
    groups = {g.name for g in BY_NAME[process].grants if g.resource == ResourceType.GROUP}
    assert groups == {process}
    assert all(not g.prefixed and g.name != "*" for g in BY_NAME[process].grants)


def test_only_the_operator_writes_facts_it_does_not_own():
    for principal in PRINCIPALS:
        for topic in topics_granted(principal.name, AclOperation.WRITE):
            owner = topic.split(".")[0]
            assert owner == principal.name or principal.name == OPERATOR, (principal.name, topic)
    assert topics_granted(OPERATOR, AclOperation.WRITE) == {events_topic(o) for o in OWNERS}


def test_the_storefront_writes_order_placed_only():
    assert topics_granted(STOREFRONT, AclOperation.WRITE) == {events_topic(OrderPlaced.owner)}
    assert [t for t in EVENT_TYPES.values() if t.owner == STOREFRONT] == [OrderPlaced]
    assert not topics_granted(STOREFRONT, AclOperation.READ)


def test_a_replay_header_is_believed_only_where_the_operator_is_the_only_other_writer():
    # The storefront's topic is not: the weakest writer could make one group alone act on an order.
    assert replayable_topics() == {events_topic(s) for s in SERVICES}
    for topic, owner in topic_owners().items():
        assert writers_of(topic) == {owner, OPERATOR}


def test_every_granted_topic_is_in_the_catalogue():
    catalogue = {t.name for t in TOPICS}
    for principal in PRINCIPALS:
        for grant in principal.grants:
            if grant.resource == ResourceType.TOPIC and grant.name not in ("*", "_schemas"):
                assert grant.name in catalogue, (principal.name, grant.name)


def test_no_acl_names_the_admin_and_every_principal_has_a_password_setting():
    assert all(b.principal != f"User:{ADMIN}" for b in desired_acls())
    fields = set(Settings.model_fields)
    assert {f"kafka_{n.replace('-', '_')}_password" for n in PRINCIPAL_NAMES} <= fields
