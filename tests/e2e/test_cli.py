"""shopctl against the real stack and running services, run as the installed command."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from shared.access import HEARS
from shared.messaging.kafka_clients import producer_config
from shared.settings import PROCESSES
from shared.topics import OWNERS, dead_letter_topic, events_topic
from tests.e2e.support import REPO

SHOPCTL = shutil.which("shopctl") or str(Path(os.sys.executable).parent / "shopctl")
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def shopctl(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SHOPCTL, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


EVENT_TOPICS = [events_topic(o) for o in OWNERS]


def orders_placed_since(settings, before: dict[str, int]) -> int:
    """Events with source storefront (shopctl's order place, publish and load) between the offsets of
    `before` and now (services publish meanwhile)."""
    consumer = Consumer({**settings.kafka_client("admin"), "group.id": "cli-test"})
    try:
        found = 0
        for position, start in before.items():
            topic, partition = position[:-1].split("[")
            tp = TopicPartition(topic, int(partition), start)
            _, end = consumer.get_watermark_offsets(tp, timeout=10)
            if end <= start:
                continue
            consumer.assign([tp])
            seen = start
            while seen < end:
                msg = consumer.poll(10)
                assert msg is not None, f"{position}: could not read up to {end}"
                seen = msg.offset() + 1
                found += dict(msg.headers() or []).get("source") == b"storefront"
        return found
    finally:
        consumer.close()


def high_watermarks(settings, topics) -> dict[str, int]:
    consumer = Consumer({**settings.kafka_client("admin"), "group.id": "cli-tests"})
    try:
        return {
            f"{t}[{p}]": consumer.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
            for t in topics
            for p in consumer.list_topics(t, timeout=10).topics[t].partitions
        }
    finally:
        consumer.close()


def test_place_an_order_wait_for_it_and_follow_it(settings, services, customer, sku):
    placed = shopctl("order", "place", "--customer", customer, "--item", f"{sku}:2@3.00", "--wait")
    assert placed.returncode == 0, placed.stderr
    order_id = re.search(rf"order ({UUID}) placed", placed.stdout)[1]
    correlation = re.search(rf"correlation id ({UUID})", placed.stdout)[1]
    assert "outcome: completed" in placed.stdout, placed.stdout[-600:]
    # --wait waits until every service has acted: inventory's StockShipped comes alongside OrderCompleted.
    for step in ("PaymentCompleted", "StockReserved", "ShipmentCreated", "OrderCompleted", "StockShipped"):
        assert step in placed.stdout
    assert re.search(r"inventory\s+│ StockShipped, tracking_number=TRK-", placed.stdout), placed.stdout
    short_ids = re.findall(r"│ \w+\s+│ \w+\s+│ ([0-9a-f]{8}) │", placed.stdout)
    assert len(short_ids) == 6 and len(set(short_ids)) == 6, "each event told apart by its short id"

    for args in ([order_id], ["--correlation", correlation]):
        shown = shopctl("order", "show", *args)
        assert shown.returncode == 0, shown.stderr
        assert f"order {order_id}" in shown.stdout and "outcome: completed" in shown.stdout
        assert re.search(r"trace: http://\S+/trace/[0-9a-f]{32}", shown.stdout)
        assert re.search(r"payment\s+│ PaymentCompleted, amount=6.00", shown.stdout)
        assert re.search(r"inventory\s+│ StockShipped, tracking_number=TRK-", shown.stdout)

    # The order placed from the CLI is one trace, started by shopctl and continued by every service.
    trace_id = re.search(r"/trace/([0-9a-f]{32})", shown.stdout)[1]
    wanted = {"shopctl", "order", "payment", "inventory", "shipping", "timeline"}
    deadline = time.monotonic() + 60  # spans are exported in batches, every few seconds
    while (found := jaeger_services(settings, trace_id)) != wanted:
        assert time.monotonic() < deadline, f"trace {trace_id} has spans of {found}, wanted {wanted}"
        time.sleep(0.5)


def test_place_and_wait_says_when_the_order_did_not_settle_in_time(services, customer, sku):
    placed = shopctl(
        "order", "place", "--customer", customer, "--item", f"{sku}:1@1.00", "--wait", "--timeout", "0"
    )
    assert placed.returncode == 4, placed.stdout + placed.stderr
    order_id = re.search(rf"order ({UUID}) placed", placed.stdout)[1]
    assert f"order {order_id} did not settle within 0s" in placed.stderr
    assert f"shopctl order show {order_id}" in placed.stderr


def jaeger_services(settings, trace_id: str) -> set[str]:
    response = httpx.get(f"{settings.jaeger_query_url}/api/traces/{trace_id}", timeout=5)
    if response.status_code != 200 or not response.json().get("data"):
        return set()
    trace = response.json()["data"][0]
    return {trace["processes"][s["processID"]]["serviceName"] for s in trace["spans"]}


def test_publish_validates_then_publishes_each_event(services, tap, customer, sku, tmp_path):
    def payload(country: str) -> dict:
        return {
            "order_id": str(__import__("uuid").uuid4()),
            "customer_id": customer,
            "items": [{"sku": sku, "quantity": 1, "unit_price": "2.50"}],
            "total": "2.50",
            "currency": "EUR",
            "shipping_address": {
                "recipient": "R",
                "street": "S 1",
                "city": "C",
                "postal_code": "1",
                "country": country,
            },
        }

    one = payload("DE")
    result = shopctl("publish", "OrderPlaced", "--json", json.dumps(one))
    assert result.returncode == 0, result.stderr
    assert one["order_id"] in result.stdout and "storefront.events" in result.stdout
    events = tap.wait_terminal(__import__("uuid").UUID(one["order_id"]))
    assert {e["source"] for e in events if e["event_type"] == "OrderPlaced"} == {"storefront"}

    # The operator may publish it too, in its owner's name (consumers refuse any other source there).
    by_operator = payload("DE")
    result = shopctl("publish", "OrderPlaced", "--as-operator", "--json", json.dumps(by_operator))
    assert result.returncode == 0, result.stderr
    events = tap.wait_terminal(__import__("uuid").UUID(by_operator["order_id"]))
    assert {e["source"] for e in events if e["event_type"] == "OrderPlaced"} == {"storefront"}
    refused = shopctl(
        "publish", "OrderPlaced", "--as-operator", "--json", json.dumps(payload("DE")),
        env={"KAFKA_OPERATOR_PASSWORD": "not-it"},
    )  # fmt: skip
    assert refused.returncode == 3 and "refused 'operator'" in refused.stderr, refused.stderr

    batch = [payload("DE"), payload("US")]
    jsonl = tmp_path / "orders.jsonl"
    jsonl.write_text("\n".join(json.dumps(p) for p in batch) + "\n")
    result = shopctl("publish", "OrderPlaced", "--file", str(jsonl))
    assert result.returncode == 0, result.stderr
    assert all(p["order_id"] in result.stdout for p in batch)


def valid_order(**changes) -> dict:
    order = {
        "order_id": "7f0c0e4e-5d5c-4a7e-9a51-0c1d2b3a4f5e",
        "customer_id": "C-1",
        "items": [{"sku": "SKU-MUG", "quantity": 1, "unit_price": "9.99"}],
        "total": "9.99",
        "currency": "EUR",
        "shipping_address": {
            "recipient": "R", "street": "S", "city": "C", "postal_code": "1", "country": "DE",
        },
    }  # fmt: skip
    return order | changes


def line(quantity: int = 1, sku: str = "SKU-MUG") -> list[dict]:
    return [{"sku": sku, "quantity": quantity, "unit_price": "9.99"}]


BAD_INPUT = [
    (
        ["publish", "OrderPlaced", "--json", json.dumps(valid_order(customer_id="bob"))],
        2,
        "--json: customer_id: String should match pattern",
    ),
    (
        ["publish", "OrderPlaced", "--json", json.dumps(valid_order(items=line(sku="no such sku!")))],
        2,
        "--json: items.0.sku: String should match pattern",
    ),
    (
        ["publish", "OrderPlaced", "--json", json.dumps(valid_order(items=line(quantity=0)))],
        2,
        "--json: items.0.quantity: Input should be greater than or equal to 1",
    ),
    (
        ["publish", "OrderPlaced", "--file", "/nonexistent.jsonl"],
        2,
        "--file /nonexistent.jsonl: no such file",
    ),
    (["publish", "OrderPlaced", "--json", "{not json"], 2, "--json: invalid JSON at line 1 column 2"),
    (
        ["publish", "OrderPlaced", "--json", '{"order_id": "7f0c0e4e-5d5c-4a7e-9a51-0c1d2b3a4f5e"}'],
        2,
        "--json: customer_id: Field required",
    ),
    (
        [
            "publish",
            "OrderPlaced",
            "--json",
            json.dumps(
                {
                    "order_id": "7f0c0e4e-5d5c-4a7e-9a51-0c1d2b3a4f5e",
                    "customer_id": "C-1",
                    "items": "lots",
                    "total": "1.00",
                    "currency": "EUR",
                    "shipping_address": {
                        "recipient": "R",
                        "street": "S",
                        "city": "C",
                        "postal_code": "1",
                        "country": "DE",
                    },
                }
            ),
        ],
        2,
        "--json: items: Input should be a valid tuple",
    ),
    (["publish", "OrderShipped", "--json", "{}"], 2, "unknown event type 'OrderShipped'; known: OrderPlaced"),
    (
        ["publish", "PaymentCompleted", "--json", "{}"],
        2,
        "PaymentCompleted is payment's fact: publishing it in payment's name takes the operator's "
        "credentials, asked for with --as-operator",
    ),
    (["order", "place", "--customer", "C-1000", "--item", "SKU-NOPE:1"], 2, "unknown SKU SKU-NOPE"),
    (
        ["order", "place", "--customer", "bob", "--item", "SKU-MUG:1"],
        2,
        "--customer 'bob': expected C- followed by",
    ),
    (
        ["order", "place", "--customer", "C-1000", "--item", "SKU-MUG:0"],
        2,
        "quantity must be a positive whole number",
    ),
    (
        ["order", "place", "--customer", "C-1000", "--item", "SKU-MUG:-3"],
        2,
        "quantity must be a positive whole number",
    ),
    (["order", "place", "--customer", "C-1000", "--item", "SKU-MUG"], 2, "expected SKU:QTY or SKU:QTY@PRICE"),
    (["order", "show", "not-a-uuid"], 2, "ORDER_ID 'not-a-uuid': not a UUID"),
    (["dlq", "show", "nowhere:1"], 2, "expected DLT_TOPIC:OFFSET"),
    (["load", "--orders", "0"], 2, "--orders 0: must be positive"),
    (["load", "--fail-mix", "payment=2"], 2, "share must be between 0 and 1"),
]


@pytest.mark.parametrize(
    ("args", "code", "message"), BAD_INPUT, ids=[" ".join(a[:3]) for a, _, _ in BAD_INPUT]
)
def test_bad_input_gets_one_clear_line_an_exit_code_and_publishes_nothing(
    settings, services, args, code, message
):
    before = high_watermarks(settings, EVENT_TOPICS)
    result = shopctl(*args)
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert orders_placed_since(settings, before) == 0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}, "Kafka unreachable at 127.0.0.1:1"),
        ({"SCHEMA_REGISTRY_URL": "http://127.0.0.1:1"}, "schema registry unreachable at http://127.0.0.1:1"),
        ({"KAFKA_STOREFRONT_PASSWORD": "not-it"}, "refused 'storefront': "),
    ],
)
def test_an_unreachable_broker_or_registry_is_named_and_nothing_is_published(
    settings, services, env, message
):
    before = high_watermarks(settings, EVENT_TOPICS)
    for command in (
        ["order", "place", "--customer", "C-1000", "--item", "SKU-MUG:1"],
        ["publish", "OrderPlaced", "--json", json.dumps(valid_order())],
        ["load", "--orders", "1"],
    ):
        result = shopctl(*command, env=env, timeout=60)
        assert result.returncode == 3, (command, result.stderr)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert orders_placed_since(settings, before) == 0


def test_a_refused_or_missing_kafka_login_is_named(services):
    refused = shopctl("dlq", "list", env={"KAFKA_OPERATOR_PASSWORD": "not-it"}, timeout=60)
    assert refused.returncode == 3 and "refused 'operator'" in refused.stderr, refused.stderr
    assert "Authentication failed" in refused.stderr
    missing = shopctl("dlq", "list", env={"KAFKA_OPERATOR_PASSWORD": ""}, timeout=60)
    assert missing.returncode == 2 and "KAFKA_OPERATOR_PASSWORD not set" in missing.stderr, missing.stderr
    status = shopctl("status", env={"KAFKA_OPERATOR_PASSWORD": "not-it"}, timeout=120)
    assert status.returncode == 1 and "refused 'operator'" in status.stdout, status.stdout + status.stderr
    assert "Traceback" not in status.stderr


def test_load_publishes_at_a_rate_and_reports_every_outcome(services):
    result = shopctl("load", "--orders", "30", "--rate", "15", "--fail-mix", "payment=0.2,shipping=0.2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"no outcome\s+│ 0\b", result.stdout)
    counts = {
        m[0].strip(): int(m[1]) for m in re.findall(r"│ (completed|cancelled: \w+)\s*│ (\d+)", result.stdout)
    }
    assert sum(counts.values()) == 30 and counts["completed"] > 0
    for figure in (
        "published",
        "ended",
        "latency p50",
        "latency p95",
        "latency p99",
        "latency max",
        "read model behind",
    ):
        assert figure in result.stdout


def hearing(topic: str) -> set[str]:
    return {p for p in PROCESSES if topic in {events_topic(o) for o in HEARS[p]}}


def test_a_real_dead_letter_listed_shown_and_replayed_to_the_group_that_failed_it(settings, services):
    # payment.events: a service's topic, where the replay header is believed (shared.access).
    topic = events_topic("payment")
    groups = hearing(topic)
    letters = [dead_letter_topic(g) for g in groups]
    before = high_watermarks(settings, letters)
    producer = Producer(producer_config(settings.kafka_client("admin")))
    producer.produce(topic, value=b"garbage, not avro", key=b"cli-dlq-test")
    assert producer.flush(30) == 0

    # Every group hearing payment.events dead-letters it, and carries on.
    deadline = time.monotonic() + 60
    while any(n == before[t] for t, n in high_watermarks(settings, letters).items()):
        assert time.monotonic() < deadline, "some group never dead-lettered the garbage"
        time.sleep(0.2)
    dlt = dead_letter_topic("inventory")
    position = f"{dlt}:{before[f'{dlt}[0]']}"

    listed = shopctl("dlq", "list", "--topic", dlt)
    assert listed.returncode == 0 and position in listed.stdout and "undecodable" in listed.stdout
    shown = shopctl("dlq", "show", position)
    assert shown.returncode == 0
    assert "dlt_consumer_group: inventory" in shown.stdout and "payload does not decode" in shown.stdout

    after_first = high_watermarks(settings, letters)
    replayed = shopctl("dlq", "replay", position)
    assert replayed.returncode == 0, replayed.stderr
    assert (
        "for group inventory" in replayed.stdout
        and "failed again in inventory: undecodable" in replayed.stdout
    )
    # Once every other group has committed past the replayed record, it has skipped it or failed it.
    topic, partition, offset = re.search(r"to (\S+)\[(\d+)\]@(\d+)", replayed.stdout).groups()
    at = TopicPartition(topic, int(partition))
    admin = AdminClient(settings.kafka_client("admin"))
    for group in groups - {"inventory"}:
        deadline = time.monotonic() + 60
        while committed_offset(admin, group, at) <= int(offset):
            assert time.monotonic() < deadline, f"{group} never got past the replayed record"
            time.sleep(0.2)
    final = high_watermarks(settings, letters)
    grew = {t for t in final if final[t] != after_first[t]}
    assert grew == {f"{dlt}[0]"}, "only the group that failed it saw the replay"


def committed_offset(admin: AdminClient, group: str, partition: TopicPartition) -> int:
    request = ConsumerGroupTopicPartitions(group, [partition])
    return admin.list_consumer_group_offsets([request])[group].result(10).topic_partitions[0].offset


def test_status_and_load_exit_non_zero_when_something_is_down(services):
    down = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    status = shopctl("status", env=down, timeout=60)
    assert status.returncode == 1 and re.search(r"kafka\s.*unreachable", status.stdout), status.stdout
    # Orders whose outcome never comes: the load says so in its table and in its exit code.
    load = shopctl("load", "--orders", "2", "--rate", "10", "--timeout", "0")
    assert load.returncode == 1 and re.search(r"no outcome\s+│ 2\b", load.stdout), load.stdout


def test_status_shows_every_component_and_service(services):
    result = shopctl("status")
    assert result.returncode == 0, result.stdout
    for name in ("kafka", "schema registry", "postgres", "jaeger (otlp)", *PROCESSES):
        assert re.search(rf"{re.escape(name)}\s.*(reachable|healthy)", result.stdout), name
    for process in PROCESSES:  # every figure there, the consumer lag a number (not "-")
        assert re.search(rf"│ {process}\s+│ healthy\s+│ \d+\s+│ \d+\s+│ \d+\s+│", result.stdout), process
