"""The catalogue of every Kafka topic the system uses.

One topic per owning service carries all of that service's events, keyed by order id, so the events
of one order that a service publishes stay in order. One dead-letter topic per consuming service holds
what that service's consumer could not handle.
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

    def config(self) -> dict[str, str]:
        return {"retention.ms": str(self.retention_ms), "cleanup.policy": "delete"}


def namespace(service: str) -> str:
    """The prefix of every topic a service owns: only it publishes there (its relay sends nowhere
    else)."""
    return f"{service}."


def events_topic(service: str) -> str:
    return f"{namespace(service)}events"


def dead_letter_topic(service: str) -> str:
    return f"{namespace(service)}dlt"


EVENT_PARTITIONS = 6
TOPICS: tuple[TopicSpec, ...] = (
    *(TopicSpec(events_topic(s), EVENT_PARTITIONS, 7 * DAY_MS) for s in SERVICES),
    *(TopicSpec(dead_letter_topic(s), 1, 28 * DAY_MS) for s in PROCESSES),
)
