"""Which database errors the consumer waits out in place, and which count against the message."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors
from sqlalchemy.exc import DBAPIError

from shared.messaging.outages import is_outage


def server_error(sqlstate: str) -> DBAPIError:
    return DBAPIError("INSERT ...", {}, errors.lookup(sqlstate)("from the server"))


@pytest.mark.parametrize(
    "sqlstate",
    [
        "08006",  # connection failure
        "28000",  # the role cannot log in
        "40001",  # serialization failure
        "40P01",  # deadlock
        "53100",  # disk full
        "57P01",  # admin shutdown
        "25006",  # read-only: a standby after a failover
        "42501",  # a grant revoked
        "42P01",  # a table a migration has not created yet
        "55P03",  # lock not available
    ],
)
def test_the_database_in_trouble_is_an_outage(sqlstate):
    assert is_outage(server_error(sqlstate))


@pytest.mark.parametrize(
    "sqlstate",
    [
        "23505",  # unique violation
        "23514",  # check violation
        "22003",  # numeric value out of range
        "57014",  # query canceled: maybe this message's query ran too long
        "42601",  # syntax error: a handler's bug, seen only with some messages
    ],
)
def test_what_a_message_may_cause_is_not_an_outage(sqlstate):
    assert not is_outage(server_error(sqlstate))


def test_no_answer_from_the_server_is_an_outage_but_a_value_psycopg_refused_is_not():
    assert is_outage(DBAPIError("SELECT 1", {}, psycopg.OperationalError("connection refused")))
    assert not is_outage(DBAPIError("INSERT ...", {}, psycopg.DataError("NUL (0x00) bytes in a string")))


def test_a_connection_sqlalchemy_invalidated_is_an_outage():
    assert is_outage(DBAPIError("SELECT 1", {}, Exception("closed"), connection_invalidated=True))
