"""The review's numbers on a hand-built world whose answers are worked out in tests/review/world.py."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pytest
from sqlmodel import select

from models.db import session_scope
from models.review import Attribution
from review.build import build_review
from review.holdout import wald_interval
from review.period import Period
from tests.review import world as w

PERIOD = Period(dt.date(2026, 10, 5), dt.date(2026, 10, 11), "Asia/Shanghai")


@pytest.fixture
def built(database_url: str) -> w.ReviewWorld:
    return w.build()


def review_of(tmp_path: Path, targets: str = "", sop_id: str | None = None):
    path = tmp_path / "targets.yaml"
    path.write_text(targets, encoding="utf-8")
    return build_review(PERIOD, specs=w.SPECS, targets_path=path, sop_id=sop_id)


def attributions() -> dict[int, Attribution]:
    with session_scope() as session:
        return {a.delivery_id: a for a in session.exec(select(Attribution)).all()}


def test_attribution_takes_the_latest_delivered_touch_within_each_sops_window(
    built: w.ReviewWorld, tmp_path: Path
) -> None:
    review_of(tmp_path)
    stored = attributions()
    ids = built.deliveries
    by_sop = sorted((a.sop_id, a.revenue_fen) for a in stored.values())
    assert by_sop == [
        ("birthday", 10000),  # A: the later of two delivered touches; sent-only and later ignored
        ("dormant-recall", 1000),
        ("dormant-recall", 1000),
        ("double-12", 20000),
        ("long-tail", 3000),  # B: 100 h after its touch, inside long-tail's 7 days
        ("morning-price", 8000),  # C: through the group; quick's 2 h window had closed
    ]
    assert stored[ids["a_birthday"]].customer_id == built.customers[0]
    assert stored[ids["b_long"]].window_hours == 168
    assert stored[ids["c_group"]].channel == "wecom"
    assert ids["a_win_back"] not in stored


def test_attribution_is_stored_once_and_reruns_give_the_same_rows(
    built: w.ReviewWorld, tmp_path: Path
) -> None:
    review_of(tmp_path)
    first = {k: (a.order_id, a.sop_id) for k, a in attributions().items()}
    review_of(tmp_path)
    assert {k: (a.order_id, a.sop_id) for k, a in attributions().items()} == first


def test_outcome_tables_and_conversion(built: w.ReviewWorld, tmp_path: Path) -> None:
    review = review_of(tmp_path)
    sops = {row["sop_id"]: row for row in review.tables["sop"]}
    recall = sops["dormant-recall"]
    assert (recall["planned"], recall["sent"], recall["delivered"], recall["skipped"]) == (
        16,
        10,
        5,
        6,
    )
    assert (recall["reached"], recall["orders"], recall["conversion_rate"]) == (5, 2, 0.4)
    assert sops["morning-price"]["reached"] == built.group_members
    assert sops["morning-price"]["conversion_rate"] == pytest.approx(1 / built.group_members)
    assert sops["win-back"]["awaiting_results"] == 1
    headline = {kpi.name: kpi.value for kpi in review.headline}
    reached = 5 + 2 + built.group_members + 2 + 1 + 1 + 2
    assert headline["reached"] == reached
    assert headline["attributed_orders"] == 6
    assert headline["attributed_revenue_fen"] == 43000
    assert headline["conversion_rate"] == pytest.approx(6 / reached)
    assert headline["campaign_conversion_rate"] == pytest.approx(1 / 2)
    assert headline["private_domain_order_share"] == pytest.approx(6 / 9)
    days = {row["day"]: row for row in review.tables["day"]}
    assert days["2026-10-07"]["planned"] == 17  # the holdout day's rows, planned 10:00 local
    staff = review.tables["staff"]
    assert staff[0]["sender"] == "zhangwei.bj01" and staff[0]["staff_name"] == "张伟"


def test_skip_reasons_are_counted(built: w.ReviewWorld, tmp_path: Path) -> None:
    reasons = {r["reason"]: r["count"] for r in review_of(tmp_path).skip_reasons}
    assert reasons == {
        "holdout": 5,
        "opted out of fresh": 1,
        "capped (lost to dormant-recall)": 1,
    }


def test_uplift_against_the_holdout(built: w.ReviewWorld, tmp_path: Path) -> None:
    (uplift,) = review_of(tmp_path).uplift
    assert uplift.sop_id == "dormant-recall"
    assert (uplift.treated, uplift.treated_converted, uplift.control, uplift.control_converted) == (
        10,
        3,
        5,
        1,
    )
    spread = 1.959963984540054 * math.sqrt(0.3 * 0.7 / 10 + 0.2 * 0.8 / 5)
    assert uplift.uplift == pytest.approx(0.1)
    assert (uplift.ci_low, uplift.ci_high) == (
        pytest.approx(0.1 - spread),
        pytest.approx(0.1 + spread),
    )
    assert wald_interval(10, 3, 0, 0) is None


def test_costs_loyalty_staff_and_activity(built: w.ReviewWorld, tmp_path: Path) -> None:
    review = review_of(tmp_path)
    after = {row["sop_id"]: row for row in review.after_touch}
    assert (after["double-12"]["touched"], after["double-12"]["deleted_7d"]) == (2, 1)
    assert after["double-12"]["opted_out_7d"] == 0  # 9 days after: outside the 7
    assert after["morning-price"]["touched"] == built.group_members  # per person reached
    members, others = review.loyalty
    assert (members["segment"], members["customers"], members["buyers"]) == ("group members", 1, 1)
    assert (others["customers"], others["buyers"], others["orders"]) == (28, 7, 7)
    assert others["average_order_fen"] == pytest.approx(18000 / 7)
    (staff,) = review.staff_confirmation
    assert (staff["tasks"], staff["confirmed"], staff["median_delay_seconds"]) == (1, 1, 1800)
    headline = {kpi.name: kpi.value for kpi in review.headline}
    assert headline["member_basket_lift"] == pytest.approx(8000 / (18000 / 7) - 1)
    assert headline["daily_active_ratio"] == pytest.approx(10 / 7 / 29)
    assert headline["deletion_rate_7d"] == pytest.approx(
        1 / sum(r["touched"] for r in review.after_touch)
    )


def test_targets_are_judged_met_or_missed(built: w.ReviewWorld, tmp_path: Path) -> None:
    review = review_of(
        tmp_path,
        'conversion_rate: ">= 10%"\ncampaign_conversion_rate: ">= 3%"\ndeletion_rate_7d: "<= 0.5%"\n',
    )
    judged = {kpi.name: kpi for kpi in review.headline}
    assert judged["conversion_rate"].met is False  # 6 orders / 113 reached = 5.3 %
    assert judged["campaign_conversion_rate"].met is True
    assert judged["deletion_rate_7d"].met is False
    assert judged["planned"].met is None
    assert {kpi.name for kpi in review.misses} == {"conversion_rate", "deletion_rate_7d"}


def test_a_review_of_one_sop(built: w.ReviewWorld, tmp_path: Path) -> None:
    review = review_of(tmp_path, sop_id="double-12")
    assert [row["sop_id"] for row in review.tables["sop"]] == ["double-12"]
    assert {kpi.name: kpi.value for kpi in review.headline}["attributed_orders"] == 1


@pytest.mark.postgres
def test_the_same_answers_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    built = w.build()
    review = review_of(tmp_path)
    assert sorted((a.sop_id, a.revenue_fen) for a in attributions().values()) == [
        ("birthday", 10000),
        ("dormant-recall", 1000),
        ("dormant-recall", 1000),
        ("double-12", 20000),
        ("long-tail", 3000),
        ("morning-price", 8000),
    ]
    (uplift,) = review.uplift
    assert (uplift.treated_converted, uplift.control_converted) == (3, 1)
    days = {row["day"]: row for row in review.tables["day"]}
    assert days["2026-10-07"]["planned"] == 17
    headline = {kpi.name: kpi.value for kpi in review.headline}
    assert headline["daily_active_ratio"] == pytest.approx(10 / 7 / 29)
    assert {r["sop_id"]: r["deleted_7d"] for r in review.after_touch}["double-12"] == 1
    assert review.staff_confirmation[0]["median_delay_seconds"] == 1800
    assert (
        built.group_members
        == {r["sop_id"]: r for r in review.tables["sop"]}["morning-price"]["reached"]
    )
