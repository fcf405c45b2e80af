"""Prometheus metrics of the runtime, one registry per process (served by shared.messaging.health)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_HANDLED = Counter(
    "shop_messages_handled_total", "Messages whose handler ran and committed.", ["group", "event_type"]
)
MESSAGES_SKIPPED = Counter(
    "shop_messages_skipped_total",
    "Messages left unhandled on purpose: a known event type this group does not handle "
    "(reason not-handled), or a dead letter replayed for another group.",
    ["group", "event_type", "reason"],
)
DUPLICATES_SKIPPED = Counter(
    "shop_duplicates_skipped_total", "Messages skipped because their event id was already handled.", ["group"]
)
RETRIES = Counter(
    "shop_retries_total", "Batches retried in place after a transient failure.", ["group", "reason"]
)
DEAD_LETTERED = Counter(
    "shop_dead_lettered_total", "Messages sent to the dead-letter topic.", ["group", "kind"]
)
HANDLER_SECONDS = Histogram(
    "shop_handler_seconds",
    "Time in a handler, per message.",
    ["group", "event_type"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
BATCH_SECONDS = Histogram(
    "shop_batch_seconds",
    "Time to handle and commit one batch.",
    ["group"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
COMMIT_FAILURES = Counter(
    "shop_offset_commit_failures_total",
    "Offset commits the broker refused (e.g. during a rebalance); the batch is redelivered and skipped.",
    ["group"],
)
CONSUMER_LAG = Gauge(
    "shop_consumer_lag", "High watermark minus the consumer's position.", ["group", "topic", "partition"]
)
OUTBOX_BACKLOG = Gauge("shop_outbox_backlog", "Outbox rows waiting to be published (not parked).", ["schema"])
OUTBOX_PARKED = Gauge(
    "shop_outbox_parked",
    "Outbox rows parked: refused by the broker, or behind such a row of their key.",
    ["schema"],
)
OUTBOX_OLDEST_PENDING = Gauge(
    "shop_outbox_oldest_pending_seconds",
    "Age of the oldest outbox row waiting to be published (0: none).",
    ["schema"],
)
OUTBOX_PUBLISHED = Counter("shop_outbox_published_total", "Outbox rows published to Kafka.", ["schema"])
BATCH_SIZE = Histogram(
    "shop_batch_size",
    "Messages per consumed batch: small under a light load, up to the maximum under lag.",
    ["group"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)
REPOSITORY_MISSES = Counter(
    "shop_repository_misses_total",
    "Rows a handler read that no declaration had it prefetch: one round trip each.",
    ["table"],
)
TIMER_DECISIONS = Counter(
    "shop_timer_decisions_total",
    "Events a timer decided (e.g. orders cancelled at their deadline).",
    ["service", "timer"],
)
SAGAS_OPEN = Gauge("shop_sagas_open", "Orders not ended yet, as the order service has them.")
SAGA_OLDEST_OPEN_SECONDS = Gauge(
    "shop_saga_oldest_open_seconds", "How long the oldest open order has been open (0: none open)."
)
