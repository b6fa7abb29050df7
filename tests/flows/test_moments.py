"""Moments (朋友圈) SOPs end to end: the community flow over the WeCom emulator (HTTP), real SQLite,
the real Prefect engine; collect-results reads who posted and reminds the rest by robot."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from channels.emulator.moments import book
from core.clock import at_local, utcnow
from core.errors import UnsettledTouches
from core.settings import PROJECT_ROOT, reset_settings
from flows.community import community_sop
from flows.maintenance import collect_results
from models.db import session_scope
from models.delivery import Delivery
from models.people import Staff, Store
from tests.factories import deliveries, make_world

DAY = dt.date(2026, 11, 25)  # a Wednesday
NINE = at_local(DAY, 9, 0)
ADD = "/cgi-bin/externalcontact/add_moment_task"
ROBOT_KEY = "advisors-webhook-key"
SOP = """---
id: moments-beijing
title: 北京导购朋友圈
kind: community
channel: moments
category: fresh
schedule: {cron: "0 9 * * 3", timezone: Asia/Shanghai, days: everyday}
audience:
  staff: {region: [北京], role: [advisor]}
steps:
  - {name: main, robot: advisors}
---
## main
今天{{ weekday }}是会员日！母婴用品满199减30，到店还能领儿童乐园免费券。
"""


@pytest.fixture
def moments_world(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator
) -> None:
    """Two Beijing advisors, a Beijing manager and a Shanghai advisor; the test SOP folder; a robot."""
    make_world(DAY, database_url)
    with session_scope() as session:
        beijing = session.query(Store).filter(Store.city == "北京").one()
        session.add(Staff(userid="wangfang.bj02", name="王芳", store_id=beijing.id))
        session.add(Staff(userid="zhao.bj", name="赵店长", store_id=beijing.id, role="manager"))
    folder = tmp_path / "sop" / "moments"
    folder.mkdir(parents=True)
    (folder / "moments-beijing.md").write_text(SOP, encoding="utf-8")
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(folder.parent))
    monkeypatch.setenv("SOPFLOW_ROBOT_KEYS", f'{{"advisors": "{ROBOT_KEY}"}}')
    reset_settings()


def rows() -> dict[str, Delivery]:
    return {row.target_id: row for row in deliveries() if row.channel == "moments"}


def test_an_occurrence_creates_one_task_for_the_chosen_staff_and_records_each(
    moments_world, emulator
) -> None:
    """Beijing advisors only (not the manager, not Shanghai); polled while the job runs."""
    emulator.configure(moment_running_polls=1)

    summaries = community_sop(sop_id="moments-beijing", day=DAY, now=NINE)

    moments = book(emulator).moments
    assert emulator.calls[ADD] == 1 and len(moments) == 1
    (moment,) = moments.values()
    assert moment["senders"] == ["wangfang.bj02", "zhangwei.bj01"]
    assert moment["text"]["content"].startswith("今天周三是会员日")
    recorded = rows()
    assert set(recorded) == {"wangfang.bj02", "zhangwei.bj01"}
    mine = recorded["zhangwei.bj01"]
    assert (mine.status, mine.target_kind, mine.sender) == ("sent", "staff", "zhangwei.bj01")
    assert mine.msgid == moment["moment_id"] and mine.sent_at is not None
    assert mine.idempotency_key == "moments-beijing:main:2026-11-25:staff:zhangwei.bj01"
    assert summaries[0]["moment_tasks"] == 1 and summaries[0]["this_run"] == {"sent": 2}


def test_a_rerun_creates_no_second_task(moments_world, emulator) -> None:
    community_sop(sop_id="moments-beijing", day=DAY, now=NINE)
    again = community_sop(sop_id="moments-beijing", day=DAY, now=NINE)

    assert emulator.calls[ADD] == 1
    assert again[0]["moment_tasks"] == 0 and again[0]["this_run"] == {}
    assert {row.status for row in rows().values()} == {"sent"}


def test_a_sender_wecom_refuses_is_skipped_with_the_reason(moments_world, emulator) -> None:
    emulator.configure(moment_invalid_senders=["wangfang.bj02"])

    community_sop(sop_id="moments-beijing", day=DAY, now=NINE)

    refused = rows()["wangfang.bj02"]
    assert refused.status == "skipped" and "invalid_sender_list" in refused.reason
    assert rows()["zhangwei.bj01"].status == "sent"


def test_a_lost_answer_is_settled_from_the_moment_list_without_a_second_task(
    moments_world, emulator
) -> None:
    """WeCom made the task but the answer never came: the run ends unsettled, the next run finds
    the moment by its text and settles the rows; add_moment_task is called once in all."""
    emulator.configure(lose_answer_next=1)
    with pytest.raises(UnsettledTouches, match="without an answer"):
        community_sop(sop_id="moments-beijing", day=DAY, now=NINE)
    assert {row.status for row in rows().values()} == {"sending"}

    community_sop(sop_id="moments-beijing", day=DAY, now=NINE)

    assert emulator.calls[ADD] == 1
    (moment_id,) = book(emulator).moments
    assert {(row.status, row.msgid) for row in rows().values()} == {("sent", moment_id)}


def test_a_refused_task_fails_its_rows_and_the_next_run_sends_them(moments_world, emulator) -> None:
    emulator.configure(fail_next=[{"errcode": 45009, "path": "add_moment_task"}])
    with pytest.raises(UnsettledTouches):
        community_sop(sop_id="moments-beijing", day=DAY, now=NINE)
    assert {(row.status, row.errcode) for row in rows().values()} == {("failed", 45009)}

    community_sop(sop_id="moments-beijing", day=DAY, now=NINE)

    assert emulator.calls[ADD] == 2 and len(book(emulator).moments) == 1
    assert {row.status for row in rows().values()} == {"sent"}


def test_collect_results_reads_who_posted_and_reminds_the_rest(moments_world, emulator) -> None:
    """Zhang Wei posted, Wang Fang did not: reminded by the step's robot after the wait (once per
    poll, at most 3 in 24 h), then `unconfirmed` after a day."""
    emulator.configure(moment_posters=["zhangwei.bj01"])
    community_sop(sop_id="moments-beijing", day=DAY, now=NINE)

    later = utcnow() + dt.timedelta(hours=3)
    totals = collect_results(now=later)

    assert totals["posted"] == 1 and totals["reminded"] == 1
    assert rows()["zhangwei.bj01"].status == "delivered"
    assert rows()["wangfang.bj02"].status == "sent"
    (post,) = emulator.state()["robot_posts"][ROBOT_KEY]
    assert post["text"]["mentioned_list"] == ["wangfang.bj02"]
    assert "朋友圈" in post["text"]["content"]
    for minutes in (1, 2, 3):
        collect_results(now=later + dt.timedelta(minutes=minutes))
    assert len(emulator.state()["robot_posts"][ROBOT_KEY]) == 3  # WeCom's 3 in 24 h, kept

    collect_results(now=utcnow() + dt.timedelta(hours=25))

    missed = rows()["wangfang.bj02"]
    assert missed.status == "unconfirmed" and "did not post" in missed.reason
    assert rows()["zhangwei.bj01"].status == "delivered"


def test_a_moment_carries_its_images_uploaded_once(moments_world, emulator, tmp_path) -> None:
    """`attachments:` images under sop/media/ reach add_moment_task as media ids (media/upload)."""
    folder = tmp_path / "sop"
    (folder / "media").mkdir()
    shutil.copy(PROJECT_ROOT / "sop" / "media" / "pork.jpg", folder / "media" / "pork.jpg")
    path = folder / "moments" / "moments-beijing.md"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace(
            "{name: main, robot: advisors}",
            "{name: main, robot: advisors, attachments: [image: media/pork.jpg]}",
        ),
        encoding="utf-8",
    )

    community_sop(sop_id="moments-beijing", day=DAY, now=NINE)

    (moment,) = book(emulator).moments.values()
    (image,) = moment["attachments"]
    assert image["msgtype"] == "image" and image["image"]["media_id"]
    assert emulator.calls["/cgi-bin/media/upload"] == 1
    assert {row.status for row in rows().values()} == {"sent"}
