"""A community run sends its deal photos and mini-program card: in the sample artifact, the outbox
and, through the emulator over HTTP, in WeCom's add_msg_template attachments."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import update

from channels.emulator.core import WeComEmulator
from core.clock import at_local
from core.settings import PROJECT_ROOT, get_settings, reset_settings
from flows.community import community_sop
from models.commerce import Product
from models.db import session_scope
from tests.factories import deliveries, make_world
from tests.flows.test_community import run_artifact

DAY = dt.date(2026, 11, 24)
MORNING = at_local(DAY, 8, 30)
CARD = (
    '{miniprogram: {title: "{{ group.region }}鲜货秒杀", appid: wx5f1d8e2a9c3b7d40, '
    'page: "pages/deals?theme={{ group.theme }}", picture: media/d12-cover.png}}'
)


@pytest.fixture
def world(database_url: str):
    found = make_world(DAY, database_url)
    with session_scope() as session:  # 鸡蛋 (every fresh group's deal) has a photo
        session.execute(
            update(Product).where(Product.sku == "F001").values(picture="media/eggs.jpg")
        )
    return found


@pytest.fixture
def sop_with_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped community SOPs and media, morning-price with a mini-program card added."""
    folder = tmp_path / "sop"
    shutil.copytree(PROJECT_ROOT / "sop" / "community", folder / "community")
    shutil.copytree(PROJECT_ROOT / "sop" / "media", folder / "media")
    path = folder / "community" / "morning-price.md"
    text = path.read_text(encoding="utf-8")
    last_image = "else '' }}\"\n"  # the card goes in as the attachments' third item
    path.write_text(text.replace(last_image, f"{last_image}      - {CARD}\n"), encoding="utf-8")
    assert CARD in path.read_text(encoding="utf-8")
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(folder))
    reset_settings()
    return folder


def test_the_sample_artifact_and_the_outbox_show_the_deal_photo(world) -> None:
    community_sop(sop_id="morning-price", day=DAY, now=MORNING)

    run_id = deliveries()[0].flow_run_id
    summary = run_artifact(run_id or "", "morning-price-main-sample")
    local = PROJECT_ROOT / "sop" / "media" / "eggs.jpg"
    assert f"附件 attachments (1):\n[图片] media/eggs.jpg  ({local})\n```" in summary
    lines = [
        json.loads(line)
        for day_file in get_settings().outbox_dir.glob("*.jsonl")
        for line in day_file.open(encoding="utf-8")
    ]
    by_chat = {t: line.get("attachments") for line in lines for t in line["targets"]}
    assert by_chat[world.chat_ids["北京生鲜爱好者群"]] == [
        {"kind": "image", "path": "media/eggs.jpg"}
    ]
    assert by_chat[world.chat_ids["上海母婴用品群"]] is None  # its deal has no photo


def test_image_and_card_reach_wecom_in_one_task_per_sender_and_text(
    world, sop_with_card: Path, emulator: WeComEmulator
) -> None:
    community_sop(sop_id="morning-price", day=DAY, now=MORNING)

    sent = [r for r in deliveries() if r.status == "sent"]
    assert len(sent) == 3
    messages = emulator.messages
    assert len(messages) == len({(m["sender"], m["content"]) for m in messages}) == 3
    beijing = world.chat_ids["北京生鲜爱好者群"]
    (message,) = [m for m in messages if beijing in m["targets"]]
    image, card = message["attachments"]
    assert image["msgtype"] == "image" and image["image"]["media_id"]
    assert card["msgtype"] == "miniprogram"
    assert card["miniprogram"]["title"] == "北京鲜货秒杀"
    assert card["miniprogram"]["page"] == "pages/deals?theme=生鲜"
    assert card["miniprogram"]["appid"] == "wx5f1d8e2a9c3b7d40"
    assert card["miniprogram"]["pic_media_id"]
    shanghai = next(m for m in messages if world.chat_ids["上海母婴用品群"] in m["targets"])
    assert [a["msgtype"] for a in shanghai["attachments"]] == ["miniprogram"]
