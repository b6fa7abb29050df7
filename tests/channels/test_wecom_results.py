"""The WeCom client's results side against the emulator: send results, tasks, reminders, lists."""

from __future__ import annotations

import datetime as dt

import pytest

from channels.base import MassMessage
from core.errors import ChannelRejected, ChannelTransient
from tests.channels.test_wecom import RESULT, SEND, calls, group, single

LIST = "/cgi-bin/externalcontact/get_groupmsg_list_v2"


def test_send_results_page_through_cursor_with_sent_and_deleted_statuses(client, emulator):
    targets = [f"wm-{i}" for i in range(2500)]
    emulator.configure(deleted_ids=["wm-7", "wm-2100"])
    msgid = client.send_mass(single(*targets)).msgid

    rows = list(client.iter_groupmsg_send_result(msgid, "lisi", limit=1000))

    assert [r["external_userid"] for r in rows] == targets
    assert calls(emulator, RESULT) == 3
    statuses = {r["external_userid"]: r["status"] for r in rows}
    assert statuses["wm-7"] == statuses["wm-2100"] == 2
    assert {s for t, s in statuses.items() if t not in ("wm-7", "wm-2100")} == {1}
    assert all("send_time" in r for r in rows if r["status"] == 1)
    assert all("chat_id" not in r for r in rows)


def test_send_results_are_not_sent_until_the_sender_confirms(client, emulator, clock):
    emulator.configure(confirm_delay_seconds=600)
    msgid = client.send_mass(single("wm-1", "wm-2")).msgid

    before = client.get_groupmsg_send_result(msgid, "lisi")
    clock.advance(600)
    after = client.get_groupmsg_send_result(msgid, "lisi")

    assert [r["status"] for r in before["send_list"]] == [0, 0]
    assert [r["status"] for r in after["send_list"]] == [1, 1]
    assert before["next_cursor"] == ""


def test_group_send_results_carry_chat_id_not_external_userid(client):
    msgid = client.send_mass(group("wr-1", "wr-2")).msgid

    rows = list(client.iter_groupmsg_send_result(msgid, "zhangsan"))

    assert [r["chat_id"] for r in rows] == ["wr-1", "wr-2"]
    assert all("external_userid" not in r for r in rows)


def test_groupmsg_task_reports_sender_status(client, emulator, clock):
    emulator.configure(confirm_delay_seconds=60)
    msgid = client.send_mass(group("wr-1")).msgid

    (pending,) = client.iter_groupmsg_task(msgid)
    clock.advance(60)
    (done,) = client.get_groupmsg_task(msgid)["task_list"]

    assert pending == {"userid": "zhangsan", "status": 0}
    assert done["status"] == 2 and done["send_time"] == int(clock.now)


def test_results_right_after_creation_raise_transient_41063(client, emulator):
    emulator.configure(dispatch_seconds=5)
    msgid = client.send_mass(single("wm-1")).msgid

    with pytest.raises(ChannelTransient) as caught:
        client.get_groupmsg_send_result(msgid, "lisi")

    assert caught.value.errcode == 41063


def test_fourth_reminder_in_a_day_is_rejected_with_41094(client):
    msgid = client.send_mass(single("wm-1")).msgid
    for _ in range(3):
        client.remind_groupmsg_send(msgid)

    with pytest.raises(ChannelRejected) as caught:
        client.remind_groupmsg_send(msgid)

    assert caught.value.errcode == 41094


def test_groupmsg_list_v2_lists_messages_in_the_window(client, clock):
    first = client.send_mass(single("wm-1")).msgid
    client.send_mass(group("wr-1"))
    start = int(clock.now) - 10

    page = client.get_groupmsg_list_v2("single", start, start + 3600)

    assert [m["msgid"] for m in page["group_msg_list"]] == [first]


def at(clock_value: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(clock_value, dt.UTC)


def test_find_sent_pages_through_list_v2_and_keeps_exact_text_from_the_sender(
    client, emulator, clock
):
    start = at(clock.now)
    for i in range(120):
        client.send_mass(single(f"wm-{i}", content="会员日提醒" if i % 2 else "其他"))
    client.send_mass(group("wr-1", content="会员日提醒"))  # another chat_type
    client.send_mass(MassMessage("single", "wangwu", ("wm-1",), "会员日提醒"))  # another sender
    clock.advance(5)

    found = client.find_sent("lisi", "会员日提醒", start, at(clock.now), chat_type="single")

    assert len(found) == 60 and {m["creator"] for m in found} == {"lisi"}
    assert {m["msgid"] for m in found} <= {m["msgid"] for m in emulator.messages}
    assert calls(emulator, LIST) == 2  # lisi's 120 single messages, 100 a page


def test_find_sent_answers_whether_a_call_whose_answer_was_lost_reached_wecom(
    client, emulator, clock
):
    start = at(clock.now)
    emulator.configure(lose_answer_next=1)

    with pytest.raises(ChannelTransient):
        client.send_mass(single("wm-1", "wm-2", content="双十一预告"))
    found = client.find_sent("lisi", "双十一预告", start, at(clock.now + 1), chat_type="single")
    missing = client.find_sent("lisi", "别的内容", start, at(clock.now + 1), chat_type="single")

    (recorded,) = emulator.messages
    assert [m["msgid"] for m in found] == [recorded["msgid"]] and missing == []
    assert calls(emulator, SEND) == 1  # the lost answer was not retried by the transport


def test_find_sent_refuses_a_window_over_31_days(client):
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)

    with pytest.raises(ValueError):
        client.find_sent("lisi", "x", start, start + dt.timedelta(days=32), chat_type="single")


def test_iter_groupmsg_list_v2_follows_the_cursor(client, emulator, clock):
    for i in range(5):
        client.send_mass(group(f"wr-{i}"))

    rows = list(client.iter_groupmsg_list_v2("group", int(clock.now) - 1, int(clock.now), limit=2))

    assert len(rows) == 5 and calls(emulator, LIST) == 3
