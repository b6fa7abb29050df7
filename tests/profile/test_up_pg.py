"""`sopflow up --postgres`: the profile's database URLs, its databases created once, the local server's lifecycle."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from core.settings import reset_settings
from sopflow.pg_local import LocalPostgres, free_port, with_database
from sopflow.up_pg import PREFECT_DB_ENV, create_missing, postgres_profile, profile_for


def test_one_url_names_sopflows_database_and_prefects_beside_it() -> None:
    """sopflow gets psycopg2, Prefect's server asyncpg, its database `<name>_prefect`; the password is kept."""
    profile = profile_for("postgres://ops:s3cret@db.internal:6432/chain_a")
    assert profile.sopflow_url == "postgresql+psycopg2://ops:s3cret@db.internal:6432/chain_a"
    assert profile.prefect_url == "postgresql+asyncpg://ops:s3cret@db.internal:6432/chain_a_prefect"
    assert profile.environment() == {
        "SOPFLOW_DATABASE_URL": profile.sopflow_url,
        PREFECT_DB_ENV: profile.prefect_url,
    }


def test_a_separate_prefect_url_is_used_as_given_with_asyncpg() -> None:
    profile = profile_for("postgresql+psycopg2://a@h1/sop", "postgresql://b@h2:5433/prefect_server")
    assert profile.prefect_url == "postgresql+asyncpg://b@h2:5433/prefect_server"


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("mysql://a@h/sop", "give a PostgreSQL URL naming sopflow's database"),
        ("postgresql://a@h", "give a PostgreSQL URL naming sopflow's database"),
        ("not a url", "is not a database URL"),
    ],
)
def test_a_url_that_is_not_a_postgresql_database_is_refused_saying_what_to_give(
    url: str, said: str
) -> None:
    with pytest.raises(ValueError, match="--postgres-url") as caught:
        profile_for(url)
    assert said in str(caught.value)


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            sql = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            return set(conn.exec_driver_sql(sql).scalars())
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_missing_databases_are_created_once_and_existing_ones_kept(
    postgres_server_url: str,
) -> None:
    """A second `up` finds both databases and leaves what they hold."""
    profile = profile_for(with_database(postgres_server_url, "profile_kept"))
    assert create_missing(profile) == ["profile_kept", "profile_kept_prefect"]
    engine = create_engine(profile.sopflow_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE earlier_world (id int)")
    engine.dispose()

    assert create_missing(profile) == []
    assert "earlier_world" in _tables(profile.sopflow_url)


@pytest.mark.postgres
def test_a_user_who_cannot_reach_the_server_gets_an_error_naming_database_and_remedy(
    postgres_server_url: str,
) -> None:
    url = with_database(postgres_server_url, "sop").replace("postgres@", "nobody@")
    with pytest.raises(RuntimeError, match="'sop' on 127.0.0.1:.* as 'nobody'.*CREATE DATABASE"):
        create_missing(profile_for(url))


@pytest.fixture
def data_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A data folder the `postgres` user can enter (pytest's own temporary folders are 0700)."""
    root = Path(tempfile.mkdtemp(prefix="sopflow-profile-"))
    root.chmod(0o755)
    monkeypatch.setenv("SOPFLOW_DATA_DIR", str(root))
    reset_settings()
    yield root
    reset_settings()
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.postgres
def test_the_local_server_lives_in_the_data_folder_and_stops_only_if_up_started_it(
    postgres_server_url: str, data_dir: Path
) -> None:
    """initdb on first use in <data>/pg, both databases there; a server already running is left running."""
    port = free_port()
    server = LocalPostgres(data_dir / "pg", port)
    with postgres_profile(None, port=port) as profile:
        assert server.running()
        assert profile.sopflow_url == server.url("sopflow")
        assert profile.prefect_url == f"postgresql+asyncpg://postgres@127.0.0.1:{port}/prefect"
        assert _tables(profile.sopflow_url) == set()
    assert not server.running()

    server.start()  # e.g. a second `up` in another terminal
    try:
        with postgres_profile(None, port=port):
            pass
        assert server.running()
    finally:
        server.stop()
    assert (data_dir / "pg" / "data" / "PG_VERSION").exists()
    assert not os.path.exists(data_dir / "pg" / "data" / "postmaster.pid")


def test_up_with_a_url_that_is_not_postgresql_exits_1_saying_what_to_give(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Nothing is started: the URL is checked before any server, database or process."""
    from typer.testing import CliRunner

    from sopflow.cli import app

    result = CliRunner().invoke(app, ["up", "--postgres-url", "mysql://ops@db/sopflow"])
    assert result.exit_code == 1
    assert "give a PostgreSQL URL naming sopflow's database" in caplog.text
