"""A short chaos run (tests/chaos/run.py; `make chaos` is the long one): a few hundred orders while
each process is killed -9 once, and Kafka and PostgreSQL once each, each restarted; then nothing is
lost, no effect happened twice, every order ended, and the books balance."""

from __future__ import annotations

import pytest

from tests.chaos.run import Plan, report, run


@pytest.mark.chaos
@pytest.mark.timeout(900)
def test_a_short_chaos_run_loses_nothing_and_the_books_balance(services, settings):
    lines: list[str] = []
    outcome = run(
        Plan(orders=400, rate=40, kills_per_process=1, seed=7, end_timeout=300), settings, lines.append
    )
    report(outcome, lines.append)
    print("\n".join(lines))
    books = outcome.books
    assert len(outcome.kills) == 7, lines
    assert outcome.ended_after is not None, lines
    assert (books.lost, books.duplicated, books.not_ended) == (0, 0, 0), lines
    assert books.broken == [], lines
