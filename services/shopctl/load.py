"""`shopctl load`: the project's end-to-end benchmark. Publish N orders at a target rate, a share of
them designed to fail at each step, then wait for every outcome and report throughput and latency
(from OrderPlaced to the order's end, both as the timeline recorded them)."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from services.shopctl.errors import bad_input, unavailable
from services.shopctl.readmodel import ReadModel
from shared.settings import get_settings

if TYPE_CHECKING:
    from shared.messaging.publisher import EventPublisher

console = Console()
# How each designed failure is made, with the seeded data (services/seed.py).
FAILURES = {
    "payment": ("C-BROKE", "SKU-LOAD:1", "DE"),
    "stock": ("C-LOAD", "SKU-NOT-STOCKED:1@1.00", "DE"),
    "shipping": ("C-LOAD", "SKU-LOAD:1", "US"),
}
SUCCESS = ("C-LOAD", "SKU-LOAD:1", "DE")
# What each shape is designed to end as, in outcome_kinds' words.
DESIGNED = {
    SUCCESS: "completed",
    FAILURES["payment"]: "cancelled: PaymentFailed",
    FAILURES["stock"]: "cancelled: StockReservationFailed",
    FAILURES["shipping"]: "cancelled: ShipmentFailed",
}
# What an ending other than the designed one most likely means.
OFF_DESIGN_HINT = "is the stack seeded (make seed)?"
# The standard fail mix: a tenth of the orders designed to fail at each step.
DEFAULT_FAIL_MIX = "payment=0.1,stock=0.1,shipping=0.1"


def parse_mix(text: str) -> dict[str, float]:
    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        step, _, share = part.partition("=")
        if step not in FAILURES:
            raise bad_input(f"--fail-mix {part!r}: unknown step {step!r}; steps: {', '.join(FAILURES)}")
        try:
            mix[step] = float(share)
        except ValueError:
            raise bad_input(f"--fail-mix {part!r}: share must be a number between 0 and 1") from None
        if not 0 <= mix[step] <= 1:
            raise bad_input(f"--fail-mix {part!r}: share must be between 0 and 1")
    if sum(mix.values()) > 1:
        raise bad_input(f"--fail-mix {text!r}: shares add up to more than 1")
    return mix


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def plan(orders: int, mix: dict[str, float], seed: int) -> list[tuple[str, str, str]]:
    """The shape (customer, item, country) of each order, a share of them designed to fail per step."""
    rng = random.Random(seed)
    shapes = []
    for _ in range(orders):
        roll, shape = rng.random(), SUCCESS
        for step, share in mix.items():
            if roll < share:
                shape = FAILURES[step]
                break
            roll -= share
        shapes.append(shape)
    return shapes


@dataclass(frozen=True)
class Published:
    ids: list[UUID]
    sending_in: float  # seconds from the first send to the last
    published_in: float  # the same, up to the flush that says every order landed
    cpu: float  # this process's CPU seconds over the whole publishing


def publish_at_rate(
    publisher: EventPublisher,
    shapes: Sequence[tuple[str, str, str]],
    rate: float,
    on_sent: Callable[[int], None] | None = None,
) -> Published:
    """Send one OrderPlaced per shape, the i-th no earlier than i / rate seconds in, then flush
    (PublishError if any did not land). When this process cannot keep up, it sends as fast as it can:
    `len(ids) / sending_in` is the rate it offered."""
    from services.shopctl.orders import order_placed

    ids: list[UUID] = []
    cpu = time.process_time()
    started = time.monotonic()
    for i, (customer, item, country) in enumerate(shapes):
        # Hold the rate: the i-th order goes out no earlier than i / rate seconds in.
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        event = order_placed(customer, [item], country)
        publisher.send(event)
        ids.append(event.order_id)
        if on_sent is not None:
            on_sent(i + 1)
    sending_in = time.monotonic() - started
    publisher.flush()
    return Published(ids, sending_in, time.monotonic() - started, time.process_time() - cpu)


def wait_for_outcomes(
    read: ReadModel,
    ids: Sequence[UUID],
    timeout: float,
    on_progress: Callable[[int], None] | None = None,
    every: float = 0.25,
) -> dict[UUID, dict[str, Any]]:
    """Each order's terminal event as the timeline recorded it, polling until all have one or
    `timeout` seconds have passed."""
    outcomes: dict[UUID, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while len(outcomes) < len(ids) and time.monotonic() < deadline:
        pending = [i for i in ids if i not in outcomes]
        outcomes |= read.outcomes(pending)
        if on_progress is not None:
            on_progress(len(outcomes))
        if len(outcomes) < len(ids):
            time.sleep(every)
    return outcomes


def latencies_ms(outcomes: dict[UUID, dict[str, Any]]) -> list[float]:
    """From OrderPlaced to the order's end, both as the timeline recorded them."""
    return [(o["ended_at"] - o["placed_at"]).total_seconds() * 1000 for o in outcomes.values()]


def read_model_behind_ms(outcomes: dict[UUID, dict[str, Any]]) -> list[float]:
    """How long after each order's end the timeline recorded it: the read model's freshness, which
    the latencies above do not include (they are the events' own times)."""
    return [(o["recorded_at"] - o["ended_at"]).total_seconds() * 1000 for o in outcomes.values()]


def outcome_kinds(outcomes: dict[UUID, dict[str, Any]]) -> Counter[str]:
    return Counter(map(outcome_kind, outcomes.values()))


def outcome_kind(outcome: dict[str, Any]) -> str:
    if outcome["event_type"] == "OrderCompleted":
        return "completed"
    return f"cancelled: {outcome['payload']['reason'].split(':')[0]}"


def off_design(
    shapes: Sequence[tuple[str, str, str]], ids: Sequence[UUID], outcomes: dict[UUID, dict[str, Any]]
) -> Counter[tuple[str, str]]:
    """The ended orders whose ending is not the one their shape was designed for, counted by
    (designed, got): on an unseeded stack every order fails at payment, and the figures would time
    a two-step saga instead of the whole one."""
    ended = (
        (DESIGNED[shape], outcome_kind(outcomes[i]))
        for shape, i in zip(shapes, ids, strict=True)
        if i in outcomes
    )
    return Counter((want, got) for want, got in ended if want != got)


def describe_off_design(wrong: Counter[tuple[str, str]]) -> str:
    shown = ", ".join(f"{n} designed {want!r} ended {got!r}" for (want, got), n in wrong.most_common(3))
    return f"{sum(wrong.values())} orders ended otherwise than designed ({shown}): {OFF_DESIGN_HINT}"


def run(
    orders: Annotated[int, typer.Option(help="How many orders")] = 100,
    rate: Annotated[float, typer.Option(help="Target orders per second")] = 50,
    fail_mix: Annotated[
        str, typer.Option(help="Share designed to fail per step, e.g. payment=0.1,stock=0.1")
    ] = DEFAULT_FAIL_MIX,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for outcomes after the last order")] = 120,
    seed: Annotated[int, typer.Option(help="Random seed of the mix")] = 1,
) -> None:
    """Publish orders at a rate, wait for every outcome, print counts, throughput and latency."""
    if orders <= 0:
        raise bad_input(f"--orders {orders}: must be positive")
    if rate <= 0:
        raise bad_input(f"--rate {rate}: must be positive")
    mix = parse_mix(fail_mix)
    # Imported here, not at start-up: every shopctl command pays for what the module imports.
    from services.shopctl.app import connect_publisher
    from shared.contracts import OrderPlaced
    from shared.messaging.publisher import PublishError

    publisher = connect_publisher([OrderPlaced])
    shapes = plan(orders, mix, seed)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        publishing = progress.add_task("publishing", total=orders)
        started = time.monotonic()
        try:
            published = publish_at_rate(
                publisher, shapes, rate, lambda n: progress.update(publishing, completed=n)
            )
        except PublishError as exc:
            raise unavailable(str(exc)) from exc

        waiting = progress.add_task("waiting for outcomes", total=orders)
        read = ReadModel(get_settings())
        outcomes = wait_for_outcomes(
            read, published.ids, timeout, lambda n: progress.update(waiting, completed=n)
        )
        ended_in = time.monotonic() - started

    kinds = outcome_kinds(outcomes)
    latencies = latencies_ms(outcomes)
    table = Table("outcome", "orders", title=f"{orders} orders at {rate:g}/s", title_justify="left")
    for kind, count in sorted(kinds.items()):
        table.add_row(kind, str(count))
    table.add_row(
        "[red]no outcome[/]" if len(outcomes) < orders else "no outcome", str(orders - len(outcomes))
    )
    console.print(table)
    figures = Table("figure", "value")
    figures.add_row("published", f"{orders / published.published_in:.1f} orders/s")
    figures.add_row("ended", f"{len(outcomes) / ended_in:.1f} orders/s (first published to last ended)")
    if latencies:
        for p in (50, 95, 99):
            figures.add_row(f"latency p{p}", f"{percentile(latencies, p):.0f} ms")
        figures.add_row("latency max", f"{max(latencies):.0f} ms")
        behind = read_model_behind_ms(outcomes)
        figures.add_row(
            "read model behind",
            f"p50 {percentile(behind, 50):.0f} ms, p99 {percentile(behind, 99):.0f} ms",
        )
    console.print(figures)
    wrong = off_design(shapes, published.ids, outcomes)
    if wrong:
        console.print(f"[yellow]{describe_off_design(wrong)}[/]")
    if len(outcomes) < orders:
        raise typer.Exit(1)
