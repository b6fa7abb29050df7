"""The outbox channel: one JSON line per send, safe from several threads, WeCom's limits enforced."""

from __future__ import annotations

import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from channels.base import MassMessage
from channels.outbox import OutboxChannel
from core.errors import ChannelRejected

NOW = dt.datetime(2025, 3, 3, 17, 30, tzinfo=dt.UTC)  # 2025-03-04 01:30 in Shanghai


def outbox(tmp_path) -> OutboxChannel:
    return OutboxChannel(tmp_path / "outbox", clock=lambda: NOW)


def lines(tmp_path, day: str = "2025-03-04") -> list[dict]:
    text = (tmp_path / "outbox" / f"{day}.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_each_send_writes_one_json_line_in_the_local_date_file(tmp_path):
    channel = outbox(tmp_path)
    message = MassMessage(
        chat_type="group", sender="zhangsan", targets=("wr-1", "wr-2"), content="早上好"
    )

    first = channel.send_mass(message)
    second = channel.send_mass(message)

    records = lines(tmp_path)
    assert [r["msgid"] for r in records] == [first.msgid, second.msgid]
    assert first.msgid.startswith("outbox-") and first.msgid != second.msgid
    assert records[0] == {
        "time": NOW.isoformat(),
        "chat_type": "group",
        "sender": "zhangsan",
        "targets": ["wr-1", "wr-2"],
        "content": "早上好",
        "msgid": first.msgid,
    }
    assert channel.read(dt.date(2025, 3, 4)) == records


def test_concurrent_sends_from_many_threads_write_whole_lines(tmp_path):
    channel = outbox(tmp_path)
    big = "长" * 1300  # ~3.9 KB lines, several OS pages per batch

    def send(i: int) -> str | None:
        targets = tuple(f"wm-{i}-{j}" for j in range(50))
        return channel.send_mass(MassMessage("single", "lisi", targets, big)).msgid

    with ThreadPoolExecutor(max_workers=8) as pool:
        msgids = list(pool.map(send, range(200)))

    records = lines(tmp_path)
    assert sorted(r["msgid"] for r in records) == sorted(msgids)
    assert all(len(r["targets"]) == 50 for r in records)


def test_outbox_refuses_what_wecom_would_refuse(tmp_path):
    channel = outbox(tmp_path)
    too_long = MassMessage("single", "lisi", ("wm-1",), "x" * 4001)

    with pytest.raises(ChannelRejected) as caught:
        channel.send_mass(too_long)

    assert caught.value.errcode == 45002
    assert not (tmp_path / "outbox").exists()
