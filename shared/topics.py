"""The catalogue of every Kafka topic the system uses.

One topic per owner carries all of that owner's events, keyed by order id, so the events of one order
that an owner publishes stay in order: the storefront's (OrderPlaced) and each service's. One
dead-letter topic per consuming process holds what its consumer could not handle.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.settings import PROCESSES, SERVICES

DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int

    def config(self, replication: Replication) -> dict[str, str]:
        """What the topic's configuration must be, on a cluster replicating so."""
        return {
            "retention.ms": str(self.retention_ms),
            "cleanup.policy": "delete",
            "min.insync.replicas": str(replication.min_insync),
        }


@dataclass(frozen=True, slots=True)
class Replication:
    """How many copies of each partition, and how many must have a write before it is acknowledged
    (producers ask acks=all): with three brokers, 3 and 2, so an acknowledged write survives the loss
    of any one broker and writes go on while one is away; with fewer, what the cluster can hold."""

    factor: int
    min_insync: int

    @classmethod
    def for_brokers(cls, brokers: int) -> Replication:
        return cls(3, 2) if brokers >= 3 else cls(1, 1)


# Where orders come from: not a process on the runtime, a publisher with a topic (and principal) of
# its own (shopctl's `order place`, the tests' storefront).
STOREFRONT = "storefront"
# Everyone who publishes facts, each on its own events topic.
OWNERS: tuple[str, ...] = (STOREFRONT, *SERVICES)


def namespace(service: str) -> str:
    """The prefix of every topic a service owns: only it publishes there (its relay sends nowhere
    else)."""
    return f"{service}."


def events_topic(service: str) -> str:
    return f"{namespace(service)}events"


def dead_letter_topic(service: str) -> str:
    return f"{namespace(service)}dlt"


def topic_owners() -> dict[str, str]:
    """Each events topic's owner: the only `source` a record on it may name."""
    return {events_topic(o): o for o in OWNERS}


EVENT_PARTITIONS = 6
TOPICS: tuple[TopicSpec, ...] = (
    *(TopicSpec(events_topic(o), EVENT_PARTITIONS, 7 * DAY_MS) for o in OWNERS),
    *(TopicSpec(dead_letter_topic(s), 1, 28 * DAY_MS) for s in PROCESSES),
)
