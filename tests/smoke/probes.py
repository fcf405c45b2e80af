"""Probes of the broker shared by the access and TLS tests."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient


def refused_login(config: dict[str, object]) -> list[KafkaError]:
    """The errors a client with `config` gets asking for metadata, which must fail."""
    errors: list[KafkaError] = []
    admin = AdminClient({**config, "log_level": 0, "error_cb": errors.append})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=4)
    admin.poll(0)  # serves the error callbacks
    return errors
