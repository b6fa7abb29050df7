"""What the receiver's events change: contacts deleted by whom, group members and their joins."""

from __future__ import annotations

import datetime as dt
import time

import requests
from sqlmodel import select

from callback.server import Receiver
from channels.emulator.directory_world import DirectoryWorld
from models.callbacks import WecomCallback
from models.commerce import Event
from models.db import session_scope
from models.directory import GroupMemberLeft
from models.people import Customer, CustomerGroup, GroupMember, Tag
from tests.callback.sealing import event_xml, post
from tests.factories import add_customers, make_world


def deliver(receiver: Receiver, **fields: str | list[str]) -> None:
    """Post a sealed event and wait until the worker has applied it."""
    posted = post(event_xml(**fields))
    url = f"{receiver.url}/wecom/callback"
    assert requests.post(url, params=posted.params, data=posted.body, timeout=10).status_code == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with session_scope(readonly=True) as session:
            rows = session.exec(select(WecomCallback)).all()
        if rows and all(r.processed_at for r in rows):
            return
        assert not any(r.last_error for r in rows), [r.last_error for r in rows]
        time.sleep(0.05)
    raise AssertionError("the event was not applied within 10 s")


def events(kind: str) -> list[Event]:
    with session_scope(readonly=True) as session:
        return list(session.exec(select(Event).where(Event.kind == kind)).all())


def test_a_customer_deleting_their_advisor_marks_them_deleted_by_the_customer(
    receiver: Receiver,
) -> None:
    make_world(dt.date(2026, 11, 24))
    (customer_id,) = add_customers(1)
    with session_scope(readonly=True) as session:
        external_userid = session.get(Customer, customer_id).external_userid
    deliver(receiver, Event="change_external_contact", ChangeType="del_follow_user",
            UserID="zhangwei.bj01", ExternalUserID=external_userid)  # fmt: skip
    with session_scope(readonly=True) as session:
        customer = session.get(Customer, customer_id)
        assert customer.contact_state == "deleted" and customer.deleted_at is not None
    (deleted,) = events("contact.deleted")
    assert deleted.payload["by"] == "customer" and deleted.payload["userid"] == "zhangwei.bj01"


def test_members_joining_a_group_are_added_and_each_fires_group_member_joined(
    receiver: Receiver, directory: DirectoryWorld
) -> None:
    world = make_world(dt.date(2026, 11, 24))
    joiners = add_customers(2)
    chat_id = world.chat_ids["北京生鲜爱好者群"]
    with session_scope(readonly=True) as session:
        ids = [session.get(Customer, c).external_userid for c in joiners]
        before = session.exec(select(CustomerGroup).where(CustomerGroup.chat_id == chat_id)).one()
    deliver(receiver, Event="change_external_chat", ChatId=chat_id, ChangeType="update",
            UpdateDetail="add_member", JoinScene="1", MemChangeCnt="3",
            MemChangeList=[*ids, "wmStranger01"])  # fmt: skip
    with session_scope(readonly=True) as session:
        group = session.exec(select(CustomerGroup).where(CustomerGroup.chat_id == chat_id)).one()
        members = session.exec(select(GroupMember).where(GroupMember.group_id == group.id)).all()
    assert {m.customer_id for m in members} == set(joiners)
    assert group.member_count == before.member_count + 3
    joined = events("group.member_joined")
    assert sorted(e.customer_id for e in joined) == sorted(joiners)
    assert {e.payload["chat_id"] for e in joined} == {chat_id}

    deliver(receiver, Event="change_external_chat", ChatId=chat_id, ChangeType="update",
            UpdateDetail="del_member", QuitScene="0", MemChangeCnt="1",
            MemChangeList=[ids[0]], CreateTime="1700000050")  # fmt: skip
    with session_scope(readonly=True) as session:
        members = session.exec(select(GroupMember).where(GroupMember.group_id == group.id)).all()
        left = session.exec(select(GroupMemberLeft)).all()
    assert {m.customer_id for m in members} == {joiners[1]}
    # The membership is kept with when it ended, as the directory sync keeps it.
    assert [(r.group_id, r.customer_id) for r in left] == [(group.id, joiners[0])]
    assert left[0].left_at is not None


def test_a_renamed_group_is_read_again_and_a_dismissed_one_marked(
    receiver: Receiver, directory: DirectoryWorld
) -> None:
    world = make_world(dt.date(2026, 11, 24))
    chat_id = world.chat_ids["上海母婴用品群"]
    directory.groups[chat_id] = {"chat_id": chat_id, "name": "上海母婴二群", "owner": "lina.sh01",
                                 "create_time": 1700000000, "status": 0, "notice": "",
                                 "version": 1, "members": []}  # fmt: skip
    deliver(receiver, Event="change_external_chat", ChatId=chat_id, ChangeType="update",
            UpdateDetail="change_name")  # fmt: skip
    deliver(receiver, Event="change_external_chat", ChatId=chat_id, ChangeType="dismiss",
            CreateTime="1700000099")  # fmt: skip
    with session_scope(readonly=True) as session:
        group = session.exec(select(CustomerGroup).where(CustomerGroup.chat_id == chat_id)).one()
    assert group.name == "上海母婴二群" and group.dismissed_at is not None


def test_a_corp_tag_change_re_reads_the_corp_tags(
    receiver: Receiver, directory: DirectoryWorld
) -> None:
    directory.tag_groups = [{"group_id": "etgrpA", "group_name": "渠道", "create_time": 1,
                             "order": 0, "tag": [{"id": "ettagA", "name": "门店扫码",
                                                  "create_time": 1, "order": 0}]}]  # fmt: skip
    deliver(receiver, Event="change_external_tag", Id="ettagA", TagType="tag",
            ChangeType="create")  # fmt: skip
    with session_scope(readonly=True) as session:
        assert session.exec(select(Tag.group_name).where(Tag.name == "门店扫码")).one() == "渠道"
