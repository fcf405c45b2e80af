"""`shopctl outbox list|retry|discard`: the outbox rows the broker refused for good, and what to do.

Each service's outbox is reached through that service's own role. Retry and discard run under the
service's relay lock (shared/messaging/parked.py), so a relay batch never sees half of either.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from typing import Annotated, cast

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from services.shopctl.errors import NOT_FOUND, CliError, bad_input, unavailable
from shared.messaging import parked
from shared.settings import PROCESSES, ServiceName, get_settings

app = typer.Typer(no_args_is_help=True, help="Parked outbox rows: list them, retry them, discard one.")
console = Console(soft_wrap=True)  # a command line in a message stays whole, to copy

ServiceOption = Annotated[str | None, typer.Option("--service", help=f"One of {', '.join(PROCESSES)}")]


def _services(service: str | None) -> list[ServiceName]:
    if service is None:
        return list(PROCESSES)
    if service not in PROCESSES:
        raise bad_input(f"--service {service!r}: no such service; known: {', '.join(PROCESSES)}")
    return [cast(ServiceName, service)]


def _one_service(service: str | None, why: str) -> ServiceName:
    if service is None:
        raise bad_input(f"{why} needs --service: outbox ids and rows are each service's own")
    return _services(service)[0]


@contextmanager
def _connection(service: ServiceName, *, under_relay_lock: bool = False) -> Iterator[psycopg.Connection]:
    """One transaction on the service's outbox, as its own role; committed when the block ends."""
    try:
        # The DSN carries every connection option (connect timeout, keepalives).
        with psycopg.connect(get_settings().libpq_dsn_of(service)) as conn:
            if under_relay_lock:
                for statement in parked.WAIT_FOR_RELAY:
                    conn.execute(statement)
                conn.execute(parked.WAIT_FOR_RELAY_LOCK)
            yield conn
    except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled) as exc:
        raise unavailable(f"{service}'s relay kept its lock too long, try again: {_first_line(exc)}") from exc
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
        raise unavailable(
            f"{service}'s outbox is not migrated yet (start the service, or `python -m shared.migrations "
            f"{service}`): {_first_line(exc)}"
        ) from exc
    except psycopg.OperationalError as exc:
        raise unavailable(f"{service}'s database unreachable: {_first_line(exc)}") from exc


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@app.command("list")
def list_(service: ServiceOption = None) -> None:
    """Every parked row: which service, topic, key and event, since when, and why."""
    table = Table(title="parked outbox rows", title_justify="left")
    # Ids and keys whole, whatever the width: they are what `retry` and `discard` are given.
    table.add_column("id", no_wrap=True)
    table.add_column("service", no_wrap=True)
    table.add_column("topic", overflow="fold")
    table.add_column("key", no_wrap=True)
    table.add_column("event type", overflow="fold")
    table.add_column("parked at (UTC)", overflow="fold")
    table.add_column("reason", overflow="fold", min_width=24)
    count = 0
    for name in _services(service):
        with _connection(name) as conn:
            for row_id, topic, key, event_type, parked_at, reason in conn.execute(parked.LIST):
                at = parked_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
                table.add_row(str(row_id), name, topic, key, event_type, at, reason)
                count += 1
    console.print(table if count else "no parked outbox rows")


@app.command()
def retry(
    ids: Annotated[
        list[int] | None, typer.Argument(help="Parked row ids, as `outbox list` shows them")
    ] = None,
    key: Annotated[str | None, typer.Option(help="Every parked row of this message key")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every parked row of the service")] = False,
    service: ServiceOption = None,
) -> None:
    """Make parked rows pending again, for the relay to send in order; a row takes those parked behind it."""
    if sum((bool(ids), key is not None, all_)) != 1:
        raise bad_input("give row IDs, --key KEY or --all: one of them")
    retried: dict[ServiceName, list[int]] = {}
    if ids:
        name = _one_service(service, "retrying row ids")
        with _connection(name, under_relay_lock=True) as conn:
            retried[name] = _retry_ids(conn, name, sorted(set(ids)))
            conn.execute(parked.WAKE_RELAY)
    else:
        names = [_one_service(service, "--all")] if all_ else _services(service)
        for name in names:
            with _connection(name, under_relay_lock=True) as conn:
                statement, params = (parked.RETRY_ALL, ()) if all_ else (parked.RETRY_KEY, (key,))
                got = [r[0] for r in conn.execute(statement, params)]
                if got:
                    retried[name] = got
                    conn.execute(parked.WAKE_RELAY)
        if not retried:
            where = f"in {service}'s outbox" if service else "in any outbox"
            raise CliError(f"no parked rows{f' of key {key}' if key else ''} {where}", NOT_FOUND)
    for name, rows in retried.items():
        console.print(
            f"{name}: {_rows(len(rows))} pending again ({', '.join(map(str, sorted(rows)))}); "
            "its relay sends them now, in order"
        )


def _retry_ids(conn: psycopg.Connection, service: ServiceName, ids: list[int]) -> list[int]:
    found = {row_id: (key, state) for row_id, key, state in conn.execute(parked.FIND, (ids,))}
    for row_id in ids:
        if row_id not in found:
            raise CliError(f"no row {row_id} in {service}'s outbox", NOT_FOUND)
        if found[row_id][1] != "parked":
            raise bad_input(f"{service}'s outbox row {row_id} is {found[row_id][1]}, not parked")
    # Retried alone, a row would go out before the rows parked ahead of it on its key.
    for row_id, first in conn.execute(parked.PARKED_BEFORE, {"ids": ids}):
        key = found[row_id][0]
        raise bad_input(
            f"{service}'s outbox row {row_id} is parked behind row {first} of its key {key}: "
            f"retry {first} (it takes {row_id} along) or --key {key}"
        )
    return [r[0] for r in conn.execute(parked.RETRY_IDS, (ids,))]


@app.command()
def discard(
    row_id: Annotated[int, typer.Argument(metavar="ID", help="A parked row's id")],
    reason: Annotated[str | None, typer.Option(help="Why it is never to be sent (recorded)")] = None,
    service: ServiceOption = None,
) -> None:
    """End a parked row for good: it is never sent; the reason is kept with it."""
    name = _one_service(service, "discard")
    if reason is None or not reason.strip():
        raise bad_input("discard needs --reason TEXT: why this row is never to be sent")
    with _connection(name, under_relay_lock=True) as conn:
        done = conn.execute(parked.DISCARD, (reason.strip(), row_id)).fetchone()
        if done is None:
            state = conn.execute(parked.FIND, ([row_id],)).fetchone()
            if state is None:
                raise CliError(f"no row {row_id} in {name}'s outbox", NOT_FOUND)
            raise bad_input(
                f"{name}'s outbox row {row_id} is {state[2]}, not parked: only a parked row is discarded"
            )
        key = done[0]
        behind = conn.execute(parked.STILL_PARKED_ON_KEY, (key,)).fetchone()[0]
    console.print(f"{name}: outbox row {row_id} discarded, never to be sent ({reason.strip()})")
    if behind:
        console.print(
            f"{_rows(behind)} of key {key} still parked behind it: "
            f"`shopctl outbox retry --key {key} --service {name}` sends them"
        )


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"
