"""Schema migrations with Alembic, one history per service, each in the service's own schema.

Each service keeps its revisions in services/<service>/migrations/ and its version table in its own
schema. Every start-up upgrades to head holding a lock on the schema's migration_lock table, so
instances starting together do not race (a table of the service's own, which no other role can lock:
an advisory lock, open to every role, would let another one hold a service's start-up).
Usage: `python -m shared.migrations <service>`, or `migrate(service, url)` from code.
"""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, func, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError, ProgrammingError
from sqlalchemy.pool import NullPool

from shared.settings import get_settings, with_connection_options

SERVICES_DIR = Path(__file__).resolve().parents[1] / "services"


def migrate(service: str, url: URL | str, timeout: float | None = None) -> None:
    """Upgrade to head. `timeout` (seconds; default DATABASE_MIGRATION_TIMEOUT) bounds each statement
    and lock wait in place of the role's service timeouts: waiting for another instance's migration
    (its lock) or rewriting a table legitimately takes longer than a message may."""
    settings = get_settings()
    engine = create_engine(with_connection_options(make_url(url), settings), poolclass=NullPool)
    bound = f"{round((timeout or settings.database_migration_timeout) * 1000)}ms"
    try:
        _ensure_lock_table(engine)
        with engine.begin() as conn:
            # SET LOCAL: for this transaction only; set_config binds the value as a parameter.
            conn.execute(select(func.set_config("statement_timeout", bound, True)))
            conn.execute(select(func.set_config("lock_timeout", bound, True)))
            conn.execute(text(f"LOCK TABLE {LOCK_TABLE} IN EXCLUSIVE MODE"))
            config = Config()
            config.set_main_option("script_location", str(SERVICES_DIR / service / "migrations"))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    finally:
        engine.dispose()


LOCK_TABLE = "migration_lock"


def _ensure_lock_table(engine: Engine) -> None:
    """Created outside the migrations (they run under its lock). Instances racing to create it: one
    wins, the others find it there, as a duplicate key in the catalogue or as an existing table."""
    try:
        with engine.begin() as conn:
            conn.execute(text(f"CREATE TABLE IF NOT EXISTS {LOCK_TABLE} ()"))
    except (IntegrityError, ProgrammingError) as exc:
        if getattr(exc.orig, "sqlstate", None) not in ("23505", "42P07"):
            raise


def run_migrations_online() -> None:
    """The body of every service's migrations/env.py: run in the connection `migrate` opened."""
    conn: Connection = context.config.attributes["connection"]
    schema = conn.execute(text("SELECT current_schema()")).scalar_one()
    context.configure(connection=conn, version_table_schema=schema, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()


if __name__ == "__main__":
    from shared.settings import PROCESSES

    if len(sys.argv) != 2 or sys.argv[1] not in PROCESSES:
        sys.exit(f"usage: python -m shared.migrations {{{','.join(PROCESSES)}}}")
    migrate(sys.argv[1], get_settings().database_url(sys.argv[1]))  # type: ignore[arg-type]
