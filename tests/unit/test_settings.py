"""The settings read the checkout's .env files wherever a command runs, and both ways of reaching a
service's database agree."""

from __future__ import annotations

import subprocess
import sys

import pytest
from psycopg.conninfo import conninfo_to_dict
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from shared.settings import REPO_ROOT, SERVICES, Settings, libpq_dsn, with_connection_options


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


def test_every_database_url_carries_the_connection_options():
    settings = Settings()
    options = settings.connection_options()
    assert {"connect_timeout", "keepalives", "keepalives_idle", "tcp_user_timeout"} <= options.keys()
    urls = [settings.database_url(s) for s in SERVICES] + [settings.admin_database_url()]
    for url in urls:
        assert conninfo_to_dict(libpq_dsn(url)).items() >= options.items()
    assert conninfo_to_dict(settings.libpq_dsn_of("timeline")).items() >= options.items()
    # One a URL sets itself is kept.
    own = with_connection_options(make_url("postgresql+psycopg://u:p@h/db?connect_timeout=1"), settings)
    assert own.query["connect_timeout"] == "1" and own.query["keepalives"] == "1"


def test_the_role_timeouts_keep_lock_waits_outages_and_outlast_the_relay():
    from shared.messaging.relay import RelaySettings

    settings = Settings()
    assert settings.database_lock_timeout < settings.database_statement_timeout
    assert settings.database_idle_in_transaction_timeout > RelaySettings().delivery_timeout
    assert settings.role_timeouts() == {
        "statement_timeout": "30000ms",
        "lock_timeout": "5000ms",
        "idle_in_transaction_session_timeout": "60000ms",
    }
    with pytest.raises(ValidationError, match="below the statement timeout"):
        Settings(database_lock_timeout=30, database_statement_timeout=30)


def test_provisioning_refuses_an_idle_timeout_the_relay_would_outlast():
    from shared.provision import ProvisioningError, ensure_roles_and_schemas

    with pytest.raises(ProvisioningError, match="relay's delivery timeout"):
        ensure_roles_and_schemas(Settings(database_idle_in_transaction_timeout=30))


def test_engines_add_the_connection_options_to_any_url():
    from shared.messaging.outages import service_engine

    engine = service_engine("postgresql+psycopg://u:p@h/db", pool_size=1)
    assert engine.url.query.items() >= Settings().connection_options().items()
    assert conninfo_to_dict(libpq_dsn(engine.url)).items() >= Settings().connection_options().items()


@pytest.mark.parametrize("password", ["two words", 'a"quote', "back\\slash", "com,ma", "brack]et", "dol$lar"])
def test_a_kafka_or_registry_password_that_would_read_as_syntax_is_refused_without_echoing_it(password):
    for field in ("kafka_order_password", "schema_registry_reader_password"):
        with pytest.raises(ValidationError) as refused:
            Settings(**{field: password})
        assert field.upper() in str(refused.value)
        assert password not in str(refused.value), "the error must not print the password"
        assert "kafka-admin-dev" not in str(refused.value), "nor any other"


def test_secrets_are_left_out_of_the_settings_repr():
    shown = repr(Settings())
    assert "kafka-admin-dev" not in shown and "orders-dev" not in shown


def test_shopctl_finds_each_process_on_loopback_or_in_its_container():
    assert Settings().health_url("payment", "/health") == "http://127.0.0.1:9103/health"
    in_compose = Settings(health_probe_host="{process}")
    assert in_compose.health_url("timeline", "/metrics") == "http://timeline:9105/metrics"
