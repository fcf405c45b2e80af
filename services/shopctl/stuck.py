"""`shopctl order stuck`: the sagas still open after their deadline, what each waits for, and the last
thing heard of it. The order service cancels an order at its deadline; one listed here was not (the
order service down or behind, its OrderCancelled not yet out), so it names where to look."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from services.shopctl.errors import bad_input
from services.shopctl.readmodel import ReadModel
from shared.settings import get_settings

console = Console()


def waiting_for(facts: list[str]) -> str:
    """The facts a saga still waits for, by the order service's own rules (services/order/domain.py)."""
    from services.order.domain import Order, awaited
    from shared.contracts import EVENT_TYPES

    known = frozenset(EVENT_TYPES[f] for f in facts if f in EVENT_TYPES)
    order = Order(order_id=None, facts=known)  # type: ignore[arg-type]  (no id: only its facts count)
    return ", ".join(t.type_name() for t in awaited(order)) or "-"


def _age(since: datetime, now: datetime) -> str:
    seconds = (now - since).total_seconds()
    return (
        f"{seconds:.0f} s"
        if seconds < 120
        else f"{seconds / 60:.0f} min"
        if seconds < 7200
        else f"{seconds / 3600:.1f} h"
    )


def run(
    older_than: Annotated[
        float | None,
        typer.Option(help="Seconds a saga has been open [default: ORDER_SAGA_TIMEOUT_SECONDS, the deadline]"),
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, oldest first")] = 50,
) -> None:
    """Orders open longer than their deadline: what each still waits for, and the last event seen."""
    settings = get_settings()
    threshold = settings.order_saga_timeout_seconds if older_than is None else older_than
    if threshold < 0 or limit < 1:
        raise bad_input("--older-than must be 0 or more and --limit 1 or more")
    read = ReadModel(settings)
    rows = read.stuck(timedelta(seconds=threshold), limit)
    opened, stuck, _ = read.open_sagas(timedelta(seconds=threshold))
    now = datetime.now(UTC)
    if not rows:
        console.print(f"no saga open for longer than {threshold:g} s ({opened} open in all)")
        return
    table = Table(title=f"sagas open for longer than {threshold:g} s", title_justify="left")
    for column in ("order id", "open for", "waiting for", "last event", "heard"):
        table.add_column(column)
    for r in rows:
        table.add_row(*_cells(r, now))
    console.print(table)
    shown = f"the oldest {len(rows)} shown; " if stuck > len(rows) else ""
    console.print(f"{stuck} stuck ({shown}{opened} open in all); `shopctl order show ORDER_ID` for one")


def _cells(row: dict[str, Any], now: datetime) -> tuple[str, ...]:
    return (
        str(row["order_id"]),
        _age(row["first_at"], now),
        waiting_for(row["facts"]),
        f"{row['last_event']} ({row['last_source']})",
        f"{_age(row['last_at'], now)} ago",
    )
