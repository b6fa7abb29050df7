"""The review's moments (朋友圈) posting rate per store, from the staff touches of the period."""

from __future__ import annotations

import datetime as dt

from core.clock import at_local
from core.settings import PROJECT_ROOT
from models.db import session_scope
from models.deliveries import Occurrence, PlannedTarget, record_planned
from models.people import Staff, Store
from review.build import build_review
from review.html import render_html
from review.period import Period

DAY = dt.date(2026, 11, 25)
PERIOD = Period(DAY, DAY + dt.timedelta(days=6), "Asia/Shanghai")
STAFF = {
    # userid: (store code, status of this week's moment task)
    "bj.a": ("S-BJ", "delivered"),
    "bj.b": ("S-BJ", "delivered"),
    "bj.c": ("S-BJ", "unconfirmed"),
    "bj.d": ("S-BJ", "skipped"),  # WeCom refused the sender: no task, not in the rate
    "sh.a": ("S-SH", "unconfirmed"),
    "sh.b": ("S-SH", "sent"),  # may still post
}


def record_week(day: dt.date, statuses: dict[str, tuple[str, str]]) -> None:
    with session_scope() as session:
        for userid, (_, status) in statuses.items():
            occurrence = Occurrence(
                "moments-wednesday-member-day", "main", day.isoformat(), "moments"
            )
            target = PlannedTarget("staff", userid, userid, status=status)
            record_planned(occurrence, [target], session=session, now=at_local(day, 9))


def test_the_review_shows_the_posting_rate_per_store_lowest_first(database_url: str) -> None:
    with session_scope() as session:
        stores = {
            code: Store(code=code, name=name, city=city)
            for code, name, city in (("S-BJ", "北京旗舰店", "北京"), ("S-SH", "上海旗舰店", "上海"))
        }
        session.add_all(stores.values())
        session.flush()
        for userid, (code, _) in STAFF.items():
            session.add(Staff(userid=userid, name=userid, store_id=stores[code].id))
    record_week(DAY, STAFF)
    record_week(DAY - dt.timedelta(days=7), {"sh.a": ("S-SH", "delivered")})  # not this period

    review = build_review(
        PERIOD, specs=[], targets_path=PROJECT_ROOT / "sop" / "targets.yaml", now=at_local(DAY, 12)
    )

    shanghai, beijing = review.tables["moments"]
    assert beijing == {
        "store": "S-BJ",
        "store_name": "北京旗舰店",
        "staff": 4,
        "moment_tasks": 3,
        "posted": 2,
        "not_posted": 1,
        "pending": 0,
        "posting_rate": 2 / 3,
    }
    assert (shanghai["store"], shanghai["moment_tasks"], shanghai["posted"]) == ("S-SH", 2, 0)
    assert (shanghai["pending"], shanghai["posting_rate"]) == (1, 0.0)
    html = render_html(review)
    assert "朋友圈发表率" in html and "66.7%" in html
