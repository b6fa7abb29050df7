"""Attachments go out with welcomes and mass messages, and each refusal is a recorded outcome."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import replace
from pathlib import Path

import pytest

from channels import get_channel
from channels.attachments import Attachment
from channels.emulator import WeComEmulator
from channels.emulator.welcome import book
from channels.media import use_media_store
from core.clock import at_local
from core.settings import get_settings
from engine.compose import Composed
from engine.dispatch import send_grouped
from engine.plan import plan_customers
from engine.welcome import dispatch_events
from models.media import MediaUploads
from tests.factories import (
    add_customers,
    audience_of,
    customer_sop,
    deliveries,
    make_world,
    occurrence_of,
)

DAY = dt.date(2026, 11, 24)
MORNING = at_local(DAY, 10, 0)
COUPON = Attachment("image", path="media/first-order.png")
CARD = Attachment("miniprogram", title="首单礼", appid="wx-linked", page="pages/new", picture="media/first-order.png")  # fmt: skip


@pytest.fixture
def touches(emulator: WeComEmulator, database_url: str, tmp_path: Path) -> list[Composed]:
    """Three planned customers of one staff member, and a folder with the step's picture."""
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "first-order.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"c" * 300)
    emulator.configure(linked_appids=["wx-linked"])
    make_world(DAY, database_url)
    add_customers(3)
    spec = customer_sop()
    batch = plan_customers(spec, occurrence_of(spec, DAY), audience_of(spec), now=MORNING)
    return [
        Composed(t.delivery_id, t.target.external_userid, t.sender, "欢迎！")
        for t in batch.touches[:3]
    ]


@pytest.fixture
def channel(touches, tmp_path: Path):
    wecom = get_channel(get_settings())
    use_media_store(wecom, MediaUploads(), root=tmp_path)
    yield wecom
    wecom.close()


def codes_for(emulator: WeComEmulator, touches: list[Composed]) -> dict[int, str]:
    """A fresh WelcomeCode per touch, as the add-contact callbacks would have brought."""
    codes = {}
    for touch in touches:
        code = f"code-{touch.delivery_id}"
        book(emulator).codes[code] = {"external_userid": touch.target_id, "userid": touch.sender,
                                      "issued_at": emulator.clock(), "used_at": None}  # fmt: skip
        codes[touch.delivery_id] = code
    return codes


def test_a_welcome_carries_its_attachments_and_one_upload_serves_them_all(
    emulator, touches, channel
) -> None:
    welcomes = [t._replace(attachments=(COUPON, CARD)) for t in touches]

    dispatch_events(channel, welcomes, codes_for(emulator, welcomes))

    sent = book(emulator).welcomes
    assert [w["content"] for w in sent] == ["欢迎！"] * 3
    media_id = sent[0]["attachments"][0]["image"]["media_id"]
    assert all(
        w["attachments"] == [
            {"msgtype": "image", "image": {"media_id": media_id}},
            {"msgtype": "miniprogram", "miniprogram": {"title": "首单礼", "pic_media_id": media_id,
                                                       "appid": "wx-linked", "page": "pages/new"}},
        ]
        for w in sent
    )  # fmt: skip
    assert emulator.calls["/cgi-bin/media/upload"] == 1
    assert [(r.status, r.errcode) for r in deliveries()] == [("sent", 0)] * 3


@pytest.mark.parametrize(
    ("attachments", "errcode", "reason"),
    [
        ((COUPON,) * 10, 41064, "附件过多"),
        ((Attachment("link", title="很长" * 30, url="https://shop.example"),), 45002, "内容过长"),
        ((replace(CARD, appid="wx-not-linked"),), 90206, "小程序未关联企业"),
        ((Attachment("link", url="https://shop.example"),), 41065, "附件类型或字段不对"),
    ],
)  # fmt: skip
def test_each_refused_attachment_is_a_failed_touch_with_a_reason_ops_understand(
    emulator, touches, channel, attachments, errcode, reason
) -> None:
    welcome, *mass = [t._replace(attachments=attachments) for t in touches]

    dispatch_events(channel, [welcome], codes_for(emulator, [welcome]))
    send_grouped(channel, "single", mass)

    rows = deliveries()
    assert {(r.status, r.errcode) for r in rows} == {("failed", errcode)}
    assert all(r.reason.startswith(reason) and f"({errcode})" in r.reason for r in rows)
    assert emulator.messages == [] and book(emulator).welcomes == []


def test_an_expired_media_id_fails_nothing_the_file_is_uploaded_again(
    emulator, touches, channel
) -> None:
    first, second = ([t._replace(attachments=(COUPON,))] for t in touches[:2])
    send_grouped(channel, "single", first)
    later = time.time() + 3 * 86400
    emulator.clock = lambda: later  # WeCom's clock runs ahead: the id it gave has expired

    send_grouped(channel, "single", second)

    assert [(r.status, r.errcode) for r in deliveries()][:2] == [("sent", 0), ("sent", 0)]
    ids = [m["attachments"][0]["image"]["media_id"] for m in emulator.messages]
    assert len(set(ids)) == 2 and emulator.calls["/cgi-bin/media/upload"] == 2
