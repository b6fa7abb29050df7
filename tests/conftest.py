"""Shared fixtures: one Prefect test server per session, a fresh SQLite database per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from channels.emulator import WeComEmulator
from core.settings import reset_settings
from models import db
from orchestration.quiet_server import quiet_server

SERVER_NOTES: list[str] = []  # what the session's server logged while running, told at the end


@pytest.fixture(autouse=True, scope="session")
def prefect_harness() -> Iterator[None]:
    """The real Prefect engine against one temporary server for the whole session; the server's
    output goes to a log file, not into the tests' captured output."""
    with quiet_server(startup_timeout=90, settle_seconds=10, report=SERVER_NOTES.append):
        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per session when the Prefect server logged warnings or errors, naming its log."""
    for note in SERVER_NOTES:
        terminalreporter.write_line(note)


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, migrated SQLite database that the settings point at for this test."""
    yield from _use_database(f"sqlite:///{tmp_path / 'sopflow.db'}", tmp_path, monkeypatch)


def _use_database(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point the settings at `url` (migrated) for one test, then forget it."""
    monkeypatch.setenv("SOPFLOW_DATABASE_URL", url)
    monkeypatch.setenv("SOPFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SOPFLOW_REPORTS_DIR", str(tmp_path / "reports"))
    reset_settings()
    db.dispose_engines()
    db.upgrade(url)
    yield url
    db.dispose_engines()
    reset_settings()


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """One PostgreSQL 15 server for the session's `postgres` tests."""
    from tests.postgres import postgres_server

    with postgres_server() as url:
        yield url


@pytest.fixture
def postgres_url(
    postgres_server_url: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database that the settings point at for this test."""
    from sqlalchemy import create_engine

    name = "t_" + "".join(ch if ch.isalnum() else "_" for ch in request.node.name.lower())[:50]
    admin = create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    url = postgres_server_url.rsplit("/", 1)[0] + f"/{name}"
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
    reset_settings()
    return server
