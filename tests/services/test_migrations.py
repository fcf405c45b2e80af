"""Each service's migrations build exactly the tables its code uses, in its own schema."""

from __future__ import annotations

import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, text

from shared.messaging.tables import metadata as runtime_metadata
from shared.migrations import LOCK_TABLE, migrate
from shared.settings import SERVICES


@pytest.mark.parametrize("service", SERVICES)
def test_migrated_schema_matches_the_code(settings, service):
    url = settings.database_url(service)
    migrate(service, url)
    migrate(service, url)  # idempotent: a second start-up changes nothing

    expected = MetaData()
    for source in (importlib.import_module(f"services.{service}.storage").metadata, runtime_metadata):
        for table in source.tables.values():
            table.to_metadata(expected)

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "include_schemas": False})
            diff = [d for d in compare_metadata(context, expected) if not _is_migrations_own(d)]
            schema = conn.execute(text("SELECT current_schema()")).scalar_one()
            version_schema = conn.execute(
                text(
                    "SELECT table_schema FROM information_schema.tables WHERE table_name = 'alembic_version' "
                    "AND table_schema = current_schema()"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    assert diff == []
    assert schema == url.username and version_schema == schema, "one version table per schema"


def _is_migrations_own(diff) -> bool:
    """Alembic's version table and the lock the migrations run under are not the code's tables."""
    return diff[0] == "remove_table" and diff[1].name in ("alembic_version", LOCK_TABLE)
