"""Shared fixtures: one Prefect test server per session, a fresh SQLite database per test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from channels.emulator import WeComEmulator
from channels.emulator.coupons import ISSUE as COUPON_ISSUE
from core.settings import reset_settings
from models import db
from orchestration.quiet_server import quiet_server
from tests.postgres import create_database, postgres_available, postgres_server

SERVER_NOTES: list[str] = []  # what the session's server logged while running, told at the end
SERVER = ExitStack()
POSTGRES: list[str] = []  # the session's PostgreSQL server, when there is one


def pytest_configure(config: pytest.Config) -> None:
    """One temporary Prefect server for the whole session, its output in a log file, not in the
    tests' captured output. Started before the test modules import Prefect, so that threads the
    tests start reach it too (see `quiet_server`).

    Its database is PostgreSQL when the server binaries are here, as in production: on SQLite,
    Prefect's server under a whole suite's load stalls requests for a minute at a time on its own
    write locks (`database is locked`), which made run times swing from 7 s to 70 s.
    """
    if config.option.collectonly or _xdist_controller(config):
        return
    database_url = None
    if postgres_available():
        server_url = SERVER.enter_context(postgres_server())
        database_url = create_database(server_url, "prefect").replace("+psycopg2", "+asyncpg")
        POSTGRES.append(server_url)
    SERVER.enter_context(
        quiet_server(
            startup_timeout=90,
            settle_seconds=10,
            report=SERVER_NOTES.append,
            database_url=database_url,
        )
    )


def _xdist_controller(config: pytest.Config) -> bool:
    """The pytest-xdist process that hands tests to its workers: each worker has its own servers."""
    workers = getattr(config.option, "numprocesses", None)
    return bool(workers) and not hasattr(config, "workerinput")


def pytest_sessionfinish(session: pytest.Session) -> None:
    SERVER.close()


@pytest.fixture(autouse=True, scope="session")
def prefect_harness() -> Iterator[None]:
    """The real Prefect engine, without flow-run heartbeats (each costs a second per run here)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per session when the Prefect server logged warnings or errors, naming its log."""
    for note in SERVER_NOTES:
        terminalreporter.write_line(note)


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite database at the migrations' head, copied for each test (migrating each
    test's own file took 0.2 s a test)."""
    path = tmp_path_factory.mktemp("migrated") / "sopflow.db"
    db.upgrade(f"sqlite:///{path}")
    db.dispose_engines()
    return path


@pytest.fixture
def database_url(
    migrated_sqlite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A fresh, migrated SQLite database that the settings point at for this test."""
    path = Path(shutil.copyfile(migrated_sqlite, tmp_path / "sopflow.db"))
    yield from _use_database(f"sqlite:///{path}", tmp_path, monkeypatch, migrated=True)


def _use_database(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, migrated: bool = False
) -> Iterator[str]:
    """Point the settings at `url` (migrated here unless it already is) for one test, then forget it."""
    monkeypatch.setenv("SOPFLOW_DATABASE_URL", url)
    monkeypatch.setenv("SOPFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SOPFLOW_REPORTS_DIR", str(tmp_path / "reports"))
    reset_settings()
    db.dispose_engines()
    if not migrated:
        db.upgrade(url)
    yield url
    db.dispose_engines()
    reset_settings()


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The session's PostgreSQL 15 server, for the `postgres` tests."""
    if not POSTGRES:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    return POSTGRES[0]


@pytest.fixture
def postgres_url(
    postgres_server_url: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database that the settings point at for this test."""
    name = "t_" + "".join(ch if ch.isalnum() else "_" for ch in request.node.name.lower())[:50]
    url = create_database(postgres_server_url, name)
    yield from _use_database(url, tmp_path, monkeypatch)


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[WeComEmulator]:
    """The WeCom channel pointed at a local WeCom emulator over loopback."""
    with WeComEmulator() as server:
        yield use_emulator(server, monkeypatch)


def use_emulator(server: WeComEmulator, monkeypatch: pytest.MonkeyPatch) -> WeComEmulator:
    """Point the settings' WeCom channel at a running emulator for this test."""
    monkeypatch.setenv("SOPFLOW_CHANNEL", "wecom")
    monkeypatch.setenv("WECOM_API_BASE", server.url)
    monkeypatch.setenv("WECOM_CORP_ID", "test-corp")
    monkeypatch.setenv("WECOM_CORP_SECRET", "test-secret")
    monkeypatch.setenv("SOPFLOW_COUPON_URL", server.url + COUPON_ISSUE)  # its coupon system
    monkeypatch.setenv("SOPFLOW_COUPON_SECRET", server.coupons.secret)
    reset_settings()
    return server
