"""`sopflow up --postgres`: the same stack as `make up`, with sopflow's tables and the Prefect server's on PostgreSQL."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from core.settings import get_settings, reset_settings
from sopflow.pg_local import LocalPostgres, ensure_database, postgres_available, with_database

log = logging.getLogger("sopflow.up")
LOCAL_PORT = 54329  # the local server's port: beside, not on, a system PostgreSQL's 5432
SOPFLOW_DB = "sopflow"
PREFECT_DB = "prefect"
# Prefect's server reads its database from here (PREFECT_API_DATABASE_CONNECTION_URL is its alias).
PREFECT_DB_ENV = "PREFECT_SERVER_DATABASE_CONNECTION_URL"


@dataclass(frozen=True)
class PostgresProfile:
    """The two databases of the profile: sopflow's (psycopg2) and the Prefect server's (asyncpg)."""

    sopflow_url: str
    prefect_url: str

    def environment(self) -> dict[str, str]:
        return {"SOPFLOW_DATABASE_URL": self.sopflow_url, PREFECT_DB_ENV: self.prefect_url}


def driver_url(url: str, driver: str) -> str:
    """`url` (postgres://, postgresql://, postgresql+<any driver>://) with SQLAlchemy's `driver`."""
    try:
        parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    except ArgumentError:
        raise ValueError(f"--postgres-url {url!r} is not a database URL") from None
    if parsed.get_backend_name() != "postgresql" or not parsed.database:
        raise ValueError(
            f"--postgres-url {url!r}: give a PostgreSQL URL naming sopflow's database, "
            "e.g. postgresql://sopflow:PASSWORD@db-host:5432/sopflow"
        )
    return parsed.set(drivername=f"postgresql+{driver}").render_as_string(hide_password=False)


def profile_for(url: str, prefect_url: str | None = None) -> PostgresProfile:
    """sopflow's database is the one `url` names; Prefect's is `prefect_url` when given, else
    `<name>_prefect` on the same server."""
    sopflow_url = driver_url(url, "psycopg2")
    if prefect_url:
        return PostgresProfile(sopflow_url, driver_url(prefect_url, "asyncpg"))
    name = make_url(sopflow_url).database
    return PostgresProfile(
        sopflow_url, driver_url(with_database(url, f"{name}_prefect"), "asyncpg")
    )


def create_missing(profile: PostgresProfile) -> list[str]:
    """Create either database when its server lacks it (through the `postgres` maintenance
    database, as the URL's user); the names created."""
    created = []
    for url in (profile.sopflow_url, profile.prefect_url):
        parsed = make_url(url)
        admin = with_database(driver_url(url, "psycopg2"), "postgres")
        try:
            if ensure_database(admin, str(parsed.database)):
                created.append(str(parsed.database))
        except SQLAlchemyError as error:
            where = f"{parsed.host}:{parsed.port or 5432}"
            reason = str(getattr(error, "orig", None) or error).strip()
            raise RuntimeError(
                f"could not check or create database {parsed.database!r} on {where} as "
                f"{parsed.username!r}: {reason}; create it yourself "
                f"(CREATE DATABASE {parsed.database}) or grant CREATEDB"
            ) from None
    return created


@contextmanager
def postgres_profile(url: str | None, *, port: int = LOCAL_PORT) -> Iterator[PostgresProfile]:
    """The profile's databases, created when missing: on the server `url` names, or on a local
    server in the data folder on `port` (started now unless it runs; stopped at the end if so)."""
    if url:
        profile = profile_for(url, os.environ.get(PREFECT_DB_ENV))
        created = create_missing(profile)
        log.info("PostgreSQL at %s; created: %s", _where(profile), ", ".join(created) or "none")
        yield profile
        return
    if not postgres_available():
        raise RuntimeError(
            "PostgreSQL's server binaries (initdb, pg_ctl) are not on PATH: install them "
            "(apt-get install postgresql) or give an existing server with --postgres-url"
        )
    server = LocalPostgres(get_settings().data_dir / "pg", port)
    started = not server.running()
    if started:
        log.info("starting PostgreSQL in %s on port %d …", server.root, server.port)
        server.start()
    profile = PostgresProfile(server.url(SOPFLOW_DB), driver_url(server.url(PREFECT_DB), "asyncpg"))
    try:
        create_missing(profile)
        yield profile
    finally:
        if started:
            log.info("stopping PostgreSQL …")
            server.stop()


def _where(profile: PostgresProfile) -> str:
    parsed = make_url(profile.sopflow_url)
    return f"{parsed.host}:{parsed.port or 5432}"


def run_up_postgres(*, customers: int, port: int, url: str | None) -> int:
    """`sopflow up` with both databases on PostgreSQL (see the README's "PostgreSQL profile")."""
    from sopflow.up import run_up

    logging.basicConfig(level=logging.INFO, format="%(asctime)s  %(message)s", datefmt="%H:%M:%S")
    try:
        with postgres_profile(url) as profile:
            os.environ.update(profile.environment())  # every process `up` starts inherits it
            reset_settings()
            log.info("sopflow's database: %s", _hidden(profile.sopflow_url))
            log.info("Prefect's database: %s", _hidden(profile.prefect_url))
            return run_up(customers=customers, port=port)
    except (RuntimeError, ValueError) as error:
        log.error("%s", error)
        return 1


def _hidden(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
