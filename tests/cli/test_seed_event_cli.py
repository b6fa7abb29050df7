"""`sopflow event add` and `sopflow preview` for the seeds' events: checkin, birthday, group join, receipt."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from sqlmodel import func, select
from typer.testing import CliRunner

from core.clock import at_local
from core.settings import PROJECT_ROOT
from models.commerce import Event, Order
from models.db import session_scope
from sopflow.cli import app
from tests.factories import add_customers, add_order, make_world

DAY = dt.date(2026, 11, 24)
TRIGGERS = PROJECT_ROOT / "sop" / "triggers"


def sopflow(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


def events() -> list[tuple[str, dict]]:
    with session_scope() as session:
        return [(e.kind, e.payload) for e in session.exec(select(Event)).all()]


def test_a_checkin_is_recorded_with_its_streak_and_a_bad_streak_is_refused(
    database_url: str,
) -> None:
    make_world(DAY, database_url)
    add_customers(1)

    bad_code, bad = sopflow(
        "event", "add", "checkin", "--customer", "wmTEST0000000", "--payload", '{"streak": -1}'
    )
    code, output = sopflow(
        "event", "add", "checkin", "--customer", "wmTEST0000000", "--payload", '{"streak": 7}'
    )

    assert bad_code == 1
    assert "a checkin event needs `streak` in its payload: days in a row" in bad
    assert "--payload '{\"streak\": 7}'" in bad
    assert code == 0, output
    assert "recorded: checkin for wmTEST0000000" in output
    assert events() == [("checkin", {"streak": 7})]


def test_previews_build_a_sample_of_each_seed_event(database_url: str) -> None:
    world = make_world(DAY, database_url)
    add_customers(1)  # no birthday: the birthday sample takes the next customer
    add_customers(1, first=1, birthday=dt.date(1990, 3, 14))
    add_order(1, at_local(DAY, 9, 0), [("F001", 2, 399)])
    with session_scope() as session:
        order_id = session.exec(select(func.max(Order.id))).one()

    outputs = {
        name: sopflow("preview", TRIGGERS / name, "--date", DAY)
        for name in ("birthday.md", "checkin-streak.md", "group-join-welcome.md")
    }
    _, received = sopflow("preview", TRIGGERS / "order-received-review.md")
    _, three_days = sopflow(
        "preview", TRIGGERS / "checkin-streak.md", "--payload", json.dumps({"streak": 3})
    )

    assert all(code == 0 for code, _ in outputs.values()), outputs
    birthday = outputs["birthday.md"][1]
    assert (
        "a sample `customer.birthday` event (none recorded) on the customer's birthday" in birthday
    )
    assert "客户1，生日快乐🎂！今天是您的3月14日" in birthday
    assert "1990" not in birthday
    assert "您已连续签到7天👍 额外奖励70积分" in outputs["checkin-streak.md"][1]
    group = outputs["group-join-welcome.md"][1]
    assert f"joining group {world.chat_ids['北京生鲜爱好者群']}" in group
    assert "欢迎加入「北京生鲜爱好者群」🎉 我是群主张伟" in group
    assert f"您的订单SO20261124{order_id:04d}已签收几天啦，共2件商品" in received
    assert (
        "a run does not answer this event with step `milestone` (when: {streak: [7, 14, 30]}"
        in (three_days)
    )
