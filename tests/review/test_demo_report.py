"""`sopflow report` on the demo world after the day's SOPs ran: its numbers are the Delivery table's."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import col
from typer.testing import CliRunner

from core.clock import at_local
from demo import load_demo_world
from flows.community import community_sop
from flows.lifecycle import lifecycle_sop
from flows.maintenance import collect_results
from models.db import session_scope
from models.delivery import Delivery
from review.period import Period
from review.report import make_report
from sopflow.cli import app

DAY = dt.date(2026, 9, 21)  # far from the real clock, which stamps `sent_at`


def direct_counts(period: Period) -> dict[str, int]:
    with session_scope() as session:
        rows = session.execute(
            select(col(Delivery.status), func.count())
            .where(
                col(Delivery.planned_at) >= period.start_utc,
                col(Delivery.planned_at) < period.end_utc,
            )
            .group_by(col(Delivery.status))
        )
        return dict(rows.tuples().all())


def test_the_report_agrees_with_the_delivery_table(
    database_url: str, emulator, tmp_path: Path
) -> None:
    load_demo_world(database_url, customers=2000, today=DAY)
    community_sop(sop_id="morning-price", day=DAY, now=at_local(DAY, 8, 30))
    community_sop(sop_id="evening-flash-sale", day=DAY, now=at_local(DAY, 21, 0))
    lifecycle_sop(sop_id="dormant-recall", step="care", day=DAY, now=at_local(DAY, 10))
    collect_results()

    result = CliRunner().invoke(
        app, ["report", "--from", DAY.isoformat(), "--to", DAY.isoformat(), "--out", str(tmp_path)]
    )

    assert result.exit_code == 0, result.output
    report = tmp_path / f"review-{DAY}-{DAY}.html"
    assert report.exists() and "<svg" in report.read_text(encoding="utf-8")
    period = Period(DAY, DAY, "Asia/Shanghai")
    counts = direct_counts(period)
    assert sum(counts.values()) > 0 and counts.get("delivered", 0) > 0
    review = make_report(DAY, DAY).review
    sops = review.tables["sop"]
    accepted = ("sent", "delivered", "not_a_friend", "over_wecom_limit", "unconfirmed")
    assert sum(r["planned"] for r in sops) == sum(counts.values())
    assert sum(r["sent"] for r in sops) == sum(counts.get(s, 0) for s in accepted)
    for status in ("delivered", "not_a_friend", "over_wecom_limit", "failed", "skipped"):
        assert sum(r[status] for r in sops) == counts.get(status, 0), status
    with session_scope() as session:
        ran = set(session.execute(select(Delivery.sop_id).distinct()).scalars())
    assert {r["sop_id"] for r in sops} == ran >= {"morning-price", "evening-flash-sale"}
    headline = {kpi.name: kpi.value for kpi in review.headline}
    assert headline["planned"] == sum(counts.values())
    assert (
        f"{sum(counts.values()):,}" in result.output or str(sum(counts.values())) in result.output
    )
