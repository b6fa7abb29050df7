"""The daily birthday events, and the seeds' trigger SOPs sent once each through the real drain."""

from __future__ import annotations

import datetime as dt
import shutil
from collections import Counter
from pathlib import Path

import pytest
from sqlmodel import col, func, select

from core.clock import at_local
from core.settings import PROJECT_ROOT, reset_settings
from engine.birthdays import record_birthdays
from flows.maintenance import plan_day
from flows.triggers import drain_events
from models.commerce import Event, Order
from models.db import session_scope
from models.people import Customer
from tests.factories import add_customers, add_events, add_order, deliveries, make_world

DAY = dt.date(2026, 11, 24)
SEEDS = (
    "birthday.md",
    "birthday-month-points.md",
    "checkin-streak.md",
    "group-join-welcome.md",
    "order-received-review.md",
)


@pytest.fixture
def world(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    folder = tmp_path / "sop" / "triggers"
    folder.mkdir(parents=True)
    for name in SEEDS:
        shutil.copy(PROJECT_ROOT / "sop" / "triggers" / name, folder)
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(folder.parent))
    reset_settings()
    return make_world(DAY, database_url)


def born(*birthdays: dt.date, **fields) -> list[int]:
    """One customer per birthday (ids in the same order), named 客户100, 客户101 …"""
    with session_scope() as session:
        first = 100 + session.exec(select(func.count()).select_from(Customer)).one()
    found = []
    for birthday in birthdays:
        found += add_customers(1, first=first + len(found), birthday=birthday, **fields)
    return found


def birthday_events() -> Counter[tuple[int, str]]:
    with session_scope() as session:
        rows = session.exec(select(Event).where(Event.kind == "customer.birthday")).all()
        return Counter((e.customer_id, e.payload["kind"]) for e in rows)


def record(day: dt.date) -> dict[str, int]:
    with session_scope() as session:
        return record_birthdays(day, tz="Asia/Shanghai", session=session)


def texts(emulator) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for message in emulator.messages:
        for target in message["targets"]:
            found.setdefault(target, []).append(message["content"])
    return found


def external(customer_id: int) -> str:
    with session_scope() as session:
        return session.get(Customer, customer_id).external_userid


def test_birthdays_today_are_recorded_once_however_often_the_day_is_planned(world) -> None:
    today, other_year, tomorrow = born(
        dt.date(1990, 11, 24), dt.date(2001, 11, 24), dt.date(1990, 11, 25)
    )
    add_customers(1, first=200)  # no birthday on record

    assert record(DAY) == {"day": 2}
    assert record(DAY) == {"day": 0}
    assert birthday_events() == Counter({(today, "day"): 1, (other_year, "day"): 1})
    with session_scope() as session:
        occurred = session.exec(select(Event.occurred_at)).all()
    assert set(occurred) == {at_local(DAY, 0, 0)}  # local midnight, Asia/Shanghai
    assert record(DAY + dt.timedelta(days=1)) == {"day": 1}
    assert birthday_events()[(tomorrow, "day")] == 1


def test_feb_29_birthdays_fall_on_feb_28_in_other_years(world) -> None:
    leapling, feb_28 = born(dt.date(1996, 2, 29), dt.date(1995, 2, 28))

    assert record(dt.date(2027, 2, 28)) == {"day": 2}
    assert record(dt.date(2028, 2, 28)) == {"day": 1}  # 2028 has its own Feb 29
    assert record(dt.date(2028, 2, 29)) == {"day": 1}
    assert birthday_events() == Counter({(leapling, "day"): 2, (feb_28, "day"): 2})


def test_on_the_first_every_customer_born_that_month_gets_a_month_event(world) -> None:
    first, mid, late, november = born(
        dt.date(1990, 12, 1), dt.date(1985, 12, 15), dt.date(1999, 12, 31), dt.date(1990, 11, 30)
    )

    assert record(dt.date(2026, 12, 1)) == {"day": 1, "month": 3}
    assert record(dt.date(2026, 12, 1)) == {"day": 0, "month": 0}
    assert record(dt.date(2026, 12, 2)) == {"day": 0}  # only the 1st records the month
    assert birthday_events() == Counter(
        {(first, "day"): 1, (first, "month"): 1, (mid, "month"): 1, (late, "month"): 1}
    )
    assert november not in {customer for customer, _ in birthday_events()}


def test_plan_day_records_today_birthdays_and_a_plan_for_another_day_records_none(world) -> None:
    (today,) = born(dt.date(1990, 11, 24))

    planned = plan_day(day=DAY, now=at_local(DAY, 0, 5))
    ahead = plan_day(day=DAY, now=at_local(DAY - dt.timedelta(days=1), 23, 0))
    again = plan_day(day=DAY, now=at_local(DAY, 0, 30))

    assert (planned["birthdays"], ahead["birthdays"], again["birthdays"]) == (
        {"day": 1},
        {},
        {"day": 0},
    )
    assert birthday_events() == Counter({(today, "day"): 1})


def test_the_seed_events_each_send_once_through_the_drain(world, emulator) -> None:
    """Birthday day and month, a 7-day check-in (the 3-day one is no milestone) and a group join
    each become one message; the review invitation waits 3 days for 10:00; nothing is sent twice."""
    first = dt.date(2026, 12, 1)
    member, plain = born(dt.date(1990, 12, 1), dt.date(1991, 12, 9), is_paid_member=True)
    with session_scope() as session:
        session.get(Customer, plain).is_paid_member = False
    (gone,) = born(dt.date(1992, 12, 1), contact_state="deleted")
    add_order(plain, at_local(first, 9) - dt.timedelta(days=4), [("F001", 2, 399)])
    with session_scope() as session:
        order_id = session.exec(select(func.max(Order.id))).one()
    record(first)  # member: day + month; plain: month; gone: day + month
    nine = at_local(first, 9)
    add_events("checkin", [member], payload={"streak": 7}, at=nine)
    add_events("checkin", [plain], payload={"streak": 3}, at=nine)
    joined = {"chat_id": world.chat_ids["北京生鲜二群"]}
    add_events("group.member_joined", [plain], payload=joined, at=nine)
    add_events("order.received", [plain], payload={"order_id": order_id}, at=nine)

    summary = drain_events(now=at_local(first, 10))
    again = drain_events(now=at_local(first, 10, 5))
    early = drain_events(now=at_local(first + dt.timedelta(days=3), 9, 45))
    due = drain_events(now=at_local(first + dt.timedelta(days=3), 10, 0))
    after = drain_events(now=at_local(first + dt.timedelta(days=3), 10, 15))

    sends = {sop: s["this_run"] for sop, s in summary.items() if s["this_run"]}
    assert sends == {
        "birthday": {"sent": 1, "skipped:not a contact": 1},
        "birthday-month-points": {"sent": 1},
        "checkin-streak": {"sent": 1},
        "group-join-welcome": {"sent": 1},
    }
    assert not any(s["this_run"] for s in (*again.values(), *early.values(), *after.values()))
    assert due["order-received-review"]["due_steps"] == {"sent through the 1:1 guards": 1}
    sent = texts(emulator)
    assert sorted(len(t) for t in sent.values()) == [2, 3]
    to_member, to_plain = sent[external(member)], sent[external(plain)]
    assert any(t.startswith("客户100，生日快乐🎂！今天是您的12月1日") for t in to_member)
    assert any(t.startswith("客户100，12月是您的生日月🎉 作为黑卡会员") for t in to_member)
    assert any("您已连续签到7天👍 额外奖励70积分" in t for t in to_member)
    assert any(t.startswith("客户101，欢迎加入「北京生鲜二群」🎉 我是群主张伟") for t in to_plain)
    assert any(f"订单SO20261127{order_id:04d}已签收几天啦，共2件商品" in t for t in to_plain)
    assert not any("生日" in t for t in to_plain)  # born on the 9th, and not a paid member
    assert external(gone) not in sent
    with session_scope() as session:
        assert not session.exec(select(Event).where(col(Event.processed_at).is_(None))).all()
    assert Counter(r.sop_id for r in deliveries()) == Counter(
        {
            "birthday": 2,
            "birthday-month-points": 1,
            "checkin-streak": 1,
            "group-join-welcome": 1,
            "order-received-review": 1,
        }
    )
