"""The settings read the checkout's .env files wherever a command runs, and both ways of reaching a
service's database agree."""

from __future__ import annotations

import subprocess
import sys

from psycopg.conninfo import conninfo_to_dict

from shared.settings import REPO_ROOT, SERVICES, Settings, libpq_dsn


def test_the_two_connection_strings_of_a_role_name_the_same_database():
    for database_host in (None, "postgres:6543"):
        settings = Settings(database_host=database_host)
        for service in SERVICES:
            via_sqlalchemy = conninfo_to_dict(libpq_dsn(settings.database_url(service)))
            assert conninfo_to_dict(settings.libpq_dsn_of(service)) == via_sqlalchemy


def test_settings_load_from_any_working_directory(tmp_path):
    probe = "from shared.settings import Settings; print(Settings().order_database_url)"
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.startswith("postgresql+psycopg://orders:")
