"""Usage: `python -m shared.provision {topics|access|kafka|schemas|database|all}` (kafka: topics and
access)."""

from __future__ import annotations

import argparse
import logging
import sys

import psycopg
from confluent_kafka import KafkaException
from confluent_kafka.schema_registry.error import SchemaRegistryError

from shared import provision
from shared.access import (
    ADMIN,
)
from shared.provision import (
    COMPATIBILITY,
    ProvisioningError,
    ensure_access,
    ensure_event_schemas,
    ensure_roles_and_schemas,
    ensure_topics,
)
from shared.settings import PROCESSES, get_settings
from shared.topics import TOPICS

log = logging.getLogger("provision")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.provision", description=provision.__doc__)
    parser.add_argument("what", choices=["topics", "access", "kafka", "schemas", "database", "all"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpx2"):  # every request, of the registry client and of its owners
        logging.getLogger(noisy).setLevel(logging.WARNING)
    settings = get_settings()
    try:
        if args.what in ("topics", "kafka", "all"):
            changed = ensure_topics(settings.kafka_client(ADMIN))
            log.info("topics ready (%d): created: %s", len(TOPICS), ", ".join(changed) or "none")
        if args.what in ("access", "kafka", "all"):
            log.info("kafka access ready: %s", ensure_access(settings))
        if args.what in ("schemas", "all"):
            subjects = ensure_event_schemas(settings)
            log.info("schemas registered (%d subjects, %s)", len(subjects), COMPATIBILITY)
        if args.what in ("database", "all"):
            ensure_roles_and_schemas(settings)
            log.info("database roles and schemas ready for %s", ", ".join(PROCESSES))
    except (KafkaException, SchemaRegistryError, psycopg.Error, ValueError, ProvisioningError) as exc:
        log.error("provisioning %s failed: %s", args.what, exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
