"""Scheduled 1:1 to a segment: the weekly member day (community, channel customer) and 1:1
promotion steps, through the real flows, plan-day reservations and previews."""

from __future__ import annotations

import datetime as dt
import shutil
from collections import Counter
from pathlib import Path

import pytest

from core.clock import at_local
from core.errors import SopError
from core.settings import PROJECT_ROOT, get_settings, reset_settings
from engine.preview import PreviewRequest, preview_sop
from flows.community import community_sop
from flows.maintenance import plan_day
from flows.promotion import promotion_step
from models.db import session_scope
from models.people import Customer
from soplang.loader import find_sop
from tests.factories import add_campaign, add_customers, deliveries, make_world, tag_customers

WEDNESDAY = dt.date(2026, 11, 25)
HOLIDAY_WEDNESDAY = dt.date(2026, 10, 7)  # 国庆: not a working day
CODE = "momweek-2026"
START = at_local(dt.date(2026, 11, 28), 10, 0)
PREVIEW_AT = at_local(dt.date(2026, 11, 27), 20, 0)
RECAP_AT = at_local(dt.date(2026, 11, 29), 20, 0)
MOM_WEEK = """---
id: mom-week
title: 母婴周 · 1:1 提醒
kind: promotion
channel: customer
category: baby
audience:
  customers: {tags_any: [宝妈]}
steps:
  - {name: preview, at: "-1d 20:00"}
  - {name: recap, at: "+1d 20:00"}
---
## preview
{{ customer.owner.name }}提醒您：{{ campaign.name }}明天{{ campaign.starts_at | time_cn }}开始，{{ items | length }}款好物{{ items | map(attribute="discount") | min | zhe }}起。
## recap
{{ campaign.name }}战报：卖出{{ stats.units_sold }}件，{{ customer.owner.name }}谢谢您的支持。
"""


@pytest.fixture
def world(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    """The shipped member day and a 1:1 promotion; 30 customers, 12 of them tagged 宝妈 (one of
    those also 投诉中, whom the member day leaves out)."""
    folder = tmp_path / "sop"
    folder.mkdir()
    shutil.copy(PROJECT_ROOT / "sop" / "community" / "member-day.md", folder)
    (folder / "mom-week.md").write_text(MOM_WEEK, encoding="utf-8")
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(folder))
    reset_settings()
    make_world(WEDNESDAY, database_url)
    moms = add_customers(8) + add_customers(4, owner="lina.sh01", first=8, region="北京")
    others = add_customers(18, first=12)
    tag_customers("宝妈", moms)
    tag_customers("投诉中", moms[:1])
    return {"moms": moms, "others": others}


def external_ids(customer_ids: list[int]) -> set[str]:
    with session_scope() as session:
        return {session.get(Customer, i).external_userid for i in customer_ids}


def sent_to(emulator) -> list[str]:
    return [target for message in emulator.messages for target in message["targets"]]


def test_the_member_day_goes_1to1_to_exactly_the_tagged_segment_once(world, emulator) -> None:
    moms = world["moms"][1:]  # the first is 投诉中

    summaries = community_sop(sop_id="member-day", day=WEDNESDAY, now=at_local(WEDNESDAY, 10))
    again = community_sop(sop_id="member-day", day=WEDNESDAY, now=at_local(WEDNESDAY, 11))

    rows = deliveries()
    assert {r.customer_id for r in rows} == set(moms)
    assert Counter(r.status for r in rows) == {"sent": len(moms)}
    assert {r.idempotency_key.split(":customer:")[0] for r in rows} == {
        f"member-day:main:{WEDNESDAY.isoformat()}"
    }
    assert sorted(sent_to(emulator)) == sorted(external_ids(moms))
    assert {m["chat_type"] for m in emulator.messages} == {"single"}
    # The text reads region and owner only: one WeCom task per staff member and region.
    assert len(emulator.messages) == 2
    assert "周三会员日到啦" in emulator.messages[0]["content"]
    assert summaries[0]["this_run"] == {"sent": len(moms)}
    assert again[0]["this_run"] == {} and len(sent_to(emulator)) == len(moms)


def test_the_member_day_sends_nothing_and_records_nothing_on_a_days_off_day(
    world, emulator
) -> None:
    summaries = community_sop(
        sop_id="member-day", day=HOLIDAY_WEDNESDAY, now=at_local(HOLIDAY_WEDNESDAY, 10)
    )

    assert summaries == [] and deliveries() == [] and emulator.messages == []


def test_plan_day_reserves_the_member_day_and_the_1to1_promotion_for_their_customers(
    world,
) -> None:
    add_campaign(START, code=CODE, sop_id="mom-week")
    moms = world["moms"]

    wednesday = plan_day(day=WEDNESDAY, now=at_local(WEDNESDAY, 0, 5))
    preview_day = plan_day(day=PREVIEW_AT.date(), now=at_local(PREVIEW_AT.date(), 0, 5))
    holiday = plan_day(day=HOLIDAY_WEDNESDAY, now=at_local(HOLIDAY_WEDNESDAY, 0, 5))

    assert wednesday["reserved"] == {"member-day:main": len(moms) - 1}
    assert preview_day["reserved"] == {"mom-week:preview": len(moms)}
    assert holiday["reserved"] == {}


def test_a_1to1_promotion_step_sends_with_the_campaign_once_per_customer(world, emulator) -> None:
    add_campaign(START, code=CODE, sop_id="mom-week")
    moms = world["moms"]

    first = promotion_step(campaign_code=CODE, step="preview", now=PREVIEW_AT)
    again = promotion_step(
        campaign_code=CODE, step="preview", now=PREVIEW_AT + dt.timedelta(minutes=30)
    )
    recap = promotion_step(campaign_code=CODE, step="recap", now=RECAP_AT)

    assert first["this_run"] == {"sent": len(moms)} and first["occurrence"] == CODE
    assert again["this_run"] == {} and again["already_done"] == {"sent": len(moms)}
    assert recap["this_run"] == {"sent": len(moms)}
    rows = deliveries()
    assert Counter((r.step, r.status) for r in rows) == {
        ("preview", "sent"): len(moms),
        ("recap", "sent"): len(moms),
    }
    assert {r.idempotency_key for r in rows if r.step == "preview"} == {
        f"mom-week:preview:{CODE}:customer:{e}" for e in external_ids(moms)
    }
    previews = [m["content"] for m in emulator.messages if "提醒您" in m["content"]]
    assert previews and all("双12年终大促明天10点开始，3款好物" in t for t in previews)
    assert {m["chat_type"] for m in emulator.messages} == {"single"}
    assert len(sent_to(emulator)) == 2 * len(moms)


def test_the_member_day_previews_its_segment_and_its_day_off(world) -> None:
    spec = find_sop("member-day", get_settings().sop_dir)

    wednesday = preview_sop(spec, PreviewRequest(day=WEDNESDAY))
    holiday = preview_sop(spec, PreviewRequest(day=HOLIDAY_WEDNESDAY))

    assert wednesday.audience == "11 customers (tags_any 宝妈, tags_none 投诉中)"
    assert wednesday.when[0].startswith("runs on 2026-11-25 (周三) at 10:00")
    assert "周三会员日到啦" in (wednesday.text or "")
    assert holiday.when[0].startswith("does NOT run on 2026-10-07")
    with pytest.raises(SopError, match="--group is for group SOPs"):
        preview_sop(spec, PreviewRequest(day=WEDNESDAY, group="wrTEST0000"))


def test_a_1to1_promotion_step_previews_its_customers_with_the_campaign(world) -> None:
    add_campaign(START, code=CODE, sop_id="mom-week")
    spec = find_sop("mom-week", get_settings().sop_dir)
    mom = sorted(external_ids(world["moms"]))[0]

    shown = preview_sop(spec, PreviewRequest(day=PREVIEW_AT.date(), customer=mom))

    assert shown.audience == "12 customers (tags_any 宝妈)"
    assert any(line.startswith(f"campaign 活动 {CODE}") for line in shown.when)
    assert shown.shown_for is not None and mom in shown.shown_for
    assert shown.text is not None and "双12年终大促明天10点开始" in shown.text
    assert deliveries() == []  # a preview records nothing
    with pytest.raises(SopError, match="use --campaign or --customer"):
        preview_sop(spec, PreviewRequest(day=PREVIEW_AT.date(), group="wrTEST0000"))
