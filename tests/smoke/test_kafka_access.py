"""The broker's logins and ACLs, tried against the real broker: every principal does its own job and
nothing else (shared/access.py), and a client without a login gets nothing at all."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer

from shared.access import HEARS, OPERATOR
from shared.messaging.kafka_clients import Refusals, producer_config
from shared.settings import PROCESSES, SERVICES, Settings
from shared.topics import STOREFRONT, dead_letter_topic, events_topic
from tests.smoke.probes import refused_login


def send(settings: Settings, principal: str, topic: str) -> KafkaError | None:
    """One probe record from `principal`: the delivery's error, or None if the broker took it."""
    outcome: list[KafkaError | None] = []
    producer = Producer({**producer_config(settings.kafka_client(principal)), "log_level": 0})
    producer.produce(topic, value=b"access probe", on_delivery=lambda err, _: outcome.append(err))
    producer.flush(20)
    assert outcome, f"no delivery report for {principal} -> {topic}"
    return outcome[0]


def described(settings: Settings, principal: str, topic: str) -> int | None:
    """The error the broker gives `principal` asking about `topic`, or None. Without READ (which
    implies DESCRIBE) it is TOPIC_AUTHORIZATION_FAILED: the topic is not even shown, and a fetch would
    be refused the same way (an assigned consumer only waits, silently)."""
    consumer = Consumer({**settings.kafka_client(principal), "group.id": principal, "log_level": 0})
    try:
        error = consumer.list_topics(topic, timeout=10).topics[topic].error
        return None if error is None else error.code()
    finally:
        consumer.close()


def refusal_on_subscribe(settings: Settings, principal: str, topic: str, group: str) -> int | None:
    """What the broker says when `principal` subscribes to `topic` in `group`: the error code of the
    first refusal, or None if records or silence came instead."""
    consumer = Consumer(
        {
            **settings.kafka_client(principal),
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "log_level": 0,
        }
    )
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            msg = consumer.poll(1)
            if msg is not None and msg.error() is not None:
                return msg.error().code()
            if msg is not None:
                return None
        return None
    finally:
        consumer.close()


@pytest.mark.parametrize("process", PROCESSES)
def test_a_process_may_not_write_another_process_dead_letters(settings, process):
    # What each may do, it does in every end-to-end test: the services run as their principals.
    other = next(p for p in PROCESSES if p != process)
    refused = send(settings, process, dead_letter_topic(other))
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


@pytest.mark.parametrize("process", PROCESSES)
def test_a_process_may_not_publish_another_owners_facts(settings, process):
    for owner in SERVICES:
        if owner != process:
            refused = send(settings, process, events_topic(owner))
            assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, owner


@pytest.mark.parametrize("process", PROCESSES)
def test_a_process_may_not_read_a_topic_it_does_not_hear(settings, process):
    other = next(p for p in PROCESSES if p != process)
    unheard = [dead_letter_topic(other)] + [
        events_topic(s) for s in SERVICES if s not in HEARS[process] and s != process
    ]  # its own topics it may describe: it writes them
    for topic in unheard:
        assert described(settings, process, topic) == KafkaError.TOPIC_AUTHORIZATION_FAILED, topic
    assert described(settings, process, events_topic(HEARS[process][0])) is None


@pytest.mark.parametrize("process", PROCESSES)
def test_a_process_may_not_join_another_group(settings, process):
    other = next(p for p in PROCESSES if p != process)
    topic = events_topic(HEARS[process][0])
    assert refusal_on_subscribe(settings, process, topic, other) == KafkaError.GROUP_AUTHORIZATION_FAILED


def test_the_operator_may_not_join_a_service_group_or_write_dead_letters(settings):
    code = refusal_on_subscribe(settings, OPERATOR, dead_letter_topic("payment"), "payment")
    assert code == KafkaError.GROUP_AUTHORIZATION_FAILED
    refused = send(settings, OPERATOR, dead_letter_topic("payment"))
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_a_client_without_a_login_is_refused(settings):
    errors = refused_login({"bootstrap.servers": settings.kafka_bootstrap_servers})
    assert errors, "the broker answered a client that did not log in"


def test_a_wrong_password_is_refused_as_an_authentication_failure(settings):
    config = {**settings.kafka_client("payment"), "sasl.password": "not-the-password"}
    errors = refused_login(config)
    refusals = Refusals()
    assert any(refusals.note(e) for e in errors), [e.str() for e in errors]
    assert errors[0].code() == KafkaError._AUTHENTICATION


def test_the_storefront_may_place_orders_and_publish_nothing_else(settings):
    for owner in SERVICES:  # PaymentCompleted, StockReserved, ...: none is the storefront's
        refused = send(settings, STOREFRONT, events_topic(owner))
        assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, owner
    for process in PROCESSES:
        assert (
            described(settings, STOREFRONT, dead_letter_topic(process))
            == KafkaError.TOPIC_AUTHORIZATION_FAILED
        )
    assert described(settings, STOREFRONT, events_topic(STOREFRONT)) is None  # its own: it writes there
