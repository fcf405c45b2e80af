"""How promptly the broker answers each consumer's fetches (kafka_clients.Fetching), as librdkafka takes it.

That the timeline still records every event with its fetches unhurried is what the read-model tests
check, against the real broker."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, KafkaException

from shared.messaging.kafka_clients import PROMPT, UNHURRIED, Fetching, consumer_config

CLIENT = {"bootstrap.servers": "localhost:1"}  # never reached: a consumer connects on subscribe


@pytest.mark.parametrize("fetching", [PROMPT, UNHURRIED])
def test_each_fetching_is_what_the_consumer_is_configured_with(fetching: Fetching) -> None:
    config = consumer_config(CLIENT, "g", fetching)
    assert (config["fetch.wait.max.ms"], config["fetch.min.bytes"]) == (fetching.wait_ms, fetching.min_bytes)
    Consumer(config).close()  # librdkafka checks every value against its range here


def test_a_consumer_is_prompt_unless_told_otherwise() -> None:
    assert consumer_config(CLIENT, "g")["fetch.wait.max.ms"] == PROMPT.wait_ms == 10


def test_unhurried_holds_fetches_longer_and_for_more_than_prompt() -> None:
    assert UNHURRIED.wait_ms > PROMPT.wait_ms and UNHURRIED.min_bytes > PROMPT.min_bytes


def test_librdkafka_refuses_a_fetching_out_of_its_range() -> None:
    with pytest.raises(KafkaException, match=r"fetch\.wait\.max\.ms"):
        Consumer(consumer_config(CLIENT, "g", Fetching(wait_ms=-1, min_bytes=1)))
