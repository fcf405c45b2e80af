"""Rows travel to PostgreSQL as one JSON parameter per statement (repository.py): whatever text a fact
carries comes back as it went in, and text PostgreSQL cannot hold fails as the message's error, not as
an outage."""

from __future__ import annotations

from decimal import Decimal
from uuid import uuid4

import psycopg
import pytest
from sqlalchemy import create_engine

from services.order.domain import Order, OrderStatus
from services.order.storage import Orders
from shared.contracts import OrderPlaced, PaymentFailed
from shared.messaging.outages import is_outage
from shared.migrations import migrate

AWKWARD = [
    "quotes \" and ' and \\ backslashes",
    "commas, {braces}, [brackets] and NULL",
    "line\nbreaks\tand tabs",
    "unicode: Zürich, 東京, 🚚",
    "",
]


@pytest.fixture
def engine(settings):
    url = settings.database_url("order")
    migrate("order", url)
    engine = create_engine(url)
    yield engine
    engine.dispose()


def test_awkward_text_round_trips_through_batch_writes(engine):
    orders = [
        Order(
            order_id=uuid4(),
            status=OrderStatus.CANCELLED,
            facts=frozenset({OrderPlaced, PaymentFailed}),
            customer_id="C-1",
            total=Decimal("1234567890.12"),
            currency="EUR",
            failure=text,
            tracking_number=None,
        )
        for text in AWKWARD
    ]
    with engine.begin() as conn:
        repo = Orders(conn)
        for order in orders:
            repo.add(order)
        repo.flush()
    with engine.begin() as conn:
        repo = Orders(conn)
        repo.want(o.order_id for o in orders)
        repo.load()
        assert [repo.get(o.order_id) for o in orders] == orders


def test_text_postgresql_cannot_hold_is_the_messages_error(engine):
    order = Order(order_id=uuid4(), failure="a NUL \x00 inside")
    with pytest.raises(psycopg.Error) as raised, engine.begin() as conn:
        repo = Orders(conn)
        repo.add(order)
        repo.flush()
    assert not is_outage(raised.value)
