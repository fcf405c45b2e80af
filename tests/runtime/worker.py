"""A runtime process a test can kill for real: `python -m tests.runtime.worker consume|relay ...`.

--crash makes it die with os._exit at the named point, as a SIGKILL or a power cut would: no cleanup,
no further commits.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading

from shared.messaging.consumer import Hooks
from shared.settings import get_settings
from tests.runtime.app import TestTopics, build_consumer, build_relay, engine_for, make_codec

CRASHED = 86


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["consume", "relay"])
    parser.add_argument("--db-url", required=True)
    parser.add_argument("--schema", required=True)
    parser.add_argument("--topics", nargs=3, required=True, metavar=("IN", "OUT", "DLT"))
    parser.add_argument("--group", default="")
    parser.add_argument("--crash", choices=["after-db-commit", "after-publish"])
    args = parser.parse_args()

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    engine = engine_for(args.db_url)
    # The same .env files as the test that started it: its credentials stay off the command line.
    kafka = get_settings().kafka_client("admin")

    def crash(*_: object) -> None:
        os._exit(CRASHED)

    if args.role == "consume":
        hooks = Hooks(after_db_commit=crash if args.crash == "after-db-commit" else None)
        consumer = build_consumer(
            kafka=kafka,
            codec=make_codec(get_settings()),
            engine=engine,
            topics=TestTopics(*args.topics),
            group=args.group,
            hooks=hooks,
        )
        print("ready", flush=True)
        consumer.run(stop)
    else:
        relay = build_relay(kafka=kafka, engine=engine, schema=args.schema)
        if args.crash == "after-publish":
            relay.after_publish = crash
        print("ready", flush=True)
        relay.run(stop)


if __name__ == "__main__":
    main()
