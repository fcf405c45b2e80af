import time
from datetime import UTC, datetime

from shared.messaging.ids import new_event_id


def test_event_ids_are_version_7_with_the_rfc_variant() -> None:
    event_id = new_event_id()
    assert event_id.version == 7
    assert event_id.variant == "specified in RFC 4122"


def test_event_ids_carry_the_current_unix_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    event_id = new_event_id()
    after = time.time_ns() // 1_000_000
    assert before <= event_id.int >> 80 <= after
    assert datetime.fromtimestamp((event_id.int >> 80) / 1000, UTC).year >= 2025


def test_event_ids_sort_by_the_millisecond_they_were_made_in_and_never_repeat() -> None:
    first = new_event_id()
    time.sleep(0.002)
    later = [new_event_id() for _ in range(10_000)]
    assert all(first < event_id for event_id in later)
    assert len(set(later)) == len(later)
