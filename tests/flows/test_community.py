"""The community flow end to end: real SQLite, the real Prefect engine, the outbox and the emulator."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from channels.emulator.core import WeComEmulator
from core.clock import at_local
from core.errors import SopDefinitionError
from core.settings import PROJECT_ROOT, reset_settings
from flows.community import community_sop
from models.db import session_scope
from models.delivery import Delivery, Message
from tests.factories import add_deals, deliveries, make_world

DAY = dt.date(2026, 11, 24)  # a Tuesday, a working day
MORNING = at_local(DAY, 8, 30)


def texts_by_target() -> dict[str, str]:
    with session_scope() as session:
        rows = session.execute(
            select(Delivery.target_id, Message.content).join(
                Message, Message.id == Delivery.message_id
            )
        ).all()
    return dict(rows)


@pytest.fixture
def world(database_url: str):
    return make_world(DAY, database_url)


def test_morning_price_records_one_sent_row_per_live_group_with_its_theme_deals(world) -> None:
    summaries = community_sop(sop_id="morning-price", day=DAY, now=MORNING)

    rows = {row.target_id: row for row in deliveries()}
    live = ["北京生鲜爱好者群", "北京生鲜二群", "上海母婴用品群", "上海酒水品鉴群"]
    assert set(rows) == {world.chat_ids[name] for name in live}
    beijing = rows[world.chat_ids["北京生鲜爱好者群"]]
    assert (beijing.status, beijing.sender, beijing.channel) == ("sent", "zhangwei.bj01", "outbox")
    assert beijing.msgid and beijing.flow_run_id and beijing.sent_at
    assert beijing.idempotency_key == f"morning-price:main:2026-11-24:group:{beijing.target_id}"
    wine = rows[world.chat_ids["上海酒水品鉴群"]]
    assert wine.status == "skipped" and "no morning deals" in wine.reason
    texts = texts_by_target()
    assert "鸡蛋" in texts[beijing.target_id] and "3.99" in texts[beijing.target_id]
    assert "平谷大桃" in texts[beijing.target_id]  # Beijing's own deal
    shanghai = texts[world.chat_ids["上海母婴用品群"]]
    assert "婴儿纸尿裤" in shanghai and "鸡蛋" not in shanghai and "平谷大桃" not in shanghai
    assert summaries[0]["this_run"] == {
        "sent": 3,
        "skipped:no morning deals today for this group's theme": 1,
    }


def test_second_run_of_the_same_occurrence_sends_nothing_again(world, database_url: str) -> None:
    community_sop(sop_id="morning-price", day=DAY, now=MORNING)
    before = [(r.id, r.status, r.msgid) for r in deliveries()]

    summaries = community_sop(sop_id="morning-price", day=DAY, now=MORNING)

    assert [(r.id, r.status, r.msgid) for r in deliveries()] == before
    assert summaries[0]["this_run"] == {}
    assert summaries[0]["already_done"] == {"sent": 3, "skipped": 1}
    outbox_lines = [
        line
        for path in (database_url_dir(database_url) / "data" / "outbox").glob("*.jsonl")
        for line in path.read_text(encoding="utf-8").splitlines()
    ]
    assert len(outbox_lines) == 3


def database_url_dir(url: str) -> Path:
    return Path(url.split(":///", 1)[1]).parent


def test_evening_flash_sale_uses_the_evening_deals(world) -> None:
    community_sop(sop_id="evening-flash-sale", day=DAY, now=MORNING)

    texts = texts_by_target()
    beijing = texts[world.chat_ids["北京生鲜爱好者群"]]
    assert "进口车厘子" in beijing and "鸡蛋" not in beijing


def test_groups_are_sent_through_the_emulator_by_their_owner(
    world, emulator: WeComEmulator
) -> None:
    community_sop(sop_id="morning-price", day=DAY, now=MORNING)

    sent = [r for r in deliveries() if r.status == "sent"]
    assert len(sent) == 3 and all(r.channel == "wecom" and r.msgid for r in sent)
    messages = emulator.messages
    assert {(m["chat_type"], m["sender"]) for m in messages} == {
        ("group", "zhangwei.bj01"),
        ("group", "lina.sh01"),
    }
    recorded_chat_ids = {c for m in messages for c in m["targets"]}
    assert recorded_chat_ids == {r.target_id for r in sent}


def test_a_group_wecom_refuses_is_recorded_failed_and_retried_by_the_next_run(
    world, emulator
) -> None:
    refused = world.chat_ids["上海母婴用品群"]
    requests.post(f"{emulator.url}/emulator/config", json={"unknown_ids": [refused]}, timeout=5)

    state = community_sop(sop_id="morning-price", day=DAY, now=MORNING, return_state=True)

    assert state.is_failed() and "1 due but not sent" in state.message
    row = next(r for r in deliveries() if r.target_id == refused)
    assert row.status == "failed" and "fail_list" in row.reason
    requests.post(f"{emulator.url}/emulator/config", json={"unknown_ids": []}, timeout=5)
    community_sop(sop_id="morning-price", day=DAY, now=MORNING)
    row = next(r for r in deliveries() if r.target_id == refused)
    assert row.status == "sent"
    assert sum(1 for r in deliveries() if r.status == "sent") == 3


def test_a_busy_wecom_is_retried_and_the_groups_are_sent_once(world, emulator) -> None:
    requests.post(f"{emulator.url}/emulator/config", json={"fail_next": [-1]}, timeout=5)

    community_sop(sop_id="morning-price", day=DAY, now=MORNING)

    assert sorted(r.status for r in deliveries()) == ["sent", "sent", "sent", "skipped"]
    chat_ids = [c for m in emulator.messages for c in m["targets"]]
    assert len(chat_ids) == len(set(chat_ids)) == 3


def test_a_run_is_named_after_its_sop_and_occurrence(world) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    community_sop(sop_id="evening-flash-sale", day=DAY, now=MORNING)
    run_id = deliveries()[0].flow_run_id

    async def name() -> str:
        async with get_client() as client:
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
            )
            return runs[0].name

    import asyncio

    assert asyncio.run(name()) == "evening-flash-sale 2026-11-24"


def test_outbox_line_has_the_message_and_its_targets(world, database_url: str) -> None:
    community_sop(sop_id="morning-price", day=DAY, now=MORNING)

    lines = [
        json.loads(line)
        for path in (database_url_dir(database_url) / "data" / "outbox").glob("*.jsonl")
        for line in path.read_text(encoding="utf-8").splitlines()
    ]
    assert {line["chat_type"] for line in lines} == {"group"}
    assert sum(len(line["targets"]) for line in lines) == 3


@pytest.mark.postgres
def test_the_community_flow_runs_the_same_on_postgresql(postgres_url: str) -> None:
    make_world(DAY, postgres_url)

    community_sop(sop_id="morning-price", day=DAY, now=MORNING)
    community_sop(sop_id="morning-price", day=DAY, now=MORNING)

    assert sorted(r.status for r in deliveries()) == ["sent", "sent", "sent", "skipped"]


@pytest.fixture
def sop_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped community SOPs that a test may edit."""
    folder = tmp_path / "sop"
    shutil.copytree(PROJECT_ROOT / "sop" / "community", folder / "community")
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(folder))
    reset_settings()
    return folder


def edit(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")


def test_a_workdays_sop_sends_nothing_on_a_public_holiday_but_runs_on_a_makeup_saturday(
    world, sop_dir: Path
) -> None:
    edit(sop_dir / "community" / "morning-price.md", "days: everyday", "days: workdays")
    add_deals(dt.date(2026, 10, 1))  # 国庆节: deals exist, yet it is no working day
    add_deals(dt.date(2026, 10, 10))  # a Saturday worked in exchange (调休)

    assert (
        community_sop(
            sop_id="morning-price", day=dt.date(2026, 10, 1), now=at_local(dt.date(2026, 10, 1), 9)
        )
        == []
    )
    assert deliveries() == []
    community_sop(
        sop_id="morning-price", day=dt.date(2026, 10, 10), now=at_local(dt.date(2026, 10, 10), 9)
    )
    assert {r.occurrence for r in deliveries()} == {"2026-10-10"}


def test_an_sop_with_a_template_error_fails_before_anything_is_recorded(
    world, sop_dir: Path
) -> None:
    edit(sop_dir / "community" / "morning-price.md", "{{ group.name }}", "{{ group.nmae }}")

    with pytest.raises(SopDefinitionError) as raised:
        community_sop(sop_id="morning-price", day=DAY, now=MORNING)

    assert "morning-price.md:" in str(raised.value) and "group.nmae" in str(raised.value)
    assert deliveries() == []


def test_a_run_in_quiet_hours_defers_and_the_scheduled_run_sends_once(world) -> None:
    night = community_sop(sop_id="morning-price", day=DAY, now=at_local(DAY, 2, 30))

    assert night[0]["this_run"] == {"planned:deferred: quiet hours": 4}
    assert not any(r.status == "sent" for r in deliveries())
    community_sop(sop_id="morning-price", day=DAY, now=MORNING)
    assert sorted(r.status for r in deliveries()) == ["sent", "sent", "sent", "skipped"]


def test_the_run_that_sends_a_deferred_row_is_the_one_it_records(world) -> None:
    community_sop(sop_id="morning-price", day=DAY, now=at_local(DAY, 2, 30))
    planned_by = {r.flow_run_id for r in deliveries()}

    community_sop(sop_id="morning-price", day=DAY, now=MORNING)

    sent_by = {r.flow_run_id for r in deliveries() if r.status == "sent"}
    assert len(planned_by) == len(sent_by) == 1 and planned_by != sent_by


def run_artifact(flow_run_id: str, key: str) -> Any:
    """The artifact `key` a flow run published: a markdown text or a table's rows."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[key]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
            )
        )
    data = artifact.data
    return json.loads(data) if artifact.type == "table" else data


def test_a_night_run_says_when_its_touches_go_and_which_run_sends_them_with_a_sample(
    world,
) -> None:
    night = community_sop(sop_id="morning-price", day=DAY, now=at_local(DAY, 2, 26))
    run_id = deliveries()[0].flow_run_id

    waits = (
        "4 touches wait for quiet hours to end at 08:00 (2026-11-24); the scheduled run at "
        "08:30 (`morning-price 2026-11-24`) sends them"
    )
    summary = run_artifact(run_id, "morning-price-main-sample")
    assert waits in summary.splitlines()[2]  # the first thing said, under the title
    assert "## Rendered sample" in summary and "鸡蛋3.99元/斤" in summary
    assert "for 北京生鲜爱好者群:" in summary
    table = run_artifact(run_id, "morning-price-main-outcomes")
    assert table == [{"outcome": "waiting for quiet hours to end", "touches": 4, "this run": 4}]
    assert (
        night[0]["in_words"]
        == f"nothing sent; {waits}, as would any run of this occurrence started from then on"
    )
    for jargon in ("planned", "Delivery", "rows", "deferred"):
        assert jargon not in summary and jargon not in night[0]["in_words"]


def test_the_morning_run_says_what_it_sent_in_words(world) -> None:
    community_sop(sop_id="morning-price", day=DAY, now=at_local(DAY, 2, 26))

    morning = community_sop(sop_id="morning-price", day=DAY, now=MORNING)

    # (The wine group, skipped for want of deals, stays counted to the night run that recorded it.)
    assert morning[0]["in_words"].startswith("this run's touches: 3 sent")
    sent_by = next(r.flow_run_id for r in deliveries() if r.status == "sent")
    summary = run_artifact(sent_by or "", "morning-price-main-sample")
    assert "quiet hours" not in summary
