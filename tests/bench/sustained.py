"""`make bench`: the highest rate the running system sustains, end to end.

Steps the offered rate up (BENCH_RATES, default 50 100 200 400 800 1600 3200 orders/s), each for
BENCH_SECONDS (default 60) of offered load with `shopctl load`'s standard fail mix, through
`shopctl load`'s own machinery (services/shopctl/load.py). Per step it prints the rate offered (as
this one process achieved it), the ended orders/s and p50/p95/p99 from OrderPlaced to the order's
end, both as the timeline recorded them. First it names the largest tables (they grow with every
run, and runs on tables of different sizes differ), then warms up for BENCH_WARMUP seconds (default
15) at the first step's rate, not counted. Between steps it waits until the system has drained: every
order of the step ended and no consumer group behind on the event topics (or BENCH_DRAIN_TIMEOUT,
default 120 s, after the last order). It stops at the first step that does not qualify, and ends
with one line, `sustained: N orders/s (p99 X ms)`: N the highest step whose ended rate is at least
95% of the offered one with p99 under 1 s.

Tracing at 10%: this process starts each order's trace (the services' samplers follow their parent),
so it samples at 0.1 itself, and refuses to run unless the five services are up, healthy and
started with OTEL_TRACES_SAMPLER_ARG=0.1 (`OTEL_TRACES_SAMPLER_ARG=0.1 make run`).
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

SAMPLING = 0.1
ENDED_SHARE = 0.95  # of the offered rate
P99_LIMIT_MS = 1000.0
GENERATOR_SHARE = 0.95  # below this share of the step's rate, the load generator could not offer it
GENERATOR_CORE = 0.9  # needing this share of a core or more, one Python process is its own limit


@dataclass(frozen=True)
class Step:
    """One step's figures. `offered` is the rate this process achieved; `ended_rate` the orders ended
    per second (ended_per_second); an order with no end by the drain deadline counts in the
    percentiles as at least as slow as the wait (`p99_exact` False when that bound decides p99)."""

    rate: float
    orders: int
    offered: float
    generator_cpu: float  # share of one core this process used while publishing
    generator_cpu_per_order: float  # its CPU seconds per order published
    ended: int
    ended_rate: float
    p50: float
    p95: float
    p99: float
    p99_exact: bool = True
    off_design: str | None = None  # ended otherwise than designed: the figures time another saga

    @property
    def generator_limited(self) -> bool:
        return self.offered < GENERATOR_SHARE * self.rate

    @property
    def generator_needs(self) -> float:
        """The share of one core the generator needs to offer the step's rate."""
        return self.generator_cpu_per_order * self.rate

    def failure(self) -> str | None:
        """Why the step does not qualify, or None if it does."""
        problems = []
        if self.generator_limited:
            short = f"the load generator offered only {self.offered:.0f} of {self.rate:g} orders/s"
            if self.generator_needs >= GENERATOR_CORE:
                # One Python process's limit: say so, and do not judge the system at a rate not offered.
                return (
                    f"{short}: at {self.generator_cpu_per_order * 1e6:.0f} µs of CPU per order it needs "
                    f"{self.generator_needs:.0%} of a core, more than one process has; the generator's "
                    "limit, not the system's"
                )
            problems.append(
                f"{short}: it needs {self.generator_needs:.0%} of a core for that and got "
                f"{self.generator_cpu:.0%}, the cores busy with the rest of the machine"
            )
        if self.ended_rate < ENDED_SHARE * self.rate:
            problems.append(
                f"ended {self.ended_rate:.1f} orders/s, under {ENDED_SHARE:.0%} of {self.rate:g}"
                + (
                    f" ({self.orders - self.ended} of {self.orders} never ended)"
                    if self.ended < self.orders
                    else ""
                )
            )
        if self.off_design is not None:
            problems.append(self.off_design)
        if not self.p99 < P99_LIMIT_MS:
            problems.append(f"p99 {'' if self.p99_exact else 'at least '}{self.p99:.0f} ms, not under 1 s")
        return "; ".join(problems) or None


def verdict(steps: Sequence[Step]) -> list[str]:
    """The closing lines: why stepping stopped, then exactly one `sustained:` line."""
    if not steps:
        return ["no step ran", "sustained: 0 orders/s (p99 0 ms)"]
    best = None
    for step in steps:
        if step.failure() is not None:
            break
        best = step
    stopped = next((s for s in steps if s.failure() is not None), None)
    if best is None:
        assert stopped is not None
        why = f"no step qualifies: at {stopped.rate:g} orders/s {stopped.failure()}"
        return [why, f"sustained: 0 orders/s (p99 {steps[0].p99:.0f} ms)"]
    if stopped is None:
        why = f"every step qualifies, up to {best.rate:g} orders/s: offer more with BENCH_RATES"
    else:
        why = f"stopped at {stopped.rate:g} orders/s: {stopped.failure()}"
    return [why, f"sustained: {best.rate:g} orders/s (p99 {best.p99:.0f} ms)"]


def percentiles(
    latencies: Sequence[float], unended: int, unended_at_least: float, ps: Sequence[float] = (50, 95, 99)
) -> list[tuple[float, bool]]:
    """Each percentile (load.percentile's rank) over the ended orders' latencies and `unended` orders
    known only to take at least `unended_at_least` ms: (value, exact). Not exact: the value is a lower
    bound (the upper one is unknown)."""
    from services.shopctl.load import percentile

    out = []
    for p in ps:
        low = percentile([*latencies, *[unended_at_least] * unended], p)
        high = percentile([*latencies, *[math.inf] * unended], p)
        out.append((low, low == high))
    return out


def ended_per_second(ended_at: Sequence[datetime]) -> float:
    """The rate orders ended at, from the first end to the last (as the timeline recorded them): the
    offered rate when the system keeps up, whatever the latency; its capacity when it falls behind (the
    backlog then ends at that rate, during the step and after)."""
    if len(ended_at) < 2:
        return 0.0
    span = (max(ended_at) - min(ended_at)).total_seconds()
    return (len(ended_at) - 1) / span if span > 0 else 0.0


# -- the running system ---------------------------------------------------------------------------------


class Refused(Exception):
    """The bench cannot run; one line says why."""


def _listening_pid(port: int) -> int | None:
    """The process listening on a local TCP port, from /proc (Linux)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(fields[9])
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return int(proc.name)
        except OSError:
            continue
    return None


def _sampler_of(pid: int) -> str:
    """OTEL_TRACES_SAMPLER_ARG as the process reads it: its environment, else the .env files of its
    working directory (a checkout's settings), else the settings' default."""
    env = dict(
        item.split("=", 1) for item in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in item
    )
    if "OTEL_TRACES_SAMPLER_ARG" in env:
        return env["OTEL_TRACES_SAMPLER_ARG"]
    cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    value = "1.0 (the default)"
    for name in (".env.example", ".env"):
        try:
            for line in (cwd / name).read_text().splitlines():
                key, _, val = line.partition("=")
                if key.strip() == "OTEL_TRACES_SAMPLER_ARG":
                    value = val.strip()
        except OSError:
            pass
    return value


def check_services() -> list[str]:
    """One line per service: health and pid. Refused if any is down or not sampling at 10%."""
    import httpx

    from shared.settings import HEALTH_PORTS, PROCESSES

    down, unsampled, seen = [], [], []
    for name in PROCESSES:
        port = HEALTH_PORTS[name]
        try:
            healthy = httpx.get(f"http://127.0.0.1:{port}/health", timeout=3).status_code == 200
        except httpx.HTTPError:
            healthy = False
        if not healthy:
            down.append(f"{name} (:{port})")
            continue
        pid = _listening_pid(port)
        if pid is None:
            unsampled.append(f"{name} (its process is not visible)")
            continue
        try:
            sampler = _sampler_of(pid)
        except OSError as exc:
            unsampled.append(f"{name} (pid {pid}: {exc.strerror})")
            continue
        try:
            ok = float(sampler) == SAMPLING
        except ValueError:
            ok = False
        if not ok:
            unsampled.append(f"{name} (pid {pid}: OTEL_TRACES_SAMPLER_ARG={sampler})")
        seen.append(f"{name} pid {pid} ({Path(os.readlink(f'/proc/{pid}/cwd'))})")
    if down:
        raise Refused(
            f"services not up or not healthy: {', '.join(down)}; "
            "start them: OTEL_TRACES_SAMPLER_ARG=0.1 make run"
        )
    if unsampled:
        raise Refused(
            f"services not tracing at 10%: {', '.join(unsampled)}; restart them: "
            "make stop && OTEL_TRACES_SAMPLER_ARG=0.1 make run"
        )
    return seen


class Lag:
    """How far every process's consumer group is behind on the event topics (committed offsets)."""

    def __init__(self, kafka: Mapping[str, str]) -> None:
        from confluent_kafka import Consumer
        from confluent_kafka.admin import AdminClient

        self._admin = AdminClient({**kafka, "log_level": 0})
        self._watermarks = Consumer({**kafka, "group.id": "bench-sustained", "log_level": 0})

    def total(self) -> int:
        from confluent_kafka import ConsumerGroupTopicPartitions

        from shared.access import HEARS
        from shared.settings import PROCESSES
        from shared.topics import events_topic

        behind = 0
        for group in PROCESSES:  # the admin client lists one group's offsets per request
            request = [ConsumerGroupTopicPartitions(group)]
            (future,) = self._admin.list_consumer_group_offsets(request, request_timeout=10).values()
            heard = {events_topic(owner) for owner in HEARS[group]}
            for tp in future.result(timeout=10).topic_partitions:
                if tp.topic not in heard or tp.offset < 0:  # not stale offsets of a topic no longer heard
                    continue
                _, high = self._watermarks.get_watermark_offsets(tp, timeout=10)
                behind += max(0, high - tp.offset)
        return behind

    def close(self) -> None:
        self._watermarks.close()


def wait_drained(lag: Lag, deadline: float) -> tuple[bool, int]:
    """Until no group is behind on two checks a second apart (what a service consumed may still be in
    its outbox for a moment), or the deadline: (drained, messages behind at the last check)."""
    behind, zeros = lag.total(), 0
    while time.monotonic() < deadline:
        zeros = zeros + 1 if behind == 0 else 0
        if zeros >= 2:
            return True, 0
        time.sleep(1)
        behind = lag.total()
    return behind == 0, behind


# -- one step -----------------------------------------------------------------------------------------------


def warm_up(publisher, read, lag: Lag, rate: float, seconds: float, drain_timeout: float) -> None:
    """Orders at the first step's rate, not counted: a broker just started still compiles its hot
    paths (a fresh stack sustained half the rate of a warm one), and the services' caches fill."""
    from services.shopctl.load import DEFAULT_FAIL_MIX, parse_mix, plan, publish_at_rate

    orders = max(1, round(rate * seconds))
    published = publish_at_rate(publisher, plan(orders, parse_mix(DEFAULT_FAIL_MIX), seed=0), rate)
    outcomes, drained, behind = wait_for_the_end(read, lag, published.ids, time.monotonic() + drain_timeout)
    state = "drained" if drained else f"{len(outcomes)} ended, {behind} messages still behind"
    print(f"warm-up: {orders} orders at {rate:g}/s, not counted; {state}", flush=True)


def wait_for_the_end(read, lag: Lag, ids: Sequence, deadline: float) -> tuple[dict, bool, int]:
    """Every order's outcome, then no group behind, until the deadline: (outcomes, drained, messages
    behind). Polled once every order is out: the read model's queries must not load the system
    meanwhile."""
    from services.shopctl.load import wait_for_outcomes

    outcomes = wait_for_outcomes(read, ids, max(0.0, deadline - time.monotonic()), every=1.0)
    drained, behind = wait_drained(lag, deadline) if len(outcomes) == len(ids) else (False, lag.total())
    return outcomes, drained, behind


# The tables that grow with every run, and so make runs of different days differ: the database's
# estimates (pg_class, readable by any role), not counts.
_TABLE_SIZES = """
SELECT n.nspname || '.' || c.relname AS name, c.reltuples::bigint AS estimate
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname = ANY(%s) AND c.reltuples > 0
ORDER BY c.reltuples DESC LIMIT %s
"""


def table_sizes(dsn: str, schemas: Sequence[str], largest: int = 6) -> str:
    import psycopg

    with psycopg.connect(dsn) as conn:
        rows = conn.execute(_TABLE_SIZES, (list(schemas), largest)).fetchall()
    return ", ".join(f"{name} {_rows(n)}" for name, n in rows) or "all empty"


def _rows(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}k" if n >= 1e3 else str(n)


def run_step(publisher, read, lag: Lag, rate: float, seconds: float, drain_timeout: float, seed: int) -> Step:
    from services.shopctl.load import (
        DEFAULT_FAIL_MIX,
        describe_off_design,
        latencies_ms,
        off_design,
        outcome_kinds,
        parse_mix,
        plan,
        publish_at_rate,
    )

    orders = max(1, round(rate * seconds))
    print(f"== {rate:g} orders/s for {seconds:g} s: {orders} orders, fail mix {DEFAULT_FAIL_MIX}", flush=True)
    shapes = plan(orders, parse_mix(DEFAULT_FAIL_MIX), seed)
    published = publish_at_rate(publisher, shapes, rate)
    sent_at = time.monotonic()
    # The i-th order is due i / rate seconds in: the last of n, (n - 1) / rate after the first.
    offered = (orders - 1) / published.sending_in if published.sending_in > 0 else rate
    cpu = published.cpu / published.published_in if published.published_in > 0 else 0.0
    print(
        f"   offered {offered:.1f} orders/s over {published.sending_in:.1f} s (load generator: "
        f"{published.cpu / orders * 1e6:.0f} µs CPU per order, {cpu:.0%} of a core)",
        flush=True,
    )
    outcomes, drained, behind = wait_for_the_end(read, lag, published.ids, sent_at + drain_timeout)
    waited = time.monotonic() - sent_at

    latencies = latencies_ms(outcomes)
    unended = orders - len(outcomes)
    (p50, p50_exact), (p95, p95_exact), (p99, p99_exact) = percentiles(latencies, unended, waited * 1000)
    ended_rate = ended_per_second([o["ended_at"] for o in outcomes.values()])
    kinds = outcome_kinds(outcomes)
    if drained:
        drain = f"drained {waited:.1f} s after the last order"
    else:
        drain = (
            f"not drained {waited:.0f} s after the last order "
            f"({unended} without an end, {behind} messages behind)"
        )
    ends = ", ".join(f"{k.removeprefix('cancelled: ')} {n}" for k, n in sorted(kinds.items()))
    print(
        f"   ended {len(outcomes)}/{orders} ({ends}), {ended_rate:.1f} orders/s | p50 {_ms(p50, p50_exact)}"
        f" / p95 {_ms(p95, p95_exact)} / p99 {_ms(p99, p99_exact)} ms | {drain}",
        flush=True,
    )
    return Step(
        rate,
        orders,
        offered,
        cpu,
        published.cpu / orders,
        len(outcomes),
        ended_rate,
        p50,
        p95,
        p99,
        p99_exact,
        describe_off_design(wrong) if (wrong := off_design(shapes, published.ids, outcomes)) else None,
    )


def _ms(value: float, exact: bool) -> str:
    return f"{'' if exact else '>='}{value:.0f}"


def table(steps: Sequence[Step]) -> list[str]:
    rows = [
        f"{'step':>6} {'offered':>8} {'ended/s':>8} {'ended':>13} {'p50':>7} {'p95':>7} {'p99':>8}  verdict"
    ]
    for s in steps:
        p99 = _ms(s.p99, s.p99_exact)
        rows.append(
            f"{s.rate:>6g} {s.offered:>8.1f} {s.ended_rate:>8.1f} {f'{s.ended}/{s.orders}':>13} "
            f"{s.p50:>7.0f} {s.p95:>7.0f} {p99:>8}  {'holds' if s.failure() is None else 'does not hold'}"
        )
    return rows


def main() -> int:
    # This process starts each order's trace, and the services follow its sampling decision.
    os.environ["OTEL_TRACES_SAMPLER_ARG"] = str(SAMPLING)
    rates = [float(r) for r in os.environ.get("BENCH_RATES", "50 100 200 400 800 1600 3200").split()]
    seconds = float(os.environ.get("BENCH_SECONDS", "60"))
    drain_timeout = float(os.environ.get("BENCH_DRAIN_TIMEOUT", "120"))
    warm_up_seconds = float(os.environ.get("BENCH_WARMUP", "15"))
    if not rates or any(r <= 0 for r in rates) or seconds <= 0 or drain_timeout <= 0 or warm_up_seconds < 0:
        print(
            "bench refused: BENCH_RATES, BENCH_SECONDS and BENCH_DRAIN_TIMEOUT must be positive, "
            "BENCH_WARMUP not negative",
            file=sys.stderr,
        )
        return 2

    from services.shopctl.app import connect_publisher
    from services.shopctl.errors import CliError
    from services.shopctl.readmodel import ReadModel
    from shared.contracts import OrderPlaced
    from shared.messaging.publisher import PublishError
    from shared.settings import PROCESSES, get_settings

    settings = get_settings()
    try:
        seen = check_services()
        publisher = connect_publisher([OrderPlaced])  # checks the broker and the registry
        read = ReadModel(settings)
        read.outcomes([])  # checks the read model
        lag = Lag(settings.kafka_client("admin"))
        behind = lag.total()
    except (Refused, CliError) as exc:
        print(f"bench refused: {exc}", file=sys.stderr)
        return 3
    except Exception as exc:  # the broker's admin API: one line, not a traceback
        print(f"bench refused: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 3

    print(f"services: {'; '.join(seen)}")
    print(
        f"tracing at {SAMPLING:.0%}; steps {' '.join(f'{r:g}' for r in rates)} orders/s, {seconds:g} s each"
    )
    if behind:
        drained, behind = wait_drained(lag, time.monotonic() + drain_timeout)
        print(f"before the first step: {'drained' if drained else f'still {behind} messages behind'}")
    print(f"largest tables (estimates): {table_sizes(settings.reader_dsn(), PROCESSES)}", flush=True)
    steps: list[Step] = []
    try:
        if warm_up_seconds > 0:
            warm_up(publisher, read, lag, rates[0], warm_up_seconds, drain_timeout)
        for rate in rates:
            steps.append(run_step(publisher, read, lag, rate, seconds, drain_timeout, seed=int(rate)))
            if steps[-1].failure() is not None:
                break
    except (CliError, PublishError) as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    finally:
        lag.close()
    print("\n".join(table(steps)))
    print("\n".join(verdict(steps)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
