"""`make chaos`: orders at a rate the machine holds while the stack is broken under them, then the books.

Publishes CHAOS_ORDERS (default 5000) orders with `shopctl load`'s fail mix at CHAOS_RATE (default
100/s). Meanwhile, at random moments: kill -9 of each of the five processes CHAOS_KILLS times (default
2), one of Kafka and one of PostgreSQL, each brought back a moment later (`python -m localstack run
NAME` / `up NAME`, as an operator or a supervisor would); and one process, CHAOS_OUTAGE (default
inventory; empty for none), kept down 15 s past the saga's deadline, so that its orders end by the
clock. Then it waits until every order ended and audits each service's own tables
(tests/chaos/books.py). It prints the orders, the kills, what was lost, duplicated or never ended, the
seconds until all ended, how long after their deadline the clock's cancellations and their last
compensations came, and each invariant that does not hold; it exits 1 if any. It is no timed test:
`tests/e2e/test_chaos.py` runs a short one in `make test`.

Needs the no-Docker stack with the services running (`make stack-up && make seed && make run`).
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from services.shopctl import load
from services.shopctl.orders import order_placed
from shared.contracts import OrderPlaced
from shared.messaging.publisher import EventPublisher
from shared.settings import PROCESSES, Settings, get_settings
from shared.topics import STOREFRONT
from tests.chaos.books import Books, Deadlines, Holdings, Tables, audit, status_counts
from tests.chaos.monkey import INFRASTRUCTURE, REPO, Kill, kill, restart

sys.path.insert(0, str(REPO / "deploy" / "local"))
from localstack.components import kafka_brokers


@dataclass(frozen=True)
class Plan:
    orders: int = 5000
    rate: float = 100.0
    kills_per_process: int = 2
    # One process kept down past the saga's deadline (seconds beyond it), as when a service is away
    # for an hour: its orders end by the clock. None: no such outage.
    outage: str | None = None
    outage_beyond_deadline: float = 15.0
    # A broker killed for good (a three-broker cluster: kafka-3), never brought back. None: no such loss.
    lost_broker: str | None = None
    seed: int = 1
    end_timeout: float = 600.0  # for every order to end, after the last was published


@dataclass
class Outcome:
    books: Books
    kills: list[tuple[Kill, float]] = field(default_factory=list)  # each, with seconds until healthy again
    published_in: float = 0.0
    ended_after: float | None = None  # seconds from the last order published until all ended
    deadlines: Deadlines | None = None


def schedule(plan: Plan, rng: random.Random, deadline: float) -> list[Kill]:
    """Every process `kills_per_process` times and each component once, at random moments of the
    publishing, in random order, each down for a random moment; the outage, if any, among them."""
    window = plan.orders / plan.rate
    targets = [p for p in PROCESSES for _ in range(plan.kills_per_process)] + list(INFRASTRUCTURE)
    if plan.outage:
        targets.append(f"{plan.outage} (outage)")
    if plan.lost_broker:
        targets.append(f"{plan.lost_broker} (lost)")
    rng.shuffle(targets)
    moments = sorted(rng.uniform(0.05 * window, 0.9 * window) for _ in targets)
    kills = []
    for target, at in zip(targets, moments, strict=True):
        if target.endswith(" (outage)"):
            kills.append(Kill(target.split()[0], at, deadline + plan.outage_beyond_deadline))
        elif target.endswith(" (lost)"):
            kills.append(Kill(target.split()[0], at, None))
        else:
            kills.append(Kill(target, at, rng.uniform(0.5, 3.0)))
    return kills


def run(plan: Plan, settings: Settings, say: Callable[[str], None] = print) -> Outcome:
    rng = random.Random(plan.seed)
    tables = Tables(settings)
    shapes = load.plan(plan.orders, load.parse_mix(load.DEFAULT_FAIL_MIX), plan.seed)
    orders = [order_placed(customer, [item], country) for customer, item, country in shapes]
    customers = sorted({c for c, _, _ in shapes})
    skus = sorted({line.sku for o in orders for line in o.items})
    _quiet(tables, settings.order_saga_timeout_seconds + 30)
    before = Holdings.read(tables, customers, skus)
    kills = schedule(plan, rng, settings.order_saga_timeout_seconds)
    say(f"{plan.orders} orders at {plan.rate:g}/s; {len(kills)} kills: " + ", ".join(k.target for k in kills))

    publisher = EventPublisher(settings, STOREFRONT, [OrderPlaced], STOREFRONT)
    started = time.monotonic()
    done: list[tuple[Kill, float]] = []
    failure: list[BaseException] = []
    monkey = threading.Thread(target=_break, args=(kills, started, done, failure, say), daemon=True)
    monkey.start()
    for n, order in enumerate(orders):
        delay = started + n / plan.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        publisher.send(order)
    publisher.flush(timeout=120)  # what waited out a broker restart in the producer's queue
    published_in = time.monotonic() - started
    say(f"published in {published_in:.1f} s")
    monkey.join()
    if failure:
        raise failure[0]

    ids = [o.order_id for o in orders]
    last_published = started + published_in
    ended_after = None
    deadline = time.monotonic() + plan.end_timeout
    while time.monotonic() < deadline:
        statuses = status_counts(tables, ids)
        if sum(statuses.values()) == len(ids) and not statuses.get("open"):
            ended_after = time.monotonic() - last_published
            break
        time.sleep(1)
    # Compensations and the read model may trail the order's end by a moment: audit until they settle.
    books = audit(tables, orders, before, Holdings.read(tables, customers, skus))
    settle = time.monotonic() + 60
    while not books.balanced and time.monotonic() < settle:
        time.sleep(1)
        books = audit(tables, orders, before, Holdings.read(tables, customers, skus))
    deadlines = Deadlines.read(tables, ids, settings.order_saga_timeout_seconds)
    return Outcome(books, done, published_in, ended_after, deadlines)


def _quiet(tables: Tables, timeout: float) -> None:
    """Until no order is open: the books compare balances and stock before and after, so nothing else
    may move them meanwhile (open orders end by their deadline at the latest)."""
    deadline = time.monotonic() + timeout
    while tables.rows("order", "SELECT 1 FROM orders WHERE status = 'open' LIMIT 1"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"orders still open after {timeout:.0f} s: is the order service running?")
        time.sleep(1)


def _break(
    kills: list[Kill],
    started: float,
    done: list[tuple[Kill, float]],
    failure: list[BaseException],
    say: Callable[[str], None],
) -> None:
    try:
        for k in kills:
            delay = started + k.at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            t = time.monotonic()
            kill(k.target)
            if k.down_for is None:
                done.append((k, float("inf")))
                say(f"  {t - started:6.1f} s  kill -9 {k.target:10} lost for good")
                continue
            time.sleep(k.down_for)
            restart(k.target)
            back = time.monotonic() - t
            done.append((k, back))
            say(f"  {t - started:6.1f} s  kill -9 {k.target:10} back after {back:5.1f} s")
    except BaseException as exc:  # the main thread reports it
        failure.append(exc)


def report(outcome: Outcome, say: Callable[[str], None] = print) -> None:
    b = outcome.books
    per_target = Counter(k.target for k, _ in outcome.kills)
    say(f"orders: {b.orders} ({', '.join(f'{s} {n}' for s, n in sorted(b.statuses.items()))})")
    say(f"kills: {sum(per_target.values())} ({', '.join(f'{t} {n}' for t, n in sorted(per_target.items()))})")
    say(f"lost: {b.lost}")
    say(f"duplicated effects: {b.duplicated}")
    say(f"not ended: {b.not_ended}")
    ended = "never" if outcome.ended_after is None else f"{outcome.ended_after:.1f}"
    say(f"seconds until all ended: {ended} (after the last order was published)")
    d = outcome.deadlines
    if d is not None and d.cancelled:
        say(
            f"deadlines: {len(d.cancelled)} orders cancelled by the clock; OrderCancelled "
            f"{_spread(d.cancelled)} after the deadline, the last compensation {_spread(d.compensated)}"
        )
    for line in b.broken:
        say(f"BROKEN {line}")
    say("books balance" if b.balanced else "books DO NOT balance")


def _spread(seconds: list[float]) -> str:
    if not seconds:
        return "-"
    return f"p50 {statistics.median(seconds):.1f} s, max {max(seconds):.1f} s"


def main() -> int:
    chaos = Plan(
        orders=int(os.environ.get("CHAOS_ORDERS", "5000")),
        rate=float(os.environ.get("CHAOS_RATE", "100")),
        kills_per_process=int(os.environ.get("CHAOS_KILLS", "2")),
        seed=int(os.environ.get("CHAOS_SEED", "1")),
        outage=os.environ.get("CHAOS_OUTAGE", "inventory") or None,
        lost_broker="kafka-3" if kafka_brokers() == 3 else None,
    )
    outcome = run(chaos, get_settings())
    report(outcome)
    return 0 if outcome.books.balanced and outcome.ended_after is not None else 1


if __name__ == "__main__":
    sys.exit(main())
