"""Two instances of one group split the partitions; one joining mid-run changes nothing in effect."""

from __future__ import annotations

import threading
import time

from tests.runtime.app import effects


def test_a_second_instance_joining_mid_run_takes_partitions_and_nothing_is_handled_twice(
    consumer_for, database, storefront, unique
):
    group = f"g-{unique}"
    total = 150

    def instance():
        return consumer_for(
            group,
            batch_size=10,
        )

    first, second = instance(), instance()
    stop = threading.Event()
    threads = [threading.Thread(target=first.run, args=(stop,))]
    threads[0].start()
    try:
        for i in range(total):
            storefront.place(customer=f"C-{i}")
            if i == total // 3:
                # The second instance joins while the first is busy: a rebalance in the middle of the run.
                threads.append(threading.Thread(target=second.run, args=(stop,)))
                threads[1].start()

        def shared_out() -> bool:
            # Copies: the consumer threads' rebalance callbacks change these sets (a set copy is atomic).
            mine, theirs = set(first.assigned), set(second.assigned)
            return bool(mine) and bool(theirs) and mine.isdisjoint(theirs) and len(mine | theirs) == 3

        deadline = time.monotonic() + 90
        while database.count(effects) < total or not shared_out():
            assert time.monotonic() < deadline, f"{database.count(effects)} of {total} handled"
            time.sleep(0.2)
        time.sleep(1)
    finally:
        stop.set()
        for t in threads:
            t.join(30)

    assert database.count(effects) == total
    with database.engine.connect() as conn:
        distinct = conn.execute(effects.select().with_only_columns(effects.c.event_id).distinct()).all()
    assert len(distinct) == total
