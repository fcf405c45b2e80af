"""shopctl's Kafka clients: who it is to the broker, and a first call that says why the broker will
not talk to it (unreachable, or its login refused) instead of timing out later."""

from __future__ import annotations

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from services.shopctl.errors import bad_input, unavailable
from shared.access import OPERATOR
from shared.messaging.kafka_clients import Refusals
from shared.settings import get_settings


def client(principal: str = OPERATOR) -> dict[str, object]:
    """librdkafka's settings for acting as `principal` (shared.access); a missing password is bad
    input, named."""
    try:
        return {**get_settings().kafka_client(principal), "log_level": 0}
    except ValueError as exc:
        raise bad_input(str(exc)) from exc


def checked(principal: str = OPERATOR, timeout: float = 5) -> dict[str, object]:
    """client(principal), once the broker has answered it."""
    config = client(principal)
    refusals = Refusals()
    admin = AdminClient({**config, "error_cb": refusals.note})
    try:
        admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        admin.poll(0)  # serves the error callbacks: a refused login is known there only
        where = config["bootstrap.servers"]
        refused = refusals.recent()
        if refused:
            raise unavailable(f"Kafka at {where} refused {principal!r}: {refused}") from exc
        raise unavailable(f"Kafka unreachable at {where}: {exc.args[0].str()}") from exc
    return config
