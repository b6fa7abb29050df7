"""The emulator's sent-messages page over HTTP: tasks as staff see them, status, filters, paging, escaping."""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

import requests

from channels.base import MassMessage
from channels.emulator import EmulatorConfig, WeComEmulator
from channels.emulator.persistence import Snapshot
from channels.robot import RobotChannel
from channels.wecom import WeComClient
from tests.channels.conftest import CORP_ID, CORP_SECRET, FakeClock

EGGS = "今日鸡蛋3.99元/斤\n限前200单"
SCRIPT = "<script>alert(1)</script> 首单券已到账"
NAMES = {"wrA": "北京生鲜爱好者群", "zhangwei.bj01": "张伟", "wm-li": "李女士"}


def page(emulator: WeComEmulator, path: str = "/", **params: object) -> requests.Response:
    answer = requests.get(emulator.url + path, params=params, timeout=5)
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    return answer


def cards(body: str) -> list[str]:
    """The text of each card on the page (tags stripped, entities decoded), in page order."""
    found = re.findall(r"<article.*?</article>", body, re.S)
    return [html.unescape(re.sub(r"[ \t]+", " ", re.sub(r"<[^>]+>", " ", c))) for c in found]


def bubbles(body: str) -> list[str]:
    """The message text of each card, as the staff member reads it."""
    return [
        html.unescape(text) for text in re.findall(r'<div class="bubble">(.*?)</div>', body, re.S)
    ]


def msgids(body: str) -> list[str]:
    """The msgid of each task card, in page order."""
    return re.findall(r'<article class="card task" id="([^"]+)"', body)


def names(emulator: WeComEmulator, table: dict[str, str]) -> None:
    answer = requests.post(emulator.url + "/emulator/names", json=table, timeout=2).json()
    assert answer["errcode"] == 0, answer


def test_group_and_single_tasks_show_as_the_staff_member_sees_them(
    emulator: WeComEmulator, client: WeComClient, clock: FakeClock
) -> None:
    """Text with its line breaks, recipients by name, confirmation, per-target results, local time."""
    emulator.configure(
        confirm_delay_seconds=600, deleted_ids=["wm-gone"], unknown_ids=["wm-nobody"]
    )
    names(emulator, NAMES)
    client.send_mass(MassMessage("group", "zhangwei.bj01", ("wrA", "wrB"), EGGS))
    clock.advance(700)  # the group task is confirmed by now; the next one is not yet
    client.send_mass(MassMessage("single", "lina.sh01", ("wm-li", "wm-gone", "wm-nobody"), SCRIPT))

    answer = page(emulator)

    assert answer.status_code == 200
    assert "default-src 'none'" in answer.headers["Content-Security-Policy"]  # no script runs
    single, group = cards(answer.text)
    assert "客户群发" in single and "lina.sh01" in single
    assert SCRIPT in single and "等待员工确认发送" in single
    assert "2023-11-15 06:25:00" in single  # created at 22:25 UTC, shown in Asia/Shanghai
    assert "将发送给 3 个客户" in single and "李女士 (wm-li)" in single
    assert "非好友,发送失败" in single and "无效 id,企业微信拒收" in single
    assert "客户群群发" in group and "张伟 (zhangwei.bj01)" in group
    assert "北京生鲜爱好者群 (wrA)" in group and "将发送给 2 个群聊" in group
    assert "员工已确认发送 Sent by the staff member · 2023-11-15 06:23:20" in group
    assert "已发送 sent: 2" in group
    assert bubbles(answer.text) == [SCRIPT, EGGS]  # newest first, line breaks as written


def test_operator_text_is_escaped_everywhere(emulator: WeComEmulator, client: WeComClient) -> None:
    """Message text, names and ids that hold HTML come back as text, never as markup."""
    names(emulator, {"wm-x": '"><img src=x onerror=alert(2)>'})
    client.send_mass(MassMessage("single", "<b>staff</b>", ("wm-x",), SCRIPT))

    body = page(emulator).text

    assert "&lt;script&gt;alert(1)&lt;/script&gt; 首单券已到账" in body
    assert "<script" not in body and "<img" not in body and "<b>staff" not in body
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in body


def test_newest_first_filtered_by_staff_and_paged(
    emulator: WeComEmulator, client: WeComClient, clock: FakeClock
) -> None:
    for n in range(5):
        sender = "lina.sh01" if n % 2 == 0 else "zhangwei.bj01"
        client.send_mass(MassMessage("group", sender, (f"wr{n}",), f"第{n}条"))
        clock.advance(60)

    first = page(emulator, staff="lina.sh01", size=2)
    second = page(emulator, "/emulator/outbox", staff="lina.sh01", size=2, page=2)
    by_target = page(emulator, target="wr1")

    assert bubbles(first.text) == ["第4条", "第2条"] and bubbles(second.text) == ["第0条"]
    assert "第 1 / 2 页" in first.text and "共 3 条" in first.text
    assert 'href="?staff=lina.sh01&amp;page=2&amp;size=2"' in first.text  # the next page link
    assert bubbles(by_target.text) == ["第1条"] and "zhangwei.bj01" in cards(by_target.text)[0]
    assert bubbles(page(emulator, chat_type="single").text) == []


def test_a_bad_query_is_a_400_page_that_says_what_to_write(emulator: WeComEmulator) -> None:
    bad_page = page(emulator, page="abc")
    unknown = page(emulator, colour="red")
    too_big = page(emulator, size=5000)

    assert bad_page.status_code == unknown.status_code == too_big.status_code == 400
    assert "page must be a whole number from 1, not &#x27;abc&#x27;" in bad_page.text
    assert "unknown query parameter &#x27;colour&#x27;; use view, staff" in unknown.text
    assert "size must be 1..100" in too_big.text


def test_robot_posts_are_listed_with_their_mentions_and_a_masked_key(
    emulator: WeComEmulator,
) -> None:
    key = "robot-key-0123456789"
    with RobotChannel(emulator.url, {"ops-bj": key}, timeout=(1.0, 2.0)) as robots:
        robots.post_text("ops-bj", "审批等待中\n<b>早报价</b>", mentioned_list=["zhangwei.bj01"])
        robots.post_markdown("ops-bj", "**今日 KPI** 送达 98%")

    body = page(emulator, view="robot").text

    markdown, text = cards(body)
    assert "**今日 KPI** 送达 98%" in markdown
    assert "审批等待中\n<b>早报价</b>" in text and "@ zhangwei.bj01" in text
    assert "&lt;b&gt;早报价&lt;/b&gt;" in body and key not in body and "robo…" in body
    names(emulator, {key: "北京运营群机器人"})
    assert "北京运营群机器人" in page(emulator, view="robot").text


def test_the_page_and_names_survive_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    config = EmulatorConfig(corp_id=CORP_ID, corp_secret=CORP_SECRET)
    state = tmp_path / "emulator-state.sqlite"
    with WeComEmulator(config, clock=clock, state=state) as first:
        names(first, NAMES)
        with WeComClient(first.url, CORP_ID, CORP_SECRET, timeout=(1.0, 2.0)) as client:
            client.send_mass(MassMessage("group", "zhangwei.bj01", ("wrA",), EGGS))

    with WeComEmulator(config, clock=clock, state=state) as second:
        body = page(second).text

    (card,) = cards(body)
    assert "北京生鲜爱好者群 (wrA)" in card and "张伟 (zhangwei.bj01)" in card
    assert EGGS in card and str(state) in body


def test_a_hundred_thousand_messages_give_a_small_page_quickly(clock: FakeClock) -> None:
    """After a bench: one page stays a few dozen KB, the filter and the last page answer fast."""
    senders = [f"staff{n:02d}" for n in range(41)]
    chats = [[f"wr{n:04d}"] for n in range(500)]
    base = {"chat_type": "group", "content": "今日特价", "fail_list": []}
    rows = [
        dict(
            base,
            msgid=f"msg{n:06d}",
            seq=n,
            sender=senders[n % 41],
            targets=chats[n % 500],
            create_time=clock.now + n,
        )
        for n in range(100_000)
    ]
    with WeComEmulator(clock=clock) as emulator:
        emulator.remember(Snapshot(messages=rows))
        started = time.perf_counter()
        newest = page(emulator)
        last = page(emulator, staff="staff07", size=100, page=25)
        elapsed = time.perf_counter() - started

    assert newest.status_code == last.status_code == 200
    assert len(newest.content) < 60_000 and len(last.content) < 200_000
    assert msgids(newest.text) == [f"msg{n:06d}" for n in range(99_999, 99_979, -1)]
    assert "第 25 / 25 页" in last.text and len(msgids(last.text)) == 39  # 2,439 of staff07
    assert msgids(last.text)[-1] == "msg000007"
    assert elapsed < 5.0  # about 0.2 s on an idle machine
