"""The books after a chaos run, read from each service's own tables (never from the events alone):
every order ended, nothing lost, no effect twice, money and stock conserved, one active shipment per
completed order and none for a cancelled one."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from shared.contracts import OrderPlaced
from shared.settings import PROCESSES, Settings, libpq_dsn

# The effects that must happen at most once per order, whatever was redelivered or replayed.
ONCE = (
    "PaymentCompleted",
    "PaymentFailed",
    "PaymentRefunded",
    "StockReserved",
    "StockReservationFailed",
    "StockReleased",
    "StockShipped",
    "ShipmentCreated",
    "ShipmentFailed",
    "ShipmentCancelled",
    "OrderCompleted",
    "OrderCancelled",
)


class Tables:
    """Each process's own tables, through its own role."""

    def __init__(self, settings: Settings) -> None:
        self._dsn = {p: libpq_dsn(settings.database_url(p)) for p in PROCESSES}

    def rows(self, process: str, query: str, *params: object) -> list[dict[str, Any]]:
        with psycopg.connect(self._dsn[process], row_factory=dict_row) as conn:
            return conn.execute(query, params).fetchall()


@dataclass(frozen=True)
class Holdings:
    """What the run's customers and SKUs hold, before or after."""

    balances: dict[str, Decimal]
    stock: dict[str, tuple[int, int, int]]  # sku: available, reserved, shipped

    @classmethod
    def read(cls, tables: Tables, customers: list[str], skus: list[str]) -> Holdings:
        balances = tables.rows(
            "payment", "SELECT customer_id, balance FROM customers WHERE customer_id = ANY(%s)", customers
        )
        stock = tables.rows(
            "inventory", "SELECT sku, available, reserved, shipped FROM stock WHERE sku = ANY(%s)", skus
        )
        return cls(
            {r["customer_id"]: r["balance"] for r in balances},
            {r["sku"]: (r["available"], r["reserved"], r["shipped"]) for r in stock},
        )


@dataclass(frozen=True)
class Deadlines:
    """Orders the clock cancelled: seconds from each one's deadline to its OrderCancelled, and to the
    last compensation that cancellation caused (refund, release, shipment called off)."""

    cancelled: list[float]
    compensated: list[float]

    @classmethod
    def read(cls, tables: Tables, ids: list[UUID], timeout: float) -> Deadlines:
        created = {
            r["order_id"]: r["created_at"]
            for r in tables.rows(
                "order",
                "SELECT order_id, created_at FROM orders WHERE order_id = ANY(%s) AND reason LIKE %s",
                ids,
                "%timed out waiting for%",
            )
        }
        rows = tables.rows(
            "timeline",
            "SELECT c.order_id, c.occurred_at AS cancelled_at, max(k.occurred_at) AS compensated_at "
            "FROM events c LEFT JOIN events k ON k.causation_id = c.event_id "
            "WHERE c.order_id = ANY(%s) AND c.event_type = 'OrderCancelled' GROUP BY 1, 2",
            list(created),
        )
        due = {i: at.timestamp() + timeout for i, at in created.items()}
        return cls(
            sorted(r["cancelled_at"].timestamp() - due[r["order_id"]] for r in rows),
            sorted(r["compensated_at"].timestamp() - due[r["order_id"]] for r in rows if r["compensated_at"]),
        )


@dataclass
class Books:
    orders: int
    statuses: Counter[str]
    lost: int  # published, and the order service never heard of it
    not_ended: int
    duplicated: int  # effects (events of ONCE) that happened more than once for an order
    broken: list[str] = field(default_factory=list)  # each invariant that does not hold, said plainly

    @property
    def balanced(self) -> bool:
        return not self.broken and not self.lost and not self.not_ended and not self.duplicated


def status_counts(tables: Tables, ids: list[UUID]) -> Counter[str]:
    rows = tables.rows(
        "order", "SELECT status, count(*) AS n FROM orders WHERE order_id = ANY(%s) GROUP BY 1", ids
    )
    return Counter({r["status"]: r["n"] for r in rows})


def audit(tables: Tables, orders: list[OrderPlaced], before: Holdings, after: Holdings) -> Books:
    ids = [o.order_id for o in orders]
    by_id = {o.order_id: o for o in orders}
    status = {
        r["order_id"]: r["status"]
        for r in tables.rows("order", "SELECT order_id, status FROM orders WHERE order_id = ANY(%s)", ids)
    }
    completed = {i for i, s in status.items() if s == "completed"}
    cancelled = {i for i, s in status.items() if s == "cancelled"}
    broken: list[str] = []

    # Money: per payment, charged minus refunded is the order's total if it completed, else nothing;
    # what the customers lost is the total of the completed orders.
    payments = tables.rows(
        "payment", "SELECT order_id, status, amount FROM payments WHERE order_id = ANY(%s)", ids
    )
    kept = {p["order_id"]: p["amount"] for p in payments if p["status"] == "charged"}
    if set(kept) != completed:
        broken.append(
            f"money: {len(set(kept) - completed)} charges kept for orders not completed, "
            f"{len(completed - set(kept))} completed orders without a charge"
        )
    wrong = [i for i, amount in kept.items() if amount != by_id[i].total]
    if wrong:
        broken.append(f"money: {len(wrong)} charges differ from their order's total")
    spent = sum(before.balances[c] - after.balances[c] for c in before.balances)
    due = sum((by_id[i].total for i in completed), Decimal("0.00"))
    if spent != due:
        broken.append(f"money: customers lost {spent}, the completed orders total {due}")

    # Stock: conserved per SKU, nothing left reserved, shipped grew by the completed orders' lines.
    shipped_due: Counter[str] = Counter()
    for i in completed:
        for line in by_id[i].items:
            shipped_due[line.sku] += line.quantity
    for sku, (available, reserved, shipped) in after.stock.items():
        a0, r0, s0 = before.stock[sku]
        if available + reserved + shipped != a0 + r0 + s0:
            broken.append(f"stock of {sku}: {available + reserved + shipped} units, was {a0 + r0 + s0}")
        if reserved != r0:
            broken.append(f"stock of {sku}: {reserved - r0} units still reserved for ended orders")
        if shipped - s0 != shipped_due[sku]:
            broken.append(
                f"stock of {sku}: {shipped - s0} shipped, the completed orders hold {shipped_due[sku]}"
            )

    # Shipping: one active shipment per completed order, none for a cancelled one.
    active = Counter(
        r["order_id"]
        for r in tables.rows(
            "shipping",
            "SELECT c.order_id FROM consignments c JOIN shipments s USING (order_id) "
            "WHERE c.order_id = ANY(%s) AND c.state = 'created'",
            ids,
        )
    )
    if set(active) != completed or any(n != 1 for n in active.values()):
        broken.append(
            f"shipping: {len(completed - set(active))} completed orders without an active shipment, "
            f"{len(set(active) & cancelled)} cancelled ones with one"
        )

    # Effects at most once: distinct events of a kind per order, as the read model recorded them.
    twice = tables.rows(
        "timeline",
        "SELECT order_id, event_type, count(*) AS n FROM events "
        "WHERE order_id = ANY(%s) AND event_type = ANY(%s) GROUP BY 1, 2 HAVING count(*) > 1",
        ids,
        list(ONCE),
    )
    return Books(
        orders=len(orders),
        statuses=Counter(status.values()),
        lost=len(set(ids) - set(status)),
        not_ended=sum(1 for s in status.values() if s == "open"),
        duplicated=sum(r["n"] - 1 for r in twice),
        broken=broken,
    )
