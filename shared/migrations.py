"""Schema migrations with Alembic, one history per service, each in the service's own schema.

Each service keeps its revisions in services/<service>/migrations/ and its version table in its own
schema. Every start-up upgrades to head under an advisory lock, so instances starting together do not
race. Usage: `python -m shared.migrations <service>`, or `migrate(service, url)` from code.
"""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import Connection, create_engine, func, select, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

SERVICES_DIR = Path(__file__).resolve().parents[1] / "services"


def migrate(service: str, url: URL | str) -> None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(select(func.pg_advisory_xact_lock(zlib.crc32(f"migrations:{service}".encode()))))
            config = Config()
            config.set_main_option("script_location", str(SERVICES_DIR / service / "migrations"))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    finally:
        engine.dispose()


def run_migrations_online() -> None:
    """The body of every service's migrations/env.py: run in the connection `migrate` opened."""
    conn: Connection = context.config.attributes["connection"]
    schema = conn.execute(text("SELECT current_schema()")).scalar_one()
    context.configure(connection=conn, version_table_schema=schema, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()


if __name__ == "__main__":
    from shared.settings import PROCESSES, get_settings

    if len(sys.argv) != 2 or sys.argv[1] not in PROCESSES:
        sys.exit(f"usage: python -m shared.migrations {{{','.join(PROCESSES)}}}")
    migrate(sys.argv[1], get_settings().database_url(sys.argv[1]))  # type: ignore[arg-type]
