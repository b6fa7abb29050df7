"""Attachment files become WeCom media once per 3 days, and reach WeCom in its attachment shape."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from channels.attachments import Attachment
from channels.base import MassMessage
from channels.emulator import WeComEmulator
from channels.emulator.media import media_book
from channels.media import MEDIA_LIFETIME, RENEW_MARGIN, MemoryMediaStore, use_media_store
from channels.wecom import WeComClient
from core.errors import ChannelRejected
from tests.channels.conftest import CORP_ID, CORP_SECRET, FakeClock

JPEG = b"\xff\xd8\xff\xe0" + b"eggs" * 64
COVER = b"\x89PNG\r\n\x1a\n" + b"card" * 64
IMAGE = Attachment("image", path="media/eggs.jpg")
CARD = Attachment(
    "miniprogram",
    title="双12 会场",
    appid="wx-linked",
    page="pages/d12/index",
    picture="media/cover.png",
)
LINK = Attachment(
    "link",
    title="鸡蛋上新",
    url="https://shop.example/eggs",
    description="今早到货",
    picture="media/eggs.jpg",
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "eggs.jpg").write_bytes(JPEG)
    (tmp_path / "media" / "cover.png").write_bytes(COVER)
    (tmp_path / "media" / "manual.pdf").write_bytes(b"%PDF-1.4 manual")
    (tmp_path / "media" / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 clip")
    return tmp_path


@pytest.fixture
def media(client: WeComClient, folder: Path, clock: FakeClock, emulator: WeComEmulator):
    emulator.configure(linked_appids=["wx-linked"])
    return use_media_store(client, MemoryMediaStore(), root=folder, now=clock)


def group_message(*attachments: Attachment) -> MassMessage:
    return MassMessage("group", "zhangwei.bj01", ("wrA",), "早报价来啦", attachments)


def test_attachments_reach_wecom_in_its_shape_for_groups_and_one_to_one(client, media, emulator):
    files = [
        Attachment("video", path="media/clip.mp4"),
        Attachment("file", path="media/manual.pdf"),
    ]
    client.send_mass(
        group_message(IMAGE, CARD, LINK, Attachment("image", url="https://p.example/1.jpg"))
    )
    client.send_mass(MassMessage("single", "zhangwei.bj01", ("wm1",), "您好", tuple(files)))

    group, single = emulator.messages
    ids = {u["filename"]: u["media_id"] for u in media_book(emulator).uploads if "media_id" in u}
    assert group["chat_type"] == "group"
    assert group["attachments"] == [
        {"msgtype": "image", "image": {"media_id": ids["eggs.jpg"]}},
        {"msgtype": "miniprogram", "miniprogram": {"title": "双12 会场", "pic_media_id": ids["cover.png"],
                                                   "appid": "wx-linked", "page": "pages/d12/index"}},
        {"msgtype": "link", "link": {"title": "鸡蛋上新", "url": "https://shop.example/eggs", "desc": "今早到货",
                                     "picurl": media_book(emulator).uploads[2]["url"]}},
        {"msgtype": "image", "image": {"pic_url": "https://p.example/1.jpg"}},
    ]  # fmt: skip
    assert media_book(emulator).uploads[2]["type"] == "uploadimg"  # a link's picture: permanent
    assert single["attachments"] == [
        {"msgtype": "video", "video": {"media_id": ids["clip.mp4"]}},
        {"msgtype": "file", "file": {"media_id": ids["manual.pdf"]}},
    ]


def test_a_media_id_is_reused_for_three_days_and_renewed_before_it_expires(
    client, media, emulator, clock
):
    client.send_mass(group_message(IMAGE, CARD))
    for _ in range(5):
        client.send_mass(group_message(IMAGE))
    clock.advance(MEDIA_LIFETIME - RENEW_MARGIN - 60)  # 2 days 17:59 later: still fresh
    client.send_mass(group_message(IMAGE))
    assert media.uploads == 2  # eggs.jpg once, cover.png once, however many sends
    first = emulator.messages[0]["attachments"][0]["image"]["media_id"]
    assert {m["attachments"][0]["image"]["media_id"] for m in emulator.messages} == {first}

    clock.advance(120)  # under 6 h left: upload again rather than risk a send on a dying id
    client.send_mass(group_message(IMAGE))
    renewed = emulator.messages[-1]["attachments"][0]["image"]["media_id"]
    assert renewed != first and media.uploads == 3
    clock.advance(MEDIA_LIFETIME - RENEW_MARGIN - 60)
    client.send_mass(group_message(IMAGE))
    assert emulator.messages[-1]["attachments"][0]["image"]["media_id"] == renewed


def test_an_id_wecom_forgot_is_uploaded_again_and_the_call_made_once_more(client, media, emulator):
    client.send_mass(group_message(IMAGE))
    media_book(emulator).media.clear()  # e.g. a restarted emulator; WeCom answers 40007

    client.send_mass(group_message(IMAGE))

    assert media.uploads == 2 and len(emulator.messages) == 2  # one task per send, never two
    assert emulator.messages[1]["attachments"][0]["image"]["media_id"] in media_book(emulator).media


@pytest.mark.parametrize(
    ("attachments", "errcode", "label"),
    [
        ((IMAGE,) * 10, 41064, "附件过多"),
        ((Attachment("link", title="t" * 129, url="https://x.example"),), 45002, "内容过长"),
        ((Attachment("link", url="https://x.example"),), 41065, "附件类型或字段不对"),
        ((Attachment("miniprogram", title="卡", appid="wx-other", page="p", picture="media/cover.png"),),
         90206, "小程序未关联企业"),
        ((Attachment("image", path="media/missing.jpg"),), None, "cannot be read"),
        ((Attachment("video", path="media/eggs.jpg"),), 40004, "附件文件类型不对"),
    ],
)  # fmt: skip
def test_each_refusal_reads_in_the_operators_words(
    client, media, emulator, attachments, errcode, label
):
    with pytest.raises(ChannelRejected) as refused:
        client.send_mass(group_message(*attachments))

    assert refused.value.errcode == errcode
    assert label in str(refused.value)
    if errcode:
        assert f"({errcode})" in str(refused.value)
    assert emulator.messages == []


def wecom_call(emulator: WeComEmulator, client: WeComClient, body: dict) -> int:
    url = f"{emulator.url}/cgi-bin/externalcontact/add_msg_template"
    answer = requests.post(
        url, params={"access_token": client.access_token()}, json=body, timeout=5
    )
    return answer.json()["errcode"]


def test_the_emulator_checks_attachments_like_wecom(client, media, emulator, clock):
    """The emulator refuses what WeCom refuses, even from a caller that did not check first."""
    media_id = media.media_id("media/eggs.jpg", "image")
    base = {
        "chat_type": "group",
        "sender": "zw",
        "chat_id_list": ["wrA"],
        "text": {"content": "早"},
    }
    image = {"msgtype": "image", "image": {"media_id": media_id}}
    card = {"title": "卡", "pic_media_id": media_id, "appid": "wx-linked", "page": "p"}
    cases = [
        ([image] * 9, 0),
        ([image] * 10, 41064),
        ([{"msgtype": "voice", "voice": {"media_id": media_id}}], 41065),
        ([{"msgtype": "link", "link": {"title": "no url"}}], 41065),
        ([{"msgtype": "miniprogram", "miniprogram": {**card, "title": "长" * 22}}], 45002),
        ([{"msgtype": "miniprogram", "miniprogram": {**card, "appid": "wx-other"}}], 90206),
        ([{"msgtype": "file", "file": {"media_id": "never-uploaded"}}], 40007),
    ]
    assert [wecom_call(emulator, client, {**base, "attachments": a}) for a, _ in cases] == [
        code for _, code in cases
    ]
    clock.advance(MEDIA_LIFETIME)
    client.invalidate_token()  # the emulator's tokens aged with its clock
    assert wecom_call(emulator, client, {**base, "attachments": [image]}) == 40007


def test_the_emulator_refuses_uploads_wecom_refuses(client, emulator):
    url = f"{emulator.url}/cgi-bin/media/upload"
    token = {"access_token": client.access_token()}

    def errcode(params: dict, **kwargs) -> int:
        return requests.post(url, params={**token, **params}, timeout=5, **kwargs).json()["errcode"]

    assert errcode({"type": "image"}, files={"media": ("a.jpg", JPEG)}) == 0
    assert errcode({"type": "sticker"}, files={"media": ("a.jpg", JPEG)}) == 40004
    assert errcode({"type": "image"}, files={"media": ("a.gif", JPEG)}) == 40004
    assert errcode({"type": "image"}, files={"media": ("a.jpg", b"tiny")}) == 40006
    assert errcode({"type": "image"}, files={"other": ("a.jpg", JPEG)}) == 41005
    assert errcode({"type": "image"}, data=b"{}") == 41005


def test_wechatpy_uploads_to_the_emulator_unchanged(emulator, folder):
    """The emulator's media/upload answers a stock wechatpy client as WeCom does."""
    work = pytest.importorskip("wechatpy.work")
    sdk = work.WeChatClient(CORP_ID, CORP_SECRET)
    sdk.API_BASE_URL = f"{emulator.url}/cgi-bin/"
    # wechatpy fetches tokens from a fixed qyapi URL; its own fetch, aimed at the emulator:
    sdk._fetch_access_token(f"{emulator.url}/cgi-bin/gettoken",
                            {"corpid": CORP_ID, "corpsecret": CORP_SECRET})  # fmt: skip
    with (folder / "media" / "eggs.jpg").open("rb") as image:
        answer = sdk.media.upload("image", image)
    with (folder / "media" / "cover.png").open("rb") as image:
        url = sdk.media.upload_img(image)["url"]

    assert answer["type"] == "image" and answer["media_id"] in media_book(emulator).media
    assert int(answer["created_at"]) > 0 and url in media_book(emulator).images
    assert media_book(emulator).uploads[0]["size"] == len(JPEG)
