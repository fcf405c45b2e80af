"""Every log line about a message carries its ids, as one JSON object per line."""

from __future__ import annotations

import json
import logging

from shared.messaging.logs import JsonFormatter, message_context


def test_lines_inside_a_message_context_carry_its_ids_and_lines_outside_do_not():
    formatter = JsonFormatter("payment")
    logger = logging.getLogger("test.logs")

    def line(msg: str) -> dict:
        record = logger.makeRecord(logger.name, logging.INFO, __file__, 1, msg, (), None)
        return json.loads(formatter.format(record))

    with message_context(event_id="e-1", correlation_id="c-1", causation_id=None, trace_id="t-1"):
        inside = line("charged")
    outside = line("idle")

    assert inside["message"] == "charged" and inside["service"] == "payment" and inside["level"] == "info"
    assert (inside["event_id"], inside["correlation_id"], inside["trace_id"]) == ("e-1", "c-1", "t-1")
    assert "causation_id" not in inside, "absent ids are left out, not null"
    assert "event_id" not in outside and "correlation_id" not in outside


def test_nested_contexts_restore_the_outer_one():
    with message_context(event_id="outer"):
        with message_context(event_id="inner"):
            pass
        formatter = JsonFormatter("x")
        record = logging.getLogger("t").makeRecord("t", logging.INFO, __file__, 1, "m", (), None)
        assert json.loads(formatter.format(record))["event_id"] == "outer"
