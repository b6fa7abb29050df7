"""Automatic tags reach WeCom with mark_tag: exactly the difference, once; a failed call is
retried by the next run and never recorded as pushed; the sync does not read them back as manual."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from channels.emulator import WeComEmulator
from channels.emulator.directory_world import DirectoryWorld, ext_id
from channels.emulator.tags import tag_book
from channels.wecom import WeComClient
from core.clock import at_local
from core.settings import get_settings
from engine.derive import derive_customers
from engine.sync import sync_directory
from engine.tag_push import push_tags
from models.db import session_scope
from models.people import Customer, CustomerTag, Tag
from models.tag_push import TagPush
from soplang.tag_rules import TagRule, read_tag_rules
from tests.factories import add_order, make_world

DAY = dt.date(2026, 11, 24)
AS_OF = at_local(DAY, 0, 5)
RULES = "宝妈:\n  category: 母婴\n  days: 90\n  min_orders: 2\n沉睡30天:\n  no_order_days: 30\n"
BABY = [("B001", 1, 5990)]


@pytest.fixture
def world(emulator: WeComEmulator) -> DirectoryWorld:
    """Two staff, 12 contacts; contact 4's relation already carries WeCom's manual 宝妈 tag."""
    world = emulator.seed_directory(
        DirectoryWorld.generate(staff=2, contacts=12, groups_per_staff=0)
    )
    world.edit_contact({"external_userid": ext_id(4), "userid": "staff00000",
                        "follow_info": {"tag_id": ["ettag02"]}})  # fmt: skip
    return world


@pytest.fixture
def client(world: DirectoryWorld) -> Iterator[WeComClient]:
    with WeComClient.from_settings(get_settings()) as wecom:
        yield wecom


@pytest.fixture
def rules(tmp_path: Path) -> list[TagRule]:
    (tmp_path / "tags.yaml").write_text(RULES, encoding="utf-8")
    found, problems = read_tag_rules(tmp_path / "tags.yaml")
    assert problems == []
    return found


def _ago(days: int) -> dt.datetime:
    return at_local(DAY - dt.timedelta(days=days), 15)


def _ids() -> dict[int, int]:
    """Contact k → customer id, after a sync."""
    with session_scope() as session:
        rows = session.exec(select(Customer.external_userid, Customer.id)).all()
    return {int(ext[5:]): cid for ext, cid in rows}


def _derive(rules: list[TagRule]) -> None:
    with session_scope() as session:
        derive_customers(AS_OF, session=session, tiers=None, rules=rules)


def _marks(emulator: WeComEmulator, since: int = 0) -> list[tuple[str, str, tuple, tuple]]:
    return sorted(
        (m["userid"], m["external_userid"], tuple(m["add_tag"]), tuple(m["remove_tag"]))
        for m in tag_book(emulator).marks[since:]
    )


def _sleeping_id(world: DirectoryWorld) -> str:
    [found] = [t["id"] for g in world.tag_groups for t in g["tag"] if t["name"] == "沉睡30天"]
    return found


def _sync(client: WeComClient) -> None:
    sync_directory(client, full=True, sleep=lambda _: None)


def test_only_the_difference_is_pushed_once(emulator, world, client, rules) -> None:
    """宝妈 uses WeCom's own tag, 沉睡30天 is created in 智能标签; contact 4 keeps its manual 宝妈
    and is not called; a second run calls nothing, even after a sync read the relations back."""
    make_world(DAY)
    _sync(client)
    ids = _ids()
    for k in (1, 2, 4):
        add_order(ids[k], _ago(10), BABY)
        add_order(ids[k], _ago(20), BABY)
    add_order(ids[5], _ago(40), [("F001", 1, 399)])
    _derive(rules)

    report = push_tags(client, rules)

    sleeping = _sleeping_id(world)
    assert _marks(emulator) == [
        ("staff00000", ext_id(2), ("ettag02",), ()),
        ("staff00001", ext_id(1), ("ettag02",), ()),
        ("staff00001", ext_id(5), (sleeping,), ()),
    ]
    assert [g["group_name"] for g in world.tag_groups if g["tag"][0]["id"] == sleeping] == [
        "智能标签"
    ]
    assert (report.calls, dict(report.added), report.failed) == (3, {"宝妈": 2, "沉睡30天": 1}, {})
    assert world.follow_info("staff00001", 5)["tag_id"] == [sleeping]
    assert tag_book(emulator).calls[("staff00001", ext_id(5))] == 1

    _sync(client)
    _derive(rules)
    again = push_tags(client, rules)

    assert again.calls == 0 and len(tag_book(emulator).marks) == 3
    with session_scope() as session:
        sources = session.exec(
            select(CustomerTag.customer_id, CustomerTag.source)
            .join(Tag, Tag.id == CustomerTag.tag_id)
            .where(Tag.name == "沉睡30天")
        ).all()
    assert sources == [(ids[5], "auto")]  # the sync did not add a manual copy


def test_a_failed_call_is_retried_next_run_and_never_recorded(
    emulator, world, client, rules
) -> None:
    """A removal WeCom fails (-1) keeps its record; the next run removes it and forgets it."""
    make_world(DAY)
    _sync(client)
    ids = _ids()
    add_order(ids[5], _ago(40), [("F001", 1, 399)])
    _derive(rules)
    push_tags(client, rules)
    sleeping = _sleeping_id(world)
    add_order(ids[5], _ago(2), [("F001", 1, 399)])  # bought again: no longer sleeping
    _derive(rules)
    emulator.configure(fail_next=[{"path": "mark_tag", "errcode": -1}])

    failed = push_tags(client, rules)

    assert (failed.calls, dict(failed.failed), dict(failed.removed)) == (1, {"-1": 1}, {})
    with session_scope() as session:
        assert len(session.exec(select(TagPush)).all()) == 1
    assert world.follow_info("staff00001", 5)["tag_id"] == [sleeping]

    retried = push_tags(client, rules)

    assert (retried.calls, dict(retried.removed)) == (1, {"沉睡30天": 1})
    assert _marks(emulator, since=1) == [("staff00001", ext_id(5), (), (sleeping,))]
    assert world.follow_info("staff00001", 5)["tag_id"] == []
    with session_scope() as session:
        assert session.exec(select(TagPush)).all() == []
    assert push_tags(client, rules).calls == 0


def test_emulator_answers_mark_tag_errors_like_wecom(emulator, world, client) -> None:
    """Unknown tag 40068, no relation 84061, nothing to change 40058, duplicate corp tag 40071."""
    from channels.wecom_tags import add_corp_tags
    from core.errors import ChannelRejected

    cases = [
        (("staff00000", ext_id(0), ["etNOPE"], []), 40068),
        (("staff00000", ext_id(1), ["ettag00"], []), 84061),
        (("staff00000", ext_id(0), [], []), 40058),
    ]
    for args, code in cases:
        with pytest.raises(ChannelRejected) as caught:
            client.mark_tag(*args)
        assert caught.value.errcode == code
    with pytest.raises(ChannelRejected) as caught:
        add_corp_tags(client, "属性", ["宝妈"])
    assert caught.value.errcode == 40071
    assert tag_book(emulator).marks == []
