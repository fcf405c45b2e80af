"""Kafka is a real broker: topics are created, and records keep their keys and per-partition order."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

from shared.provision import ProvisioningError, ensure_topics
from shared.topics import DAY_MS, TOPICS, Replication, TopicSpec

SET = AlterConfigOpType.SET


def test_produce_and_consume_through_a_new_topic(kafka_config, unique):
    admin = AdminClient(kafka_config)
    topic = f"smoke.{unique}"
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(timeout=30)
    try:
        producer = Producer({**kafka_config, "enable.idempotence": True, "acks": "all"})
        sent = [(f"order-{i % 4}", f"event-{i}") for i in range(40)]
        reports = []
        for key, value in sent:
            producer.produce(topic, key=key, value=value, on_delivery=lambda err, msg: reports.append(err))
        assert producer.flush(30) == 0
        assert reports == [None] * len(sent)

        consumer = Consumer(
            {
                **kafka_config,
                "group.id": f"smoke-{unique}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe([topic])
        received = []
        try:
            while len(received) < len(sent):
                msg = consumer.poll(10)
                assert msg is not None, f"only {len(received)} of {len(sent)} records came back"
                assert msg.error() is None, msg.error()
                received.append((msg.key().decode(), msg.value().decode(), msg.partition()))
        finally:
            consumer.close()

        # Same key, same partition, in the order sent.
        for key in {k for k, _ in sent}:
            assert [v for k, v, _ in received if k == key] == [v for k, v in sent if k == key]
            assert len({p for k, _, p in received if k == key}) == 1
    finally:
        admin.delete_topics([topic])[topic].result(timeout=30)


def test_every_system_topic_exists_as_specified(kafka_config):
    topics = AdminClient(kafka_config).list_topics(timeout=10).topics
    for spec in TOPICS:
        assert spec.name in topics, f"{spec.name} missing: run `python -m shared.provision topics`"
        assert len(topics[spec.name].partitions) == spec.partitions


def test_topics_are_not_created_by_accident(kafka_config, unique):
    """auto.create.topics.enable=false: producing to a misspelt topic fails instead of creating it."""
    producer = Producer({**kafka_config, "message.timeout.ms": 3000})
    errors = []
    producer.produce(f"no-such-topic.{unique}", value=b"x", on_delivery=lambda err, msg: errors.append(err))
    producer.flush(10)
    assert errors and errors[0] is not None
    assert f"no-such-topic.{unique}" not in AdminClient(kafka_config).list_topics(timeout=10).topics


def test_provisioning_creates_what_is_missing_and_never_adds_partitions(kafka_config, unique):
    admin = AdminClient(kafka_config)
    spec = TopicSpec(f"provision.{unique}", 2, DAY_MS)
    try:
        assert ensure_topics(kafka_config, [spec]) == [spec.name]
        assert ensure_topics(kafka_config, [spec]) == [], "idempotent"

        wider = TopicSpec(spec.name, 4, DAY_MS)
        with pytest.raises(ProvisioningError, match=rf"{spec.name} has 2 partitions, the catalogue asks 4"):
            ensure_topics(kafka_config, [wider])
        assert len(admin.list_topics(spec.name, timeout=10).topics[spec.name].partitions) == 2
    finally:
        admin.delete_topics([spec.name])[spec.name].result(timeout=30)


def test_provisioning_refuses_a_topic_whose_configuration_drifted(kafka_config, unique):
    """Retention, cleanup policy or min.insync.replicas changed by hand: provisioning names each and
    changes nothing, rather than accept it or quietly set it back."""
    admin = AdminClient(kafka_config)
    spec = TopicSpec(f"drift.{unique}", 1, DAY_MS)
    resource = ConfigResource(ConfigResource.Type.TOPIC, spec.name)
    try:
        assert ensure_topics(kafka_config, [spec]) == [spec.name]
        configs = admin.describe_configs([resource])[resource].result()
        replication = Replication.for_brokers(len(admin.list_topics(timeout=10).brokers))
        assert {k: configs[k].value for k in spec.config(replication)} == spec.config(replication)

        resource.add_incremental_config(ConfigEntry("retention.ms", "1000", incremental_operation=SET))
        resource.add_incremental_config(ConfigEntry("cleanup.policy", "compact", incremental_operation=SET))
        admin.incremental_alter_configs([resource])[resource].result(timeout=30)
        with pytest.raises(ProvisioningError) as refused:
            ensure_topics(kafka_config, [spec])
        assert f"{spec.name} has retention.ms=1000, the catalogue says {DAY_MS}" in str(refused.value)
        assert f"{spec.name} has cleanup.policy=compact, the catalogue says delete" in str(refused.value)
        configs = admin.describe_configs([resource])[resource].result()
        assert configs["retention.ms"].value == "1000", "left as it is, for an operator to decide"
    finally:
        admin.delete_topics([spec.name])[spec.name].result(timeout=30)
