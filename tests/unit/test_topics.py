"""The topic catalogue's rules that need no broker."""

from shared.topics import DAY_MS, Replication, TopicSpec


def test_topics_are_replicated_as_the_cluster_allows():
    assert Replication.for_brokers(1) == Replication(1, 1)
    assert Replication.for_brokers(2) == Replication(1, 1)
    assert Replication.for_brokers(3) == Replication(3, 2)
    assert Replication.for_brokers(5) == Replication(3, 2)


def test_a_topics_configuration_follows_its_replication():
    spec = TopicSpec("x.events", 6, 7 * DAY_MS)
    assert spec.config(Replication(3, 2)) == {
        "retention.ms": str(7 * DAY_MS),
        "cleanup.policy": "delete",
        "min.insync.replicas": "2",
    }
