"""`make bench`'s verdict: which step its closing `sustained:` line names, from given step results."""

import math

from tests.bench.sustained import Step, percentiles, verdict


def step(rate, ended_rate=None, p99=100.0, offered=None, p99_exact=True, cpu_per_order=150e-6, cpu=0.3):
    return Step(
        rate=rate,
        orders=int(rate * 60),
        offered=rate if offered is None else offered,
        generator_cpu=cpu,
        generator_cpu_per_order=cpu_per_order,
        ended=int(rate * 60),
        ended_rate=rate * 0.99 if ended_rate is None else ended_rate,
        p50=p99 / 3,
        p95=p99 / 2,
        p99=p99,
        p99_exact=p99_exact,
    )


def test_the_highest_step_before_the_first_that_fails_is_sustained():
    steps = [step(50, p99=80), step(100, p99=140), step(200, p99=420), step(400, ended_rate=300, p99=2500)]
    why, last = verdict(steps)
    assert last == "sustained: 200 orders/s (p99 420 ms)"
    assert why.startswith("stopped at 400 orders/s: ended 300.0 orders/s") and "p99 2500 ms" in why


def test_ended_at_exactly_95_percent_holds_and_p99_of_one_second_does_not():
    assert (
        verdict([step(100, ended_rate=95.0), step(200, p99=1000)])[-1]
        == "sustained: 100 orders/s (p99 100 ms)"
    )
    assert verdict([step(100, ended_rate=94.9)])[-1] == "sustained: 0 orders/s (p99 100 ms)"


def test_no_step_qualifies_names_the_first_steps_p99_and_why():
    why, last = verdict([step(50, ended_rate=28, p99=38_000, p99_exact=False)])
    assert last == "sustained: 0 orders/s (p99 38000 ms)"
    assert why == (
        "no step qualifies: at 50 orders/s ended 28.0 orders/s, under 95% of 50; "
        "p99 at least 38000 ms, not under 1 s"
    )


def test_a_rate_one_generator_process_cannot_offer_is_the_generators_limit_not_the_systems():
    why, last = verdict([step(400), step(800, offered=610, ended_rate=600, cpu_per_order=1.5e-3, cpu=0.98)])
    assert last == "sustained: 400 orders/s (p99 100 ms)"
    assert why == (
        "stopped at 800 orders/s: the load generator offered only 610 of 800 orders/s: at 1500 µs of CPU "
        "per order it needs 120% of a core, more than one process has; "
        "the generator's limit, not the system's"
    )


def test_a_generator_starved_of_cpu_is_reported_with_the_systems_figures():
    why, _ = verdict([step(400, offered=300, ended_rate=250, p99=4000, cpu_per_order=200e-6, cpu=0.06)])
    assert why.startswith(
        "no step qualifies: at 400 orders/s the load generator offered only 300 of 400 orders/s: "
        "it needs 8% of a core for that and got 6%"
    )
    assert "ended 250.0 orders/s, under 95% of 400" in why and "p99 4000 ms" in why


def test_every_step_holding_says_so():
    why, last = verdict([step(50), step(100)])
    assert last == "sustained: 100 orders/s (p99 100 ms)" and "every step qualifies" in why


def test_orders_without_an_end_are_a_lower_bound_in_the_percentiles():
    ended = [float(n) for n in range(1, 98)]  # 97 ended orders, 1..97 ms
    (p50, exact50), (p99, exact99) = percentiles(ended, unended=3, unended_at_least=60_000, ps=(50, 99))
    assert (p50, exact50) == (50.0, True)
    assert (p99, exact99) == (60_000, False)
    assert percentiles(ended, unended=0, unended_at_least=math.inf, ps=(99,)) == [(96.0, True)]


def test_a_step_whose_orders_ended_otherwise_than_designed_does_not_hold():
    wrong = "6000 orders ended otherwise than designed (...): is the stack seeded (make seed)?"
    off = Step(**{**step(100).__dict__, "off_design": wrong})
    why, last = verdict([off])
    assert last == "sustained: 0 orders/s (p99 100 ms)"
    assert why.endswith("is the stack seeded (make seed)?")


def test_off_design_counts_each_ending_against_its_orders_shape():
    from uuid import uuid4

    from services.shopctl.load import DESIGNED, FAILURES, SUCCESS, describe_off_design, off_design

    def ended(event_type, reason=None):
        return {"event_type": event_type, "payload": {"reason": reason} if reason else {}}

    shapes = [SUCCESS, SUCCESS, FAILURES["payment"], FAILURES["shipping"], SUCCESS]
    ids = [uuid4() for _ in shapes]
    outcomes = {
        ids[0]: ended("OrderCompleted"),
        ids[1]: ended("OrderCancelled", "PaymentFailed: insufficient funds"),  # designed to complete
        ids[2]: ended("OrderCancelled", "PaymentFailed: insufficient funds"),
        ids[3]: ended("OrderCancelled", "ShipmentFailed: country not served"),
        # ids[4] has no end yet: not judged here (the step counts it as not ended)
    }
    wrong = off_design(shapes, ids, outcomes)
    assert wrong == {("completed", "cancelled: PaymentFailed"): 1}
    assert DESIGNED[FAILURES["stock"]] == "cancelled: StockReservationFailed"
    assert describe_off_design(wrong) == (
        "1 orders ended otherwise than designed (1 designed 'completed' ended 'cancelled: PaymentFailed'): "
        "is the stack seeded (make seed)?"
    )


def test_table_sizes_read_as_rows_thousands_or_millions():
    from tests.bench.sustained import _rows

    assert [_rows(n) for n in (0, 999, 1_000, 839_412, 1_500_000)] == ["0", "999", "1k", "839k", "1.5M"]
