"""Moments (朋友圈) in the engine and the emulator, over HTTP: staff selection, tasks split by
size, the moment contract (attachments, paging, faults)."""

from __future__ import annotations

import datetime as dt

import pytest

from channels.emulator.moments import book
from channels.wecom import WeComClient
from channels.wecom_moments import (
    JOB_DONE,
    add_moment_task,
    get_moment_task_result,
    iter_moment_list,
    iter_moment_task,
)
from core.clock import utcnow
from core.errors import ChannelRejected
from core.settings import get_settings
from engine.moments import chosen_staff, send_moments
from engine.moments_results import collect_moments
from models.db import session_scope
from models.people import Staff, Store
from soplang.spec import SopSpec
from soplang.staff_audience import StaffAudience
from tests.factories import deliveries

DAY = dt.date(2026, 11, 25)
STAFF = [
    # userid, store code, city, role
    ("bj.a", "S-BJ1", "北京", "advisor"),
    ("bj.b", "S-BJ2", "北京", "advisor"),
    ("bj.boss", "S-BJ1", "北京", "manager"),
    ("sh.a", "S-SH1", "上海", "advisor"),
    ("hq.a", None, None, "advisor"),  # no store
]


@pytest.fixture
def staff(database_url: str) -> None:
    with session_scope() as session:
        stores: dict[str, Store] = {}
        for _, code, city, _ in STAFF:
            if code and code not in stores:
                stores[code] = Store(code=code, name=f"{city}{code[-1]}号店", city=city)
        session.add_all(stores.values())
        session.flush()
        for userid, code, _, role in STAFF:
            store_id = stores[code].id if code else None
            session.add(Staff(userid=userid, name=userid, store_id=store_id, role=role))


def spec(audience: dict[str, object]) -> SopSpec:
    return SopSpec.model_validate(
        {
            "id": "moments-test",
            "title": "朋友圈",
            "kind": "community",
            "channel": "moments",
            "category": "fresh",
            "schedule": {"cron": "0 9 * * 3"},
            "audience": {"staff": audience},
            "sections": {"main": {"text": "会员日满199减30", "first_line": 3, "heading_line": 2}},
        }
    )


@pytest.mark.parametrize(
    ("audience", "chosen"),
    [
        ({}, ["bj.a", "bj.b", "bj.boss", "hq.a", "sh.a"]),
        ({"region": ["北京"]}, ["bj.a", "bj.b", "bj.boss"]),
        ({"store": ["S-BJ1"], "role": ["advisor"]}, ["bj.a"]),
        ({"store": ["北京2号店", "S-SH1"]}, ["bj.b", "sh.a"]),
        ({"role": "manager"}, ["bj.boss"]),
    ],
)
def test_the_staff_audience_chooses_by_store_region_and_role(staff, audience, chosen) -> None:
    with session_scope() as session:
        assert chosen_staff(StaffAudience.model_validate(audience), session=session) == chosen


def test_staff_beyond_one_task_are_split_into_more_tasks(staff, emulator) -> None:
    with WeComClient.from_settings(get_settings()) as client:
        summary = send_moments(
            spec({"role": ["advisor"]}), "main", DAY, client, sleep=lambda _: None, max_senders=2
        )

    senders = [m["senders"] for m in book(emulator).moments.values()]
    assert senders == [["bj.a", "bj.b"], ["hq.a", "sh.a"]]
    assert summary["moment_tasks"] == 2 and summary["this_run"] == {"sent": 4}
    assert len({row.msgid for row in deliveries()}) == 2


def test_the_client_speaks_the_moment_contract(emulator) -> None:
    emulator.configure(moment_posters=["a"], moment_running_polls=1)
    with WeComClient.from_settings(get_settings()) as client:
        jobid = add_moment_task(client, "周五食谱", ["a", "b"])
        assert get_moment_task_result(client, jobid).status == 1
        done = get_moment_task_result(client, jobid)
        assert done.status == JOB_DONE and done.moment_id and done.invalid_senders == ()
        listed = list(iter_moment_list(client, utcnow() - dt.timedelta(minutes=1), utcnow()))
        assert [m["text"]["content"] for m in listed] == ["周五食谱"]
        tasks = {t["userid"]: t["publish_status"] for t in iter_moment_task(client, done.moment_id)}
        assert tasks == {"a": 1, "b": 0}


@pytest.mark.parametrize(
    ("attachments", "errcode"),
    [
        ([{"msgtype": "image", "image": {"media_id": "m"}}] * 10, 41064),
        ([{"msgtype": "miniprogram", "miniprogram": {}}], 41065),
        ([{"msgtype": "link", "link": {"url": "u"}}, {"msgtype": "image", "image": {}}], 41065),
    ],
)
def test_moments_refuse_attachments_wecom_refuses(emulator, attachments, errcode) -> None:
    with (
        WeComClient.from_settings(get_settings()) as client,
        pytest.raises(ChannelRejected) as refused,
    ):
        add_moment_task(client, "text", ["a"], attachments)
    assert refused.value.errcode == errcode


def test_a_job_still_running_when_the_run_ends_is_settled_by_the_next_poll(staff, emulator) -> None:
    """Rows keep their jobid while WeCom works; collect-results finishes them, no second task."""
    emulator.configure(moment_running_polls=1000)
    with WeComClient.from_settings(get_settings()) as client:
        summary = send_moments(
            spec({"region": ["上海"]}), "main", DAY, client, sleep=lambda _: None
        )
        assert summary["unsettled"] == {"sending": 1}
        (row,) = deliveries()
        assert row.status == "sending" and row.msgid and row.msgid.startswith("momentjob")

        emulator.configure(moment_running_polls=0)
        totals = collect_moments(client, robots=dict, remind=None)

    (row,) = deliveries()
    (moment_id,) = book(emulator).moments
    assert (row.status, row.msgid) == ("delivered", moment_id)  # made, then read as posted
    assert (totals["sent"], totals["posted"]) == (1, 1)
    assert emulator.calls["/cgi-bin/externalcontact/add_moment_task"] == 1
