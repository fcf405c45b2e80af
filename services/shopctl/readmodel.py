"""Reading the timeline read model (schema `timeline`) through its SELECT-only reader role."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from services.shopctl.errors import unavailable
from shared.settings import Settings

TERMINAL = ("OrderCompleted", "OrderCancelled")


class ReadModel:
    def __init__(self, settings: Settings) -> None:
        self._dsn = settings.reader_dsn()
        self._conn: psycopg.Connection | None = None

    def _query(self, sql: str, *params: object) -> list[dict[str, Any]]:
        try:
            if self._conn is None:
                # The DSN carries every connection option (connect timeout, keepalives).
                self._conn = psycopg.connect(self._dsn, row_factory=dict_row, autocommit=True)
            return self._conn.execute(sql, params).fetchall()
        except psycopg.OperationalError as exc:
            raise unavailable(f"timeline read model unreachable: {str(exc).strip().splitlines()[0]}") from exc
        except psycopg.errors.UndefinedTable as exc:
            raise unavailable(
                "the timeline read model has no tables yet: is the timeline service running?"
            ) from exc

    def timeline(self, order_id: UUID) -> list[dict[str, Any]]:
        return self._query(
            "SELECT * FROM events WHERE order_id = %s ORDER BY occurred_at, recorded_at", order_id
        )

    def order_of_correlation(self, correlation_id: UUID) -> UUID | None:
        rows = self._query("SELECT order_id FROM events WHERE correlation_id = %s LIMIT 1", correlation_id)
        return rows[0]["order_id"] if rows else None

    def outcomes(self, order_ids: Sequence[UUID]) -> dict[UUID, dict[str, Any]]:
        """Terminal events (with the OrderPlaced time, and when the timeline recorded the end) of those
        orders that have ended."""
        rows = self._query(
            "SELECT t.order_id, t.event_type, t.occurred_at AS ended_at, t.recorded_at, t.payload, "
            "p.occurred_at AS placed_at "
            "FROM events t JOIN events p ON p.order_id = t.order_id AND p.event_type = 'OrderPlaced' "
            "WHERE t.order_id = ANY(%s) AND t.event_type = ANY(%s)",
            list(order_ids),
            list(TERMINAL),
        )
        return {r["order_id"]: r for r in rows}

    def stuck(self, older_than: timedelta, limit: int) -> list[dict[str, Any]]:
        """Sagas still open whose first event is older than that, oldest first (the partial index
        `sagas_open` holds the open ones only, however large the read model grows)."""
        return self._query(
            "SELECT order_id, correlation_id, first_at, last_at, last_event, last_source, facts "
            "FROM sagas WHERE ended_at IS NULL AND first_at < now() - %s ORDER BY first_at LIMIT %s",
            older_than,
            limit,
        )

    def open_sagas(self, older_than: timedelta) -> tuple[int, int, datetime | None]:
        """How many sagas are open, how many of them for longer than that, and the oldest's start."""
        [row] = self._query(
            "SELECT count(*) AS open, count(*) FILTER (WHERE first_at < now() - %s) AS stuck, "
            "min(first_at) AS oldest FROM sagas WHERE ended_at IS NULL",
            older_than,
        )
        return row["open"], row["stuck"], row["oldest"]

    def wait_until_settled(self, order_id: UUID, timeout: float) -> bool:
        """Until the order has its outcome and every service has acted on it: a completed order's
        stock leaves the warehouse (StockShipped) alongside OrderCompleted, so wait for both."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = {r["event_type"] for r in self._query(_EVENT_TYPES_OF_ORDER, order_id)}
            if "OrderCancelled" in seen or {"OrderCompleted", "StockShipped"} <= seen:
                return True
            time.sleep(0.2)
        return False


_EVENT_TYPES_OF_ORDER = "SELECT DISTINCT event_type FROM events WHERE order_id = %s"


# The last event of each service about an order says where that service stands.
STATE_EVENTS = {
    "order": ("OrderPlaced", "OrderCompleted", "OrderCancelled"),
    "payment": ("PaymentCompleted", "PaymentFailed", "PaymentRefunded"),
    "inventory": ("StockReserved", "StockReservationFailed", "StockReleased", "StockShipped"),
    "shipping": ("ShipmentCreated", "ShipmentFailed", "ShipmentCancelled"),
}


def per_service_state(events: Sequence[dict[str, Any]]) -> dict[str, str]:
    states = {}
    for service, types in STATE_EVENTS.items():
        mine = [e for e in events if e["event_type"] in types]
        if not mine:
            states[service] = "nothing yet"
            continue
        last = mine[-1]
        detail = {k: v for k, v in last["payload"].items() if k in ("reason", "tracking_number", "amount")}
        states[service] = last["event_type"] + "".join(f", {k}={v}" for k, v in detail.items())
    return states


def outcome(events: Sequence[dict[str, Any]]) -> str:
    for e in events:
        if e["event_type"] == "OrderCompleted":
            return "completed"
        if e["event_type"] == "OrderCancelled":
            return f"cancelled ({e['payload']['reason']})"
    return "in progress"
