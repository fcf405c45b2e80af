"""`shopctl`: place orders, publish any event, follow an order, run a load, handle dead letters and
parked outbox rows."""

from __future__ import annotations

import atexit
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import typer
from rich.console import Console
from rich.table import Table

from services.shopctl import deadletters, kafka, load, outbox, status, stuck, trace
from services.shopctl.errors import NOT_FOUND, CliError, bad_input, unavailable, uuid_argument
from services.shopctl.flow import run as flow
from services.shopctl.readmodel import ReadModel, outcome, per_service_state
from shared.access import OPERATOR
from shared.settings import Settings, get_settings
from shared.topics import STOREFRONT

if TYPE_CHECKING:
    from shared.contracts import Event
    from shared.messaging.publisher import EventPublisher

# What only publishing needs (the registry client, the contracts, Kafka's producer, OpenTelemetry's
# exporter) is imported by the commands that publish: `order show` must answer well under a second,
# and its start-up is most of that.

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
order_app = typer.Typer(no_args_is_help=True, help="Place an order, or follow one through the saga.")
app.add_typer(order_app, name="order")
app.add_typer(deadletters.app, name="dlq")
app.add_typer(outbox.app, name="outbox")
console = Console()


def settings() -> Settings:
    return get_settings()


def connect_publisher(event_types: list[type[Event]], principal: str = STOREFRONT) -> EventPublisher:
    """Check the broker and the registry before anything is produced: fail early, publish nothing.

    `principal`: who publishes (shared.access): the storefront places orders and may publish nothing
    else; the operator may publish any fact, in its owner's name (the envelope's source), since
    consumers refuse any other source on an owner's topic.

    Tracing starts here too: an event the CLI publishes starts its order's trace, which every service
    then continues (sampled at OTEL_TRACES_SAMPLER_ARG, like everything else)."""
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    from shared.messaging.publisher import EventPublisher, PublishError
    from shared.messaging.tracing import configure_tracing

    s = settings()
    provider = configure_tracing(
        s.otel_service_name or "shopctl",
        s.otel_exporter_otlp_endpoint,
        s.otel_traces_sampler_arg,
        export_timeout=3,  # a command must not hang on its way out when Jaeger is away
    )
    atexit.register(provider.shutdown)  # sends the spans still batched before the command exits
    kafka.checked(principal)
    try:
        return EventPublisher(s, None, event_types, principal)  # source: each event's owner
    except ValueError as exc:  # a registry password not set
        raise bad_input(str(exc)) from exc
    except PublishError as exc:  # the broker went away since the check
        raise unavailable(str(exc)) from exc
    except SchemaRegistryError as exc:
        raise unavailable(f"schema registry at {s.schema_registry_url} refused: {exc}") from exc
    except Exception as exc:
        # confluent-kafka's registry client raises its own copy of httpx's errors (httpx2).
        if type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "httpcore2"):
            raise unavailable(f"schema registry unreachable at {s.schema_registry_url}: {exc}") from exc
        raise


def publish_one(
    publisher: EventPublisher, event: Event, correlation_id: UUID | None = None
) -> dict[str, Any]:
    from shared.messaging.publisher import PublishError

    try:
        published = publisher.publish(event, correlation_id)
    except PublishError as exc:
        raise unavailable(str(exc)) from exc
    m = published.message
    return {
        "event_type": m.event_type,
        "event_id": str(m.event_id),
        "order_id": str(event.order_id),
        "correlation_id": m.headers["correlation_id"],
        "topic": m.topic,
        "partition": published.partition,
        "offset": published.offset,
    }


@order_app.command("place")
def place(
    customer: Annotated[str, typer.Option(help="Customer id, e.g. C-1000")],
    item: Annotated[list[str], typer.Option(help="SKU:QTY or SKU:QTY@PRICE; repeat for more lines")],
    country: Annotated[str, typer.Option(help="Shipping country, ISO 3166-1 alpha-2")] = "DE",
    wait: Annotated[
        bool, typer.Option(help="Wait until every service has acted and print the timeline")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait")] = 60,
) -> None:
    """Publish an OrderPlaced, as the storefront would."""
    from services.shopctl.orders import order_placed
    from shared.contracts import OrderPlaced

    event = order_placed(customer, item, country)
    published = publish_one(connect_publisher([OrderPlaced]), event)
    console.print(
        f"order [bold]{published['order_id']}[/] placed; correlation id {published['correlation_id']} "
        f"({published['topic']}[{published['partition']}]@{published['offset']})"
    )
    if wait:
        if not ReadModel(settings()).wait_until_settled(event.order_id, timeout):
            raise CliError(
                f"order {event.order_id} did not settle within {timeout:.0f}s; "
                f"`shopctl order show {event.order_id}` shows how far it got",
                NOT_FOUND,
            )
        show_order(event.order_id)


@order_app.command("show")
def show(
    order_id: Annotated[str | None, typer.Argument(help="The order id")] = None,
    correlation: Annotated[
        str | None, typer.Option("--correlation", help="Find the order by correlation id")
    ] = None,
) -> None:
    """The saga of one order across every service: timeline, each service's state, outcome, trace."""
    if (order_id is None) == (correlation is None):
        raise bad_input("give an ORDER_ID or --correlation ID, not both and not neither")
    read = ReadModel(settings())
    if correlation is not None:
        found = read.order_of_correlation(uuid_argument(correlation, "--correlation"))
        if found is None:
            raise CliError(f"no events with correlation id {correlation}", NOT_FOUND)
        show_order(found, read)
    else:
        show_order(uuid_argument(order_id or "", "ORDER_ID"), read)


def _short(event_id: UUID) -> str:
    # The tail: event ids are UUIDv7, whose first digits are the time, alike for events of one moment.
    return str(event_id)[-8:]


def show_order(order_id: UUID, read: ReadModel | None = None) -> None:
    events = (read or ReadModel(settings())).timeline(order_id)
    if not events:
        raise CliError(f"no events for order {order_id} (yet?)", NOT_FOUND)
    by_id = {e["event_id"]: e for e in events}
    table = Table(title=f"order {order_id}", title_justify="left")
    for column in ("time (UTC)", "event", "source", "event id", "caused by"):
        table.add_column(column)
    for e in events:
        cause = by_id.get(e["causation_id"])
        table.add_row(
            e["occurred_at"].strftime("%H:%M:%S.%f")[:-3],
            e["event_type"],
            e["source"],
            _short(e["event_id"]),
            f"{cause['event_type']} {_short(cause['event_id'])}" if cause else "-",
        )
    console.print(table)
    state = Table(show_header=True, title="state per service", title_justify="left")
    state.add_column("service")
    state.add_column("state")
    for service, line in per_service_state(events).items():
        state.add_row(service, line)
    console.print(state)
    console.print(f"outcome: [bold]{outcome(events)}[/]; correlation id {events[0]['correlation_id']}")
    trace = next((e["trace_id"] for e in events if e["trace_id"]), None)
    if trace:
        jaeger = settings().jaeger_query_url
        # The no-Docker Jaeger serves its API but no UI: both addresses, so one always works.
        console.print(f"trace: {jaeger}/trace/{trace} (API: {jaeger}/api/traces/{trace})")


@app.command()
def publish(
    event_type: Annotated[str, typer.Argument(help="Event type, e.g. OrderPlaced")],
    json_: Annotated[str | None, typer.Option("--json", help="One event's payload as JSON")] = None,
    file: Annotated[
        Path | None, typer.Option(help="A .json file (one payload) or .jsonl (one per line)")
    ] = None,
    correlation_id: Annotated[
        str | None, typer.Option(help="Correlation id (default: a new one each)")
    ] = None,
    as_operator: Annotated[
        bool,
        typer.Option(
            "--as-operator",
            help="Publish as the operator (KAFKA_OPERATOR_PASSWORD), in the event owner's name: needed "
            "for any fact but OrderPlaced, which the storefront publishes",
        ),
    ] = False,
) -> None:
    """Validate payloads against the event's registered schema, then publish them."""
    from pydantic import ValidationError

    from shared.contracts import EVENT_TYPES

    event_cls = EVENT_TYPES.get(event_type)
    if event_cls is None:
        raise bad_input(f"unknown event type {event_type!r}; known: {', '.join(EVENT_TYPES)}")
    if event_cls.owner != STOREFRONT and not as_operator:
        raise bad_input(
            f"{event_type} is {event_cls.owner}'s fact: publishing it in {event_cls.owner}'s name takes "
            "the operator's credentials, asked for with --as-operator"
        )
    payloads = _payloads(json_, file)
    events = []
    for where, payload in payloads:
        try:
            events.append(event_cls.model_validate(payload))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(map(str, first["loc"])) or "payload"
            raise bad_input(f"{where}: {field}: {first['msg']}") from exc
    correlation = uuid_argument(correlation_id, "--correlation-id") if correlation_id else None
    publisher = connect_publisher([event_cls], OPERATOR if as_operator else STOREFRONT)
    from shared.messaging.errors import OversizedEvent

    for (where, _), event in zip(payloads, events, strict=True):
        try:
            publisher.check_size(event)  # all of them before any is published
        except OversizedEvent as exc:
            raise bad_input(f"{where}: {exc}") from exc
    table = Table("event id", "order id", "topic", "partition", "offset")
    for event in events:
        p = publish_one(publisher, event, correlation)
        table.add_row(p["event_id"], p["order_id"], p["topic"], str(p["partition"]), str(p["offset"]))
    console.print(table)


def _payloads(json_: str | None, file: Path | None) -> list[tuple[str, Any]]:
    if (json_ is None) == (file is None):
        raise bad_input("give --json or --file, not both and not neither")
    if json_ is not None:
        return [("--json", _parse(json_, "--json"))]
    assert file is not None
    if not file.is_file():
        raise bad_input(f"--file {file}: no such file")
    text = file.read_text()
    if file.suffix == ".jsonl":
        lines = [(i, line) for i, line in enumerate(text.splitlines(), 1) if line.strip()]
        if not lines:
            raise bad_input(f"{file}: no events in it")
        return [(f"{file}:{i}", _parse(line, f"{file}:{i}")) for i, line in lines]
    return [(str(file), _parse(text, str(file)))]


def _parse(text: str, where: str) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise bad_input(f"{where}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    if not isinstance(value, dict):
        raise bad_input(f"{where}: expected a JSON object, got {type(value).__name__}")
    return value


order_app.command("stuck")(stuck.run)
app.command("load")(load.run)
app.command("status")(status.run)
app.command("flow")(flow)
app.command("trace")(trace.run)


def main() -> None:
    try:
        # Without standalone mode typer returns a command's typer.Exit code instead of exiting.
        code = app(standalone_mode=False)
    except CliError as exc:
        Console(stderr=True, soft_wrap=True).print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:
        # Usage errors of the command-line parser (typer vendors click): they know how to show themselves.
        if hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    sys.exit(code if isinstance(code, int) else 0)
