"""`sopflow preview` per kind of SOP: what it says about the day, the audience, the tasks and the text."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from core.clock import at_local
from core.settings import PROJECT_ROOT
from models.commerce import Order
from models.db import session_scope
from sopflow.cli import app
from tests.factories import add_campaign, add_customers, add_events, add_order, make_world

DAY = dt.date(2026, 11, 24)
SOP = PROJECT_ROOT / "sop"
MORNING = SOP / "community" / "morning-price.md"


def preview(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["preview", *map(str, args)])
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


def edited(tmp_path: Path, source: Path, old: str, new: str) -> Path:
    """A copy of a shipped SOP with one line changed."""
    text = source.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / source.name
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


# ---------------------------------------------------------------- community


def test_community_preview_lists_tasks_per_staff_member_one_per_line(database_url: str) -> None:
    """Each group's text names the group, so each is its own task for its owner to confirm."""
    world = make_world(DAY, database_url)

    code, output = preview(MORNING, "--date", DAY.isoformat())
    _, chosen = preview(MORNING, "--date", DAY, "--group", world.chat_ids["上海母婴用品群"])

    assert code == 0, output
    assert "when 何时: runs on 2026-11-24 (周二) at 08:30 (Asia/Shanghai)" in output
    assert (
        "audience 受众: 4 groups (live groups with theme 生鲜/母婴/零食/酒水/家电/日用)" in output
    )
    assert "  1 get nothing: no morning deals today for this group's theme" in output
    assert (
        "across 2 staff member(s)\n  zhangwei.bj01 张伟: 2\n  lina.sh01 李娜: 1\n  total: 3"
        in output
    )
    assert "message 文案 for 北京生鲜爱好者群" in output and "鸡蛋3.99元/斤" in output
    assert "message 文案 for 上海母婴用品群" in chosen and "婴儿纸尿裤" in chosen


def test_a_group_without_deals_says_why_nothing_renders(database_url: str) -> None:
    """上海酒水品鉴群 has no 酒水 deals; on a day without deals no group has any."""
    world = make_world(DAY, database_url)

    code, drinks = preview(MORNING, "--date", DAY, "--group", world.chat_ids["上海酒水品鉴群"])
    _, no_deals = preview(MORNING, "--date", "2026-11-25")
    bad_code, bad_date = preview(MORNING, "--date", "24/11/2026")

    assert code == 0, drinks
    assert "nothing renders: no morning deals today for this group's theme" in drinks
    assert "audience 受众: 4 groups" in no_deals
    assert "WeCom tasks 群发任务: none (nothing to send)" in no_deals
    assert "4 get nothing: no morning deals today" in no_deals
    assert "0 `morning` deals in the database for 2026-11-25" in no_deals
    assert bad_code == 1 and "--date '24/11/2026' is not a date; write it as YYYY-MM-DD" in bad_date


def test_a_workdays_sop_says_it_does_not_run_on_a_holiday(
    database_url: str, tmp_path: Path
) -> None:
    """国庆 2026-10-01 is a Thursday off; the Saturday 2026-10-10 is worked (调休)."""
    make_world(dt.date(2026, 10, 1), database_url)
    path = edited(tmp_path, MORNING, "days: everyday", "days: workdays")

    code, holiday = preview(path, "--date", "2026-10-01")
    _, worked_saturday = preview(path, "--date", "2026-10-10")

    assert code == 0, holiday
    assert "does NOT run on 2026-10-01 (周四): `days: workdays`" in holiday
    assert "nothing is sent that day" in holiday and "鸡蛋" in holiday
    assert "runs on 2026-10-10 (周六) at 08:30" in worked_saturday


def test_a_cron_that_skips_the_weekday_is_said(database_url: str, tmp_path: Path) -> None:
    make_world(DAY, database_url)
    path = edited(tmp_path, MORNING, '"30 8 * * *"', '"30 8 * * 1-5"')

    _, saturday = preview(path, "--date", "2026-11-28")

    assert (
        "does NOT run on 2026-11-28 (周六): cron `30 8 * * 1-5` does not fire that day" in saturday
    )


def test_an_audience_of_no_group_is_said_plainly(database_url: str, tmp_path: Path) -> None:
    make_world(DAY, database_url)
    path = edited(tmp_path, MORNING, "groups: {theme: [", "groups: {region: [拉萨], theme: [")

    code, output = preview(path, "--date", DAY)

    assert code == 0, output
    assert "audience 受众: 0 groups: no group matches (live groups with theme" in output
    assert "region 拉萨)" in output
    assert "not in the audience, shown as an example" in output


def test_options_of_another_kind_are_refused_with_what_to_use(database_url: str) -> None:
    make_world(DAY, database_url)

    code, output = preview(MORNING, "--campaign", "double12-2026")
    _, bad_step = preview(MORNING, "--step", "mian")

    assert code == 1
    assert "--campaign is for promotion SOPs; morning-price is a community SOP" in output
    assert "use --group" in output
    assert "--step mian: no such step (did you mean `main`?)" in bad_step


# ---------------------------------------------------------------- lifecycle


def test_lifecycle_preview_renders_for_a_chosen_customer_and_says_who_is_out(
    database_url: str,
) -> None:
    """dormant-recall's coupon on DAY goes to those who turned dormant three days before."""
    make_world(DAY, database_url)
    entered = at_local(DAY - dt.timedelta(days=3), 9, 0)
    add_customers(2, stage_since=entered, region="北京")
    add_customers(1, first=10, stage_since=entered - dt.timedelta(days=7))
    path = SOP / "lifecycle" / "dormant-recall.md"

    code, output = preview(path, "--step", "coupon", "--date", DAY)
    _, outside = preview(path, "--step", "coupon", "--date", DAY, "--customer", "wmTEST0000010")
    _, unknown = preview(path, "--customer", "wmNOBODY")

    assert code == 0, output
    assert "who entered it on 2026-11-21 (3 days before)" in output
    assert "audience 受众: 2 customers (stage dormant, holdout 10%)" in output
    assert "message 文案 for customer wmTEST0000000" in output and "张伟马上发给您" in output
    assert (
        "customer wmTEST0000010 (stage dormant since 2026-11-14) is not in this step's audience"
        in outside
    )
    assert "message 文案 for customer wmTEST0000010" in outside
    assert "--customer wmNOBODY: no customer has this external_userid" in unknown


def test_lifecycle_preview_says_an_empty_entry_day_plainly(database_url: str) -> None:
    make_world(DAY, database_url)
    add_customers(3, stage_since=at_local(DAY - dt.timedelta(days=3), 9, 0))

    code, output = preview(SOP / "lifecycle" / "dormant-recall.md", "--step", "care", "--date", DAY)

    assert code == 0, output
    assert (
        "audience 受众: 0 customers: nobody still in the stage entered it on 2026-11-24; "
        "3 customers match the SOP's audience" in output
    )
    assert "WeCom tasks 群发任务: none" in output
    assert "not in this step's audience, shown as an example" in output
    assert "好久不见" in output


# ---------------------------------------------------------------- promotion


def test_promotion_preview_takes_the_newest_campaign_or_the_one_named(database_url: str) -> None:
    """The recap of the named campaign counts the burst's real orders."""
    make_world(DAY, database_url)
    start = at_local(DAY + dt.timedelta(days=1), 10, 0)
    add_campaign(start, code="double12-2026")
    add_campaign(start + dt.timedelta(days=20), code="double12-late")
    add_campaign(start, code="morning-thing", sop_id="morning-price")
    buyer = add_customers(1)[0]
    add_order(buyer, start + dt.timedelta(hours=1), [("F001", 3, 199)])
    path = SOP / "promotion" / "double12.md"

    _, newest = preview(path)
    code, recap = preview(path, "--step", "recap", "--campaign", "double12-2026", "--date", DAY)
    _, other_sop = preview(path, "--campaign", "morning-thing")
    _, unknown = preview(path, "--campaign", "double11")

    assert "campaign 活动 double12-late · 双12年终大促 (draft)" in newest
    assert code == 0, recap
    assert "step `recap` is due 2026-11-26 20:00 (Asia/Shanghai): NOT on 2026-11-24" in recap
    assert (
        "recap stats 战报: orders from `burst` to the recap's due time: 3 units, 1 buyer" in recap
    )
    assert "1位家人抢到心头好，一共卖出3件" in recap
    # The recap does not name the group: one text, one task per staff member for their groups.
    assert "audience 受众: 4 groups" in recap and "total: 2" in recap
    assert "--campaign morning-thing runs SOP morning-price, not double12" in other_sop
    assert "no campaign `double11`" in unknown


# ---------------------------------------------------------------- triggers


def _latest_order_id() -> int:
    with session_scope() as session:
        return int(session.execute(select(func.max(Order.id))).scalar_one())


def test_trigger_preview_uses_a_recorded_event_else_a_sample(database_url: str) -> None:
    make_world(DAY, database_url)
    first, second = add_customers(2)
    add_order(first, at_local(DAY, 9, 0), [("F001", 2, 399)])
    order_id = _latest_order_id()
    path = SOP / "triggers" / "order-shipped.md"

    code, sample = preview(path, "--date", DAY)
    add_events("order.shipped", [first], payload={"order_id": order_id})
    _, recorded = preview(path, "--event", "order.shipped")
    _, override = preview(path, "--payload", json.dumps({"order_id": 999}))
    _, no_order = preview(path, "--customer", "wmTEST0000001")

    assert code == 0, sample
    assert "a sample `order.shipped` event (none recorded)" in sample
    assert f"for the customer's latest order #{order_id}" in sample
    assert "audience 受众: 0 pending `order.shipped` events" in sample
    assert "订单SO20261124" in sample and "共2件" in sample
    assert "recorded event #" in recorded
    assert "1 pending `order.shipped` event waits for the next drain; 1 touch to send" in recorded
    assert "zhangwei.bj01 张伟: 1" in recorded
    assert "nothing renders: no order of this customer in the event" in override
    assert "--payload '{\"order_id\": 123}'" in override
    assert "customer wmTEST0000001" in no_order
    assert "nothing renders: no order of this customer in the event" in no_order


def test_trigger_preview_refuses_another_event_kind_and_bad_json(database_url: str) -> None:
    make_world(DAY, database_url)
    add_customers(1)
    path = SOP / "triggers" / "welcome.md"

    code, ok = preview(path, "--customer", "wmTEST0000000")
    wrong_code, wrong = preview(path, "--event", "order.shipped")
    json_code, bad_json = preview(path, "--payload", "{order_id: 1}")

    assert code == 0, ok
    assert "客户0您好，我是您的专属顾问张伟" in ok
    assert wrong_code == 1 and "SOP welcome runs on `contact.added` events only" in wrong
    assert json_code == 1 and "--payload is not JSON" in bad_json


def test_price_drop_sample_is_built_from_the_first_product(database_url: str) -> None:
    make_world(DAY, database_url)
    add_customers(1)

    code, output = preview(SOP / "triggers" / "price-drop.md")

    assert code == 0, output
    assert "for 鸡蛋 (F001), 20% off" in output
    assert "您收藏的鸡蛋降价啦！现价4.79元/斤，原价5.99元" in output
