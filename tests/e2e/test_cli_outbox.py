"""`shopctl outbox` against a running service's outbox (payment's), with rows for topics of the test's
own, in payment's namespace (its relay sends nowhere else): the service's relay parks them, the CLI lists,
retries and discards them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from shared.messaging.parked import BEHIND
from shared.settings import HEALTH_PORTS
from tests.e2e.support import REPO
from tests.waiting import until

SHOPCTL = shutil.which("shopctl") or str(Path(os.sys.executable).parent / "shopctl")
SERVICE = "payment"


def shopctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SHOPCTL, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "250"},
    )


class Outbox:
    """Payment's outbox, as payment's role; the test's rows are those of its own topics."""

    def __init__(self, settings) -> None:
        self._dsn = settings.libpq_dsn_of(SERVICE)
        self.topics: list[str] = []

    def write(self, topic: str, key: str, *payloads: bytes) -> list[int]:
        self.topics.append(topic)
        with psycopg.connect(self._dsn) as conn:
            return [
                conn.execute(
                    "INSERT INTO outbox (event_id, event_type, topic, message_key, payload, headers) "
                    "VALUES (gen_random_uuid(), 'PaymentCompleted', %s, %s, %s, '{}') RETURNING id",
                    (topic, key, payload),
                ).fetchone()[0]
                for payload in payloads
            ]

    def state(self, row_id: int) -> dict:
        with psycopg.connect(self._dsn) as conn:
            cur = conn.execute(
                "SELECT published_at, parked_at, park_reason, discarded_at, discard_reason "
                "FROM outbox WHERE id = %s",
                (row_id,),
            )
            return dict(zip([c.name for c in cur.description], cur.fetchone(), strict=True))

    def parked(self, *ids: int) -> bool:
        return all(self.state(i)["parked_at"] is not None for i in ids)

    def published(self, *ids: int) -> bool:
        return all(self.state(i)["published_at"] is not None for i in ids)

    def clean_up(self) -> None:
        with psycopg.connect(self._dsn) as conn:
            conn.execute("DELETE FROM outbox WHERE topic = ANY(%s)", (self.topics,))


@pytest.fixture
def payment_outbox(settings, services) -> Iterator[Outbox]:
    box = Outbox(settings)
    yield box
    box.clean_up()


@pytest.fixture
def admin(settings) -> Iterator[AdminClient]:
    """Creates topics for the payment service's relay, and lets payment's principal write them (only
    its own catalogue topics are granted otherwise); removes both afterwards."""
    client = AdminClient(settings.kafka_client("admin"))
    created: list[str] = []
    grants: list[AclBinding] = []

    def create(topic: str) -> None:
        for future in client.create_topics([NewTopic(topic, 1, 1)]).values():
            future.result(30)
        created.append(topic)
        grant = AclBinding(
            ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:payment", "*",
            AclOperation.WRITE, AclPermissionType.ALLOW,
        )  # fmt: skip
        for future in client.create_acls([grant]).values():
            future.result(30)
        grants.append(grant)

    client.create = create  # type: ignore[attr-defined]
    yield client
    if grants:
        filters = [
            AclBindingFilter(g.restype, g.name, g.resource_pattern_type, g.principal, g.host, g.operation,
                             g.permission_type)
            for g in grants
        ]  # fmt: skip
        for future in client.delete_acls(filters).values():
            future.result(30)
    if created:
        for future in client.delete_topics(created).values():
            future.result(30)


def values_on(settings, topic: str, expected: int) -> list[bytes]:
    consumer = Consumer({**settings.kafka_client("admin"), "group.id": "cli-outbox-test"})
    try:
        tp = TopicPartition(topic, 0, 0)
        _, end = consumer.get_watermark_offsets(tp, timeout=10)
        assert end == expected, f"{end} messages on {topic}, expected {expected}"
        consumer.assign([tp])
        got: list[bytes] = []
        while len(got) < end:
            msg = consumer.poll(10)
            assert msg is not None and msg.error() is None, msg and msg.error()
            got.append(msg.value())
        return got
    finally:
        consumer.close()


def test_a_parked_row_is_listed_then_retried_once_its_topic_exists_and_its_followers_follow(
    settings, payment_outbox, admin, unique
):
    topic, key = f"payment.cli-{unique}", f"K-{unique}"  # payment's namespace; no such topic yet
    first, second, third = payment_outbox.write(topic, key, b"1", b"2", b"3")
    until(lambda: payment_outbox.parked(first, second, third), 60, "parked by payment's relay")
    # The broker does not say whether a topic the principal may not describe exists: missing and
    # forbidden are the same refusal to the relay.
    assert payment_outbox.state(first)["park_reason"].startswith("TOPIC_AUTHORIZATION_FAILED")
    assert payment_outbox.state(third)["park_reason"] == f"{BEHIND}{first}"

    listed = shopctl("outbox", "list", "--service", SERVICE)
    assert listed.returncode == 0, listed.stderr
    for row_id in (first, second, third):
        assert re.search(
            rf"│ {row_id}\s+│ {SERVICE}\s+│ {re.escape(topic)}\s+│ {key}\s+│ PaymentCompleted", listed.stdout
        )
    assert "TOPIC_AUTHORIZATION_FAILED" in listed.stdout and f"{BEHIND}{first}" in listed.stdout

    # A follower alone would overtake the row parked before it.
    alone = shopctl("outbox", "retry", str(second), "--service", SERVICE)
    assert alone.returncode == 2 and f"behind row {first}" in alone.stderr, alone.stderr

    admin.create(topic)
    retried = shopctl("outbox", "retry", str(first), "--service", SERVICE)
    assert retried.returncode == 0, retried.stderr
    assert f"3 rows pending again ({first}, {second}, {third})" in retried.stdout
    until(lambda: payment_outbox.published(first, second, third), 30, "sent by payment's relay")
    assert values_on(settings, topic, 3) == [b"1", b"2", b"3"], "in order, once each"
    assert httpx.get(f"http://127.0.0.1:{HEALTH_PORTS[SERVICE]}/health", timeout=5).json()["healthy"] is True


def test_a_discarded_row_keeps_its_reason_and_is_never_sent_its_followers_wait_for_a_retry(
    settings, payment_outbox, admin, unique
):
    topic, key = f"payment.cli-{unique}-retired", f"K-{unique}"
    head, follower = payment_outbox.write(topic, key, b"never", b"later")
    until(lambda: payment_outbox.parked(head, follower), 60, "parked by payment's relay")

    # Parked rows are a warning, not an outage: counted, in yellow, and the service stays healthy.
    metrics = f"http://127.0.0.1:{HEALTH_PORTS[SERVICE]}/metrics"
    until(
        lambda: re.search(r"^shop_outbox_parked\{[^}]*\} [1-9]", httpx.get(metrics).text, re.M), 30, "counted"
    )
    status = shopctl("status")
    assert status.returncode == 0, status.stdout
    assert re.search(rf"│ {SERVICE}\s+│ healthy\s+│(?:[^│]*│){{3}}\s*[1-9]\d*\s+│", status.stdout), (
        status.stdout
    )

    no_reason = shopctl("outbox", "discard", str(head), "--service", SERVICE)
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr, no_reason.stderr
    blank = shopctl("outbox", "discard", str(head), "--reason", "  ", "--service", SERVICE)
    assert blank.returncode == 2, blank.stderr

    discarded = shopctl(
        "outbox", "discard", str(head), "--reason", "test: topic retired", "--service", SERVICE
    )
    assert discarded.returncode == 0, discarded.stderr
    assert f"retry --key {key} --service {SERVICE}" in discarded.stdout, "says what still waits"
    state = payment_outbox.state(head)
    assert state["discard_reason"] == "test: topic retired" and state["discarded_at"] is not None
    assert state["parked_at"] is None and state["published_at"] is None
    assert payment_outbox.parked(follower)
    again = shopctl("outbox", "discard", str(head), "--reason", "twice", "--service", SERVICE)
    assert again.returncode == 2 and "discarded, not parked" in again.stderr, again.stderr

    admin.create(topic)
    retried = shopctl("outbox", "retry", "--key", key)  # every service's outbox: only payment has it
    assert retried.returncode == 0, retried.stderr
    until(lambda: payment_outbox.published(follower), 30, "the follower sent")
    assert values_on(settings, topic, 1) == [b"later"], "the discarded row is never sent"
    assert payment_outbox.state(head)["published_at"] is None


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("list", "--service", "nope"), 2, "no such service"),
        (("retry",), 2, "one of them"),
        (("retry", "1", "--all", "--service", SERVICE), 2, "one of them"),
        (("retry", "1"), 2, "needs --service"),
        (("retry", "--all"), 2, "needs --service"),
        (("retry", "999999999", "--service", SERVICE), 4, "no row 999999999"),
        (("retry", "--key", "no-such-key", "--service", SERVICE), 4, "no parked rows of key no-such-key"),
        (("discard", "999999999", "--reason", "x", "--service", SERVICE), 4, "no row 999999999"),
        (("discard", "1", "--reason", "x"), 2, "needs --service"),
        (("discard", "1", "--reason", "x", "--service", "nope"), 2, "no such service"),
    ],
)
def test_bad_input_gets_one_clear_line_and_an_exit_code(services, args, code, says):
    result = shopctl("outbox", *args)
    assert result.returncode == code, (result.returncode, result.stderr)
    assert says in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
