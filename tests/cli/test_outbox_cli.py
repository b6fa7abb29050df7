"""`sopflow outbox`: what the outbox channel sent, per staff member, newest first, names from the database."""

from __future__ import annotations

import datetime as dt

from typer.testing import CliRunner

from channels.base import MassMessage
from channels.outbox import OutboxChannel
from core.settings import get_settings
from sopflow.cli import app
from tests.factories import add_customers, make_world

MORNING = dt.datetime(2026, 11, 24, 0, 30, tzinfo=dt.UTC)  # 08:30 in Shanghai


def invoke(*args: str):
    return CliRunner().invoke(app, ["outbox", *args])


def send(message: MassMessage, at: dt.datetime) -> None:
    OutboxChannel(get_settings().outbox_dir, clock=lambda: at).send_mass(message)


def test_lists_each_staff_members_messages_with_names_times_and_text(database_url: str) -> None:
    world = make_world(dt.date(2026, 11, 24), database_url)
    add_customers(7, url=database_url, owner="lina.sh01")
    group = world.chat_ids["北京生鲜爱好者群"]
    customers = tuple(f"wmTEST{i:07d}" for i in range(7))
    send(MassMessage("group", "zhangwei.bj01", (group,), "今日鸡蛋3.99元/斤\n限前200单"), MORNING)
    send(MassMessage("single", "lina.sh01", customers, "首单券已到账"), MORNING.replace(hour=1))
    send(
        MassMessage("group", "zhangwei.bj01", ("wr-unknown",), "睡前秒杀"), MORNING.replace(day=25)
    )

    result = invoke()

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "员工 staff 张伟 (zhangwei.bj01): 2 message(s)" in lines
    assert "员工 staff 李娜 (lina.sh01): 1 message(s)" in lines
    assert "  2026-11-25 08:30:00  客户群群发 group → 1 group chat(s): wr-unknown" in lines
    assert (
        f"  2026-11-24 08:30:00  客户群群发 group → 1 group chat(s): 北京生鲜爱好者群 ({group})"
        in lines
    )
    assert "    │ 今日鸡蛋3.99元/斤" in lines and "    │ 限前200单" in lines
    assert "客户群发 single → 7 customer(s): 客户0 (wmTEST0000000)" in result.output
    assert "… and 2 more" in result.output and "客户5" not in result.output
    # Newest first within a staff member: the 25th's evening sale before the 24th's prices.
    assert result.output.index("睡前秒杀") < result.output.index("今日鸡蛋")


def test_staff_and_limit_choose_the_newest_of_one_staff_member(database_url: str) -> None:
    for n in range(3):
        send(MassMessage("group", "lina.sh01", ("wrA",), f"第{n}条"), MORNING.replace(minute=n))
    send(MassMessage("group", "zhangwei.bj01", ("wrB",), "别人的"), MORNING.replace(minute=9))

    result = invoke("--staff", "lina.sh01", "--limit", "2")

    assert result.exit_code == 0, result.output
    assert "第2条" in result.output and "第1条" in result.output
    assert "第0条" not in result.output and "别人的" not in result.output
    assert "the newest 2 message(s) of lina.sh01" in result.output


def test_an_empty_outbox_and_an_unknown_staff_member_say_so(database_url: str) -> None:
    empty = invoke()
    send(MassMessage("group", "lina.sh01", ("wrA",), "早上好"), MORNING)
    nobody = invoke("--staff", "nobody.xx")

    assert empty.exit_code == 1 and "is empty: nothing has been sent" in empty.output
    assert nobody.exit_code == 1
    assert "no messages from staff 'nobody.xx'" in nobody.output
    assert "staff members with messages: lina.sh01" in nobody.output


def test_a_broken_line_names_its_file_and_line(database_url: str) -> None:
    send(MassMessage("group", "lina.sh01", ("wrA",), "早上好"), MORNING)
    path = get_settings().outbox_dir / "2026-11-24.jsonl"
    with path.open("a", encoding="utf-8") as out:
        out.write('{"time": "2026-11-24T00:31:00+00:00", "sender": "x"}\n')

    result = invoke()

    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{path}:2: missing field 'chat_type'" in result.output
    assert "fix or delete that line" in result.output
