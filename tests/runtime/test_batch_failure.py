"""Failures no single message can be blamed for at once, and records whose envelope lies about them."""

from __future__ import annotations

from uuid import uuid4

import pytest
from sqlalchemy import text

from shared.contracts import Envelope, Event, OrderPlaced
from shared.messaging import dead_letters as dlt
from shared.messaging.errors import InvalidRecord
from shared.messaging.headers import as_dict
from shared.messaging.unit_of_work import UnitOfWork
from tests.runtime import app
from tests.runtime.app import effects
from tests.runtime.support import drain, order_placed, read_all


def claim_customer(event: OrderPlaced, uow: UnitOfWork, envelope: Envelope) -> list[Event]:
    """Each customer may be claimed once; the database says so only at commit (a deferred constraint)."""
    uow.connection.execute(text("INSERT INTO claims (customer_id) VALUES (:c)"), {"c": event.customer_id})
    return app.charge(event, uow, envelope)


def test_a_commit_time_failure_is_narrowed_to_its_message_and_the_rest_of_the_batch_is_handled(
    consumer_for, database, topics, storefront, unique, kafka_config
):
    with database.engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE claims (customer_id text, "
                "CONSTRAINT claims_once UNIQUE (customer_id) DEFERRABLE INITIALLY DEFERRED)"
            )
        )
    # The two claims of one customer share a key (an order id), so they keep their order.
    twice = uuid4()
    _, first = storefront.place(customer="C-twice", order_id=twice)
    others = [storefront.place(customer=f"C-{i}")[1] for i in range(3)]
    _, second = storefront.place(customer="C-twice", order_id=twice)

    consumer = consumer_for(
        f"g-{unique}",
        handlers={OrderPlaced: claim_customer},
        batch_size=50,
        max_attempts=2,
    )
    # All five arrive in one batch; its commit fails, and no handler raised: which message was it?
    drain(consumer, until=lambda: database.count(effects) == 4)

    with database.engine.connect() as conn:
        handled = {r.event_id for r in conn.execute(effects.select())}
    assert handled == {m.event_id for m in (first, *others)}
    (letter,) = read_all(kafka_config, topics.dead_letters, 1)
    h = as_dict(letter.headers())
    assert h["event_id"] == str(second.event_id)
    assert h[dlt.ERROR_KIND] == "retries-exhausted"
    # The commit is the driver's (driver.pipelined): its error is psycopg's own, and names the constraint.
    assert h[dlt.ERROR_CLASS] == "psycopg.errors.UniqueViolation"
    assert "claims_once" in h[dlt.ERROR_MESSAGE]


def test_an_envelope_naming_another_event_type_than_its_record_is_an_invalid_record(codec, storefront):
    message = storefront.factory.message(order_placed(), app.uuid5(app.NAMESPACE_URL, "x"), None)
    envelope, event = codec.decode(message.payload)
    lying = envelope.model_copy(update={"event_type": "PaymentCompleted"})
    payload = codec.encode(lying, event)
    with pytest.raises(InvalidRecord, match="envelope says PaymentCompleted, the record is OrderPlaced"):
        codec.decode(payload)
