"""`make bench-show`: how fast `shopctl order show` answers when the read model holds 100k orders.

Writes BENCH_ORDERS (default 100000) synthetic completed sagas, six events each, into the timeline
read model (source `bench-show`), then times, for BENCH_LOOKUPS random orders: the read model's
query alone, and the whole command (`shopctl order show`, process start to exit) by order id and by
correlation id. Prints p50 and max of each, then deletes what it wrote.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

from services.shopctl.readmodel import ReadModel
from shared.settings import get_settings, libpq_dsn

ORDERS = int(os.environ.get("BENCH_ORDERS", "100000"))
LOOKUPS = int(os.environ.get("BENCH_LOOKUPS", "20"))
SOURCE = "bench-show"
SAGA = (
    "OrderPlaced",
    "PaymentCompleted",
    "StockReserved",
    "ShipmentCreated",
    "OrderCompleted",
    "StockShipped",
)
SHOPCTL = str(Path(sys.executable).parent / "shopctl")
COLUMNS = (
    "event_id, order_id, correlation_id, causation_id, event_type, source, occurred_at, trace_id, payload"
)


def write_sagas(dsn: str) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(order id, correlation id) of each saga written."""
    written = []
    start = datetime.now(UTC) - timedelta(days=1)
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY events ({COLUMNS}) FROM STDIN") as copy:
            for n in range(ORDERS):
                order_id, correlation_id = uuid.uuid4(), uuid.uuid4()
                cause = None
                at = start + timedelta(milliseconds=n)
                for step, event_type in enumerate(SAGA):
                    event_id = uuid.uuid4()
                    payload = {"tracking_number": f"TRK-{n}"} if event_type == "OrderCompleted" else {}
                    copy.write_row(
                        (event_id, order_id, correlation_id, cause, event_type, SOURCE,
                         at + timedelta(milliseconds=step), None, Jsonb(payload))
                    )  # fmt: skip
                    cause = event_id
                written.append((order_id, correlation_id))
        conn.commit()
        conn.execute("ANALYZE events")
        conn.commit()
    return written


def timed_command(*args: str) -> float:
    started = time.perf_counter()
    result = subprocess.run([SHOPCTL, *args], capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0 or "outcome: completed" not in result.stdout:
        raise SystemExit(f"shopctl {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return elapsed


def report(label: str, seconds: list[float]) -> None:
    p50, worst = statistics.median(seconds) * 1000, max(seconds) * 1000
    print(f"{label:52} p50 {p50:7.1f} ms   max {worst:7.1f} ms", flush=True)


def main() -> None:
    settings = get_settings()
    dsn = libpq_dsn(settings.database_url("timeline"))
    print(f"writing {ORDERS} completed sagas ({ORDERS * len(SAGA)} events) into the timeline...", flush=True)
    started = time.perf_counter()
    sagas = write_sagas(dsn)
    print(f"  written in {time.perf_counter() - started:.1f}s", flush=True)
    try:
        with psycopg.connect(dsn) as conn:
            total = conn.execute("SELECT count(DISTINCT order_id) FROM events").fetchone()[0]
        print(f"the read model now holds {total} orders", flush=True)
        sample = random.sample(sagas, LOOKUPS)
        read = ReadModel(settings)
        queries = []
        for order_id, _ in sample:
            t = time.perf_counter()
            assert len(read.timeline(order_id)) == len(SAGA)
            queries.append(time.perf_counter() - t)
        report("read model query (timeline of one order)", queries)
        report(
            "shopctl order show ORDER_ID (whole command)",
            [timed_command("order", "show", str(o)) for o, _ in sample],
        )
        report(
            "shopctl order show --correlation ID (whole command)",
            [timed_command("order", "show", "--correlation", str(c)) for _, c in sample],
        )
    finally:
        with psycopg.connect(dsn) as conn:
            conn.execute("DELETE FROM events WHERE source = %s", (SOURCE,))


if __name__ == "__main__":
    main()
