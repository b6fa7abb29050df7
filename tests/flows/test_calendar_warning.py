"""A community run in a year no holiday calendar knows: plain Mon–Fri, a loud warning, no crash."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest

from core.clock import at_local
from core.settings import reset_settings
from flows.community import community_sop
from tests.factories import add_deals, deliveries, make_world, workdays_community_sops
from tests.flows.test_community import run_artifact

MONDAY, SATURDAY = dt.date(2027, 1, 4), dt.date(2027, 1, 2)
WARNING = "no official holiday calendar is known for 2027"


@pytest.fixture
def sop_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped community SOPs and calendar, with morning-price sent on workdays only."""
    folder = workdays_community_sops(tmp_path / "sop", with_calendar=True)
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(folder))
    reset_settings()
    return folder


def test_a_workdays_sop_in_an_unknown_year_sends_on_weekdays_and_warns_in_log_and_artifact(
    database_url: str, sop_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    make_world(MONDAY, database_url)
    add_deals(SATURDAY)

    with caplog.at_level(logging.WARNING):
        saturday = community_sop(
            sop_id="morning-price", day=SATURDAY, now=at_local(SATURDAY, 9), return_state=True
        )
        community_sop(sop_id="morning-price", day=MONDAY, now=at_local(MONDAY, 9))

    assert saturday.result() == []
    assert {r.occurrence for r in deliveries()} == {"2027-01-04"}
    assert sum(r.status == "sent" for r in deliveries()) == 3
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum(m.startswith("morning-price: ") and WARNING in m for m in logged) == 2
    artifact = run_artifact(
        str(saturday.state_details.flow_run_id), "morning-price-calendar-warning"
    )
    assert "Holiday calendar unknown" in artifact and WARNING in artifact


def test_a_year_the_calendar_file_lists_runs_by_it_without_a_warning(
    database_url: str, sop_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    make_world(MONDAY, database_url)
    (sop_dir / "calendar.yaml").write_text(
        "2027:\n  holidays:\n    2027-01-04: 测试假日\n", encoding="utf-8"
    )  # test data, not the official schedule

    with caplog.at_level(logging.WARNING):
        assert community_sop(sop_id="morning-price", day=MONDAY, now=at_local(MONDAY, 9)) == []

    assert deliveries() == []
    assert not any(WARNING in r.getMessage() for r in caplog.records)
