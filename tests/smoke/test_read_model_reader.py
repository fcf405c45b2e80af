"""shopctl reads the read model with a SELECT-only role: it reads the timeline's tables and can
change nothing, there or anywhere."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import errors

from shared.migrations import migrate


@pytest.fixture(scope="module")
def reader(settings) -> Iterator[psycopg.Connection]:
    migrate("timeline", settings.database_url("timeline"))
    with psycopg.connect(settings.reader_dsn(), autocommit=True) as conn:
        yield conn


def test_the_reader_reads_the_timeline(reader):
    assert reader.execute("SELECT count(*) >= 0 FROM events").fetchone() == (True,)
    assert reader.execute("SELECT current_schema()").fetchone() == ("timeline",)


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM events",
        "INSERT INTO outbox (event_id, event_type, topic, message_key, payload, headers) "
        "VALUES (gen_random_uuid(), 'X', 'timeline.events', 'k', '\\x00', '{}')",
        "UPDATE relay_lock SET id = true",
        "CREATE TABLE timeline.reader_was_here (id int)",
        "SET default_transaction_read_only = off; DELETE FROM events",
    ],
)
def test_the_reader_is_refused_every_write(reader, statement):
    with pytest.raises((errors.InsufficientPrivilege, errors.ReadOnlySqlTransaction)):
        reader.execute(statement)


def test_the_reader_reads_no_other_schema(reader):
    with pytest.raises(errors.InsufficientPrivilege):
        reader.execute("SELECT * FROM payment.outbox LIMIT 1")
