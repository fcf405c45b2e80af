"""`make bench-show`: how fast `shopctl order show` and `shopctl order stuck` answer when the read
model holds 100k orders.

Writes BENCH_ORDERS (default 100000) synthetic sagas into the timeline read model (source
`bench-show`), each with its row in `sagas`: one in BENCH_OPEN_EVERY (default 100) stuck after three
events, the rest completed with six. Then times, for BENCH_LOOKUPS random completed orders: the read
model's query alone, and the whole command (`shopctl order show`, process start to exit) by order id
and by correlation id; and `shopctl order stuck` (its queries, and the whole command). Prints p50 and
max of each, then deletes what it wrote.
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
OPEN_EVERY = int(os.environ.get("BENCH_OPEN_EVERY", "100"))
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
SAGA_COLUMNS = "order_id, correlation_id, first_at, last_at, last_event, last_source, facts, ended_at"
COLUMNS = (
    "event_id, order_id, correlation_id, causation_id, event_type, source, occurred_at, trace_id, payload"
)


def write_sagas(dsn: str) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(order id, correlation id) of each completed saga written."""
    written = []
    summaries = []
    start = datetime.now(UTC) - timedelta(days=1)
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY events ({COLUMNS}) FROM STDIN") as copy:
            for n in range(ORDERS):
                order_id, correlation_id = uuid.uuid4(), uuid.uuid4()
                stuck = n % OPEN_EVERY == 0
                saga = SAGA[:3] if stuck else SAGA
                cause = None
                at = start + timedelta(milliseconds=n)
                for step, event_type in enumerate(saga):
                    event_id = uuid.uuid4()
                    payload = {"tracking_number": f"TRK-{n}"} if event_type == "OrderCompleted" else {}
                    copy.write_row(
                        (event_id, order_id, correlation_id, cause, event_type, SOURCE,
                         at + timedelta(milliseconds=step), None, Jsonb(payload))
                    )  # fmt: skip
                    cause = event_id
                last = at + timedelta(milliseconds=len(saga) - 1)
                ended = None if stuck else at + timedelta(milliseconds=SAGA.index("OrderCompleted"))
                summaries.append((order_id, correlation_id, at, last, saga[-1], SOURCE, sorted(saga), ended))
                if not stuck:
                    written.append((order_id, correlation_id))
        with cur.copy(f"COPY sagas ({SAGA_COLUMNS}) FROM STDIN") as copy:
            for row in summaries:
                copy.write_row(row)
        conn.commit()
        conn.execute("ANALYZE events")
        conn.execute("ANALYZE sagas")
        conn.commit()
    return written


def timed_command(*args: str, expect: str = "outcome: completed") -> float:
    started = time.perf_counter()
    result = subprocess.run([SHOPCTL, *args], capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0 or expect not in result.stdout:
        raise SystemExit(f"shopctl {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return elapsed


def report(label: str, seconds: list[float]) -> None:
    p50, worst = statistics.median(seconds) * 1000, max(seconds) * 1000
    print(f"{label:52} p50 {p50:7.1f} ms   max {worst:7.1f} ms", flush=True)


def main() -> None:
    settings = get_settings()
    dsn = libpq_dsn(settings.database_url("timeline"))
    print(f"writing {ORDERS} sagas (one in {OPEN_EVERY} stuck) into the timeline...", flush=True)
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
        stuck_queries = []
        for _ in range(LOOKUPS):
            t = time.perf_counter()
            assert len(read.stuck(timedelta(hours=1), 50)) == 50
            read.open_sagas(timedelta(hours=1))
            stuck_queries.append(time.perf_counter() - t)
        report("read model queries (oldest 50 stuck, open counts)", stuck_queries)
        report(
            "shopctl order stuck (whole command)",
            [timed_command("order", "stuck", expect="stuck (the oldest 50 shown") for _ in range(LOOKUPS)],
        )
    finally:
        with psycopg.connect(dsn) as conn:
            conn.execute("DELETE FROM events WHERE source = %s", (SOURCE,))
            conn.execute("DELETE FROM sagas WHERE last_source = %s", (SOURCE,))


if __name__ == "__main__":
    main()
