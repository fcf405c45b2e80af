"""Each service's role owns its schema and has no rights on the others'."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors, sql

from shared.settings import PROCESSES as SERVICES
from shared.settings import libpq_dsn


def connect(settings, service):
    return psycopg.connect(libpq_dsn(settings.database_url(service)), autocommit=True)


@pytest.mark.parametrize("service", SERVICES)
def test_a_role_works_in_its_own_schema(settings, service, unique):
    role = settings.database_url(service).username
    with connect(settings, service) as conn:
        # search_path points at the role's own schema: unqualified names land there.
        table = f"smoke_{unique}"
        conn.execute(sql.SQL("CREATE TABLE {} (id int PRIMARY KEY)").format(sql.Identifier(table)))
        try:
            conn.execute(sql.SQL("INSERT INTO {} VALUES (1)").format(sql.Identifier(table)))
            where = conn.execute(
                "SELECT table_schema FROM information_schema.tables WHERE table_name = %s", (table,)
            ).fetchone()
            assert where == (role,)
        finally:
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table)))


@pytest.mark.parametrize("service", SERVICES)
def test_a_role_is_refused_on_every_other_schema(settings, service, unique):
    owner = settings.database_url(service).username
    table = sql.Identifier(owner, f"smoke_{unique}")
    with connect(settings, service) as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (id int)").format(table))
    try:
        for other in SERVICES:
            if other == service:
                continue
            with connect(settings, other) as conn:
                with pytest.raises(errors.InsufficientPrivilege):
                    conn.execute(sql.SQL("SELECT * FROM {}").format(table))
                with pytest.raises(errors.InsufficientPrivilege):
                    conn.execute(
                        sql.SQL("CREATE TABLE {} (id int)").format(sql.Identifier(owner, "intruder"))
                    )
    finally:
        with connect(settings, service) as conn:
            conn.execute(sql.SQL("DROP TABLE {}").format(table))


def test_nobody_may_create_in_public(settings):
    with connect(settings, SERVICES[0]) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute("CREATE TABLE public.smoke_public (id int)")


def test_a_wrong_password_is_refused(settings):
    url = settings.database_url(SERVICES[0]).set(password="not-the-password")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(libpq_dsn(url), connect_timeout=5)
