"""Shared fixtures: one Prefect test server per session, a fresh SQLite database per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from prefect.testing.utilities import prefect_test_harness

from models import db
from sopflow.settings import reset_settings


@pytest.fixture(autouse=True, scope="session")
def prefect_harness() -> Iterator[None]:
    """The real Prefect engine against one temporary server for the whole session."""
    with prefect_test_harness(server_startup_timeout=90):
        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, migrated SQLite database that the settings point at for this test."""
    url = f"sqlite:///{tmp_path / 'sopflow.db'}"
    monkeypatch.setenv("SOPFLOW_DATABASE_URL", url)
    monkeypatch.setenv("SOPFLOW_DATA_DIR", str(tmp_path / "data"))
    reset_settings()
    db.dispose_engines()
    db.upgrade(url)
    yield url
    db.dispose_engines()
    reset_settings()
