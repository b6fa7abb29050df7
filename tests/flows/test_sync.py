"""The sync-wecom flow makes the database match the emulator's directory, writes nothing when
nothing changed, follows changes, survives token expiry and 45009, and resumes after SIGKILL."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from channels.emulator import WeComEmulator
from channels.emulator.directory_world import DirectoryWorld, ext_id
from channels.wecom import WeComClient
from core.settings import get_settings
from engine.sync import SyncReport, sync_directory
from flows.sync import sync_wecom
from models.db import session_scope
from models.directory import FollowRelation, GroupMemberLeft, SyncRun, WecomTag
from models.people import Customer, CustomerGroup, CustomerTag, GroupMember, Staff, Tag

BATCH = "/cgi-bin/externalcontact/batch/get_by_user"


@pytest.fixture
def world(emulator: WeComEmulator) -> DirectoryWorld:
    return emulator.seed_directory(
        DirectoryWorld.generate(staff=12, contacts=1500, groups_per_staff=2)
    )


@pytest.fixture
def client(emulator: WeComEmulator) -> Iterator[WeComClient]:
    with WeComClient.from_settings(get_settings()) as wecom:
        yield wecom


def _sync(client: WeComClient, **kwargs: object) -> SyncReport:
    return sync_directory(client, full=True, sleep=lambda _: None, **kwargs)  # type: ignore[arg-type]


def _count(model: type, *where: object) -> int:
    with session_scope(readonly=True) as session:
        return int(
            session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()
        )


def test_full_sync_equals_the_emulators_world(world: DirectoryWorld) -> None:
    """The flow's pass: counts match and sampled customers, relations and groups match field by field."""
    summary = sync_wecom(full=True)
    counts = world.counts()
    assert summary["pages"] == 17  # 1650 relations, 100 a page
    assert _count(Staff) == counts["staff"]
    assert _count(Customer, col(Customer.contact_state) == "active") == counts["contacts"]
    assert _count(FollowRelation, col(FollowRelation.deleted_at).is_(None)) == counts["relations"]
    assert _count(CustomerGroup) == counts["groups"]
    assert _count(WecomTag) == counts["tags"]
    with session_scope(readonly=True) as session:
        staff = dict(session.execute(select(Staff.id, Staff.userid)).tuples().all())
        for k in (0, 7, 30, 1499):
            contact = world.contact(ext_id(k))
            follows = {u: world.follow_info(u, k) for u in world.followers(ext_id(k))}
            customer = session.execute(
                select(Customer).where(Customer.external_userid == ext_id(k))
            ).scalar_one()
            assert customer.name == contact["name"]
            assert customer.gender == {1: "male", 2: "female"}.get(contact["gender"])
            first = min(follows.values(), key=lambda f: f["createtime"])
            assert staff[customer.owner_staff_id] == first["userid"]
            assert customer.added_at == dt.datetime.fromtimestamp(first["createtime"], dt.UTC)
            assert customer.source_state == (first["state"] or None)
            relations = session.execute(
                select(FollowRelation).where(FollowRelation.customer_id == customer.id)
            ).scalars().all()  # fmt: skip
            assert {staff[r.staff_id] for r in relations} == set(follows)
            for r in relations:
                info = follows[staff[r.staff_id]]
                assert (r.remark, r.add_way, r.state) == (
                    info["remark"],
                    info["add_way"],
                    info["state"] or None,
                )
                assert r.tag_ids == ",".join(sorted(info["tag_id"]))
            tags = session.execute(
                select(WecomTag.wecom_id).join(CustomerTag, CustomerTag.tag_id == WecomTag.tag_id)
                .where(CustomerTag.customer_id == customer.id)
            ).scalars().all()  # fmt: skip
            assert sorted(tags) == sorted({t for f in follows.values() for t in f["tag_id"]})
        chat = world.groups["wrEmu00003x01"]
        group = session.execute(
            select(CustomerGroup).where(CustomerGroup.chat_id == chat["chat_id"])
        ).scalar_one()
        assert (group.name, staff[group.owner_staff_id], group.member_count) == (
            chat["name"],
            chat["owner"],
            len(chat["members"]),
        )
        members = session.execute(
            select(Customer.external_userid).join(GroupMember, GroupMember.customer_id == Customer.id)
            .where(GroupMember.group_id == group.id)
        ).scalars().all()  # fmt: skip
        assert sorted(members) == sorted(m["userid"] for m in chat["members"] if m["type"] == 2)


def test_second_sync_with_nothing_changed_writes_nothing(
    world: DirectoryWorld, client: WeComClient
) -> None:
    first = _sync(client)
    assert first.writes["customers added"] == 1500
    again = _sync(client)
    assert again.total_writes == 0 and again.pages == first.pages


def test_changes_between_syncs_are_reflected_without_deleting_anything(
    world: DirectoryWorld, client: WeComClient
) -> None:
    """New and removed contacts, relations, members, tags and a dismissed group show up."""
    _sync(client)
    new = world.add_contact({"userid": "staff00002", "external_contact": {"name": "新来的"},
                             "follow_info": {"state": "store-bj01"}})["external_userid"]  # fmt: skip
    world.remove_contact({"external_userid": ext_id(5)})  # every relation: gone
    world.remove_contact(
        {"userid": "staff00010", "external_userid": ext_id(10)}
    )  # the first of two
    tag = world.add_tag({"group_name": "渠道", "name": "抖音"})["tag_id"]
    world.edit_contact(
        {"external_userid": ext_id(1), "userid": "staff00001", "follow_info": {"tag_id": [tag]}}
    )
    world.change_group(
        {"chat_id": "wrEmu00000x00", "add_member": [new], "remove_member": [ext_id(12)]}
    )
    world.change_group({"chat_id": "wrEmu00001x01", "dismiss": True})
    report = _sync(client)
    with session_scope(readonly=True) as session:

        def customer(ext: str) -> Customer:
            return session.execute(
                select(Customer).where(Customer.external_userid == ext)
            ).scalar_one()

        assert (
            customer(new).source_state == "store-bj01" and customer(new).contact_state == "active"
        )
        gone = customer(ext_id(5))
        assert gone.contact_state == "deleted" and gone.deleted_at is not None
        assert customer(ext_id(10)).contact_state == "active"
        owner = session.execute(
            select(Staff.userid).where(Staff.id == customer(ext_id(10)).owner_staff_id)
        ).scalar()
        assert owner == "staff00011"  # the owner moves to the follower left
        tagged = session.execute(
            select(Tag.name).join(CustomerTag, CustomerTag.tag_id == Tag.id).where(CustomerTag.customer_id == customer(ext_id(1)).id)
        ).scalars().all()  # fmt: skip
        assert tagged == ["抖音"]
        left = session.execute(select(GroupMemberLeft)).scalars().all()
        assert [r.customer_id for r in left] == [customer(ext_id(12)).id]
        dismissed = session.execute(
            select(CustomerGroup.dismissed_at).where(CustomerGroup.chat_id == "wrEmu00001x01")
        ).scalar()
        assert dismissed is not None
    assert _count(FollowRelation) == 1650 + 1  # nothing removed: deleted ones are marked
    assert report.writes["relations deleted"] == 2 and report.writes["customers deleted"] == 1
    assert report.writes["owners moved"] == 1
    assert _sync(client).total_writes == 0


def test_token_expiry_and_45009_during_a_sync_are_survived(
    emulator: WeComEmulator, world: DirectoryWorld, client: WeComClient
) -> None:
    waits: list[float] = []
    emulator.configure(fail_next=[45009, 42001, 45009, 40014, -1])
    report = sync_directory(client, full=True, sleep=waits.append)
    assert report.writes["customers added"] == 1500
    assert len(waits) == 3  # two 45009 and the −1 backed off; the token ones refreshed at once
    assert emulator.tokens_issued >= 3


def test_a_sigkilled_sync_resumes_without_redoing_finished_pages(
    emulator: WeComEmulator, world: DirectoryWorld
) -> None:
    """`sopflow sync` killed mid-pass: the next one reads only the pages not yet committed."""
    emulator.configure(delay_seconds=0.15, delay_paths=["batch/get_by_user"])
    command = [os.path.join(os.path.dirname(sys.executable), "sopflow"), "sync", "--full"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while _pages_committed() < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    committed = _pages_committed()
    assert 10 <= committed < 17, "the kill landed mid-pass"
    emulator.configure(delay_seconds=0.0)
    before = emulator.state()["calls"][BATCH]
    with WeComClient.from_settings(get_settings()) as client:
        report = _sync(client, pages_per_commit=1)
    assert report.resumed
    assert emulator.state()["calls"][BATCH] - before == 17 - committed
    assert _count(Customer) == 1500 and _count(FollowRelation) == 1650
    assert _count(SyncRun, col(SyncRun.finished_at).is_(None)) == 0


def _pages_committed() -> int:
    with session_scope(readonly=True) as session:
        return int(session.execute(select(func.coalesce(func.max(SyncRun.pages), 0))).scalar_one())
