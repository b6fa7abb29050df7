"""Attachments are rendered per target beside the text, stored with it and group the WeCom calls."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from sqlalchemy import select, update

from channels.attachments import Attachment, dumps
from channels.base import MassMessage
from channels.outbox import OutboxChannel
from core.clock import at_local, utcnow
from core.settings import PROJECT_ROOT
from engine.compose import CommunityContent, CustomerContent, Rendered
from engine.dispatch import pending_ids, send_grouped, touches_of
from engine.plan import plan_groups
from engine.preview import PreviewRequest, preview_sop
from engine.reconcile import StuckRow, _same_kinds
from models.audience import GroupTarget, group_id_ranges, groups_in_range
from models.commerce import Product
from models.db import session_scope
from models.deliveries import Occurrence
from models.delivery import Message
from soplang.loader import load_sop
from soplang.spec import SopSpec
from tests.factories import add_customers, audience_of, customer_sop, make_world

DAY = dt.date(2026, 11, 24)
MORNING = at_local(DAY, 10, 0)
EGGS = Attachment("image", path="media/eggs.jpg")
CARD = Attachment(
    "miniprogram", title="秒杀", appid="wx5f1d8e2a9c3b7d40", page="p", picture="media/d12-cover.png"
)


def shipped(name: str) -> SopSpec:
    return load_sop(PROJECT_ROOT / "sop" / name)


def groups() -> dict[str, GroupTarget]:
    with session_scope(readonly=True) as session:
        (whole,) = group_id_ranges(None, batch_size=1000, session=session)
        return {g.name: g for g in groups_in_range(None, whole, session=session)}


def give_picture(sku: str, picture: str) -> None:
    with session_scope() as session:
        session.execute(update(Product).where(Product.sku == sku).values(picture=picture))


def test_each_group_gets_the_pictures_of_its_own_deals(database_url: str) -> None:
    make_world(DAY, database_url)
    give_picture("F001", "media/eggs.jpg")  # 鸡蛋, everywhere; 平谷大桃 (北京 first) has none
    found = groups()
    content = CommunityContent(shipped("community/morning-price.md"), "main", DAY, "morning")

    rendered = content.render(list(found.values()))

    beijing, second = found["北京生鲜爱好者群"], found["北京生鲜二群"]
    assert rendered.attachments[beijing.id] == (EGGS,)  # the peach's empty picture is left out
    assert rendered.attachments[second.id] is rendered.attachments[beijing.id]  # one shared tuple
    assert rendered.attachments[found["上海母婴用品群"].id] == ()  # its deal has no picture
    assert found["上海酒水品鉴群"].id in rendered.skipped
    assert rendered.sample is not None
    assert rendered.sample.endswith(
        f"附件 attachments (1):\n[图片] media/eggs.jpg  ({PROJECT_ROOT / 'sop' / 'media/eggs.jpg'})"
    )


def test_customers_alike_share_their_rendered_attachments(database_url: str) -> None:
    make_world(DAY, database_url)
    add_customers(4)
    spec = customer_sop(
        steps=[
            {
                "name": "main",
                "attachments": [
                    {"image": "media/eggs.jpg"},
                    {
                        "link": {
                            "title": "{{ customer.region }}门店",
                            "url": "https://s.example.com",
                        }
                    },
                ],
            }
        ]
    )
    spec = spec.model_copy(update={"sections": shipped("community/member-day.md").sections})
    customers = audience_of(spec)

    rendered = CustomerContent(spec, "main", DAY).render(customers)

    by_region: dict[str, set[int]] = {}
    for customer in customers:
        attachments = rendered.attachments[customer.id]
        assert attachments[0] == EGGS
        assert attachments[1].title == f"{customer.region}门店"
        by_region.setdefault(customer.region or "", set()).add(id(attachments))
    assert all(len(ids) == 1 for ids in by_region.values())  # one tuple per segment


def plan_and_send(
    tmp_path: Path, attachments: dict[str, tuple[Attachment, ...]]
) -> tuple[int, list[dict[str, object]]]:
    """Plan 张伟's two 北京 groups with one text and these attachments, send what is pending;
    the calls made and the outbox lines."""
    found = groups()
    targets = [found[name] for name in attachments]
    rendered = Rendered(
        texts={g.id: "今日鸡蛋特价" for g in targets},
        attachments={found[name].id: value for name, value in attachments.items()},
    )
    occurrence = Occurrence("morning-price", "main", DAY.isoformat(), "outbox")
    plan_groups(occurrence, targets, spec=None, rendered=rendered)
    with session_scope(readonly=True) as session:
        ids = pending_ids(occurrence, ["zhangwei.bj01"], now=utcnow(), session=session)
        touches = touches_of(ids, session=session)
    channel = OutboxChannel(tmp_path / "outbox")
    result = send_grouped(channel, "group", touches)
    lines = [json.loads(line) for f in (tmp_path / "outbox").glob("*.jsonl") for line in f.open()]
    return result.calls, lines


def test_groups_with_the_same_text_and_attachments_share_one_call(
    database_url: str, tmp_path: Path
) -> None:
    make_world(DAY, database_url)

    calls, lines = plan_and_send(
        tmp_path, {"北京生鲜爱好者群": (EGGS, CARD), "北京生鲜二群": (EGGS, CARD)}
    )

    assert calls == 1
    (line,) = lines
    assert len(line["targets"]) == 2
    assert line["attachments"] == [EGGS.as_dict(), CARD.as_dict()]


def test_the_same_text_with_other_attachments_is_another_message_and_another_call(
    database_url: str, tmp_path: Path
) -> None:
    make_world(DAY, database_url)

    calls, lines = plan_and_send(tmp_path, {"北京生鲜爱好者群": (EGGS,), "北京生鲜二群": (CARD,)})

    assert calls == 2
    assert sorted(len(line.get("attachments", [])) for line in lines) == [1, 1]
    with session_scope(readonly=True) as session:
        stored = session.execute(select(Message.content, Message.attachments)).all()
    assert len(stored) == 2 and {content for content, _ in stored} == {"今日鸡蛋特价"}
    assert {json.loads(a)[0]["kind"] for _, a in stored} == {"image", "miniprogram"}


def test_a_text_alone_is_stored_without_attachments(database_url: str, tmp_path: Path) -> None:
    make_world(DAY, database_url)

    calls, (line,) = plan_and_send(tmp_path, {"北京生鲜爱好者群": (), "北京生鲜二群": ()})

    assert calls == 1 and "attachments" not in line
    with session_scope(readonly=True) as session:
        assert session.execute(select(Message.attachments)).scalars().all() == [None]


def test_preview_shows_each_card_and_the_local_image(database_url: str) -> None:
    make_world(DAY, database_url)
    give_picture("F001", "media/eggs.jpg")

    report = preview_sop(shipped("community/morning-price.md"), PreviewRequest(day=DAY)).report()

    local = PROJECT_ROOT / "sop" / "media" / "eggs.jpg"
    assert f"附件 attachments (1):\n[图片] media/eggs.jpg  ({local})" in report


def test_reconcile_pairs_a_stuck_chunk_only_with_a_message_of_its_attachment_kinds(
    tmp_path: Path,
) -> None:
    channel = OutboxChannel(tmp_path / "outbox")
    channel.send_mass(MassMessage("group", "zhangwei.bj01", ("wr1",), "今日鸡蛋特价", (EGGS,)))
    start, end = utcnow() - dt.timedelta(minutes=1), utcnow() + dt.timedelta(minutes=1)
    (listed,) = channel.find_sent("zhangwei.bj01", "今日鸡蛋特价", start, end, chat_type="group")

    def row(*attachments: Attachment) -> StuckRow:
        stored = dumps(attachments)
        return StuckRow(
            1, "group", "wr1", "zhangwei.bj01", "outbox", "今日鸡蛋特价", None, end, stored
        )

    assert [a["msgtype"] for a in listed["attachments"]] == ["image"]
    assert _same_kinds(listed, row(EGGS))
    assert not _same_kinds(listed, row(CARD))  # same text, another card: not this message
    assert not _same_kinds(listed, row())
